"""Numerics at the edges: NaN/inf, domain edges, overflow, int arguments, odd array layouts.

The rule everywhere: no crash and no silent garbage.  A JVP gives either the
mathematically defined value, or NaN/inf exactly where the derivative does
not exist or is infinite (the README section "Numerics at the edges" lists
them), like NumPy's own ``error_model="numpy"`` arithmetic (no
ZeroDivisionError: ``1.0 / 0.0`` is ``inf``).
"""
import math
import os
import sys
import warnings

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fwdjit import FwdjitError, TangentError, fwdjit  # noqa: E402

nan, inf = float("nan"), float("inf")


def sinx(x):
    return np.sin(x) * x


def expneg(x):
    return np.exp(-x)


def tanh_(x):
    return np.tanh(x)


def sqrt_(x):
    return np.sqrt(x)


def msqrt(x):
    return math.sqrt(x)


def log_(x):
    return np.log(x)


def pow2(x):
    return x ** 2


def powh(x):
    return x ** 0.5


def powxy(x, y):
    return x ** y


def div(x, y):
    return x / y


def exp_(x):
    return np.exp(x)


def asin_(x):
    return np.arcsin(x)


def abs_(x):
    return abs(x)


def max2(x, y):
    return max(x, y)


def mul2(x):
    return x * 2.0


def sumsin(x):
    return np.sum(np.sin(x))


def sumsin_vec(x):
    return np.sin(x) * 2.0


def matvec(W, x):
    return np.tanh(W @ x)


def write_first(x):
    x[0] = x[0] * 2.0
    return np.sum(x)


def maxv(x):
    return np.max(x)


def norm(x):
    return np.linalg.norm(x)


def hyp(x, y):
    return np.hypot(x, y)


def loop_sum(x):
    s = 0.0
    for i in range(len(x)):
        s += x[i] * x[i]
    return s


_F = {}


def J(fn, primals, tangents):
    f = _F.get(fn)
    if f is None:
        f = _F[fn] = fwdjit(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f.jvp(primals, tangents)


def same(a, b):
    """Equal, NaN equal to NaN, -0.0 equal to 0.0."""
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


# ------------------------------------------------------------- NaN and inf
@pytest.mark.parametrize("fn,x,dx,want", [
    pytest.param(sinx, nan, 1.0, (nan, nan), id="nan-in-nan-out"),
    pytest.param(sinx, 0.5, nan, (np.sin(0.5) * 0.5, nan), id="nan-tangent"),
    pytest.param(sinx, inf, 1.0, (nan, nan), id="sin-inf"),
    pytest.param(expneg, inf, 1.0, (0.0, 0.0), id="exp-minus-inf"),
    pytest.param(tanh_, inf, 1.0, (1.0, 0.0), id="tanh-inf"),
    pytest.param(tanh_, -inf, 1.0, (-1.0, 0.0), id="tanh-minus-inf"),
])
def test_nan_inf_inputs(fn, x, dx, want):
    assert same(J(fn, (x,), (dx,)), want)


def test_nan_in_array_max_picks_the_nan_element():
    """np.max propagates NaN (like NumPy); its tangent is that of the (first) NaN element."""
    y, dy = J(maxv, (np.array([1.0, nan, 3.0]),), (np.array([1.0, 2.0, 3.0]),))
    assert np.isnan(y) and dy == 2.0


# --------------------------------------------------------------- domain edges
@pytest.mark.parametrize("fn,args,tans,want", [
    pytest.param(sqrt_, (0.0,), (1.0,), (0.0, inf), id="sqrt0"),
    pytest.param(sqrt_, (0.0,), (0.0,), (0.0, nan), id="sqrt0-zero-tangent"),
    pytest.param(sqrt_, (-1.0,), (1.0,), (nan, nan), id="sqrt-negative"),
    pytest.param(msqrt, (-1.0,), (1.0,), (nan, nan), id="math.sqrt-negative-no-exception"),
    pytest.param(log_, (0.0,), (1.0,), (-inf, inf), id="log0"),
    pytest.param(asin_, (1.0,), (1.0,), (np.pi / 2, inf), id="arcsin1"),
    pytest.param(pow2, (0.0,), (1.0,), (0.0, 0.0), id="x**2-at-0"),
    pytest.param(powh, (0.0,), (1.0,), (0.0, inf), id="x**0.5-at-0"),
    pytest.param(powxy, (0.0, 2.0), (1.0, 1.0), (0.0, 0.0), id="0**y-dy-is-0"),
    pytest.param(powxy, (0.0, 0.0), (1.0, 1.0), (1.0, nan), id="0**0"),
    pytest.param(powxy, (-2.0, 2.0), (1.0, None), (4.0, -4.0), id="negative-base-const-exp"),
    pytest.param(powxy, (-2.0, 2.0), (1.0, 1.0), (4.0, nan), id="negative-base-active-exp"),
    pytest.param(powxy, (-8.0, 1.0 / 3.0), (1.0, None), (nan, nan), id="negative-base-fractional"),
    pytest.param(powxy, (0.0, -1.0), (1.0, None), (inf, -inf), id="0**-1"),
    pytest.param(div, (1.0, 0.0), (1.0, 1.0), (inf, -inf), id="x/0"),
    pytest.param(div, (0.0, 0.0), (1.0, 1.0), (nan, nan), id="0/0"),
    pytest.param(abs_, (0.0,), (1.0,), (0.0, 0.0), id="abs0-sign-convention"),
    pytest.param(max2, (1.0, 1.0), (1.0, 5.0), (1.0, 1.0), id="max-tie-first-wins"),
    pytest.param(hyp, (0.0, 0.0), (1.0, 1.0), (0.0, nan), id="hypot-at-origin"),
])
def test_domain_edges(fn, args, tans, want):
    assert same(J(fn, args, tans), want)


def test_norm_at_zero_is_nan():
    y, dy = J(norm, (np.zeros(3),), (np.ones(3),))
    assert y == 0.0 and np.isnan(dy)


def test_outside_the_domain_the_primal_is_nan():
    """log(-1): the primal is NaN; the tangent is the rule's value dx/x (as in JAX), not a second NaN."""
    y, dy = J(log_, (-1.0,), (1.0,))
    assert np.isnan(y) and dy == -1.0


def test_python_semantics_that_differ():
    """Where plain Python raises or goes complex, compiled code follows NumPy."""
    with pytest.raises(ZeroDivisionError):
        div(1.0, 0.0)
    assert isinstance((-8.0) ** (1.0 / 3.0), complex)
    assert same(J(div, (1.0, 0.0), (1.0, None)), (inf, inf))
    assert np.isnan(J(powxy, (-8.0, 1.0 / 3.0), (None, None))[0])


# ------------------------------------------------------------------ overflow
def test_tangent_overflow_gives_inf_not_an_error():
    y, dy = J(exp_, (700.0,), (1e10,))
    assert np.isfinite(y) and dy == inf
    y, dy = J(exp_, (710.0,), (1.0,))
    assert y == inf and dy == inf


def test_overflow_in_array_tangent():
    y, dy = J(sumsin_vec, (np.array([0.0, 1.0]),), (np.array([1e308, 1.0]),))
    assert dy[0] == inf and np.isfinite(dy[1])


# ---------------------------------------------------- int where floats expected
def test_python_int_for_float_parameter():
    assert fwdjit(mul2)(3) == 6.0
    assert J(mul2, (3,), (None,)) == (6.0, 0.0)
    with pytest.raises(TangentError) as info:
        J(mul2, (3,), (1.0,))
    msg = str(info.value)
    assert "'x'" in msg and "int" in msg and "None" in msg and "3.0" not in msg


def test_int_array_without_tangent():
    y, dy = J(sumsin, (np.arange(3),), (None,))
    assert y == pytest.approx(np.sum(np.sin(np.arange(3)))) and dy == 0.0


def test_int_array_with_int_tangent_is_differentiated():
    y, dy = J(sumsin, (np.arange(3),), (np.ones(3, dtype=np.int64),))
    assert dy == pytest.approx(np.sum(np.cos(np.arange(3))))


def test_int_array_with_float_tangent():
    x, t = np.arange(3), np.array([1.0, 0.5, 0.25])
    try:
        y, dy = J(sumsin, (x,), (t,))
    except TangentError as exc:
        msg = str(exc)
        assert "like the primal" not in msg and "expected" not in msg, msg   # no asking for an int tangent
        assert "pass None" in msg and "astype(np.float64)" in msg and "'x'" in msg, msg
    else:
        assert dy == pytest.approx(np.sum(np.cos(x) * t))


def test_bool_array_argument():
    y, dy = J(sumsin, (np.array([True, False]),), (None,))
    assert y == pytest.approx(np.sin(1.0)) and dy == 0.0


def test_float32_primal_with_python_float_tangent():
    y, dy = J(mul2, (np.float32(2.0),), (1.0,))
    assert y == 4.0 and dy == 2.0
    assert np.asarray(y).dtype == np.float32 and np.asarray(dy).dtype == np.float32


# ------------------------------------------------------- array layouts / flags
def _ref_matvec(W, x, dW, dx):
    y = np.tanh(W @ x)
    return y, (1 - y ** 2) * (dW @ x + W @ dx)


@pytest.mark.parametrize("layout", ["strided", "transposed", "fortran", "negative-stride"])
def test_non_contiguous_inputs(layout):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((8, 8)) * 0.3
    xb = rng.standard_normal(8)
    if layout == "strided":
        W, x, dW, dx = base[::2, ::2], xb[::2], base[1::2, 1::2], xb[1::2]
    elif layout == "transposed":
        W, x, dW, dx = base[:4, :4].T, xb[:4], base[4:, 4:].T, xb[4:]
    elif layout == "fortran":
        W, x, dW, dx = np.asfortranarray(base[:4, :4]), xb[:4], np.asfortranarray(base[4:, 4:]), xb[4:]
    else:
        W, x, dW, dx = base[::-2, ::-2], xb[::-2], base[-2::-2, -2::-2], xb[-2::-2]
    assert not (W.flags.c_contiguous and x.flags.c_contiguous)
    y, dy = J(matvec, (W, x), (dW, dx))
    ry, rdy = _ref_matvec(W, x, dW, dx)
    np.testing.assert_allclose(y, ry, rtol=1e-12)
    np.testing.assert_allclose(dy, rdy, rtol=1e-12)
    # and the inputs are untouched
    y2, dy2 = J(matvec, (W.copy(), x.copy()), (dW.copy(), dx.copy()))
    np.testing.assert_allclose(dy, dy2, rtol=1e-14)


def test_strided_input_in_a_loop():
    x = np.linspace(-1, 1, 9)
    y, dy = J(loop_sum, (x[::3],), (np.ones(9)[::3],))
    assert y == pytest.approx(np.sum(x[::3] ** 2)) and dy == pytest.approx(np.sum(2 * x[::3]))


def test_read_only_inputs_and_tangents():
    x = np.linspace(-1, 1, 5)
    t = np.ones(5)
    x.flags.writeable = False
    t.flags.writeable = False
    y, dy = J(sumsin, (x,), (t,))
    assert dy == pytest.approx(np.sum(np.cos(x)))


def test_broadcast_view_input():
    x = np.broadcast_to(0.5, (4,))          # zero strides, read-only
    y, dy = J(sumsin, (x,), (np.ones(4),))
    assert y == pytest.approx(4 * np.sin(0.5)) and dy == pytest.approx(4 * np.cos(0.5))


def test_writing_into_a_read_only_input_is_a_clear_error():
    x = np.linspace(-1, 1, 5)
    x.flags.writeable = False
    with pytest.raises(FwdjitError) as info:
        J(write_first, (x,), (np.ones(5),))
    assert "write_first" in str(info.value)
    # the same call with a writable array works, and writes through both arrays like the primal
    xw, tw = np.linspace(-1, 1, 5), np.ones(5)
    y, dy = J(write_first, (xw, ), (tw,))
    assert xw[0] == -2.0 and tw[0] == 2.0 and dy == pytest.approx(6.0)


def test_empty_and_zero_d_arrays():
    assert J(sumsin, (np.zeros(0),), (np.zeros(0),)) == (0.0, 0.0)
    with pytest.raises(ValueError):                 # like NumPy: max of an empty array
        J(maxv, (np.zeros(0),), (np.zeros(0),))
    y, dy = J(sumsin, (np.array(0.5),), (np.array(1.0),))
    assert y == pytest.approx(np.sin(0.5)) and dy == pytest.approx(np.cos(0.5))


# ------------------------------------------- float32 code Numba cannot type
def test_float32_twin_falls_back_to_numba_rules_with_a_warning(tmp_path):
    """A float32 call whose NumPy-2-rules version does not type runs with numba.njit's rules.

    The program (fuzzer seed 161) keeps ``x`` float32 under NumPy 2 rules, then a
    loop rebinds it to a float64: Numba cannot unify ``np.full(4, x)``.  fwdjit warns
    once, and the primal and the JVP still agree with Python and finite differences.
    """
    from fwdjit import Float32PromotionWarning
    from fwdjit.testing import check_jvp
    from tests.fuzz import regress
    mod = regress.load_regression(os.path.join(_ROOT, "tests", "fuzz", "regressions",
                                               "f32_twin_untypable_fallback.py"), str(tmp_path))
    f = fwdjit(mod.f, cache=False)
    args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in mod.ARGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = f(*args)
    want = mod.f(*tuple(a.copy() if isinstance(a, np.ndarray) else a for a in mod.ARGS))
    msgs = [str(w.message) for w in caught if issubclass(w.category, Float32PromotionWarning)]
    assert len(msgs) == 1 and "Cannot unify" in msgs[0] and "float32" in msgs[0], msgs
    assert np.isclose(float(got), float(want), rtol=1e-5, atol=1e-6), (got, want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Float32PromotionWarning)
        regress.run_regression(mod, fj=f)


def fb_asinh(M, x, n):
    x += math.cos(np.cbrt(2.0 + np.sin(x)))
    for k in range(n):
        if 2.0 > x:
            x = math.acos(0.7 * np.cos(x))
        else:
            x += x
    u = np.full(4, x)       # float32 or float64 by path under NumPy 2 rules: the twin does not type
    return math.asinh(M[0, 0])


def test_float32_fallback_tangent_has_the_primal_dtype():
    """In the fallback (Numba's rules), math.asinh(float32) is float32 but its tangent float64:
    the tangent is cast to the primal's dtype (fuzz seed 209270), and agrees with differences."""
    from fwdjit import Float32PromotionWarning
    from fwdjit.testing import check_jvp
    M = np.array([[0.3, -0.2], [0.5, 0.1]], dtype=np.float32)
    f = fwdjit(fb_asinh, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Float32PromotionWarning)
        y, dy = f.jvp((M, np.float32(0.4), 2), (np.ones((2, 2), np.float32), None, None))
        assert np.asarray(dy).dtype == np.asarray(y).dtype, (type(y), type(dy))
        assert float(dy) == pytest.approx(1.0 / math.sqrt(1.0 + 0.3 ** 2), rel=1e-6)
        check_jvp(f, (M, np.float32(0.4), 2), argnums=0, check_dtype=False)


# -------------------------------------------- in-place updates through overlapping views
def ov_shift_add(u):
    u[1:] += u[:-1]
    return u * 1.0


def ov_flip_add(u):
    u += np.flip(u)
    return u * 1.0


def ov_shift_mul(u, x):
    w = u * x
    w[1:] *= w[:-1]
    return w


def ov_reverse_div(u):
    u[::2] /= 1.0 + u[::-2] ** 2
    return np.sum(u * u)


def ov_transpose_sub(A):
    A -= A.T
    return A * 1.0


def ov_alias_shift_add(v):
    # fuzz seed 208661: u is v, so v[::-1][1:] overlaps u[1:] as u[::-1][1:] would
    u = v
    u[1:] += v[::-1][1:]
    return u * 1.0


def ov_alias_reversed_view_add(v, x):
    # u is a reversed view of v: even the plain name v overlaps it, shifted
    w = v * x
    u = w[::-1]
    u += w
    return w * 1.0


@pytest.mark.parametrize("fn,args", [
    (ov_alias_shift_add, (np.array([0.96, -0.59, -0.02, -1.13, -1.08]),)),
    (ov_alias_reversed_view_add, (np.array([0.5, -1.0, 2.0, 0.25, 1.5]), 0.7)),
    (ov_shift_add, (np.array([0.5, -1.0, 2.0, 0.25]),)),
    (ov_flip_add, (np.array([0.5, -1.0, 2.0, 0.25, 3.0]),)),
    (ov_shift_mul, (np.array([0.5, -1.5, 2.0, 0.75]), 1.3)),
    (ov_reverse_div, (np.array([0.5, -1.0, 2.0, 0.25, 1.5]),)),
    (ov_transpose_sub, (np.arange(9.0).reshape(3, 3) ** 0.5,)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_in_place_update_through_an_overlapping_view_follows_numpy(fn, args):
    """NumPy reads the right-hand side as if copied first; Numba alone would not (the primal and the JVP agree with NumPy)."""
    from fwdjit.testing import check_jvp
    copy = lambda a: tuple(x.copy() if isinstance(x, np.ndarray) else x for x in a)  # noqa: E731
    want = fn(*copy(args))
    got = fwdjit(fn)(*copy(args))
    np.testing.assert_allclose(got, want, rtol=1e-13)
    check_jvp(fwdjit(fn), copy(args))


# ------------------------------------------------- writes through views made by calls
def view_reshape_write(v, w):
    u = np.reshape(v, (2, 3))
    u[0] *= w[0]
    return v * 1.0


def view_transpose_write(v, w):
    u = np.transpose(v)
    u[1] += w
    return np.sum(v * v)


def view_flip_write(v, w):
    u = np.flip(v)
    u[0] = w[1] * 2.0
    return v * 1.0


@pytest.mark.parametrize("fn,args", [
    (view_reshape_write, (np.arange(6.0) + 1, np.array([0.5, 2.0]))),
    (view_transpose_write, (np.arange(6.0).reshape(2, 3) ** 0.5, np.array([0.5, 2.0]))),
    (view_flip_write, (np.arange(4.0), np.array([0.5, 2.0]))),
], ids=lambda v: getattr(v, "__name__", ""))
def test_write_through_a_view_made_by_a_call_reaches_its_base(fn, args):
    """``u = np.flip(v); u[0] = e(w)`` changes ``v``: its tangent must depend on ``w`` (was a silent zero)."""
    from fwdjit.testing import check_jvp
    check_jvp(fwdjit(fn), tuple(a.copy() for a in args))


def norm_reversed(v, x):
    return np.linalg.norm(v[::-1]) * x


def norm_strided_back(v):
    w = v[::-2]
    return np.linalg.norm(w) + np.linalg.norm(v)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_norm_of_a_negative_stride_view(dtype):
    """Numba's np.linalg.norm gives 1.0 (or 5e45) for v[::-1]; fwdjit passes such views through a copy."""
    from fwdjit.testing import check_jvp
    v = np.array([0.62, -0.49, 0.2, 0.86, -1.23, -1.0], dtype=dtype)
    assert fwdjit(norm_reversed)(v, dtype(0.69)) == pytest.approx(norm_reversed(v, dtype(0.69)), rel=1e-6)
    check_jvp(fwdjit(norm_reversed), (v, dtype(0.69)))
    check_jvp(fwdjit(norm_strided_back), (v,))


# ------------------------------------------------- tuples holding non-numbers
def tuple_with_module(v, v1):
    u = (np, v1)            # fuzz seed 203512 (shrunk): fj.zero(np) did not type
    return v * u[1]


def test_tuple_holding_a_module_has_no_tangent_for_it():
    from fwdjit.testing import check_jvp
    args = (np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, -0.75]))
    check_jvp(fwdjit(tuple_with_module), args)
    check_jvp(fwdjit(tuple_with_module), tuple(a.astype(np.float32) for a in args))
