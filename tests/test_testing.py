"""Tests of the public derivative checker ``fwdjit.testing.check_jvp``.

Most of these tests do not need the compiler: they drive ``check_jvp`` with
fake "fwdjit functions" (objects with ``py_func`` and ``jvp``) whose JVP is
either exact, a different numerical reference, or deliberately wrong.  The
tests at the end use the real compiler (``defjvp`` rules that are off by a
factor) and are skipped if it cannot be imported.
"""
import numpy as np
import pytest

from fwdjit.testing import (
    DEFAULT_TOLERANCES,
    JVPMismatch,
    UnreliableReference,
    check_jvp,
    numerical_jvp,
    random_tangents,
)
import functions as F


# ---------------------------------------------------------------------------
# Fakes
# ---------------------------------------------------------------------------

def _copy(v):
    if isinstance(v, tuple):
        return tuple(_copy(e) for e in v)
    return v.copy() if isinstance(v, np.ndarray) else v


def _like(primal, value):
    """Cast a float64 reference tangent to the primal output leaf's type."""
    if isinstance(primal, tuple):
        return tuple(_like(p, v) for p, v in zip(primal, value))
    if isinstance(primal, np.ndarray):
        if primal.dtype.kind not in "fc":
            return None
        return np.asarray(value).astype(primal.dtype).reshape(primal.shape)
    if isinstance(primal, np.generic):
        if primal.dtype.kind not in "fc":
            return None
        return primal.dtype.type(np.asarray(value)[()])
    if isinstance(primal, bool) or isinstance(primal, int):
        return None
    return float(np.asarray(value)[()])


def _unflatten(primal, leaves):
    it = iter(leaves)

    def rec(p):
        if isinstance(p, tuple):
            return tuple(rec(e) for e in p)
        return next(it)
    return rec(primal)


class Oracle:
    """A fake ``@fwdjit`` function whose JVP is a numerical reference.

    ``method``/``order``/``eps`` pick the reference; ``factor`` multiplies the
    tangent of the argument ``wrong_arg`` (all arguments if None) to make a
    deliberately wrong derivative.
    """

    def __init__(self, fn, method="fd", order=6, eps=1e-3, factor=1.0, wrong_arg=None,
                 complex_dtype=np.complex128):
        self.py_func = fn
        self.method = method
        self.order = order
        self.eps = eps
        self.factor = factor
        self.wrong_arg = wrong_arg
        self.complex_dtype = complex_dtype
        self.calls = []

    def __call__(self, *args):
        return self.py_func(*args)

    def _ref(self, primals, tangents):
        if self.method == "complex_native":
            # complex step in the arguments' own precision (complex64 for
            # float32): imitates a JVP computed in float32 arithmetic.
            h = 1e-12 if self.complex_dtype == np.complex64 else 1e-30

            def up(a, t):
                if isinstance(a, tuple):
                    return tuple(up(e, te if t is not None else None) for e, te in
                                 zip(a, t if t is not None else (None,) * len(a)))
                if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                    z = a.astype(self.complex_dtype)
                    if t is not None:
                        z = z + np.asarray(1j * h, self.complex_dtype) * t.astype(self.complex_dtype)
                    return z
                if isinstance(a, (float, np.floating)):
                    z = np.dtype(self.complex_dtype).type(a)
                    if t is not None:
                        z = z + np.dtype(self.complex_dtype).type(1j * h) * np.dtype(self.complex_dtype).type(t)
                    return z
                return a
            out = self.py_func(*[up(a, t) for a, t in zip(_copy(primals), tangents)])
            leaves = []

            def rec(o):
                if isinstance(o, tuple):
                    for e in o:
                        rec(e)
                else:
                    leaves.append(np.asarray(o).imag / h)
            rec(out)
            return leaves
        _, refs, _ = numerical_jvp(self.py_func, primals, tangents, method=self.method,
                                   order=self.order, eps=self.eps)
        return refs

    def jvp(self, primals, tangents):
        self.calls.append(tuple(t is not None for t in tangents))
        out = self.py_func(*_copy(primals))
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            only = tuple(t if j == i else None for j in range(len(tangents)))
            refs = self._ref(primals, only)
            k = self.factor if (self.wrong_arg is None or self.wrong_arg == i) else 1.0
            refs = [k * r for r in refs]
            total = refs if total is None else [a + b for a, b in zip(total, refs)]
        if total is None:
            total = [np.zeros(np.shape(leaf)) for leaf in _flatten(out)]
        return out, _like(out, _unflatten(out, total))


def _flatten(o):
    if isinstance(o, tuple):
        res = []
        for e in o:
            res.extend(_flatten(e))
        return res
    return [o]


class Exact:
    """Fake ``@fwdjit`` function with a hand-written JVP."""

    def __init__(self, fn, jvp):
        self.py_func = fn
        self._jvp = jvp

    def __call__(self, *args):
        return self.py_func(*args)

    def jvp(self, primals, tangents):
        return self._jvp(primals, tangents)


# ---------------------------------------------------------------------------
# The reference against hand-derived derivatives
# ---------------------------------------------------------------------------

_rng = np.random.default_rng(1234)
_X = _rng.uniform(0.5, 2.0, 6)
_T = _rng.standard_normal(6)

HAND = [
    ("sin", lambda x: np.sin(x), lambda x, t: np.cos(x) * t),
    ("exp3", lambda x: np.exp(3.0 * x), lambda x, t: 3.0 * np.exp(3.0 * x) * t),
    ("log", lambda x: np.log(x), lambda x, t: t / x),
    ("x**x", lambda x: x ** x, lambda x, t: x ** x * (np.log(x) + 1.0) * t),
    ("arcsin", lambda x: np.arcsin(x / 3.0), lambda x, t: t / 3.0 / np.sqrt(1 - (x / 3.0) ** 2)),
    ("sum_sq", lambda x: np.sum(x * x), lambda x, t: np.sum(2.0 * x * t)),
    ("outer", lambda x: np.outer(x, x), lambda x, t: np.outer(t, x) + np.outer(x, t)),
    ("tanh_sq", lambda x: np.tanh(x) ** 2, lambda x, t: 2 * np.tanh(x) * (1 - np.tanh(x) ** 2) * t),
]


@pytest.mark.parametrize("order", [2, 4, 6, 8])
@pytest.mark.parametrize("name,f,df", HAND, ids=[h[0] for h in HAND])
def test_reference_matches_hand_derivatives(name, f, df, order):
    paths, refs, noise = numerical_jvp(f, (_X,), (_T,), order=order)
    exact = df(_X, _T)
    err = np.max(np.abs(refs[0] - exact)) / np.max(np.abs(exact))
    bound = {2: 1e-8, 4: 1e-10, 6: 1e-11, 8: 1e-11}[order]
    assert err < bound, (name, order, err)
    # the noise estimate bounds the actual error (up to a small factor)
    assert np.max(np.abs(refs[0] - exact)) <= 10 * np.max(noise) + 1e-15


@pytest.mark.parametrize("name,f,df", HAND, ids=[h[0] for h in HAND])
def test_complex_step_reference(name, f, df):
    _, refs, _ = numerical_jvp(f, (_X,), (_T,), method="complex")
    exact = df(_X, _T)
    assert np.max(np.abs(refs[0] - exact)) <= 1e-14 * np.max(np.abs(exact))


def test_reference_float32_inputs_are_upcast():
    x32 = _X.astype(np.float32)
    t32 = _T.astype(np.float32)
    _, refs, _ = numerical_jvp(lambda x: np.exp(x), (x32,), (t32,))
    exact = np.exp(x32.astype(np.float64)) * t32.astype(np.float64)
    assert refs[0].dtype == np.float64
    assert np.max(np.abs(refs[0] - exact)) < 1e-11 * np.max(np.abs(exact))


def test_complex_step_rejects_real_output():
    with pytest.raises(ValueError, match="complex"):
        numerical_jvp(lambda x: np.abs(x), (_X,), (_T,), method="complex")


def test_random_tangents_types():
    args = (1.5, np.float32(2.0), np.float64(3.0), np.ones((2, 3), np.float32),
            np.array(1.0), 3, True, np.arange(3), (1.0, 2))
    ts = random_tangents(args, seed=0)
    assert type(ts[0]) is float
    assert type(ts[1]) is np.float32
    assert type(ts[2]) is np.float64
    assert ts[3].dtype == np.float32 and ts[3].shape == (2, 3)
    assert ts[4].dtype == np.float64 and ts[4].shape == ()
    assert ts[5] is None and ts[6] is None and ts[7] is None
    assert type(ts[8][0]) is float and ts[8][1] is None


# ---------------------------------------------------------------------------
# check_jvp passes on correct JVPs
# ---------------------------------------------------------------------------

def _f_poly(x, y, n):
    return np.sum(x * y) * n, x * 2.0 + y ** 2


def _jvp_poly(primals, tangents):
    x, y, n = primals
    dx, dy, dn = tangents
    assert dn is None, "int argument must get a None tangent"
    dx = np.zeros_like(x) if dx is None else dx
    dy = np.zeros_like(y) if dy is None else dy
    return _f_poly(x, y, n), (np.sum(dx * y + x * dy) * n, dx * 2.0 + 2.0 * y * dy)


def test_exact_jvp_passes_and_reports():
    g = Exact(_f_poly, _jvp_poly)
    report = check_jvp(g, (_X, _X[::-1].copy(), 3))
    checks = {r["check"] for r in report}
    # x alone, y alone, both together
    assert len(checks) == 3
    assert all(r["max_rel_err"] < 1e-10 for r in report)


def test_exact_jvp_passes_float32():
    g = Exact(_f_poly, _jvp_poly)
    check_jvp(g, (_X.astype(np.float32), _X[::-1].astype(np.float32), 3))


def test_argnums_and_given_tangents():
    calls = []

    def jvp(primals, tangents):
        calls.append(tuple(t is not None for t in tangents))
        return _jvp_poly(primals, tangents)
    g = Exact(_f_poly, jvp)
    check_jvp(g, (_X, _X + 1.0, 2), argnums=1)
    assert calls == [(False, True, False)]
    calls.clear()
    t = np.ones_like(_X)
    check_jvp(g, (_X, _X + 1.0, 2), tangents=(t, None, None))
    assert calls == [(True, False, False)]
    with pytest.raises(ValueError):
        check_jvp(g, (_X, _X + 1.0, 2), argnums=2)


def test_mutating_function_gets_fresh_copies():
    def f(x, s):
        x *= s
        return x.sum()

    def jvp(primals, tangents):
        x, s = primals
        dx, ds = tangents
        dx = np.zeros_like(x) if dx is None else dx
        ds = 0.0 if ds is None else ds
        out = np.sum(x * s)
        x *= s
        return out, float(np.sum(dx * s + x / s * ds))
    x = _X.copy()
    check_jvp(Exact(f, jvp), (x, 1.7))
    np.testing.assert_array_equal(x, _X)  # caller's array untouched


def test_tuple_argument_and_scalar_types():
    def f(p, x):
        a, b = p
        return a * x + b

    def jvp(primals, tangents):
        (a, b), x = primals
        dp, dx = tangents
        da, db = dp if dp is not None else (0.0, 0.0)
        dx = 0.0 if dx is None else dx
        return f((a, b), x), da * x + a * dx + db
    check_jvp(Exact(f, jvp), ((1.5, -0.5), 0.7))


def test_no_differentiable_argument():
    def f(n):
        return n * 2.0

    check_jvp(Exact(f, lambda p, t: (f(*p), 0.0)), (3,))


def test_integer_output_tangent_may_be_none():
    def f(x):
        return x * 2.0, int(x)

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), (2.0 * dx, None)
    check_jvp(Exact(f, jvp), (1.4,))


@pytest.mark.parametrize("case", [c for c in F.CORPUS if c.complex_ok], ids=lambda c: c.name)
def test_complex_step_agrees_with_fd_on_corpus(case):
    """The 8th-order reference is accurate to rtol 1e-8 (float64): an exact
    (complex-step) JVP passes the default check."""
    args = case.args(np.float64)
    check_jvp(Oracle(case.fn, method="complex", order=None), args)


@pytest.mark.parametrize("case", [c for c in F.CORPUS if c.complex_ok], ids=lambda c: c.name)
def test_float32_default_tolerance_accepts_float32_arithmetic(case):
    """A JVP evaluated in float32 arithmetic (complex64 complex step) passes
    the default float32 tolerances: they are not too tight."""
    args = case.args(np.float32)
    check_jvp(Oracle(case.fn, method="complex_native", complex_dtype=np.complex64), args,
              check_dtype=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", F.CORPUS, ids=lambda c: c.name)
def test_corpus_reference_is_reliable(case, dtype):
    """For every corpus function the finite-difference reference is smooth at
    the example inputs (no UnreliableReference) and self-consistent: an
    order-6 reference with another step passes the order-8 check."""
    args = case.args(dtype)
    check_jvp(Oracle(case.fn, method="fd", order=6, eps=1e-3), args, check_dtype=False)


# ---------------------------------------------------------------------------
# check_jvp fails, informatively, on wrong JVPs
# ---------------------------------------------------------------------------

def test_wrong_factor_is_caught_with_informative_message():
    g = Oracle(F.la_matvec, factor=1.001, wrong_arg=1)
    args = F.CASES["la_matvec"].args(np.float64)
    with pytest.raises(JVPMismatch) as ei:
        check_jvp(g, args)
    msg = str(ei.value)
    assert "la_matvec" in msg
    assert "'x' (index 1)" in msg          # the argument
    assert "component [" in msg            # worst component index
    assert "fwdjit:" in msg and "reference:" in msg
    assert "abs error" in msg and "rel error" in msg
    # argument 0 was checked first and passed
    assert g.calls[0] == (True, False)


def test_wrong_for_one_argument_only_names_that_argument():
    case = F.CASES["lorenz_rk4"]
    g = Oracle(case.fn, factor=1.01, wrong_arg=2)
    with pytest.raises(JVPMismatch, match=r"'beta' \(index 2\)"):
        check_jvp(g, case.args(np.float64))


def test_small_error_caught_in_float64_but_not_float32():
    case = F.CASES["np_exp_log"]
    g = Oracle(case.fn, factor=1.0 + 1e-5)
    with pytest.raises(JVPMismatch):
        check_jvp(g, case.args(np.float64))
    check_jvp(g, case.args(np.float32))


def test_wrong_factor_caught_in_float32():
    case = F.CASES["softmax_loss"]
    with pytest.raises(JVPMismatch):
        check_jvp(Oracle(case.fn, factor=1.02), case.args(np.float32))


def test_sign_error_in_scalar_output():
    def f(x, y):
        return x * y - y

    def jvp(primals, tangents):
        x, y = primals
        dx, dy = (0.0 if t is None else t for t in tangents)
        return f(x, y), dx * y + x * dy + dy   # should be - dy
    with pytest.raises(JVPMismatch, match=r"'y' \(index 1\)") as ei:
        check_jvp(Exact(f, jvp), (0.3, 1.2))
    assert "(scalar)" in str(ei.value)


def test_wrong_tangent_dtype():
    def f(x):
        return x * 2.0

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), (2.0 * dx).astype(np.float64)
    with pytest.raises(JVPMismatch, match="dtype"):
        check_jvp(Exact(f, jvp), (np.ones(3, np.float32),))


def test_wrong_tangent_shape():
    def f(x):
        return x * 2.0

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), (2.0 * dx).reshape((1, -1))
    with pytest.raises(JVPMismatch, match="shape"):
        check_jvp(Exact(f, jvp), (np.ones(3),))


def test_none_tangent_for_float_output():
    def f(x):
        return x * 2.0

    with pytest.raises(JVPMismatch, match="None"):
        check_jvp(Exact(f, lambda p, t: (f(*p), None)), (1.0,))


def test_wrong_primal_output():
    def f(x):
        return np.sin(x)

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return np.sin(x) + 1e-6, np.cos(x) * dx
    with pytest.raises(JVPMismatch, match="primal output differs"):
        check_jvp(Exact(f, jvp), (_X,))


def test_wrong_primal_dtype():
    def f(x):
        return x * 0.5   # float32 under NumPy 2 (NEP 50)

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return x.astype(np.float64) * 0.5, dx.astype(np.float64) * 0.5
    with pytest.raises(JVPMismatch, match="dtype float64 differs"):
        check_jvp(Exact(f, jvp), (np.ones(3, np.float32),))
    check_jvp(Exact(f, jvp), (np.ones(3, np.float32),), check_dtype=False)


def test_wrong_output_structure():
    def f(x):
        return x, x * 2.0

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return x * 2.0, dx * 2.0
    with pytest.raises(JVPMismatch, match="structure"):
        check_jvp(Exact(f, jvp), (_X,))


def test_nonzero_tangent_for_integer_output():
    def f(x):
        return int(x) * 1

    with pytest.raises(JVPMismatch, match="non-float"):
        check_jvp(Exact(f, lambda p, t: (f(*p), 1)), (1.5,))


def test_kink_gives_unreliable_reference():
    def f(x):
        return np.abs(x)

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return np.abs(x), np.sign(x) * dx
    with pytest.raises(UnreliableReference, match="unreliable"):
        check_jvp(Exact(f, jvp), (np.array([0.5, 1e-4, -0.3]),))
    # complex step cannot differentiate abs either: the user is told
    with pytest.raises(ValueError):
        check_jvp(Exact(f, jvp), (np.array([0.5, 1e-4, -0.3]),), method="complex")


def _exact_of(f, df):
    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return f(x), df(x) * dx
    return Exact(f, jvp)


@pytest.mark.parametrize("f,df,x", [
    (lambda x: 1e6 + 0.0 * x, lambda x: 0.0 * x, 0.3),                               # the reported case
    (lambda x: 1e6 + 0.0 * x, lambda x: 0.0 * x, np.array([0.3, 2.0, -1.0])),
    (lambda x: 1e8 * np.cos(x) + x * x, lambda x: -1e8 * np.sin(x) + 2 * x, 0.0),  # flat point of a big f
    (lambda x: 1e12 + (x - 1.0) ** 3, lambda x: 3 * (x - 1.0) ** 2, np.ones(4)),
], ids=["const", "const-array", "cos-at-0", "cubic-at-1"])
def test_zero_derivative_of_a_large_function_is_not_unreliable(f, df, x):
    """Rounding of |f| ~ 1e6..1e12 puts ~1e-9..1e-3 of noise into the stencil: that is not a kink."""
    report = check_jvp(_exact_of(f, df), (x,))
    assert report and report[0]["max_abs_err"] < 1e-2


def test_large_function_checks_stay_sharp():
    # a wrong derivative is still caught when f is large ...
    with pytest.raises(JVPMismatch):
        check_jvp(_exact_of(lambda x: 1e6 + x * x, lambda x: 2.02 * x), (0.7,))
    with pytest.raises(JVPMismatch):    # ... also where the true derivative is 0 (allowed: ~1e-6 here)
        check_jvp(_exact_of(lambda x: 1e6 + (x - 1.0) ** 2, lambda x: 2 * (x - 1.0) + 1e-4), (1.0,))
    # ... and a kink is still a kink
    with pytest.raises(UnreliableReference):
        check_jvp(_exact_of(lambda x: 1e6 + np.abs(x), np.sign), (np.array([0.5, 1e-4, -0.3]),))


def test_zero_derivative_of_a_large_function_with_fwdjit():
    fwdjit = _compiler()

    @fwdjit
    def offset_energy(x):
        return 1e6 + np.sum((x - 1.0) ** 2) + 0.0 * x[0]
    check_jvp(offset_energy, (np.ones(3),))
    check_jvp(offset_energy, (np.ones(3, np.float32),))


def test_explicit_tolerances():
    g = Oracle(F.np_trig, factor=1.0 + 1e-6)
    args = F.CASES["np_trig"].args(np.float64)
    with pytest.raises(JVPMismatch):
        check_jvp(g, args)
    check_jvp(g, args, rtol=1e-5)


def test_default_tolerances_documented():
    assert DEFAULT_TOLERANCES["float64"]["rtol"] <= 1e-8
    assert DEFAULT_TOLERANCES["float32"]["rtol"] <= 5e-3


# ---------------------------------------------------------------------------
# With the real compiler
# ---------------------------------------------------------------------------

def _compiler():
    try:
        from fwdjit import fwdjit
    except Exception as e:  # pragma: no cover - compiler not there yet
        pytest.skip("fwdjit compiler not importable: %r" % (e,))
    return fwdjit


def test_plain_function_uses_fwdjit_jvp():
    _compiler()

    def f(x, y):
        return np.sin(x) * y + x ** 2

    check_jvp(f, (_X.copy(), _X[::-1].copy()))


def test_decorated_function():
    fwdjit = _compiler()
    g = fwdjit(F.logistic_loss)
    check_jvp(g, F.CASES["logistic_loss"].args(np.float64))


def _myfun(x):
    return x * x * x


def _myfun_bad(x):
    return x * x * x


def _partial_good(g, ans, x):
    return 3.0 * x * x * g


def _partial_bad(g, ans, x):
    return 3.3 * x * x * g


def _use_myfun(x):
    return _myfun(x) + 1.0


def _use_myfun_bad(x):
    return _myfun_bad(x) + 1.0


def test_defjvp_rule_correct_and_off_by_factor():
    fwdjit = _compiler()
    fwdjit.defjvp(_myfun, _partial_good)
    fwdjit.defjvp(_myfun_bad, _partial_bad)
    check_jvp(fwdjit(_use_myfun), (1.3,))
    check_jvp(fwdjit(_use_myfun), (np.array([0.5, -1.2, 2.0]),))
    with pytest.raises(JVPMismatch) as ei:
        check_jvp(fwdjit(_use_myfun_bad), (1.3,))
    msg = str(ei.value)
    assert "_use_myfun_bad" in msg and "'x' (index 0)" in msg
    assert "rel error: 1.000e-01" in msg


def test_inactive_zeros():
    calls = []

    def jvp(primals, tangents):
        calls.append(tuple(None if t is None else bool(np.any(np.asarray(t) != 0))
                           for t in tangents))
        return _jvp_poly(primals, tangents)
    check_jvp(Exact(_f_poly, jvp), (_X, _X + 1.0, 2), inactive="zeros")
    assert calls == [(True, False, None), (False, True, None), (True, True, None)]
    with pytest.raises(ValueError):
        check_jvp(Exact(_f_poly, jvp), (_X, _X + 1.0, 2), inactive="bogus")


def test_tangents_are_copied_for_mutating_jvp():
    def f(x):
        x *= 2.0
        return x

    def jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        x *= 2.0
        dx *= 2.0          # the tangent of a mutated argument is mutated too
        return x, dx
    t = np.ones(3)
    check_jvp(Exact(f, jvp), (np.ones(3),), tangents=(t,))
    np.testing.assert_array_equal(t, np.ones(3))


def softclip(x):
    return x / (1.0 + np.abs(x))


def softclip_partial(g, ans, x):
    return g / (1.0 + np.abs(x)) ** 2


def softclip_partial_bad(g, ans, x):
    return g / (1.0 + np.abs(x))


def softclip2(x):
    return x / (1.0 + np.abs(x))


def _uses_softclip(x, s):
    return softclip(s * x)


def _uses_softclip2(x, s):
    return softclip2(s * x)


def test_module_docstring_defjvp_example():
    """The example in fwdjit.testing's docstring works as written."""
    fwdjit = _compiler()
    fwdjit.defjvp(softclip, softclip_partial)
    fwdjit.defjvp(softclip2, softclip_partial_bad)
    x = np.array([0.5, -2.0, 3.0])
    check_jvp(fwdjit(_uses_softclip), (x, 1.5))
    check_jvp(fwdjit(_uses_softclip), (x.astype(np.float32), np.float32(1.5)))
    with pytest.raises(JVPMismatch, match="_uses_softclip2"):
        check_jvp(fwdjit(_uses_softclip2), (x, 1.5))
