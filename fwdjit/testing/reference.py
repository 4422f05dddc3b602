"""The reference derivative: high-order central differences or the complex step of the *plain*
Python function, run by NumPy in float64 (never by fwdjit).

>>> import numpy as np
>>> paths, ref, noise = numerical_jvp(lambda x: x ** 3, (2.0,), (1.0,))
>>> paths, round(float(ref[0]), 8)
(['out'], 12.0)
"""
import math

import numpy as np

from .values import (as_float_array, copy_args, float_leaves, flatten_out, func_name, perturb, plain_function,
                     upcast)

# Central-difference coefficients c_k for the first derivative:
#   f'(x) ~ sum_k c_k (f(x + k h) - f(x - k h)) / h
STENCILS = {
    2: (1.0 / 2.0,),
    4: (2.0 / 3.0, -1.0 / 12.0),
    6: (3.0 / 4.0, -3.0 / 20.0, 1.0 / 60.0),
    8: (4.0 / 5.0, -1.0 / 5.0, 4.0 / 105.0, -1.0 / 280.0),
}
# Default relative step per stencil order (close to the optimum
# eps_machine ** (1 / (order + 1)) but smaller, to keep the stencil inside
# the domain / away from kinks: the widest point is (order / 2) * h).
DEFAULT_EPS = {2: 1e-6, 4: 1e-4, 6: 1e-3, 8: 2e-3}



def eval_plain(fn, args):
    return flatten_out(fn(*args))


def direction_scale(args, tangents):
    """The largest step ``h`` such that ``h * |t|`` stays ~ the scale of each
    perturbed argument: min over leaves of max|x| / max|t| (max|x| = 1 for
    an all-zero leaf)."""
    scale = math.inf
    for a, t in zip(args, tangents):
        if t is None:
            continue
        for xa, ta in zip(float_leaves(a), float_leaves(t)):
            tmax = float(np.max(np.abs(np.asarray(ta, dtype=np.float64)), initial=0.0))
            if tmax == 0.0:
                continue
            xmax = float(np.max(np.abs(np.asarray(xa, dtype=np.float64)), initial=0.0))
            if not math.isfinite(xmax) or xmax == 0.0:
                xmax = 1.0
            scale = min(scale, xmax / tmax)
    return 1.0 if scale == math.inf else scale


def fd(fn, args, tangents, h, coeffs):
    acc = None
    for k, c in enumerate(coeffs, 1):
        plus = eval_plain(fn, [perturb(a, t, k * h) for a, t in zip(args, tangents)])
        minus = eval_plain(fn, [perturb(a, t, -k * h) for a, t in zip(args, tangents)])
        terms = [c * (as_float_array(p) - as_float_array(m))
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
    paths, ref, noise, _ = numerical_jvp_floors(f, args, tangents, method=method, order=order, eps=eps)
    return paths, ref, noise


def numerical_jvp_floors(f, args, tangents, *, method="fd", order=8, eps=None):
    """:func:`numerical_jvp` plus the rounding part of the noise (``2 sum|c_k| eps_mach |f| / h``,
    per component): the error that rounding of ``f``'s values alone puts in the stencil."""
    fn = plain_function(f)
    args = tuple(args)
    tangents = tuple(tangents)
    if len(tangents) != len(args):
        raise ValueError("need one tangent per argument (%d), got %d"
                         % (len(args), len(tangents)))
    if method == "complex":
        h = 1e-30
        cargs = [upcast(a, complex_step=True) for a in args]
        pert = [perturb(a, t, 1j * h) if t is not None else a
                for a, t in zip(cargs, tangents)]
        out = eval_plain(fn, pert)
        paths, ref = [], []
        for path, leaf in out:
            arr = np.asarray(leaf)
            if arr.dtype.kind == "f":
                raise ValueError(
                    "complex step: output %s of %s is real (%s); the function "
                    "drops the imaginary part, so method='complex' cannot be "
                    "used for it" % (path, func_name(f), arr.dtype))
            paths.append(path)
            ref.append(arr.imag.astype(np.float64) / h if arr.dtype.kind == "c"
                       else np.zeros(arr.shape))
        zeros = [np.zeros_like(r) for r in ref]
        return paths, ref, zeros, zeros
    if method != "fd":
        raise ValueError("method must be 'fd' or 'complex', got %r" % (method,))
    if order not in STENCILS:
        raise ValueError("order must be one of %s" % sorted(STENCILS))
    coeffs = STENCILS[order]
    if eps is None:
        eps = DEFAULT_EPS[order]
    fargs = [upcast(a) for a in args]
    h = eps * direction_scale(fargs, tangents)
    d1 = fd(fn, fargs, tangents, h, coeffs)
    d2 = fd(fn, fargs, tangents, h / 2.0, coeffs)
    center = eval_plain(fn, [copy_args(a) for a in fargs])
    paths = [p for p, _ in center]
    # |D(h) - D(h/2)| estimates the truncation error; add the rounding error
    # of the stencil itself (2 * sum|c_k| * eps * |f| / h) as a floor.
    rounding = 2.0 * sum(abs(c) for c in coeffs) * np.finfo(np.float64).eps / h
    floors = [rounding * np.abs(as_float_array(v)) for _, v in center]
    noise = [np.abs(a - b) + fl for a, b, fl in zip(d1, d2, floors)]
    return paths, d1, noise, floors
