"""Fuzzer regression: ``u *= e`` where ``e`` reads ``u`` through an alias.

Shrunk from seed 218.  ``u1`` is ``v``; the in-place product's tangent
reads ``dv[-1]`` after ``du1`` (the same array) was scaled.
"""
import numpy as np


def f(v):
    u1 = v
    u1 *= np.tanh(v[-1])
    return np.sum(u1)


ARGS = (np.array([0.3, -1.2, 0.8]),)
TANGENTS = (np.array([0.5, 1.0, -0.7]),)
ACTIVE = ("v",)
XFAIL = None   # fixed in the core
