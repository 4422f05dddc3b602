"""Products Numba lacks or gets wrong: ``einsum``, ``tensordot``, ``matmul``, ``inner``, ``dot``
with a scalar or an N-d operand, ``kron`` of scalars, ``cross`` with axes.

Every one is an einsum: a *spec* (index letters of each operand and of the
output) from which :func:`einsum_source` writes loop code at typing time:

>>> print(einsum_source("ein", parse_spec("ij,jk->ik", 2)), end="")
def ein(a0, a1):
    if a0.shape[1] != a1.shape[0]:
        raise ValueError("einsum: operand shapes do not agree on subscript 'j': a0.shape[1] != a1.shape[0]")
    out = np.zeros((a0.shape[0], a1.shape[1]), DT)
    for i in range(a0.shape[0]):
        for k in range(a1.shape[1]):
            for j in range(a0.shape[1]):
                out[i, k] += a0[i, j] * a1[j, k]
    return out
>>> import numpy as np
>>> tensordot(np.ones((2, 3)), np.ones((3, 4)), 1, None).shape, float(kron(2.0, 3.0))
((2, 4), 6.0)

Every index letter that more than one dimension carries is checked, before
the loops, to have one length there (Numba does not bounds-check, so a
mismatch would read out of bounds where NumPy raises ``ValueError``).

The tangent of an einsum is the sum of einsums with one operand replaced by
its tangent (``fwdjit.rules.npimpl``), so second derivatives follow.
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from .codegen import NOT_LITERAL, agree_checks, build, fail, index, is_array, ndim_of, np_dtype, safe_name, static

__all__ = ["einsum", "tensordot", "matmul", "inner", "kron", "cross", "parse_spec"]

_MOD = __name__
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_spec(subscripts, nops):
    """``(operand index strings, output index string)`` of einsum ``subscripts`` for ``nops`` operands.

    Implicit output (no ``->``): the letters that appear once, in alphabetical order, as NumPy does.
    """
    s = subscripts.replace(" ", "")
    if "." in s:
        raise ValueError("einsum with '...' (ellipsis) is not supported: write every index")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins, out = s, None
    ops = ins.split(",")
    if len(ops) != nops:
        raise ValueError(f"einsum subscripts {subscripts!r} name {len(ops)} operands, {nops} given")
    for o in ops + ([out] if out is not None else []):
        if not all(c in _LETTERS for c in o):
            raise ValueError(f"einsum subscripts must be letters: {subscripts!r}")
    if out is None:
        counts = {}
        for o in ops:
            for c in o:
                counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, n in counts.items() if n == 1))
    if len(set(out)) != len(out) or any(c not in "".join(ops) for c in out):
        raise ValueError(f"einsum output {out!r} repeats a letter or names one no operand has")
    return tuple(ops), out


def einsum_source(name, spec, what="einsum", shown=None, label=None):
    """Loop code of an einsum ``spec``: output indices outermost, summed indices inside.

    The loops take each extent from the first dimension carrying its letter, so the
    code first checks that the other dimensions with that letter agree.  ``what`` names
    the function in the messages, ``shown`` the operands (default ``a0``, ``a1``, ...),
    ``label(letter)`` the letter (default ``subscript 'j'``).
    """
    ops, out = spec
    args = [f"a{k}" for k in range(len(ops))]
    shown = shown or args
    label = label or (lambda c: f"subscript {c!r}")
    extent, dims = {}, {}
    for k, o in enumerate(ops):
        for pos, c in enumerate(o):
            extent.setdefault(c, f"a{k}.shape[{pos}]")
            dims.setdefault(c, []).append((f"{shown[k]}.shape[{pos}]", f"a{k}.shape[{pos}]"))
    summed = [c for c in extent if c not in out]
    prod = " * ".join(f"a{k}[{index(list(o))}]" if o else f"a{k}" for k, o in enumerate(ops))
    lines = [f"def {name}({', '.join(args)}):"]
    lines += agree_checks(what, [(label(c), d) for c, d in dims.items() if len(d) > 1])
    if out:
        shape = ", ".join(extent[c] for c in out) + ("," if len(out) == 1 else "")
        lines.append(f"    out = np.zeros(({shape}), DT)")
        target = f"out[{index(list(out))}]"
    else:
        lines.append("    out = DT(0)")
        target = "out"
    pad = "    "
    for depth, c in enumerate(list(out) + summed):
        lines.append(pad * (depth + 1) + f"for {c} in range({extent[c]}):")
    lines.append(pad * (len(out) + len(summed) + 1) + f"{target} += {prod}")
    lines.append("    return out")
    return "\n".join(lines) + "\n"


def _result_dtype(*tys):
    return np.result_type(*[np.dtype(np_dtype(t)) for t in tys]).type


def _check_ndims(spec, tys, what):
    for o, t in zip(spec[0], tys):
        if not isinstance(t, (types.Array, types.Number, types.Boolean)):
            fail(f"{what}: operands must be arrays or numbers, not {t}")
        if len(o) != ndim_of(t):
            fail(f"{what}: operand with index letters {o!r} has {ndim_of(t)} dimensions")


def _spec_impl(tag, spec, tys, sig, operands, shown=None, label=None):
    """The generated function (parameters ``sig``) of ``spec`` for operand types ``tys``.

    ``operands``: the expressions of the operands in terms of the parameters;
    ``shown``, ``label``: their names and the letters' in error messages (see :func:`einsum_source`).
    """
    _check_ndims(spec, tys, tag)
    ops, out = spec
    name = safe_name(tag, "_".join(o or "s" for o in ops), "to", out or "s")
    src = einsum_source(name, spec, tag, shown or operands, label)
    prelude = "".join(f"    a{k} = {e}\n" for k, e in enumerate(operands))
    head = f"def {name}({', '.join(f'a{k}' for k in range(len(ops)))}):\n"
    src = src.replace(head, f"def {name}({sig}):\n{prelude}", 1)
    return build(src, name, {"DT": _result_dtype(*tys)}, _MOD)


# ------------------------------------------------------------------ einsum
def einsum(subscripts, *operands):
    return np.einsum(subscripts, *operands)


@overload(einsum, prefer_literal=True)
def _ov_einsum(subscripts, *operands):
    text = static(subscripts)
    if text is NOT_LITERAL:
        return None
    try:
        spec = parse_spec(text, len(operands))
    except ValueError as exc:
        fail(str(exc))
    return _spec_impl("einsum", spec, operands, "subscripts, *operands",
                      [f"operands[{k}]" for k in range(len(operands))])


# --------------------------------------------------------------- tensordot
def tensordot(a, b, axes_a, axes_b):
    """``np.tensordot(a, b, axes_a)`` when ``axes_b`` is None, else ``np.tensordot(a, b, (axes_a, axes_b))``
    (two flat arguments: Numba types a flat tuple of constants as a literal, a nested one not)."""
    return np.tensordot(a, b, axes_a if axes_b is None else (axes_a, axes_b))


def tensordot_spec(na, nb, axes):
    """The einsum spec of ``tensordot`` of an ``na``-d and an ``nb``-d array over ``axes``."""
    if isinstance(axes, int):
        if axes > min(na, nb) or axes < 0:
            raise ValueError(f"tensordot: axes={axes} does not fit arrays of {na} and {nb} dimensions")
        ax_a, ax_b = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = (ax_a,) if isinstance(ax_a, int) else tuple(ax_a)
        ax_b = (ax_b,) if isinstance(ax_b, int) else tuple(ax_b)
        if len(ax_a) != len(ax_b):
            raise ValueError("tensordot: the two axes sequences differ in length")
        ax_a = tuple(a % na for a in ax_a)
        ax_b = tuple(b % nb for b in ax_b)
    la = list(_LETTERS[:na])
    lb = list(_LETTERS[na:na + nb])
    for i, j in zip(ax_a, ax_b):
        lb[j] = la[i]
    out = [c for k, c in enumerate(la) if k not in ax_a] + [c for k, c in enumerate(lb) if k not in ax_b]
    return ("".join(la), "".join(lb)), "".join(out)


@overload(tensordot, prefer_literal=True)
def _ov_tensordot(a, b, axes_a, axes_b):
    ax, bx = static(axes_a), static(axes_b)
    if ax is NOT_LITERAL or bx is NOT_LITERAL:
        return None
    if bx is not None:
        ax = (ax, bx)
    try:
        spec = tensordot_spec(ndim_of(a), ndim_of(b), ax)
    except (ValueError, TypeError) as exc:
        fail(str(exc))
    return _spec_impl("tensordot", spec, (a, b), "a, b, axes_a, axes_b", ["a", "b"],
                      label=lambda c: "a summed axis")


# --------------------------------------- matmul, inner, dot (scalar, N-d), kron
def matmul(a, b):
    return np.matmul(a, b)


def inner(a, b):
    return np.inner(a, b)


def kron(a, b):
    return np.kron(a, b)


def _scalar(t):
    return isinstance(t, (types.Number, types.Boolean))


@overload(matmul)
def _ov_matmul(a, b):
    if not (is_array(a) and is_array(b)):
        fail("matmul: both operands must be arrays (use * for scalars)")
    na, nb = a.ndim, b.ndim
    if na <= 2 and nb <= 2 and a.dtype == b.dtype:
        return lambda a, b: a @ b
    if na <= 2 and nb <= 2:
        return lambda a, b: np.dot(a, b)
    if na < 2 or nb < 2 or na != nb and min(na, nb) != 2:
        fail("matmul of stacks of matrices: both operands need ndim >= 2 and the same ndim (or one a matrix)")
    # a stack: (..., n, k) @ (..., k, m); batch dims must be equal (no size-1 broadcasting)
    nbatch = max(na, nb) - 2
    batch = _LETTERS[:nbatch]
    la = (batch if na > 2 else "") + "xy"
    lb = (batch if nb > 2 else "") + "yz"
    return _spec_impl("matmul", ((la, lb), batch + "xz"), (a, b), "a, b", ["a", "b"],
                      label=lambda c: "the summed axis" if c == "y" else "a batch axis (no size-1 broadcasting)")


@overload(inner)
def _ov_inner(a, b):
    if _scalar(a) or _scalar(b):
        return lambda a, b: a * b
    na, nb = a.ndim, b.ndim
    la, lb = _LETTERS[:na - 1] + "Z", _LETTERS[na - 1:na + nb - 2] + "Z"
    return _spec_impl("inner", ((la, lb), la[:-1] + lb[:-1]), (a, b), "a, b", ["a", "b"],
                      label=lambda c: "the last axis")


@overload(np.dot)
def _ov_dot(a, b):
    """``np.dot`` where Numba has none: a scalar operand, or an operand of more than 2 dimensions.

    Registered on ``np.dot`` itself (Numba's own serves vectors and matrices), so ``np.dot``
    keeps its derivative rule and its low-rank form in generated code.
    """
    if _scalar(a) or _scalar(b):
        return lambda a, b: a * b
    if not (is_array(a) and is_array(b)):
        return None
    na, nb = a.ndim, b.ndim
    if na <= 2 and nb <= 2:
        return None
    # sum over the last axis of a and the second-to-last of b (the only one of a vector)
    la = _LETTERS[:na - 1] + "Z"
    rest = _LETTERS[na - 1:na + nb - 2]
    lb = "Z" if nb == 1 else rest[:-1] + "Z" + rest[-1]
    out = la[:-1] + ("" if nb == 1 else rest)
    return _spec_impl("dot", ((la, lb), out), (a, b), "a, b", ["a", "b"],
                      label=lambda c: "the summed axis (a's last, b's second-to-last)")


@overload(kron)
def _ov_kron(a, b):
    if _scalar(a) and _scalar(b):
        return lambda a, b: a * b
    if _scalar(a):
        return lambda a, b: a * b
    if _scalar(b):
        return lambda a, b: a * b
    return lambda a, b: np.kron(a, b)


# ------------------------------------------------------------------- cross
def cross(a, b, axisa, axisb, axisc):
    return np.cross(a, b, axisa=axisa, axisb=axisb, axisc=axisc)


@overload(cross, prefer_literal=True)
def _ov_cross(a, b, axisa, axisb, axisc):
    axa, axb, axc = static(axisa), static(axisb), static(axisc)
    if NOT_LITERAL in (axa, axb, axc):
        return None
    if not (is_array(a) and is_array(b)):
        fail("cross: both operands must be arrays")
    na, nb = a.ndim, b.ndim
    axa, axb = axa % na, axb % nb
    # vector axis of each operand named V, other axes broadcast from the right
    nout = max(na, nb) - 1
    rest = _LETTERS[8:8 + nout]          # loop variables i, j, ... (not the parameters a, b)
    la = rest[nout - (na - 1):]
    lb = rest[nout - (nb - 1):]
    la = la[:axa] + "V" + la[axa:]
    lb = lb[:axb] + "V" + lb[axb:]
    axc = axc % (nout + 1)
    name = safe_name("cross", la, lb, "c", axc)
    ia = [f"{c}" if c != "V" else "{v}" for c in la]
    ib = [f"{c}" if c != "V" else "{v}" for c in lb]
    oix = list(rest)
    oix.insert(axc, "{v}")

    def at(parts, v):
        return index([p.replace("{v}", str(v)) for p in parts])
    ext, dims = {}, {}
    for var, ls in (("a", la), ("b", lb)):
        for pos, c in enumerate(ls):
            if c != "V":
                ext.setdefault(c, f"{var}.shape[{pos}]")
                dims.setdefault(c, []).append((f"{var}.shape[{pos}]",) * 2)
    shape = [ext[c] for c in rest]
    shape.insert(axc, "3")
    lines = [f"def {name}(a, b, axisa, axisb, axisc):",
             f"    if a.shape[{axa}] != 3 or b.shape[{axb}] != 3:",
             "        raise ValueError('fwdjit cross: vectors must have 3 components')"]
    lines += agree_checks("cross", [("a broadcast axis (no size-1 broadcasting)", d)
                                    for d in dims.values() if len(d) > 1])
    lines += [f"    out = np.empty(({', '.join(shape)},), DT)"]
    pad = "    "
    for d, c in enumerate(rest):
        lines.append(pad * (d + 1) + f"for {c} in range({ext[c]}):")
    inner_pad = pad * (len(rest) + 1)
    for v, (p, q) in enumerate(((1, 2), (2, 0), (0, 1))):
        lines.append(inner_pad + f"out[{at(oix, v)}] = a[{at(ia, p)}] * b[{at(ib, q)}] - a[{at(ia, q)}] * b[{at(ib, p)}]")
    lines.append("    return out")
    return build("\n".join(lines) + "\n", name, {"DT": _result_dtype(a, b)}, _MOD)
