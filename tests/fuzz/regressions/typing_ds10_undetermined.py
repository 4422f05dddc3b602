"""Fuzzer regression: Numba cannot type the generated JVP (crash at the first jvp).

Found from seed 214 (crash, jvp); shrunk by the fuzzer.  Plain ``numba.njit``
compiles ``f``; the JVP fails with "Type of variable 'ds10' cannot be
determined" at ``ds10 = fj.select(_t3 >= x ** 2, 0.0, 2 * x * dx)``.  The
generated line before it is

    dx -= fj.bcast(fj.select(max(x, 1.5) >= 0.1, fj.select(x >= 1.5, dx, 0.0), 0.0), _t2)

with ``_t2 = math.floor(...)`` an int64 in Numba: with ``_t2`` cast to float,
or without the ``fj.bcast`` call, the JVP compiles.  Removing any of the
unrelated statements (``u8 = ...``, ``u9 = ...``, ``s5, s6 = ...``) also
makes it compile, so it is an order-dependent type inference failure that
the ``fj.bcast(..., <int>)`` call triggers.

Fixed: the trigger was the desugared ``0.5 if 0.5 <= 0.25 else u1[2]``, an ``if``
on a constant test that left ``_t1`` undefined on the path Numba prunes.
``normalize`` now keeps only the branch a literal test takes.
"""
import math
import numpy as np

def f(x, x1, v):
    u1 = v
    for e4 in v:
        v[0] = np.negative(0.5 if 0.5 <= 0.25 else u1[2])
        x1 += u1.prod()
    s5, s6 = (np.sum(u1), min(v[2], 0.3))
    u1[:] = np.array((x1, x, x1, x1, x1))
    if x1 <= 0.2:
        for e7 in u1:
            u8 = np.ones(5)
    else:
        x -= max(x, 1.5, 0.1) - math.floor(max(x, 1.5, 0.1))
        u9 = np.zeros(len(u1))
    s10 = s11 = np.fmax(np.sum(0.5), x ** 2)
    return x


ARGS = (-0.87, 0.78, np.array([0.57, -1.46, 0.21, 0.88, -1.08], dtype=np.float64), )
TANGENTS = (1.8, 0.3, np.array([1.06, -0.27, -0.62, 0.69, 0.42], dtype=np.float64), )
ACTIVE = ('x', 'x1', 'v')
XFAIL = None
