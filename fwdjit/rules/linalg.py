"""Rules of linear algebra: ``@``, ``dot matmul vdot outer inner kron cross``, ``.dot``, ``det slogdet inv solve``.

Products are bilinear: ``d(a @ b) = da @ b + a @ db``; a low-rank tangent
``A Bᵀ`` stays factored through them (:mod:`fwdjit.rules.lowrank`).

>>> import ast, numpy as np
>>> RULES[np.outer].fn.__name__, ast.MatMult in BINOP_RULES
('bilinear', True)
"""
from __future__ import annotations

import ast

import numpy as np

from . import lowrank
from .core import BINOP_RULES, METHOD_RULES, RULES, Rule, add_terms, bilinear, partials


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


def _solve(c):
    """``x = solve(A, b)``: ``dx = solve(A, db - dA @ x)``, one solve for both tangents."""
    A, b = c.args[0], c.args[1]
    terms = []
    if b.active:
        terms.append(b.t)
    if A.active:
        terms.append(ast.UnaryOp(ast.USub(), ast.BinOp(A.t, ast.MatMult(), c.result())))
    return c.same_call([A.p(), add_terms(terms)], {})


for _f in (np.vdot, np.outer, np.inner, np.kron, np.cross):
    RULES[_f] = Rule(bilinear)
for _f in (np.dot, np.matmul):
    RULES[_f] = Rule(_matrix_product)
# d det A = det A * trace(A^-1 dA), with A^-1 dA from a solve (no inverse)
RULES[np.linalg.det] = partials("{y} * np.trace(np.linalg.solve({0}, {g}))")
RULES[np.linalg.slogdet] = partials("(fj.zero({y}[0]), np.trace(np.linalg.solve({0}, {g})))")
RULES[np.linalg.inv] = partials("-({y} @ ({g} @ {y}))")
RULES[np.linalg.solve] = Rule(_solve)
BINOP_RULES[ast.MatMult] = Rule(_matmul_op)
METHOD_RULES["dot"] = Rule(_method_dot)
