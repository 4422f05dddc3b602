"""Fuzzer regression: np.vdot of a float32 and a float64 array in the float32 twin (crash at the first jvp)

Shrunk by the fuzzer from seed 100687.  In the float32 twin ``1.0 + v`` stays float32
(NumPy 2 rules) while ``np.full(len(v1), s2)`` is float64 (``s2`` is a Python float);
NumPy's vdot promotes, Numba's refuses: "np.vdot() arguments must all have the same dtype".
Plain numba.njit compiles f (there ``1.0 + v`` is float64).
Fixed (session 3): the twin reads both operands of dot/vdot/matmul/@ through
``fj.promote`` (a cast to the common dtype, a no-op when they agree) and types a
reduction's result with ``fj.like_common``; the JVP returns float64, as NumPy does.
"""
import math
import numpy as np

def f(v, v1):
    s2 = 0.5
    s2 = math.atan(s2)
    s2 = np.vdot(1.0 + v, np.full(len(v1), s2))
    return s2


ARGS = (np.array([0.8100000023841858, -0.3100000023841858, 0.46000000834465027, -1.1100000143051147, -1.100000023841858], dtype=np.float32), np.array([1.350000023841858, -0.25, 0.07000000029802322, 1.1399999856948853, 0.7599999904632568], dtype=np.float32), )
TANGENTS = (np.array([-0.8700000047683716, 1.4600000381469727, 0.25, 1.8799999952316284, 0.6800000071525574], dtype=np.float32), np.array([-0.23000000417232513, -0.6200000047683716, -1.2899999618530273, 0.9300000071525574, -0.03999999910593033], dtype=np.float32), )
ACTIVE = ('v', 'v1')
XFAIL = None
