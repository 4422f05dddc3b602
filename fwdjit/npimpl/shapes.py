"""Shape functions with axes that Numba lacks: ``squeeze(axis)``, ``rollaxis``, ``roll(axis)``,
``repeat(axis)``, ``diff(n, axis)``, ``gradient`` (with a scalar spacing; several axes give a tuple), ``c_`` items.

All are linear in the array (``gradient`` also depends on its spacing), so one
function serves primal and tangent.  The code is generated per ndim and literal axis:

>>> print(diff_source("d", 2, 1, 1), end="")
def d(x, n, axis):
    x = x[:, 1:] - x[:, :-1]
    return x
>>> import numpy as np
>>> gradient(np.array([1.0, 2.0, 4.0, 8.0]), 1.0, None).tolist()
[1.0, 1.5, 3.0, 4.0]
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from .codegen import NOT_LITERAL, build, fail, is_array, normalize_axes, safe_name, static

__all__ = ["squeeze_axis", "rollaxis", "repeat_axis", "diff_axis", "gradient", "c_item", "r_item", "r_scalar",
           "roll_axis"]

_MOD = __name__


def squeeze_axis(x, axis):
    return np.squeeze(x, axis=axis)


def rollaxis(x, axis, start):
    return np.rollaxis(x, axis, start)


def repeat_axis(x, repeats, axis):
    return np.repeat(x, repeats, axis=axis)


def diff_axis(x, n, axis):
    return np.diff(x, n=n, axis=axis)


def gradient(x, h, axis):
    return np.gradient(x, h, axis=axis)


def c_item(x):
    """An item of ``np.c_[...]`` as a 2-D array: a scalar is (1, 1), a vector a column."""
    x = np.asarray(x)
    return x.reshape(1, 1) if x.ndim == 0 else x.reshape(-1, 1) if x.ndim == 1 else x


def r_item(x):
    """An item of ``np.r_[...]`` as an array of at least one dimension (a scalar becomes (1,))."""
    return np.atleast_1d(x)


@overload(r_item)
def _ov_r_item(x):
    if isinstance(x, (types.Number, types.Boolean)):
        return lambda x: np.full(1, x)
    return lambda x: np.atleast_1d(x)


def r_scalar(x, like):
    """A number written literally in ``np.r_[...]`` as a (1,) array, with the dtype of the float
    array ``like`` (another item): NumPy 2 treats a Python number as a weak scalar, so
    ``np.r_[a32, 2.0]`` stays float32, while ``np.full(1, 2.0)`` would be float64.

    >>> r_scalar(2.0, np.ones(2, np.float32)).dtype, r_scalar(2.0, np.arange(2)).dtype
    (dtype('float32'), dtype('float64'))
    """
    like = np.asarray(like)
    return np.full(1, x, like.dtype if like.dtype.kind == "f" else None)


@overload(r_scalar)
def _ov_r_scalar(x, like):
    if isinstance(like, types.Array) and isinstance(like.dtype, types.Float):
        dt = like.dtype
        return lambda x, like: np.full(1, x, dt)
    return lambda x, like: np.full(1, x)


def _arr(x, what):
    if not is_array(x):
        fail(f"{what} needs an array, not {x}")


@overload(squeeze_axis, prefer_literal=True)
def _ov_squeeze(x, axis):
    _arr(x, "squeeze")
    ax = static(axis)
    if ax is NOT_LITERAL:
        return None
    axes = normalize_axes(ax, x.ndim)
    keep = [k for k in range(x.ndim) if k not in axes]
    name = safe_name("squeeze", x.ndim, "a", *axes)
    check = " or ".join(f"x.shape[{a}] != 1" for a in axes) or "False"
    shape = "(" + "".join(f"x.shape[{k}], " for k in keep) + ")"
    src = (f"def {name}(x, axis):\n    if {check}:\n"
           "        raise ValueError('cannot select an axis to squeeze out which has size not equal to one')\n"
           f"    return np.ascontiguousarray(x).reshape({shape})\n")
    if not keep:
        src = (f"def {name}(x, axis):\n    if {check}:\n"
               "        raise ValueError('cannot select an axis to squeeze out which has size not equal to one')\n"
               f"    return x[{', '.join('0' for _ in axes)}]\n")
    return build(src, name, {}, _MOD)


def roll_perm(n, axis, start):
    """The axes order of ``np.rollaxis`` for an ``n``-d array."""
    axis = axis % n
    if start < 0:
        start += n
    if not 0 <= start <= n:
        fail(f"rollaxis: start {start} out of range")
    order = list(range(n))
    order.remove(axis)
    order.insert(start - 1 if start > axis else start, axis)
    return tuple(order)


@overload(rollaxis, prefer_literal=True)
def _ov_rollaxis(x, axis, start):
    _arr(x, "rollaxis")
    ax, st = static(axis), static(start)
    if NOT_LITERAL in (ax, st):
        return None
    perm = roll_perm(x.ndim, normalize_axes(ax, x.ndim)[0], st)
    name = safe_name("rollaxis", x.ndim, *perm)
    return build(f"def {name}(x, axis, start):\n    return np.transpose(x, {perm!r})\n", name, {}, _MOD)


def _one_axis(x, axis, count, what, count_name):
    """The literal ``axis`` of ``x`` made non-negative (None: not a literal yet); ``count`` must be an int."""
    _arr(x, what)
    ax = static(axis)
    if ax is NOT_LITERAL:
        return None
    if not isinstance(count, types.Integer):
        fail(f"{what} with axis: {count_name} must be one int")
    return normalize_axes(ax, x.ndim)[0]


def _index_along(ndim, axis, index):
    """``x[:, i, :]``'s index text: ``index`` at ``axis``, ``:`` elsewhere."""
    return ", ".join(index if k == axis else ":" for k in range(ndim))


@overload(repeat_axis, prefer_literal=True)
def _ov_repeat_axis(x, repeats, axis):
    a = _one_axis(x, axis, repeats, "repeat", "repeats")
    if a is None:
        return None
    n = x.ndim
    name = safe_name("repeat", n, "a", a)
    shape = ", ".join(f"x.shape[{k}] * repeats" if k == a else f"x.shape[{k}]" for k in range(n))
    idx = _index_along(n, a, "i")
    oidx = _index_along(n, a, "i * repeats + r")
    src = (f"def {name}(x, repeats, axis):\n    out = np.empty(({shape},), x.dtype)\n"
           f"    for i in range(x.shape[{a}]):\n        for r in range(repeats):\n"
           f"            out[{oidx}] = x[{idx}]\n    return out\n")
    return build(src, name, {}, _MOD)


def roll_axis(x, shift, axis):
    return np.roll(x, shift, axis=axis)


@overload(roll_axis, prefer_literal=True)
def _ov_roll_axis(x, shift, axis):
    a = _one_axis(x, axis, shift, "roll", "shift")
    if a is None:
        return None
    n = x.ndim
    name = safe_name("roll", n, "a", a)
    idx, oidx = _index_along(n, a, "i"), _index_along(n, a, "j")
    src = (f"def {name}(x, shift, axis):\n    out = np.empty_like(x)\n    m = x.shape[{a}]\n"
           f"    if m == 0:\n        return out\n    s = shift % m\n"
           f"    for i in range(m):\n        j = i + s\n        if j >= m:\n            j -= m\n"
           f"        out[{oidx}] = x[{idx}]\n    return out\n")
    return build(src, name, {}, _MOD)


def diff_source(name, ndim, n, axis):
    hi = ", ".join("1:" if k == axis else ":" for k in range(ndim))
    lo = ", ".join(":-1" if k == axis else ":" for k in range(ndim))
    return f"def {name}(x, n, axis):\n" + f"    x = x[{hi}] - x[{lo}]\n" * n + "    return x\n"


@overload(diff_axis, prefer_literal=True)
def _ov_diff_axis(x, n, axis):
    _arr(x, "diff")
    nn, ax = static(n), static(axis)
    if NOT_LITERAL in (nn, ax):
        return None
    if not isinstance(nn, int) or nn < 0:
        fail("diff: n must be a non-negative int")
    a = normalize_axes(ax, x.ndim)[0]
    name = safe_name("diff", x.ndim, "n", nn, "a", a)
    if nn == 0:
        return build(f"def {name}(x, n, axis):\n    return x\n", name, {}, _MOD)
    return build(diff_source(name, x.ndim, nn, a), name, {}, _MOD)


@overload(gradient, prefer_literal=True)
def _ov_gradient(x, h, axis):
    _arr(x, "gradient")
    ax = static(axis)
    if ax is NOT_LITERAL:
        return None
    normalize_axes(ax, x.ndim)                          # checks: ints, in bounds, not repeated
    axes = tuple(range(x.ndim)) if ax is None else tuple(a % x.ndim for a in (ax if isinstance(ax, tuple) else (ax,)))
    if len(axes) > 1:       # NumPy: a tuple of the gradients along each axis (all of them for axis=None)
        name = safe_name("gradient", x.ndim, "a", *axes)
        parts = "".join(f"gradient(x, h, {a}), " for a in axes)
        return build(f"def {name}(x, h, axis):\n    return ({parts})\n", name, {"gradient": gradient}, _MOD)
    a = axes[0]
    n = x.ndim

    def sl(s):
        return ", ".join(s if k == a else ":" for k in range(n))
    name = safe_name("gradient", n, "a", a)
    dt = "x.dtype" if isinstance(x.dtype, types.Float) else "np.float64"
    src = (f"def {name}(x, h, axis):\n"
           f"    if x.shape[{a}] < 2:\n"
           "        raise ValueError('gradient needs at least 2 points along the axis')\n"
           f"    out = np.empty(x.shape, {dt})\n"
           f"    out[{sl('0')}] = (x[{sl('1')}] - x[{sl('0')}]) / h\n"
           f"    out[{sl('-1')}] = (x[{sl('-1')}] - x[{sl('-2')}]) / h\n"
           f"    out[{sl('1:-1')}] = (x[{sl('2:')}] - x[{sl(':-2')}]) / (2 * h)\n"
           "    return out\n")
    return build(src, name, {}, _MOD)


@overload(c_item)
def _ov_c_item(x):
    if isinstance(x, (types.Number, types.Boolean)):
        return lambda x: np.full((1, 1), x)
    _arr(x, "np.c_")
    if x.ndim == 0:
        return lambda x: np.full((1, 1), x[()])
    if x.ndim == 1:
        return lambda x: np.ascontiguousarray(x).reshape((x.shape[0], 1))
    return lambda x: x
