"""The primal pass: a user function's AST in, the AST of the function fwdjit compiles as its primal out.

The output is the user's function with its docstring dropped, every call to
another user function pointed at that function's compiled primal (bound as a
fresh global name, collected in ``bindings``), every call to a black box with a
derivative rule pointed at the rule's compiled version, and in-place updates
that may read overlapping memory buffered.  Both targets use it: the CPU
target (:mod:`fwdjit.targets.cpu`) compiles the result with ``numba.njit``, the CUDA
target (:mod:`fwdjit.targets.cuda`) as a device function or kernel.

``fj`` is anything with ``info`` (a :class:`fwdjit.compiler.resolve.FunctionInfo`) and a
``resolver`` (a :class:`fwdjit.compiler.tangent.Resolver`, or ``None`` for no rewriting
of calls):

>>> import ast, types
>>> from fwdjit.compiler.resolve import parse_function
>>> def f(x):
...     "doc"
...     return x * 2.0
>>> fj = types.SimpleNamespace(info=parse_function(f), resolver=None)
>>> gen = PrimalGen(fj)
>>> print(ast.unparse(gen.run()))
def f(x):
    return x * 2.0
>>> gen.bindings
{}
"""
from __future__ import annotations

import ast
import copy

from .activity import alias_groups
from .lower import lower
from .normalize import NameGen, all_names
from .tangent import Binder, PrimalRewriter

__all__ = ["PrimalGen"]


class PrimalGen(Binder):
    """The primal function, with calls to user functions pointed at their compiled versions."""

    def __init__(self, fj):
        self.fj = fj
        self.resolver = fj.resolver
        self.bindings = {}
        self.names = NameGen(all_names(fj.info.tree) | {"np", "math", "fj"})
        self.aliases = alias_groups(fj.info.tree)

    def run(self):
        tree = lower(self.fj.info.tree, self.fj.info) if self.fj.resolver is not None else copy.deepcopy(self.fj.info.tree)
        tree.body = [s for s in tree.body
                     if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))] or [ast.Pass()]
        tree = PrimalRewriter(self).visit(tree)
        return ast.fix_missing_locations(tree)
