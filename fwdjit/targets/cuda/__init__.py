"""CUDA target: the same tangent code, compiled for NVIDIA GPUs by Numba's CUDA target.

``@fwdjit(target="cuda")`` (or :func:`cuda_fwdjit`) transforms a function with
the same passes as the CPU target, then compiles the primal and the tangent
with ``numba.cuda.jit(device=True)``; functions it calls become device
functions too.  Two kinds of functions are handled:

* **scalar functions** (floats and ints in, floats out; loops, branches, math
  calls, calls to other user functions).  They get elementwise kernels over
  arrays of inputs, like ``numba.vectorize(target="cuda")`` with derivatives::

      f(x, y)                                   # values, elementwise
      out, dout = f.jvp_map((x, y), (dx, None)) # values and tangents
      out, (dx, dy) = f.jacobian_map((x, y))    # one JVP per argument, one launch
      out, grads = f.forward_gradient((x, y), num_directions=8, seed=0)

  Inputs are NumPy arrays (copied to the GPU and back), device arrays
  (results stay on the device) or scalars (broadcast).  ``f.device_function``
  and ``f.tangent_device_function(active)`` are the device functions
  themselves, callable from the user's own kernels.

* **kernels** (no ``return`` of a value; ``cuda.grid`` indexing over arrays).
  ``f[blocks, threads](*args)`` launches the (primal) kernel;
  ``f[blocks, threads].jvp(primals, tangents)`` launches the tangent kernel,
  which takes a tangent array beside every differentiable array (``None`` for
  the others: thread indices and integers carry no tangent).

Nothing here imports ``numba.cuda`` until it is used, so ``import fwdjit``
works without numba-cuda (``pip install 'fwdjit[cuda]'``).  Under Numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) everything runs as Python, which
is how the tests run on machines without a GPU.

Device code cannot allocate arrays or call array-level NumPy functions: such
calls are reported when the function is transformed, with file and line.
NumPy ufuncs that numba-cuda cannot lower on scalars (``np.exp``,
``np.sqrt``, ``np.sign``...) are rewritten to ``math`` functions or small
helpers in the generated device code.  What numba-cuda's compiler still refuses
(a type error, a call it has no version of) is reported when the code compiles
(a call, a launch, or the compile of a kernel of yours that calls a device
function) as a :class:`~fwdjit.errors.CompileError` at the user's line, with
Numba's text in its ``numba_message`` and ``__cause__``.

The package, by concern (imports point down this list):

* :mod:`~fwdjit.targets.cuda.intrinsics`: ``numba.cuda`` imported lazily, rules of its intrinsics;
* :mod:`~fwdjit.targets.cuda.devicecode`: what device code may call; the NumPy -> ``math`` rewrite;
* :mod:`~fwdjit.targets.cuda.device`: units (a user function's device functions and kernels);
* :mod:`~fwdjit.targets.cuda.host`: host-side inputs and outputs of the elementwise launches;
* :mod:`~fwdjit.targets.cuda.kernels`: the generated elementwise kernels;
* :mod:`~fwdjit.targets.cuda.function`: :class:`CudaFwdjitFunction` and :func:`cuda_fwdjit`.
"""
from .function import CudaFwdjitFunction, cuda_fwdjit
from .intrinsics import is_available, simulator_enabled

__all__ = ["CudaFwdjitFunction", "cuda_fwdjit", "simulator_enabled", "is_available"]
