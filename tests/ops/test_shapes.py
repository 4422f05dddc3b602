"""The per-operation matrix: creation, shape functions and array methods (see harness.py)."""
import pytest

from .harness import ND1, ND2, ND3, S, params, row, run_case

C = "creation"
row(C, "zeros", "np.zeros(3) + a", shapes=(S,), quick=False)
row(C, "ones", "np.ones((2, 3)) * a", shapes=(S,), quick=False)
row(C, "empty", "e = np.empty(a.shape)\ne[:] = a * 2.0\nreturn e", shapes=((5,),), quick=False)
row(C, "full", "np.full(4, a)", shapes=(S,), f32=True)
row(C, "full", "np.full((2, 3), a)", shapes=(S,), readme=False)
row(C, "zeros_like", "np.zeros_like(a) + a", shapes=((5,),), quick=False)
row(C, "ones_like", "np.ones_like(a) * a", shapes=((3, 4),), quick=False)
row(C, "empty_like", "e = np.empty_like(a)\ne[:] = a * a\nreturn e", shapes=((5,),), quick=False)
row(C, "full_like", "np.full_like(b, a)", "real", "real", shapes=((S, (5,)),), quick=False)
row(C, "copy", "np.copy(a) * a", shapes=((5,), (3, 4)))
row(C, "arange", "np.arange(5) * a", shapes=(S, (5,)), quick=False,
    xfail32="Numba types int64 array * float32 as float32, NumPy as float64 (README: known differences)")
row(C, "eye", "np.eye(3) * a", shapes=(S,), quick=False)
row(C, "identity", "np.identity(3) * a", shapes=(S,), quick=False)
row(C, "linspace", "np.linspace(a, b, 5)", "real", "real", shapes=((S, S),), f32=True)
row(C, "linspace", "np.linspace(0.0, b, 5)", "real", "real", shapes=((S, S),), f32=True, readme=False,
    form="a number and a float")
row(C, "array((a, b, ...))", "np.array((a, b, a * b))", "real", "real", shapes=((S, S),), f32=True)

H = "shape"
WT14N = "Numba cannot compile np.squeeze; fwdjit/npimpl (issue #14, wt14n) implements it"
row(H, "reshape", "np.reshape(a, (4, 3))", shapes=((3, 4), (12,)))
row(H, "ravel", "np.ravel(a)", shapes=ND1)
row(H, "concatenate", "np.concatenate((a, b))", "real", "real", shapes=(((5,), (3,)), ((3, 4), (2, 4))))
row(H, "concatenate", "np.concatenate((a, b), axis=1)", "real", "real", shapes=(((3, 4), (3, 2)),), form="axis=")
row(H, "stack", "np.stack((a, b))", "real", "real", shapes=(((5,), (5,)), ((3, 4), (3, 4))))
row(H, "hstack", "np.hstack((a, b))", "real", "real", shapes=(((5,), (3,)), ((3, 4), (3, 2))))
row(H, "vstack", "np.vstack((a, b))", "real", "real", shapes=(((5,), (5,)), ((3, 4), (2, 4))))
row(H, "squeeze", "np.squeeze(a)", shapes=((3, 1, 4),), xfail="squeeze without axis is refused: the result's ndim would depend on the shape's values (fwdjit.npimpl); squeeze(a, axis) works")
row(H, "expand_dims", "np.expand_dims(a, 1)", shapes=ND1)
row(H, "flip", "np.flip(a)", shapes=ND1)
row(H, "diag", "np.diag(a)", shapes=((5,), (3, 4)))
row(H, "diagonal", "np.diagonal(a)", shapes=ND2, f32=True)      # fwdjit.npimpl: Numba has no np.diagonal
row(H, "diagonal", "np.diagonal(a, 1, -1, 0)", shapes=((3, 4), (3, 4, 5)), form="offset, axis1, axis2")
row(H, "sort", "np.sort(a)", "distinct", shapes=((6,),))
# the order of the elements on either side of kth is NumPy's implementation detail: compared sorted
row(H, "partition", "p = np.partition(a, 2)\nreturn p[..., 2], np.sort(p[..., :2].ravel()), np.sort(p[..., 3:].ravel())",
    "distinct", shapes=((6,),), f32=True)
row(H, "partition", "p = np.partition(a, 2)\nreturn p[..., 2], np.sum(p[..., :2] ** 2), np.sum(p[..., 3:] ** 3)",
    "distinct", shapes=((3, 5), (2, 3, 4)), readme=False, form="n-d")
row(H, "moveaxis", "np.moveaxis(a, 0, -1)", shapes=ND2, f32=True)
row(H, "swapaxes", "np.swapaxes(a, 0, -1)", shapes=ND2, f32=True)
row(H, "tril", "np.tril(a)", shapes=ND2, f32=True)
row(H, "tril", "np.tril(a, -1)", shapes=((3, 4),), form="k")
row(H, "triu", "np.triu(a)", shapes=ND2)
row(H, "triu", "np.triu(a, 1)", shapes=((3, 4),), form="k")
row(H, "atleast_1d", "np.atleast_1d(a)", shapes=(S, (5,)), f32=True)
row(H, "atleast_2d", "np.atleast_2d(a)", shapes=(S, (5,), (3, 4)))
row(H, "atleast_3d", "np.atleast_3d(a)", shapes=(S, (5,), (3, 4), (2, 3, 4)), f32=True)
row(H, "rot90", "np.rot90(a)", shapes=ND2, f32=True)
row(H, "rot90", "np.rot90(a, 3)", shapes=((3, 4),), form="k")
row(H, "rot90", "np.rot90(a, 1, (1, 2))", shapes=ND3, form="axes",
    xfail="Numba's np.rot90 takes no axes argument")
row(H, "roll", "np.roll(a, 2)", shapes=ND1, f32=True)
row(H, "roll", "np.roll(a, -1, axis=0)", shapes=ND2, form="axis=", f32=True)   # fwdjit.npimpl
row(H, "roll", "np.roll(a, 5, axis=-1) * np.roll(a, -2, 1)", shapes=ND2, form="axis=", readme=False)
row(H, "split", "s = np.split(a, 3)\nreturn s[0], s[2] * s[1]", shapes=((6,), (3, 4)), f32=True)
row(H, "split", "s = np.split(a, (1, 3), axis=1)\nreturn s[0], s[2]", shapes=((3, 4),), form="axis=")
row(H, "array_split", "s = np.array_split(a, 3)\nreturn s[0], s[2]", shapes=((7,), (5, 2)), f32=True)
row(H, "hsplit", "s = np.hsplit(a, 2)\nreturn s[0], s[1]", shapes=((6,), (3, 4)))
row(H, "vsplit", "s = np.vsplit(a, 3)\nreturn s[0], s[1]", shapes=((3, 4), (3, 2, 2)))
row(H, "append", "np.append(a, b)", "real", "real", shapes=(((5,), (3,)), ((3, 4), S)), f32=True)
row(H, "append", "np.append(a, b, axis=0)", "real", "real", shapes=(((3, 4), (2, 4)),), form="axis=")
row(H, "append", "np.append(((a, b),), ((b, a), (a, a)), axis=0)", "real", "real", shapes=((S, S),), readme=False,
    form="tuples")

MT = "methods"
row(MT, ".sum()", "a.sum()", shapes=ND1, f32=True)
row(MT, ".sum()", "a.sum(axis=0)", shapes=ND2, form="axis=")
row(MT, ".mean()", "a.mean()", shapes=ND1, quick=False)
row(MT, ".prod()", "a.prod()", "pos", shapes=ND1, quick=False)
row(MT, ".max()", "a.max()", "distinct", shapes=ND1, f32=True)
row(MT, ".min()", "a.min()", "distinct", shapes=ND1, quick=False)
row(MT, ".cumsum()", "a.cumsum()", shapes=ND1, quick=False)
row(MT, ".copy()", "a.copy()", shapes=ND1, quick=False)
row(MT, ".reshape()", "a.reshape((2, 6))", shapes=((3, 4),))
row(MT, ".ravel()", "a.ravel()", shapes=ND1, quick=False)
row(MT, ".flatten()", "a.flatten()", shapes=ND1, quick=False)
row(MT, ".transpose()", "a.transpose()", shapes=ND1, quick=False)
row(MT, ".swapaxes()", "a.swapaxes(0, 1)", shapes=ND2, f32=True)
row(MT, ".astype()", "a.astype(np.float64)", shapes=ND1, quick=False)
row(MT, ".dot()", "a.dot(b)", "real", "real", shapes=(((3, 4), (4,)),), quick=False)
row(MT, ".T", "a.T", shapes=ND2, quick=False)
row(MT, ".clip()", "a.clip(-0.65, 0.85)", "latA", shapes=ND1, f32=True)
row(MT, ".clip()", "a.clip(max=0.85)", "latA", shapes=ND1, readme=False, form="one bound")
row(MT, ".shape .size .ndim", "a * (a.shape[0] + a.size + a.ndim)", shapes=ND1, quick=False)


@pytest.mark.parametrize("r,shapes,dtype", params(("creation", "shape", "methods")))
def test_op(r, shapes, dtype):
    run_case(r, shapes, dtype)
