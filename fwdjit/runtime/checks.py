"""Checks that generated entry points make on their inputs: a tangent (dense, low-rank, K-stacked)
must match its primal's shape and dtype (raised from compiled code as ``TangentMismatch``).

>>> from numba import types
>>> describe_type(types.float64[:, :])
'array(float64, 2d)'
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from ..errors import TangentMismatch
from .core import define, describe_type


def check_tangent(x, dx, name):
    """``dx`` as the tangent of ``x``: raises TangentMismatch unless they match."""
    return dx


@overload(check_tangent)
def _ov_check_tangent(x, dx, name):
    pname = getattr(name, "literal_value", "?")
    if isinstance(x, types.Array):
        if not isinstance(dx, types.Array) or dx.ndim != x.ndim or dx.dtype != x.dtype:
            raise TypingError(f"fwdjit: tangent for '{pname}' must be {describe_type(x)}, given {describe_type(dx)}")

        def impl(x, dx, name):
            if x.shape != dx.shape:
                raise TangentMismatch("shape", name, x.shape, dx.shape)
            return dx
        return impl
    if isinstance(x, types.Float):
        if isinstance(dx, types.Float):
            ty = x
            return lambda x, dx, name: ty(dx)
        raise TypingError(f"fwdjit: tangent for '{pname}' must be a float like its primal ({x}), given {describe_type(dx)}")
    if isinstance(x, types.BaseTuple):
        if not isinstance(dx, types.BaseTuple) or len(dx) != len(x):
            raise TypingError(f"fwdjit: tangent for '{pname}' must be a tuple like its primal {x}, given {describe_type(dx)}")
        return lambda x, dx, name: dx
    raise TypingError(f"fwdjit: argument '{pname}' of type {describe_type(x)} cannot take a tangent; pass None for it")


def check_lowrank(x, a, b, name):
    """``(a, b)`` as the factors of a low-rank tangent ``a @ b.T`` of ``x``: raises unless they match."""
    return a, b


@overload(check_lowrank)
def _ov_check_lowrank(x, a, b, name):
    pname = getattr(name, "literal_value", "?")
    if not (isinstance(x, types.Array) and x.ndim == 2):
        raise TypingError(f"fwdjit: a low-rank tangent (fwdjit.LowRank) needs a 2-d array argument; "
                          f"'{pname}' is {describe_type(x)}: pass a dense tangent for it")
    for f, which in ((a, "A"), (b, "B")):
        if not isinstance(f, types.Array) or f.ndim != 2 or f.dtype != x.dtype:
            raise TypingError(f"fwdjit: low-rank tangent for '{pname}': factor {which} must be "
                              f"array({x.dtype}, 2d), given {describe_type(f)}")

    def impl(x, a, b, name):
        if a.shape[0] != x.shape[0] or b.shape[0] != x.shape[1] or a.shape[1] != b.shape[1]:
            raise TangentMismatch("shape of its factors (A: (m, r), B: (n, r))", name,
                                  (x.shape[0], a.shape[1], x.shape[1], a.shape[1]),
                                  (a.shape[0], a.shape[1], b.shape[0], b.shape[1]))
        return a, b
    return impl


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
                          f"K directions, given {describe_type(dX)}")
    if isinstance(x, types.Array):
        if dX.ndim != x.ndim + 1 or dX.dtype != x.dtype:
            raise TypingError(f"fwdjit: batched tangents for '{pname}' must be array({x.dtype}, {x.ndim + 1}d) "
                              f"(K directions, then the primal's shape), given {describe_type(dX)}")

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
    raise TypingError(f"fwdjit: argument '{pname}' of type {describe_type(x)} cannot take a tangent; pass None for it")


