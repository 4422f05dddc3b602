"""Rules of elementwise functions and operators: ufuncs, ``math`` twins, ``+ - * / ** %``.

Input: a call such as ``np.sin(x)`` or ``a * b`` with its arguments' tangents;
output: the tangent expression, one partial per active argument.

>>> import numpy as np
>>> RULES[np.sin].nondiff, RULES[np.where].nondiff
(set(), {0})
"""
from __future__ import annotations

import ast
import builtins
import math

import numpy as np

from .core import BINOP_RULES, RULES, Rule, add_terms, const_value, linear, num, partials, zero_rule


def _power(c, base=0, exp=1):
    a, b = c.args[base], c.args[exp]
    terms = []
    if a.active:
        bexpr = b.p()
        k = const_value(bexpr)
        if k is not None and not b.active:
            if k == 0:
                pass
            elif k == 1:
                terms.append(a.t)
            elif k == 2:
                terms.append(ast.BinOp(ast.BinOp(num(2), ast.Mult(), a.p()), ast.Mult(), a.t))
            else:
                km1 = k - 1
                terms.append(ast.BinOp(ast.BinOp(num(k), ast.Mult(),
                                                 ast.BinOp(a.p(), ast.Pow(), num(km1))), ast.Mult(), a.t))
        else:
            pw = ast.BinOp(a.p(), ast.Pow(), ast.BinOp(bexpr, ast.Sub(), num(1)))
            deriv = ast.BinOp(b.p(), ast.Mult(), pw)
            if not b.active:
                # a ** b with b == 0 is the constant 1: derivative 0, not 0 * inf at a == 0
                deriv = c.gen.fj_call("select", [ast.Compare(b.p(), [ast.Eq()], [num(0)]), num(0.0), deriv])
            terms.append(ast.BinOp(deriv, ast.Mult(), a.t))
    if b.active:
        terms.append(ast.BinOp(c.gen.fj_call("pow_dexp", [a.p(), c.result()]), ast.Mult(), b.t))
    return add_terms(terms)


def _div(c):
    a, b = c.args
    if a.active and b.active:  # d(a/b) = (da - (a/b) db) / b
        return ast.BinOp(ast.BinOp(a.t, ast.Sub(), ast.BinOp(c.result(), ast.Mult(), b.t)), ast.Div(), b.p())
    if a.active:
        return ast.BinOp(a.t, ast.Div(), b.p())
    return ast.UnaryOp(ast.USub(), ast.BinOp(ast.BinOp(c.result(), ast.Mult(), b.t), ast.Div(), b.p()))


def _mul(c):
    a, b = c.args
    terms = []
    if a.active:
        terms.append(ast.BinOp(a.t, ast.Mult(), b.p()))
    if b.active:
        terms.append(ast.BinOp(a.p(), ast.Mult(), b.t))
    return add_terms(terms)


def bcast_term(c, t, other):
    """``t`` broadcast to the result's shape when the other operand carries no tangent."""
    p = other.p()
    if const_value(p) is not None:
        return t                      # a number never enlarges the result
    return c.gen.fj_call("bcast", [t, p])


def _add(c):
    a, b = c.args
    if a.active and b.active:
        return ast.BinOp(a.t, ast.Add(), b.t)
    if a.active:
        return bcast_term(c, a.t, b)
    return bcast_term(c, b.t, a)


def _sub(c):
    a, b = c.args
    if a.active and b.active:
        return ast.BinOp(a.t, ast.Sub(), b.t)
    if a.active:
        return bcast_term(c, a.t, b)
    return ast.UnaryOp(ast.USub(), bcast_term(c, b.t, a))


def _mod(c):
    a, b = c.args
    terms = []
    if a.active:
        terms.append(a.t if b.active else bcast_term(c, a.t, b))
    if b.active:
        terms.append(ast.UnaryOp(ast.USub(), ast.BinOp(ast.BinOp(a.p(), ast.FloorDiv(), b.p()), ast.Mult(), b.t)))
    return add_terms(terms)


def _select_pair(cond_op):
    """maximum/minimum: tangent of the argument selected (first wins ties)."""
    def fn(c):
        a, b = c.args[0], c.args[1]
        cond = ast.Compare(a.p(), [cond_op()], [b.p()])
        ta = a.t if a.active else num(0.0)
        tb = b.t if b.active else num(0.0)
        return c.gen.fj_call("select", [cond, ta, tb])
    return Rule(fn)


def _clip(c):
    x = c.args[0]
    lo = c.args[1] if len(c.args) > 1 else c.kw.get("a_min")
    hi = c.args[2] if len(c.args) > 2 else c.kw.get("a_max")
    lo, hi = (None if b is None or _is_none(b.p()) else b for b in (lo, hi))     # np.clip(x, None, hi)
    inner = x.t if x.active else num(0.0)
    if lo is not None:
        cond = ast.Compare(x.p(), [ast.Lt()], [lo.p()])
        inner = c.gen.fj_call("select", [cond, lo.t if lo.active else num(0.0), inner])
    if hi is not None:
        cond = ast.Compare(x.p(), [ast.Gt()], [hi.p()])
        inner = c.gen.fj_call("select", [cond, hi.t if hi.active else num(0.0), inner])
    return inner


def _is_none(node):
    return isinstance(node, ast.Constant) and node.value is None


def _where(c):
    if len(c.args) != 3:
        raise c.gen.unsupported("np.where with one argument", "use np.where(cond, a, b)")
    cond, a, b = c.args
    ta = a.t if a.active else num(0.0)
    tb = b.t if b.active else num(0.0)
    return c.gen.fj_call("select", [cond.p(), ta, tb])


def _log_math(c):
    # math.log(x) or math.log(x, base)
    if len(c.args) == 1:
        return c.fill("{g} / {0}", g=c.args[0].t)
    terms = []
    if c.active(0):
        terms.append(c.fill("{g} / ({0} * math.log({1}))", g=c.args[0].t))
    if c.active(1):
        terms.append(c.fill("-{g} * {y} / ({1} * math.log({1}))", g=c.args[1].t))
    return add_terms(terms)


def _unary(np_fn, math_fn, template):
    r = partials(template)
    if np_fn is not None:
        RULES[np_fn] = r
    if math_fn is not None:
        RULES[math_fn] = Rule(lambda c, _t=template: c.fill(_t, g=c.args[0].t))
        RULES[math_fn].fam = "math"


_unary(np.sin, math.sin, "{g} * {m}.cos({0})")
_unary(np.cos, math.cos, "-{g} * {m}.sin({0})")
_unary(np.tan, math.tan, "{g} * (1.0 + {y} * {y})")
_unary(np.arcsin, math.asin, "{g} / {m}.sqrt(1.0 - {0} * {0})")
_unary(np.arccos, math.acos, "-{g} / {m}.sqrt(1.0 - {0} * {0})")
_unary(np.arctan, math.atan, "{g} / (1.0 + {0} * {0})")
_unary(np.sinh, math.sinh, "{g} * {m}.cosh({0})")
_unary(np.cosh, math.cosh, "{g} * {m}.sinh({0})")
_unary(np.tanh, math.tanh, "{g} * (1.0 - {y} * {y})")
_unary(np.arcsinh, math.asinh, "{g} / {m}.sqrt({0} * {0} + 1.0)")
_unary(np.arccosh, math.acosh, "{g} / {m}.sqrt({0} * {0} - 1.0)")
_unary(np.arctanh, math.atanh, "{g} / (1.0 - {0} * {0})")
_unary(np.exp, math.exp, "{g} * {y}")
_unary(np.expm1, math.expm1, "{g} * ({y} + 1.0)")
_unary(np.exp2, None, "{g} * {y} * 0.6931471805599453")
_unary(np.log, None, "{g} / {0}")
_unary(np.log1p, math.log1p, "{g} / (1.0 + {0})")
_unary(np.log2, math.log2, "{g} / ({0} * 0.6931471805599453)")
_unary(np.log10, math.log10, "{g} / ({0} * 2.302585092994046)")
_unary(np.sqrt, math.sqrt, "{g} / (2.0 * {y})")
_unary(np.cbrt, math.cbrt if hasattr(math, "cbrt") else None, "{g} / (3.0 * {y} * {y})")
_unary(np.square, None, "2.0 * {0} * {g}")
_unary(np.reciprocal, None, "-{g} * {y} * {y}")
_unary(np.abs, math.fabs, "{g} * np.sign({0})")
_unary(np.fabs, None, "{g} * np.sign({0})")
_unary(np.deg2rad, math.radians, "{g} * 0.017453292519943295")
_unary(np.rad2deg, math.degrees, "{g} * 57.29577951308232")
_unary(None, math.erf, "{g} * 1.1283791670955126 * math.exp(-{0} * {0})")
_unary(None, math.erfc, "-{g} * 1.1283791670955126 * math.exp(-{0} * {0})")
RULES[np.radians] = RULES[np.deg2rad]
RULES[np.degrees] = RULES[np.rad2deg]
RULES[np.negative] = linear(0)
for _cast in (np.float32, np.float64, np.double, np.single):
    RULES[_cast] = linear(0)
RULES[np.positive] = linear(0)
# complex-number functions of real values (fwdjit differentiates real code): the conjugate and
# np.real_if_close are the value itself, the imaginary part is 0 and the angle 0 or pi (piecewise constant)
RULES[np.conjugate] = linear(0)
RULES[np.real_if_close] = linear(0)
RULES[np.imag] = zero_rule("imag")
RULES[np.angle] = zero_rule("angle")
RULES[builtins.abs] = RULES[np.abs]
RULES[builtins.tuple] = linear(0)      # tuple(t) of a tuple (tuple(np.linalg.svd(a))): the same values
RULES[builtins.float] = Rule(lambda c: ast.Call(ast.Name("float", ast.Load()), [c.args[0].t], []))
RULES[math.log] = Rule(_log_math)
RULES[math.log].fam = "math"

RULES[np.arctan2] = partials("{g} * {1} / ({0} * {0} + {1} * {1})", "-{g} * {0} / ({0} * {0} + {1} * {1})")
RULES[math.atan2] = Rule(RULES[np.arctan2].fn)
RULES[np.hypot] = partials("{g} * {0} / {y}", "{g} * {1} / {y}")
RULES[math.hypot] = Rule(RULES[np.hypot].fn)
RULES[np.power] = Rule(_power)
RULES[math.pow] = Rule(_power)
RULES[builtins.pow] = Rule(_power)
RULES[np.add] = Rule(_add)
RULES[np.subtract] = Rule(_sub)
RULES[np.multiply] = Rule(_mul)
RULES[np.divide] = Rule(_div)
RULES[np.maximum] = _select_pair(ast.GtE)
RULES[np.fmax] = RULES[np.maximum]
RULES[np.minimum] = _select_pair(ast.LtE)
RULES[np.fmin] = RULES[np.minimum]
RULES[np.clip] = Rule(_clip)
RULES[np.where] = Rule(_where, nondiff={0})
RULES[np.remainder] = Rule(_mod)          # np.mod is np.remainder: the rule of ``%``
RULES[np.logaddexp] = partials("{g} * np.exp({0} - {y})", "{g} * np.exp({1} - {y})")
RULES[np.logaddexp2] = partials("{g} * np.exp2({0} - {y})", "{g} * np.exp2({1} - {y})")
# sinc(x) = sin(pi x) / (pi x): derivative (cos(pi x) - sinc(x)) / x, and 0 at x = 0
RULES[np.sinc] = partials("{g} * fj.select({0} == 0.0, 0.0, (np.cos(3.141592653589793 * {0}) - {y}) / {0})")


def _nan_to_num(c):
    """The tangent where the value was kept, 0 where NaN/inf was replaced (by constants)."""
    if any(v.active for v in list(c.args[1:]) + list(c.kw.values())):
        raise c.gen.unsupported("np.nan_to_num with differentiable replacement values",
                                "replace with np.where(np.isnan(x), value, x)")
    x = c.args[0]
    fin = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "isfinite", ast.Load()), [x.p()], [])
    return c.gen.fj_call("select", [fin, x.t, num(0.0)])


RULES[np.nan_to_num] = Rule(_nan_to_num)


#: integer-valued, boolean and comparison ufuncs: results that never carry a tangent
_ZERO_UFUNCS = [np.sign, np.floor, np.ceil, np.trunc, np.rint, np.round, np.around, np.fix,
                np.isnan, np.isinf, np.isfinite, np.signbit, np.greater, np.greater_equal, np.less,
                np.less_equal, np.equal, np.not_equal, np.logical_and, np.logical_or, np.logical_not,
                np.logical_xor, np.floor_divide, np.isclose, np.allclose, int, bool, round,
                math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite]
for _f in _ZERO_UFUNCS:
    RULES[_f] = zero_rule(getattr(_f, "__name__", str(_f)))

BINOP_RULES.update({
    ast.Add: Rule(_add), ast.Sub: Rule(_sub), ast.Mult: Rule(_mul), ast.Div: Rule(_div),
    ast.Pow: Rule(_power), ast.Mod: Rule(_mod), ast.FloorDiv: zero_rule("//"),
})
