"""The fuse pass (fwdjit.compiler.fuse): reductions of elementwise code as one loop.

Tolerances.  Fused and unfused code are both compiled by Numba, whose
``np.sum`` adds elements one after another as the fused loop does, and the
loop computes each element with the same scalar operations as the array
expression: they agree to rounding of a few operations (rtol 1e-12 in float64,
1e-5 in float32, where a different association of a product or the cast of a
constant may move the last bit of each element and n of them add up).
Against NumPy (pairwise summation) and the independent references of
``check_jvp`` the usual tolerances of that helper hold.
"""
import ast

import numpy as np
import pytest

import fwdjit
from fwdjit import LowRank
from fwdjit.compiler import fuse as F
from fwdjit.compiler.normalize import NameGen, all_names
from fwdjit.compiler.resolve import parse_function
from fwdjit.compiler.tangent import render
from fwdjit.testing import check_jvp

RTOL = {np.float64: 1e-12, np.float32: 1e-5}


# ------------------------------------------------------------ functions
def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def chain(x, y):
    a = x * y - 1.0
    b = np.tanh(a) ** 2
    return np.sum(b + np.exp(-x))


def mean_scalar(x, s):
    return np.mean((x - s) ** 2) + s


def maxmin(x, y):
    return np.max(np.sin(x) * y) - np.min(np.cos(x) + y)


def two_d(A, B):
    return np.sum(A * B - np.sqrt(A * A + 1.0))


def in_loop(x, n: int):
    s = 0.0
    for k in range(n):
        s += np.sum(x[k:] * x[: x.shape[0] - k])
    return s


def tv(x):
    return np.sum(np.sqrt((x[1:] - x[:-1]) ** 2 + 1e-3))


def with_axis(A):
    return np.sum(np.sum(A * A, axis=0))


def helper_writes(x):
    x[0] = 2.0 * x[0]
    return 0.0


def user_call(x):
    return helper_writes(x) + np.sum(x * x)


def lowrank_fn(W, x):
    return np.sum(W * W) + np.sum(x * x)


FUNCS = [
    (rosen, lambda r, dt: (r.standard_normal(50).astype(dt),)),
    (chain, lambda r, dt: (r.standard_normal(40).astype(dt), r.standard_normal(40).astype(dt))),
    (mean_scalar, lambda r, dt: (r.standard_normal(30).astype(dt), dt(0.3))),
    (maxmin, lambda r, dt: (r.standard_normal(25).astype(dt), r.standard_normal(25).astype(dt))),
    (two_d, lambda r, dt: (r.standard_normal((6, 7)).astype(dt), r.standard_normal((6, 7)).astype(dt))),
]


def _pair(fn):
    return fwdjit.fwdjit(fn, fuse=True), fwdjit.fwdjit(fn, fuse=False)


# ------------------------------------------------------------ the pass alone
def test_pass_alone_before_after():
    info = parse_function(rosen)
    out = render(F.fuse(info.tree, NameGen(all_names(info.tree)), info))
    assert "for _i1 in range(1, _n1):" in out
    assert "_n1 = fj.fuse_size(x[1:], x[:-1])" in out
    assert "fused into one loop (np.sum)" in out
    # the unfused expression stays as the run-time fallback
    assert "_r1 = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)" in out


def test_chain_of_single_use_intermediates_is_inlined():
    info = parse_function(chain)
    out = render(F.fuse(info.tree, NameGen(all_names(info.tree)), info))
    assert "inlined (used once, below)" in out
    assert "np.tanh(_e1[_s1 + _j1] * _e2[_s1 + _j1] - 1.0)" in out      # in blocks (tanh, exp)
    assert "\n    a = " not in out and "\n    b = " not in out


def test_source_shows_loop_and_fuse_false_does_not():
    f, g = _pair(rosen)
    assert "for _i1 in range(1, _n1):" in f.tangent_source_for((True,))
    assert "for _i1 in range(1, _n1):" in f.primal_source
    assert "fuse_size" not in g.tangent_source_for((True,)) and "fuse_size" not in g.primal_source


def test_env_var_turns_the_default_off(monkeypatch):
    monkeypatch.setenv("FWDJIT_FUSE", "0")
    assert not F.enabled_by_default()
    assert fwdjit.fwdjit(rosen).options["fuse"] is False
    monkeypatch.delenv("FWDJIT_FUSE")
    assert F.enabled_by_default()


# ------------------------------------------------------------ fused == unfused
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fn,make", FUNCS, ids=[f.__name__ for f, _ in FUNCS])
def test_fused_equals_unfused(fn, make, dtype):
    f, g = _pair(fn)
    rng = np.random.default_rng(7)
    args = make(rng, dtype)
    tans = tuple(rng.standard_normal(np.shape(a)).astype(dtype) if np.ndim(a) else dtype(0.7) for a in args)
    assert "fuse_size" in f.tangent_source_for((True,) * len(args))
    yf, dyf = f.jvp(args, tans)
    yg, dyg = g.jvp(args, tans)
    rtol = RTOL[dtype]
    np.testing.assert_allclose(yf, yg, rtol=rtol)
    np.testing.assert_allclose(dyf, dyg, rtol=rtol, atol=rtol * np.abs(dyg))
    np.testing.assert_allclose(f(*args), g(*args), rtol=rtol)
    if dtype is np.float32:         # float32 stays float32 (NumPy's result dtype)
        assert np.asarray(yf).dtype == np.float32 and np.asarray(dyf).dtype == np.float32
        assert np.asarray(f(*args)).dtype == np.float32


@pytest.mark.parametrize("fn,make", [pytest.param(f, m, marks=() if f is rosen else pytest.mark.exhaustive)
                                     for f, m in FUNCS], ids=[f.__name__ for f, _ in FUNCS])
def test_fused_against_independent_reference(fn, make):
    args = make(np.random.default_rng(3), np.float64)
    check_jvp(fwdjit.fwdjit(fn, fuse=True), args)


def test_loop_inside_loop():
    f, g = _pair(in_loop)
    x = np.random.default_rng(0).standard_normal(20)
    dx = np.ones(20)
    assert "fuse_size" in f.tangent_source_for((True, False))
    np.testing.assert_allclose(f.jvp((x, 5), (dx, None)), g.jvp((x, 5), (dx, None)), rtol=1e-12)
    check_jvp(f, (x, 5))


def test_nan_and_ties_in_max():
    f, g = _pair(maxmin)
    x = np.array([0.5, 1.0, 1.0, 0.2])
    y = np.ones(4)
    for xv in (x, np.array([0.5, np.nan, 1.0, 0.2])):
        tx = np.arange(4.0)
        yf, dyf = f.jvp((xv, y), (tx, None))
        yg, dyg = g.jvp((xv, y), (tx, None))
        np.testing.assert_allclose([yf, dyf], [yg, dyg], rtol=1e-12)


# ------------------------------------------------------------ fallbacks and skips
def test_fallback_when_shapes_differ_at_run_time():
    f, g = _pair(two_d)
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 5))
    for B in (rng.standard_normal(5), rng.standard_normal((1, 5)), rng.standard_normal((5, 4)).T):
        ref = np.sum(A * B - np.sqrt(A * A + 1.0))
        np.testing.assert_allclose(f(A, B), ref, rtol=1e-12)
        dA = np.ones_like(A)
        np.testing.assert_allclose(f.jvp((A, B), (dA, None)), g.jvp((A, B), (dA, None)), rtol=1e-12)
    # a non-contiguous 2-d operand (a transpose) runs the unfused expression
    At = rng.standard_normal((5, 4)).T
    np.testing.assert_allclose(f(At, At), g(At, At), rtol=1e-12)


def test_empty_arrays_fall_back():
    f, g = _pair(chain)
    e = np.zeros(0)
    assert f.jvp((e, e), (e, e)) == g.jvp((e, e), (e, e))


def test_skips_are_visible():
    src = fwdjit.fwdjit(with_axis, fuse=True).tangent_source_for((True,))
    assert "not fused (np.sum with axis=)" in src
    src = fwdjit.fwdjit(user_call, fuse=True).tangent_source_for((True,))
    assert "may write its operands first" in src
    x = np.arange(3.0)
    f, g = _pair(user_call)
    np.testing.assert_allclose(f.jvp((x.copy(),), (np.ones(3),)), g.jvp((x.copy(),), (np.ones(3),)))


def test_lowrank_argument_is_not_scalarized():
    f, g = _pair(lowrank_fn)
    rng = np.random.default_rng(2)
    W, x = rng.standard_normal((4, 3)), rng.standard_normal(5)
    A, B = rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    src = f.tangent_source_for((True, True), lowrank=(True, False))
    assert "W has a low-rank tangent" in src
    assert "fuse_size(x)" in src                 # the other reduction still fuses
    lr = LowRank(A, B)
    np.testing.assert_allclose(f.jvp((W, x), (lr, np.ones(5))), g.jvp((W, x), (lr, np.ones(5))), rtol=1e-12)


@pytest.mark.parametrize("fn", [rosen, tv])
def test_vector_mode_matches_single_directions(fn):
    f = fwdjit.fwdjit(fn, fuse=True)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(100)            # tv: more than one block
    D = rng.standard_normal((3, 100))
    y, dys = f.jvp_batched((x,), (D,))
    for k in range(3):
        np.testing.assert_allclose(dys[k], f.jvp((x,), (D[k],))[1], rtol=1e-12)
    assert "fuse_size" in f.tangent_source_k((True,), 3)


def test_loop_shape_follows_the_elements():
    """sqrt, / and the like: blocks (vectorizable); + - * only: one sequential loop (both said in the source)."""
    info = parse_function(tv)
    out = render(F.fuse(info.tree, NameGen(all_names(info.tree)), info))
    assert "# in blocks: the elements into a scratch array (a loop LLVM vectorizes)" in out
    assert "_b1 = fj.buffer(_r1, _n1)" in out and "for _s1 in range(0, _n1, fj.BLOCK):" in out
    assert "for _j1 in range(_k1, _m1):" in out         # element 0 is the accumulator's start
    src = fwdjit.fwdjit(tv).tangent_source_for((True,))
    assert "_db1 = fj.buffer(_dr1, _n1)" in src          # the tangent gets its own block
    info = parse_function(rosen)
    out = render(F.fuse(info.tree, NameGen(all_names(info.tree)), info))
    assert "# one sequential loop: only + - * and integer powers per element" in out
    assert "fj.buffer" not in out


# sizes around the block length (fj.BLOCK = 32): the blocked sum adds in the same order as
# Numba's np.sum of the unfused expression, so fused and unfused agree to rounding of the elements
@pytest.mark.parametrize("n", [2, 33, pytest.param(1, marks=pytest.mark.exhaustive),
                               pytest.param(3, marks=pytest.mark.exhaustive),
                               pytest.param(32, marks=pytest.mark.exhaustive),
                               pytest.param(65, marks=pytest.mark.exhaustive),
                               pytest.param(10000, marks=pytest.mark.exhaustive)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_sum_sizes(n, dtype):
    f, g = _pair(tv)
    rng = np.random.default_rng(n)
    x, dx = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    yf, dyf = f.jvp((x,), (dx,))
    yg, dyg = g.jvp((x,), (dx,))
    np.testing.assert_allclose([yf, dyf], [yg, dyg], rtol=RTOL[dtype])
    np.testing.assert_allclose(f(x), g(x), rtol=RTOL[dtype])
    if dtype is np.float32:
        assert np.asarray(yf).dtype == np.float32 and np.asarray(dyf).dtype == np.float32


def test_ints_and_scalars_only_fall_back():
    def ints(a):
        return np.sum(a * 2 + 1)
    f = fwdjit.fwdjit(ints, fuse=True)
    a = np.arange(5)
    assert f(a) == np.sum(a * 2 + 1)


@pytest.mark.exhaustive
@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sizes(n, dtype):
    f, g = _pair(rosen)
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    dx = np.ones(n, dtype)
    yf, dyf = f.jvp((x,), (dx,))
    yg, dyg = g.jvp((x,), (dx,))
    np.testing.assert_allclose([yf, dyf], [yg, dyg], rtol=RTOL[dtype])
    # against NumPy's pairwise sum: n * eps relative to the sum of |terms|
    terms = 100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2
    tol = max(n, 1) * np.finfo(dtype).eps * np.sum(np.abs(terms.astype(np.float64)))
    assert abs(float(yf) - float(np.sum(terms))) <= tol + 1e-30
