"""Low-rank tangents: the tangent of a matrix argument carried as its two factors.

Input: the tangent pass's values, one of which is a matrix argument ``W`` (m x n)
whose tangent is declared low-rank.  Output: tangent expressions in which
``dW = dW_A @ dW_B.T`` (``dW_A``: m x r, ``dW_B``: n x r) is never formed where a
product can use the factors instead:

====================  ==========================================
primal                tangent term of the low-rank operand
====================  ==========================================
``X @ W``             ``X @ dW_A @ dW_B.T``   (O(r(km + kn)))
``W @ X``             ``dW_A @ (dW_B.T @ X)``
``W.T``, ``-W``       factors swapped / negated, still low-rank
``np.dot``, ``np.matmul``, ``.dot``   the same as ``@``
anything else         ``dW``, materialized once at the top of the JVP
====================  ==========================================

so a forward-gradient pass through a layer ``h @ W`` costs the primal's
product plus ``dh @ W`` and two thin products, instead of a second full
product ``h @ dW``.  The JVP is exact for the tangent ``A @ B.T``: nothing
is approximated, only the order of the products changes.

Correctness: the factors stand for ``dW`` only while ``W`` keeps its value, so
an argument stays factored only if the function never assigns it and every
read of it is an operand of a product (possibly through ``.T`` and unary minus):
then no alias of it exists and nothing can write into it.  Otherwise its
tangent is materialized at entry and every use reads the materialized ``dW``.

Which arguments qualify is decided by :func:`fwdjit.compiler.activity.factorable`.

>>> import ast
>>> from types import SimpleNamespace as Val
>>> W = Val(active=True, lowrank=(ast.Name("dW_A"), ast.Name("dW_B")))
>>> X = Val(active=False, p=lambda: ast.Name("X"))
>>> [ast.unparse(t) for t in product_terms(X, W, lambda x, y: ast.BinOp(x, ast.MatMult(), y))]
['X @ dW_A @ dW_B.T']
"""
from __future__ import annotations

import ast
import copy
from typing import NamedTuple



class LowRank(NamedTuple):
    """The tangent ``A @ B.T`` of a 2-D argument, given by its factors.

    Pass it in ``f.jvp(primals, tangents)`` in place of a dense tangent:
    ``A`` has shape (m, r) and ``B`` (n, r) for an argument of shape (m, n),
    both of the argument's dtype.  The generated JVP keeps the factors in
    products (see :mod:`fwdjit.rules.lowrank`); the result equals the JVP with the
    dense tangent ``A @ B.T``.
    """
    A: object
    B: object


def _T(node):
    return ast.Attribute(copy.deepcopy(node), "T", ast.Load())


def factors(val):
    """The low-rank factors ``(A, B)`` of a value's tangent, or None."""
    return getattr(val, "lowrank", None)


def transposed(val):
    """Factors of ``W.T``'s tangent: ``(B, A)``."""
    a, b = val.lowrank
    return copy.deepcopy(b), copy.deepcopy(a)


def negated(val):
    """Factors of ``-W``'s tangent: ``(-A, B)``."""
    a, b = val.lowrank
    return ast.UnaryOp(ast.USub(), copy.deepcopy(a)), copy.deepcopy(b)


def product_terms(left, right, prod):
    """The tangent terms of ``prod(left, right)`` for a bilinear product (``@``, ``np.dot``).

    ``prod(x, y)`` builds the product's AST.  A low-rank operand contributes
    its factors in the order that never forms ``A @ B.T``.
    """
    terms = []
    if left.active:
        f = factors(left)
        if f is not None:
            terms.append(prod(copy.deepcopy(f[0]), prod(_T(f[1]), right.p())))
        else:
            terms.append(prod(left.t, right.p()))
    if right.active:
        terms.append(right_term(left.p(), right, prod))
    return terms


def right_term(left, right, prod):
    """``left @ d(right)`` for a primal atom ``left``: ``left @ A @ B.T`` when ``right``'s tangent
    is low-rank, else ``left @ dright``."""
    f = factors(right)
    if f is not None:
        return prod(prod(left, copy.deepcopy(f[0])), _T(f[1]))
    return prod(left, right.t)


def materialize(a_name, b_name):
    """``A @ B.T``: the dense tangent, for uses without a low-rank rule."""
    return ast.BinOp(ast.Name(a_name, ast.Load()), ast.MatMult(), _T(ast.Name(b_name, ast.Load())))


def mismatch(p, t):
    """Why ``t`` (a :class:`LowRank`) is not a low-rank tangent of ``p``, or None when it is.

    >>> import numpy as np
    >>> mismatch(np.zeros((3, 2)), LowRank(np.ones((3, 1)), np.ones((2, 1)))) is None
    True
    >>> print(mismatch(np.zeros(3), LowRank(np.ones((3, 1)), np.ones((1, 1)))))
    a low-rank tangent (fwdjit.LowRank) needs a 2-d float array argument; the primal has shape (3,): pass a dense tangent for it
    """
    import numpy as np
    if not (isinstance(p, np.ndarray) and p.ndim == 2 and p.dtype.kind == "f"):
        what = f"has shape {np.shape(p)}" if isinstance(p, np.ndarray) else f"is {type(p).__name__}"
        return (f"a low-rank tangent (fwdjit.LowRank) needs a 2-d float array argument; the primal {what}: "
                f"pass a dense tangent for it")
    m, n = p.shape
    a, b = t
    for f, which, rows in ((a, "A", m), (b, "B", n)):
        if not isinstance(f, np.ndarray) or f.ndim != 2 or f.dtype != p.dtype or f.shape[0] != rows:
            given = (f"array of shape {f.shape} and dtype {f.dtype}" if isinstance(f, np.ndarray)
                     else type(f).__name__)
            return (f"LowRank(A, B) for a primal of shape {p.shape} and dtype {p.dtype} needs A of shape "
                    f"({m}, r) and B of shape ({n}, r), both {p.dtype}; factor {which} is {given}")
    if a.shape[1] != b.shape[1]:
        return f"LowRank(A, B): A and B need the same number of columns r, given {a.shape[1]} and {b.shape[1]}"
    return None
