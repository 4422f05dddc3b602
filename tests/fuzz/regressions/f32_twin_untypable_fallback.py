"""Fuzzer regression: a float32 call whose NumPy-2-rules version Numba cannot type (crash of the primal)

Found from seed 161 (crash, primal).

In the float32 twin ``x += math.cos(...)`` keeps x float32 (NumPy 2), then the loop
rebinds x to the float64 a helper returns: Numba cannot unify ``u2 = np.full(4, x)``.
Plain numba.njit compiles f (there x is float64 from the first line).  Fixed: a
twin that does not type falls back to Numba's rules with a Float32PromotionWarning.
"""
import math
import numpy as np
from fwdjit import fwdjit


def h1(x, y):
    y = (np.fmax((y if x >= 1 else y), (np.square(y))))
    return y


@fwdjit(cache=False)
def h2(x, y):
    if x < 2:
        if (y if y > 0.3 else y) >= 0.0:
            s201 = ((y / (1.0 + y ** 2)) if y < 0.3 else y)
            if (y if (y <= -0.2 or s201 < (-0.5)) else s201) < 0.3:
                s202 = (np.power(1.0 + y ** 2, 0.5 * np.sin(y)))
        else:
            c203 = 0
            while c203 < x and (x <= 2):
                c203 += 1
                u204 = np.full(4, y)
                u204 *= np.tanh((np.max(u204)))
        for k205 in range(x):
            u206 = np.full(4, y)
    else:
        s207 = y
        u208 = np.full(4, y)
    y -= (math.acosh(2.0 + np.sin((pow(1.0 + y ** 2, np.cos(y))))))
    return y


def f(M, x, n, flag):
    x += (math.cos((np.cbrt(2.0 + np.sin(x)))))
    x = (x if M[1, 1] > M[0, 2] else x)
    x /= (1.0 + (M[-4, -3]) ** 2)
    x -= (np.expm1(np.sin(x)))
    for k1 in range(n):
        if (2.0 ** np.tanh((M[-3, -4]))) > x:
            x = h2(n, (math.acos(0.7 * np.cos(x))))
        elif (np.sum(M * M)) <= 0.0:
            u2 = np.full(4, x)
        else:
            u3 = np.full(4, x)
            x += x
    u4 = np.full(4, M[-3, 2])
    return x + np.sum(u4)


ARGS = (np.array([[-0.28721001744270325, 0.08035356551408768, 0.13533741235733032, 0.10422711074352264], [0.4189610183238983, 0.06379829347133636, -0.17304594814777374, 0.43702635169029236], [0.4654029607772827, -0.09778875857591629, 0.35359296202659607, 0.4494149088859558], [-0.4198300838470459, -0.05216778442263603, 0.2300156056880951, -0.35133346915245056]], dtype=np.float32), np.float32(0.9488523602485657), 1, True, )
TANGENTS = (None, np.float32(1.1378453969955444), None, None, )
ACTIVE = ('x',)
XFAIL = None
# the fallback computes in float64 where NumPy 2 keeps float32 (warned): values are checked, dtype not
CHECK_DTYPE = False
