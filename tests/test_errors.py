"""Error quality: every unsupported construct, and bad ``jvp`` input.

Each unsupported function below marks its offending line with ``# <-`` and a
key.  The tests check that fwdjit raises a :class:`fwdjit.FwdjitError`
subclass whose message names the construct and gives the file, the absolute
line in this file, the source line with a caret under the construct, and a
hint; and *when* it is raised: at decoration (``fwdjit(f)``) for everything
the transform can see, at the first ``jvp`` only for what depends on which
arguments carry derivatives (noted per case in ``CASES``).

Bad ``jvp`` input (wrong tangent count, shape, dtype, a tangent for an int
argument...) raises :class:`fwdjit.TangentError` saying what was expected and
what was given.
"""
import math
import os
import re
import sys
import time

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import fwdjit as fwdjit_pkg  # noqa: E402
from fwdjit import FwdjitError, TangentError, UnsupportedCall, UnsupportedSyntax, fwdjit  # noqa: E402

THIS_FILE = os.path.abspath(__file__)
COUNTER = [0]
STATE = {"w": 1.0}
GLOBAL_LIST = [1.0, 2.0]


def marker_line(key):
    """The absolute line number in this file of the line marked ``# <- key``."""
    with open(THIS_FILE) as fh:
        hits = [i for i, line in enumerate(fh, 1) if re.search(rf"# <- {re.escape(key)}(\s|$)", line)]
    assert len(hits) == 1, (key, hits)
    return hits[0]


# ------------------------------------------------------------ the constructs
def u_try(x):
    try:  # <- try
        y = x * 2.0
    except ValueError:
        y = x
    return y


def u_with(x):
    with open("/dev/null"):  # <- with
        y = x
    return y


def u_yield(x):
    yield x * 2.0  # <- yield


def u_genexp(x):
    return sum(v * v for v in x)  # <- genexp


def u_lambda_inside(x):
    g = lambda v: v * 2.0  # <- lambda  # noqa: E731
    return g(x)


def u_class(x):
    class A:  # <- class
        pass
    return x


def _make_closure():
    acc = [0.0]

    def u_closure(x):
        return x * acc[0]  # <- closure
    return u_closure


u_closure = _make_closure()


def u_string(x):
    s = "abc"  # <- string
    return x


def u_fstring(x):
    print(f"x = {x}")  # <- fstring
    return x


def u_listcomp(x):
    return np.array([v * 2.0 for v in x])  # <- listcomp


def u_setcomp(x):
    s = {v for v in x}  # <- setcomp
    return x


def u_dictcomp(x):
    d = {i: v for i, v in enumerate(x)}  # <- dictcomp
    return x


def u_unknown_callable(x):
    t = time.time()  # <- unknown-callable
    return x * t


def u_global_write(x):
    global COUNTER  # <- global
    COUNTER = x
    return x


def u_nonlocal_outer():
    z = 1.0

    def u_nonlocal(x):
        nonlocal z  # <- nonlocal
        z = x
        return x
    return u_nonlocal


u_nonlocal = u_nonlocal_outer()


def u_mutable_global(x):
    return x * GLOBAL_LIST[0]  # <- mutable-global


def u_nested(x):
    def inner(v):  # <- nested
        return v * 2.0
    return inner(x)


def u_varargs(*xs):  # <- varargs
    return xs[0]


def u_kwargs(x, **kw):  # <- kwargs
    return x


def u_kwonly(x, *, scale):  # <- kwonly
    return x * scale


def u_default(x, scale=np.ones(2)):  # <- default
    return x * scale


def u_del(x):
    y = x * 2.0
    del y  # <- del
    return x


def u_raise(x):
    if x < 0.0:
        raise ValueError("negative")  # <- raise
    return x


def u_dict(x):
    d = {"a": x}  # <- dict
    return x


def u_set(x):
    s = {x, 2.0}  # <- set
    return x


def u_list(x):
    v = [x, 2.0]
    v.append(x)  # <- list
    return v[0]


def u_walrus(x):
    if (y := x * 2.0) > 1.0:  # <- walrus
        return y
    return x


def u_attr_assign(x):
    np.foo = x  # <- attr-assign
    return x


def u_import(x):
    import math as m  # <- import
    return m.sin(x)


def u_for_else(x):
    s = 0.0
    for v in x:
        s += v
    else:
        s = 1.0  # <- for-else
    return s


def u_while_else(x):
    s = x
    while s > 1.0:
        s = s * 0.5
    else:
        s = s + 1.0  # <- while-else
    return s


def u_complex(x):
    return x * 1j  # <- complex


def u_star_call(x):
    return np.maximum(*x)  # <- star-call


def u_kwargs_call(x):
    kw = None
    return np.sum(x, **kw)  # <- kwargs-call


def u_undefined(x):
    return x * NOT_DEFINED_ANYWHERE  # <- undefined  # noqa: F821


def u_match(x):
    match x:  # <- match
        case 0:
            return 1.0
    return x


def u_bare_expr(x):
    x + 1.0  # <- bare-expr
    return x


def u_obj_method(x):
    return x * STATE.get("w")  # <- object-method


def u_method_no_rule(x):
    return np.sum(x.conj())  # <- method-no-rule


def u_attr_no_rule(x):
    return np.sum(x.imag + x.flat[0])  # <- attr-no-rule


def u_andor_value(x, y):
    return x and y  # <- and-or


def _rec_helper(x, n):
    if n <= 0:
        return x
    return _rec_helper(x * 0.5, n - 1)  # <- recursion


def u_recursion(x, n):
    return _rec_helper(x, n)


def u_axis_max(x):
    return np.linalg.norm(x, 1)  # <- axis-max


def u_eigh_uplo(x):
    return np.linalg.eigh(x, "U")[0]  # <- eigh-uplo


def u_fft(x):
    return np.sum(np.abs(np.fft.rfft(x)))  # <- fft


def u_svd_values(x):
    return np.linalg.svd(x, compute_uv=False)  # <- svd-values


async def u_async(x):  # <- async
    return x


# key, function, expected error class, construct text (in the message), hint text, when ("decorate"|"jvp"),
# jvp args for late errors
CASES = [
    ("try", u_try, UnsupportedSyntax, "try/except", "check inputs", "decorate"),
    ("with", u_with, UnsupportedSyntax, "with statement", "context manager", "decorate"),
    ("yield", u_yield, UnsupportedSyntax, "yield (generator)", "return an array", "decorate"),
    ("genexp", u_genexp, UnsupportedSyntax, "generator expression", "for loop", "decorate"),
    ("lambda", u_lambda_inside, UnsupportedSyntax, "lambda", "def", "decorate"),
    ("class", u_class, UnsupportedSyntax, "class definition", "outside", "decorate"),
    ("closure", u_closure, UnsupportedSyntax, "closure over mutable state", "argument", "decorate"),
    ("string", u_string, UnsupportedSyntax, "string", "numbers", "decorate"),
    ("fstring", u_fstring, UnsupportedSyntax, "f-string", "format outside", "decorate"),
    ("listcomp", u_listcomp, UnsupportedSyntax, "list comprehension", "for loop", "decorate"),
    ("setcomp", u_setcomp, UnsupportedSyntax, "set comprehension", "for loop", "decorate"),
    ("dictcomp", u_dictcomp, UnsupportedSyntax, "dict comprehension", "for loop", "decorate"),
    ("unknown-callable", u_unknown_callable, UnsupportedCall, "time", "defjvp", "decorate"),
    ("global", u_global_write, UnsupportedSyntax, "global statement", "return the value", "decorate"),
    ("nonlocal", u_nonlocal, UnsupportedSyntax, "nonlocal statement", "return the value", "decorate"),
    ("mutable-global", u_mutable_global, UnsupportedSyntax, "global 'GLOBAL_LIST' is a list", "argument",
     "decorate"),
    ("nested", u_nested, UnsupportedSyntax, "nested function", "module level", "decorate"),
    ("varargs", u_varargs, UnsupportedSyntax, "*args", "explicitly", "decorate"),
    ("kwargs", u_kwargs, UnsupportedSyntax, "**kwargs", "explicitly", "decorate"),
    ("kwonly", u_kwonly, UnsupportedSyntax, "keyword-only", "explicitly", "decorate"),
    ("default", u_default, UnsupportedSyntax, "default value of 'scale' is not a constant", "argument", "decorate"),
    ("del", u_del, UnsupportedSyntax, "del statement", "scope", "decorate"),
    ("raise", u_raise, UnsupportedSyntax, "raise statement", "validate inputs", "decorate"),
    ("dict", u_dict, UnsupportedSyntax, "dict", "tuple", "decorate"),
    ("set", u_set, UnsupportedSyntax, "set", "tuple", "decorate"),
    ("list", u_list, UnsupportedSyntax, "list literal as a tuple", "array", "decorate"),
    ("walrus", u_walrus, UnsupportedSyntax, "assignment expression (:=)", "separate line", "decorate"),
    ("attr-assign", u_attr_assign, UnsupportedSyntax, "attribute assignment", "arrays", "decorate"),
    ("import", u_import, UnsupportedSyntax, "import inside the function", "module level", "decorate"),
    ("for-else", u_for_else, UnsupportedSyntax, "else clause on a loop", "flag", "decorate"),
    ("while-else", u_while_else, UnsupportedSyntax, "else clause on a loop", "flag", "decorate"),
    ("complex", u_complex, UnsupportedSyntax, "complex number", "real-valued", "decorate"),
    ("star-call", u_star_call, UnsupportedSyntax, "starred expression", "explicitly", "decorate"),
    ("kwargs-call", u_kwargs_call, UnsupportedSyntax, "**kwargs in a call", "explicitly", "decorate"),
    ("undefined", u_undefined, UnsupportedSyntax, "name 'NOT_DEFINED_ANYWHERE' is not defined", "define it",
     "decorate"),
    ("match", u_match, UnsupportedSyntax, "match statement", "if/elif/else", "decorate"),
    ("bare-expr", u_bare_expr, UnsupportedSyntax, "expression statement without effect", "assign", "decorate"),
    ("object-method", u_obj_method, UnsupportedSyntax, "global 'STATE' is a dict", "argument", "decorate"),
    ("async", u_async, UnsupportedSyntax, "async", "", "decorate"),
]

LATE_CASES = [
    # only known once it is clear which values carry derivatives: raised by the first jvp
    ("method-no-rule", u_method_no_rule, UnsupportedCall, ".conj()", "supported method",
     (np.array([1.0, 2.0]),), (np.ones(2),)),
    ("attr-no-rule", u_attr_no_rule, UnsupportedSyntax, ".imag", "supported", (np.array([1.0, 2.0]),),
     (np.ones(2),)),
    ("and-or", u_andor_value, UnsupportedSyntax, "'and'/'or'", "conditional expression", (1.0, 2.0),
     (1.0, 1.0)),
    ("recursion", u_recursion, UnsupportedSyntax, "recursive", "loop", (1.0, 3), (1.0, None)),
    ("axis-max", u_axis_max, UnsupportedCall, "np.linalg.norm with ord and no axis", "axis=0",
     (np.ones((2, 2)),), (np.ones((2, 2)),)),
    ("eigh-uplo", u_eigh_uplo, UnsupportedCall, "np.linalg.eigh with UPLO", "lower triangle",
     (np.eye(2),), (np.ones((2, 2)),)),
    ("fft", u_fft, UnsupportedCall, "rfft", "outside the differentiated function", (np.ones(4),), (np.ones(4),)),
    ("svd-values", u_svd_values, UnsupportedCall, "compute_uv", "full_matrices=False",
     (np.eye(2),), (np.ones((2, 2)),)),
]


def check_message(exc, key, construct, hint):
    """File, absolute line, source line with a caret, construct and hint in ``str(exc)``."""
    msg = str(exc)
    line = marker_line(key)
    assert isinstance(exc, FwdjitError)
    assert getattr(exc, "filename", None) == THIS_FILE, msg
    assert exc.lineno == line, (exc.lineno, line, msg)
    assert f"{THIS_FILE}:{line}" in msg, msg
    src = open(THIS_FILE).read().splitlines()[line - 1].strip()
    lines = msg.splitlines()
    shown = [i for i, l in enumerate(lines) if l.strip() == src]
    assert shown, f"source line {src!r} not shown in:\n{msg}"
    caret = lines[shown[0] + 1] if shown[0] + 1 < len(lines) else ""
    assert caret.strip() == "^", f"no caret under the source line:\n{msg}"
    # the caret points into the line, at or after its indentation
    col = len(caret) - len(caret.lstrip()) - (len(lines[shown[0]]) - len(lines[shown[0]].lstrip()))
    assert 0 <= col < len(src), msg
    assert construct.lower() in msg.lower(), f"construct {construct!r} not named in:\n{msg}"
    if hint:
        hint_lines = [l for l in lines if l.startswith("hint: ")]
        assert hint_lines and hint.lower() in hint_lines[0].lower(), f"hint {hint!r} missing:\n{msg}"


def _params(cases, n):
    return [pytest.param(*c[:n], id=c[0], marks=list(c[n:])) for c in cases]


@pytest.mark.parametrize("key,func,cls,construct,hint,when", _params(CASES, 6))
def test_unsupported_construct_at_decoration(key, func, cls, construct, hint, when):
    with pytest.raises(cls) as info:
        fwdjit(func)
    check_message(info.value, key, construct, hint)


@pytest.mark.parametrize("key,func,cls,construct,hint,primals,tangents",
                         _params(LATE_CASES, 7))
def test_unsupported_construct_at_first_jvp(key, func, cls, construct, hint, primals, tangents):
    f = fwdjit(func)      # accepted at decoration ...
    with pytest.raises(cls) as info:
        f.jvp(primals, tangents)      # ... and refused when the derivative code is generated
    check_message(info.value, key, construct, hint)


def test_unsupported_construct_in_a_callee_points_at_the_callee():
    def caller(x):
        return u_raise(x) * 2.0
    with pytest.raises(UnsupportedSyntax) as info:
        fwdjit(caller).jvp((1.0,), (1.0,))
    check_message(info.value, "raise", "raise statement", "validate inputs")


def test_scipy_function_without_rule():
    """A ufunc from another library (scipy.special) passes decoration: Numba can call ufuncs, so the
    missing derivative rule is only known, and reported, when the first jvp generates the code."""
    special = pytest.importorskip("scipy.special")

    def g(x):
        return special.erfinv(x)   # <- scipy
    f = fwdjit(g)
    with pytest.raises(UnsupportedCall) as info:
        f.jvp((0.3,), (1.0,))
    check_message(info.value, "scipy", "erfinv", "defjvp")


def test_errors_are_fwdjit_errors_not_numba_errors():
    """No raw Numba error: every case above is a FwdjitError with the user's file in it."""
    for key, func, cls, *_ in CASES + LATE_CASES:
        assert issubclass(cls, FwdjitError)
    assert issubclass(TangentError, ValueError)


# ------------------------------------------------------------- bad jvp input
def j_target(x, W, n):
    y = x
    for _ in range(n):
        y = np.tanh(W @ y)
    return np.sum(y)


@pytest.fixture(scope="module")
def jt():
    f = fwdjit(j_target)
    x, W = np.linspace(-1, 1, 3), np.eye(3) * 0.5
    f.jvp((x, W, 2), (np.ones(3), None, None))     # compile once
    return f, x, W


def _msg(exc):
    return str(exc)


def test_wrong_tangent_count(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (np.ones(3),))
    m = _msg(info.value)
    assert "3" in m and "1" in m and "j_target(x, W, n)" in m, m


def test_primals_not_a_tuple(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp(x, (np.ones(3), None, None))
    assert "tuple" in _msg(info.value)


def test_wrong_tangent_shape(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (np.ones(4), None, None))
    m = _msg(info.value)
    assert "'x'" in m and "(3,)" in m and "(4,)" in m, m


def test_wrong_tangent_ndim(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (np.ones(3), np.ones(3), None))
    m = _msg(info.value)
    assert "'W'" in m and "(3, 3)" in m and "(3,)" in m, m


def test_wrong_tangent_dtype(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (np.ones(3, np.float32), None, None))
    m = _msg(info.value)
    assert "'x'" in m and "float64" in m and "float32" in m, m


def test_tangent_for_int_argument(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (np.ones(3), None, 1.0))
    m = _msg(info.value)
    assert "'n'" in m and "None" in m and "int" in m, m


def test_scalar_tangent_for_array(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), (1.0, None, None))
    m = _msg(info.value)
    assert "'x'" in m and "(3,)" in m and "float" in m, m


def test_list_tangent_for_array(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.jvp((x, W, 2), ([1.0, 1.0, 1.0], None, None))
    m = _msg(info.value)
    assert "'x'" in m and "list" in m, m


def test_array_tangent_for_float(jt):
    def g(a, b):
        return a * b
    f = fwdjit(g)
    with pytest.raises(TangentError) as info:
        f.jvp((1.0, 2.0), (np.ones(3), None))
    m = _msg(info.value)
    assert "'a'" in m and "float" in m and "array" in m, m


def test_tangent_function_wrong_active_length(jt):
    f, x, W = jt
    with pytest.raises(TangentError) as info:
        f.tangent_function((True, False))
    m = _msg(info.value)
    assert "3" in m and "2" in m, m


def test_tangent_function_shape_mismatch_at_runtime(jt):
    """Called directly (as from @njit code), a shape mismatch is still a TangentError."""
    f, x, W = jt
    jf = f.tangent_function((True, False, False))
    with pytest.raises(TangentError) as info:
        jf(x, W, 2, np.ones(5))
    m = _msg(info.value)
    assert "'x'" in m and "(3,)" in m and "(5,)" in m, m


def test_bad_primal_type_is_a_fwdjit_error(jt):
    f, x, W = jt
    with pytest.raises(FwdjitError) as info:
        f.jvp(("abc", W, 2), (None, None, None))
    assert "j_target" in _msg(info.value)
