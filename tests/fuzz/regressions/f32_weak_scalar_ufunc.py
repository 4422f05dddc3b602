"""Fuzzer regression: float32 ufunc with a Python-float operand (long run, seed 209270).

``x = math.asinh(...)`` is a Python float; NumPy 2 keeps ``np.minimum(v, x)``
float32 for a float32 ``v``.  The float32 twin did not cast ``x`` (only literal
numbers), so ``np.dot`` met float32 and float64 and the twin did not type; the
fallback (Numba's rules) then returned a float32 primal with a float64 tangent.
Fixed: the twin types each variable ufunc operand against the next
(``fj.lit``), and the fallback casts tangents to their primal's dtype.
"""
import math
import numpy as np

def f(v, x, v1):
    x = math.asinh(v1[0])
    s1 = np.dot(v1, np.minimum(v, x))
    return x


ARGS = (np.array([0.6000000238418579, -0.38999998569488525, 0.03999999910593033], dtype=np.float32), np.float32(1.5), np.array([1.1299999952316284, 1.1799999475479126, -0.7699999809265137], dtype=np.float32), )
TANGENTS = (np.array([-0.8899999856948853, -1.2899999618530273, -1.3700000047683716], dtype=np.float32), np.float32(1.4600000381469727), np.array([0.5199999809265137, -0.3400000035762787, 1.8799999952316284], dtype=np.float32), )
ACTIVE = ('v', 'x', 'v1')
XFAIL = None
