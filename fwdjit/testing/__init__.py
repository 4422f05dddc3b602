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

import numpy as np

from .compare import (DEFAULT_TOLERANCES, JVPMismatch, UnreliableReference, check_primal_output,
                      check_structure, check_tangent_form, check_tangent_values, precision)
from .reference import numerical_jvp, numerical_jvp_floors
from .values import (arg_names, copy_args, dtype_of, flatten_out, float_leaves, func_name, is_differentiable,
                     plain_function, random_tangents, zero_tangent)

__all__ = [
    "check_jvp",
    "numerical_jvp",
    "random_tangents",
    "JVPMismatch",
    "UnreliableReference",
    "DEFAULT_TOLERANCES",
]


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
    plain = plain_function(f)
    names = arg_names(plain, len(args))
    tangents = _tangents_for(args, tangents, seed)
    if inactive not in ("none", "zeros"):
        raise ValueError("inactive must be 'none' or 'zeros', got %r" % (inactive,))
    diff = _checked_arguments(args, tangents, argnums, names)
    in_dtypes = [dtype_of(leaf) for a in args for leaf in float_leaves(a)]   # float32 in: float32 check
    plain_out = flatten_out(plain(*copy_args(args)))
    jvp = _resolve_jvp(f)
    report = []
    for label, active in _configurations(diff, names, inactive):
        tans = _tangents_of_configuration(args, tangents, active, diff, inactive)
        header = "check_jvp(%s): %s" % (func_name(f), label)
        # copies: the function may mutate its arguments, and fwdjit then
        # mutates the corresponding tangents the same way
        out, tout = jvp(copy_args(args), copy_args(tans))
        pout, tleaves = check_structure(header, out, tout, plain_out, flatten_out)
        if active:
            kw = dict(order=order, eps=eps) if method == "fd" else {}
            _, refs, noises, floors = numerical_jvp_floors(plain, args, tans, method=method, **kw)
        else:
            refs = [np.zeros(np.shape(v)) for _, v in plain_out]
            noises = floors = [np.zeros_like(r) for r in refs]
        for (path, pv), (_, tv), (_, qv), ref, noise, floor in zip(pout, tleaves, plain_out, refs, noises, floors):
            where = "%s\n  output %s (primal shape %s, dtype %s)" % (header, path, np.shape(pv), dtype_of(pv))
            tol = DEFAULT_TOLERANCES[precision(in_dtypes + [dtype_of(pv), dtype_of(qv)])]
            check_primal_output(where, pv, qv, tol, check_primal, check_dtype)
            entry = dict(max_abs_err=0.0, max_rel_err=0.0)
            if check_tangent_form(where, pv, tv):
                entry = check_tangent_values(where, tv, ref, noise, floor, tol, method, order, rtol, atol)
            report.append(dict(check=label, output=path, **entry))
    return report


def _tangents_for(args, tangents, seed):
    """The tangents to check with: random ones (seeded), or the caller's with ``None`` for
    arguments that are not differentiable."""
    if tangents is None:
        return random_tangents(args, seed)
    tangents = tuple(tangents)
    if len(tangents) != len(args):
        raise ValueError("check_jvp: %d arguments but %d tangents" % (len(args), len(tangents)))
    return tuple(t if is_differentiable(a) else None for a, t in zip(args, tangents))


def _checked_arguments(args, tangents, argnums, names):
    """Indices of the differentiable arguments to check (``argnums`` or all)."""
    n = len(args)
    diff = [i for i in range(n) if is_differentiable(args[i]) and tangents[i] is not None]
    if argnums is None:
        return diff
    sel = [i % n for i in ([argnums] if isinstance(argnums, int) else list(argnums))]
    for i in sel:
        if not is_differentiable(args[i]):
            raise ValueError("check_jvp: argument %s (index %d) is not differentiable "
                             "(%s)" % (names[i], i, type(args[i]).__name__))
    return [i for i in diff if i in sel]


def _configurations(diff, names, inactive):
    """``[(label, active argument indices)]``: each argument alone, then all together."""
    others = "other tangents zero" if inactive == "zeros" else "other tangents None"
    configs = [("argument %s (index %d) only, %s" % (names[i], i, others), [i]) for i in diff]
    if len(diff) > 1:
        configs.append(("all differentiable arguments %s together" % ", ".join(names[i] for i in diff), diff))
    return configs or [("no differentiable argument (all tangents None)", [])]


def _tangents_of_configuration(args, tangents, active, diff, inactive):
    if inactive == "zeros":
        return tuple(tangents[i] if i in active else (zero_tangent(args[i]) if i in diff else None)
                     for i in range(len(args)))
    return tuple(tangents[i] if i in active else None for i in range(len(args)))


def _resolve_jvp(f):
    if hasattr(f, "jvp") and callable(f.jvp):
        return f.jvp
    from fwdjit import fwdjit as _fj  # lazy: fwdjit imports this module's package

    def _jvp(primals, tangents):
        return _fj.jvp(f, primals, tangents)
    return _jvp
