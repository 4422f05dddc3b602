"""Fuzzer regression: float32 tanh near saturation (long run, seed 208833).

``tanh(s)`` at s = 7.4 is 1 - 8e-7; its derivative ``1 - tanh(s)**2`` (the
rule JAX and PyTorch use too) is 1.5e-6, computed in float32 with an absolute
error of about 3e-8 (2 % relative).  That is float32 rounding, not a wrong
rule: the fuzzer's tolerance for float32 was 1e-9 absolute, below float32's
resolution; it now uses check_jvp's float32 default (1e-6).  Kept so the
float32 tolerance is exercised on a real case.
"""
import math
import numpy as np

def f(v, v1):
    s1 = np.dot(v[1:], np.concatenate((v[:4], v1[4:]))[1:])
    s1 = math.tanh(s1)
    return s1


ARGS = (np.array([0.9200000166893005, -1.399999976158142, 1.409999966621399, -1.3600000143051147, -1.1200000047683716], dtype=np.float32), np.array([-1.059999942779541, 1.090000033378601, 1.2000000476837158, 0.699999988079071, -1.3799999952316284], dtype=np.float32), )
TANGENTS = (None, np.array([0.28999999165534973, -1.8600000143051147, 1.440000057220459, -0.5799999833106995, 0.800000011920929], dtype=np.float32), )
ACTIVE = ('v1',)
XFAIL = None
