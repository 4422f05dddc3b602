"""The whole function corpus (tests/functions.py) through fwdjit.

For every corpus function and both float64 and float32 example inputs:

* ``test_primal``: the compiled primal equals the plain Python function
  (float64: rtol 1e-12; float32: rtol 1e-4 relative to the output's largest
  magnitude), including the arguments that the function mutates in place;
* ``test_primal_dtype``: the compiled primal's output dtype/shape is what
  plain NumPy gives (NumPy 2 / NEP 50 rules: ``float32_array * 0.5`` stays
  float32);
* ``test_jvp``: ``check_jvp`` passes for every differentiable argument
  separately and for all of them together (float64: rel. error <= 1e-8
  against an 8th-order finite-difference reference; float32: <= 2e-3), and
  every output tangent has the dtype/shape of the JVP's primal output.
  The arguments not being checked get zero tangents (one compiled
  specialization per function and dtype); ``test_jvp_none_tangents`` repeats
  the check with ``None`` tangents on a subset of functions.

Each function is compiled once per test session (one ``fwdjit`` object per
corpus entry shared by the tests, kept on one xdist worker).  Compilation
dominates the run time: the float32 variants of the functions outside
``F32_FAST`` are in the exhaustive tier (marked ``exhaustive``).
"""
import numpy as np
import pytest

import functions as F
from fwdjit import fwdjit
from fwdjit.testing import check_jvp
from fwdjit.testing.values import dtype_of, flatten_out

# float32 variants in the quick tier (benchmark workloads, float literals mixed
# with float32 arrays, every construct the float32 twin rewrites); the other
# float32 variants are in the exhaustive tier (python -m pytest -m exhaustive).
F32_FAST = {"rosenbrock", "softmax_loss", "mlp_loss", "lorenz_rk4", "relu_literal", "sigmoid",
            "scalar_f32_literals", "np_power_scalar", "scalar_np_scalars", "red_sum_mean",
            "la_matmul", "scalar_int_valued", "loop_if_elif", "idx_2d_aug", "call_helper_tuple",
            "tuple_out", "red_zero_d", "create_arange_linspace", "logistic_loss",
            "attention_scores"}


def _variants(cases):
    """float64 for every function; float32 for F32_FAST in the quick tier, for all in the exhaustive one.

    The tests of one function run on one pytest-xdist worker (``xdist_group``),
    which compiles it once for all of them.
    """
    out = []
    for c in cases:
        group = pytest.mark.xdist_group("corpus-" + c.name)
        out.append(pytest.param(c, np.float64, id=c.name + "-f64", marks=(group,)))
        marks = (group,) if c.name in F32_FAST else (group, pytest.mark.exhaustive)
        out.append(pytest.param(c, np.float32, id=c.name + "-f32", marks=marks))
    return out


VARIANTS = _variants(F.CORPUS)

# Output dtypes where compiled code cannot follow NumPy (documented in README, "float32"):
# Numba types float32_array * int64_array as float32, NumPy as float64.
KNOWN_DTYPE_DIFFERENCES = {("sort_weighted", "float32"): "Numba keeps float32 for float32 array * int64 array"}


def _dtype_variants(cases):
    out = []
    for p in _variants(cases):
        case, dtype = p.values
        reason = KNOWN_DTYPE_DIFFERENCES.get((case.name, np.dtype(dtype).name))
        if reason:
            p = pytest.param(case, dtype, id=p.id, marks=tuple(p.marks) + (pytest.mark.xfail(strict=True,
                                                                                              reason=reason),))
        out.append(p)
    return out

_COMPILED = {}


def compiled(case):
    f = _COMPILED.get(case.name)
    if f is None:
        f = _COMPILED[case.name] = fwdjit(case.fn)
    return f


def _copy(v):
    if isinstance(v, tuple):
        return tuple(_copy(e) for e in v)
    return v.copy() if isinstance(v, np.ndarray) else v


def _assert_close(got, want, dtype, what):
    got_l, want_l = flatten_out(got), flatten_out(want)
    assert [p for p, _ in got_l] == [p for p, _ in want_l], (
        "%s: output structure %s != plain %s" % (what, [p for p, _ in got_l],
                                                  [p for p, _ in want_l]))
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    for (path, g), (_, w) in zip(got_l, want_l):
        g = np.asarray(g).astype(np.float64)
        w = np.asarray(w).astype(np.float64)
        assert g.shape == w.shape, "%s %s: shape %s != plain %s" % (what, path, g.shape, w.shape)
        scale = float(np.max(np.abs(w), initial=0.0))
        ok = np.isclose(g, w, rtol=rtol, atol=rtol * scale + 1e-300)
        if not np.all(ok):
            k = np.unravel_index(int(np.argmax(~ok)), g.shape) if g.ndim else ()
            raise AssertionError(
                "%s %s differs from the plain function at %s: fwdjit %r, plain %r "
                "(abs err %.3e, max|plain| %.3e, rtol %.0e)"
                % (what, path, k, g[k], w[k], abs(g[k] - w[k]), scale, rtol))


@pytest.mark.parametrize("case,dtype", VARIANTS)
def test_primal(case, dtype):
    args = case.args(dtype)
    plain_args = _copy(args)
    jit_args = _copy(args)
    want = case.fn(*plain_args)
    got = compiled(case)(*jit_args)
    _assert_close(got, want, dtype, "%s(%s) primal" % (case.name, np.dtype(dtype).name))
    for i in case.mutates:
        _assert_close(jit_args[i], plain_args[i], dtype,
                      "%s(%s) mutated argument %d" % (case.name, np.dtype(dtype).name, i))


@pytest.mark.parametrize("case,dtype", _dtype_variants(F.CORPUS))
def test_primal_dtype(case, dtype):
    args = case.args(dtype)
    want = case.fn(*_copy(args))
    got = compiled(case)(*_copy(args))
    got_l, want_l = flatten_out(got), flatten_out(want)
    assert [p for p, _ in got_l] == [p for p, _ in want_l]
    for (path, g), (_, w) in zip(got_l, want_l):
        assert (dtype_of(g), np.shape(g)) == (dtype_of(w), np.shape(w)), (
            "%s(%s) %s: fwdjit gives dtype %s shape %s (%s), plain NumPy gives dtype %s "
            "shape %s (%s)" % (case.name, np.dtype(dtype).name, path, dtype_of(g), np.shape(g),
                               type(g).__name__, dtype_of(w), np.shape(w), type(w).__name__))


@pytest.mark.parametrize("case,dtype", VARIANTS)
def test_jvp(case, dtype):
    args = case.args(dtype)
    # dtype agreement with NumPy is test_primal_dtype's job; check_jvp still
    # checks that tangents have the dtype/shape of fwdjit's primal output.
    # The arguments not being checked get zero tangents, so that one compiled
    # specialization serves all the checks (compile time dominates);
    # test_jvp_none_tangents covers None tangents.
    check_jvp(compiled(case), args, check_dtype=False, inactive="zeros")


# Functions with several differentiable arguments, checked with None tangents
# for the arguments not being checked (one specialization per argument).
NONE_NAMES = (
    "rosenbrock", "softmax_loss", "lorenz_rk4", "scalar_pow_active", "scalar_floordiv_mod",
    "math_atan2_hypot", "np_power_arrays", "np_power_scalar", "np_where",
    "red_dot_vdot", "red_zero_d", "la_matvec", "idx_view_write", "idx_view_write_arg",
    "idx_aug_arr", "aug_arg_inplace", "call_helper_inplace", "call_helper_affine",
    "tuple_arg", "tuple_out", "heat_step", "huber", "van_der_pol_rk2", "polyval_matrix")
# The quick tier checks None tangents on these (scalars, reductions, linear algebra, views written
# in place, callees, tuples in and out): one compiled specialization per argument each, so the
# others (10-50 s of compilation each) and the float32 variants outside them are exhaustive.
NONE_QUICK = {"rosenbrock", "scalar_pow_active", "scalar_floordiv_mod", "math_atan2_hypot", "red_dot_vdot",
              "red_zero_d", "la_matvec", "idx_view_write_arg", "aug_arg_inplace", "call_helper_inplace",
              "tuple_arg", "tuple_out"}
NONE_CASES = [pytest.param(F.CASES[n], dtype, id=f"{n}-{tag}",
                           marks=(pytest.mark.xdist_group("corpus-" + n),)
                           + (() if n in NONE_QUICK and (tag == "f64" or n in F32_FAST) else (pytest.mark.exhaustive,)))
              for n in NONE_NAMES for dtype, tag in ((np.float64, "f64"), (np.float32, "f32"))]


@pytest.mark.parametrize("case,dtype", NONE_CASES)
def test_jvp_none_tangents(case, dtype):
    check_jvp(compiled(case), case.args(dtype), check_dtype=False, inactive="none")


# mlp_loss: 90 s of compilation (one JVP per activity pattern of 6 arguments), exhaustive tier
BENCH = [pytest.param(F.CASES[n], id=n, marks=(pytest.mark.exhaustive,) if n == "mlp_loss" else ())
         for n in ("rosenbrock", "softmax_loss", "mlp_loss", "lorenz_rk4")]


@pytest.mark.parametrize("case", BENCH)
def test_jvp_of_plain_function(case):
    """``fwdjit.jvp(plain_function, ...)`` (the undecorated entry point)."""
    check_jvp(case.fn, case.args(np.float64), check_dtype=False)
