"""Fuzzer regression: ``u[i] *= e`` where ``e`` reads ``u[i]`` (array element target).

Same cause as augmul_self_scalar: ``du[1] *= b`` is emitted before
``du[1] += u[1] * de`` and ``de`` reads ``du[1]``.
"""
import numpy as np


def f(u, s):
    u = u * 1.0
    u[1] *= u[1] + s
    return np.sum(u)


ARGS = (np.array([0.5, 2.0, 1.0]), 0.3)
TANGENTS = (np.array([0.0, 1.0, 0.0]), 0.5)
ACTIVE = ("u", "s")
XFAIL = None   # fixed in the core
