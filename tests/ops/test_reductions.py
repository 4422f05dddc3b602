"""The per-operation matrix: reductions and scans (see harness.py)."""
import pytest

from .harness import ND1, ND2, S, params, row, run_case

R = "reductions"
row(R, "sum", "np.sum(a)", f32=True)
row(R, "sum", "np.sum(a, axis=0)", shapes=ND1, form="axis=")
row(R, "sum", "np.sum(a, axis=-1)", shapes=ND2, form="axis=", readme=False)
row(R, "sum", "np.sum(a, axis=1, keepdims=True)", shapes=ND2, form="keepdims=")
row(R, "mean", "np.mean(a)", f32=True)
row(R, "mean", "np.mean(a, axis=0)", shapes=ND1, form="axis=")
row(R, "prod", "np.prod(a)", "pos", f32=True)
row(R, "prod", "np.prod(a * (a - 1.0))", "pos", readme=False, form="with zeros")
row(R, "prod", "np.prod(a, axis=0)", "pos", shapes=ND1, form="axis=")
row(R, "max", "np.max(a)", "distinct", shapes=ND1, f32=True)
row(R, "min", "np.min(a)", "distinct", shapes=ND1)
row(R, "amax", "np.amax(a)", "distinct", shapes=ND1)
row(R, "amin", "np.amin(a)", "distinct", shapes=ND1)
row(R, "max", "np.max(a, axis=0)", "distinct", shapes=ND2, form="axis=")
row(R, "cumsum", "np.cumsum(a)", shapes=ND1, f32=True)
row(R, "cumsum", "np.cumsum(a, axis=0)", shapes=ND2, form="axis=")
row(R, "cumprod", "np.cumprod(a)", "real", shapes=ND1, f32=True)
row(R, "cumprod", "np.cumprod(a * (a - 1.0))", "frac", readme=False, form="with zeros", shapes=((6,), (3, 4)),
    f32=True)
row(R, "cumprod", "np.cumprod(a, axis=0)", shapes=ND2, form="axis=")
row(R, "vdot", "np.vdot(a, b)", "real", "real", shapes=(((5,), (5,)),))
row(R, "vdot", "np.vdot(a, b)", "real", "real", shapes=(((3, 4), (3, 4)),), form="n-d operands",
    xfail="Numba compiles np.vdot for 1-d arrays only")
row(R, "trace", "np.trace(a)", shapes=((3, 4),))
row(R, "trace", "np.trace(a, offset=1) * np.trace(a, -1)", shapes=((3, 4), (3, 4, 2), (2, 3, 4, 2)), form="n-d, offset")
row(R, "np.linalg.norm", "np.linalg.norm(a)", "away", shapes=tuple(s for s in ND1 if len(s) < 3), f32=True)
row(R, "np.linalg.norm", "np.linalg.norm(a)", "away", shapes=((2, 3, 4),), form="3-d")
row(R, "np.linalg.norm", "np.linalg.norm(a, axis=0)", "away", shapes=ND2, form="axis=", f32=True)
row(R, "np.linalg.norm", "np.linalg.norm(a, axis=(0, -1), keepdims=True)", "away", shapes=ND2,
    form="axis=(i, j)")
row(R, "np.linalg.norm", "np.linalg.norm(a, 'fro', axis=(0, 1))", "away", shapes=ND2, readme=False,
    form="fro")
row(R, "np.linalg.norm", "np.linalg.norm(a, 1, axis=-1, keepdims=True)", "away", shapes=ND1, form="ord=1, axis=",
    f32=True)
row(R, "np.linalg.norm", "np.linalg.norm(a, np.inf, axis=0)", "dabs", shapes=ND1, form="ord=±inf, axis=")
row(R, "np.linalg.norm", "np.linalg.norm(a, -np.inf, axis=0)", "dabs", shapes=ND1, readme=False,
    form="ord=-inf")
row(R, "np.linalg.norm", "np.linalg.norm(a, 3, axis=0)", "away", shapes=ND1, form="ord=p, axis=")
row(R, "builtin max", "max(a, b)", "latA", "latB", shapes=((S, S),), readme=False)


@pytest.mark.parametrize("r,shapes,dtype", params(("reductions",)))
def test_op(r, shapes, dtype):
    run_case(r, shapes, dtype)
