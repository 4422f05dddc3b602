"""Fuzzer regression: float32 variable re-assigned a Python float in a branch (crashed at the first jvp; fixed)

Shrunk by the fuzzer from seed 100124.  ``x`` is float32 after ``x /= ...`` in the twin
and float64 after ``x = s20`` (``s20 = 0.5``); ``np.subtract(x, v)`` then has two array types.
"""
import numpy as np

def f(v, x):
    x /= v[5] / 1.7
    c19 = 0
    while c19 < 2:
        c19 += 1
        s20 = 0.5
        if np.min(v):
            u22 = np.subtract(x, v)
        else:
            x = s20
    return x


ARGS = (np.array([-1.0800000429153442, -0.27000001072883606, -0.25999999046325684, 1.3799999952316284, -1.4199999570846558, -0.800000011920929], dtype=np.float32), np.float32(-0.07000000029802322), )
TANGENTS = (np.array([0.09000000357627869, 1.3899999856948853, 0.07999999821186066, -0.46000000834465027, -0.8600000143051147, -0.49000000953674316], dtype=np.float32), np.float32(-0.12999999523162842), )
ACTIVE = ('v', 'x')
XFAIL = None   # fixed in the core (NumPy dtypes for Python-scalar arithmetic, fb8d8b4)
