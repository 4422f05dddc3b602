"""Values as check_jvp sees them: float leaves of arguments (tuples) and outputs (tuples, lists), copies,
random and zero tangents, casts for the reference.

>>> import numpy as np
>>> flatten_out((1.0, (np.zeros(2), 3)))[1][0]
'out[1][0]'
>>> [type(t).__name__ for t in random_tangents((np.float32(1.0), 2, np.ones(2)))]
['float32', 'NoneType', 'ndarray']
"""
import inspect

import numpy as np


def is_float_scalar(v):
    # np.float64 is a subclass of Python float; bool is not a float.
    return isinstance(v, (float, np.floating))


def is_float_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"


def is_differentiable(v):
    if isinstance(v, tuple):
        return any(is_differentiable(e) for e in v)
    return is_float_scalar(v) or is_float_array(v)


def float_leaves(v):
    """All differentiable leaves of ``v`` (depth-first)."""
    if isinstance(v, tuple):
        out = []
        for e in v:
            out.extend(float_leaves(e))
        return out
    if is_float_scalar(v) or is_float_array(v):
        return [v]
    return []


def dtype_of(v):
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


def copy_args(v):
    """Deep copy of arrays inside tuples (functions may mutate arguments)."""
    if isinstance(v, tuple):
        return tuple(copy_args(e) for e in v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def random_tangent(v, rng):
    if isinstance(v, tuple):
        if not is_differentiable(v):
            return None
        return tuple(random_tangent(e, rng) for e in v)
    if is_float_array(v):
        return rng.standard_normal(v.shape).astype(v.dtype)
    if isinstance(v, np.floating):
        return type(v)(rng.standard_normal())
    if isinstance(v, float):
        return float(rng.standard_normal())
    return None


def zero_tangent(v):
    if isinstance(v, tuple):
        if not is_differentiable(v):
            return None
        return tuple(zero_tangent(e) for e in v)
    if is_float_array(v):
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
    return tuple(random_tangent(a, rng) for a in args)


def upcast(v, complex_step=False):
    """Cast float leaves to float64 (or complex128) for the reference."""
    if isinstance(v, tuple):
        return tuple(upcast(e, complex_step) for e in v)
    target = np.complex128 if complex_step else np.float64
    if is_float_array(v):
        return v.astype(target)
    if is_float_scalar(v):
        if isinstance(v, np.generic):       # a NumPy scalar stays one (its .dtype, .shape are read)
            return target(v)
        return complex(v) if complex_step else float(v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def perturb(v, t, s):
    """``v + s * t`` on float leaves (``t`` is None = no perturbation)."""
    if t is None:
        return copy_args(v)
    if isinstance(v, tuple):
        return tuple(perturb(e, te, s) for e, te in zip(v, t))
    if isinstance(v, np.ndarray):
        return v + s * np.asarray(t, dtype=np.float64)
    return v + s * float(t)


def flatten_out(out, path="out"):
    """[(path, leaf)] for a (possibly nested tuple or list) output.

    A list (``np.split(x, [1, 2])``: arrays of different shapes) is compared leaf by leaf, as a tuple is.
    """
    if isinstance(out, (tuple, list)):
        res = []
        for i, e in enumerate(out):
            res.extend(flatten_out(e, "%s[%d]" % (path, i)))
        return res
    return [(path, out)]


def as_float_array(v, dtype=np.float64):
    if v is None:
        return None
    return np.asarray(v).astype(dtype)


def plain_function(f):
    for attr in ("py_func", "__wrapped__"):
        g = getattr(f, attr, None)
        if callable(g):
            return g
    return f


def arg_names(func, nargs):
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(nargs):
        names.append(repr(params[i]) if i < len(params) else "#%d" % i)
    return names


def func_name(f):
    g = plain_function(f)
    return getattr(g, "__qualname__", None) or getattr(g, "__name__", None) or repr(f)
