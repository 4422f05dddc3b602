"""The CUDA target's generated code goes through numba-cuda's real compiler (typing, lowering, NVVM -> PTX).

The simulator (tests/test_cuda.py) runs device code as Python, so it cannot
tell whether numba-cuda can compile it (``np.exp`` on a scalar, for example,
runs in the simulator but does not lower for the GPU).  These tests compile
every generated device function and kernel to PTX for compute capability 9.0.
No GPU is needed: they need numba-cuda and NVVM (``pip install
'numba-cuda[cu13]'`` or a CUDA toolkit); without them, or under the
simulator, they are skipped.  Without a GPU, numba-cuda's "current device"
lookup (used only for the target compute capability) is stubbed out while a
test runs.
"""
import os
import sys
import types as pytypes

import pytest
from numba import types    # the signature tables below are built even when the tests skip

from located import CC, ptx_ok

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

_OK, _WHY = ptx_ok(CC)
pytestmark = [pytest.mark.skipif(not _OK, reason=_WHY),
              pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaWarning")]

if _OK:
    import numba
    from numba import cuda

    import cuda_functions as CF
    from fwdjit.targets.cuda import cuda_fwdjit
else:
    CF = None


@pytest.fixture(autouse=True)
def _target_device():
    """Compile for CC 9.0 even without a GPU (numba-cuda asks the current device for its CC)."""
    if not _OK or cuda.is_available():
        yield
        return
    import numba.cuda.dispatcher as D
    saved = D.get_current_device
    D.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=CC)
    try:
        yield
    finally:
        D.get_current_device = saved


def _ptx_of_device(dev, argtypes):
    cres = dev.compile_device(tuple(argtypes))
    ptx = cres.library.get_asm_str(cc=CC)
    assert ".func" in ptx or ".visible" in ptx
    return cres.signature


def _scalar_types(specs, fty):
    out = []
    for s in specs:
        if isinstance(s, bool):
            out.append(types.boolean)
        elif isinstance(s, int):
            out.append(types.int64)
        else:
            out.append(fty)
    return out


def _cases():
    return CF.SCALAR_CASES if CF else []


@pytest.mark.parametrize("fty", ["float64", "float32"])
@pytest.mark.parametrize("case", _cases(), ids=[CF.case_id(c) for c in _cases()] if CF else [])
def test_device_functions_compile_to_ptx(case, fty):
    fn, specs = case
    nty = getattr(types, fty)
    variant = "f32" if fty == "float32" else "plain"
    g = cuda_fwdjit(fn)
    argtypes = _scalar_types(specs, nty)
    mask = tuple(t in (types.float64, types.float32) for t in argtypes)
    sig = _ptx_of_device(g.unit.device("primal", None, variant), argtypes)
    sig_t = _ptx_of_device(g.unit.device("jvp", mask, variant),
                           argtypes + [t for t, m in zip(argtypes, mask) if m])
    out_t, dout_t = sig_t.return_type.types
    assert str(out_t) == str(sig.return_type)


def _arr(ty):
    return ty[::1]


@pytest.mark.parametrize("case", _cases()[:6] + _cases()[-4:] if CF else [],
                         ids=[CF.case_id(c) for c in (_cases()[:6] + _cases()[-4:])] if CF else [])
def test_elementwise_kernels_compile_to_ptx(case):
    fn, specs = case
    g = cuda_fwdjit(fn)
    kinds = tuple("s" if isinstance(s, (bool, int)) else "a" for s in specs)
    argtypes = [types.float64[::1] if k == "a" else t for k, t in zip(kinds, _scalar_types(specs, types.float64))]
    mask = tuple(k == "a" for k in kinds)
    # typing gives the outputs (as jvp_map does on a GPU)
    sig = g.unit.device("jvp", mask, "plain").compile_device(
        tuple(types.float64 if k == "a" else t for k, t in zip(kinds, argtypes))
        + tuple(types.float64 for m in mask if m))
    out_t = sig.signature.return_type.types[0]
    nout = len(out_t.types) if isinstance(out_t, types.BaseTuple) else 1
    g._tuple_out_v = isinstance(out_t, types.BaseTuple)
    outs = [types.float64[::1]] * nout
    ints = [types.int64[::1] if isinstance(t, types.Integer) else types.float64[::1]
            for t in (out_t.types if isinstance(out_t, types.BaseTuple) else [out_t])]
    k = g._map_kernel("jvp", "plain", kinds + tuple("a" if m else None for m in mask), mask, nout)
    ksig = tuple(argtypes) + tuple(types.float64[::1] for m in mask if m) + tuple(ints) + tuple(outs)
    ptx, _ = cuda.compile_ptx(k.py_func, ksig, cc=CC)
    assert ".entry" in ptx
    argnums = tuple(j for j, m in enumerate(mask) if m)
    k = g._map_kernel("jac", "plain", kinds, argnums, nout)
    ksig = tuple(argtypes) + tuple(ints) + tuple(outs) * len(argnums)
    ptx, _ = cuda.compile_ptx(k.py_func, ksig, cc=CC)
    assert ".entry" in ptx
    if nout == 1 and not g._tuple_out_v:
        from numba.cuda.random import xoroshiro128p_dtype
        st = numba.from_dtype(xoroshiro128p_dtype)[::1]
        k = g._map_kernel("fgrad", "plain", kinds, argnums, 1)
        ksig = tuple(argtypes) + (st, types.int64, types.float64[::1]) + (types.float64[::1],) * len(argnums)
        ptx, _ = cuda.compile_ptx(k.py_func, ksig, cc=CC)
        assert ".entry" in ptx


_F64 = types.float64
_KERNEL_SIGS = {
    "k_saxpy_sin": (_F64, _arr(_F64), _arr(_F64), _arr(_F64)),
    "k_local_atomic": (_F64, _arr(_F64), _arr(_F64), _arr(_F64)) if _OK else None,
    "k_grid2d": (_F64[:, ::1], _F64[:, ::1], _F64[:, ::1]) if _OK else None,
    "k_block_sum": (_arr(_F64), _arr(_F64)) if _OK else None,
    "k_rk4_lorenz": (_arr(_F64), _arr(_F64), _arr(_F64), _F64[:, ::1], _F64, types.int64) if _OK else None,
} if _OK else {}


@pytest.mark.parametrize("name", sorted(_KERNEL_SIGS))
def test_tangent_kernels_compile_to_ptx(name):
    fn = getattr(CF, name)
    k = cuda_fwdjit(fn)
    sig = _KERNEL_SIGS[name]
    mask = tuple(isinstance(t, types.Array) or t == types.float64 for t in sig)
    for kind, m in (("primal", None), ("jvp", mask)):
        kern = k.unit.device(kind, m, "plain")
        full = tuple(sig) + (tuple(t for t, a in zip(sig, m) if a) if m else ())
        ptx, resty = cuda.compile_ptx(kern.py_func, full, cc=CC)
        assert ".entry" in ptx and resty == types.void


def test_rewritten_numpy_calls_lower_for_float32():
    g = cuda_fwdjit(CF.np_rewrites)
    sig = _ptx_of_device(g.unit.device("jvp", (True, True), "f32"), [types.float32] * 4)
    assert sig.return_type == types.UniTuple(types.float32, 2)
