"""What every NumPy implementation in :mod:`fwdjit.npimpl` is built from.

An implementation is generated once per combination of argument *types* (the
ndim of each array, the literal value of each static argument such as ``axis``),
as plain Python loop code executed with :func:`build` and compiled by Numba
inside the caller.  The static arguments reach the overloads as Numba literal
types (the overloads are registered with ``prefer_literal=True``).

>>> static(None), normalize_axes((0, -1), 3), normalize_axes(None, 2)
(None, (0, 2), (0, 1))
>>> index(["i0", "i1"])
'i0, i1'
"""
from __future__ import annotations

import re

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.np.numpy_support import as_dtype

from ..runtime.core import define

__all__ = ["build", "static", "normalize_axes", "index", "shape_of", "np_dtype", "sum_dtype", "mean_dtype",
           "is_array", "ndim_of", "fail", "NOT_LITERAL", "agree_checks", "nonempty_checks"]

#: what :func:`static` returns for an argument that is not a literal
NOT_LITERAL = object()


def build(source, name, namespace, module):
    """Execute ``source`` (one ``def name(...)``) as a function of ``module`` (an imported module).

    ``name`` must say everything the body depends on (ndim, axes, ...): Numba
    names machine code by module and qualified name, so two different bodies
    must never share one (see ``fwdjit.runtime.define``).
    """
    return define(source, name, {"np": np, **namespace}, module)


def safe_name(*parts):
    """A function name from the specialization: ``safe_name("sum", 2, (0, 1), True) == 'sum_2_0_1_True'``."""
    text = "_".join(str(p) for p in parts)
    return re.sub(r"[^0-9A-Za-z]+", "_", text.replace("-", "m")).strip("_")


def fail(msg):
    raise TypingError(f"fwdjit: {msg}")


def static(t):
    """The Python value of a literal Numba type (int, bool, None, str, tuples of them), or NOT_LITERAL."""
    if not isinstance(t, types.Type):
        return t
    if isinstance(t, (types.NoneType, types.Omitted)):
        return getattr(t, "value", None) if isinstance(t, types.Omitted) else None
    if isinstance(t, types.Literal):
        return t.literal_value
    if isinstance(t, types.BaseTuple):
        vals = tuple(static(e) for e in t.types)
        return NOT_LITERAL if any(v is NOT_LITERAL for v in vals) else vals
    return NOT_LITERAL


def normalize_axes(axis, ndim):
    """Sorted non-negative axes of ``axis`` (None: all) for an array of ``ndim`` dimensions."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool):
            fail(f"axis must be an int or a tuple of ints, not {a!r}")
        if not -ndim <= a < ndim:
            fail(f"axis {a} is out of bounds for an array of dimension {ndim}")
        a = a % ndim
        if a in out:
            fail(f"repeated axis {a}")
        out.append(a)
    return tuple(sorted(out))


def index(parts):
    """``x[i0, i1]``'s index text; ``()`` for a 0-d selection."""
    return ", ".join(parts) if parts else "()"


def shape_of(var, ndim):
    return [f"{var}.shape[{k}]" for k in range(ndim)]


def is_array(t):
    return isinstance(t, types.Array)


def ndim_of(t):
    return t.ndim if isinstance(t, types.Array) else 0


def np_dtype(t):
    """The NumPy scalar type of a Numba array or scalar type."""
    return as_dtype(t.dtype if isinstance(t, types.Array) else t).type


def sum_dtype(t):
    """NumPy's result type of ``sum``/``prod``/``cumsum``: ints and bools become int64."""
    d = np_dtype(t)
    return np.int64 if np.dtype(d).kind in "biu" else d


def mean_dtype(t):
    """NumPy's result type of ``mean``/``var``/``std``: ints and bools become float64."""
    d = np_dtype(t)
    return np.float64 if np.dtype(d).kind in "biu" else d


def loops(dims, body, indent=1):
    """Nested ``for`` loops over ``dims`` (``(index variable, extent text)``) around ``body`` lines."""
    lines = []
    pad = "    " * indent
    for k, (var, extent) in enumerate(dims):
        lines.append(pad + "    " * k + f"for {var} in range({extent}):")
    inner = pad + "    " * len(dims)
    lines += [inner + b for b in body]
    return lines


def agree_checks(what, groups, indent=1):
    """Run-time checks that every group of dimensions has one length (Numba does not bounds-check).

    ``groups``: ``(label, [(shown, shape expression), ...])`` pairs; each group must
    agree (its first dimension against each other one), else ``ValueError`` naming
    ``what``, the label and the two dimensions as ``shown`` (the user's names).
    The messages are written here, at generation time; the checks cost O(ndim) per call.

    >>> lines = agree_checks("f", [("subscript 'j'", [("x.shape[1]", "a.shape[1]"), ("y.shape[0]", "b.shape[0]")])])
    >>> print("\\n".join(lines))
        if a.shape[1] != b.shape[0]:
            raise ValueError("f: operand shapes do not agree on subscript 'j': x.shape[1] != y.shape[0]")
    """
    pad = "    " * indent
    lines = []
    for label, dims in groups:
        shown0, first = dims[0]
        for shown, other in dims[1:]:
            msg = f"{what}: operand shapes do not agree on {label}: {shown0} != {shown}"
            lines += [f"{pad}if {first} != {other}:", f"{pad}    raise ValueError({_quote(msg)})"]
    return lines


def nonempty_checks(var, axes, opname, indent=1):
    """Run-time check that no reduced axis of ``var`` is empty (a reduction without identity)."""
    if not axes:
        return []
    pad = "    " * indent
    cond = " or ".join(f"{var}.shape[{a}] == 0" for a in axes)
    msg = f"zero-size array to reduction operation {opname} which has no identity"
    return [f"{pad}if {cond}:", f"{pad}    raise ValueError({_quote(msg)})"]


def _quote(text):
    """A double-quoted Python literal of ``text`` (which holds no double quote or backslash)."""
    assert '"' not in text and "\\" not in text, text
    return '"' + text + '"'
