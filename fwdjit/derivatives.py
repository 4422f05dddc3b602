"""Jacobians, gradients and second derivatives from the same compiler.

* :func:`jacfwd` - the full Jacobian from basis tangents, K at a time (vector mode);
* :func:`grad` - the exact gradient of a scalar function (forward mode: best for few inputs);
* :func:`hvp` - the Hessian-vector product ``H v`` (JAX's and PyTorch's meaning) by forward over
  forward: fwdjit differentiates its own generated tangent code;
* :func:`vhv` - the second directional derivative ``v^T (d2 f) w`` in one pass;
* :func:`hessian` - the Hessian of a small function.

Layout follows JAX: ``jacfwd(f)(x).shape == out.shape + x.shape``.
"""
from __future__ import annotations

import numpy as np

from .api import as_fwdjit
from .errors import TangentError


def _norm_argnums(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _is_float_arg(a):
    return isinstance(a, (float, np.floating)) or (isinstance(a, np.ndarray) and a.dtype.kind == "f")


def _arg_dtype(a):
    """The float dtype of a differentiated argument (a Python float is float64)."""
    return a.dtype if isinstance(a, (np.ndarray, np.generic)) else np.result_type(type(a))


def _as_arg_dtype(block, a):
    """A derivative with respect to ``a`` in ``a``'s dtype (as JAX's and autograd's gradients are).

    The tangents that jacfwd pushes have the argument's dtype but the output tangents have the output's
    dtype (float64 for ``np.sum(x.astype("float64"))`` of a float32 ``x``); a gradient or Jacobian block
    is cast back to the argument's dtype.  Only float blocks are cast.
    """
    block = np.asarray(block)
    dtype = _arg_dtype(a)
    if block.dtype.kind == "f" and dtype.kind == "f" and block.dtype != dtype:
        return block.astype(dtype)
    return block


def _check_float_args(what, fn, args, nums):
    """Raise a TangentError naming the first of ``args[nums]`` that is not a float scalar or array."""
    for i in nums:
        if not _is_float_arg(args[i]):
            raise TangentError(f"{what} of {fn.name}: argument {i} ({fn.params[i]}) must be a float scalar "
                               f"or a float array, given {type(args[i]).__name__}")


def jacfwd(f, argnums=0, chunk=16):
    """Return ``jac(*args)``: the Jacobian of ``f`` with respect to ``args[argnums]``.

    Basis tangents are pushed through vector mode ``chunk`` at a time; when
    several arguments are requested their directions share the same passes.
    Returns one array (or a tuple per output for tuple outputs) of shape
    ``out.shape + arg.shape``; a tuple of those when ``argnums`` is a tuple.
    """
    fj = as_fwdjit(f)
    nums = _norm_argnums(argnums)

    def jac(*args):
        _check_float_args("jacfwd", fj, args, nums)
        sizes = [int(np.size(args[i])) for i in nums]
        total = sum(sizes)
        K = max(1, min(chunk, total))
        offsets = np.cumsum([0] + sizes)
        columns = []       # per chunk: stacked output tangents
        for start in range(0, total, K):
            tangents = [None] * len(args)
            for j, i in enumerate(nums):
                a = args[i]
                dtype = _arg_dtype(a)
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
                out.append(_as_arg_dtype(block.reshape(block.shape[:-1] + np.shape(args[i])), args[i]))
            return out[0] if isinstance(argnums, int) else tuple(out)

        if isinstance(columns[0], tuple):
            return tuple(assemble([c[o] for c in columns]) for o in range(len(columns[0])))
        return assemble(columns)
    return jac


def scalar_like(value, arg):
    """A 0-d result for a scalar argument as a NumPy scalar of the argument's dtype (float in, float out)."""
    if isinstance(arg, np.ndarray) or np.ndim(value) != 0:
        return value
    dtype = arg.dtype if isinstance(arg, np.generic) else np.asarray(value).dtype
    return dtype.type(np.asarray(value)[()])


def _like_args(value, args, argnums):
    if isinstance(argnums, int):
        return scalar_like(value, args[argnums])
    return tuple(scalar_like(v, args[i]) for v, i in zip(value, argnums))


def grad(f, argnums=0, chunk=16):
    """The exact gradient of a scalar-valued ``f`` by forward mode (one pass per ``chunk`` inputs).

    Like ``jax.grad``: ``grad(f, argnums)(*args)`` is shaped like ``args[argnums]``
    (a tuple of those for a tuple ``argnums``).  For a scalar argument the
    gradient is a NumPy scalar of the argument's dtype (``np.float64``, which
    is a ``float``, or ``np.float32``), as :func:`fwdjit.forward_grad` returns.
    """
    jac = jacfwd(f, argnums, chunk)
    fj = as_fwdjit(f)

    def g(*args):
        J = jac(*args)
        if isinstance(J, tuple) and isinstance(argnums, int):
            raise TangentError(f"grad of {fj.name}: the function returns a tuple; use jacfwd")
        return _like_args(J, args, argnums)
    return g


_OLD_HVP = object()


def hvp(f, primals, tangents=None, *old, argnums=0, v=None, w=None):
    """The Hessian-vector product ``H v`` (JAX's and PyTorch's ``hvp``), by forward over forward.

    ``hvp(f, primals, tangents)`` is ``jvp(grad(f, argnums), primals, tangents)[1]``,
    the JAX autodiff cookbook's ``hvp``: ``tangents`` has one entry per primal
    (``None`` for no tangent), ``f`` returns a scalar, and the result is shaped
    like ``primals[argnums]`` (a tuple for a tuple ``argnums``; a NumPy scalar
    for a scalar argument).  fwdjit transforms its own generated tangent code
    and pushes basis tangents through it in vector mode, so the result is exact
    and costs about ``size(primals[argnums]) / 16`` passes; the scalar
    ``v^T H w`` costs one pass: use :func:`vhv` for it.

    Deprecated: ``hvp(f, primals, v, w)`` (fwdjit 0.1) returned the scalar
    ``v^T H w``; that call form still works for one release, with a
    ``DeprecationWarning``, and returns what :func:`vhv` returns.
    """
    if old or w is not None or v is not None:
        if len(old) > 1:
            raise TypeError(f"hvp takes at most 4 positional arguments, given {3 + len(old)}")
        vv = tangents if v is None else v
        ww = old[0] if old else w
        if vv is None or ww is None:
            raise TypeError("the deprecated hvp(f, primals, v, w) needs both v and w; "
                            "for H v call hvp(f, primals, tangents)")
        import warnings
        warnings.warn("hvp(f, primals, v, w) returning the scalar v^T H w is deprecated and will be removed in "
                      "the next release: call fwdjit.vhv(f, primals, v, w) for it.  hvp(f, primals, tangents) "
                      "now returns the vector H v, as JAX's and PyTorch's hvp do.", DeprecationWarning,
                      stacklevel=2)
        return vhv(f, primals, vv, ww)
    if tangents is None:
        raise TypeError("hvp(f, primals, tangents): tangents missing (one entry per primal, None for no tangent)")
    fj = as_fwdjit(f)
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != fj._nparams or len(tangents) != fj._nparams:
        raise TangentError(f"hvp of {fj.name}: expected primals and tangents as tuples of {fj._nparams} entries "
                           f"(one per parameter, None for no tangent); given {len(primals)} and {len(tangents)}")
    nums = _norm_argnums(argnums)
    mask = tuple(t is not None for t in tangents)
    if not any(mask):
        zeros = tuple(scalar_like(np.zeros_like(np.asarray(primals[i])), primals[i]) for i in nums)
        return zeros[0] if isinstance(argnums, int) else zeros
    tf = fj.tangent_fwdjit(mask)
    args = primals + tuple(t for t in tangents if t is not None)
    J = jacfwd(tf, argnums=nums, chunk=16)(*args)       # per output of tf: (d out, d dout) w.r.t. each arg
    if not (isinstance(J, tuple) and len(J) == 2):
        raise TangentError(f"hvp of {fj.name}: the function must return one scalar")
    second = J[1]
    for i, Ji in zip(nums, second):
        if isinstance(Ji, tuple) or np.shape(Ji) != np.shape(primals[i]):
            raise TangentError(f"hvp of {fj.name}: the function must return one scalar "
                               f"(H v is the derivative of a gradient)")
    second = tuple(scalar_like(Ji, primals[i]) for i, Ji in zip(nums, second))
    return second[0] if isinstance(argnums, int) else second


def vhv(f, primals, v, w):
    """``v^T (d2 f) w``: the second directional derivative along ``v`` and ``w``, by forward over forward.

    ``v`` and ``w`` are tangent tuples like those of ``jvp`` (None for no
    tangent).  fwdjit transforms the generated tangent code of ``f`` again,
    so the result is exact, and it costs one pass.  ``f`` may return an
    array (the result is elementwise) or a tuple (a tuple).  This is what
    ``hvp(f, primals, v, w)`` returned in fwdjit 0.1.
    """
    fj = as_fwdjit(f)
    primals, v, w = tuple(primals), tuple(v), tuple(w)
    mask = tuple(t is not None for t in v)
    tf = fj.tangent_fwdjit(mask)
    args = primals + tuple(t for t in v if t is not None)
    tangents = tuple(w) + (None,) * sum(mask)
    (_, _), (_, second) = tf.jvp(args, tangents)
    return second


def hessian(f, argnums=0, chunk=16, *, argnum=None):
    """Return ``H(*args)``: the Hessian of a scalar ``f`` with respect to ``args[argnums]`` (as ``jax.hessian``).

    For an int ``argnums`` the shape is ``x.shape + x.shape``; for a tuple,
    ``H[i][j]`` is the block ``args[argnums[i]].shape + args[argnums[j]].shape``.
    Row k of a block is the Jacobian (vector mode, ``chunk`` directions per
    pass) of the directional derivative along basis vector ``e_k``.

    ``argnum=`` (fwdjit 0.1's spelling) still works for one release, with a
    ``DeprecationWarning``.
    """
    if argnum is not None:
        import warnings
        warnings.warn("hessian(f, argnum=...) is deprecated and will be removed in the next release: "
                      "use argnums=, as grad, jacfwd and JAX do", DeprecationWarning, stacklevel=2)
        if argnums not in (0, argnum):
            raise TypeError(f"hessian: given both argnums={argnums!r} and the deprecated argnum={argnum!r}")
        argnums = argnum
    fj = as_fwdjit(f)
    nums = _norm_argnums(argnums)

    def H(*args):
        _check_float_args("hessian", fj, args, nums)
        blocks = []
        for i in nums:
            x = args[i]
            n = int(np.size(x))
            mask = tuple(k == i for k in range(len(args)))
            tf = fj.tangent_fwdjit(mask)
            jac = jacfwd(tf, argnums=nums, chunk=chunk)
            rows = [[] for _ in nums]
            for k in range(n):
                e = np.zeros(n, x.dtype if isinstance(x, (np.ndarray, np.generic)) else float)
                e[k] = 1
                if isinstance(x, np.ndarray):
                    e = e.reshape(x.shape)
                else:
                    e = e[0] if isinstance(x, np.generic) else float(e[0])
                J = jac(*args, e)                   # Jacobian of (out, dout) w.r.t. args[nums]
                for r, Jj in zip(rows, J[1]):
                    r.append(np.asarray(Jj).reshape(-1))
            blocks.append(tuple(scalar_like(np.array(r).reshape(np.shape(x) + np.shape(args[j])), x
                                             if isinstance(args[j], np.ndarray) else args[j])
                                for r, j in zip(rows, nums)))
        if isinstance(argnums, int):
            return blocks[0][0]
        return tuple(blocks)
    return H
