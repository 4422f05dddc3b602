"""Fuzzer regression: Numba cannot type the generated JVP of v1 /= ... after loops (crash at the first jvp)

Shrunk by the fuzzer from seed 100863 (float64).  Plain numba.njit compiles f; the JVP
fails with "Type of variable 'dv1.2' cannot be determined, operation: inplace_binop(isub)" at
``dv1 -= v1 / _t4 ** 2 * _de1`` (the tangent of ``v1 /= np.concatenate(...) ** 2``).  The
same statement alone compiles: the loops before it are needed, like the ds10 case.

Triage (session 3): a Numba bug, not fwdjit's.  Numba 0.68.1 on Python 3.11 builds
IR (NUMBA_DUMP_IR, before any typing) in which ``dv[:3]`` reads a temporary
``$dv1138.25.1`` that is never defined.  It depends on the bytecode layout only:
the generated function, pasted into a file and compiled with plain ``numba.njit``,
fails the same way; adding one unrelated call at the top, removing one, or calling
the first helper by a bare name instead of ``fj.check_tangent`` all make it compile.
No construct of the generated code is at fault, so there is no principled
workaround here; it should be reported to Numba with that standalone file.
"""
import numpy as np

def f(v, v1):
    s1 = v1[2] / (1.0 + v[2] ** 2)
    for i2 in range(len(v1)):
        s3 = np.sign(np.power(2.0, np.sin(s1))) * np.power(2.0, np.sin(s1))
    for e4 in v:
        u5 = np.power(1.0 + v1[::1] ** 2, np.sin(v1))
    v1 /= np.concatenate((v[:3], (v1 * v1)[3:])) ** 2
    return s1


ARGS = (np.array([-0.63, 0.19, 0.7, -0.18, 0.01], dtype=np.float64), np.array([-0.9, 0.23, 0.12, -0.04, 1.5], dtype=np.float64), )
TANGENTS = (np.array([-1.06, 0.73, 0.02, 0.39, -0.67], dtype=np.float64), np.array([-1.2, -0.85, 0.74, 1.3, 0.46], dtype=np.float64), )
ACTIVE = ('v', 'v1')
XFAIL = ("bug (Numba's, Python 3.11 bytecode to IR): the JVP reads an undefined temporary; "
         "'dv1.2' cannot be determined")
