"""Fuzzer regression: float32 tangent turns float64 through a select with a literal (crash at the first jvp).

Hand-shrunk from seed 100236 (crash, jvp).  With float32 arguments and only
``x2`` active, the tangent of ``np.maximum(x2, x)`` is
``fj.select(x2 >= x, dx2, 0.0)``: the Python ``0.0`` makes it float64, the
broadcast tangent of ``v + ...`` is a float64 array, and ``dv`` (a float32
zero array before the branch) cannot be unified:
"Cannot unify array(float32, 1d, C) and array(float64, 1d, C) for 'dv.2'".
"""
import numpy as np


def f(v, x, x2):
    if x > 0.0:
        v = v + np.maximum(x2, x)
    return np.sum(v)


ARGS = (np.array([0.5, -1.0, 2.0], dtype=np.float32), np.float32(0.5), np.float32(0.2), )
TANGENTS = (None, None, np.float32(1.0), )
ACTIVE = ('x2',)
XFAIL = None   # fixed in the core
