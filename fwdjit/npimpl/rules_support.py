"""Helpers that derivative rules call (as ``fj.name``), and NumPy forms Numba lacks.

Each helper is a Python function (for plain Python runs of generated code) and a
Numba ``overload`` of it, like the helpers of :mod:`fwdjit.runtime`, which
re-exports them.  The overloads of NumPy itself (``a.swapaxes``,
``np.atleast_1d/2d/3d`` of a scalar) make the *primal* compile, so the
primal and its tangent run the same implementation.

>>> import numpy as np
>>> cumprod_jvp(np.array([2.0, 0.0, 3.0]), np.array([1.0, 1.0, 1.0]))
array([1., 2., 6.])
>>> permuted_like(np.array([10.0, 20.0, 30.0]), np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
array([20., 30., 10.])
"""
from __future__ import annotations

import math
import operator

import numba
import numba.core.errors
import numpy as np
from numba import types
from numba.extending import overload, overload_attribute, overload_method

from .codegen import build, safe_name

_MOD = __name__


# ------------------------------------------------------------- cumprod ----
def cumprod_jvp(x, dx):
    """Tangent of ``np.cumprod(x)`` (flattened): ``dy[i] = dy[i-1] x[i] + y[i-1] dx[i]``, no division."""
    xf = np.ravel(x)
    dxf = np.ravel(dx)
    out = np.empty(xf.shape[0], np.result_type(xf.dtype, dxf.dtype))
    y = 1.0
    d = 0.0
    for i in range(xf.shape[0]):
        d = d * xf[i] + y * dxf[i]
        y = y * xf[i]
        out[i] = d
    return out


@overload(cumprod_jvp)
def _ov_cumprod_jvp(x, dx):
    if not isinstance(dx, types.Array):       # np.cumprod of a scalar: a 1-element array
        return lambda x, dx: np.full(1, dx)
    dt = dx.dtype

    def impl(x, dx):
        xf = np.ravel(x)
        dxf = np.ravel(dx)
        out = np.empty(xf.shape[0], dt)
        y = dt(1)
        d = dt(0)
        for i in range(xf.shape[0]):
            d = d * xf[i] + y * dxf[i]
            y = y * xf[i]
            out[i] = d
        return out
    return impl


# ------------------------------------------------------ permutations -------
def permuted_like(dx, x, y):
    """The tangent of ``y``, a permutation of ``x`` along the last axis (``np.partition``).

    Each output position takes the tangent of an input position holding the same value
    (ties matched in order), so it does not depend on how the permutation was computed.
    """
    x2 = np.reshape(np.ascontiguousarray(x), (-1, x.shape[-1]))
    y2 = np.reshape(np.ascontiguousarray(y), (-1, y.shape[-1]))
    d2 = np.reshape(np.ascontiguousarray(dx), (-1, dx.shape[-1]))
    out = np.empty_like(d2)
    for r in range(x2.shape[0]):
        ix = np.argsort(x2[r], kind="mergesort")
        iy = np.argsort(y2[r], kind="mergesort")
        out[r][iy] = d2[r][ix]
    return out.reshape(np.shape(dx))


@overload(permuted_like)
def _ov_permuted_like(dx, x, y):
    if not isinstance(dx, types.Array):
        return None

    def impl(dx, x, y):
        n = x.shape[-1]
        x2 = np.ascontiguousarray(x).reshape((-1, n))
        y2 = np.ascontiguousarray(y).reshape((-1, n))
        d2 = np.ascontiguousarray(dx).reshape((-1, n))
        out = np.empty_like(d2)
        for r in range(x2.shape[0]):
            ix = np.argsort(x2[r], kind="mergesort")
            iy = np.argsort(y2[r], kind="mergesort")
            for j in range(n):
                out[r, iy[j]] = d2[r, ix[j]]
        return out.reshape(dx.shape)
    return impl


# ------------------------------------------- NumPy forms Numba lacks ------
@overload_method(types.Array, "swapaxes")
def _ov_array_swapaxes(a, axis1, axis2):
    return lambda a, axis1, axis2: np.swapaxes(a, axis1, axis2)


def _scalar_atleast(ndim):
    shape = (1,) * ndim

    def ov(a):
        if isinstance(a, (types.Float, types.Integer, types.Boolean)):
            return lambda a: np.full(shape, a)
        return None
    return ov


def _of_arrays(t):
    """Whether ``t`` is a tuple of equal-typed arrays, or of such tuples (any depth)."""
    return isinstance(t, types.UniTuple) and (isinstance(t.dtype, types.Array) or _of_arrays(t.dtype))


@overload(np.array)
def _ov_array_of_arrays(object, dtype=None):
    """``np.array((a, b))`` of equal-typed arrays: their stack, and ``np.array(((a, b), (c, d)))`` the stack
    of the rows' stacks (Numba's np.array takes sequences of numbers only)."""
    if not _of_arrays(object) or not (dtype is None or isinstance(dtype, (types.NoneType, types.Omitted))):
        return None
    if isinstance(object.dtype, types.Array):
        return lambda object, dtype=None: np.stack(object)
    rows = ", ".join(f"np.array(object[{i}])" for i in range(object.count))
    name = safe_name("array_of_rows", object.count)
    return build(f"def {name}(object, dtype=None):\n    return np.stack(({rows},))\n", name, {}, _MOD)


def int_cast(x, T):
    """``np.int64(x)`` (any NumPy integer type ``T``): an array is cast elementwise, as NumPy does."""
    return np.asarray(x).astype(T) if np.ndim(x) else T(x)


@overload(int_cast)
def _ov_int_cast(x, T):
    if isinstance(x, types.Array):
        return lambda x, T: x.astype(T)
    return lambda x, T: T(x)


@overload(np.trace)
def _ov_trace_nd(a, offset=0):
    """``np.trace`` of an n-d array (n > 2): the sum of ``a[i, i + offset]``, shaped ``a.shape[2:]``
    (Numba's takes 2-d arrays only)."""
    if not isinstance(a, types.Array) or a.ndim <= 2:
        return None
    dt = a.dtype if isinstance(a.dtype, types.Float) else types.int64

    def impl(a, offset=0):
        out = np.zeros(a.shape[2:], dt)
        for i in range(a.shape[0]):
            j = i + offset
            if 0 <= j < a.shape[1]:
                out += a[i, j]
        return out
    return impl


@overload(np.append)
def _ov_append_of_tuples(arr, values, axis=None):
    """``np.append`` of (nested) tuples of numbers: read as arrays, as NumPy reads lists."""
    if not isinstance(arr, types.BaseTuple) and not isinstance(values, types.BaseTuple):
        return None
    as_a = (lambda v: np.asarray(v)) if isinstance(arr, types.BaseTuple) else (lambda v: v)
    as_v = (lambda v: np.asarray(v)) if isinstance(values, types.BaseTuple) else (lambda v: v)
    conv_a, conv_v = numba.njit(as_a), numba.njit(as_v)
    return lambda arr, values, axis=None: np.append(conv_a(arr), conv_v(values), axis)


def _diagonal_source(ndim, ax1, ax2):
    rest = [k for k in range(ndim) if k not in (ax1, ax2)]
    perm = tuple(rest + [ax1, ax2])
    lead = ", ".join(":" for _ in rest)
    sel = (lead + ", " if lead else "")
    return (f"def {safe_name('diagonal', ndim, ax1, ax2)}(a, offset=0, axis1=0, axis2=1):\n"
            f"    b = np.transpose(a, {perm!r})\n"
            f"    n1, n2 = b.shape[-2], b.shape[-1]\n"
            f"    i0 = max(0, -offset)\n"
            f"    j0 = max(0, offset)\n"
            f"    n = max(0, min(n1 - i0, n2 - j0))\n"
            f"    out = np.empty(b.shape[:-2] + (n,), b.dtype)\n"
            f"    for k in range(n):\n"
            f"        out[{sel}k] = b[{sel}i0 + k, j0 + k]\n"
            f"    return out\n")


@overload(np.diagonal, prefer_literal=True)
def _ov_diagonal(a, offset=0, axis1=0, axis2=1):
    """``np.diagonal(a, offset, axis1, axis2)`` (Numba has none): the axes must be literals; the result is
    a copy (NumPy's is a read-only view), its last axis the diagonal."""
    if not isinstance(a, types.Array) or a.ndim < 2:
        return None
    axes = []
    for v, default in ((axis1, 0), (axis2, 1)):
        v = default if isinstance(v, (types.Omitted, int)) and not isinstance(v, types.Literal) else v
        v = v.literal_value if isinstance(v, types.Literal) else v
        if not isinstance(v, int):
            raise numba.core.errors.TypingError("np.diagonal: axis1 and axis2 must be literal ints")
        if not -a.ndim <= v < a.ndim:
            raise numba.core.errors.TypingError(f"np.diagonal: axis {v} is out of bounds for {a.ndim}-d")
        axes.append(v % a.ndim)
    if axes[0] == axes[1]:
        raise numba.core.errors.TypingError("np.diagonal: axis1 and axis2 cannot be the same")
    return build(_diagonal_source(a.ndim, axes[0], axes[1]), safe_name("diagonal", a.ndim, *axes), {}, _MOD)


def _tile_source(ndim, nreps, is_tuple):
    n = max(ndim, nreps)
    idx = [f"i{k}" for k in range(n)]
    lines = [f"def {safe_name('tile', ndim, nreps, is_tuple)}(A, reps):",
             f"    r = (1,) * {n - nreps} + {'reps' if is_tuple else '(reps,)'}",
             f"    a = np.ascontiguousarray(A).reshape((1,) * {n - ndim} + A.shape)",
             "    out = np.empty((" + "".join(f"a.shape[{k}] * r[{k}], " for k in range(n)) + "), A.dtype)"]
    for k in range(n):
        lines.append("    " * (k + 1) + f"for i{k} in range(out.shape[{k}]):")
    src_idx = ", ".join(f"{i} % a.shape[{k}]" for k, i in enumerate(idx))
    lines.append("    " * (n + 1) + f"out[{', '.join(idx)}] = a[{src_idx}]")
    lines.append("    return out")
    return "\n".join(lines) + "\n"


@overload(np.tile)
def _ov_tile(A, reps):
    """``np.tile`` of any ndim, ``reps`` an int or a tuple of ints of any length (Numba's takes fewer forms)."""
    if not isinstance(A, types.Array):
        return None
    if isinstance(reps, types.Integer):
        nreps, is_tuple = 1, False
    elif isinstance(reps, types.UniTuple) and isinstance(reps.dtype, types.Integer):
        nreps, is_tuple = reps.count, True
    else:
        return None
    if max(A.ndim, nreps) == 0:
        return None
    return build(_tile_source(A.ndim, nreps, is_tuple), safe_name("tile", A.ndim, nreps, is_tuple), {}, _MOD)


@overload(np.real_if_close)
def _ov_real_if_close(a, tol=100):
    """``np.real_if_close`` of real values: the values themselves, as in NumPy."""
    if isinstance(a, (types.Float, types.Integer)) or isinstance(a, types.Array) \
            and isinstance(a.dtype, (types.Float, types.Integer)):
        return lambda a, tol=100: a
    return None


def _scalar_attr(value):
    return lambda x: lambda x: value


for _t in (types.Float, types.Integer):         # a NumPy scalar's array attributes (np.float64(1.0).shape)
    overload_attribute(_t, "shape")(_scalar_attr(()))
    overload_attribute(_t, "ndim")(_scalar_attr(0))
    overload_attribute(_t, "size")(_scalar_attr(1))
    overload_attribute(_t, "dtype")(lambda x: _scalar_attr(np.dtype(str(x)))(x))


def _dtype_of_type(t):
    if isinstance(t, types.DType):
        return np.dtype(str(t.dtype))
    if isinstance(t, types.NumberClass):
        return np.dtype(str(t.instance_type))
    return None


def _dtype_compare(op):
    """``x.dtype == np.float32`` (Numba cannot compare a dtype with a NumPy type): known when compiling."""
    def ov(a, b):
        da, db = _dtype_of_type(a), _dtype_of_type(b)
        if da is None or db is None or not (isinstance(a, types.DType) or isinstance(b, types.DType)):
            return None
        result = op(da, db)
        return lambda a, b: result
    return ov


overload(operator.eq)(_dtype_compare(operator.eq))
overload(operator.ne)(_dtype_compare(operator.ne))


overload(np.atleast_1d)(_scalar_atleast(1))
overload(np.atleast_2d)(_scalar_atleast(2))
overload(np.atleast_3d)(_scalar_atleast(3))


@overload(math.log)
def _ov_math_log_base(x, base):
    """``math.log(x, base)``: Numba has only the one-argument form."""
    return lambda x, base: math.log(x) / math.log(base)


# ------------------------------------------------------------- float32 ----
def like_each(values, ref):
    """Each float scalar of the tuple ``values`` cast to the float dtype of ``ref`` (the float32
    twin's ``np.linalg.slogdet``: Numba gives float64 for a float32 matrix, NumPy float32)."""
    return values


@overload(like_each)
def _ov_like_each(values, ref):
    fd = ref.dtype if isinstance(ref, types.Array) else ref
    if isinstance(fd, types.Float) and isinstance(values, types.BaseTuple) and len(values) == 2:
        return lambda values, ref: (fd(values[0]), fd(values[1]))
    return lambda values, ref: values
