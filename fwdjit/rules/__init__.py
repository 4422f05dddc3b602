"""The table of derivative rules, keyed by the real Python object.

A rule receives a :class:`RuleCall` (the call's arguments as values that
carry a primal expression and, when active, a tangent expression) and returns
the tangent expression of the result.  Most rules are written as templates,
one partial per argument in autograd's style::

    np.sin:  partials("{g} * np.cos({0})")

where ``{g}`` is the incoming tangent of that argument, ``{0}``, ``{1}`` the
primal arguments, ``{y}`` the result and ``{m}`` the module family (``np`` or
``math``).  Arguments whose partial is ``None`` are not differentiable.
Inactive arguments contribute nothing: no code is emitted for them.

Conventions at non-differentiable points (documented in README):

* ``abs``/``fabs``: derivative ``sign(x)``, 0 at 0.
* ``maximum(a, b)``/``max``: the first argument wins ties (``a >= b``),
  like ``max`` in Python; ``minimum``/``min``: the first wins when ``a <= b``.
* ``clip(x, lo, hi)``: derivative 1 on the closed interval ``[lo, hi]``.
* ``np.max``/``np.min`` reductions: the tangent of the first maximal element.
* ``where(c, a, b)``: the tangent of the branch taken.
* ``floor, ceil, trunc, rint, round, sign, int()``: zero tangent.
"""
from __future__ import annotations

import ast
import builtins
import copy
import math
import operator
import re

import numpy as np

from . import lowrank

ZERO = "zero"  # rule kind: result never carries a tangent


class Rule:
    """A derivative rule.

    ``fn(call) -> tangent AST``; ``kind == ZERO`` marks results that never
    carry a tangent; ``diff`` lists the argument positions that can make the
    result active (None: all positional and keyword arguments).
    """

    def __init__(self, fn=None, kind=None, nondiff=(), name="", diff=None):
        self.fn = fn
        self.kind = kind
        self.nondiff = set(nondiff)   # positions that never carry tangents
        self.diff = diff
        self.name = name
        self.fam = "np"

    @property
    def zero(self):
        return self.kind == ZERO

    def result_active(self, args_active, kw_active):
        """Whether the result carries a tangent, given which arguments do."""
        if self.zero:
            return False
        if self.diff is not None:
            return any(args_active[i] for i in self.diff if i < len(args_active))
        return any(a for i, a in enumerate(args_active) if i not in self.nondiff) or any(kw_active.values())


_TEMPLATE_CACHE = {}
_MARK = re.compile(r"\{(\d+|g|y|m)\}")


def _parse_template(text, fam):
    key = (text, fam)
    tree = _TEMPLATE_CACHE.get(key)
    if tree is None:
        src = _MARK.sub(lambda m: fam if m.group(1) == "m" else f"__FJ_{m.group(1)}", text)
        tree = ast.parse(src, mode="eval").body
        _TEMPLATE_CACHE[key] = tree
    return copy.deepcopy(tree)


class RuleCall:
    """What a rule sees: arguments (values), keywords, the callee, the result."""

    def __init__(self, gen, func_ast, args, kw, result_fn, fam="np"):
        self.gen = gen
        self.func_ast = func_ast
        self.args = args
        self.kw = kw
        self._result_fn = result_fn
        self.fam = fam

    def result(self):
        return self._result_fn()

    def active(self, i):
        return i < len(self.args) and self.args[i].active

    def fill(self, text, g=None, extra=None):
        """Instantiate a template.  Primal arguments are made atoms first, then the result."""
        tree = _parse_template(text, self.fam)
        marks = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith("__FJ_")}
        values = {}
        for m in sorted(marks):
            key = m[5:]
            if key.isdigit():
                values[m] = self.args[int(key)].p()
        if "__FJ_g" in marks:
            values["__FJ_g"] = g
        if "__FJ_y" in marks:
            values["__FJ_y"] = self.result()
        return _substitute(tree, values)

    def call(self, func_ast, args, keywords=None):
        return ast.Call(copy.deepcopy(func_ast), args, keywords or [])

    def same_call(self, args=None, kw=None):
        """The original callee applied to new arguments (defaults: primal atoms)."""
        args = args if args is not None else [a.p() for a in self.args]
        kw = kw if kw is not None else {k: v.p() for k, v in self.kw.items()}
        return ast.Call(copy.deepcopy(self.func_ast), args,
                        [ast.keyword(arg=k, value=v) for k, v in kw.items()])

    def zero_of(self, i):
        return self.gen.zero_expr(self.args[i].p())


def _substitute(tree, values):
    class Sub(ast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in values:
                return copy.deepcopy(values[node.id])
            return node
    return Sub().visit(tree)


def add_terms(terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.USub):
            out = ast.BinOp(out, ast.Sub(), t.operand)
        else:
            out = ast.BinOp(out, ast.Add(), t)
    return out


def partials(*templates, nondiff=()):
    """Rule from one template per argument (None = not differentiable)."""
    nd = set(nondiff) | {i for i, t in enumerate(templates) if t is None}

    def fn(c):
        terms = []
        for i, tpl in enumerate(templates):
            if tpl is not None and c.active(i):
                terms.append(c.fill(tpl, g=c.args[i].t))
        return add_terms(terms)
    return Rule(fn, nondiff=nd)


def linear(pos=0, nondiff=None):
    """f is linear in argument ``pos``; the other arguments are passed through."""
    def fn(c):
        if not c.active(pos):
            return None
        args = [c.args[pos].t if i == pos else a.p() for i, a in enumerate(c.args)]
        return c.same_call(args)
    return Rule(fn, diff=(pos,))


def bilinear(c):
    """d f(a, b) = f(da, b) + f(a, db) for f bilinear (dot, matmul, outer...)."""
    terms = []
    if c.active(0):
        terms.append(c.same_call([c.args[0].t, c.args[1].p()]))
    if c.active(1):
        terms.append(c.same_call([c.args[0].p(), c.args[1].t]))
    return add_terms(terms)


def zero_rule(name=""):
    return Rule(kind=ZERO, name=name)


# ------------------------------------------------------------ specific rules
def _power(c, base=0, exp=1):
    a, b = c.args[base], c.args[exp]
    terms = []
    if a.active:
        bexpr = b.p()
        k = _const_value(bexpr)
        if k is not None and not b.active:
            if k == 0:
                pass
            elif k == 1:
                terms.append(a.t)
            elif k == 2:
                terms.append(ast.BinOp(ast.BinOp(_num(2), ast.Mult(), a.p()), ast.Mult(), a.t))
            else:
                km1 = k - 1
                terms.append(ast.BinOp(ast.BinOp(_num(k), ast.Mult(),
                                                 ast.BinOp(a.p(), ast.Pow(), _num(km1))), ast.Mult(), a.t))
        else:
            pw = ast.BinOp(a.p(), ast.Pow(), ast.BinOp(bexpr, ast.Sub(), _num(1)))
            terms.append(ast.BinOp(ast.BinOp(b.p(), ast.Mult(), pw), ast.Mult(), a.t))
    if b.active:
        terms.append(ast.BinOp(c.gen.fj_call("pow_dexp", [a.p(), c.result()]), ast.Mult(), b.t))
    return add_terms(terms)


def _num(v):
    if isinstance(v, (int, float)) and v < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-v))
    return ast.Constant(v)


def _const_value(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const_value(node.operand)
        return -v if v is not None else None
    return None


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


def _bcast(c, t, other):
    """``t`` broadcast to the result's shape when the other operand carries no tangent."""
    p = other.p()
    if _const_value(p) is not None:
        return t                      # a number never enlarges the result
    return c.gen.fj_call("bcast", [t, p])


def _add(c):
    a, b = c.args
    if a.active and b.active:
        return ast.BinOp(a.t, ast.Add(), b.t)
    if a.active:
        return _bcast(c, a.t, b)
    return _bcast(c, b.t, a)


def _sub(c):
    a, b = c.args
    if a.active and b.active:
        return ast.BinOp(a.t, ast.Sub(), b.t)
    if a.active:
        return _bcast(c, a.t, b)
    return ast.UnaryOp(ast.USub(), _bcast(c, b.t, a))


def _mod(c):
    a, b = c.args
    terms = []
    if a.active:
        terms.append(a.t if b.active else _bcast(c, a.t, b))
    if b.active:
        terms.append(ast.UnaryOp(ast.USub(), ast.BinOp(ast.BinOp(a.p(), ast.FloorDiv(), b.p()), ast.Mult(), b.t)))
    return add_terms(terms)


def _select_pair(cond_op):
    """maximum/minimum: tangent of the argument selected (first wins ties)."""
    def fn(c):
        a, b = c.args[0], c.args[1]
        cond = ast.Compare(a.p(), [cond_op()], [b.p()])
        ta = a.t if a.active else _num(0.0)
        tb = b.t if b.active else _num(0.0)
        return c.gen.fj_call("select", [cond, ta, tb])
    return Rule(fn)


def _builtin_minmax(cond_op):
    def fn(c):
        if len(c.args) == 1:
            return _reduce_pick("argmax" if isinstance(cond_op(), ast.GtE) else "argmin")(c)
        # fold left: Python's max returns the first maximal argument
        acc_p, acc_t = c.args[0].p(), c.args[0].t if c.args[0].active else _num(0.0)
        for v in c.args[1:]:
            cond = ast.Compare(acc_p, [cond_op()], [v.p()])
            tv = v.t if v.active else _num(0.0)
            acc_t = c.gen.fj_call("select", [cond, acc_t, tv])
            acc_p = ast.Call(ast.Name("max" if isinstance(cond_op(), ast.GtE) else "min", ast.Load()),
                             [acc_p, v.p()], [])
        return acc_t
    return Rule(fn)


def _reduce_pick(argfn):
    def fn(c):
        if c.kw or len(c.args) > 1:
            raise c.gen.unsupported(f"the axis argument of a max/min reduction",
                                    "reduce over the whole array, or loop over the axis")
        x = c.args[0]
        idx = c.gen.fj_call(argfn, [x.p()])      # fj.argmax: also for a scalar x (NumPy gives 0)
        return c.gen.fj_call("pick_flat", [x.t, idx])
    return fn


def _method_pick(argfn):
    def fn(c):
        recv = c.args[0]
        if len(c.args) > 1 or c.kw:
            raise c.gen.unsupported(f"the axis argument of .max()/.min()", "reduce over the whole array")
        idx = c.gen.fj_call(argfn, [recv.p()])
        return c.gen.fj_call("pick_flat", [recv.t, idx])
    return Rule(fn)


def _clip(c):
    x = c.args[0]
    lo = c.args[1] if len(c.args) > 1 else c.kw.get("a_min")
    hi = c.args[2] if len(c.args) > 2 else c.kw.get("a_max")
    inner = x.t if x.active else _num(0.0)
    if lo is not None:
        cond = ast.Compare(x.p(), [ast.Lt()], [lo.p()])
        inner = c.gen.fj_call("select", [cond, lo.t if lo.active else _num(0.0), inner])
    if hi is not None:
        cond = ast.Compare(x.p(), [ast.Gt()], [hi.p()])
        inner = c.gen.fj_call("select", [cond, hi.t if hi.active else _num(0.0), inner])
    return inner


def _where(c):
    if len(c.args) != 3:
        raise c.gen.unsupported("np.where with one argument", "use np.where(cond, a, b)")
    cond, a, b = c.args
    ta = a.t if a.active else _num(0.0)
    tb = b.t if b.active else _num(0.0)
    return c.gen.fj_call("select", [cond.p(), ta, tb])


def _prod(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("the axis argument of prod", "reduce over the whole array, or loop")
    return c.gen.fj_call("prod_jvp", [c.args[0].p(), c.args[0].t])


def _seq_linear(c):
    """concatenate/stack/array((a, b, ...)): linear in every element of the tuple argument."""
    seq = c.args[0]
    if not isinstance(seq.node, ast.Tuple):
        if seq.active:
            return c.same_call([seq.t] + [a.p() for a in c.args[1:]])
        return None
    elts = []
    for v in seq.items:
        elts.append(v.t if v.active else c.gen.zero_expr(v.p()))
    return c.same_call([ast.Tuple(elts, ast.Load())] + [a.p() for a in c.args[1:]])


def _full(c):
    # np.full(shape, value): linear in value
    if not c.active(1):
        return None
    return c.same_call([c.args[0].p(), c.args[1].t] + [a.p() for a in c.args[2:]])


def _linspace(c):
    a, b = c.args[0], c.args[1]
    rest = [x.p() for x in c.args[2:]]
    ta = a.t if a.active else _num(0.0)
    tb = b.t if b.active else _num(0.0)
    return c.same_call([ta, tb] + rest)


def _sort(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("np.sort with axis or kind arguments", "sort a 1-D array")
    x = c.args[0]
    order = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "argsort", ast.Load()), [x.p()], [])
    return ast.Subscript(x.t, order, ast.Load())


def _norm(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("np.linalg.norm with ord/axis", "write the norm with np.sqrt(np.sum(x * x))")
    x = c.args[0]
    return ast.BinOp(ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "vdot", ast.Load()),
                              [ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "ravel", ast.Load()), [x.p()], []),
                               ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "ravel", ast.Load()), [x.t], [])], []),
                     ast.Div(), c.result())


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


def _matmul_op(c):
    """``a @ b``: da @ b + a @ db (a low-rank tangent kept as its factors)."""
    a, b = c.args
    return add_terms(lowrank.product_terms(a, b, lambda x, y: ast.BinOp(x, ast.MatMult(), y)))


def _matrix_product(c):
    """``np.dot(a, b)``, ``np.matmul(a, b)``, ``a.dot(b)``: bilinear, a low-rank tangent kept factored."""
    if len(c.args) != 2 or c.kw:
        return bilinear(c)
    return add_terms(lowrank.product_terms(c.args[0], c.args[1], lambda x, y: c.same_call([x, y], {})))


def _method_dot(c):
    return _matrix_product(c)


# ----------------------------------------------------------------- table ---
RULES: dict = {}
BINOP_RULES: dict = {}
METHOD_RULES: dict = {}


def _reg(objs, rule):
    for o in objs if isinstance(objs, (list, tuple)) else [objs]:
        RULES[o] = rule


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
RULES[builtins.abs] = RULES[np.abs]
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
RULES[builtins.max] = _builtin_minmax(ast.GtE)
RULES[builtins.min] = _builtin_minmax(ast.LtE)
RULES[np.clip] = Rule(_clip)
RULES[np.where] = Rule(_where, nondiff={0})

for _f in (np.sum, np.mean, np.cumsum, np.trace, np.transpose, np.reshape, np.ravel, np.copy,
           np.squeeze, np.expand_dims, np.diff, np.flip, np.fliplr, np.flipud, np.diag, np.asarray,
           np.ascontiguousarray, np.real, np.atleast_1d, np.atleast_2d, np.broadcast_to, np.repeat, np.tile):
    RULES[_f] = linear(0)
for _f in (np.vdot, np.outer, np.inner, np.kron, np.cross):
    RULES[_f] = Rule(bilinear)
for _f in (np.dot, np.matmul):
    RULES[_f] = Rule(_matrix_product)
RULES[np.prod] = Rule(_prod)
RULES[np.max] = Rule(_reduce_pick("argmax"))
RULES[np.amax] = RULES[np.max]
RULES[np.min] = Rule(_reduce_pick("argmin"))
RULES[np.amin] = RULES[np.min]
RULES[np.sort] = Rule(_sort)
RULES[np.concatenate] = Rule(_seq_linear)
RULES[np.stack] = Rule(_seq_linear)
RULES[np.hstack] = Rule(_seq_linear)
RULES[np.vstack] = Rule(_seq_linear)
RULES[np.array] = Rule(_seq_linear)
RULES[np.full] = Rule(_full, nondiff={0})
RULES[np.full_like] = Rule(_full, nondiff={0})
RULES[np.linspace] = Rule(_linspace, nondiff={2})
RULES[np.linalg.norm] = Rule(_norm)

_ZERO_FUNCS = [np.sign, np.floor, np.ceil, np.trunc, np.rint, np.round, np.around, np.fix,
               np.argmax, np.argmin, np.argsort, np.isnan, np.isinf, np.isfinite, np.signbit,
               np.zeros, np.ones, np.empty, np.eye, np.identity, np.arange, np.zeros_like,
               np.ones_like, np.empty_like, np.greater, np.greater_equal, np.less, np.less_equal,
               np.equal, np.not_equal, np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
               np.searchsorted, np.count_nonzero, np.nonzero, np.any, np.all, np.shape, np.size, np.ndim,
               np.floor_divide, np.isclose, np.allclose, np.tri, np.tril_indices, np.triu_indices,
               len, range, int, bool, round, print,
               math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite,
               np.random.rand, np.random.randn, np.random.random, np.random.normal, np.random.uniform,
               np.random.standard_normal, np.random.seed, np.random.randint]
for _f in _ZERO_FUNCS:
    RULES[_f] = zero_rule(getattr(_f, "__name__", str(_f)))

BINOP_RULES.update({
    ast.Add: Rule(_add), ast.Sub: Rule(_sub), ast.Mult: Rule(_mul), ast.Div: Rule(_div),
    ast.Pow: Rule(_power), ast.Mod: Rule(_mod), ast.FloorDiv: zero_rule("//"),
    ast.MatMult: Rule(_matmul_op),
})

for _m in ("sum", "mean", "cumsum", "copy", "reshape", "ravel", "flatten", "transpose", "squeeze",
           "astype", "trace", "diagonal", "swapaxes", "view", "repeat"):
    METHOD_RULES[_m] = linear(0)
METHOD_RULES["dot"] = Rule(_method_dot)
METHOD_RULES["max"] = _method_pick("argmax")
METHOD_RULES["min"] = _method_pick("argmin")
METHOD_RULES["prod"] = Rule(lambda c: c.gen.fj_call("prod_jvp", [c.args[0].p(), c.args[0].t]))
for _m in ("argmax", "argmin", "argsort", "nonzero", "all", "any"):
    METHOD_RULES[_m] = zero_rule(_m)

#: attributes of arrays: linear ones carry the tangent, the rest never do
LINEAR_ATTRS = {"T", "real"}
ZERO_ATTRS = {"shape", "size", "ndim", "dtype", "strides", "itemsize", "nbytes", "imag"}

# ------------------------------------------- runtime helpers (second order) ---
# Generated tangent code calls these; rules for them let fwdjit differentiate
# its own output (forward over forward).
def _register_runtime_rules():
    from .. import runtime as rt

    def _select_rt(c):
        cond, a, b = c.args
        ta = a.t if a.active else _num(0.0)
        tb = b.t if b.active else _num(0.0)
        return c.gen.fj_call("select", [cond.p(), ta, tb])

    def _pow_dexp_rt(c):
        base, res = c.args
        terms = []
        if base.active:
            terms.append(c.fill("{g} * {1} / {0}", g=base.t))
        if res.active:
            terms.append(c.fill("{g} * fj.select({1} == 0, 0.0, np.log({0}))", g=res.t))
        return add_terms(terms)

    RULES[rt.bcast] = linear(0)
    RULES[rt.fresh] = linear(0)

    def _prod_jvp_rt(c):
        raise c.gen.unsupported("the second derivative of np.prod",
                                "write the product as a loop so fwdjit can differentiate it twice")

    RULES[rt.zero] = zero_rule("zero")
    RULES[rt.lit] = linear(0)          # a cast of its first argument (constant when that is a literal)
    RULES[rt.lit_args] = zero_rule("lit_args")
    RULES[rt.select] = Rule(_select_rt, nondiff={0})
    RULES[rt.pow_dexp] = Rule(_pow_dexp_rt)
    RULES[rt.pick_flat] = linear(0)
    RULES[rt.argmax] = zero_rule("argmax")
    RULES[rt.argmin] = zero_rule("argmin")
    RULES[rt.like] = linear(0)
    RULES[rt.prod_jvp] = Rule(_prod_jvp_rt)


_register_runtime_rules()

# ---------------------------------------------------------- user rules -----
USER_RULES: dict = {}


def is_zero_rule(obj):
    r = RULES.get(obj) if _hashable(obj) else None
    return r is not None and r.zero


def _hashable(obj):
    try:
        hash(obj)
        return True
    except TypeError:
        return False


def lookup(obj):
    """The rule for a callee object, or None."""
    if not _hashable(obj):
        return None
    r = USER_RULES.get(obj)
    if r is not None:
        return r
    return RULES.get(obj)


_ = operator  # keep import (operator-module functions could be added here)
