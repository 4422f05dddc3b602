"""Rules of linear algebra: ``@``, ``dot matmul vdot outer inner kron cross``, ``.dot``, ``det slogdet inv solve``,
``eigh eigvalsh svd`` (their tangents: :mod:`fwdjit.npimpl.decompositions`).

Products are bilinear: ``d(a @ b) = da @ b + a @ db``; a low-rank tangent
``A Bᵀ`` stays factored through them (:mod:`fwdjit.rules.lowrank`).

>>> import ast, numpy as np
>>> RULES[np.outer].fn.__name__, ast.MatMult in BINOP_RULES
('bilinear', True)
"""
from __future__ import annotations

import ast

import numpy as np

from ..npimpl import decompositions
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


def _decomposition(template, what, hint):
    """``np.linalg.<name>(a)`` alone: its tangent from ``template``; other arguments are refused."""
    rule = partials(template)

    def fn(c):
        if len(c.args) != 1 or c.kw:
            raise c.gen.unsupported(what, hint)
        return rule.fn(c)
    return Rule(fn, diff=(0,))


def _svd(c):
    """``np.linalg.svd(a)`` or ``svd(a, full_matrices=False)``: (du, ds, dvh); ``compute_uv`` is refused."""
    extra = dict(zip(("full_matrices",), c.args[1:]), **c.kw)
    if len(c.args) > 2 or set(extra) - {"full_matrices"}:
        raise c.gen.unsupported("np.linalg.svd with compute_uv or hermitian",
                                "call np.linalg.svd(a, full_matrices=False) and use its s")
    if not c.active(0):
        return None
    return c.fill("fj.svd_jvp({y}[0], {y}[1], {y}[2], {g})", g=c.args[0].t)


for _f in (np.vdot, np.outer, np.inner, np.kron, np.cross):
    RULES[_f] = Rule(bilinear)
for _f in (np.dot, np.matmul):
    RULES[_f] = Rule(_matrix_product)
# d det A = det A * trace(A^-1 dA), with A^-1 dA from a solve (no inverse)
RULES[np.linalg.det] = partials("{y} * np.trace(np.linalg.solve({0}, {g}))")
RULES[np.linalg.slogdet] = partials("(fj.zero({y}[0]), np.trace(np.linalg.solve({0}, {g})))")
RULES[np.linalg.inv] = partials("-({y} @ ({g} @ {y}))")
RULES[np.linalg.solve] = Rule(_solve)
RULES[np.linalg.eigh] = _decomposition("fj.eigh_jvp({y}[0], {y}[1], {g})", "np.linalg.eigh with UPLO",
                                       "pass the symmetric matrix alone: its lower triangle is read")
RULES[np.linalg.eigvalsh] = _decomposition("fj.eigvalsh_jvp({0}, {g})", "np.linalg.eigvalsh with UPLO",
                                           "pass the symmetric matrix alone: its lower triangle is read")
RULES[np.linalg.svd] = Rule(_svd, diff=(0,))


def _not_twice(what):
    def fn(c):
        raise c.gen.unsupported(f"the second derivative of {what}",
                                "differentiate the decomposition once (fwdjit.jvp, grad or jacfwd), not twice")
    return Rule(fn)


# the tangents' helpers (fwdjit.npimpl.decompositions) are plain NumPy code that fwdjit does not transform
RULES[decompositions.eigh_jvp] = _not_twice("np.linalg.eigh")
RULES[decompositions.eigvalsh_jvp] = _not_twice("np.linalg.eigvalsh")
RULES[decompositions.svd_jvp] = _not_twice("np.linalg.svd")
BINOP_RULES[ast.MatMult] = Rule(_matmul_op)
METHOD_RULES["dot"] = Rule(_method_dot)
