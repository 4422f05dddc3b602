"""The public API: ``@fwdjit``, ``fwdjit.jvp``, ``fwdjit.defjvp``, and :func:`as_fwdjit`.

Input: a Python function.  Output: a :class:`~fwdjit.targets.cpu.FwdjitFunction`
(the CPU target, :mod:`fwdjit.targets.cpu`), whose primal and JVPs are the
passes' generated code compiled with ``numba.njit``.  :func:`as_fwdjit` is the
one way other modules turn what a user passes (an @fwdjit function, a plain
function, a Numba dispatcher) into one.  The CUDA target
(:mod:`fwdjit.targets.cuda`) is reached through ``fwdjit.fwdjit(target="cuda")``;
no target imports this module.

>>> def sq(x):
...     return x * x
>>> f = as_fwdjit(sq)
>>> f is as_fwdjit(f) is get_fwdjit(sq)
True
>>> f.jvp((3.0,), (1.0,))
(9.0, 6.0)
"""
from __future__ import annotations

import ast
import types as pytypes

import numba

from . import rules as R
from ._version import __version__
from .compiler.resolve import parse_function
from .errors import FwdjitError
from .targets.cache import value_key
# re-exported: the CPU target's names that the package, the CLI, training and tests use from here
from .targets.cpu import FwdjitFunction, get_fwdjit, int_params, numpy_scalars

__all__ = ["fwdjit", "jvp", "defjvp", "as_fwdjit", "get_fwdjit", "FwdjitFunction", "int_params", "numpy_scalars",
           "__version__"]


# -------------------------------------------------------------- entry points
def fwdjit(func=None, *, fastmath=False, cache=True, parallel=False, target="cpu", fuse=None):
    """Decorator: compile ``func`` and give it forward-mode derivatives.

    ``f(*args)`` runs the compiled primal; ``f.jvp(primals, tangents)`` the
    JVP; ``f.tangent_source`` shows the generated code.  ``target="cuda"``
    compiles device functions and kernels instead (see :mod:`fwdjit.targets.cuda`).
    ``fuse``: reductions of elementwise array code (and their tangents) run as
    one loop (:mod:`fwdjit.compiler.fuse`); default on, ``FWDJIT_FUSE=0`` turns
    the default off; the CUDA target does not fuse.
    """
    if func is None:
        return lambda f: fwdjit(f, fastmath=fastmath, cache=cache, parallel=parallel, target=target, fuse=fuse)
    if target == "cuda":
        if parallel:
            raise FwdjitError("parallel=True is for the CPU target (CUDA kernels are parallel already)")
        raise FwdjitError("target='cuda' is dispatched by fwdjit.fwdjit (or use fwdjit.targets.cuda.cuda_fwdjit)")
    if target != "cpu":
        raise FwdjitError(f"unknown target {target!r}: use 'cpu' or 'cuda'")
    if isinstance(func, FwdjitFunction):
        return func
    return FwdjitFunction(func, fastmath=fastmath, cache=cache, parallel=parallel, fuse=fuse)


def as_fwdjit(func):
    """The FwdjitFunction of ``func`` (an @fwdjit function, a plain function or a Numba dispatcher).

    A plain function gets the one shared instance (:func:`get_fwdjit`, default options).
    """
    if isinstance(func, FwdjitFunction):
        return func
    py = getattr(func, "py_func", func)
    if not isinstance(py, pytypes.FunctionType):
        parse_function(py)      # raises the error that says what fwdjit can transform
    return get_fwdjit(py)


def jvp(func, primals, tangents):
    """``(out, dout)`` of a plain Python function (transformed and cached on first use)."""
    function = func if isinstance(func, FwdjitFunction) else get_fwdjit(func)
    return function.jvp(primals, tangents)


def _unique_copy(fn):
    """``fn`` as a new function object whose qualified name ends with the hash of what it computes."""
    import types as _types
    if not isinstance(fn, _types.FunctionType):
        return fn
    copy = _types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__module__ = fn.__module__
    copy.__qualname__ = f"{fn.__qualname__}__{value_key(fn)[:16]}"
    return copy


def _numba_knows(func):
    """A NumPy or math function (or ufunc): Numba types calls to it itself, there is no source to compile."""
    import math

    import numpy as np
    if isinstance(func, np.ufunc):
        return True
    name = getattr(func, "__name__", None)
    return name is not None and any(getattr(m, name, None) is func for m in (np, np.linalg, math))


def defjvp(func, *partials):
    """Register a derivative rule for ``func`` (a function fwdjit cannot see into).

    One partial per argument, in autograd's style: ``partial_i(g, ans, *args)``
    returns the contribution of argument ``i``'s tangent ``g`` to the tangent
    of the result ``ans``; ``None`` marks a non-differentiable argument.
    Partials must be Numba-compilable (they are ``numba.njit``-ed), and so
    must ``func`` (plain Python functions are ``njit``-ed for the primal).

    >>> import numpy as np, numba
    >>> @numba.njit
    ... def softplus(x):
    ...     return np.log1p(np.exp(x))
    >>> _ = defjvp(softplus, lambda g, ans, x: g / (1.0 + np.exp(-x)))
    """
    if not partials:
        raise FwdjitError("defjvp needs one partial per argument (None for non-differentiable ones)")
    from numba.core.dispatcher import Dispatcher
    if isinstance(func, Dispatcher):     # the user's own @njit function, recompiled under a unique name
        compiled = numba.njit(**func.targetoptions)(_unique_copy(func.py_func))
    elif _numba_knows(func):             # np.cumprod, math.gamma: generated code calls it as it is
        compiled = func
    else:
        try:   # compiled by fwdjit's primal path: NumPy's dtype rules for float32 (a plain njit would not)
            compiled = FwdjitFunction(func).primal_function
        except FwdjitError:
            compiled = numba.njit(_unique_copy(func))
    # each partial is compiled as a copy whose qualified name carries the hash of its code, closure
    # and globals: two closures from one factory (same qualified name, different captured values)
    # must not get the same machine-code name (see fwdjit.runtime.define)
    jitted = [None if p is None else
              numba.njit(**p.targetoptions)(_unique_copy(p.py_func)) if isinstance(p, Dispatcher) else
              numba.njit(_unique_copy(p)) for p in partials]

    def fn(c):
        if c.kw:
            raise c.gen.unsupported(f"keyword arguments to {getattr(func, '__name__', 'f')}, which has a "
                                    f"fwdjit.defjvp rule", "the rule's partials take positional arguments: "
                                    "pass them positionally")
        terms = []
        for i, p in enumerate(jitted):
            if p is None or not c.active(i):
                continue
            pname = c.gen.bind(p, f"{getattr(func, '__name__', 'f')}_d{i}_")
            terms.append(ast.Call(ast.Name(pname, ast.Load()),
                                  [c.args[i].t, c.result()] + [a.p() for a in c.args], []))
        return R.add_terms(terms)

    rule = R.Rule(fn, nondiff={i for i, p in enumerate(partials) if p is None})
    rule.compiled = compiled
    rule.key = value_key((func, *partials))     # part of the key of every function that calls func
    R.USER_RULES[func] = rule
    if compiled is not func:
        R.USER_RULES[compiled] = rule
    return func
