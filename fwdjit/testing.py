"""Checking forward-mode derivatives (JVPs) against an independent reference.

The main entry point is :func:`check_jvp`.  Use it in your own test suite when
you write ``fwdjit.defjvp`` rules or when you want to make sure that fwdjit
differentiates one of your functions correctly::

    import numpy as np
    from fwdjit import fwdjit
    from fwdjit.testing import check_jvp

    @fwdjit
    def f(x, W, n):
        y = x
        for _ in range(n):
            y = np.tanh(W @ y)
        return y.sum()

    rng = np.random.default_rng(0)
    check_jvp(f, (rng.standard_normal(3), rng.standard_normal((3, 3)), 4))

Checking a ``defjvp`` rule: differentiate any function that calls the
primitive, and check it over the inputs you care about::

    def softclip(x):
        return x / (1.0 + np.abs(x))

    def softclip_partial(g, ans, x):       # d/dx softclip = 1 / (1 + |x|)^2
        return g / (1.0 + np.abs(x)) ** 2

    fwdjit.defjvp(softclip, softclip_partial)

    @fwdjit
    def uses_it(x, s):
        return softclip(s * x)

    check_jvp(uses_it, (np.array([0.5, -2.0, 3.0]), 1.5))
    check_jvp(uses_it, (np.array([0.5, -2.0, 3.0], np.float32), np.float32(1.5)))

A wrong rule raises :class:`JVPMismatch` (an ``AssertionError``, so pytest
reports it as a failure), naming the argument, the output component, both
values and the error.  Keep inputs away from kinks (``np.abs`` at 0 above):
finite differences across a kink are meaningless, and ``check_jvp`` says so
with :class:`UnreliableReference`.

The reference is computed from the *plain Python* version of the function
(``f.py_func`` for an ``@fwdjit`` function), run by NumPy in float64, with a
high-order central-difference stencil (or, optionally, the complex-step
method).  It never uses fwdjit, so it is independent of the code under test.
"""

import inspect
import math

import numpy as np

__all__ = [
    "check_jvp",
    "numerical_jvp",
    "random_tangents",
    "JVPMismatch",
    "UnreliableReference",
    "DEFAULT_TOLERANCES",
]


class JVPMismatch(AssertionError):
    """A JVP (or its primal output) disagrees with the reference."""


class UnreliableReference(AssertionError):
    """The finite-difference reference itself is not trustworthy.

    Raised when two finite-difference estimates with steps ``h`` and ``h/2``
    disagree by more than the tolerance plus what rounding of the function's
    values explains (``~ eps_mach |f| / h``, so it scales with the function's
    magnitude: ``1e6 + g(x)`` with ``g'(x) = 0`` is fine): the function is probably not smooth
    near the inputs (a kink of ``abs``/``max``, a jump of ``floor``, a branch
    that flips) or the step leaves its domain.  Move the inputs away from the
    kink, pass a smaller ``eps``, or use ``method="complex"``.
    """


#: Default tolerances, keyed by the precision that the check runs at
#: (float32 if any differentiable input or the checked output is float32,
#: else float64).  ``rtol`` is relative to the largest magnitude of the
#: reference tangent of the output being checked (``max|ref|``), ``atol`` is
#: absolute.  ``primal_rtol`` is for comparing the JVP's primal output with the
#: plain function's output.
#:
#: float64: the 8th-order reference is accurate to ~1e-12 relative for smooth
#: functions, so 1e-8 leaves room for the difference between compiled and
#: NumPy arithmetic (summation order, libm vs. SIMD transcendental functions)
#: while still catching any wrong derivative rule (which is typically off by
#: O(1)).
#:
#: float32: the JVP is computed in float32 (unit roundoff 6e-8), while the
#: reference differentiates the float64 function.  Rounding errors of the
#: tangent grow like those of the primal: roughly ``n * eps`` for reductions
#: over ``n`` terms, amplified by cancellation (the condition number of the
#: tangent computation).  ``rtol=2e-3`` (~1.7e4 float32 ulps) accepts
#: condition numbers up to ~1e3 on length-100 reductions, yet is still three
#: orders of magnitude below the O(1) relative error of a wrong rule.
DEFAULT_TOLERANCES = {
    "float64": dict(rtol=1e-8, atol=1e-12, primal_rtol=1e-10, primal_atol=1e-12),
    "float32": dict(rtol=2e-3, atol=1e-6, primal_rtol=1e-4, primal_atol=1e-6),
}

# Central-difference coefficients c_k for the first derivative:
#   f'(x) ~ sum_k c_k (f(x + k h) - f(x - k h)) / h
_STENCILS = {
    2: (1.0 / 2.0,),
    4: (2.0 / 3.0, -1.0 / 12.0),
    6: (3.0 / 4.0, -3.0 / 20.0, 1.0 / 60.0),
    8: (4.0 / 5.0, -1.0 / 5.0, 4.0 / 105.0, -1.0 / 280.0),
}
# Default relative step per stencil order (close to the optimum
# eps_machine ** (1 / (order + 1)) but smaller, to keep the stencil inside
# the domain / away from kinks: the widest point is (order / 2) * h).
_DEFAULT_EPS = {2: 1e-6, 4: 1e-4, 6: 1e-3, 8: 2e-3}


# ---------------------------------------------------------------------------
# Pytree-ish helpers (tuples only)
# ---------------------------------------------------------------------------

def _is_float_scalar(v):
    # np.float64 is a subclass of Python float; bool is not a float.
    return isinstance(v, (float, np.floating))


def _is_float_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _is_differentiable(v):
    if isinstance(v, tuple):
        return any(_is_differentiable(e) for e in v)
    return _is_float_scalar(v) or _is_float_array(v)


def _float_leaves(v):
    """All differentiable leaves of ``v`` (depth-first)."""
    if isinstance(v, tuple):
        out = []
        for e in v:
            out.extend(_float_leaves(e))
        return out
    if _is_float_scalar(v) or _is_float_array(v):
        return [v]
    return []


def _dtype_of(v):
    """NumPy dtype of a value (Python float -> float64, int -> int64...)."""
    if isinstance(v, (np.ndarray, np.generic)):
        return v.dtype
    if isinstance(v, bool):
        return np.dtype(bool)
    if isinstance(v, int):
        return np.dtype(np.int64)
    if isinstance(v, float):
        return np.dtype(np.float64)
    if isinstance(v, complex):
        return np.dtype(np.complex128)
    return np.asarray(v).dtype


def _copy(v):
    """Deep copy of arrays inside tuples (functions may mutate arguments)."""
    if isinstance(v, tuple):
        return tuple(_copy(e) for e in v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def _random_tangent(v, rng):
    if isinstance(v, tuple):
        if not _is_differentiable(v):
            return None
        return tuple(_random_tangent(e, rng) for e in v)
    if _is_float_array(v):
        return rng.standard_normal(v.shape).astype(v.dtype)
    if isinstance(v, np.floating):
        return type(v)(rng.standard_normal())
    if isinstance(v, float):
        return float(rng.standard_normal())
    return None


def _zero_tangent(v):
    if isinstance(v, tuple):
        if not _is_differentiable(v):
            return None
        return tuple(_zero_tangent(e) for e in v)
    if _is_float_array(v):
        return np.zeros_like(v)
    if isinstance(v, np.floating):
        return type(v)(0.0)
    if isinstance(v, float):
        return 0.0
    return None


def random_tangents(args, seed=0):
    """Random tangents matching ``args``: standard normal values with each
    argument's type/dtype/shape, ``None`` for non-differentiable arguments."""
    rng = np.random.default_rng(seed)
    return tuple(_random_tangent(a, rng) for a in args)


def _upcast(v, complex_step=False):
    """Cast float leaves to float64 (or complex128) for the reference."""
    if isinstance(v, tuple):
        return tuple(_upcast(e, complex_step) for e in v)
    target = np.complex128 if complex_step else np.float64
    if _is_float_array(v):
        return v.astype(target)
    if _is_float_scalar(v):
        return complex(v) if complex_step else float(v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def _perturb(v, t, s):
    """``v + s * t`` on float leaves (``t`` is None = no perturbation)."""
    if t is None:
        return _copy(v)
    if isinstance(v, tuple):
        return tuple(_perturb(e, te, s) for e, te in zip(v, t))
    if isinstance(v, np.ndarray):
        return v + s * np.asarray(t, dtype=np.float64)
    return v + s * float(t)


def _flatten_out(out, path="out"):
    """[(path, leaf)] for a (possibly nested tuple) output."""
    if isinstance(out, tuple):
        res = []
        for i, e in enumerate(out):
            res.extend(_flatten_out(e, "%s[%d]" % (path, i)))
        return res
    return [(path, out)]


def _as_float_array(v, dtype=np.float64):
    if v is None:
        return None
    return np.asarray(v).astype(dtype)


def _plain_function(f):
    for attr in ("py_func", "__wrapped__"):
        g = getattr(f, attr, None)
        if callable(g):
            return g
    return f


def _arg_names(func, nargs):
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(nargs):
        names.append(repr(params[i]) if i < len(params) else "#%d" % i)
    return names


def _func_name(f):
    g = _plain_function(f)
    return getattr(g, "__qualname__", None) or getattr(g, "__name__", None) or repr(f)


# ---------------------------------------------------------------------------
# Reference derivatives
# ---------------------------------------------------------------------------

def _eval_plain(fn, args):
    return _flatten_out(fn(*args))


def _direction_scale(args, tangents):
    """The largest step ``h`` such that ``h * |t|`` stays ~ the scale of each
    perturbed argument: min over leaves of max|x| / max|t| (max|x| = 1 for
    an all-zero leaf)."""
    scale = math.inf
    for a, t in zip(args, tangents):
        if t is None:
            continue
        for xa, ta in zip(_float_leaves(a), _float_leaves(t)):
            tmax = float(np.max(np.abs(np.asarray(ta, dtype=np.float64)), initial=0.0))
            if tmax == 0.0:
                continue
            xmax = float(np.max(np.abs(np.asarray(xa, dtype=np.float64)), initial=0.0))
            if not math.isfinite(xmax) or xmax == 0.0:
                xmax = 1.0
            scale = min(scale, xmax / tmax)
    return 1.0 if scale == math.inf else scale


def _fd(fn, args, tangents, h, coeffs):
    acc = None
    for k, c in enumerate(coeffs, 1):
        plus = _eval_plain(fn, [_perturb(a, t, k * h) for a, t in zip(args, tangents)])
        minus = _eval_plain(fn, [_perturb(a, t, -k * h) for a, t in zip(args, tangents)])
        terms = [c * (_as_float_array(p) - _as_float_array(m))
                 for (_, p), (_, m) in zip(plus, minus)]
        acc = terms if acc is None else [x + y for x, y in zip(acc, terms)]
    return [a / h for a in acc]


def numerical_jvp(f, args, tangents, *, method="fd", order=8, eps=None):
    """Reference JVP of the plain Python function ``f`` (not of fwdjit).

    Evaluates ``f`` (``f.py_func`` if present) with NumPy in float64 (float32
    inputs are cast up).  Returns ``(paths, ref, noise)``: the output leaf
    paths (``"out"``, ``"out[0]"``...), the reference tangent of each output
    leaf as a float64 array, and for ``method="fd"`` an estimate of its
    absolute error (``|D(h) - D(h/2)|``; zeros for ``method="complex"``).

    ``method="fd"``: central differences of the given ``order`` (2, 4, 6 or
    8) with step ``h = eps * min_leaf(max|x| / max|t|)``.
    ``method="complex"``: complex step ``Im f(x + i h t) / h`` with
    ``h = 1e-30``; exact to rounding, but ``f`` must be analytic and written
    with operations that propagate complex numbers (no ``abs``, ``max``,
    comparisons, ``math.*``...).
    """
    paths, ref, noise, _ = _numerical_jvp(f, args, tangents, method=method, order=order, eps=eps)
    return paths, ref, noise


def _numerical_jvp(f, args, tangents, *, method="fd", order=8, eps=None):
    """:func:`numerical_jvp` plus the rounding part of the noise (``2 sum|c_k| eps_mach |f| / h``,
    per component): the error that rounding of ``f``'s values alone puts in the stencil."""
    fn = _plain_function(f)
    args = tuple(args)
    tangents = tuple(tangents)
    if len(tangents) != len(args):
        raise ValueError("need one tangent per argument (%d), got %d"
                         % (len(args), len(tangents)))
    if method == "complex":
        h = 1e-30
        cargs = [_upcast(a, complex_step=True) for a in args]
        pert = [_perturb(a, t, 1j * h) if t is not None else a
                for a, t in zip(cargs, tangents)]
        out = _eval_plain(fn, pert)
        paths, ref = [], []
        for path, leaf in out:
            arr = np.asarray(leaf)
            if arr.dtype.kind == "f":
                raise ValueError(
                    "complex step: output %s of %s is real (%s); the function "
                    "drops the imaginary part, so method='complex' cannot be "
                    "used for it" % (path, _func_name(f), arr.dtype))
            paths.append(path)
            ref.append(arr.imag.astype(np.float64) / h if arr.dtype.kind == "c"
                       else np.zeros(arr.shape))
        zeros = [np.zeros_like(r) for r in ref]
        return paths, ref, zeros, zeros
    if method != "fd":
        raise ValueError("method must be 'fd' or 'complex', got %r" % (method,))
    if order not in _STENCILS:
        raise ValueError("order must be one of %s" % sorted(_STENCILS))
    coeffs = _STENCILS[order]
    if eps is None:
        eps = _DEFAULT_EPS[order]
    fargs = [_upcast(a) for a in args]
    h = eps * _direction_scale(fargs, tangents)
    d1 = _fd(fn, fargs, tangents, h, coeffs)
    d2 = _fd(fn, fargs, tangents, h / 2.0, coeffs)
    center = _eval_plain(fn, [_copy(a) for a in fargs])
    paths = [p for p, _ in center]
    # |D(h) - D(h/2)| estimates the truncation error; add the rounding error
    # of the stencil itself (2 * sum|c_k| * eps * |f| / h) as a floor.
    rounding = 2.0 * sum(abs(c) for c in coeffs) * np.finfo(np.float64).eps / h
    floors = [rounding * np.abs(_as_float_array(v)) for _, v in center]
    noise = [np.abs(a - b) + fl for a, b, fl in zip(d1, d2, floors)]
    return paths, d1, noise, floors


# ---------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------

def _fmt_index(idx, shape):
    if len(shape) == 0:
        return "(scalar)"
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _resolve_jvp(f):
    if hasattr(f, "jvp") and callable(f.jvp):
        return f.jvp
    from fwdjit import fwdjit as _fj  # lazy: fwdjit imports this module's package

    def _jvp(primals, tangents):
        return _fj.jvp(f, primals, tangents)
    return _jvp


def _precision(arrays_or_dtypes):
    for d in arrays_or_dtypes:
        if d is not None and np.dtype(d).kind == "f" and np.dtype(d).itemsize < 8:
            return "float32"
    return "float64"


def check_jvp(f, args, tangents=None, *, argnums=None, rtol=None, atol=None,
              eps=None, order=8, method="fd", seed=0, check_primal=True,
              check_dtype=True, inactive="none"):
    """Check ``f``'s forward-mode derivative against an independent reference.

    Parameters
    ----------
    f : callable
        An ``@fwdjit`` function (anything with a ``.jvp(primals, tangents)``
        method), or a plain Python function, which is then differentiated with
        ``fwdjit.jvp(f, primals, tangents)``.  The reference always runs the
        plain Python function (``f.py_func`` if present, else ``f``) with
        NumPy.
    args : tuple
        Primal arguments.  Differentiable arguments are float scalars (Python
        ``float``, ``np.float32``, ``np.float64``), float arrays (any ndim,
        0-d included), and tuples containing them.  ``int``/``bool`` (and
        integer arrays) are not differentiable and always get a ``None``
        tangent.  Arrays are copied before every call, so ``f`` may mutate
        its arguments.
    tangents : tuple, optional
        One tangent per argument (``None`` for a zero tangent).  Default:
        standard-normal tangents with each argument's dtype/shape, drawn from
        ``numpy.random.default_rng(seed)``.
    argnums : int or sequence of int, optional
        Only check these arguments (default: every differentiable argument).
    rtol, atol : float, optional
        The check at each output component ``i`` is
        ``|jvp_i - ref_i| <= atol + rtol * max|ref| + noise_i``, where
        ``max|ref|`` is the largest magnitude of the reference tangent of that
        output, and ``noise_i`` the estimated error of the finite-difference
        reference itself.  Defaults (see ``DEFAULT_TOLERANCES``): float64
        ``rtol=1e-8, atol=1e-12``; float32 (if any checked input or the
        output is float32) ``rtol=2e-3, atol=1e-6``.
    eps : float, optional
        Relative finite-difference step; the step along the tangent direction
        is ``eps * min(max|x| / max|t|)`` over the perturbed leaves (a leaf
        that is all zeros counts as max|x| = 1).
        Default depends on ``order`` (2e-3 for order 8).  The stencil reaches
        ``order / 2`` steps away, so inputs must be farther than that from
        kinks, jumps and domain boundaries.
    order : {2, 4, 6, 8}
        Order of the central-difference stencil (default 8).
    method : {"fd", "complex"}
        ``"fd"``: central differences (default).  ``"complex"``: complex-step
        derivative, exact to rounding, for functions that are analytic and
        written so that complex inputs propagate (NumPy ufuncs, ``+ - * /``,
        ``**``; not ``abs``, ``max``, comparisons, ``math.*``, ``floor``).
    seed : int
        Seed for the random tangents.
    check_primal : bool
        Also check that the primal output returned by the JVP equals the plain
        function's output (``primal_rtol`` 1e-10 for float64, 1e-4 for
        float32, relative to the output's max magnitude).
    check_dtype : bool
        Also check that the JVP's primal output has the dtype of the plain
        function's output (as NumPy computes it, NEP 50 rules included).
    inactive : {"none", "zeros"}
        The tangent given to the differentiable arguments that are not being
        checked: ``None`` (default; every combination compiles its own
        specialization) or explicit zeros of the argument's type/dtype/shape
        (one specialization serves all checks: faster when compile time
        dominates).

    What is checked
    ---------------
    For every differentiable argument ``k`` separately (tangent of ``k``
    random, all others ``None`` -- or zeros, see ``inactive``), and then for
    all differentiable arguments together:

    * the output structure (tuple or not, tuple length) of the JVP matches the
      plain function's;
    * each output tangent has the dtype and shape of the corresponding primal
      output (for integer/bool outputs the tangent may be ``None`` and must
      otherwise be zero);
    * the tangent agrees with the reference to the tolerances above;
    * (``check_primal``, ``check_dtype``) the primal output matches the plain
      function.

    Returns
    -------
    list of dict
        One entry per (check, output) with keys ``"check"``, ``"output"``,
        ``"max_abs_err"``, ``"max_rel_err"`` (relative to ``max|ref|``).

    Raises
    ------
    JVPMismatch (an AssertionError)
        With the function, the argument, the output, the worst component's
        index, the fwdjit and reference values and the abs/rel errors.
    UnreliableReference (an AssertionError)
        If the finite-difference reference is not smooth enough to check
        against (see its docstring).
    """
    args = tuple(args)
    n = len(args)
    fname = _func_name(f)
    plain = _plain_function(f)
    names = _arg_names(plain, n)
    jvp = _resolve_jvp(f)

    if tangents is None:
        tangents = random_tangents(args, seed)
    else:
        tangents = tuple(tangents)
        if len(tangents) != n:
            raise ValueError("check_jvp: %d arguments but %d tangents" % (n, len(tangents)))
        tangents = tuple(t if _is_differentiable(a) else None
                         for a, t in zip(args, tangents))

    if inactive not in ("none", "zeros"):
        raise ValueError("inactive must be 'none' or 'zeros', got %r" % (inactive,))
    diff = [i for i in range(n) if _is_differentiable(args[i]) and tangents[i] is not None]
    if argnums is not None:
        sel = [argnums] if isinstance(argnums, int) else list(argnums)
        sel = [i % n for i in sel]
        for i in sel:
            if not _is_differentiable(args[i]):
                raise ValueError("check_jvp: argument %s (index %d) is not differentiable "
                                 "(%s)" % (names[i], i, type(args[i]).__name__))
        diff = [i for i in diff if i in sel]

    # Precision of the check: float32 if any float input is float32.
    in_dtypes = [_dtype_of(leaf) for a in args for leaf in _float_leaves(a)]

    # Plain (reference) primal output, with the caller's dtypes.
    plain_out = _flatten_out(plain(*_copy(args)))

    others = "other tangents zero" if inactive == "zeros" else "other tangents None"
    configs = [("argument %s (index %d) only, %s" % (names[i], i, others), [i])
               for i in diff]
    if len(diff) > 1:
        configs.append(("all differentiable arguments %s together"
                        % ", ".join(names[i] for i in diff), diff))
    if not configs:
        configs.append(("no differentiable argument (all tangents None)", []))

    report = []
    for label, active in configs:
        if inactive == "zeros":
            tans = tuple(tangents[i] if i in active else
                         (_zero_tangent(args[i]) if i in diff else None)
                         for i in range(n))
        else:
            tans = tuple(tangents[i] if i in active else None for i in range(n))
        header = "check_jvp(%s): %s" % (fname, label)

        # copies: the function may mutate its arguments, and fwdjit then
        # mutates the corresponding tangents the same way
        out, tout = jvp(_copy(args), _copy(tans))
        is_tuple = isinstance(out, tuple)
        if is_tuple != isinstance(tout, tuple):
            raise JVPMismatch("%s\n  primal output is %s but tangent output is %s"
                              % (header, type(out).__name__, type(tout).__name__))
        pout = _flatten_out(out)
        if is_tuple and len(pout) != len(_flatten_out(tout)):
            raise JVPMismatch("%s\n  primal output has %d leaves but tangent output has %d"
                              % (header, len(pout), len(_flatten_out(tout))))
        if len(pout) != len(plain_out) or [p for p, _ in pout] != [p for p, _ in plain_out]:
            raise JVPMismatch(
                "%s\n  output structure differs: fwdjit %s, plain function %s"
                % (header, [p for p, _ in pout], [p for p, _ in plain_out]))
        tleaves = _flatten_out(tout)

        if active:
            if method == "fd":
                paths, refs, noises, floors = _numerical_jvp(plain, args, tans, method="fd",
                                                             order=order, eps=eps)
            else:
                paths, refs, noises, floors = _numerical_jvp(plain, args, tans, method=method)
        else:
            paths = [p for p, _ in plain_out]
            refs = [np.zeros(np.shape(v)) for _, v in plain_out]
            noises = [np.zeros_like(r) for r in refs]
            floors = noises

        for (path, pv), (_, tv), (_, qv), ref, noise, floor in zip(pout, tleaves, plain_out,
                                                                   refs, noises, floors):
            pdt = _dtype_of(pv)
            where = "%s\n  output %s (primal shape %s, dtype %s)" % (
                header, path, np.shape(pv), pdt)

            # primal vs plain function
            if check_dtype and _dtype_of(qv) != pdt:
                raise JVPMismatch("%s\n  primal output dtype %s differs from the plain "
                                  "function's %s" % (where, pdt, _dtype_of(qv)))
            if np.shape(qv) != np.shape(pv):
                raise JVPMismatch("%s\n  primal output shape %s differs from the plain "
                                  "function's %s" % (where, np.shape(pv), np.shape(qv)))
            prec = _precision(in_dtypes + [pdt, _dtype_of(qv)])
            tol = DEFAULT_TOLERANCES[prec]
            if check_primal and pdt.kind in "fciub":
                a = np.asarray(pv).astype(np.complex128 if pdt.kind == "c" else np.float64)
                b = np.asarray(qv).astype(a.dtype)
                if a.dtype.kind == "f" and a.size:
                    err = np.abs(a - b)
                    pscale = float(np.max(np.abs(b), initial=0.0)) if np.all(np.isfinite(b)) else 0.0
                    allowed = tol["primal_atol"] + tol["primal_rtol"] * pscale
                    bad = ~(err <= allowed) & ~((a == b) | (np.isnan(a) & np.isnan(b)))
                    if np.any(bad):
                        k = np.unravel_index(int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1))), a.shape)
                        raise JVPMismatch(
                            "%s\n  primal output differs from the plain function at %s:\n"
                            "    fwdjit:         %r\n    plain function: %r\n"
                            "    abs error: %.3e (allowed %.3e = primal_atol %.1e + primal_rtol %.1e * max|out| %.3e)"
                            % (where, _fmt_index(k, a.shape), a[k], b[k], err[k], allowed,
                               tol["primal_atol"], tol["primal_rtol"], pscale))

            # tangent structure: dtype/shape equal to the primal output
            if pdt.kind not in "fc":
                if tv is not None and np.any(np.asarray(tv) != 0):
                    raise JVPMismatch("%s\n  non-float output has a nonzero tangent %r"
                                      % (where, tv))
                report.append(dict(check=label, output=path, max_abs_err=0.0, max_rel_err=0.0))
                continue
            if tv is None:
                raise JVPMismatch("%s\n  tangent output is None for a float output" % where)
            if _dtype_of(tv) != pdt or np.shape(tv) != np.shape(pv):
                raise JVPMismatch(
                    "%s\n  tangent has dtype %s and shape %s, but the primal output has "
                    "dtype %s and shape %s" % (where, _dtype_of(tv), np.shape(tv), pdt,
                                               np.shape(pv)))

            # tangent values
            got = np.asarray(tv).astype(np.float64)
            r = np.asarray(ref, dtype=np.float64)
            if got.shape != r.shape:
                raise JVPMismatch("%s\n  tangent shape %s differs from the reference's %s"
                                  % (where, got.shape, r.shape))
            rt = tol["rtol"] if rtol is None else rtol
            at = tol["atol"] if atol is None else atol
            finite = np.isfinite(r)
            scale = float(np.max(np.abs(r[finite]), initial=0.0))
            noise = np.where(np.isfinite(noise), noise, np.inf)
            # The reference is unreliable when D(h) and D(h/2) disagree by more than the
            # tolerance *and* more than rounding explains.  Rounding of f's values puts up to
            # ``floor`` = 2 sum|c| eps_mach |f| / h into D(h/2) (half that into D(h)), so a large
            # |f| with a small derivative (1e6 + g(x) with g'(x) = 0) is noisy, not unsmooth: the
            # allowance scales with the function's magnitude.  For |f| ~ 1 it is ~1e-12.
            floor = np.where(np.isfinite(floor), np.asarray(floor, dtype=np.float64), 0.0)
            excess = noise - 3.0 * floor            # |D(h) - D(h/2)| beyond 2 * floor
            if float(np.max(excess, initial=0.0)) > at + 10.0 * rt * scale:
                k = np.unravel_index(int(np.argmax(excess)), r.shape) if r.ndim else ()
                raise UnreliableReference(
                    "%s\n  the finite-difference reference is unreliable: estimates with "
                    "steps h and h/2 differ by %.3e at %s, %.3e more than rounding of the "
                    "function's values explains (max|ref| = %.3e, rtol %.1e).\n"
                    "  Is the function smooth near these inputs (abs/max/floor kinks, "
                    "branches, domain edges)?  Try a smaller eps or method='complex'."
                    % (where, float(noise[k] - floor[k]), _fmt_index(k, r.shape), float(excess[k]),
                       scale, rt))
            err = np.abs(got - r)
            allowed = at + rt * scale + noise
            bad = ~(err <= allowed)
            bad &= ~(got == r)  # equal infinities are fine
            rel = err / scale if scale > 0 else np.where(err > 0, np.inf, 0.0)
            entry = dict(check=label, output=path,
                         max_abs_err=float(np.max(err, initial=0.0)),
                         max_rel_err=float(np.max(np.where(np.isnan(rel), np.inf, rel), initial=0.0)))
            report.append(entry)
            if np.any(bad):
                score = np.where(bad, np.nan_to_num(err - allowed, nan=np.inf), -np.inf)
                k = np.unravel_index(int(np.argmax(score)), r.shape) if r.ndim else ()
                method_desc = ("order-%d central differences" % order if method == "fd"
                               else "complex step")
                raise JVPMismatch(
                    "%s\n  tangent mismatch at component %s (%d of %d components fail)\n"
                    "    fwdjit:    %r\n    reference: %r  (%s)\n"
                    "    abs error: %.3e   rel error: %.3e (relative to max|ref| = %.3e)\n"
                    "    allowed:   %.3e = atol %.1e + rtol %.1e * max|ref| + reference noise %.1e"
                    % (where, _fmt_index(k, r.shape), int(np.sum(bad)), r.size,
                       float(got[k]), float(r[k]), method_desc, float(err[k]),
                       float(rel[k]), scale, float(allowed[k]), at, rt, float(noise[k])))
    return report
