"""Small helpers that generated code calls (imported there as ``fj``).

Each helper works on scalars and arrays inside Numba-compiled code and keeps
the dtype of its inputs, so float32 code stays float32.  They are written as
``numba.extending.overload`` implementations: the choice between the scalar and
the array version is made once, when Numba types the call.
"""
from __future__ import annotations

import sys
import types as types_

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from .errors import TangentMismatch


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


def _float_dtype(t):
    """The floating NumPy dtype Numba type ``t`` carries, or None."""
    if isinstance(t, types.Array):
        t = t.dtype
    if isinstance(t, types.Float):
        return t
    return None


def _is_array(t):
    return isinstance(t, types.Array)


# ---------------------------------------------------------------- zero ----
def zero(x):
    """A zero tangent shaped like ``x`` (float for int/bool inputs)."""
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape, np.result_type(x.dtype, np.float64) if x.dtype.kind in "biu" else x.dtype)
    if isinstance(x, tuple):
        return tuple(zero(v) for v in x)
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
    fd = _float_dtype(like)
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
    fd = _float_dtype(ref)
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
    fa, fb = _float_dtype(a), _float_dtype(b)
    # same-shaped arrays: one flat loop (Numba's np.where with a scalar branch broadcasts
    # element by element, ~20x slower: 150 us instead of 8 us for a 64 x 1024 ReLU tangent)
    # (the same rank, known when typing: broadcasting to a higher rank goes to np.where)
    if _is_array(cond) and _is_array(a) and not _is_array(b) and fa is not None and cond.ndim == a.ndim:
        def impl_as(cond, a, b):
            if cond.shape != a.shape:
                return np.where(cond, a, fa(b))
            out = np.empty(a.shape, fa)
            cf, af, of, bb = cond.ravel(), a.ravel(), out.ravel(), fa(b)
            for i in range(of.size):
                of[i] = af[i] if cf[i] else bb
            return out
        return impl_as
    if _is_array(cond) and _is_array(b) and not _is_array(a) and fb is not None and cond.ndim == b.ndim:
        def impl_sa(cond, a, b):
            if cond.shape != b.shape:
                return np.where(cond, fb(a), b)
            out = np.empty(b.shape, fb)
            cf, bf, of, aa = cond.ravel(), b.ravel(), out.ravel(), fb(a)
            for i in range(of.size):
                of[i] = aa if cf[i] else bf[i]
            return out
        return impl_sa
    if (_is_array(cond) and _is_array(a) and _is_array(b) and fa is not None and fa == fb
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
    if _is_array(a) and not _is_array(b) and fa is not None:
        return lambda cond, a, b: np.where(cond, a, fa(b))
    if _is_array(b) and not _is_array(a) and fb is not None:
        return lambda cond, a, b: np.where(cond, fb(a), b)
    if not _is_array(a) and not _is_array(b):
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
    fd = _float_dtype(result)
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
    out = 0.0
    prefix = 1.0
    suffix = np.ones(n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] * xf[i]
    for i in range(n):
        out += dxf[i] * prefix * suffix[i + 1]
        prefix *= xf[i]
    return out


@overload(prod_jvp)
def _ov_prod_jvp(x, dx):
    fd = _float_dtype(x) or types.float64

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


def pick_flat(dx, index):
    """``dx.ravel()[index]`` for arrays (tangent of max/min at the argmax)."""
    return np.ravel(dx)[index]


@overload(pick_flat)
def _ov_pick_flat(dx, index):
    if isinstance(dx, types.Array) and dx.ndim == 1:
        return lambda dx, index: dx[index]
    if isinstance(dx, types.Array) and dx.layout == "C":
        return lambda dx, index: dx.reshape(dx.size)[index]
    return lambda dx, index: np.ravel(dx)[index]


# ---------------------------------------------------- tangent checking ----
def _describe(t):
    if isinstance(t, types.Array):
        return f"array({t.dtype}, {t.ndim}d)"
    return str(t)


def check_tangent(x, dx, name):
    """``dx`` as the tangent of ``x``: raises TangentMismatch unless they match."""
    return dx


@overload(check_tangent)
def _ov_check_tangent(x, dx, name):
    pname = getattr(name, "literal_value", "?")
    if isinstance(x, types.Array):
        if not isinstance(dx, types.Array) or dx.ndim != x.ndim or dx.dtype != x.dtype:
            raise TypingError(f"fwdjit: tangent for '{pname}' must be {_describe(x)}, given {_describe(dx)}")

        def impl(x, dx, name):
            if x.shape != dx.shape:
                raise TangentMismatch("shape", name, x.shape, dx.shape)
            return dx
        return impl
    if isinstance(x, types.Float):
        if isinstance(dx, types.Float):
            ty = x
            return lambda x, dx, name: ty(dx)
        raise TypingError(f"fwdjit: tangent for '{pname}' must be a float like its primal ({x}), given {_describe(dx)}")
    if isinstance(x, types.BaseTuple):
        if not isinstance(dx, types.BaseTuple) or len(dx) != len(x):
            raise TypingError(f"fwdjit: tangent for '{pname}' must be a tuple like its primal {x}, given {_describe(dx)}")
        return lambda x, dx, name: dx
    raise TypingError(f"fwdjit: argument '{pname}' of type {_describe(x)} cannot take a tangent; pass None for it")


def check_lowrank(x, a, b, name):
    """``(a, b)`` as the factors of a low-rank tangent ``a @ b.T`` of ``x``: raises unless they match."""
    return a, b


@overload(check_lowrank)
def _ov_check_lowrank(x, a, b, name):
    pname = getattr(name, "literal_value", "?")
    if not (isinstance(x, types.Array) and x.ndim == 2):
        raise TypingError(f"fwdjit: a low-rank tangent (fwdjit.LowRank) needs a 2-d array argument; "
                          f"'{pname}' is {_describe(x)}: pass a dense tangent for it")
    for f, which in ((a, "A"), (b, "B")):
        if not isinstance(f, types.Array) or f.ndim != 2 or f.dtype != x.dtype:
            raise TypingError(f"fwdjit: low-rank tangent for '{pname}': factor {which} must be "
                              f"array({x.dtype}, 2d), given {_describe(f)}")

    def impl(x, a, b, name):
        if a.shape[0] != x.shape[0] or b.shape[0] != x.shape[1] or a.shape[1] != b.shape[1]:
            raise TangentMismatch("shape of its factors (A: (m, r), B: (n, r))", name,
                                  (x.shape[0], a.shape[1], x.shape[1], a.shape[1]),
                                  (a.shape[0], a.shape[1], b.shape[0], b.shape[1]))
        return a, b
    return impl


# --------------------------------------------------- variant selection ----
def has_float32(*tys):
    """True if any Numba type among ``tys`` carries float32 (or float16)."""
    for t in tys:
        if isinstance(t, types.BaseTuple):
            if has_float32(*t.types):
                return True
            continue
        fd = _float_dtype(t)
        if fd is not None and fd.bitwidth < 64:
            return True
    return False


__all__ = ["zero", "lit", "like", "select", "pow_dexp", "prod_jvp", "pick_flat",
           "check_tangent", "has_float32", "TypingError"]


# ------------------------------------------------------------ vector mode --
def kstack(ts):
    """Stack a tuple of K tangents (scalars, arrays or tuples of them) along a new first axis."""
    first = ts[0]
    if isinstance(first, tuple):
        return tuple(kstack(tuple(t[i] for t in ts)) for i in range(len(first)))
    return np.stack([np.asarray(t) for t in ts])


@overload(kstack)
def _ov_kstack(ts):
    if not isinstance(ts, types.BaseTuple) or len(ts) == 0:
        return None
    K = len(ts)
    first = ts.types[0] if isinstance(ts, types.Tuple) else ts.dtype
    if isinstance(first, types.BaseTuple):
        n = len(first)
        parts = ", ".join("kstack((" + "".join(f"ts[{k}][{i}], " for k in range(K)) + "))" for i in range(n))
        src = f"def impl(ts):\n    return ({parts}{',' if n == 1 else ''})\n"
    elif isinstance(first, types.NoneType):
        src = "def impl(ts):\n    return None\n"
    elif isinstance(first, types.Array):
        body = "".join(f"    out[{k}] = ts[{k}]\n" for k in range(K))
        src = (f"def impl(ts):\n    out = np.empty(({K},) + ts[0].shape, ts[0].dtype)\n{body}    return out\n")
    else:
        dt = first if isinstance(first, types.Float) else types.float64
        body = "".join(f"    out[{k}] = ts[{k}]\n" for k in range(K))
        src = f"def impl(ts):\n    out = np.empty({K}, dt)\n{body}    return out\n"
    ns = {"np": np, "kstack": kstack, "dt": locals().get("dt")}
    return define(src.replace("def impl(", "def kstack_impl(", 1), "kstack_impl", ns, __name__)


def check_tangents_k(x, dX, name, K):
    """``dX`` holds K tangents of ``x`` stacked on a first axis."""
    return dX


@overload(check_tangents_k)
def _ov_check_tangents_k(x, dX, name, K):
    pname = getattr(name, "literal_value", "?")
    if not isinstance(dX, types.Array):
        raise TypingError(f"fwdjit: batched tangents for '{pname}' must be an array with a leading axis of "
                          f"K directions, given {_describe(dX)}")
    if isinstance(x, types.Array):
        if dX.ndim != x.ndim + 1 or dX.dtype != x.dtype:
            raise TypingError(f"fwdjit: batched tangents for '{pname}' must be array({x.dtype}, {x.ndim + 1}d) "
                              f"(K directions, then the primal's shape), given {_describe(dX)}")

        def impl(x, dX, name, K):
            if dX.shape[0] != K or dX.shape[1:] != x.shape:
                raise TangentMismatch("shape", name, (K,) + x.shape, dX.shape)
            return dX
        return impl
    if isinstance(x, types.Float):
        if dX.ndim != 1:
            raise TypingError(f"fwdjit: batched tangents for the scalar '{pname}' must be a 1-d array of K values")

        def impl(x, dX, name, K):
            if dX.shape[0] != K:
                raise TangentMismatch("shape", name, (K,), dX.shape)
            return dX
        return impl
    if isinstance(x, types.BaseTuple):
        raise TypingError(f"fwdjit: batched (vector-mode) tangents for the tuple argument '{pname}' are not "
                          f"supported; pass None for it, or pass its elements as separate arguments (f.jvp "
                          f"without batched=True takes a tuple tangent)")
    raise TypingError(f"fwdjit: argument '{pname}' of type {_describe(x)} cannot take a tangent; pass None for it")


# ------------------------------------------------------- Numba workarounds --
def blas_strides(x):
    """``x``, or a copy of it when it is a 1-d array with a negative stride.

    Numba's ``np.linalg.norm`` goes to BLAS, which returns wrong values for a
    negative increment (``np.linalg.norm(v[::-1])`` gave 1.0 or 5e45): generated
    code passes norms' arguments through this.
    """
    return x


@overload(blas_strides)
def _ov_blas_strides(x):
    if isinstance(x, types.Array) and x.ndim == 1 and x.layout != "C":
        def impl(x):
            if x.strides[0] < 0:
                return x.copy()
            return x
        return impl
    return lambda x: x


# ----------------------------------------------------------- broadcasting --
def bcast(t, other):
    """The tangent ``t`` of one operand of ``a + b``, broadcast to the shape of the result.

    When the other operand is inactive its tangent is zero, but the result
    has the broadcast shape of both operands; ``t`` alone may be smaller.
    """
    return np.broadcast_to(t, np.broadcast_shapes(np.shape(t), np.shape(other))).copy() \
        if np.shape(t) != np.broadcast_shapes(np.shape(t), np.shape(other)) else t


@overload(bcast)
def _ov_bcast(t, other):
    t_arr, o_arr = isinstance(t, types.Array), isinstance(other, types.Array)
    if not o_arr:
        return lambda t, other: t                      # a scalar never enlarges the result
    if not t_arr:
        return lambda t, other: np.full(other.shape, t)
    nd = max(t.ndim, other.ndim)
    # result shape, axis by axis from the right (NumPy's rule), generated for these ranks
    lines = []
    for ax in range(nd):
        i_t, i_o = ax - (nd - t.ndim), ax - (nd - other.ndim)
        st = f"t.shape[{i_t}]" if i_t >= 0 else "1"
        so = f"other.shape[{i_o}]" if i_o >= 0 else "1"
        lines.append(f"    s{ax} = {st} if {so} == 1 else {so}")
    shape = "(" + "".join(f"s{ax}, " for ax in range(nd)) + ")"
    src = ("def impl(t, other):\n" + "\n".join(lines) + "\n"
           f"    shape = {shape}\n"
           f"    if t.ndim == {nd} and t.shape == shape:\n"
           f"        return t\n"
           f"    out = np.empty(shape, t.dtype)\n"
           f"    out[...] = t\n"
           f"    return out\n")
    ns = {"np": np}
    return define(src.replace("def impl(", "def bcast_impl(", 1), "bcast_impl", ns, __name__)


def fresh(t):
    """A copy of an array tangent (so in-place writes to it cannot reach another tangent)."""
    return t.copy() if isinstance(t, np.ndarray) else t


@overload(fresh)
def _ov_fresh(t):
    if isinstance(t, types.Array):
        return lambda t: t.copy()
    return lambda t: t


def matmul_stacked(a, da, b):
    """``(a @ b, da @ b)`` computed as one product ``[a; da] @ b`` where that pays.

    A tangent pass multiplies the primal ``a`` and its tangent ``da`` by the same
    matrix ``b``: stacking the rows makes one matrix product out of two (a vector
    and its tangent: one pass over ``b`` instead of two; a batch: a taller product,
    which BLAS runs faster than two).  Other shapes and mixed dtypes: two products.
    """
    return a @ b, da @ b


@overload(matmul_stacked)
def _ov_matmul_stacked(a, da, b):
    ok = (_is_array(a) and _is_array(da) and _is_array(b) and a.dtype == da.dtype == b.dtype
          and isinstance(a.dtype, types.Float) and a.ndim == da.ndim and b.ndim == 2)
    if ok and a.ndim == 2:
        def impl2(a, da, b):
            k = a.shape[0]
            if da.shape != a.shape:
                return a @ b, da @ b          # broadcasting tangent: let @ raise or broadcast
            s = np.empty((2 * k, a.shape[1]), a.dtype)
            s[:k] = a
            s[k:] = da
            p = s @ b
            return p[:k], p[k:]
        return impl2
    if ok and a.ndim == 1:
        def impl1(a, da, b):
            if da.shape != a.shape:
                return a @ b, da @ b
            s = np.empty((2, a.shape[0]), a.dtype)
            s[0] = a
            s[1] = da
            p = s @ b
            return p[0], p[1]
        return impl1
    return lambda a, da, b: (a @ b, da @ b)


def match_dtype(t, p):
    """The tangent ``t`` with the dtype of its primal ``p`` (scalars, arrays, tuples)."""
    return t


@overload(match_dtype)
def _ov_match_dtype(t, p):
    if isinstance(t, types.Float) and isinstance(p, types.Float) and t != p:
        ty = p
        return lambda t, p: ty(t)
    if isinstance(t, types.Array) and isinstance(p, types.Array) and t.dtype != p.dtype \
            and isinstance(p.dtype, types.Float):
        dt = p.dtype
        return lambda t, p: t.astype(dt)
    if isinstance(t, types.BaseTuple) and isinstance(p, types.BaseTuple) and len(t) == len(p) and len(t) > 0:
        n = len(t)
        src = "def impl(t, p):\n    return (" + "".join(f"match_dtype(t[{i}], p[{i}]), " for i in range(n)) + ")\n"
        ns = {"match_dtype": match_dtype}
        return define(src.replace("def impl(", "def match_dtype_of_tuple(", 1), "match_dtype_of_tuple", ns, __name__)
    return lambda t, p: t


def match_dtype_each(ts, p):
    """Each tangent of the tuple ``ts`` (vector mode) with the dtype of the primal ``p``."""
    return tuple(match_dtype(t, p) for t in ts)


@overload(match_dtype_each)
def _ov_match_dtype_each(ts, p):
    if not isinstance(ts, types.BaseTuple):
        return lambda ts, p: ts
    n = len(ts)
    src = "def impl(ts, p):\n    return (" + "".join(f"match_dtype(ts[{i}], p), " for i in range(n)) + ")\n"
    ns = {"match_dtype": match_dtype}
    return define(src.replace("def impl(", "def match_dtype_each_impl(", 1), "match_dtype_each_impl", ns, __name__)


def promote(a, other):
    """``a`` cast to the common float dtype of the arrays ``a`` and ``other``.

    NumPy's ``np.dot(float32_array, float64_array)`` promotes to float64;
    Numba refuses arrays of different dtypes.  A no-op when the dtypes agree.
    """
    return a


@overload(promote)
def _ov_promote(a, other):
    if isinstance(a, types.Array) and isinstance(other, types.Array) and isinstance(a.dtype, types.Float) \
            and isinstance(other.dtype, types.Float) and a.dtype.bitwidth < other.dtype.bitwidth:
        dt = other.dtype
        return lambda a, other: a.astype(dt)
    return lambda a, other: a


def like_common(value, a, b):
    """Cast a float scalar ``value`` to the common float dtype of ``a`` and ``b``
    (``np.dot(float32, float64)`` is float64 in NumPy).  Arrays are returned unchanged."""
    return value


@overload(like_common)
def _ov_like_common(value, a, b):
    fa, fb = _float_dtype(a), _float_dtype(b)
    fd = fa if fb is None else fb if fa is None else (fa if fa.bitwidth >= fb.bitwidth else fb)
    if fd is not None and isinstance(value, types.Float) and value != fd:
        return lambda value, a, b: fd(value)
    return lambda value, a, b: value

from .npimpl import *  # noqa: E402,F401,F403  (NumPy forms Numba lacks: fwdjit.npimpl, called as fj.*)
