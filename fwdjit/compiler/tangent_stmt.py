"""The tangent pass, statements: each statement of the normalized function to its primal and
tangent statements (assignments, augmented assignments with their aliasing rules, control flow).

:class:`StatementTangents` is the half of :class:`fwdjit.compiler.tangent.TangentGen` that
visits statements (``st_Assign``, ``st_AugAssign``, ``st_For``...); expressions are in
:mod:`fwdjit.compiler.tangent_expr`.  A tangent that may share memory with another array
is copied before an in-place update reads it:

>>> import ast
>>> is_alias_expr(ast.parse("dx[::-1]", mode="eval").body), is_alias_expr(ast.parse("dx * 2.0", mode="eval").body)
(True, False)
"""
from __future__ import annotations

import ast
import copy

from ..errors import UnsupportedSyntax
from .activity import root_name, view_base
from .primal import buffered_rhs
from .tangent_expr import names_in


def is_alias_expr(node):
    """An expression that may share memory with an existing array (a name, a view, a bcast no-op)."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, (ast.Subscript, ast.Attribute)):
        return is_alias_expr(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "bcast" and node.args:
            return is_alias_expr(node.args[0])
        base = view_base(node)                  # x.reshape(...), np.flip(x)
        if base is not None:
            return is_alias_expr(base)
    return False


class StatementTangents:
    """Statements to primal and tangent statements (see the module docstring); mixed into
    ``TangentGen``, whose ``expr``, ``primal``, ``block``, ``emit`` and ``tname`` it uses."""

    def st_Pass(self, s):
        self.emit(ast.Pass())

    def st_Break(self, s):
        self.emit(ast.Break())

    def st_Continue(self, s):
        self.emit(ast.Continue())

    def st_Assert(self, s):
        self.emit(self.primal(s))

    def st_Expr(self, s):
        if self.is_active(s.value):
            kind = self.resolver.classify(s.value)[0] if isinstance(s.value, ast.Call) else None
            v = self.expr(s.value)
            if kind != "user":
                self.emit(ast.Expr(v.expr))
        else:
            self.emit(ast.Expr(self.primal(s.value)))

    def st_Assign(self, s):
        target = s.targets[0]
        if isinstance(target, ast.Name):
            return self._assign_name(target, s.value)
        if isinstance(target, ast.Tuple):
            return self._assign_tuple(target, s.value)
        return self._assign_subscript(target, s.value)

    def _assign_name(self, target, value):
        name = target.id
        if name not in self.active:
            self.emit(ast.Assign([ast.Name(name, ast.Store())], self.primal(value)))
            return
        self._target_done = False
        v = self.expr(value, target=target)
        dname = ast.Name(self.tname(name), ast.Store())
        if not v.active:
            p = v.expr
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
            self.emit(ast.Assign([dname], self.zero_expr(p if isinstance(p, ast.Constant) else ast.Name(name, ast.Load()))))
            return
        if name in self.mutated and is_alias_expr(v.t) and not is_alias_expr(v.expr):
            # a new primal array whose tangent would share memory with another tangent:
            # copy it, since the array is written in place later
            v.t = self.fj_call("fresh", [v.t])
        if self._target_done:
            self.emit(ast.Assign([dname], v.t))
            return
        p = v.expr
        if name in names_in(v.t):     # the tangent reads the old value: compute it first
            self.emit(ast.Assign([dname], v.t))
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
        else:
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
            self.emit(ast.Assign([dname], v.t))

    def _tangent_target(self, t):
        """``a[i]`` -> ``da[i]`` (index copied), for a target whose root is active."""
        t = copy.deepcopy(t)
        node = t
        while isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name):
                node.value = ast.Name(self.tname(node.value.id), ast.Load())
                break
            node = node.value
        return t

    def _assign_subscript(self, target, value):
        root = root_name(target)
        if root not in self.active:
            self.emit(ast.Assign([self.primal(target)], self.primal(value)))
            return
        v = self.expr(value)
        t = v.t if v.active else ast.Constant(0.0)
        self.emit(ast.Assign([self._tangent_target(target)], t))
        self.emit(ast.Assign([self.primal(target)], v.expr))

    def _assign_tuple(self, target, value):
        v = self.expr(value)
        names = []
        for e in target.elts:
            if not isinstance(e, ast.Name):
                raise self.info.error(UnsupportedSyntax, e, "unpacking into array elements",
                                      hint="unpack into names, then assign the elements", construct="tuple target")
            names.append(e.id)
        if any(n in self.active for n in names) and v.active:
            dt = ast.Tuple([ast.Name(self.tname(n) if n in self.active else self.fresh("_unused"), ast.Store())
                            for n in names], ast.Store())
            p = v.expr
            tv = v.t
            first = any(n in names_in(tv) for n in names)
            stmts = [ast.Assign([copy.deepcopy(target)], p), ast.Assign([dt], tv)]
            for st in (stmts[::-1] if first else stmts):
                self.emit(st)
            return
        self.emit(ast.Assign([copy.deepcopy(target)], v.expr))
        for n in names:
            if n in self.active:
                self.emit(ast.Assign([ast.Name(self.tname(n), ast.Store())],
                                     self.fj_call("zero", [ast.Name(n, ast.Load())])))

    def st_AugAssign(self, s):
        target = s.target
        root = target.id if isinstance(target, ast.Name) else root_name(target)
        if root not in self.active:
            self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(s.op),
                                    buffered_rhs(target, self.primal(s.value), self.aliases)))
            return
        v = self.expr(s.value)
        if isinstance(target, ast.Name):
            dt = ast.Name(self.tname(root), ast.Store())
            tload = ast.Name(target.id, ast.Load())
        else:
            dt = self._tangent_target(target)
            tload = self.primal(target)
            tload.ctx = ast.Load()
        op = s.op
        if isinstance(op, (ast.Add, ast.Sub)):
            if v.active:
                t = v.t
                if is_alias_expr(t):        # dx += dx[::-1]: read through a copy, not an overlapping view
                    t = self.fj_call("fresh", [t])
                self.emit(ast.AugAssign(dt, copy.deepcopy(op), t))
            self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(op),
                                    buffered_rhs(target, v.expr, self.aliases)))
            return
        b = v.p()
        if v.active:
            # the tangent of e may read dx (or an alias of it): evaluate it before dx changes in place
            de = self.tname(self.fresh("_e"))     # a tangent name: vector mode gives each direction its own
            t = v.t
            if is_alias_expr(t):
                t = self.fj_call("fresh", [t])
            self.emit(ast.Assign([ast.Name(de, ast.Store())], t))
            v.t = ast.Name(de, ast.Load())
        if isinstance(op, ast.Mult):
            self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Mult(), copy.deepcopy(b)))
            if v.active:
                self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Add(), ast.BinOp(tload, ast.Mult(), v.t)))
        elif isinstance(op, ast.Div):
            if v.active:
                self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Sub(),
                                        ast.BinOp(ast.BinOp(tload, ast.Div(), copy.deepcopy(b)), ast.Mult(), v.t)))
            self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Div(), copy.deepcopy(b)))
        self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(op), buffered_rhs(target, b, self.aliases)))

    def st_Return(self, s):
        if s.value is None:
            self.emit(ast.Return(ast.Tuple([ast.Constant(None), ast.Constant(None)], ast.Load())))
            return
        v = self.expr(s.value)
        t = v.t if v.active else self.zero_expr(v.p())
        self.emit(ast.Return(ast.Tuple([v.expr, t], ast.Load())))

    def st_If(self, s):
        self.emit(ast.If(self.primal(s.test), self.block(s.body), self.block(s.orelse) if s.orelse else []))

    def st_While(self, s):
        self.emit(ast.While(self.primal(s.test), self.block(s.body), []))

    def st_For(self, s):
        if self.is_active(s.iter) or (isinstance(s.target, ast.Name) and s.target.id in self.active):
            raise self.info.error(UnsupportedSyntax, s, "for loop whose loop variable carries a derivative",
                                  hint="loop over range(len(a)) and index the array", construct="for over values")
        self.emit(ast.For(copy.deepcopy(s.target), self.primal(s.iter), self.block(s.body), []))
