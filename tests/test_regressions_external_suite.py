"""Regressions found by running autograd's per-operation test suite (test_numpy.py, test_linalg.py,
test_systematic.py) against fwdjit.

Each test reproduces the case as that suite met it: a float64 gradient for a float32 argument,
InternalErrors of ``fj.zero`` on lists, the second derivatives of ``np.linalg.norm`` and ``np.prod`` refused,
and ``check_jvp`` failing on list outputs of arrays of different shapes.
"""
import numpy as np
import pytest

import fwdjit
from fwdjit.api import as_fwdjit
from fwdjit.testing import check_jvp

DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}


# ------------------------------------------------ the gradient has its argument's dtype (test_astype)
def sum_sin_as_float64(x):
    return np.sum(np.sin(x.astype("float64")))


def sin_as_float64(x):
    return np.sin(x.astype("float64"))


def sum_sin_as_float32(x):
    return np.sum(np.sin(x.astype("float32")))


def scalar_sin_as_float64(x):
    return np.sin(np.float64(x))


def sum_sin_times(x, y):
    return np.sum(np.sin(x.astype("float64")) * y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_of_a_float_array_has_the_arguments_dtype(dtype):
    # autograd's test_astype: grad(lambda x: np.sum(np.sin(x.astype("float64"))))(float32 x) is float32
    x = np.arange(3, dtype=dtype)
    expected = np.cos(x.astype(np.float64))
    g = fwdjit.grad(sum_sin_as_float64)(x)
    assert g.dtype == dtype and g.shape == (3,)
    np.testing.assert_allclose(g, expected, rtol=RTOL[dtype])
    J = fwdjit.jacfwd(sum_sin_as_float64)(x)
    assert J.dtype == dtype and J.shape == (3,)
    np.testing.assert_allclose(J, expected, rtol=RTOL[dtype])
    J = fwdjit.jacfwd(sin_as_float64)(x)                  # an array output: out.shape + x.shape
    assert J.dtype == dtype and J.shape == (3, 3)
    np.testing.assert_allclose(J, np.diag(expected), rtol=RTOL[dtype])
    H = fwdjit.hessian(sum_sin_as_float64)(x)
    assert H.dtype == dtype and H.shape == (3, 3)
    np.testing.assert_allclose(H, np.diag(-np.sin(x.astype(np.float64))), rtol=RTOL[dtype], atol=1e-7)
    Hv = fwdjit.hvp(sum_sin_as_float64, (x,), (np.ones(3, dtype),))
    assert Hv.dtype == dtype
    np.testing.assert_allclose(Hv, -np.sin(x.astype(np.float64)), rtol=RTOL[dtype], atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_of_a_float64_argument_through_float32_is_float64(dtype):
    # the other way round: a float32 computation of a float64 argument gives a float64 gradient
    x = np.arange(3, dtype=dtype)
    g = fwdjit.grad(sum_sin_as_float32)(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, np.cos(x.astype(np.float32)), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_of_a_float_scalar_has_the_arguments_dtype(dtype):
    x = dtype(0.5)
    g = fwdjit.grad(scalar_sin_as_float64)(x)
    assert type(g) is dtype
    assert g == pytest.approx(np.cos(0.5), rel=RTOL[dtype])
    J = fwdjit.jacfwd(scalar_sin_as_float64)(x)
    assert J.dtype == dtype and J.shape == ()
    assert float(J) == pytest.approx(np.cos(0.5), rel=RTOL[dtype])
    H = fwdjit.hessian(scalar_sin_as_float64)(x)
    assert type(H) is dtype
    assert H == pytest.approx(-np.sin(0.5), rel=RTOL[dtype])


def test_grad_of_several_arguments_each_has_its_own_dtype():
    x = np.arange(3, dtype=np.float32)
    y = np.linspace(1.0, 2.0, 3)                            # float64
    gx, gy = fwdjit.grad(sum_sin_times, argnums=(0, 1))(x, y)
    assert gx.dtype == np.float32 and gy.dtype == np.float64
    np.testing.assert_allclose(gx, np.cos(x.astype(np.float64)) * y, rtol=1e-6)
    np.testing.assert_allclose(gy, np.sin(x.astype(np.float64)), rtol=1e-12)


# ------------------------------------------------ fj.zero of a list (test_simple_append_list, test_split_2d)
def append_to_list(a0, a1):
    return np.append(a0, a1)           # a0 a Python list of floats


def split_in_two(a0):
    return np.split(a0, 2, axis=0)     # a list of arrays


@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaPendingDeprecationWarning")   # the reflected list
@pytest.mark.parametrize("dtype", DTYPES)
def test_append_to_a_list_differentiated_wrt_the_value(dtype):
    # autograd's test_simple_append_list: the tangent code appended to fj.zero(list of floats)
    a0, a1 = [1.0, 2.0, 3.0], dtype(4.0)
    out, dout = fwdjit.jvp(append_to_list, (a0, a1), (None, dtype(1.0)))
    np.testing.assert_array_equal(out, np.append(a0, a1))
    np.testing.assert_array_equal(dout, [0.0, 0.0, 0.0, 1.0])
    check_jvp(append_to_list, (a0, a1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_second_derivative_of_split_into_a_list(dtype):
    # autograd's test_split_2d (order 2): the inactive output np.split(dx, 2) had the tangent fj.zero(list)
    rng = np.random.default_rng(0)
    x, dx = rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal((4, 3)).astype(dtype)
    tf = as_fwdjit(split_in_two).tangent_fwdjit((True,))
    check_jvp(tf, (x, dx))
    (out, dout), (t_out, t_dout) = tf.jvp((x, dx), (dx, None))
    assert isinstance(t_dout, list) and len(t_dout) == 2
    for z in t_dout:
        assert z.dtype == dtype and z.shape == (2, 3) and not z.any()
    for got, want in zip(t_out, np.split(dx, 2, axis=0)):
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------ the second derivative of np.linalg.norm (test_vector_2norm)
def norm_of(x):
    return np.linalg.norm(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_second_derivative_of_the_vector_2norm(dtype):
    # the tangent code calls fj.blas_strides (fwdjit's own helper), which had no derivative rule
    x = np.arange(1.0, 7.0).astype(dtype)
    check_jvp(as_fwdjit(norm_of).tangent_fwdjit((True,)), (x, np.linspace(-1.0, 1.0, 6).astype(dtype)))
    x64 = x.astype(np.float64)
    n = np.linalg.norm(x64)
    exact = (np.eye(6) - np.outer(x64, x64) / n ** 2) / n
    H = fwdjit.hessian(norm_of)(x)
    assert H.dtype == dtype
    np.testing.assert_allclose(H, exact, rtol=1e-5 if dtype == np.float32 else 1e-10, atol=1e-7)


def test_second_derivative_of_the_norm_of_a_reversed_view():
    # the helper's reason to exist: a negative-stride view, for BLAS; its tangent goes through it too
    x = np.arange(1.0, 7.0)[::-1]
    tf = as_fwdjit(norm_of).tangent_fwdjit((True,))
    dx = np.linspace(-1.0, 1.0, 12)[::2]
    check_jvp(tf, (x, dx))
    n = np.linalg.norm(x)
    v = np.ones(6)
    np.testing.assert_allclose(fwdjit.hvp(norm_of, (x,), (v,)), (v - x * (x @ v) / n ** 2) / n, rtol=1e-10)


# ------------------------------------------------ check_jvp of list outputs of unequal shapes (test_split_2d)
def split_at(a0):
    return np.split(a0, [1, 2], axis=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_jvp_compares_a_list_output_leaf_by_leaf(dtype):
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(dtype)
    report = check_jvp(split_at, (x,))
    assert [r["output"] for r in report] == ["out[0]", "out[1]", "out[2]"]
    out, dout = fwdjit.jvp(split_at, (x,), (np.ones_like(x),))
    assert [o.shape for o in out] == [d.shape for d in dout] == [(1, 8), (1, 8), (2, 8)]
    assert all(d.dtype == dtype and (d == 1).all() for d in dout)


# ------------------------------------------------ the second derivative of np.prod (test_prod_1 .. test_prod_4)
def prod_all(x):
    return np.prod(x)


def prod_rows(x):
    return np.prod(x, axis=0)


def prod_kept(x):
    return np.prod(x, axis=(0, 2), keepdims=True)


def prod_method(x):
    return x.prod() * x[0]


def prod_times(x, w):
    return np.prod(x * w)


PROD_CASES = [(prod_all, (2, 3)), (prod_all, ()), (prod_rows, (2, 3)), (prod_kept, (2, 3, 2)),
              (prod_method, (5,))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f,shape", PROD_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_second_derivative_of_prod(f, shape, dtype):
    # the tangent code calls fj.prod_jvp / fj.prod_axis_jvp, which had no rule: "not supported"
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, shape).astype(dtype)
    x = dtype(x) if shape == () else x
    check_jvp(as_fwdjit(f).tangent_fwdjit((True,)), (x, rng.standard_normal(shape).astype(dtype)))


def test_second_derivative_of_prod_is_exact_at_zeros():
    # hyper-dual numbers, no division: the Hessian of prod at a point with two zeros is nonzero in one pair only
    x = np.array([1.5, 0.0, 2.0, 0.0])
    H = fwdjit.hessian(prod_all)(x)
    exact = np.zeros((4, 4))
    exact[1, 3] = exact[3, 1] = 3.0
    np.testing.assert_array_equal(H, exact)


def test_second_derivative_of_prod_with_both_arguments_active():
    # prod_jvp(x, dx) with tangents for x and dx: the mixed term and the linear one
    rng = np.random.default_rng(4)
    x, w = rng.uniform(0.5, 1.5, 6), rng.uniform(0.5, 1.5, 6)
    tf = as_fwdjit(prod_times).tangent_fwdjit((True, True))
    check_jvp(tf, (x, w, rng.standard_normal(6), rng.standard_normal(6)))


@pytest.mark.parametrize("f", [prod_all, prod_rows])
def test_third_derivative_of_prod_is_refused_located(f):
    tf = as_fwdjit(f).tangent_fwdjit((True,)).tangent_fwdjit((True, True))
    x = np.full((2, 3), 1.2)
    with pytest.raises(fwdjit.UnsupportedCall, match="third derivative of np.prod") as info:
        tf.jvp((x, x, x, x), (x, x, x, x))
    assert ".py:" in str(info.value).splitlines()[0] and "hint:" in str(info.value)


# ------------------------------------------------ reductions of lists and tuples (test_mean_2, test_std_2, test_var_2)
def mean_of_pair(x):
    return np.mean([x, x + 2])


def std_of_pair(x):
    return np.std((x, x + 2))


def var_of_pair(x):
    return np.var((x, 3 * x))


def reductions_of_named_list(x):
    b = [x, 2 * x, x * x]
    return np.std(b) + np.linalg.norm([x, x + 1]) + np.sum((x, x * x)) + np.max([x, 0.5 * x])


def mean_of_arrays(x, y):
    return np.mean((x, y * y), axis=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f", [mean_of_pair, std_of_pair, var_of_pair, reductions_of_named_list],
                         ids=lambda f: f.__name__)
def test_reduction_of_a_list_of_floats(f, dtype):
    # Numba's reductions take arrays only: np.mean(tuple of 2 floats) did not compile
    check_jvp(f, (dtype(1.3),))


def test_reduction_of_a_list_gradients_as_autograd_asserts():
    assert fwdjit.grad(mean_of_pair)(0.0) == 1.0
    assert fwdjit.grad(std_of_pair)(0.0) == 0.0
    assert fwdjit.grad(var_of_pair)(1.0) == 2.0      # var(x, 3x) = x^2: 2x


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_of_a_tuple_of_arrays(dtype):
    x = np.arange(6.0).reshape(2, 3).astype(dtype)
    check_jvp(mean_of_arrays, (x, x - 2))
    out, dout = fwdjit.jvp(mean_of_arrays, (x, x), (np.ones_like(x), None))
    assert out.dtype == dout.dtype == dtype
    np.testing.assert_array_equal(dout, np.full((2, 3), 0.5, dtype))


# ------------------------------------------------ np.array of a list of arrays (test_array_from_arrays, _2)
def array_of_arrays(x):
    return np.array([x, x])


def array_of_array_rows(x):
    return np.array([[2 * x, x + 1], [x, x]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f", [array_of_arrays, array_of_array_rows], ids=lambda f: f.__name__)
def test_array_of_a_list_of_arrays(f, dtype):
    # Numba's np.array takes sequences of numbers only ("array(float64, 2d, C) not allowed in a homogeneous
    # sequence"): a tuple of equal-typed arrays is their stack
    x = np.random.default_rng(5).standard_normal((3, 2)).astype(dtype)
    check_jvp(f, (x,))
    np.testing.assert_array_equal(fwdjit.fwdjit(f)(x), f(x))


# ------------------------------------------------ the builtin sum of a list (test_non_numpy_sum)
def builtin_sum_of_list(x, y):
    return sum([x, y])


def builtin_sum_with_start(x):
    return sum((x, 2 * x, x * x), 1.0) + sum([x])


@pytest.mark.parametrize("dtype", DTYPES)
def test_builtin_sum_of_a_list(dtype):
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((2, 10, 11)).astype(dtype)
    check_jvp(builtin_sum_of_list, (a, b))
    check_jvp(builtin_sum_with_start, (a,))
    code = fwdjit.fwdjit(builtin_sum_with_start).tangent_source.split("\n", 2)[2]      # after the comment
    assert "sum(" not in code and "1.0 + x + 2 * x + x * x + (0 + x)" in code       # additions, as written


# ------------------------------------------------ a scalar's array attributes (test_scalar_array_box_attributes)
def scalar_attributes(x):
    assert x.shape == ()
    assert x.ndim == 0
    assert x.size == 1
    assert x.dtype == np.float64
    return x ** 2


def dtype_compared(x):
    if x.dtype == np.int64 or x.dtype != x.dtype:
        return x * 2
    return x * x.size + x.ndim + (x.dtype == np.float32)


def test_scalar_array_attributes():
    # Numba's floats have no .shape/.ndim/.size/.dtype (NumPy scalars do), and Numba cannot compare a
    # dtype with np.float64: the assert failed to compile
    assert fwdjit.grad(scalar_attributes)(3.0) == 6.0
    assert fwdjit.fwdjit(scalar_attributes)(np.float64(2.0)) == 4.0


@pytest.mark.parametrize("make", [lambda dt: dt(1.5), lambda dt: np.ones(3, dt), lambda dt: np.ones((2, 2), dt)],
                         ids=["scalar", "1-d", "2-d"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_comparisons_and_scalar_attributes(make, dtype):
    x = make(dtype)
    got = fwdjit.fwdjit(dtype_compared)(x)
    assert np.array_equal(got, dtype_compared(x))
    assert np.asarray(got).dtype == np.asarray(dtype_compared(x)).dtype
    if dtype == np.float64:             # float32 takes the other branch in check_jvp's float64 reference
        check_jvp(dtype_compared, (x,))
    with pytest.raises(AssertionError):
        fwdjit.fwdjit(scalar_attributes)(np.float32(2.0))      # x.dtype == np.float64 is False, as in NumPy


# ------------------------------------------------ np.int64 of an array (test_cast_to_int)
def cast_to_int(W):
    new_W = W[:, :-1]
    new_inds = np.int64(W[:, -1])
    assert new_inds.dtype == np.int64
    return new_W[new_inds].sum(), np.int16(W[0, 0] * 3.0) * np.int64(W[1, 0] * 5.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_int_cast_of_an_array(dtype):
    # Numba's np.int64 takes scalars only, and np.int64 had no (zero) derivative rule
    W = np.random.default_rng(7).standard_normal((5, 10)).astype(dtype)
    W[:, -1] = [0.5, -1.2, 3.7, 2.4, -4.6]      # truncated toward zero, negative indices included
    check_jvp(cast_to_int, (W,))
    (s, i), (s_ref, i_ref) = fwdjit.fwdjit(cast_to_int)(W), cast_to_int(W)
    assert s == pytest.approx(s_ref, rel=1e-6) and i == i_ref


# ------------------------------------------------ np.diagonal, np.append of nested lists (test_diagonal,
# test_simple_append_list_2D; autograd's lists are fwdjit's tuples)
def diagonal_last_axes(D):
    return np.diagonal(D, axis1=-1, axis2=-2)


def append_rows(a, b):
    return np.append(a, b, axis=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (3, 4, 4), (2, 3, 5)])
def test_diagonal_with_axes(shape, dtype):
    D = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    got = fwdjit.fwdjit(diagonal_last_axes)(D)
    assert got.dtype == dtype and np.array_equal(got, diagonal_last_axes(D))
    check_jvp(diagonal_last_axes, (D,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_append_of_nested_tuples(dtype):
    a = tuple(tuple(dtype(v) for v in row) for row in ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0)))
    b = ((dtype(7.0), dtype(8.0), dtype(9.0)),)
    got = fwdjit.fwdjit(append_rows)(a, b)
    assert got.dtype == dtype and np.array_equal(got, append_rows(a, b))
    check_jvp(append_rows, (a, b))


# ------------------------------------------------ np.r_ with a slice (test_r_slicing)
R_CONST = np.linspace(-1.0, 1.0, 10)


def r_with_slices(x):
    return np.r_[x, R_CONST, 1:10] * np.r_[x[:3], 0.5:3.0:0.5, :4, x[3:], R_CONST]


def c_with_a_slice(x):
    return np.c_[x, 1:6]


@pytest.mark.parametrize("dtype", DTYPES)
def test_r_and_c_with_slices(dtype):
    # a slice is a range (np.arange), as NumPy reads it
    x = (np.arange(10.0) / 3).astype(dtype)
    for f, a in ((r_with_slices, x), (c_with_a_slice, x[:5].copy())):
        got, ref = fwdjit.fwdjit(f)(a), f(a)
        assert got.dtype == ref.dtype and got.shape == ref.shape and np.allclose(got, ref, rtol=1e-6)
        check_jvp(f, (a,))


# ------------------------------------------------ from test_systematic: reductions of a number, np.tile
def var_std_of_a_number(x):
    return np.var(x) + np.std(x) * 3.0 + np.var(x * x, ddof=0)


def std_of_one_row(x):
    return np.std(x, axis=1) + np.std(x, axis=0, keepdims=True)[0, :1]


def tiled(a):
    return np.tile(a, reps=(1, 4, 1, 2))


def tiled_forms(a):
    return np.tile(a, (3, 2, 1))[0] * np.sum(np.tile(a, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_var_and_std_of_a_number(dtype):
    # np.var(3.5) is 0; the std of one element is 0 whatever it is, so its derivative is 0 (was 0 / 0 = nan)
    x = dtype(3.5)
    assert fwdjit.fwdjit(var_std_of_a_number)(x) == 0.0
    check_jvp(var_std_of_a_number, (x,))
    check_jvp(as_fwdjit(var_std_of_a_number).tangent_fwdjit((True,)), (x, dtype(2.0)))
    a = np.random.default_rng(9).standard_normal((1, 3)).astype(dtype)
    check_jvp(std_of_one_row, (a,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("f,shape", [(tiled, (2, 1, 3, 1)), (tiled_forms, (1, 2)), (tiled_forms, (2, 3))],
                         ids=["4-d", "2-d", "2-d-b"])
def test_tile_of_any_ndim(f, shape, dtype):
    a = np.random.default_rng(10).standard_normal(shape).astype(dtype)
    got, ref = fwdjit.fwdjit(f)(a), f(a)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5)          # np.sum's pairwise order vs a loop
    check_jvp(f, (a,))


# ------------------------------------------------ tuple() of a tuple (test_linalg's svd and eigh checks)
def svd_as_tuple(a):
    u, s, vh = tuple(np.linalg.svd(a, full_matrices=False))
    return s, np.abs(u[:, 0] * vh[0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_builtin_tuple_of_a_tuple(dtype):
    a = (np.eye(3) * 3.0 + np.random.default_rng(11).uniform(-0.5, 0.5, (3, 3))).astype(dtype)
    check_jvp(svd_as_tuple, (a,))


# ------------------------------------------------ second derivatives of decompositions (test_svd_square_2d)
def svd_values(a):
    return np.linalg.svd(a, full_matrices=False)[1]


def eigh_values(a):
    return np.linalg.eigh(a)[0]


def eigvalsh_sum(a):
    return np.sum(np.linalg.eigvalsh(a) ** 2)


@pytest.mark.parametrize("f,what", [(svd_values, "np.linalg.svd"), (eigh_values, "np.linalg.eigh"),
                                    (eigvalsh_sum, "np.linalg.eigvalsh")], ids=["svd", "eigh", "eigvalsh"])
def test_second_derivative_of_a_decomposition_is_refused_by_name(f, what):
    # the tangent code calls fj.svd_jvp (plain NumPy with a raise): fwdjit tried to transform it and
    # said "raise statement is not supported" at a line of fwdjit's own npimpl/decompositions.py
    a = np.eye(4) * 3.0 + np.random.default_rng(12).uniform(-0.5, 0.5, (4, 4))
    a = a + a.T
    check_jvp(f, (a,))                   # the first derivative works
    with pytest.raises(fwdjit.UnsupportedCall, match=f"second derivative of {what}") as info:
        as_fwdjit(f).tangent_fwdjit((True,)).jvp((a, a), (a, a))
    assert "hint:" in str(info.value)
