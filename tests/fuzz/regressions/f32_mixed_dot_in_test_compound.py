"""Fuzzer regression: float32 np.vdot of mixed dtypes in an ``if`` test, compound operand (long run, seed 321873).

``np.full(len(v), s3)`` with ``s3 = math.atan2(...)`` (a Python float) is
float64 in NumPy; ``v`` is float32, and NumPy's vdot promotes.  The float32
twin promotes dot/vdot operands through ``fj.promote(a, b)``, which needs both
operands as names; inside a test nothing may be hoisted out, so a compound
operand is left alone and Numba refuses the mixed dtypes (a loud typing error,
no wrong value).  Fix: per-function wrappers (``fj.vdot(a, b)``, ``fj.dot``,
``fj.matmul``...) that promote inside, needing no temporaries.
"""
import math
import numpy as np

def f(v, x, x1):
    x = np.exp2(x1)
    s3 = math.atan2(v[4], x)
    u4 = v
    if np.vdot(np.full(len(u4), s3), v):
        pass
    x1 = np.vdot(np.full(len(u4), s3), v)
    return x


ARGS = (np.array([0.5, -1.25, 0.75, 0.3, 1.1], dtype=np.float32), np.float32(0.4), np.float32(-0.6), )
TANGENTS = (np.array([0.3, 1.1, -0.7, 0.2, -0.5], dtype=np.float32), np.float32(0.8), np.float32(1.2), )
ACTIVE = ('v', 'x', 'x1')
XFAIL = "bug: the float32 twin cannot promote a compound dot/vdot operand inside an if test (loud typing error)"
