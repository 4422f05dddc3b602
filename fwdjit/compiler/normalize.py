"""Pass 3, normalize: desugar the constructs later passes need not know about.

* NumPy calls Numba lacks lowered to fwdjit's own (:mod:`~fwdjit.compiler.lower`);
* docstrings dropped, ``x: float = e`` becomes ``x = e``;
* ``a = b = e`` becomes ``a = e`` then ``b = a`` (arrays stay shared);
* ``a, b = e1, e2`` becomes one assignment per element (through temporaries
  when an element reads a name assigned earlier in the same statement);
* ``for v in arr`` / ``for i, v in enumerate(arr)`` / ``for a, b in zip(x, y)``
  become loops over ``range`` that index the arrays;
* ``a op= e`` for ``** // %`` becomes ``a = a op e`` (``+= -= *= /=`` stay
  in place, so views keep being written through).

Every new node keeps the line number of the statement it came from.  Active
subexpressions are split into one-operation temporaries later, by the tangent
pass, which knows which values carry derivatives.

>>> import ast
>>> tree = ast.parse("def f(x):\\n    a, b = x, 2.0 * x\\n    for v in x:\\n        a += v\\n    return a").body[0]
>>> print(ast.unparse(normalize(tree, NameGen(set()))))
def f(x):
    a = x
    b = 2.0 * x
    for _i1 in range(len(x)):
        v = x[_i1]
        a += v
    return a
"""
from __future__ import annotations

import ast
import copy

from ..errors import UnsupportedSyntax
from .lower import lower


class NameGen:
    """Fresh names that do not clash with the user's."""

    def __init__(self, taken):
        self.taken = set(taken)
        self.counters = {}

    def fresh(self, stem):
        n = self.counters.get(stem, 0)
        while True:
            n += 1
            name = f"{stem}{n}"
            if name not in self.taken:
                self.counters[stem] = n
                self.taken.add(name)
                return name

    def reserve(self, name):
        self.taken.add(name)


def all_names(tree):
    """Every name and parameter in ``tree`` (what fresh names must avoid).

    >>> sorted(all_names(ast.parse("def f(x):\\n    y = x + z\\n    return y").body[0]))
    ['x', 'y', 'z']
    """
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
    return out


def _names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _loc(new, old):
    return ast.copy_location(new, old)


_CONST_NODES = (ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.cmpop, ast.boolop,
                ast.unaryop, ast.operator, ast.expr_context)


def _const_truth(test):
    """True/False when ``test`` is made of literals only (``0.5 <= 0.25``), else None."""
    if not all(isinstance(n, _CONST_NODES) for n in ast.walk(test)):
        return None
    if any(isinstance(n, (ast.Pow, ast.LShift)) for n in ast.walk(test)):
        return None            # 10 ** 10 ** 10 would take forever here: leave it to run time
    try:
        value = eval(compile(ast.fix_missing_locations(ast.Expression(copy.deepcopy(test))), "<const>", "eval"),
                     {"__builtins__": {}})
    except Exception:
        return None
    return bool(value) if isinstance(value, (bool, int, float)) else None


class _FoldConstantTests(ast.NodeTransformer):
    """``if``s and conditional expressions whose test is made of literals keep only the branch taken.

    Python would take the same branch every time; keeping the dead one only gives
    Numba a variable that is undefined on one path (which its type inference
    cannot always resolve) and the reader dead tangent code.
    """

    def visit_If(self, node):
        self.generic_visit(node)
        truth = _const_truth(node.test)
        if truth is None:
            return node
        return (node.body if truth else node.orelse) or None

    def visit_IfExp(self, node):
        self.generic_visit(node)
        truth = _const_truth(node.test)
        if truth is None:
            return node
        return node.body if truth else node.orelse


def normalize(tree: ast.FunctionDef, names: NameGen, info=None) -> ast.FunctionDef:
    tree = lower(tree, info) if info is not None else copy.deepcopy(tree)
    tree = _FoldConstantTests().visit(tree)
    tree.body = _block(tree.body, names, info)
    if not tree.body:
        tree.body = [ast.Pass()]
    return ast.fix_missing_locations(tree)


def _block(stmts, names, info):
    out = []
    for s in stmts:
        out.extend(_stmt(s, names, info))
    return out


def _stmt(s, names, info):
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
        return []
    if isinstance(s, ast.AnnAssign):
        return _stmt(_loc(ast.Assign(targets=[s.target], value=s.value), s), names, info)
    if isinstance(s, ast.Assign):
        if len(s.targets) > 1:
            first, rest = s.targets[0], s.targets[1:]
            out = _stmt(_loc(ast.Assign(targets=[first], value=s.value), s), names, info)
            if isinstance(first, ast.Name):
                src = first
            else:
                tmp = names.fresh("_t")
                out = _stmt(_loc(ast.Assign(targets=[ast.Name(tmp, ast.Store())], value=s.value), s), names, info)
                out += _stmt(_loc(ast.Assign(targets=[first], value=ast.Name(tmp, ast.Load())), s), names, info)
                src = ast.Name(tmp, ast.Load())
            for t in rest:
                out += _stmt(_loc(ast.Assign(targets=[t], value=ast.Name(src.id, ast.Load())), s), names, info)
            return out
        target = s.targets[0]
        if isinstance(target, ast.Tuple) and isinstance(s.value, ast.Tuple):
            if len(target.elts) != len(s.value.elts):
                raise info.error(UnsupportedSyntax, s, "tuple assignment with a different number of values",
                                 construct="tuple assignment") if info else ValueError("tuple length")
            assigned = set()
            for t in target.elts:
                assigned |= _names_in(t)
            read_later = set()
            for v in s.value.elts[1:]:
                read_later |= _names_in(v)
            if assigned & read_later or any(not isinstance(t, ast.Name) for t in target.elts):
                tmps = [names.fresh("_t") for _ in target.elts]
                out = []
                for tmp, v in zip(tmps, s.value.elts):
                    out += _stmt(_loc(ast.Assign(targets=[ast.Name(tmp, ast.Store())], value=v), s), names, info)
                for tmp, t in zip(tmps, target.elts):
                    out += _stmt(_loc(ast.Assign(targets=[t], value=ast.Name(tmp, ast.Load())), s), names, info)
                return out
            out = []
            for t, v in zip(target.elts, s.value.elts):
                out += _stmt(_loc(ast.Assign(targets=[t], value=v), s), names, info)
            return out
        return [s]
    if isinstance(s, ast.AugAssign):
        if isinstance(s.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            return [s]
        load = copy.deepcopy(s.target)
        for n in ast.walk(load):
            if hasattr(n, "ctx"):
                n.ctx = ast.Load()
        new = _loc(ast.Assign(targets=[s.target], value=_loc(ast.BinOp(load, s.op, s.value), s)), s)
        return [new]
    if isinstance(s, ast.If):
        s.body = _block(s.body, names, info) or [_loc(ast.Pass(), s)]
        s.orelse = _block(s.orelse, names, info)
        return [s]
    if isinstance(s, ast.While):
        s.body = _block(s.body, names, info) or [_loc(ast.Pass(), s)]
        return [s]
    if isinstance(s, ast.For):
        return _for(s, names, info)
    return [s]


def _is_range(node):
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"


def _for(s, names, info):
    pre = []
    body = _block(s.body, names, info)
    it = s.iter
    if _is_range(it) and isinstance(s.target, ast.Name):
        s.body = body or [_loc(ast.Pass(), s)]
        return [s]

    # names the loop rebinds: Python keeps iterating over the object bound when the loop
    # started, so those are read through a temporary bound before the loop
    rebound = {n.id for st in s.body for n in ast.walk(st)
               if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    rebound |= {n.id for n in ast.walk(s.target) if isinstance(n, ast.Name)}

    def as_name(expr, stem):
        if isinstance(expr, ast.Name) and expr.id not in rebound:
            return expr.id
        tmp = names.fresh(stem)
        pre.append(_loc(ast.Assign(targets=[ast.Name(tmp, ast.Store())], value=expr), s))
        return tmp

    idx = names.fresh("_i")
    heads = []
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" \
            and len(it.args) == 1 and isinstance(s.target, ast.Tuple) and len(s.target.elts) == 2:
        arr = as_name(it.args[0], "_it")
        length = ast.Call(ast.Name("len", ast.Load()), [ast.Name(arr, ast.Load())], [])
        heads.append(ast.Assign(targets=[s.target.elts[0]], value=ast.Name(idx, ast.Load())))
        heads.append(ast.Assign(targets=[s.target.elts[1]],
                                value=ast.Subscript(ast.Name(arr, ast.Load()), ast.Name(idx, ast.Load()), ast.Load())))
    elif isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "zip" \
            and isinstance(s.target, ast.Tuple) and len(s.target.elts) == len(it.args) and it.args:
        arrs = [as_name(a, "_it") for a in it.args]
        lens = [ast.Call(ast.Name("len", ast.Load()), [ast.Name(a, ast.Load())], []) for a in arrs]
        length = lens[0] if len(lens) == 1 else ast.Call(ast.Name("min", ast.Load()), lens, [])
        for t, a in zip(s.target.elts, arrs):
            heads.append(ast.Assign(targets=[t],
                                    value=ast.Subscript(ast.Name(a, ast.Load()), ast.Name(idx, ast.Load()), ast.Load())))
    elif isinstance(it, ast.Call) and not _is_range(it) and isinstance(it.func, ast.Name) \
            and it.func.id in ("enumerate", "zip", "reversed", "iter"):
        raise info.error(UnsupportedSyntax, it, f"for loop over {it.func.id}(...) in this form",
                         hint="loop over range(len(a)) and index the arrays", construct=f"for over {it.func.id}")
    else:
        arr = as_name(it, "_it")
        length = ast.Call(ast.Name("len", ast.Load()), [ast.Name(arr, ast.Load())], [])
        heads.append(ast.Assign(targets=[s.target],
                                value=ast.Subscript(ast.Name(arr, ast.Load()), ast.Name(idx, ast.Load()), ast.Load())))
    new_body = []
    for h in heads:
        new_body += _stmt(_loc(h, s), names, info)
    loop = _loc(ast.For(target=ast.Name(idx, ast.Store()),
                        iter=ast.Call(ast.Name("range", ast.Load()), [length], []),
                        body=new_body + body, orelse=[]), s)
    return pre + [loop]
