"""Jacobians, gradients and second derivatives from the same compiler.

* :func:`jacfwd` - the full Jacobian from basis tangents, K at a time (vector mode);
* :func:`grad` - the exact gradient of a scalar function (forward mode: best for few inputs);
* :func:`hvp` - second directional derivatives ``v^T (d2 f) w`` by forward over forward:
  fwdjit differentiates its own generated tangent code;
* :func:`hessian` - the Hessian of a small function.

Layout follows JAX: ``jacfwd(f)(x).shape == out.shape + x.shape``.
"""
from __future__ import annotations

import numpy as np

from .api import FwdjitFunction, get_fwdjit
from .errors import TangentError


def _as_fj(f):
    return f if isinstance(f, FwdjitFunction) else get_fwdjit(f)


def _norm_argnums(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _is_float_arg(a):
    return isinstance(a, (float, np.floating)) or (isinstance(a, np.ndarray) and a.dtype.kind == "f")


def jacfwd(f, argnums=0, chunk=16):
    """Return ``jac(*args)``: the Jacobian of ``f`` with respect to ``args[argnums]``.

    Basis tangents are pushed through vector mode ``chunk`` at a time; when
    several arguments are requested their directions share the same passes.
    Returns one array (or a tuple per output for tuple outputs) of shape
    ``out.shape + arg.shape``; a tuple of those when ``argnums`` is a tuple.
    """
    fj = _as_fj(f)
    nums = _norm_argnums(argnums)

    def jac(*args):
        for i in nums:
            if not _is_float_arg(args[i]):
                raise TangentError(f"jacfwd of {fj.name}: argument {i} ({fj.params[i]}) must be a float scalar "
                                   f"or a float array, given {type(args[i]).__name__}")
        sizes = [int(np.size(args[i])) for i in nums]
        total = sum(sizes)
        K = max(1, min(chunk, total))
        offsets = np.cumsum([0] + sizes)
        columns = []       # per chunk: stacked output tangents
        for start in range(0, total, K):
            tangents = [None] * len(args)
            for j, i in enumerate(nums):
                a = args[i]
                dtype = a.dtype if isinstance(a, np.ndarray) else np.result_type(type(a))
                T = np.zeros((K, sizes[j]), dtype)
                for k in range(K):
                    col = start + k - offsets[j]
                    if 0 <= col < sizes[j]:
                        T[k, col] = 1
                tangents[i] = T.reshape((K,) + np.shape(a))
            _, douts = fj.jvp(tuple(args), tuple(tangents), batched=True)
            columns.append(douts)
        valid = total

        def assemble(parts):
            stacked = np.concatenate([np.asarray(p) for p in parts], axis=0)[:valid]   # (total, *out.shape)
            out = []
            for j, i in enumerate(nums):
                block = stacked[offsets[j]:offsets[j + 1]]                           # (size_j, *out.shape)
                block = np.moveaxis(block, 0, -1)                                    # (*out.shape, size_j)
                out.append(block.reshape(block.shape[:-1] + np.shape(args[i])))
            return out[0] if isinstance(argnums, int) else tuple(out)

        if isinstance(columns[0], tuple):
            return tuple(assemble([c[o] for c in columns]) for o in range(len(columns[0])))
        return assemble(columns)
    return jac


def grad(f, argnums=0, chunk=16):
    """The exact gradient of a scalar-valued ``f`` by forward mode (one pass per ``chunk`` inputs)."""
    jac = jacfwd(f, argnums, chunk)
    fj = _as_fj(f)

    def g(*args):
        J = jac(*args)
        if isinstance(J, tuple) and isinstance(argnums, int):
            raise TangentError(f"grad of {fj.name}: the function returns a tuple; use jacfwd")
        return J
    return g


def hvp(f, primals, v, w):
    """``v^T (d2 f) w``: the second directional derivative, by forward over forward.

    ``v`` and ``w`` are tangent tuples like those of ``jvp`` (None for no
    tangent).  fwdjit transforms the generated tangent code of ``f`` again,
    so the result is exact.  For a tuple output, a tuple.
    """
    fj = _as_fj(f)
    primals, v, w = tuple(primals), tuple(v), tuple(w)
    mask = tuple(t is not None for t in v)
    tf = fj.tangent_fwdjit(mask)
    args = primals + tuple(t for t in v if t is not None)
    tangents = tuple(w) + (None,) * sum(mask)
    (_, _), (_, second) = tf.jvp(args, tangents)
    return second


def hessian(f, argnum=0, chunk=16):
    """Return ``H(*args)``: the Hessian of a scalar ``f`` with respect to ``args[argnum]``.

    Row i is the Jacobian (vector mode, ``chunk`` directions per pass) of the
    directional derivative along basis vector ``e_i``; shape ``x.shape + x.shape``.
    """
    fj = _as_fj(f)

    def H(*args):
        x = args[argnum]
        if not _is_float_arg(x):
            raise TangentError(f"hessian of {fj.name}: argument {argnum} must be a float scalar or array")
        n = int(np.size(x))
        mask = tuple(i == argnum for i in range(len(args)))
        tf = fj.tangent_fwdjit(mask)
        jac = jacfwd(tf, argnums=argnum, chunk=chunk)
        rows = []
        for i in range(n):
            e = np.zeros(n, x.dtype if isinstance(x, np.ndarray) else float)
            e[i] = 1
            e = e.reshape(np.shape(x)) if isinstance(x, np.ndarray) else float(e[0])
            J = jac(*args, e)                       # Jacobian of (out, dout) w.r.t. x
            rows.append(np.asarray(J[1]).reshape(-1))
        return np.array(rows).reshape(np.shape(x) + np.shape(x))
    return H
