"""The per-operation matrix: linear algebra (see harness.py)."""
import pytest

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


@pytest.mark.parametrize("r,shapes,dtype", params(("linear algebra",)))
def test_op(r, shapes, dtype):
    run_case(r, shapes, dtype)
