"""Pass 4, activity: which variables carry a tangent.

A variable is *active* when some assignment to it depends on a differentiated
input through a differentiable operation.  The analysis is flow-insensitive
and iterated to a fixpoint, so loops and branches need no special care:

* ``b = a[1:]``, ``b = a.T``, ``b = a.reshape(...)``: ``b`` may be a view of
  ``a``; writing an active value through one makes both active;
* ``a[i] = e`` makes ``a`` active when ``e`` is;
* a call to a user function that writes an active value into one of its array
  arguments makes the caller's array active too;
* integers, booleans, comparisons, ``len``, ``.shape``, ``floor``, ``argmax``
  and other integer-valued operations never carry a tangent.

>>> import ast
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> src = "def f(x, n):\\n    s = 0.0\\n    for i in range(n):\\n        s += x[i] * i\\n    k = n * 2\\n    return s"
>>> tree = ast.parse(src).body[0]
>>> info = FunctionInfo(func=None, name="f", qualname="f", filename="<demo>", tree=tree, params=["x", "n"])
>>> sorted(Activity(info, tree, {"x"}, resolver=None).run())
['s', 'x']
"""
from __future__ import annotations

import ast

from .. import rules as R

_VIEW_METHODS = {"reshape", "ravel", "transpose", "view", "squeeze", "swapaxes", "diagonal"}
#: ``np.f(a, ...)`` that may return a view of ``a``
_VIEW_FUNCS = _VIEW_METHODS | {"flip", "fliplr", "flipud", "moveaxis", "asarray", "atleast_1d", "atleast_2d",
                               "atleast_3d", "broadcast_to", "expand_dims"}


def view_base(call):
    """The expression a call like ``a.reshape(...)`` or ``np.flip(a)`` may be a view of, or None."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        return None
    owner = call.func.value
    if isinstance(owner, ast.Name) and owner.id == "np":
        return call.args[0] if call.func.attr in _VIEW_FUNCS and call.args else None
    return owner if call.func.attr in _VIEW_METHODS else None


def root_name(node):
    """The variable an assignment target or view expression reads from."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    viewed = view_base(node)
    if viewed is not None:
        return root_name(viewed)
    return node.id if isinstance(node, ast.Name) else None


def may_alias(value):
    """The name ``value`` may be a view of (``a``, ``a[...]``, ``a.T``, ``a.reshape()``, ``np.flip(a)``)."""
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Subscript) or (isinstance(value, ast.Attribute) and value.attr == "T"):
        return root_name(value)
    viewed = view_base(value)
    if viewed is not None:
        return root_name(viewed)
    return None


def alias_groups(tree):
    """Which names may share memory, flow-insensitively: ``{name: (same, views)}``.

    ``same``: names bound to the very same array through plain renames
    (``u = v``), element for element; ``views``: names reached through at least
    one slice, transpose or view call (``u = v[::-1]``), which may be shifted
    or reordered against ``name``.  Names that are never aliased are absent.
    """
    edges = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign):
            a = may_alias(n.value)
            for t in n.targets:
                if isinstance(t, ast.Name) and a is not None and a != t.id:
                    edges.append((t.id, a, isinstance(n.value, ast.Name)))

    def component(start, plain_only):
        seen, todo = {start}, [start]
        while todo:
            x = todo.pop()
            for b, a, plain in edges:
                if plain_only and not plain:
                    continue
                for u, w in ((b, a), (a, b)):
                    if u == x and w not in seen:
                        seen.add(w)
                        todo.append(w)
        return seen

    out = {}
    for name in {x for b, a, _ in edges for x in (b, a)}:
        same = component(name, True)
        out[name] = (same, component(name, False) - same)
    return out


def mutated_names(tree):
    """Names written in place somewhere (``a[i] = e``, ``a += e``, or passed to a call), with their aliases."""
    out = set()
    aliases = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                if isinstance(t, ast.Subscript):
                    out.add(root_name(t))
                elif isinstance(t, ast.Name):
                    a = may_alias(n.value)
                    if a:
                        aliases.append((t.id, a))
        elif isinstance(n, ast.AugAssign):
            out.add(root_name(n.target) if not isinstance(n.target, ast.Name) else n.target.id)
        elif isinstance(n, ast.Call):
            for a in n.args:
                r = root_name(a)
                if r:
                    out.add(r)
    changed = True
    while changed:
        changed = False
        for b, a in aliases:
            if (b in out) != (a in out):
                out |= {a, b}
                changed = True
    out.discard(None)
    return out


class Activity:
    """Fixpoint activity analysis of one (normalized) function body.

    ``resolver`` classifies calls (see :class:`fwdjit.compiler.callees.Resolver`); it
    may be None for code without calls to user functions.
    """

    def __init__(self, info, tree, active_params, resolver):
        self.info = info
        self.tree = tree
        self.active = set(active_params)
        self.resolver = resolver
        self.aliases = []   # (b, a): b may be a view of a
        self.changed = False

    def run(self):
        written = mutated_names(self.tree)
        while True:
            self.changed = False
            self._block(self.tree.body)
            for b, a in self.aliases:
                # writing an active value through b reaches a only if b is written in place
                if b in self.active and b in written and a not in self.active:
                    self._add(a)
            if not self.changed:
                return self.active

    def _add(self, name):
        if name is not None and name not in self.active:
            self.active.add(name)
            self.changed = True

    # ------------------------------------------------------------ statements
    def _block(self, stmts):
        for s in stmts:
            self._stmt(s)

    def _stmt(self, s):
        if isinstance(s, ast.Assign):
            act = self.expr_active(s.value)
            for t in s.targets:
                self._target(t, act)
                if isinstance(t, ast.Name):
                    a = may_alias(s.value)
                    if a is not None and a != t.id:
                        pair = (t.id, a)
                        if pair not in self.aliases:
                            self.aliases.append(pair)
                            self.changed = True
        elif isinstance(s, ast.AugAssign):
            act = self.expr_active(s.value)
            self._target(s.target, act)
        elif isinstance(s, (ast.If, ast.While)):
            self.expr_active(s.test)
            self._block(s.body)
            self._block(s.orelse)
        elif isinstance(s, ast.For):
            self.expr_active(s.iter)
            self._block(s.body)
        elif isinstance(s, (ast.Return, ast.Expr)):
            if s.value is not None:
                self.expr_active(s.value)

    def _target(self, t, act):
        if not act:
            return
        if isinstance(t, ast.Name):
            self._add(t.id)
        elif isinstance(t, ast.Tuple):
            for e in t.elts:
                self._target(e, act)
        else:
            self._add(root_name(t))

    # ----------------------------------------------------------- expressions
    def expr_active(self, node):
        """Whether ``node`` carries a tangent (also records callee side effects)."""
        if isinstance(node, ast.Name):
            return node.id in self.active
        if isinstance(node, ast.Constant) or node is None:
            return False
        if isinstance(node, ast.BinOp):
            la, ra = self.expr_active(node.left), self.expr_active(node.right)
            return R.BINOP_RULES[type(node.op)].result_active([la, ra], {})
        if isinstance(node, ast.UnaryOp):
            a = self.expr_active(node.operand)
            return a and isinstance(node.op, (ast.USub, ast.UAdd))
        if isinstance(node, ast.BoolOp):
            # ``x and y`` is one of its operands: active when an operand is (the tangent
            # generator then refuses it, rather than giving a silent zero tangent)
            return any([self.expr_active(c) for c in node.values])
        if isinstance(node, ast.Compare):
            for c in ast.iter_child_nodes(node):
                if isinstance(c, ast.expr):
                    self.expr_active(c)
            return False
        if isinstance(node, ast.IfExp):
            self.expr_active(node.test)
            b, o = self.expr_active(node.body), self.expr_active(node.orelse)
            return b or o
        if isinstance(node, ast.Subscript):
            self.expr_active(node.slice)
            return self.expr_active(node.value)
        if isinstance(node, ast.Attribute):
            if node.attr in R.ZERO_ATTRS:
                self.expr_active(node.value)
                return False
            return self.expr_active(node.value)
        if isinstance(node, ast.Tuple):
            return any([self.expr_active(e) for e in node.elts])
        if isinstance(node, ast.Slice):
            for c in (node.lower, node.upper, node.step):
                self.expr_active(c)
            return False
        if isinstance(node, ast.Call):
            return self._call_active(node)
        return False

    def _call_active(self, node):
        args_act = [self.expr_active(a) for a in node.args]
        kw_act = {k.arg: self.expr_active(k.value) for k in node.keywords}
        if self.resolver is None:
            return any(args_act) or any(kw_act.values())
        kind, obj, rule = self.resolver.classify(node)
        if kind == "method":
            recv = self.expr_active(node.func.value)
            if rule is not None and rule.zero:
                return False
            return recv or any(args_act)
        if kind == "rule":
            return rule.result_active(args_act, kw_act)
        if kind == "user":
            if not any(args_act):
                return False
            eff = self.resolver.effective_mask(obj, tuple(args_act), node)
            for a, was, now in zip(node.args, args_act, eff):
                if now and not was:
                    self._add(root_name(a))
            return True
        # black box (no rule): active if fed active values; tangent pass reports it
        return any(args_act) or any(kw_act.values())


def _operand(node, safe):
    """Mark the name at the bottom of an operand ``node`` (through ``.T`` and unary minus)."""
    while True:
        if isinstance(node, ast.Name):
            safe.add(id(node))
            return
        if isinstance(node, ast.Attribute) and node.attr == "T":
            node = node.value
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        else:
            return


def factorable(tree, params, classify):
    """The parameters of ``tree`` whose low-rank tangent may stay factored (:mod:`fwdjit.rules.lowrank`).

    The factors stand for the tangent only while the argument keeps its value.  An
    argument qualifies only if it is never assigned and *every* read of it is an operand of
    a matrix product (``@``, ``np.dot``/``np.matmul`` of two arguments, ``.dot``) or of
    arithmetic (binary and unary operators, comparisons), possibly through ``.T`` and
    unary minus: these make new arrays, so no alias of the argument can exist and nothing
    can write into it.  Any other read (a view, a call, a tuple, an attribute, a plain
    assignment) leaves its tangent dense, materialized once.  (Products then use the
    factors, arithmetic reads the materialized ``dW``.)

    >>> tree = ast.parse("def f(W, U, b, x):\\n    V = U\\n    return np.sum(x @ W.T + b) + np.sum(V @ x)").body[0]
    >>> import numpy as np
    >>> classify = lambda call: ("rule", np.sum, None)
    >>> sorted(factorable(tree, ["W", "U", "b", "x"], classify))
    ['W', 'b', 'x']

    ``classify(call_node)`` is the resolver's ``(kind, object, rule)`` of a call.
    """
    import numpy as np
    safe = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.BinOp):
            _operand(n.left, safe)
            _operand(n.right, safe)
        elif isinstance(n, ast.UnaryOp):
            _operand(n.operand, safe)
        elif isinstance(n, ast.Compare):
            for e in [n.left, *n.comparators]:
                _operand(e, safe)
        elif isinstance(n, ast.Call) and not n.keywords:
            kind, obj, _ = classify(n)
            if kind == "rule" and obj in (np.dot, np.matmul) and len(n.args) == 2:
                _operand(n.args[0], safe)
                _operand(n.args[1], safe)
            elif kind == "method" and obj == "dot" and len(n.args) == 1:
                _operand(n.func.value, safe)
                _operand(n.args[0], safe)
    out = set(params)
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id in out and (not isinstance(n.ctx, ast.Load) or id(n) not in safe):
            out.discard(n.id)
    return out
