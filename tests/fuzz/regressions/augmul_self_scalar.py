"""Fuzzer regression: ``x *= e`` where ``e`` reads ``x``.

Found from seeds 14, 24 and 204 of the first runs (shrunk by hand).  The
generated tangent is

    _t1 = np.cos(x)
    dx *= _t1
    dx += x * (-dx * np.sin(x))     # reads the already-scaled dx
    x *= _t1

so d(x cos x) comes out as dx cos x - x sin x (dx cos x) instead of
dx cos x - x sin x dx.
"""
import numpy as np


def f(x):
    x *= np.cos(x)
    return x


ARGS = (0.7,)
TANGENTS = (1.0,)
ACTIVE = ("x",)
XFAIL = None   # fixed in the core
