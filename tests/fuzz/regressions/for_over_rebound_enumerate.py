"""Fuzzer regression: ``for j, e in enumerate(v)`` where the loop body rebinds ``v``.

The shape of the program found from seed 102059: the body replaces ``v`` by a
new array built from ``e``; Python keeps reading the original ``v``.
"""
import numpy as np


def f(v, x):
    for j, e in enumerate(v):
        v = np.negative(np.full(len(v), e * x))
    return v[-1] + x


ARGS = (np.array([0.3, -1.2, 0.8, 0.5]), 0.7)
TANGENTS = (np.array([1.0, 0.5, -0.5, 0.25]), 1.0)
ACTIVE = ("v", "x")
XFAIL = None
