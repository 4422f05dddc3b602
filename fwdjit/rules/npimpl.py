"""Rules of fwdjit's own NumPy implementations (:mod:`fwdjit.npimpl`, called as ``fj.*``).

The lower pass turns ``np.sum(x, axis=(0, 1))`` into ``fj.sum_axis(x, (0, 1), False)``;
these rules differentiate those calls.  Static arguments (axes, ``keepdims``,
subscripts) are copied into the tangent call as the literals they are:

* linear functions (``sum_axis mean_axis cumsum_axis squeeze_axis rollaxis repeat_axis
  diff_axis c_item center``) apply themselves to the tangent;
* products (``einsum tensordot matmul inner kron cross``) are multilinear: the tangent is
  the sum of the product with one operand replaced by its tangent;
* ``max_axis``/``min_axis``: the tangent of the first extremal element (``*_axis_jvp``);
  ``prod_axis``, ``cumprod_axis``: exact loops (``*_jvp``); ``prod_axis_jvp`` is differentiated once
  more (``prod_axis_jvp2``, the mixed term), ``cumprod_axis_jvp`` not;
* ``var_axis``: ``2 * sum((x - mean) * dx) / (N - ddof)``; ``std_axis``: that over ``2 * std``.

>>> from fwdjit import npimpl
>>> RULES[npimpl.sum_axis].diff, RULES[npimpl.einsum].nondiff
((0,), {0})
"""
from __future__ import annotations

import ast
import copy

from .. import npimpl
from .core import RULES, Rule, add_terms, zero_rule


def _static(a):
    """An inactive argument: its literal as written (a tuple stays a literal for Numba), else its atom."""
    node = a.node
    if node is not None and all(isinstance(n, (ast.Constant, ast.Tuple, ast.UnaryOp, ast.USub, ast.Load))
                                for n in ast.walk(node)):
        return copy.deepcopy(node)
    return a.p()


def _args(c, replace=None):
    replace = replace or {}
    return [replace[i] if i in replace else _static(a) for i, a in enumerate(c.args)]


def linear_static(pos=0):
    def fn(c):
        if not c.active(pos):
            return None
        return c.same_call(_args(c, {pos: c.args[pos].t}), {})
    return Rule(fn, diff=(pos,))


def multilinear(positions=None):
    def fn(c):
        pos = positions if positions is not None else range(1, len(c.args))
        return add_terms([c.same_call(_args(c, {i: c.args[i].t}), {}) for i in pos if c.active(i)])
    return Rule(fn, nondiff=set() if positions is not None else {0})


def jvp_helper(name):
    """``f(x, static...)``: tangent ``fj.<name>(x, dx, static...)``."""
    def fn(c):
        if not c.active(0):
            return None
        rest = [_static(a) for a in c.args[1:]]
        return c.gen.fj_call(name, [c.args[0].p(), c.args[0].t] + rest)
    return Rule(fn, diff=(0,))


def _prod_axis_jvp(c):
    """``prod_axis_jvp(x, dx, axis, keepdims)``: linear in ``dx``; along ``x``, ``prod_axis_jvp2``."""
    x, dx = c.args[:2]
    rest = [_static(a) for a in c.args[2:]]
    terms = [c.same_call([x.p(), dx.t] + rest, {})] if dx.active else []
    if x.active:
        terms.append(c.gen.fj_call("prod_axis_jvp2", [x.p(), dx.p(), x.t] + rest))
    return add_terms(terms)


def _not_twice(what, nth="second"):
    def fn(c):
        raise c.gen.unsupported(f"the {nth} derivative of {what}",
                                f"write it as a loop so fwdjit can differentiate it {nth == 'second' and 'twice' or 'again'}")
    return Rule(fn)


def _var(root):
    def fn(c):
        x, axis, ddof, keep = c.args
        if x.active is False:
            return None
        if ddof.active:
            raise c.gen.unsupported("a differentiable ddof", "pass ddof as an int")
        centered = c.gen.fj_call("center", [x.p(), _static(axis)])
        s = c.gen.fj_call("sum_axis", [ast.BinOp(centered, ast.Mult(), x.t), _static(axis), _static(keep)])
        scale = c.gen.fj_call("var_scale", [x.p(), _static(axis), _static(ddof), ast.Constant(1.0 if root else 2.0)])
        out = ast.BinOp(s, ast.Mult(), scale)
        return c.gen.fj_call("std_tangent", [out, c.result(), x.p(), _static(axis)]) if root else out
    return Rule(fn, diff=(0,))


def _std_tangent(c):
    """``d(num / std) = (dnum - (num / std) dstd) / std``, itself a ``std_tangent`` (0 for one element)."""
    num, std, x, axis = c.args
    g = num.t if num.active else None
    if std.active:
        q = ast.BinOp(c.result(), ast.Mult(), std.t)
        g = ast.BinOp(g, ast.Sub(), q) if g is not None else ast.UnaryOp(ast.USub(), q)
    if g is None:
        return None
    return c.same_call([g, std.p(), x.p(), _static(axis)], {})


def _gradient(c):
    """Linear in ``x``, and ``gradient(x, h) * s == gradient(x * s, h)``: one call of
    ``gradient(dx - x * dh / h, h, axis)``, which also serves a tuple of results (several axes)."""
    x, h, axis = c.args
    if not (x.active or h.active):
        return None
    arg = x.t if x.active else None
    if h.active:
        scaled = ast.BinOp(x.p(), ast.Mult(), ast.BinOp(h.t, ast.Div(), h.p()))
        arg = ast.BinOp(arg, ast.Sub(), scaled) if arg is not None else ast.UnaryOp(ast.USub(), scaled)
    return c.same_call([arg, h.p(), _static(axis)], {})


for _f in (npimpl.sum_axis, npimpl.mean_axis, npimpl.cumsum_axis, npimpl.squeeze_axis, npimpl.rollaxis,
           npimpl.repeat_axis, npimpl.diff_axis, npimpl.c_item, npimpl.r_item, npimpl.center,
           npimpl.roll_axis):
    RULES[_f] = linear_static(0)
RULES[npimpl.max_axis] = jvp_helper("max_axis_jvp")
RULES[npimpl.min_axis] = jvp_helper("min_axis_jvp")
RULES[npimpl.max_axis_jvp] = linear_static(1)       # piecewise: which element is picked does not move
RULES[npimpl.min_axis_jvp] = linear_static(1)
RULES[npimpl.prod_axis] = jvp_helper("prod_axis_jvp")
RULES[npimpl.prod_axis_jvp] = Rule(_prod_axis_jvp, diff=(0, 1))
RULES[npimpl.prod_axis_jvp2] = _not_twice("np.prod with axis", "third")
RULES[npimpl.cumprod_axis] = jvp_helper("cumprod_axis_jvp")
RULES[npimpl.cumprod_axis_jvp] = _not_twice("np.cumprod with axis")
RULES[npimpl.var_axis] = _var(False)
RULES[npimpl.std_axis] = _var(True)
RULES[npimpl.var_scale] = zero_rule("var_scale")
RULES[npimpl.std_tangent] = Rule(_std_tangent, diff=(0, 1))
RULES[npimpl.r_scalar] = zero_rule("r_scalar")     # a literal number: no tangent
RULES[npimpl.gradient] = Rule(_gradient, nondiff={2})
RULES[npimpl.einsum] = multilinear()
for _f in (npimpl.tensordot, npimpl.matmul, npimpl.inner, npimpl.kron, npimpl.cross):
    RULES[_f] = multilinear((0, 1))
