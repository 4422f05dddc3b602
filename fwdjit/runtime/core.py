"""The core helpers of generated code: ``define`` (functions made with ``exec``), symbolic zeros,
literal casts, ``select``, the power and reduction helpers, and the float32 variant test.

>>> float_dtype(types.float32[:]), is_array_type(types.float64)
(float32, False)
"""
from __future__ import annotations

import sys
import types as types_

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload


def define(source: str, name: str, namespace: dict, module: str):
    r"""Execute ``source`` (one ``def name(...)``) as a function of the module ``module``.

    Numba names a compiled function's machine code by its module, its
    qualified name and a counter that restarts in every process.  Two
    processes that compile *different* functions with the same module and
    qualified name can therefore write cache files that define the same
    symbol with different bodies; a third process that loads both links every
    call to one of them (a silently wrong result).  So every function that
    fwdjit generates with ``exec`` gets ``module`` (an imported module whose
    name is unique to the code it belongs to: a hashed generated module, or
    ``fwdjit.runtime`` for overloads whose body is a function of the argument
    types) and a ``name`` that tells it apart inside that module.

    >>> f = define("def twice(x):\n    return 2 * x\n", "twice", {}, "fwdjit.runtime")
    >>> f(3), f.__module__, f.__qualname__
    (6, 'fwdjit.runtime', 'twice')
    """
    if module not in sys.modules:
        raise RuntimeError(f"fwdjit: generated code must belong to an imported module, not {module!r}")
    ns = dict(namespace)
    ns["__name__"] = module
    exec(source, ns)
    fn = ns[name]
    fn.__qualname__ = name
    return fn


def float_dtype(t):
    """The floating NumPy dtype Numba type ``t`` carries, or None."""
    if isinstance(t, types.Array):
        t = t.dtype
    if isinstance(t, types.Float):
        return t
    return None


def is_array_type(t):
    return isinstance(t, types.Array)


# ---------------------------------------------------------------- zero ----
def zero(x):
    """A zero tangent shaped like ``x`` (float for int/bool inputs).

    A list (``np.append([1., 2.], y)`` with the list inactive, the inactive output ``np.split(dx, 2)`` of
    a second derivative) gets a list of the zeros of its elements.
    """
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape, np.result_type(x.dtype, np.float64) if x.dtype.kind in "biu" else x.dtype)
    if isinstance(x, tuple):
        return tuple(zero(v) for v in x)
    if isinstance(x, list):
        return [zero(v) for v in x]
    if isinstance(x, (np.floating,)):
        return type(x)(0)
    if x is None or isinstance(x, types_.ModuleType) or callable(x):
        return None
    return 0.0


@overload(zero)
def _ov_zero(x):
    if isinstance(x, types.Array):
        if isinstance(x.dtype, types.Float):
            return lambda x: np.zeros(x.shape, x.dtype)
        return lambda x: np.zeros(x.shape, np.float64)
    if isinstance(x, types.Float):
        ty = x
        return lambda x: ty(0)
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: 0.0
    if isinstance(x, (types.NoneType, types.Module, types.Function, types.Dispatcher)):
        # no derivative: None, and objects that are not numbers (a tuple (np, v) holding a module)
        return lambda x: None
    if isinstance(x, types.BaseTuple):
        n = len(x)
        if n == 0:
            return lambda x: ()
        src = "def impl(x):\n    return (" + "".join(f"zero(x[{i}]), " for i in range(n)) + ")\n"
        ns = {"zero": zero}
        return define(src.replace("def impl(", "def zero_of_tuple(", 1), "zero_of_tuple", ns, __name__)
    if isinstance(x, types.List):
        # a (reflected) list: the list of its elements' zeros, which NumPy functions take as the list
        def zero_of_list(x):
            return [zero(v) for v in x]
        return zero_of_list
    return None


# ------------------------------------------------------------------ lit ---
def lit(c, like):
    """The Python number ``c`` typed as NumPy 2 would type it next to ``like``.

    NEP 50: a Python float or int next to a float32 array or scalar becomes
    float32.  Numba on its own promotes it to float64; this keeps float32.
    """
    return c


@overload(lit)
def _ov_lit(c, like):
    fd = float_dtype(like)
    # only toward a narrower float: a Python scalar next to float32 becomes float32; nothing is widened
    if fd is not None and fd.bitwidth < 64 and isinstance(c, (types.Float, types.Integer, types.Boolean)):
        return lambda c, like: fd(c)
    return lambda c, like: c


def lit_args(c, args):
    """The Python float ``c`` as float32 when any of ``args`` (the function's arguments) is float32."""
    return c


@overload(lit_args)
def _ov_lit_args(c, args):
    tys = args.types if isinstance(args, types.BaseTuple) else (args,)
    if has_float32(*tys):
        return lambda c, args: np.float32(c)
    return lambda c, args: c


# ----------------------------------------------------------------- like ---
def like(value, ref):
    """Cast a float scalar ``value`` to the float dtype of ``ref`` (scalars only).

    Numba computes ``np.sin(float32)`` and ``np.sum(float32_array)`` in
    float64; NumPy returns float32.  Arrays are returned unchanged.
    """
    return value


@overload(like)
def _ov_like(value, ref):
    fd = float_dtype(ref)
    if fd is not None and isinstance(value, types.Float) and value != fd:
        return lambda value, ref: fd(value)
    return lambda value, ref: value


# --------------------------------------------------------------- select ---
def select(cond, a, b):
    """``a if cond else b`` elementwise (``np.where`` for arrays), keeping dtype."""
    return np.where(cond, a, b)


@overload(select)
def _ov_select(cond, a, b):
    if not any(isinstance(t, types.Array) for t in (cond, a, b)):
        return lambda cond, a, b: a if cond else b
    fa, fb = float_dtype(a), float_dtype(b)
    # same-shaped arrays: one flat loop (Numba's np.where with a scalar branch broadcasts
    # element by element, ~20x slower: 150 us instead of 8 us for a 64 x 1024 ReLU tangent)
    # (the same rank, known when typing: broadcasting to a higher rank goes to np.where)
    if is_array_type(cond) and is_array_type(a) and not is_array_type(b) and fa is not None and cond.ndim == a.ndim:
        def impl_as(cond, a, b):
            if cond.shape != a.shape:
                return np.where(cond, a, fa(b))
            out = np.empty(a.shape, fa)
            cf, af, of, bb = cond.ravel(), a.ravel(), out.ravel(), fa(b)
            for i in range(of.size):
                of[i] = af[i] if cf[i] else bb
            return out
        return impl_as
    if is_array_type(cond) and is_array_type(b) and not is_array_type(a) and fb is not None and cond.ndim == b.ndim:
        def impl_sa(cond, a, b):
            if cond.shape != b.shape:
                return np.where(cond, fb(a), b)
            out = np.empty(b.shape, fb)
            cf, bf, of, aa = cond.ravel(), b.ravel(), out.ravel(), fb(a)
            for i in range(of.size):
                of[i] = aa if cf[i] else bf[i]
            return out
        return impl_sa
    if (is_array_type(cond) and is_array_type(a) and is_array_type(b) and fa is not None and fa == fb
            and cond.ndim == a.ndim == b.ndim):
        def impl_aa(cond, a, b):
            if cond.shape != a.shape or b.shape != a.shape:
                return np.where(cond, a, b)
            out = np.empty(a.shape, fa)
            cf, af, bf, of = cond.ravel(), a.ravel(), b.ravel(), out.ravel()
            for i in range(of.size):
                of[i] = af[i] if cf[i] else bf[i]
            return out
        return impl_aa
    if is_array_type(a) and not is_array_type(b) and fa is not None:
        return lambda cond, a, b: np.where(cond, a, fa(b))
    if is_array_type(b) and not is_array_type(a) and fb is not None:
        return lambda cond, a, b: np.where(cond, fb(a), b)
    if not is_array_type(a) and not is_array_type(b):
        # array condition, scalar branches: result takes the float type of a
        return lambda cond, a, b: np.where(cond, a, b)
    return lambda cond, a, b: np.where(cond, a, b)


# ---------------------------------------------------------- power rules ---
def pow_dexp(base, result):
    """d(base**e)/de = log(base) * base**e, taken as 0 where base**e == 0."""
    return np.where(result == 0, 0 * result, np.log(base) * result)


@overload(pow_dexp)
def _ov_pow_dexp(base, result):
    if isinstance(result, types.Array) or isinstance(base, types.Array):
        def impl(base, result):
            return np.where(result == 0, result * 0, np.log(base) * result)
        return impl
    fd = float_dtype(result)
    if fd is None:
        fd = types.float64

    def impl(base, result):
        if result == 0:
            return fd(0)
        return fd(np.log(base) * result)
    return impl


# ------------------------------------------------------- reductions -------
def prod_jvp(x, dx):
    """Tangent of ``np.prod(x)``: sum_i dx_i * prod_{j != i} x_j, exact at zeros."""
    xf = np.ravel(x)
    dxf = np.ravel(dx)
    n = xf.shape[0]
    dt = np.result_type(xf.dtype, dxf.dtype, np.float32)      # float32 stays float32, as compiled
    out = dt.type(0)
    prefix = dt.type(1)
    suffix = np.ones(n + 1, dt)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] * xf[i]
    for i in range(n):
        out += dxf[i] * prefix * suffix[i + 1]
        prefix *= xf[i]
    return out


@overload(prod_jvp)
def _ov_prod_jvp(x, dx):
    if isinstance(x, (types.Number, types.Boolean)):
        return lambda x, dx: dx         # np.prod of a scalar is the scalar
    fd = float_dtype(x) or types.float64

    def impl(x, dx):
        xf = np.ravel(x)
        dxf = np.ravel(dx)
        n = xf.shape[0]
        out = fd(0)
        prefix = fd(1)
        suffix = np.ones(n + 1, fd)
        for i in range(n - 1, -1, -1):
            suffix[i] = suffix[i + 1] * xf[i]
        for i in range(n):
            out += dxf[i] * prefix * suffix[i + 1]
            prefix *= xf[i]
        return out
    return impl


def prod_jvp2(x, dx, ex):
    """The mixed term of ``np.prod``'s second derivative (the tangent of ``prod_jvp(x, dx)`` along
    ``ex``, the tangent of ``x``): ``sum_{i != j} dx_i ex_j prod_{l != i, j} x_l``, by hyper-dual numbers
    (no division: exact at zeros).  0 for a scalar ``x`` (``np.prod`` of a scalar is the identity)."""
    if np.ndim(x) == 0:
        return 0.0 * dx * ex
    p, d, e, dd = 1.0, 0.0, 0.0, 0.0
    for v, dv, ev in zip(np.ravel(x), np.ravel(dx), np.ravel(ex)):
        dd = dd * v + d * ev + e * dv
        d, e, p = d * v + p * dv, e * v + p * ev, p * v
    return dd


@overload(prod_jvp2)
def _ov_prod_jvp2(x, dx, ex):
    if isinstance(x, (types.Number, types.Boolean)):
        fs = float_dtype(dx) or types.float64
        return lambda x, dx, ex: fs(0)
    fd = float_dtype(x) or types.float64

    def impl(x, dx, ex):
        xf = np.ravel(x)
        dxf = np.ravel(dx)
        exf = np.ravel(ex)
        p = fd(1)
        d = fd(0)
        e = fd(0)
        dd = fd(0)
        for i in range(xf.shape[0]):
            v = xf[i]
            dd = dd * v + d * exf[i] + e * dxf[i]
            d = d * v + p * dxf[i]
            e = e * v + p * exf[i]
            p = p * v
        return dd
    return impl


def pick_flat(dx, index):
    """``dx.ravel()[index]`` for arrays (tangent of max/min at the argmax)."""
    return np.ravel(dx)[index]


def argmax(x):
    """``np.argmax(x)``, also for a scalar (0, as NumPy gives; Numba's np.argmax takes arrays only)."""
    return np.argmax(x)


def argmin(x):
    """``np.argmin(x)``, also for a scalar (0, as NumPy gives)."""
    return np.argmin(x)


def _ov_arg_extreme(fn):
    def typer(x):
        if isinstance(x, (types.Number, types.Boolean)):
            return lambda x: 0
        return lambda x: fn(x)
    return typer


overload(argmax)(_ov_arg_extreme(np.argmax))
overload(argmin)(_ov_arg_extreme(np.argmin))


@overload(pick_flat)
def _ov_pick_flat(dx, index):
    if isinstance(dx, (types.Number, types.Boolean)):
        return lambda dx, index: dx     # the tangent of max/min of a scalar: the scalar's tangent
    if isinstance(dx, types.Array) and dx.ndim == 1:
        return lambda dx, index: dx[index]
    if isinstance(dx, types.Array) and dx.layout == "C":
        return lambda dx, index: dx.reshape(dx.size)[index]
    return lambda dx, index: np.ravel(dx)[index]


# --------------------------------------------------- variant selection ----
def has_float32(*tys):
    """True if any Numba type among ``tys`` carries float32 (or float16)."""
    for t in tys:
        if isinstance(t, types.BaseTuple):
            if has_float32(*t.types):
                return True
            continue
        fd = float_dtype(t)
        if fd is not None and fd.bitwidth < 64:
            return True
    return False




def describe_type(t):
    if isinstance(t, types.Array):
        return f"array({t.dtype}, {t.ndim}d)"
    return str(t)
