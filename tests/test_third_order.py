"""Third and fourth order: forward over forward over forward, through ``tangent_fwdjit``.

Each level's parameters are the previous level's primals and tangents, so the names the tangent pass
gives the new tangents must avoid every one of them: at third order of ``f(a, b)`` the tangent of
``da`` is ``dda`` and that of ``da_1`` (the fresh name ``a``'s second tangent got) was ``dda_1``, the
fresh name a taken ``dda`` also got, which Numba refused as a duplicate argument.
"""
import ast

import numpy as np
import pytest

import fwdjit
from fwdjit.testing import check_jvp


def f_mul(a, b):
    return a * b


def f_cube(x):
    return x ** 3


def f_sin_mul(x, y):
    return np.sin(x) * y


def f_arrays(x, w):
    return np.sum(np.tanh(w * x) * x) + np.outer(x, w)[1, 2]


def f_outer(a, b):
    return np.outer(a, b)


def f_named_like_tangents(x, dx):
    # parameters already named as the tangent pass would name them
    return x * dx * dx + np.sin(x)


def f_more_names(a, da, dda, da_1):
    return a * da + dda * da_1 * a


def _nested(f, nargs, levels):
    """``f`` differentiated ``levels`` times as a function of all its parameters (all active)."""
    F = fwdjit.fwdjit(f)
    for _ in range(levels):
        F = F.tangent_fwdjit((True,) * nargs)
        nargs *= 2
    return F, nargs


def _args(nargs, dtype, shape=None, seed=0):
    rng = np.random.default_rng(seed)
    if shape is None:
        return tuple(dtype(v) for v in rng.uniform(0.5, 1.5, nargs))
    return tuple(rng.uniform(0.5, 1.5, shape).astype(dtype) for _ in range(nargs))


SCALAR_CASES = [(f_mul, 2), (f_cube, 1), (f_sin_mul, 2), (f_named_like_tangents, 2)]
EXHAUSTIVE = pytest.mark.exhaustive     # each level compiles a larger function: minutes cold in all


def _cases(pairs, quick):
    """``(f, ..., dtype)`` params, the exhaustive tier but for the ``quick`` (function, dtype) pairs."""
    return [pytest.param(*p, dt, id=f"{p[0].__name__}-{dt.__name__}",
                         marks=() if (p[0], dt) in quick else (EXHAUSTIVE,))
            for p in pairs for dt in (np.float64, np.float32)]


@pytest.mark.parametrize("f,nargs,dtype", _cases(SCALAR_CASES, {(f_mul, np.float64)}))
def test_third_order_scalars(f, nargs, dtype):
    F, n = _nested(f, nargs, 2)                   # the second derivative as a function...
    check_jvp(F, _args(n, dtype))                # ...whose jvp is the third


@pytest.mark.parametrize("f,nargs,dtype", _cases([(f_mul, 2), (f_cube, 1)], set()))
def test_fourth_order_scalars(f, nargs, dtype):
    F, n = _nested(f, nargs, 3)
    check_jvp(F, _args(n, dtype))


@pytest.mark.parametrize("f,dtype", _cases([(f_arrays,), (f_outer,)], {(f_outer, np.float64)}))
def test_third_order_arrays(f, dtype):
    F, n = _nested(f, 2, 2)
    check_jvp(F, _args(n, dtype, shape=(4,), seed=1))


@EXHAUSTIVE
def test_third_order_user_names_like_tangent_names():
    F, n = _nested(f_more_names, 4, 2)
    assert n == 16
    check_jvp(F, _args(n, np.float64))


def test_tangent_names_stay_unique_and_flat():
    """Each level's generated signature has distinct names, none with a stacked ``_1_1`` suffix."""
    F = fwdjit.fwdjit(f_cube)
    nargs = 1
    for _ in range(4):
        src = F.tangent_source_for((True,) * nargs)
        params = [a.arg for a in ast.parse(src).body[0].args.args]
        assert len(params) == 2 * nargs
        assert len(set(params)) == len(params), params
        assert not any(p.count("_") > 1 for p in params), params
        F = F.tangent_fwdjit((True,) * nargs)
        nargs *= 2
    assert params[:4] == ["x", "dx", "dx_1", "ddx"]


@EXHAUSTIVE
def test_partial_masks_third_order():
    """Third order with only some tangents active at each level."""
    F = fwdjit.fwdjit(f_sin_mul).tangent_fwdjit((True, False))          # (x, y, dx)
    F = F.tangent_fwdjit((True, True, False))                          # (x, y, dx, dx_1, dy)
    check_jvp(F, _args(5, np.float64), argnums=(0, 2))
