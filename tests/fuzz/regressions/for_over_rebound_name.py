"""Fuzzer regression: ``for e in v`` where the loop body rebinds ``v``.

Found from seed 102059 (mismatch of the primal computed by the JVP; shrunk by
hand).  Python's ``for`` keeps iterating over the array ``v`` referred to when
the loop started; fwdjit's normalize pass rewrites the loop as
``for _i in range(len(v)): e = v[_i]``, which reads the *rebound* ``v``: the
JVP returns (6.5, 7.0) = (0.5 + 2 + 4, 1 + 2 + 4) instead of (2.5, 3.0).  The
compiled primal ``f(v)`` keeps the Python loop and is right, like numba.njit.  The same holds for ``enumerate(v)`` and
``zip(v, w)``.  Fix: when the iterated name is assigned inside the loop, bind
it to a fresh temporary before the loop (``_it1 = v``) and index that.
"""
import numpy as np


def f(v):
    s = 0.0
    for e in v:
        s += e
        v = v * 2.0
    return s


ARGS = (np.array([0.5, 1.0, 1.0]),)
TANGENTS = (np.array([1.0, 1.0, 1.0]),)
ACTIVE = ("v",)
XFAIL = None
