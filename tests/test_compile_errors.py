"""Issue #14: every Numba compile failure is a located fwdjit error; no raw exception leaks;
defjvp on a NumPy function; list literals, strings and default values.

A compile failure is checked as a user meets it, on every path that compiles code (primal,
JVP, float32 twin, vector mode, ``fwdjit.jvp``, jacfwd, hessian, forward_grad, train): the
message starts with the user's file:line (marked ``# <- key`` below), shows the source
line with a caret, names the operation with its arguments in NumPy's words, fits in 10
lines, and keeps Numba's text as ``__cause__`` and ``.numba_message``.  Derivatives of the
new cases are checked against central differences (``fwdjit.testing.check_jvp``) in
float64 and float32.
"""
import ast
import os
import warnings

import numba
import numpy as np
import pytest

import fwdjit
from fwdjit import rules
from fwdjit.errors import CompileError, FwdjitError, InternalError, UnsupportedSyntax
from fwdjit.testing import check_jvp
from located import assert_located_message

THIS_FILE = os.path.abspath(__file__)


def assert_located(exc, key, *named, cls=CompileError):
    msg = str(exc)
    assert isinstance(exc, cls), (type(exc), msg)
    assert_located_message(exc, THIS_FILE, key, *named, max_lines=10,
                           numba_words=("array(float64",))          # NumPy's words, not Numba's
    if cls is not UnsupportedSyntax:
        assert isinstance(exc.__cause__, Exception) and exc.__cause__ is not None, msg
        assert str(exc.__cause__) == exc.numba_message or exc.numba_message.startswith("TypingError"), msg
        assert "nopython" in exc.numba_message or "Numba failed" in exc.numba_message


# ------------------------------------------------------------- compile failures
def tuple_add(x, w):
    y = np.sin(x * w)
    return np.sum(y + (1.0, 2.0, 3.0))  # <- tuple-add


def calls_tuple_add(x, w):
    return 2.0 * tuple_add(x, w)


@pytest.fixture(scope="module")
def bad():
    return fwdjit.fwdjit(tuple_add)


X = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
W = np.full((2, 3), 0.5)


def test_primal_compile_failure_is_located(bad):
    with pytest.raises(CompileError) as info:
        bad(X, W)
    assert_located(info.value, "tuple-add", "float64 2-d array + tuple of 3 floats", "tuple_add")
    assert isinstance(info.value.__cause__, numba.core.errors.TypingError)
    assert "array(float64, 2d, C)" in info.value.numba_message


@pytest.mark.parametrize("path", ["jvp", "fwdjit.jvp", "float32", "batched", "callee", "jacfwd", "hessian",
                                  "forward_grad", "train"])
def test_every_compile_path_is_located(bad, path):
    calls = {
        "jvp": lambda: bad.jvp((X, W), (X, None)),
        "fwdjit.jvp": lambda: fwdjit.jvp(tuple_add, (X, W), (X, W)),
        "float32": lambda: bad.jvp((X.astype(np.float32), W.astype(np.float32)), (X.astype(np.float32), None)),
        "batched": lambda: bad.jvp((X, W), (np.ones((2,) + X.shape), None), batched=True),
        "callee": lambda: fwdjit.jvp(calls_tuple_add, (X, W), (X, None)),
        "jacfwd": lambda: fwdjit.jacfwd(bad)(X, W),
        "hessian": lambda: fwdjit.hessian(bad)(X, W),
        "forward_grad": lambda: fwdjit.forward_grad(bad, (X, W), wrt=1),
        "train": lambda: fwdjit.train(bad, W, (np.ones((4, 2, 3)),), steps=1, batch_size=2, progress=False),
    }
    with pytest.raises(CompileError) as info:
        calls[path]()
    assert_located(info.value, "tuple-add", "+ tuple", "tuple_add")


def numpy_op(x):
    return np.sum(np.convolve(x, 0))  # <- cumprod-args


def test_numpy_function_named_with_numpy_types():
    with pytest.raises(CompileError) as info:
        fwdjit.fwdjit(numpy_op)(X)
    assert_located(info.value, "cumprod-args", "np.convolve(float64 2-d array, int", "hint: Numba cannot compile "
                   "np.convolve with these arguments; compute it outside the function or write it with loops")


@numba.njit
def _ident(x):
    return x


def uses_broken_helper(x):
    return np.sum(_ident(x))  # <- helper


def test_failure_inside_a_runtime_helper_is_internal(monkeypatch):
    """A generated call to an fj.* helper that does not compile is fwdjit's bug, not the user's."""
    def bad_rule(c):
        return c.gen.fj_call("prod_jvp", [c.args[0].p(), ast.Constant("not a number")])
    monkeypatch.setitem(rules.RULES, _ident, rules.Rule(bad_rule))
    f = fwdjit.fwdjit(uses_broken_helper)
    with pytest.raises(InternalError) as info:
        f.jvp((X,), (X,))
    assert_located(info.value, "helper", "internal error", "fj.prod_jvp", "not your code", cls=InternalError)


def runtime_error(x):
    return np.max(x[x > 10.0])


def test_errors_of_running_code_are_not_turned():
    with pytest.raises(ValueError):
        fwdjit.fwdjit(runtime_error)(X[0])


# ------------------------------------------------------------------ leaks
def red_max(x):
    return np.max(x) * 2.0


def red_min(x):
    return np.min(x) + np.amax(x)


def red_prod(x):
    return np.prod(x) * np.prod(x * x)


def red_mixed(x):
    return np.sum(x) + np.mean(x) + np.sum(np.cumsum(x)) + np.max(x) * np.min(x)


@pytest.mark.parametrize("fn", [red_max, red_min, red_prod, red_mixed])
@pytest.mark.parametrize("x", [0.7, np.array(0.7), np.float32(0.7), np.array(0.7, np.float32), np.float64(-1.3)],
                         ids=["float", "0d", "f32", "0d-f32", "f64"])
def test_reductions_of_scalars(fn, x):
    assert np.allclose(fwdjit.fwdjit(fn)(x), fn(x))
    check_jvp(fwdjit.fwdjit(fn), (x,))


def argmax_float(x):
    return np.argmax(x) + x  # <- argmax


def test_numba_crash_while_typing_is_located():
    """Numba's np.argmax raises AttributeError on a float while typing: a located error, not a leak."""
    with pytest.raises(CompileError) as info:
        fwdjit.fwdjit(argmax_float)(0.5)
    assert_located(info.value, "argmax", "AttributeError")
    assert isinstance(info.value.__cause__, AttributeError)


# ------------------------------------------------------- defjvp on a NumPy function
def _dcumprod(g, ans, x):
    out = np.empty_like(ans)
    s = g[0] * 0.0
    for i in range(x.size):
        s = s + g[i] / x[i]
        out[i] = ans[i] * s
    return out


@pytest.fixture
def cumprod_rule():
    fwdjit.defjvp(np.cumprod, _dcumprod)
    yield
    rules.USER_RULES.pop(np.cumprod, None)


def uses_cumprod(x):
    return np.cumprod(x)[-1] + np.sum(np.cumprod(x * x))


def uses_cumprod_axis(x):
    return np.sum(np.cumprod(x, 0, None, None))  # <- cumprod-rule


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_defjvp_numpy_function(cumprod_rule, dtype):
    x = np.array([1.0, 2.0, 3.0, 0.5], dtype)
    f = fwdjit.fwdjit(uses_cumprod)
    assert np.allclose(f(x), uses_cumprod(x))
    check_jvp(f, (x,))


def test_defjvp_numpy_function_numba_cannot_compile(cumprod_rule):
    with pytest.raises(CompileError) as info:
        fwdjit.fwdjit(uses_cumprod_axis)(X)
    assert_located(info.value, "cumprod-rule", "np.cumprod(float64 2-d array")


# -------------------------------------------------------- lists, strings, defaults
def lists(x, a):
    b = [1.0, a * a, 2.0]
    idx = [0, 2]
    s = 0.0
    for i in range(3):
        s += b[i] * x[i]
    y = np.array([s, a, x[0]])
    z = x[[0, 2]].astype("float64")
    w = np.zeros(2, dtype="float64")
    m = np.transpose(np.outer(y, x), axes=[1, 0])
    return np.sum(y) + np.sum(x[idx] * z) + np.sum(m) + w[1] + np.sum(np.stack([x, x * a]))


def test_list_literals_and_dtype_strings():
    x, a = np.array([0.3, -1.2, 2.0]), 0.7
    f = fwdjit.fwdjit(lists)
    assert np.isclose(f(x, a), lists(x, a))
    check_jvp(f, (x, a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fwdjit.Float32PromotionWarning)
        check_jvp(f, (x.astype(np.float32), np.float32(a)), check_dtype=False)


def appends(x):
    b = [x, 2.0]
    b.append(x)  # <- append
    return b[0]


def writes_list(x):
    b = [x, 2.0]
    b[0] = 3.0  # <- list-write
    return b[1]


def test_list_mutation_is_refused_located():
    with pytest.raises(UnsupportedSyntax) as info:
        fwdjit.fwdjit(appends)
    assert_located(info.value, "append", "list literal", "hint", cls=UnsupportedSyntax)
    with pytest.raises(UnsupportedSyntax) as info:
        fwdjit.fwdjit(writes_list)
    assert_located(info.value, "list-write", "list literal", cls=UnsupportedSyntax)


def strings_as_arguments(x):
    y = x.astype("float32").astype(np.float64)
    return np.sum(np.zeros_like(y, dtype="float64") + y * y)


def test_strings_as_call_arguments():
    x = np.array([0.5, 1.5])
    f = fwdjit.fwdjit(strings_as_arguments)
    assert np.isclose(f(x), strings_as_arguments(x))
    out, dout = f.jvp((x,), (np.ones(2),))
    assert np.isclose(dout, 2 * np.sum(x.astype(np.float32).astype(np.float64)), rtol=1e-6)


def with_defaults(x, a, n=2, scale=-0.5, shape=(2,)):
    s = scale * a
    for i in range(n):
        s = s + x[i] * x[i]
    return s + np.sum(np.ones(shape) * a)


def calls_with_defaults(x, a):
    return with_defaults(x, a) + with_defaults(x, a, 3)


def test_default_values():
    x, a = np.array([0.3, -1.2, 2.0]), 0.7
    f = fwdjit.fwdjit(with_defaults)
    assert np.isclose(f(x, a), with_defaults(x, a))
    assert np.isclose(f(x, a, 3), with_defaults(x, a, 3))
    out, dout = f.jvp((x, a), (np.ones(3), 1.0))
    assert np.isclose(out, with_defaults(x, a)) and np.isclose(dout, 2 * (0.3 - 1.2) - 0.5 + 2.0)
    assert fwdjit.jvp(with_defaults, (x, a), (np.ones(3), 1.0)) == pytest.approx((out, dout))
    out_b, douts = f.jvp((x, a), (np.ones((2, 3)), np.ones(2)), batched=True)
    assert np.allclose(douts, dout)
    for dt in (np.float64, np.float32):
        # float32: np.ones(shape) * a is float64 in NumPy, float32 in the twin (a dtype matter, not #14's)
        check_jvp(f, (x.astype(dt), dt(a)), check_dtype=dt is np.float64)
        check_jvp(fwdjit.fwdjit(calls_with_defaults), (x.astype(dt), dt(a)), check_dtype=dt is np.float64)
    value, g = fwdjit.forward_grad(f, (x, a), wrt=1, n_directions=4)
    assert np.isclose(value, with_defaults(x, a))


def bad_default(x, w=np.ones(3)):  # <- bad-default
    return x * w


def test_non_constant_default_is_refused_located():
    with pytest.raises(UnsupportedSyntax) as info:
        fwdjit.fwdjit(bad_default)
    assert_located(info.value, "bad-default", "'w'", "not a constant", cls=UnsupportedSyntax)
    assert isinstance(info.value, FwdjitError)
