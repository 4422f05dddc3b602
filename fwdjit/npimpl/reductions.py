"""Reductions with ``axis=`` (an int, negative, a tuple) and ``keepdims=``, which Numba lacks.

``np.sum/mean/prod/max/min(x, axis=..., keepdims=...)``, ``np.var/std(x, axis, ddof, keepdims)``,
``np.cumsum/cumprod(x, axis)``: the compiler's lower pass rewrites them into
calls of the functions below (``fj.sum_axis(x, (0, 2), True)``), whose static
arguments are literals in the generated source.  Each is a plain NumPy function
for Python and a Numba overload that generates loop code for the ndim and the
literal axes it is called with; tangents use the same functions (``sum_axis``
is linear) or their ``*_jvp`` twins (``prod``, ``max``, ``min``, ``cumprod``).

>>> import numpy as np
>>> x = np.arange(6.0).reshape(2, 3)
>>> sum_axis(x, -1, True).tolist(), max_axis_jvp(x, 10 * x, 0, False).tolist()
([[3.0], [12.0]], [30.0, 40.0, 50.0])
>>> print(reduction_source("sum_axis", 2, (1,), False, "DT"), end="")
def sum_axis(x):
    out = np.zeros((x.shape[0],), DT)
    for i0 in range(x.shape[0]):
        for i1 in range(x.shape[1]):
            v = x[i0, i1]
            out[i0] += v
    return out
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from .codegen import (NOT_LITERAL, build, fail, index, is_array, loops, mean_dtype, nonempty_checks,
                      normalize_axes, np_dtype, safe_name, static, sum_dtype)

__all__ = ["sum_axis", "mean_axis", "prod_axis", "max_axis", "min_axis", "prod_axis_jvp", "prod_axis_jvp2", "max_axis_jvp",
           "min_axis_jvp", "var_axis", "std_axis", "center", "var_scale", "std_tangent", "cumsum_axis", "cumprod_axis",
           "cumprod_axis_jvp"]

_MOD = __name__


# ------------------------------------------------------------- Python versions
def sum_axis(x, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean_axis(x, axis, keepdims):
    return np.mean(x, axis=axis, keepdims=keepdims)


def prod_axis(x, axis, keepdims):
    return np.prod(x, axis=axis, keepdims=keepdims)


def max_axis(x, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims)


def min_axis(x, axis, keepdims):
    return np.min(x, axis=axis, keepdims=keepdims)


def _pick(x, dx, axis, keepdims, argf):
    x, dx = np.asarray(x), np.asarray(dx)
    axes = normalize_axes(axis, x.ndim)
    rest = [k for k in range(x.ndim) if k not in axes]
    xt = np.transpose(x, rest + list(axes)).reshape([x.shape[k] for k in rest] + [-1])
    dt = np.transpose(dx, rest + list(axes)).reshape(xt.shape)
    out = np.take_along_axis(dt, argf(xt, axis=-1)[..., None], -1)[..., 0]
    if keepdims:
        out = out.reshape([1 if k in axes else x.shape[k] for k in range(x.ndim)])
    return out[()] if out.ndim == 0 else out


def max_axis_jvp(x, dx, axis, keepdims):
    """The tangent of ``max_axis``: ``dx`` at the first maximal element along the axes."""
    return _pick(x, dx, axis, keepdims, np.argmax)


def min_axis_jvp(x, dx, axis, keepdims):
    return _pick(x, dx, axis, keepdims, np.argmin)


def prod_axis_jvp(x, dx, axis, keepdims):
    """The tangent of ``prod_axis`` (exact where elements are zero)."""
    x, dx = np.asarray(x), np.asarray(dx)
    out = np.zeros_like(np.prod(x, axis=axis, keepdims=keepdims) * dx.flat[0])
    axes = normalize_axes(axis, x.ndim)
    for k in range(int(np.prod([x.shape[a] for a in axes]))):
        sel = np.zeros([x.shape[a] for a in axes], bool).ravel()
        sel[k] = True
        mask = np.broadcast_to(sel.reshape([x.shape[a] if a in axes else 1 for a in range(x.ndim)]), x.shape)
        out = out + np.prod(np.where(mask, dx, x), axis=axis, keepdims=keepdims)
    return out


def prod_axis_jvp2(x, dx, ex, axis, keepdims):
    """The mixed term of ``prod_axis``'s second derivative (the tangent of ``prod_axis_jvp`` along ``ex``,
    the tangent of ``x``): ``sum_{i != j} dx_i ex_j prod_{l != i, j} x_l`` over the reduced elements."""
    x, dx, ex = np.broadcast_arrays(np.asarray(x), np.asarray(dx), np.asarray(ex))
    axes = normalize_axes(axis, x.ndim)
    rest = [k for k in range(x.ndim) if k not in axes]

    def flat(a):
        return np.transpose(a, rest + list(axes)).reshape([x.shape[k] for k in rest] + [-1])
    xf, df, ef = flat(x), flat(dx), flat(ex)
    p = np.ones(xf.shape[:-1], np.result_type(xf, df, ef))
    d, e, dd = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for k in range(xf.shape[-1]):
        v = xf[..., k]
        dd = dd * v + d * ef[..., k] + e * df[..., k]
        d, e, p = d * v + p * df[..., k], e * v + p * ef[..., k], p * v
    if keepdims:
        dd = dd.reshape([1 if k in axes else x.shape[k] for k in range(x.ndim)])
    return dd[()] if dd.ndim == 0 else dd


def var_axis(x, axis, ddof, keepdims):
    return np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)


def std_axis(x, axis, ddof, keepdims):
    return np.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def center(x, axis):
    """``x - mean(x, axis, keepdims=True)`` (linear in ``x``; the tangent of ``var`` uses it)."""
    return x - np.mean(x, axis=axis, keepdims=True)


def var_scale(x, axis, ddof, factor):
    """``factor / (N - ddof)`` in ``x``'s float type, N the number of elements reduced over."""
    x = np.asarray(x)
    n = int(np.prod([x.shape[a] for a in normalize_axes(axis, x.ndim)]))
    return np.asarray(x.dtype.type(0) if x.dtype.kind == "f" else 0.0).dtype.type(factor / (n - ddof))


def std_tangent(num, std, x, axis):
    """``num / std``: the tangent of ``std_axis``, with ``num`` that of ``var_axis`` halved; 0 where one
    element is reduced (the std is 0 whatever ``x``, so is its derivative: not 0 / 0)."""
    x = np.asarray(x)
    n = int(np.prod([x.shape[a] for a in normalize_axes(axis, x.ndim)]))
    return num * 0 if n == 1 else num / std


def cumsum_axis(x, axis):
    return np.cumsum(x, axis=axis)


def cumprod_axis(x, axis):
    return np.cumprod(x, axis=axis)


def cumprod_axis_jvp(x, dx, axis):
    """The tangent of ``cumprod_axis``: ``dp[k] = dp[k-1] * x[k] + p[k-1] * dx[k]``."""
    x, dx = np.asarray(x), np.asarray(dx)
    if axis is None:
        x, dx, axis = x.ravel(), dx.ravel(), 0
    xm, dm = np.moveaxis(x, axis, 0), np.moveaxis(dx, axis, 0)
    p = np.cumprod(xm, axis=0)
    dp = np.zeros_like(p * dm)
    for k in range(xm.shape[0]):
        dp[k] = (dp[k - 1] * xm[k] + p[k - 1] * dm[k]) if k else dm[k]
    return np.moveaxis(dp, 0, axis)


# ------------------------------------------------------------- code generation
def _shape_text(parts):
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def reduction_source(name, n, axes, keep, dt, op="sum", tangent=False, sig=None):
    """Loop code of a reduction ``op`` (sum, prod, max, min) over ``axes`` of an ``n``-d array.

    ``tangent``: the function takes ``(x, dx)`` and returns the tangent (prod, max, min).
    ``tangent=2`` (prod only): it takes ``(x, dx, ex)`` and returns the mixed second-order term
    ``sum_{i != j} dx_i ex_j prod_{l != i, j} x_l`` (hyper-dual numbers: no division, exact at zeros).
    max and min have no identity: an empty axis among ``axes`` raises ``ValueError`` as in NumPy
    (the loops would otherwise return uninitialized values).
    """
    idx = [f"i{k}" for k in range(n)]
    oparts = [("0" if keep else None) if k in axes else f"i{k}" for k in range(n)]
    oparts = [p for p in oparts if p is not None]
    scalar = not oparts
    acc = {p: (f"{p}acc" if scalar else f"{p}out[{index(oparts)}]") for p in ("", "d", "e", "dd")}
    o, d = acc[""], acc["d"]
    oshape = [("1" if keep else None) if k in axes else f"x.shape[{k}]" for k in range(n)]
    oshape = _shape_text([s for s in oshape if s is not None])
    init = {"sum": "zeros", "prod": "ones", "max": "empty", "min": "empty"}[op]
    lines = [f"def {name}({sig or ('x, dx, ex' if tangent == 2 else 'x, dx' if tangent else 'x')}):"]
    if op in ("max", "min"):
        lines += nonempty_checks("x", axes, {"max": "maximum", "min": "minimum"}[op])
    extra = ("d", "e", "dd") if tangent == 2 else ("d",) if tangent else ()
    if scalar:
        lines.append(f"    acc = {dt}({1 if op == 'prod' else 0})")
        lines += [f"    {p}acc = {dt}(0)" for p in extra]
    else:
        lines.append(f"    out = np.{init}({oshape}, {dt})")
        lines += [f"    {p}out = np.zeros({oshape}, {dt})" for p in extra]
    body = [f"v = x[{index(idx)}]"]
    if op == "sum":
        body.append(f"{o} += v")
    elif op == "prod":
        if tangent == 2:        # before d and e change: the mixed term reads their values so far
            body.append(f"{acc['dd']} = {acc['dd']} * v + {d} * ex[{index(idx)}] + {acc['e']} * dx[{index(idx)}]")
            body.append(f"{acc['e']} = {acc['e']} * v + {o} * ex[{index(idx)}]")
        if tangent:
            body.append(f"{d} = {d} * v + {o} * dx[{index(idx)}]")
        body.append(f"{o} *= v")
    else:
        cmp = ">" if op == "max" else "<"
        first = " and ".join(f"i{k} == 0" for k in axes) or "True"
        take = [f"{o} = v"] + ([f"{d} = dx[{index(idx)}]"] if tangent else [])
        body.append(f"if {first}:")
        body += ["    " + t for t in take]
        # NaN propagates as in NumPy: a NaN replaces a number, never the other way round
        body.append(f"elif v {cmp} {o} or (v != v and {o} == {o}):")
        body += ["    " + t for t in take]
    lines += loops([(f"i{k}", f"x.shape[{k}]") for k in range(n)], body)
    lines.append(f"    return {('dd' if tangent == 2 else 'd' if tangent else '') + ('acc' if scalar else 'out')}")
    return "\n".join(lines) + "\n"


def _axes_keep(x, axis, keepdims, what):
    if not is_array(x):
        fail(f"{what} with axis or keepdims needs an array, not {x}")
    ax, keep = static(axis), static(keepdims)
    if ax is NOT_LITERAL or keep is NOT_LITERAL:
        return None
    return normalize_axes(ax, x.ndim), bool(keep)


def _reduction(op, tangent, dtype_of):
    # a number is its own reduction (np.sum(3.5), the tangent of np.var(3.5)): the value, its tangent, 0
    def typer(x, axis, keepdims):
        return (lambda x, axis, keepdims: x) if isinstance(x, types.Number) else impl(x, axis, keepdims)

    def typer_jvp(x, dx, axis, keepdims):
        return (lambda x, dx, axis, keepdims: dx) if isinstance(x, types.Number) else impl(x, axis, keepdims)

    def typer_jvp2(x, dx, ex, axis, keepdims):
        if isinstance(x, types.Number):
            return lambda x, dx, ex, axis, keepdims: dx - dx
        return impl(x, axis, keepdims)

    def impl(x, axis, keepdims):
        spec = _axes_keep(x, axis, keepdims, op)
        if spec is None:
            return None
        axes, keep = spec
        name = safe_name(op, "jvp" * int(tangent), x.ndim, "a", *axes, "k" if keep else "")
        sig = ("x, dx, ex" if tangent == 2 else "x, dx" if tangent else "x") + ", axis, keepdims"
        return build(reduction_source(name, x.ndim, axes, keep, "DT", op, tangent, sig), name,
                     {"DT": dtype_of(x)}, _MOD)
    return typer_jvp2 if tangent == 2 else typer_jvp if tangent else typer


overload(sum_axis, prefer_literal=True)(_reduction("sum", False, sum_dtype))
overload(prod_axis, prefer_literal=True)(_reduction("prod", False, sum_dtype))
overload(max_axis, prefer_literal=True)(_reduction("max", False, np_dtype))
overload(min_axis, prefer_literal=True)(_reduction("min", False, np_dtype))
overload(prod_axis_jvp, prefer_literal=True)(_reduction("prod", True, np_dtype))
overload(prod_axis_jvp2, prefer_literal=True)(_reduction("prod", 2, np_dtype))
overload(max_axis_jvp, prefer_literal=True)(_reduction("max", True, np_dtype))
overload(min_axis_jvp, prefer_literal=True)(_reduction("min", True, np_dtype))


def _count_text(axes):
    return " * ".join(f"x.shape[{a}]" for a in axes) or "1"


@overload(mean_axis, prefer_literal=True)
def _ov_mean_axis(x, axis, keepdims):
    if isinstance(x, types.Number):
        dt = mean_dtype(x)
        return lambda x, axis, keepdims: dt(x)
    spec = _axes_keep(x, axis, keepdims, "mean")
    if spec is None:
        return None
    axes, keep = spec
    name = safe_name("mean", x.ndim, "a", *axes, "k" if keep else "")
    src = (f"def {name}(x, axis, keepdims):\n    s = sum_axis(x, {axes!r}, {keep})\n"
           f"    return s / DT({_count_text(axes)})\n")
    return build(src, name, {"DT": mean_dtype(x), "sum_axis": sum_axis}, _MOD)


def _var_typer(root):
    def typer(x, axis, ddof, keepdims):
        if isinstance(x, types.Number):     # np.var(3.5): 0 (nan for ddof=1), in the number's float type
            dt = mean_dtype(x)
            if root:
                return lambda x, axis, ddof, keepdims: np.sqrt(dt((x - x) * (x - x) / (1 - ddof)))
            return lambda x, axis, ddof, keepdims: dt((x - x) * (x - x) / (1 - ddof))
        spec = _axes_keep(x, axis, keepdims, "var" if not root else "std")
        if spec is None:
            return None
        axes, keep = spec
        name = safe_name("std" if root else "var", x.ndim, "a", *axes, "k" if keep else "")
        ret = "np.sqrt(v)" if root else "v"
        src = (f"def {name}(x, axis, ddof, keepdims):\n    d = x - mean_axis(x, {axes!r}, True)\n"
               f"    v = sum_axis(d * d, {axes!r}, {keep}) / DT({_count_text(axes)} - ddof)\n"
               f"    return {ret}\n")
        return build(src, name, {"DT": mean_dtype(x), "sum_axis": sum_axis, "mean_axis": mean_axis}, _MOD)
    return typer


overload(var_axis, prefer_literal=True)(_var_typer(False))
overload(std_axis, prefer_literal=True)(_var_typer(True))


@overload(center, prefer_literal=True)
def _ov_center(x, axis):
    if isinstance(x, types.Number):
        return lambda x, axis: x - x
    spec = _axes_keep(x, axis, True, "center")
    if spec is None:
        return None
    axes = spec[0]
    name = safe_name("center", x.ndim, "a", *axes)
    return build(f"def {name}(x, axis):\n    return x - mean_axis(x, {axes!r}, True)\n", name,
                 {"mean_axis": mean_axis}, _MOD)


@overload(std_tangent, prefer_literal=True)
def _ov_std_tangent(num, std, x, axis):
    zero = np_dtype(num)(0)         # num * 0 would be float64 for float32 num in Numba
    if isinstance(x, types.Number):
        return lambda num, std, x, axis: num * zero
    spec = _axes_keep(x, axis, True, "std")
    if spec is None:
        return None
    axes = spec[0]
    name = safe_name("std_tangent", x.ndim, "a", *axes)
    return build(f"def {name}(num, std, x, axis):\n    if {_count_text(axes)} == 1:\n        return num * ZERO\n"
                 f"    return num / std\n", name, {"ZERO": zero}, _MOD)


@overload(var_scale, prefer_literal=True)
def _ov_var_scale(x, axis, ddof, factor):
    if isinstance(x, types.Number):
        dt = mean_dtype(x)
        return lambda x, axis, ddof, factor: dt(factor / (1 - ddof))
    spec = _axes_keep(x, axis, True, "var")
    if spec is None:
        return None
    axes = spec[0]
    name = safe_name("var_scale", x.ndim, "a", *axes)
    return build(f"def {name}(x, axis, ddof, factor):\n    return DT(factor / ({_count_text(axes)} - ddof))\n",
                 name, {"DT": mean_dtype(x)}, _MOD)


def cumulative_source(name, n, axis, op, tangent=False, sig=None, flat=False):
    """Loop code of ``cumsum``/``cumprod`` (``op`` "+" or "*") along ``axis`` of an ``n``-d array."""
    idx = [f"i{k}" for k in range(n)]
    prev = [f"i{k} - 1" if k == axis else f"i{k}" for k in range(n)]
    cur, pre = index(idx), index(prev)
    lines = [f"def {name}({sig or ('x, dx' if tangent else 'x')}):"]
    if flat:
        lines += ["    x = x.ravel()"] + (["    dx = dx.ravel()"] if tangent else [])
    lines.append("    out = np.empty(x.shape, DT)")
    if tangent:
        lines.append("    dout = np.empty(x.shape, DT)")
    body = [f"if i{axis} == 0:", f"    out[{cur}] = x[{cur}]"]
    if tangent:
        body += [f"    dout[{cur}] = dx[{cur}]", "else:",
                 f"    dout[{cur}] = dout[{pre}] * x[{cur}] + out[{pre}] * dx[{cur}]"]
    else:
        body.append("else:")
    body.append(f"    out[{cur}] = out[{pre}] {op} x[{cur}]")
    lines += loops([(f"i{k}", f"x.shape[{k}]") for k in range(n)], body)
    lines.append(f"    return {'dout' if tangent else 'out'}")
    return "\n".join(lines) + "\n"


def _cumulative(op, tangent):
    def typer(x, axis):
        return impl(x, axis)

    def typer_jvp(x, dx, axis):
        return impl(x, axis)

    def impl(x, axis):
        if not is_array(x):
            fail("cumsum/cumprod with axis needs an array")
        ax = static(axis)
        if ax is NOT_LITERAL:
            return None
        flat = ax is None
        n = 1 if flat else x.ndim
        a = 0 if flat else normalize_axes(ax, x.ndim)[0]
        name = safe_name("cum" + ("sum" if op == "+" else "prod"), "jvp" if tangent else "", n, "a", a)
        dt = np_dtype(x) if tangent else sum_dtype(x)
        sig = "x, dx, axis" if tangent else "x, axis"
        return build(cumulative_source(name, n, a, op, tangent, sig, flat), name, {"DT": dt}, _MOD)
    return typer_jvp if tangent else typer


overload(cumsum_axis, prefer_literal=True)(_cumulative("+", False))
overload(cumprod_axis, prefer_literal=True)(_cumulative("*", False))
overload(cumprod_axis_jvp, prefer_literal=True)(_cumulative("*", True))
