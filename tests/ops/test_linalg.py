"""The per-operation matrix: linear algebra (see harness.py)."""
import numpy as np
import pytest

import fwdjit

from .harness import SQ, S, params, row, run_case

L = "linear algebra"
WT14N = "Numba cannot compile np.matmul/np.inner for these inputs; fwdjit/npimpl (issue #14, wt14n) fixes it"
MATS = (((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 3)))
row(L, "@", "a @ b", "real", "real", shapes=MATS, f32=True)
row(L, "np.dot", "np.dot(a, b)", "real", "real", shapes=MATS)
row(L, ".dot()", "a.dot(b)", "real", "real", shapes=MATS)
row(L, "np.matmul", "np.matmul(a, b)", "real", "real", shapes=MATS)
row(L, "np.inner", "np.inner(a, b)", "real", "real", shapes=(((5,), (5,)), ((3, 4), (2, 4))))
row(L, "np.outer", "np.outer(a, b)", "real", "real", shapes=(((5,), (3,)), ((2, 2), (3,))))
row(L, "np.trace", "np.trace(a @ b)", "real", "real", shapes=(((3, 4), (4, 3)),))
row(L, "np.transpose", "np.transpose(a)", shapes=((3, 4), (2, 3, 4)))
row(L, ".T", "a.T", shapes=((3, 4), (2, 3, 4)))
row(L, "np.linalg.det", "np.linalg.det(a)", "mat", shapes=SQ + ((4, 4),), f32=True)
row(L, "np.linalg.slogdet", "np.linalg.slogdet(a)", "mat", shapes=SQ + ((4, 4),), f32=True)
row(L, "np.linalg.slogdet", "np.linalg.slogdet(-a)", "mat", shapes=SQ, readme=False, form="negative")
row(L, "np.linalg.inv", "np.linalg.inv(a)", "mat", shapes=SQ + ((4, 4),), f32=True)
row(L, "np.linalg.solve", "np.linalg.solve(a, b)", "mat", "real", shapes=(((3, 3), (3,)), ((4, 4), (4, 2))), f32=True)
# eigen- and singular vectors are unique up to sign (LAPACK builds may differ): the rows check
# products that do not depend on it (column j of v times v[0, j]; u's column j times vh[j, 0])
row(L, "np.linalg.eigh", "w, v = np.linalg.eigh(a)\nreturn w, v * v[0]", "sym", shapes=SQ + ((4, 4),), f32=True)
row(L, "np.linalg.eigvalsh", "np.linalg.eigvalsh(a)", "sym", shapes=SQ + ((4, 4),))
row(L, "np.linalg.svd", "u, s, vh = np.linalg.svd(a, full_matrices=False)\nreturn s, u * vh[:, 0], vh.T * u[0]",
    "sep", shapes=((3, 4), (4, 3), (3, 3)), f32=True, form="full_matrices=False")
row(L, "np.linalg.svd", "u, s, vh = np.linalg.svd(a)\nreturn s, u * vh[:, 0], vh.T * u[0]",
    "sep", shapes=((3, 3), (4, 4)), form="square matrices")


@pytest.mark.parametrize("r,shapes,dtype", params(("linear algebra",)))
def test_op(r, shapes, dtype):
    run_case(r, shapes, dtype)


def svd_full(a):
    return np.linalg.svd(a)


def test_svd_tangent_of_a_non_square_matrix_needs_thin_factors():
    """With full_matrices=True (NumPy's default) a non-square matrix gets singular vectors that are not
    unique: no tangent, a ValueError saying what to pass (the primal alone still runs)."""
    f = fwdjit.fwdjit(svd_full)
    a = np.arange(12.0).reshape(3, 4) + np.eye(3, 4)
    assert [x.shape for x in f(a)] == [(3, 3), (3,), (4, 4)]
    with pytest.raises(ValueError, match="full_matrices=False"):
        f.jvp((a,), (np.ones_like(a),))
    _, (du, ds, dvh) = f.jvp((a[:, :3].copy(),), (np.ones((3, 3)),))     # square: the same call differentiates
    assert du.shape == (3, 3) and ds.shape == (3,) and np.all(np.isfinite(dvh))
