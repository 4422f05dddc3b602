"""Fuzzer regression: float32 variable re-assigned a Python float inside a loop (crashed at the first jvp; fixed)

Shrunk by the fuzzer from seed 100146.  Plain numba.njit compiles f (s4 is float64
throughout); the float32 twin of the JVP makes ``s4 = 1.0 + x`` float32 (NumPy 2 rules) while
``s4 = 0.3`` stays float64, and Numba cannot type ``np.full(len(v), s4)`` in the loop:
"Cannot unify array(float32, 1d, C) and array(float64, 1d, C)".
"""
import numpy as np

def f(v, x):
    s4 = 1.0 + x
    c15 = 0
    while c15 < 4:
        c15 += 1
        if np.dot(np.full(len(v), s4)[1:], np.full(len(v), s4)[1:]):
            pass
        else:
            s4 = 0.3
    return s4


ARGS = (np.array([1.2000000476837158, -0.10999999940395355, -0.5899999737739563, -1.159999966621399, -0.2199999988079071], dtype=np.float32), np.float32(-0.6600000262260437), )
TANGENTS = (np.array([1.1299999952316284, 0.3100000023841858, -0.14000000059604645, 1.0399999618530273, 0.30000001192092896], dtype=np.float32), np.float32(0.33000001311302185), )
ACTIVE = ('v', 'x')
XFAIL = None   # fixed in the core (NumPy dtypes for Python-scalar arithmetic, fb8d8b4)
