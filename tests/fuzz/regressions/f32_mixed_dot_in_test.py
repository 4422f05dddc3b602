"""Fuzzer regression: np.vdot of float32 and float64 arrays inside an ``if`` test (long run, seed 310346).

``np.zeros(len(v))`` is float64 whatever ``v`` is, so ``np.vdot(v32, u)`` mixes
dtypes; NumPy promotes, Numba refuses.  The float32 twin promoted dot/vdot
operands in statements but left ``if``/``while`` tests untouched, so the JVP
failed to type (a loud error).  Fixed: tests are rewritten in place too
(nothing is hoisted out of them).  Hand-reduced from the fuzzer's program (its
automatic shrink, ``if np:``, was a different error).
"""
import numpy as np

def f(v, v1):
    u = np.zeros(len(v)) + v1[0]
    s = v1[1] * 0.5
    if np.vdot(v, u) < 10.0:
        s = np.sum(v * v) + s
    return s


ARGS = (np.array([0.5, -1.25, 0.75, 0.3], dtype=np.float32), np.array([1.5, -0.5, 0.25, 2.0], dtype=np.float32), )
TANGENTS = (np.array([0.3, 1.1, -0.7, 0.2], dtype=np.float32), np.array([-0.4, 0.9, 1.3, -1.2], dtype=np.float32), )
ACTIVE = ('v', 'v1')
XFAIL = None
