"""Vector mode (K directions per pass), Jacobians, gradients and second derivatives.

Every result is compared with the single-direction path (K directions must
equal K separate JVPs to 1e-12 relative in float64) and with central
differences (Jacobians, Hessians), in float64 and float32.
"""
import numpy as np
import pytest

from fwdjit import TangentError, fwdjit
from fwdjit.testing import numerical_jvp as _numerical_jvp
from fwdjit.testing import random_tangents
from tests.functions import CORPUS, lorenz_rk4

BY_NAME = {c.name: c for c in CORPUS}


def numerical_jvp(fn, args, tangents):
    """Central-difference reference: one array, or a tuple for tuple outputs."""
    paths, refs, _ = _numerical_jvp(fn, args, tangents)
    return refs[0] if paths == ["out"] else tuple(refs)
# one function per construct family: loops, views, callees (also in place), tuples, ints, matmul, ...
SELECTED = ["rosenbrock", "lorenz_rk4", "mlp_loss", "scalar_pow_active", "scalar_cond_expr", "np_where",
            "np_maximum_minimum", "red_max_min", "red_prod", "idx_view_write", "idx_2d_aug", "loop_break_continue",
            "early_return", "call_helper_inplace", "call_helper_tuple", "tuple_out", "shape_concat_stack",
            "sort_weighted", "heat_step", "power_iteration"]
SLOW = [c.name for c in CORPUS if c.name not in SELECTED and not c.mutates]


def _k_tangents(case, args, K, seed):
    per_k = [random_tangents(args, seed=seed + k) for k in range(K)]
    stacked = []
    for i in range(len(args)):
        if per_k[0][i] is None:
            stacked.append(None)
        else:
            stacked.append(np.stack([np.asarray(t[i]) for t in per_k]))
    return per_k, stacked


def _assert_batched_equals_single(name, dtype, K=3):
    case = BY_NAME[name]
    f = fwdjit(case.fn)
    args = case.args(dtype)
    per_k, stacked = _k_tangents(case, args, K, seed=11)
    if any(isinstance(a, tuple) for a in args):       # documented limitation: a clear error, at once
        with pytest.raises(TangentError, match="tuple argument .* not supported; pass None for it"):
            f.jvp(args, tuple(stacked), batched=True)
        return
    out, douts = f.jvp(args, tuple(stacked), batched=True)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for k in range(K):
        _, d = f.jvp(case.args(dtype), per_k[k])
        if isinstance(d, tuple):
            for o, (a, b) in enumerate(zip(douts, d)):
                if b is None:
                    continue
                np.testing.assert_allclose(np.asarray(a)[k], b, rtol=rtol, atol=rtol * 1e-3,
                                           err_msg=f"{name} output {o} direction {k}")
        else:
            np.testing.assert_allclose(np.asarray(douts)[k], d, rtol=rtol, atol=rtol * 1e-3,
                                       err_msg=f"{name} direction {k}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.exhaustive) if n == "mlp_loss" else n
                                  for n in SELECTED])      # mlp_loss: 23 s, checked in float64 by the corpus
def test_k_directions_equal_k_single_jvps_float64(name):
    if BY_NAME[name].mutates:
        pytest.skip("mutates its arguments: every call sees different inputs")
    _assert_batched_equals_single(name, np.float64)


@pytest.mark.parametrize("name", [pytest.param("mlp_loss", marks=pytest.mark.exhaustive), "lorenz_rk4",
                                  pytest.param("np_where", marks=pytest.mark.exhaustive), "idx_view_write"])
def test_k_directions_equal_k_single_jvps_float32(name):
    _assert_batched_equals_single(name, np.float32)


@pytest.mark.exhaustive
@pytest.mark.parametrize("name", SLOW)
def test_k_directions_whole_corpus(name):
    _assert_batched_equals_single(name, np.float64, K=2)


def test_vector_source_shows_each_direction():
    f = fwdjit(BY_NAME["scalar_poly"].fn)
    src = f.tangent_source_k((True, True), 2)
    assert "_0" in src and "_1" in src and "def scalar_poly_jvp2(" in src


def test_batched_input_errors():
    f = fwdjit(BY_NAME["rosenbrock"].fn)
    x = np.ones(8)
    with pytest.raises(TangentError, match="leading axis of K directions"):
        f.jvp((x,), (np.float64(1.0),), batched=True)
    with pytest.raises(TangentError, match="wrong shape"):
        f.jvp((x,), (np.ones((3, 7)),), batched=True)


# ------------------------------------------------------------------ Jacobians
def _fd_jacobian(fn, args, i):
    x = args[i]
    n = int(np.size(x))
    cols = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        t = [None] * len(args)
        t[i] = e.reshape(np.shape(x)) if isinstance(x, np.ndarray) else 1.0
        cols.append(numerical_jvp(fn, args, t))
    return cols


@pytest.mark.parametrize("name,argnum", [("rosenbrock", 0), ("la_matvec", 0), ("la_matvec", 1),
                                         ("gaussian_kernel", 0), ("np_trig", 0), ("tanh_rnn", 1)])
@pytest.mark.parametrize("chunk", [3, 16])
def test_jacfwd_matches_central_differences(name, argnum, chunk):
    case = BY_NAME[name]
    args = case.args(np.float64)
    if not isinstance(args[argnum], np.ndarray):
        pytest.skip("scalar argument")
    J = fwdjit.jacfwd(case.fn, argnums=argnum, chunk=chunk)(*args)
    cols = _fd_jacobian(case.fn, args, argnum)
    out_shape = np.shape(case.fn(*args))
    ref = np.moveaxis(np.array([np.asarray(c) for c in cols]), 0, -1).reshape(out_shape + np.shape(args[argnum]))
    np.testing.assert_allclose(J, ref, rtol=1e-7, atol=1e-9)


def lorenz_final_x(sigma, rho, beta, x0, y0, z0, dt, n):
    x, y, z = lorenz_rk4(sigma, rho, beta, x0, y0, z0, dt, n)
    return x


def test_grad_of_lorenz_wrt_parameters():
    args = BY_NAME["lorenz_rk4"].args(np.float64)
    final_x = lorenz_final_x
    g = fwdjit.grad(final_x, argnums=(0, 1, 2))(*args)
    for i in range(3):
        t = [None] * len(args)
        t[i] = 1.0
        assert np.isclose(g[i], numerical_jvp(final_x, args, t), rtol=1e-7)


@pytest.mark.parametrize("name,argnum", [("rosenbrock", 0),
                                         pytest.param("mlp_loss", 5, marks=pytest.mark.exhaustive)])  # b3
def test_jacfwd_float32(name, argnum):
    case = BY_NAME[name]
    args = case.args(np.float32)
    J = fwdjit.jacfwd(case.fn, argnums=argnum)(*args)
    assert J.dtype == np.float32 and J.shape == np.shape(args[argnum])
    ref = np.array(_fd_jacobian(case.fn, tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a
                                               for a in args), argnum))
    np.testing.assert_allclose(J, ref.reshape(J.shape), rtol=2e-3, atol=2e-5)


# ------------------------------------------------------------ second order
def quad_sin(x, A):
    return 0.5 * x @ A @ x + np.sum(np.sin(x) * x)


def test_hessian_exact():
    rng = np.random.default_rng(0)
    A = rng.random((5, 5))
    A = A + A.T
    x = rng.random(5)
    H = fwdjit.hessian(quad_sin)(x, A)
    exact = A + np.diag(2 * np.cos(x) - x * np.sin(x))
    np.testing.assert_allclose(H, exact, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["rosenbrock", "scalar_pow_active", "np_where", "loop_break_continue",
                                  "call_helper_tuple", "log_sum_exp"])
def test_vhv_matches_differences_of_jvps(name):
    case = BY_NAME[name]
    args = case.args(np.float64)
    v = random_tangents(args, seed=1)
    w = random_tangents(args, seed=2)
    second = fwdjit.vhv(case.fn, args, v, w)
    f = fwdjit(case.fn)

    def directional(*a):
        return f.jvp(a, v)[1]
    ref = numerical_jvp(directional, args, w)
    if isinstance(second, tuple):
        for s, r in zip(second, ref):
            np.testing.assert_allclose(s, r, rtol=1e-6, atol=1e-8)
    else:
        np.testing.assert_allclose(second, ref, rtol=1e-6, atol=1e-8)


# ------------------------------------------- JAX's names and conventions (issue 15)
def _quad_sin_hessian(x, A):
    return A + np.diag(2 * np.cos(x) - x * np.sin(x))


def test_hvp_is_hessian_times_vector():
    rng = np.random.default_rng(3)
    A = rng.random((5, 5))
    A = A + A.T
    x, v = rng.random(5), rng.standard_normal(5)
    Hv = fwdjit.hvp(quad_sin, (x, A), (v, None))                     # jvp(grad(f), primals, tangents)[1]
    assert Hv.shape == x.shape
    np.testing.assert_allclose(Hv, _quad_sin_hessian(x, A) @ v, rtol=1e-12, atol=1e-12)
    # the JAX cookbook's definition, with fwdjit's own grad and a central difference along v
    g = fwdjit.grad(quad_sin)
    ref = numerical_jvp(lambda x, A: g(x, A), (x, A), (v, None))
    np.testing.assert_allclose(Hv, ref, rtol=1e-7)


def mixed(x, a):
    return a * a * np.sum(np.sin(x) * x) + a * x[0]


def test_hvp_and_hessian_with_tuple_argnums():
    x, a = np.array([0.3, -0.4, 1.1]), 1.7
    v, da = np.array([1.0, 2.0, -1.0]), 0.5
    (Hxx, Hxa), (Hax, Haa) = fwdjit.hessian(mixed, argnums=(0, 1))(x, a)
    assert Hxx.shape == (3, 3) and Hxa.shape == (3,) and Hax.shape == (3,) and np.ndim(Haa) == 0
    exact_xx = a * a * np.diag(2 * np.cos(x) - x * np.sin(x))
    exact_xa = 2 * a * (np.sin(x) + x * np.cos(x)) + np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(Hxx, exact_xx, atol=1e-12)
    np.testing.assert_allclose(Hxa, exact_xa, rtol=1e-12)
    np.testing.assert_allclose(Hax, exact_xa, rtol=1e-12)
    assert np.isclose(Haa, 2 * np.sum(np.sin(x) * x), rtol=1e-12)
    hx, ha = fwdjit.hvp(mixed, (x, a), (v, da), argnums=(0, 1))
    np.testing.assert_allclose(hx, exact_xx @ v + exact_xa * da, rtol=1e-12)
    assert np.isclose(ha, exact_xa @ v + Haa * da, rtol=1e-12)
    assert isinstance(ha, np.float64)


def test_hvp_old_call_form_warns_and_returns_vhv():
    rng = np.random.default_rng(4)
    A = rng.random((4, 4))
    A = A + A.T
    x, v, w = rng.random(4), rng.standard_normal(4), rng.standard_normal(4)
    want = v @ _quad_sin_hessian(x, A) @ w
    assert np.isclose(fwdjit.vhv(quad_sin, (x, A), (v, None), (w, None)), want, rtol=1e-12)
    with pytest.warns(DeprecationWarning, match="fwdjit.vhv"):
        old = fwdjit.hvp(quad_sin, (x, A), (v, None), (w, None))
    assert np.isclose(old, want, rtol=1e-12)
    with pytest.warns(DeprecationWarning, match="fwdjit.vhv"):
        old = fwdjit.hvp(quad_sin, (x, A), v=(v, None), w=(w, None))       # the README's old keywords
    assert np.isclose(old, want, rtol=1e-12)


def test_hvp_needs_a_scalar_function():
    with pytest.raises(TangentError, match="must return one scalar"):
        fwdjit.hvp(BY_NAME["la_matvec"].fn, BY_NAME["la_matvec"].args(np.float64),
                   random_tangents(BY_NAME["la_matvec"].args(np.float64), seed=1))


def test_hessian_argnum_is_deprecated():
    x, a = np.array([0.3, -0.4, 1.1]), 1.7
    with pytest.warns(DeprecationWarning, match="argnums="):
        H = fwdjit.hessian(mixed, argnum=1)(x, a)
    assert np.isclose(H, fwdjit.hessian(mixed, argnums=1)(x, a)) and np.isclose(H, 2 * np.sum(np.sin(x) * x))
    with pytest.raises(TypeError, match="both"), pytest.warns(DeprecationWarning):
        fwdjit.hessian(mixed, argnums=1, argnum=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grad_of_a_scalar_argument_is_a_scalar_like_forward_grad(dtype):
    x, a = np.array([0.3, -0.4, 1.1], dtype), dtype(1.7)
    g = fwdjit.grad(mixed, argnums=1)(x, a)
    _, fg = fwdjit.forward_grad(mixed, (x, a), wrt=1, seed=0)
    assert type(g) is type(fg) is dtype and np.ndim(g) == 0
    gx, ga = fwdjit.grad(mixed, argnums=(0, 1))(x, a)
    assert gx.dtype == dtype and gx.shape == x.shape and type(ga) is dtype
    assert np.isclose(g, 2 * a * np.sum(np.sin(x) * x) + x[0], rtol=1e-6)
    assert isinstance(fwdjit.grad(mixed, argnums=1)(x.astype(np.float64), 1.7), float)   # a Python float in
