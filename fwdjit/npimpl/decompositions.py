"""Tangents of matrix decompositions: ``np.linalg.eigh``, ``eigvalsh``, ``svd`` (called as ``fj.*``).

Each helper is plain NumPy code that Numba compiles as it stands (the overload
returns the same function), so generated code runs the same helper in
Python and in nopython mode.

``eigh`` (and ``eigvalsh``) read only the lower triangle of ``a`` (NumPy's
``UPLO='L'``), so the tangent is that of the symmetric matrix the lower
triangle defines: ``dA = tril(da) + tril(da, -1).T``.  With ``a = V diag(w) Vᵀ``
and ``S = Vᵀ dA V``::

    dw = diag(S)                 dV = V (F ∘ S),   F_ij = 1 / (w_j - w_i), F_ii = 0

``svd`` (the thin factorization ``a = U diag(s) Vh``, ``V = Vhᵀ``), with
``P = Uᵀ da V`` and ``F_ij = 1 / (s_j² - s_i²)``::

    ds  = diag(P)
    dU  = U (F ∘ (P S + S Pᵀ)) + (I - U Uᵀ) da V S⁻¹
    dV  = V (F ∘ (S P + Pᵀ S)) + (I - V Vᵀ) daᵀ U S⁻¹,   dVh = dVᵀ

Repeated eigenvalues (singular values) have no derivative of their vectors:
the tangent is then inf or nan, as the formulas say (the values' own tangents
stay finite).  ``svd`` with ``full_matrices=True`` (NumPy's default) of a
non-square matrix adds singular vectors that are not unique: its tangent
raises ``ValueError`` asking for ``full_matrices=False``.

>>> import numpy as np
>>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
>>> w, v = np.linalg.eigh(a)
>>> da = np.array([[1.0, 0.0], [0.0, 0.0]])
>>> dw, dv = eigh_jvp(w, v, da)
>>> h = 1e-6
>>> bool(np.allclose(dw, (np.linalg.eigvalsh(a + h * da) - np.linalg.eigvalsh(a - h * da)) / (2 * h)))
True
"""
from __future__ import annotations

import inspect

import numpy as np
from numba.extending import overload

__all__ = ["eigh_jvp", "eigvalsh_jvp", "svd_jvp"]


def _same_in_numba(fn):
    """Register ``fn`` as its own Numba implementation (its body is nopython-compatible)."""
    params = ", ".join(inspect.signature(fn).parameters)
    ns = {}
    exec(f"def typer({params}):\n    return fn\n", {"fn": fn}, ns)      # Numba matches the parameter names
    overload(fn)(ns["typer"])
    return fn


@_same_in_numba
def eigh_jvp(w, v, da):
    """``(dw, dv)`` of ``w, v = np.linalg.eigh(a)`` in the direction ``da``."""
    sym = np.tril(da) + np.tril(da, -1).T
    s = v.T @ sym @ v
    n = w.shape[0]
    dw = np.empty(n, s.dtype)
    f = np.empty((n, n), s.dtype)
    for i in range(n):
        dw[i] = s[i, i]
        for j in range(n):
            f[i, j] = 0.0 if i == j else s[i, j] / (w[j] - w[i])
    return dw, v @ f


@_same_in_numba
def eigvalsh_jvp(a, da):
    """``dw`` of ``w = np.linalg.eigvalsh(a)``: ``diag(Vᵀ dA V)`` (the vectors computed again)."""
    w, v = np.linalg.eigh(a)
    sym = np.tril(da) + np.tril(da, -1).T
    s = v.T @ sym @ v
    dw = np.empty(w.shape[0], s.dtype)
    for i in range(w.shape[0]):
        dw[i] = s[i, i]
    return dw


@_same_in_numba
def svd_jvp(u, s, vh, da):
    """``(du, ds, dvh)`` of ``u, s, vh = np.linalg.svd(a, full_matrices=False)`` in the direction ``da``."""
    k = s.shape[0]
    if u.shape[1] != k or vh.shape[0] != k:
        raise ValueError("the derivative of np.linalg.svd(a) of a non-square matrix needs full_matrices=False "
                         "(with full_matrices=True the extra singular vectors are not unique)")
    v = np.ascontiguousarray(vh.T)
    p = u.T @ da @ v
    ds = np.empty(k, p.dtype)
    fu = np.empty((k, k), p.dtype)
    fv = np.empty((k, k), p.dtype)
    for i in range(k):
        ds[i] = p[i, i]
        for j in range(k):
            if i == j:
                fu[i, j] = 0.0
                fv[i, j] = 0.0
            else:
                f = 1.0 / (s[j] * s[j] - s[i] * s[i])
                fu[i, j] = f * (p[i, j] * s[j] + s[i] * p[j, i])
                fv[i, j] = f * (s[i] * p[i, j] + p[j, i] * s[j])
    dav = da @ v
    datu = np.ascontiguousarray(da.T) @ u
    du = u @ fu + (dav - u @ (u.T @ dav)) / s
    dv = v @ fv + (datu - v @ (v.T @ datu)) / s
    return du, ds, np.ascontiguousarray(dv.T)
