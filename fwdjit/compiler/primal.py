"""The primal pass: a user function's AST in, the AST of the function fwdjit compiles as its primal out.

The output is the user's function with its docstring dropped, every call to
another user function pointed at that function's compiled primal (bound as a
fresh global name, collected in ``bindings``), every call to a black box with a
derivative rule pointed at the rule's compiled version, and in-place updates
that may read overlapping memory buffered.  Both targets use it: the CPU
target (:mod:`fwdjit.targets.cpu`) compiles the result with ``numba.njit``, the CUDA
target (:mod:`fwdjit.targets.cuda`) as a device function or kernel.

``fj`` is anything with ``info`` (a :class:`fwdjit.compiler.resolve.FunctionInfo`) and a
``resolver`` (a :class:`fwdjit.compiler.callees.Resolver`, or ``None`` for no rewriting
of calls):

>>> import ast, types
>>> from fwdjit.compiler.resolve import parse_function
>>> def f(x):
...     "doc"
...     return x * 2.0
>>> fj = types.SimpleNamespace(info=parse_function(f), resolver=None)
>>> gen = PrimalGen(fj)
>>> from fwdjit.compiler.render import render
>>> print(render(gen.run()), end="")      # doctest: +ELLIPSIS
def f(x):
    # <doctest ...>:3: return x * 2.0
    return x * 2.0
>>> gen.bindings
{}
"""
from __future__ import annotations

import ast
import copy

import numpy as np

from .activity import alias_groups, root_name, view_base
from .fuse import fuse
from .lower import lower
from .normalize import NameGen, all_names
from .render import COMMENT

__all__ = ["PrimalGen", "PrimalRewriter", "Binder", "blas_safe_args", "buffered_rhs"]


class Binder:
    """Fresh names (``self.names``, a NameGen) and the objects generated code refers to by them
    (``self.bindings``, name -> object; one name per object)."""

    def fresh(self, stem):
        return self.names.fresh(stem)

    def bind(self, obj, stem):
        for k, v in self.bindings.items():
            if v is obj:
                return k
        name = self.fresh(stem)
        self.bindings[name] = obj
        return name


class PrimalRewriter(ast.NodeTransformer):
    """Point calls to user functions at their compiled primal (and buffer overlapping in-place updates)."""

    def __init__(self, gen):
        self.gen = gen

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        node.value = buffered_rhs(node.target, node.value, self.gen.aliases)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if self.gen.resolver is None:
            return node
        kind, obj, rule = self.gen.resolver.classify(node)
        node.args = blas_safe_args(obj, node.args, node.keywords)
        if kind == "user":
            name = self.gen.bind(obj.primal_function_internal(), f"{obj.name}_")
            node.func = ast.Name(name, ast.Load())
        elif kind == "rule" and getattr(rule, "compiled", None) is not None and rule.compiled is not obj:
            name = self.gen.bind(rule.compiled, f"{getattr(obj, '__name__', 'f')}_")
            node.func = ast.Name(name, ast.Load())
        return node


def _mentions(node, name):
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _partial_view_of(node, root):
    """Whether ``node`` may be a *shifted or reordered* view of the array ``root``.

    ``u[1:] += u[:-1]`` and ``u += np.flip(u)``: NumPy computes the right-hand side
    as if copied first, Numba updates element by element through the view.  A
    plain name or an index without slices (``u``, ``A[j]``) meets the target
    element for element or not at all, so it needs no copy.
    """
    if isinstance(node, ast.Subscript):
        sliced = any(isinstance(n, ast.Slice) for n in ast.walk(node.slice))
        return (sliced and _mentions(node.value, root)) or _partial_view_of(node.value, root)
    if isinstance(node, ast.Attribute):
        return node.attr == "T" and _mentions(node.value, root)
    base = view_base(node)
    return base is not None and _mentions(base, root)


def blas_safe_args(obj, args, keywords):
    """The arguments of a call to ``obj``, with ``np.linalg.norm(x)``'s passed through ``fj.blas_strides``.

    Numba's norm goes to BLAS, which gives wrong values for negative strides (``v[::-1]``).
    """
    if obj is np.linalg.norm and len(args) == 1 and not keywords:
        return [ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), "blas_strides", ast.Load()), [args[0]], [])]
    return args


def buffered_rhs(target, value, aliases):
    """``value`` read through a copy when it may be a partial view of the in-place ``target``.

    ``aliases`` is :func:`fwdjit.compiler.activity.alias_groups` of the function: after
    ``u = v``, ``u[1:] += v[::-1][1:]`` overlaps as ``u[1:] += u[::-1][1:]`` does;
    after ``u = v[::-1]``, even ``u += v`` does.
    """
    root = target.id if isinstance(target, ast.Name) else root_name(target)
    if root is None:
        return value
    same, views = aliases.get(root, ({root}, set()))
    if any(_partial_view_of(value, n) for n in same) or any(_mentions(value, n) for n in views):
        return ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), "fresh", ast.Load()), [value], [])
    return value


class PrimalGen(Binder):
    """The primal function, with calls to user functions pointed at their compiled versions."""

    def __init__(self, fj, fuse=False):
        self.fj = fj
        self.fuse = fuse
        self.resolver = fj.resolver
        self.bindings = {}
        self.names = NameGen(all_names(fj.info.tree) | {"np", "math", "fj"})
        self.aliases = alias_groups(fj.info.tree)

    def run(self):
        tree = lower(self.fj.info.tree, self.fj.info) if self.fj.resolver is not None else copy.deepcopy(self.fj.info.tree)
        tree.body = [s for s in tree.body
                     if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))] or [ast.Pass()]
        if self.fuse:
            tree = fuse(tree, self.names, self.fj.info)
        tree = PrimalRewriter(self).visit(tree)
        tree.body = line_comments(tree.body, self.fj.info, [None])
        return ast.fix_missing_locations(tree)


def line_comments(stmts, info, last):
    """``stmts`` with a ``# file:line: source`` comment marker before each new source line, as the
    tangent pass writes them: a Numba error in the generated code maps back to the user's line."""
    out = []
    short = info.filename.rsplit("/", 1)[-1]
    for s in stmts:
        line = getattr(s, "lineno", None)
        if line is not None and line != last[0]:
            last[0] = line
            text = (info.source_line(line) or ast.unparse(s).splitlines()[0]).strip()
            out.append(ast.copy_location(ast.Expr(ast.Constant(f"{COMMENT}{short}:{line}: {text}")), s))
        for field in ("body", "orelse"):
            block = getattr(s, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                setattr(s, field, line_comments(block, info, last))
        out.append(s)
    return out
