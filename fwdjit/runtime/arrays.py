"""Array helpers of generated code: BLAS-safe strides, broadcasting of tangents, fresh copies,
the stacked product ``[x; dx] @ W``, dtype matching for the float32 twin, and the guard and
operands of fused loops (:mod:`fwdjit.compiler.fuse`).

>>> import numpy as np
>>> fuse_size(np.ones(3), 2.0, np.zeros(3)), fuse_size(np.ones(3), np.ones(4))
(3, -1)
"""
from __future__ import annotations


import numpy as np
from numba import types

from numba.extending import overload

from .core import define, float_dtype, is_array_type


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
    ok = (is_array_type(a) and is_array_type(da) and is_array_type(b) and a.dtype == da.dtype == b.dtype
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
    fa, fb = float_dtype(a), float_dtype(b)
    fd = fa if fb is None else fb if fa is None else (fa if fa.bitwidth >= fb.bitwidth else fb)
    if fd is not None and isinstance(value, types.Float) and value != fd:
        return lambda value, a, b: fd(value)
    return lambda value, a, b: value


def array_like_common(value, a, b):
    """The float array ``value`` in the common float dtype of ``a`` and ``b`` (the float32 twin's
    ``np.linspace(a, b, n)``: NumPy gives float32 for float32 ends, Numba float64)."""
    return value


@overload(array_like_common)
def _ov_array_like_common(value, a, b):
    fa, fb = float_dtype(a), float_dtype(b)
    fd = fa if fb is None else fb if fa is None else (fa if fa.bitwidth >= fb.bitwidth else fb)
    if fd is not None and isinstance(value, types.Array) and isinstance(value.dtype, types.Float) \
            and value.dtype != fd:
        return lambda value, a, b: value.astype(fd)
    return lambda value, a, b: value


# ------------------------------------------------ fused reductions (fuse) --
def fuse_size(*vs):
    """The common number of elements of the array operands of a fused loop, or -1.

    -1 (run the unfused expression instead) unless every array among ``vs``
    has the same shape (no broadcasting but by scalars), a float or complex
    dtype, and, when it has more than one axis, C-contiguous memory; scalars
    fit anything.  Generated by :mod:`fwdjit.compiler.fuse` before each loop.
    """
    arrays = [np.asarray(v) for v in vs if isinstance(v, np.ndarray)]
    if not arrays or any(a.shape != arrays[0].shape or a.dtype.kind not in "fc" for a in arrays):
        return -1
    if arrays[0].ndim > 1 and not all(a.flags.c_contiguous for a in arrays):
        return -1
    return arrays[0].size


@overload(fuse_size)
def _ov_fuse_size(*vs):
    if len(vs) == 1 and isinstance(vs[0], types.StarArgTuple):
        vs = vs[0].types
    arrays = [i for i, t in enumerate(vs) if isinstance(t, types.Array)]
    if not arrays or any(not isinstance(t, (types.Array, types.Number)) for t in vs):
        return lambda *vs: -1
    if any(not isinstance(vs[i].dtype, (types.Float, types.Complex)) or vs[i].ndim != vs[arrays[0]].ndim
           for i in arrays):
        return lambda *vs: -1
    first = arrays[0]
    lines = [f"    s = vs[{first}].shape"]
    lines += [f"    if vs[{i}].shape != s:\n        return -1" for i in arrays[1:]]
    if vs[first].ndim > 1:
        lines += [f"    if not vs[{i}].flags.c_contiguous:\n        return -1" for i in arrays
                  if vs[i].layout != "C"]
    lines.append(f"    return vs[{first}].size")
    src = "def fuse_size_impl(*vs):\n" + "\n".join(lines) + "\n"
    return define(src, "fuse_size_impl", {}, __name__)


#: elements per block of a fused sum (fwdjit.compiler.fuse).  Small enough that the out-of-order core
#: computes the next block while the in-order adds of this one run (smoothed TV, measured n = 1e3 and 1e5:
#: 32 matched Numba's array code, 16 and 64 were 5-15% slower, 256 25-30% slower)
BLOCK = 32


def buffer(v, n):
    """Scratch for a fused sum's block: ``min(n, BLOCK)`` elements of ``v``'s dtype (contents undefined)."""
    return np.empty(min(n, BLOCK), np.asarray(v).dtype)


@overload(buffer)
def _ov_buffer(v, n):
    if isinstance(v, types.Number):
        dt = v
        return lambda v, n: np.empty(min(n, BLOCK), dt)
    return None


def flat(v, n):
    """An operand of a fused loop as a 1-d sequence of ``n`` elements to index.

    A 1-d array itself; an n-d array (C-contiguous, checked by
    :func:`fuse_size`) as a 1-d view; a scalar broadcast (stride 0, no copy).
    """
    if isinstance(v, np.ndarray):
        return v if v.ndim == 1 else v.reshape(n)
    return np.broadcast_to(v, (n,))


@overload(flat)
def _ov_flat(v, n):
    if isinstance(v, types.Array):
        if v.ndim == 1:
            return lambda v, n: v
        if v.layout != "C":     # fuse_size is -1 for it (not C-contiguous): typed, never run
            return lambda v, n: np.ascontiguousarray(v).reshape(n)
        return lambda v, n: v.reshape(n)
    if isinstance(v, types.Number):
        return lambda v, n: np.broadcast_to(v, (n,))
    # anything else (a tuple, a list...): fuse_size is -1 for it, so the fused branch never runs;
    # it only has to type, so that the unfused branch is what Numba judges (and reports)
    return lambda v, n: np.zeros(1)
