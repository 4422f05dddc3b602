"""The tangent pass, expressions: each expression node to a :class:`Val` (its primal, built on
demand, and its tangent), from the rules table.

:class:`ExpressionTangents` is the half of :class:`fwdjit.compiler.tangent.TangentGen` that
visits expressions (``ex_Name``, ``ex_BinOp``, ``ex_Call``...); the statements are in
:mod:`fwdjit.compiler.tangent_stmt`.  A primal subexpression is computed into a temporary
only when a rule reads it twice and it is not cheap to recompute:

>>> import ast
>>> is_atom(ast.parse("x[i, 1:]", mode="eval").body), is_cheap(ast.parse("x[1:] - x[:-1] ** 2", mode="eval").body)
(True, True)
>>> is_cheap(ast.parse("np.exp(x)", mode="eval").body)
False
"""
from __future__ import annotations

import ast
import copy

import numpy as np

from .. import rules as R
from ..errors import UnsupportedCall, UnsupportedSyntax
from ..rules import lowrank as LR
from .activity import Activity
from .primal import PrimalRewriter, blas_safe_args


def is_atom(node):
    """Cheap to evaluate twice: names, numbers, views and element reads of names."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, ast.Attribute):
        return is_atom(node.value)
    if isinstance(node, ast.Subscript):
        return is_atom(node.value) and _simple_index(node.slice)
    return False


_CHEAP_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def is_cheap(node, budget=4):
    """Cheap elementwise arithmetic over atoms: recomputing it beats storing it.

    Numba fuses elementwise array expressions into one loop, so an expression
    like ``x[1:] - x[:-1] ** 2`` used by both the primal and the tangent costs
    less recomputed in each fused loop than written to a temporary array; for
    scalars LLVM removes the duplicate.  Transcendental functions, matrix
    products and reductions are always computed once.
    """
    count = sum(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) for n in ast.walk(node)
                if not (isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant)))
    if count > budget:
        return False
    return _cheap(node)


def _cheap(node):
    if is_atom(node):
        return True
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, _CHEAP_OPS):
            return _cheap(node.left) and _cheap(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value in (2, 3):
            return _cheap(node.left)
        return False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _cheap(node.operand)
    return False


def _simple_index(node):
    if isinstance(node, ast.Tuple):
        return all(_simple_index(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return all(c is None or _simple_index(c) for c in (node.lower, node.upper, node.step))
    return isinstance(node, (ast.Name, ast.Constant)) or (
        isinstance(node, (ast.BinOp, ast.UnaryOp)) and all(_simple_index(c) for c in ast.iter_child_nodes(node)
                                                         if isinstance(c, ast.expr)))


def names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class Val:
    """An expression's primal (built on demand) and tangent (AST or None)."""

    def __init__(self, gen, build, t=None, node=None, items=None):
        self.gen = gen
        self._build = build
        self.name = None
        self.t = t
        self.node = node
        self.items = items
        self.lowrank = None          # (A, B): the tangent is A @ B.T, kept factored (fwdjit.rules.lowrank)

    @property
    def active(self):
        return self.t is not None

    @property
    def expr(self):
        if self.name is not None:
            return ast.Name(self.name, ast.Load())
        return self._build()

    def p(self):
        """The primal as an atom, computing it into a temporary once if needed."""
        if self.name is not None:
            return ast.Name(self.name, ast.Load())
        e = self._build()
        if is_atom(e) or is_cheap(e):
            return e
        self.name = self.gen.fresh("_t")
        self.gen.emit(ast.Assign([ast.Name(self.name, ast.Store())], e))
        return ast.Name(self.name, ast.Load())


class ExpressionTangents:
    """Expressions to :class:`Val` (see the module docstring); mixed into ``TangentGen``, whose
    ``info``, ``tree``, ``active``, ``resolver``, ``emit``, ``tname`` and ``fresh`` it uses."""

    def is_active(self, node):
        act = Activity(self.info, self.tree, self.active, self.resolver)
        return act.expr_active(node)

    def primal(self, node):
        """An inactive expression, copied, with calls to user functions bound to compiled ones."""
        return PrimalRewriter(self).visit(copy.deepcopy(node))

    def expr(self, node, target=None):
        if not self.is_active(node):
            return Val(self, lambda: self.primal(node), node=node)
        meth = getattr(self, "ex_" + type(node).__name__, None)
        if meth is None:
            raise self.info.error(UnsupportedSyntax, node,
                                  f"{type(node).__name__} on differentiable values is not supported",
                                  construct=type(node).__name__)
        return meth(node, target)

    def _result_fn(self, val, node, target):
        def result():
            if (target is not None and isinstance(target, ast.Name) and val.name is None
                    and target.id not in names_in(node)):
                self.emit(ast.Assign([ast.Name(target.id, ast.Store())], val.expr))
                val.name = target.id
                self._target_done = True
                return ast.Name(target.id, ast.Load())
            return val.p()
        return result

    def ex_Name(self, node, target):
        val = Val(self, lambda: ast.Name(node.id, ast.Load()), t=ast.Name(self.tname(node.id), ast.Load()), node=node)
        f = self._factors.get(node.id)
        if f is not None and f[2]:
            val.lowrank = (ast.Name(f[0], ast.Load()), ast.Name(f[1], ast.Load()))
        return val

    def ex_BinOp(self, node, target):
        l, r = self.expr(node.left), self.expr(node.right)
        op = node.op
        if isinstance(op, ast.MatMult) and self.stack_products and l.active and l.lowrank is None:
            return self._stacked_matmul(l, r, node)
        val = Val(self, lambda: ast.BinOp(l.expr, copy.deepcopy(op), r.expr), node=node)
        rc = R.RuleCall(self, None, [l, r], {}, self._result_fn(val, node, target))
        val.t = R.BINOP_RULES[type(op)].fn(rc)
        return val

    def _stacked_matmul(self, l, r, node):
        """``l @ r`` and its term ``dl @ r`` as one product of stacked rows (``fj.matmul_stacked``)."""
        left, right = l.p(), r.p()
        out = self.fresh("_mm")
        dout = self.tname(out)
        self.emit(ast.Assign([ast.Tuple([ast.Name(out, ast.Store()), ast.Name(dout, ast.Store())], ast.Store())],
                             self.fj_call("matmul_stacked", [left, l.t, right])))
        terms = [ast.Name(dout, ast.Load())]
        if r.active:        # the other term, l @ dr (factored when dr is low-rank)
            terms.append(LR.right_term(copy.deepcopy(left), r, lambda x, y: ast.BinOp(x, ast.MatMult(), y)))
        val = Val(self, lambda: ast.Name(out, ast.Load()), t=R.add_terms(terms), node=node)
        val.name = out
        return val

    def ex_UnaryOp(self, node, target):
        o = self.expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return o
        val = Val(self, lambda: ast.UnaryOp(ast.USub(), o.expr), t=ast.UnaryOp(ast.USub(), o.t), node=node)
        if o.lowrank is not None:
            val.lowrank = LR.negated(o)
        return val

    def ex_Subscript(self, node, target):
        v = self.expr(node.value)
        idx = node.slice
        return Val(self, lambda: ast.Subscript(v.expr, self.primal(idx), ast.Load()),
                   t=ast.Subscript(v.t, self.primal(idx), ast.Load()), node=node)

    def ex_Attribute(self, node, target):
        if node.attr not in R.LINEAR_ATTRS:
            raise self.info.error(UnsupportedSyntax, node, f"attribute .{node.attr} of a differentiable value",
                                  hint="supported: .T, .real, .shape, .size, .ndim, .dtype",
                                  construct=f".{node.attr}")
        v = self.expr(node.value)
        val = Val(self, lambda: ast.Attribute(v.expr, node.attr, ast.Load()),
                  t=ast.Attribute(v.t, node.attr, ast.Load()), node=node)
        if node.attr == "T" and v.lowrank is not None:
            val.lowrank = LR.transposed(v)
        return val

    def ex_Tuple(self, node, target):
        items = [self.expr(e) for e in node.elts]
        t = ast.Tuple([i.t if i.active else self.zero_expr(i.p()) for i in items], ast.Load())
        return Val(self, lambda: ast.Tuple([i.expr for i in items], ast.Load()), t=t, node=node, items=items)

    def ex_IfExp(self, node, target):
        tmp = self.fresh("_t")
        dtmp = self.tname(tmp)
        branches = []
        for branch in (node.body, node.orelse):
            buf = []
            saved = self.out
            self.out = buf
            v = self.expr(branch)
            self.emit(ast.Assign([ast.Name(tmp, ast.Store())], v.expr))
            self.emit(ast.Assign([ast.Name(dtmp, ast.Store())], v.t if v.active else self.zero_expr(ast.Name(tmp, ast.Load()))))
            self.out = saved
            branches.append(buf)
        self.emit(ast.If(self.primal(node.test), branches[0], branches[1]))
        val = Val(self, lambda: ast.Name(tmp, ast.Load()), t=ast.Name(dtmp, ast.Load()), node=node)
        val.name = tmp
        return val

    def ex_BoolOp(self, node, target):
        raise self.info.error(UnsupportedSyntax, node, "'and'/'or' used as a value of differentiable operands",
                              hint="use a conditional expression: a if cond else b", construct="and/or value")

    def ex_Call(self, node, target):
        kind, obj, rule = self.resolver.classify(node)
        if kind == "method":
            return self._method_call(node, obj, rule, target)
        if kind == "rule":
            if isinstance(obj, np.ufunc) and (len(node.args) > obj.nin or any(k.arg == "out" for k in node.keywords)):
                name = f"np.{obj.__name__}"
                raise self.info.error(
                    UnsupportedCall, node, f"{name} with an output argument (writing the result into an array) "
                    f"is not supported on differentiable values",
                    hint=f"assign the result instead: y = {name}(...), or y[...] = {name}(...)",
                    construct=f"{name}(..., out)")
            args = [self.expr(a) for a in node.args]
            kw = {k.arg: self.expr(k.value) for k in node.keywords}
            func = self.primal(node.func)
            if getattr(rule, "compiled", None) is not None and rule.compiled is not obj:
                func = ast.Name(self.bind(rule.compiled, f"{getattr(obj, '__name__', 'f')}_"), ast.Load())
            val = Val(self, lambda: ast.Call(copy.deepcopy(func), blas_safe_args(obj, [a.expr for a in args], kw),
                                             [ast.keyword(k, v.expr) for k, v in kw.items()]), node=node)
            rc = R.RuleCall(self, func, args, kw, self._result_fn(val, node, target), fam=rule.fam)
            val.t = rule.fn(rc)
            return val
        if kind == "user":
            return self._user_call(node, obj)
        name = getattr(obj, "__name__", repr(obj))
        hint = f"register a rule with fwdjit.defjvp({name}, ...), or write it in Python so fwdjit can transform it"
        if (getattr(obj, "__module__", None) or "").startswith("numpy.fft"):
            # a rule would not help: Numba cannot compile np.fft, and its results are complex
            hint = (f"np.fft.{name} is not supported (Numba cannot compile np.fft, and fwdjit differentiates "
                    f"real code only): compute the transform outside the differentiated function")
        raise self.info.error(
            UnsupportedCall, node, f"no derivative rule for {name}(), called here with differentiable arguments",
            hint=hint, construct=f"call to {name}")

    def _method_call(self, node, attr, rule, target):
        if rule is None:
            raise self.info.error(UnsupportedCall, node, f"no derivative rule for the array method .{attr}()",
                                  hint="use the NumPy function form or a supported method "
                                       f"({', '.join(sorted(R.METHOD_RULES))})", construct=f".{attr}()")
        recv = self.expr(node.func.value)
        args = [recv] + [self.expr(a) for a in node.args]
        kw = {k.arg: self.expr(k.value) for k in node.keywords}
        val = Val(self, lambda: ast.Call(ast.Attribute(recv.expr, attr, ast.Load()), [a.expr for a in args[1:]],
                                         [ast.keyword(k, v.expr) for k, v in kw.items()]), node=node)
        rc = _MethodCall(self, attr, args, kw, self._result_fn(val, node, target))
        val.t = rule.fn(rc)
        return val

    def _user_call(self, node, callee):
        if node.keywords:
            raise self.info.error(UnsupportedSyntax, node, "keyword arguments in calls to user functions",
                                  hint="pass the arguments by position", construct="keyword arguments")
        args = [self.expr(a) for a in node.args]
        mask = tuple(a.active for a in args)
        eff = callee.effective_mask(mask)
        # eff can exceed mask only for arguments that are not variables (a literal, an expression):
        # the callee writes into a temporary the caller never sees, so a zero tangent is right
        tangents = []
        for a, m in zip(args, eff):
            if m:
                tangents.append(a.t if a.active else self.zero_expr(a.p()))
        mask = eff
        jvp = callee.tangent_function(mask, _internal=True)
        fname = self.bind(jvp, f"{callee.name}_jvp_")
        out, dout = self.fresh(f"_{callee.name}"), None
        dout = self.tname(out)
        call = ast.Call(ast.Name(fname, ast.Load()), [a.p() for a in args] + tangents, [])
        self.emit(ast.Assign([ast.Tuple([ast.Name(out, ast.Store()), ast.Name(dout, ast.Store())], ast.Store())], call))
        val = Val(self, lambda: ast.Name(out, ast.Load()), t=ast.Name(dout, ast.Load()), node=node)
        val.name = out
        return val


class _MethodCall(R.RuleCall):
    """RuleCall for ``recv.method(args)``: args[0] is the receiver."""

    def __init__(self, gen, attr, args, kw, result_fn):
        super().__init__(gen, None, args, kw, result_fn)
        self.attr = attr

    def same_call(self, args=None, kw=None):
        args = args if args is not None else [a.p() for a in self.args]
        kw = kw if kw is not None else {k: v.p() for k, v in self.kw.items()}
        return ast.Call(ast.Attribute(args[0], self.attr, ast.Load()), args[1:],
                        [ast.keyword(arg=k, value=v) for k, v in kw.items()])
