"""Fuzzer regression: an in-place update through an alias of a view (long run, seed 208661).

``u1 = v`` makes ``u1`` the same array as ``v``, so ``v[::-1][1:]`` overlaps
``u1[1:]``.  NumPy reads the right-hand side as if copied first; the overlap
check looked only for the target's own name, so the compiled primal updated
element by element and differed.  Fixed: buffered_rhs consults
activity.alias_groups.
"""
import math
import numpy as np

def f(v):
    u1 = v
    u1[1:] += v[::-1][1:]
    return u1


ARGS = (np.array([0.9599999785423279, -0.5899999737739563, -0.019999999552965164, -1.1299999952316284, -1.0800000429153442], dtype=np.float32), )
TANGENTS = (None, )
ACTIVE = ()
XFAIL = None
