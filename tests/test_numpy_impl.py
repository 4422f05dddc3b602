"""NumPy forms Numba lacks, supplied by fwdjit (fwdjit.npimpl via the lower pass).

For each function and form: the primal equals NumPy (values, shape, scalar-ness,
dtype) and the JVP of every differentiable argument matches an independent
reference (``fwdjit.testing.check_jvp``: finite differences), in float64 and
float32.  The quick set has one case per function; the cross product of ndims
and axis forms is marked ``exhaustive``.
"""
import numpy as np
import pytest

import fwdjit
from fwdjit.errors import UnsupportedCall
from fwdjit.testing import check_jvp

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.uniform(0.5, 1.5, size=shape)


def distinct(*shape):
    """Values at least 0.1 apart: max, min and std are smooth within the finite-difference
    stencil's reach (each element moves by up to about 0.03), so the reference is reliable.
    With ``arr``'s uniform draws two elements now and then fell within that reach (a near tie:
    UnreliableReference, not a wrong derivative)."""
    n = int(np.prod(shape))
    return (0.5 + 0.1 * RNG.permutation(n) + RNG.uniform(0.0, 0.01, size=n)).reshape(shape)


# ------------------------------------------------------------ the functions
def sum_tuple_keep(x):
    return np.sum(x, axis=(0, -1), keepdims=True) * 2.0


def mean_axis(x):
    return np.mean(x, axis=-1)


def mean_all_keep(x):
    return np.mean(x, axis=None, keepdims=True)


def prod_axis(x):
    return np.prod(x, axis=0)


def max_axis(x):
    return np.max(x, axis=1)


def amin_keep(x):
    return np.amin(x, axis=-1, keepdims=True)


def method_forms(x):
    return x.sum(axis=1) + x.mean(1) + x.max(axis=1) + x.min(axis=1) + x.prod(axis=1)


def defaults_spelled_out(x):
    # NumPy's defaults written out: Numba's reductions take no keepdims (and only sum an axis)
    return (np.mean(x, axis=None, keepdims=False) + x.max(axis=None, keepdims=False)
            + np.sum(x, axis=1, keepdims=False).sum() + np.prod(x, None, keepdims=False))


def var_std(x):
    return np.var(x, axis=0, ddof=1) + np.std(x, axis=0) + np.var(x) + np.std(x, ddof=1)


def var_keep(x):
    return np.var(x, axis=(0, 1), keepdims=True)


def cumsum_cumprod(x):
    return np.cumsum(x, axis=-1) + np.cumprod(x, axis=0) + np.cumprod(x, axis=-1)


def cumprod_flat(x):
    return np.cumprod(x)


def einsum_matmul(a, b):
    return np.einsum("ij,jk->ik", a, b)


def einsum_implicit_trace(a, b):
    return np.einsum("ii", a) + np.einsum("ij,ji", a, b)


def einsum_three(a, b, c):
    return np.einsum("ij,jk,k->i", a, b, c)


def einsum_batch(a, b):
    return np.einsum("bij,bjk->bik", a, b)


def tensordot_int(a, b):
    return np.tensordot(a, b, 1)


def tensordot_pairs(a, b):
    return np.tensordot(a, b, axes=((1, 2), (1, 0)))


def matmul_2d(a, b):
    return np.matmul(a, b)


def matmul_stack(a, b):
    return np.matmul(a, b)


def inner_forms(a, b):
    return np.inner(a, b)


def dot_scalar(s, v):
    return np.dot(s, v) + np.dot(v, s)


def dot_3d(a, v):
    return np.dot(a, v)


def kron_scalars(s, t):
    return np.kron(s, t)


def cross_axis(a, b):
    return np.cross(a, b, axis=0)


def cross_axes(a, b):
    return np.cross(a, b, axisa=-1, axisb=0, axisc=0)


def squeeze_axis(x):
    return np.squeeze(x, axis=1) + x.squeeze(1)


def rollaxis_fn(x):
    return np.rollaxis(x, 2) * 1.0 + np.rollaxis(x, 0, 3).sum()


def repeat_axis(x):
    return np.repeat(x, 2, axis=1)


def diff_axis(x):
    return np.diff(x, axis=0) + np.diff(x, n=2, axis=-1).sum()


def gradient_1d(x, h):
    return np.gradient(x, h)


def gradient_axis(x):
    return np.gradient(x, 0.5, axis=1)


def gradient_all(x):
    gy, gx = np.gradient(x)         # NumPy: a tuple, one gradient per axis
    return gy * gx


def gradient_axes(x, h):
    return np.gradient(x, h, axis=(-1, 0))      # in the order given


def r_concat(a, b):
    return np.r_[a, b, 2.0]


def c_concat(a, b):
    return np.c_[a, b]


QUICK = [
    (sum_tuple_keep, lambda: (arr(2, 3, 4),)),
    (mean_axis, lambda: (arr(2, 3),)),
    (mean_all_keep, lambda: (arr(2, 3),)),
    (prod_axis, lambda: (arr(3, 2),)),
    (max_axis, lambda: (distinct(3, 4),)),
    (amin_keep, lambda: (distinct(2, 3, 4),)),
    (method_forms, lambda: (distinct(3, 4),)),
    (defaults_spelled_out, lambda: (distinct(3, 4),)),
    (var_std, lambda: (arr(4, 3),)),
    (var_keep, lambda: (arr(2, 3, 2),)),
    (cumsum_cumprod, lambda: (arr(3, 4),)),
    (cumprod_flat, lambda: (arr(2, 3),)),
    (einsum_matmul, lambda: (arr(2, 3), arr(3, 4))),
    (einsum_implicit_trace, lambda: (arr(3, 3), arr(3, 3))),
    (einsum_three, lambda: (arr(2, 3), arr(3, 4), arr(4))),
    (tensordot_pairs, lambda: (arr(2, 3, 4), arr(4, 3, 2))),
    (matmul_2d, lambda: (arr(2, 3), arr(3, 4))),
    (matmul_stack, lambda: (arr(2, 2, 3), arr(2, 3, 4))),
    (inner_forms, lambda: (arr(2, 3), arr(4, 3))),
    (dot_scalar, lambda: (1.5, arr(3))),
    (dot_3d, lambda: (arr(2, 3, 4), arr(4))),
    (kron_scalars, lambda: (1.5, 2.5)),
    (cross_axes, lambda: (arr(4, 3), arr(3, 4))),
    (squeeze_axis, lambda: (arr(2, 1, 3),)),
    (rollaxis_fn, lambda: (arr(2, 3, 4),)),
    (repeat_axis, lambda: (arr(2, 3),)),
    (diff_axis, lambda: (arr(4, 5),)),
    (gradient_1d, lambda: (arr(6), 0.5)),
    (gradient_axis, lambda: (arr(3, 5),)),
    (gradient_all, lambda: (arr(4, 5),)),
    (gradient_axes, lambda: (arr(3, 4, 5), 0.7)),
    (r_concat, lambda: (arr(3), arr(2))),
    (c_concat, lambda: (arr(3), arr(3, 2))),
]


def _cast(args, dtype):
    return tuple(np.asarray(a, dtype) if isinstance(a, np.ndarray) else a for a in args)


def _check(fn, args, dtype):
    f = fwdjit.fwdjit(fn)
    args = _cast(args, dtype)
    got, ref = f(*args), fn(*args)
    assert np.shape(got) == np.shape(ref)
    assert np.ndim(got) == np.ndim(ref)
    assert np.asarray(got).dtype == np.asarray(ref).dtype, (np.asarray(got).dtype, np.asarray(ref).dtype)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    check_jvp(f, args)


@pytest.mark.parametrize("fn,make", QUICK, ids=[f.__name__ for f, _ in QUICK])
def test_primal_and_jvp_float64(fn, make):
    _check(fn, make(), np.float64)


@pytest.mark.parametrize("fn,make", QUICK[::3], ids=[f.__name__ for f, _ in QUICK[::3]])
def test_primal_and_jvp_float32(fn, make):
    _check(fn, make(), np.float32)


@pytest.mark.exhaustive
@pytest.mark.parametrize("fn,make", QUICK, ids=[f.__name__ for f, _ in QUICK])
def test_primal_and_jvp_float32_all(fn, make):
    _check(fn, make(), np.float32)


def r_mixed(a, n):
    return np.r_[a, 2.0, -1, a * 3.0] * n


def test_r_numbers_are_weak_scalars():
    """A number written in np.r_[...] takes the float array's dtype (NumPy 2's weak scalars): float32
    arrays give float32, an int array gives float64, as NumPy; the numbers carry no tangent."""
    f = fwdjit.fwdjit(r_mixed)
    for a in (arr(3).astype(np.float32), arr(3)):
        got, ref = f(a, 2.0), r_mixed(a, 2.0)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-6)
        check_jvp(f, (a, 2.0))
    ints = np.arange(3)
    assert fwdjit.fwdjit(r_concat)(ints, ints).dtype == r_concat(ints, ints).dtype == np.float64


# ----------------------------------------- the cross product of ndims and axes
def _axes_forms(ndim):
    forms = [None] + list(range(-ndim, ndim))
    if ndim >= 2:
        forms += [(0, ndim - 1), tuple(range(ndim))]
    return forms


def _make_reduction(op, axis, keepdims):
    src = (f"def red(x):\n    return np.{op}(x, axis={axis!r}, keepdims={keepdims})\n")
    import linecache
    name = f"<npimpl-{op}-{axis}-{keepdims}>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    ns = {"np": np}
    exec(compile(src, name, "exec"), ns)
    return ns["red"]


EXHAUSTIVE = [(op, ndim, axis, keep) for op in ("sum", "mean", "prod", "max", "min", "var", "std")
              for ndim in (1, 2, 3) for axis in _axes_forms(ndim) for keep in (False, True)]


@pytest.mark.exhaustive
@pytest.mark.parametrize("op,ndim,axis,keep", EXHAUSTIVE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_forms(op, ndim, axis, keep, dtype):
    _check(_make_reduction(op, axis, keep), (distinct(*(2, 3, 4)[:ndim]),), dtype)


# ---------------------------------------------------------------- refusals
def variable_axis(x, k):
    return np.sum(x, axis=k, keepdims=True)


def squeeze_no_axis(x):
    return np.squeeze(x)


def r_slice(x):
    return np.r_[x, 0:]          # a range needs its end (np.r_[x, 0:3] is np.arange(0, 3))


def einsum_ellipsis(a):
    return np.einsum("...ii", a)


def sum_dtype(x):
    return np.sum(x, axis=0, dtype=np.float32)


def roll_axes(x):
    return np.roll(x, (1, 2), axis=(0, 1))


@pytest.mark.parametrize("fn,words", [(variable_axis, "axis must be a literal"),
                                      (squeeze_no_axis, "np.squeeze without axis"),
                                      (r_slice, "slice without an end"), (einsum_ellipsis, "ellipsis"),
                                      (sum_dtype, "dtype"), (roll_axes, "np.roll over several axes")])
def test_refused_with_a_located_error(fn, words):
    with pytest.raises(UnsupportedCall) as exc:
        fwdjit.fwdjit(fn)
    e = exc.value
    assert words in str(e)
    assert e.filename.endswith("test_numpy_impl.py") and e.lineno == fn.__code__.co_firstlineno + 1
    assert e.hint


def test_second_order_through_reductions():
    """The Hessian of code whose reductions take ``axis`` (fwdjit's own implementations) against
    central differences of its gradient, along a random direction."""
    def g(x):
        return np.sum(np.mean(x, axis=0) ** 2) + np.var(x, axis=1).sum()
    x = arr(3, 4)
    H = fwdjit.hessian(g)(x)
    assert H.shape == (3, 4, 3, 4)
    v = RNG.normal(size=x.shape)
    eps = 1e-5
    gx = fwdjit.grad(g)
    fd = (gx(x + eps * v) - gx(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.tensordot(H, v, axes=2), fd, rtol=1e-5, atol=1e-6)


# ------------------------------------- shapes that do not agree, empty axes
# The generated loops take each extent from one operand and Numba does not
# bounds-check: without the run-time checks these read out of bounds (garbage).
def tensordot_1(a, b):
    return np.tensordot(a, b, 1)


def inner_nd(a, b):
    return np.inner(a, b)


def dot_nd(a, b):
    return np.dot(a, b)


def einsum_diag(a, b):
    return np.einsum("ii->i", a) * b


def amax_axis(x, y):
    return np.amax(x, axis=-1) * y


def min_axes_keep(x, y):
    return np.min(x, axis=(0, 1), keepdims=True) * y


def max_method(x, y):
    return x.max(axis=1) * y


MISMATCH = [
    (einsum_matmul, lambda: (arr(2, 3), arr(4, 5))),
    (einsum_batch, lambda: (arr(2, 3, 4), arr(3, 4, 5))),      # batch 2 vs 3
    (einsum_batch, lambda: (arr(2, 3, 4), arr(2, 5, 5))),      # contraction 4 vs 5
    (einsum_diag, lambda: (arr(3, 4), arr(3))),
    (tensordot_1, lambda: (arr(2, 3), arr(4, 5))),
    (tensordot_pairs, lambda: (arr(2, 3, 4), arr(4, 2, 2))),
    (matmul_stack, lambda: (arr(2, 3, 4), arr(2, 5, 3))),      # contraction 4 vs 5
    (matmul_stack, lambda: (arr(2, 3, 4), arr(3, 4, 3))),      # batch 2 vs 3
    (inner_nd, lambda: (arr(2, 3), arr(4, 5))),
    (dot_nd, lambda: (arr(2, 3, 4), arr(5, 2))),
    (cross_axis, lambda: (arr(3, 4), arr(3, 5))),
    (cross_axes, lambda: (arr(4, 3), arr(3, 5))),
]
EMPTY = [
    (max_axis, lambda: (arr(3, 0),)),
    (amax_axis, lambda: (arr(2, 0), arr(2))),
    (min_axes_keep, lambda: (arr(2, 0, 3), arr(3))),
    (max_method, lambda: (arr(0, 0), 1.0)),
    (amin_keep, lambda: (arr(3, 0),)),
]


def _numpy_error(fn, args):
    try:
        fn(*args)
    except Exception as exc:        # noqa: BLE001
        return type(exc)
    raise AssertionError(f"NumPy accepts {fn.__name__} of {[np.shape(a) for a in args]}")


@pytest.mark.parametrize("fn,make", MISMATCH + EMPTY,
                         ids=[f"mismatch-{f.__name__}-{k}" for k, (f, _) in enumerate(MISMATCH)]
                         + [f"empty-{f.__name__}" for f, _ in EMPTY])
def test_shapes_that_do_not_agree_raise_as_numpy(fn, make):
    args = make()
    err = _numpy_error(fn, args)
    assert err is ValueError
    f = fwdjit.fwdjit(fn)
    with pytest.raises(err):
        f(*args)
    tangents = tuple(np.ones_like(a) if isinstance(a, np.ndarray) else 1.0 for a in args)
    with pytest.raises(err):
        f.jvp(args, tangents)


@pytest.mark.parametrize("fn,make", [(matmul_stack, lambda: (arr(2, 3, 4), arr(2, 4, 5))),
                                     (einsum_diag, lambda: (arr(3, 3), arr(3))),
                                     (cross_axes, lambda: (arr(4, 3), arr(3, 4))),
                                     (min_axes_keep, lambda: (arr(2, 3, 0), arr(0)))],
                         ids=["mismatch-ok-matmul", "mismatch-ok-einsum", "mismatch-ok-cross", "empty-ok-min"])
def test_agreeing_shapes_still_give_numpy_values(fn, make):
    args = make()
    got, ref = fwdjit.fwdjit(fn)(*args), fn(*args)
    assert np.shape(got) == np.shape(ref)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
