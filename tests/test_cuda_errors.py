"""The CUDA target's compile failures are located fwdjit errors, as on the CPU (tests/test_compile_errors.py).

When numba-cuda cannot compile generated code (a type error, a call it does not
support in device code), the user gets a :class:`~fwdjit.errors.CompileError`
that starts with their file:line (marked ``# <- key`` below), shows the line
with a caret, says what failed, fits in a few lines, and keeps Numba's text as
``__cause__`` and ``.numba_message``.

* The conversion itself (:func:`fwdjit.targets.cuda.device.located_compile`)
  runs everywhere, the simulator included: its compile step is Numba's CPU
  compiler on the generated CUDA code, which fails with a real TypingError
  naming the generated CUDA file.
* Every compile path of the real compiler (device functions, their callers,
  kernels, elementwise kernels, the user's own kernels) needs numba-cuda and
  NVVM, no GPU: without them, or under the simulator, those tests skip.
"""
import importlib
import math
import os
import types as pytypes

import numba
import pytest
from numba import types
from numba.core.errors import NumbaError, TypingError

from fwdjit.errors import CompileError
from located import CC, assert_located_message, ptx_ok

THIS_FILE = os.path.abspath(__file__)


def _cuda_importable():
    try:
        importlib.import_module("numba.cuda")
    except Exception as exc:   # numba-cuda missing
        return False, f"numba.cuda cannot be imported ({exc})"
    return True, ""


_IMPORTABLE, _WHY_NOT_IMPORTABLE = _cuda_importable()
_PTX, _WHY_NO_PTX = ptx_ok(CC) if _IMPORTABLE else (False, _WHY_NOT_IMPORTABLE)
needs_cuda = pytest.mark.skipif(not _IMPORTABLE, reason=_WHY_NOT_IMPORTABLE)
needs_compiler = pytest.mark.skipif(not _PTX, reason=_WHY_NO_PTX)
pytestmark = pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaWarning")

if _IMPORTABLE:
    from numba import cuda

    from fwdjit.targets.cuda import cuda_fwdjit
    from fwdjit.targets.cuda.device import located_compile
else:   # keep the names used in the functions below defined
    cuda = pytypes.SimpleNamespace(grid=None)


def assert_located(exc, key, *named):
    """``exc`` is a short CompileError at the marked line, naming ``named``, from Numba's error."""
    msg = str(exc)
    assert isinstance(exc, CompileError), (type(exc), msg)
    assert_located_message(exc, THIS_FILE, key, *named, max_lines=12,
                           numba_words=("array(float64", "UniTuple"))    # NumPy's words
    assert isinstance(exc.__cause__, NumbaError), type(exc.__cause__)
    assert exc.numba_message.startswith(str(exc.__cause__)), exc.numba_message


# ------------------------------------------------------------ user functions
def tuple_add(x, w):
    z = x * w
    return math.sin(z) + (1.0, 2.0)  # <- tuple-add


def calls_tuple_add(x, w):
    return 2.0 * tuple_add(x, w)


def int_math(x, n):
    return x * math.gcd(n, 3)  # <- gcd


def k_tuple_add(x, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = math.sin(x[i]) + (1.0, 2.0)  # <- kernel-tuple-add


# ------------------------------------- the conversion (simulator included)
def _on_cpu(dev):
    """A compile step for ``dev``'s generated CUDA code: Numba's CPU compiler, for argument types."""
    def compile_on_cpu(argtypes):
        return numba.njit(argtypes)(dev.py_func)
    return compile_on_cpu


@needs_cuda
@pytest.mark.parametrize("kind", ["primal", "jvp"])
def test_numba_failure_becomes_located_error(kind):
    unit = cuda_fwdjit(tuple_add).unit
    mask, n = (None, 2) if kind == "primal" else ((True, True), 4)
    dev = unit.device(kind, mask, "plain")
    compile_ = located_compile(_on_cpu(dev), unit, "CUDA device function tuple_add")
    with pytest.raises(CompileError) as info:
        compile_((types.float64,) * n)
    assert_located(info.value, "tuple-add", "float + tuple of 2 floats",
                   f"in CUDA device function tuple_add, compiled for ({', '.join(['float'] * n)})")
    assert isinstance(info.value.__cause__, TypingError)
    assert info.value.__cause__.__traceback__ is None
    assert dev._fwdjit_path in info.value.numba_message     # located through the generated CUDA file


@needs_cuda
def test_other_errors_pass_unchanged():
    unit = cuda_fwdjit(tuple_add).unit
    driver = RuntimeError("CUDA driver library cannot be found")
    with pytest.raises(CompileError) as located:
        located_compile(_on_cpu(unit.device("primal", None, "plain")), unit, "CUDA device function tuple_add")(
            (types.float64, types.float64))
    for exc in (driver, located.value):       # not a compile failure; a callee's error, already located
        def fails(argtypes, exc=exc):
            raise exc
        cause = exc.__cause__
        with pytest.raises(type(exc)) as info:
            located_compile(fails, unit, "CUDA device function tuple_add")((types.float64, types.float64))
        assert info.value is exc and info.value.__cause__ is cause


# ------------------------------------------------------ the real compiler
@pytest.fixture
def target_device():
    """Compile for CC 9.0 even without a GPU (numba-cuda asks the current device for its CC)."""
    if cuda.is_available():
        yield
        return
    import numba.cuda.dispatcher as D
    saved = D.get_current_device
    D.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=CC)
    try:
        yield
    finally:
        D.get_current_device = saved


F64 = (types.float64,)


@needs_compiler
@pytest.mark.parametrize("kind", ["primal", "jvp"])
def test_device_function_type_error(target_device, kind):
    g = cuda_fwdjit(tuple_add)
    dev, n = (g.device_function, 2) if kind == "primal" else (g.tangent_device_function(), 4)
    with pytest.raises(CompileError) as info:
        dev.compile_device(F64 * n)
    assert_located(info.value, "tuple-add", "tuple of 2 floats",
                   f"in CUDA device function tuple_add, compiled for ({', '.join(['float'] * n)})")
    assert isinstance(info.value.__cause__, TypingError)
    assert "UniTuple(float64 x 2)" in info.value.numba_message


@needs_compiler
def test_call_numba_cuda_does_not_support(target_device):
    with pytest.raises(CompileError) as info:
        cuda_fwdjit(int_math).device_function.compile_device((types.float64, types.int64))
    assert_located(info.value, "gcd", "Unknown attribute 'gcd'", "hint: Numba does not know this attribute")


@needs_compiler
def test_callee_failure_is_located_in_the_callee(target_device):
    with pytest.raises(CompileError) as info:
        cuda_fwdjit(calls_tuple_add).tangent_device_function().compile_device(F64 * 4)
    assert_located(info.value, "tuple-add", "tuple of 2 floats", "CUDA device function tuple_add")


@needs_compiler
@pytest.mark.parametrize("kind", ["primal", "jvp"])
def test_kernel_type_error(target_device, kind):
    k = cuda_fwdjit(k_tuple_add, cache=False)      # Numba's disk cache would ask the driver for its key
    arr = types.float64[::1]
    kern, sig = ((k.device_function, (arr, arr)) if kind == "primal" else
                 (k.unit.device("jvp", (True, True), "plain"), (arr,) * 4))
    with pytest.raises(CompileError) as info:
        kern.compile(sig)
    assert_located(info.value, "kernel-tuple-add", "tuple of 2 floats", "in CUDA kernel k_tuple_add",
                   f"compiled for ({', '.join(['float64 1-d array'] * len(sig))})")


@needs_compiler
def test_elementwise_kernel_reports_the_device_function(target_device):
    g = cuda_fwdjit(tuple_add, cache=False)
    kernel = g._map_kernel("jvp", "plain", ("a", "s", "a", None), (True, False), 1)
    arr = types.float64[::1]
    with pytest.raises(CompileError) as info:
        kernel.compile((arr, types.float64, arr, arr, arr))
    assert_located(info.value, "tuple-add", "tuple of 2 floats", "CUDA device function tuple_add")


@needs_compiler
def test_users_own_kernel_calling_the_device_function(target_device):
    dev = cuda_fwdjit(int_math).device_function

    def users_kernel(x, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = dev(x[i], 3)
    with pytest.raises(CompileError) as info:
        cuda.compile_ptx(users_kernel, (types.float64[::1],) * 2, cc=CC)
    assert_located(info.value, "gcd", "Unknown attribute 'gcd'", "compiled for (float, int)")
