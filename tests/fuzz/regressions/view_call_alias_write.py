"""Fuzzer regression: a silent zero tangent through a view made by a call (long run, seed 208047).

``u1 = np.flip(v)`` is a view of ``v``; ``u1 *= v1`` writes into ``v``, so the
returned ``v`` depends on ``v1``.  Activity knew views made by slicing, ``.T``
and methods (``v.reshape``), not by ``np.flip(v)`` / ``np.reshape(v, ...)``:
``v`` stayed inactive and the JVP returned zeros.  Fixed in activity.may_alias.
"""
import numpy as np

def f(v, v1):
    u1 = np.flip(v)
    u1 *= v1
    return v


ARGS = (np.array([0.02, 1.03, 1.03, -0.96, 0.14, 0.98], dtype=np.float64), np.array([-1.48, 1.32, -1.03, -0.95, -0.23, -1.21], dtype=np.float64), )
TANGENTS = (None, np.array([-0.52, -0.3, 0.3, -0.37, 0.74, 1.07], dtype=np.float64), )
ACTIVE = ('v1',)
XFAIL = None
