"""What every rule is built from: :class:`Rule`, :class:`RuleCall`, templates, the tables.

Input: a template such as ``"{g} * np.cos({0})"`` or a rule function; output: a
:class:`Rule` that turns a :class:`RuleCall` into the tangent AST of the result.

>>> import ast
>>> add = add_terms([ast.Name("da"), ast.UnaryOp(ast.USub(), ast.Name("db"))])
>>> ast.unparse(add)
'da - db'
"""
from __future__ import annotations

import ast
import copy
import re

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


def num(v):
    if isinstance(v, (int, float)) and v < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-v))
    return ast.Constant(v)


def const_value(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = const_value(node.operand)
        return -v if v is not None else None
    return None


#: the tables: callee object -> rule, AST operator class -> rule, method name -> rule
RULES: dict = {}
BINOP_RULES: dict = {}
METHOD_RULES: dict = {}

