"""fwdjit: forward-mode automatic differentiation by source transformation, compiled with Numba.

>>> import numpy as np
>>> from fwdjit import fwdjit
>>> @fwdjit
... def f(x):
...     return np.sum(np.sin(x) * x)
>>> y, dy = f.jvp((np.ones(3),), (np.ones(3),))
"""
from . import runtime  # noqa: F401  (registers the helpers generated code calls)
from ._version import __version__
from .api import FwdjitFunction, defjvp, get_fwdjit, jvp
from .api import fwdjit as _fwdjit_decorator
from .rules.lowrank import LowRank
from .errors import (CompileError, Float32PromotionWarning, FwdjitError, InternalError, TangentError, TangentMismatch, TransformError, UnsupportedCall,
                     UnsupportedSyntax)


def fwdjit(func=None, *, fastmath=False, cache=True, parallel=False, target="cpu", fuse=None):
    """Decorator: compile ``func`` and give it forward-mode derivatives.

    ``@fwdjit`` or ``@fwdjit(fastmath=False, cache=True, parallel=False, target="cpu")``;
    ``target="cuda"`` gives CUDA device functions and kernels (:mod:`fwdjit.targets.cuda`).
    ``f(*args)`` runs the compiled primal, ``f.jvp(primals, tangents)`` returns
    ``(out, dout)`` (both also inside ``@numba.njit`` code), ``f.tangent_source`` shows the generated code and
    ``f.tangent_function(active)`` gives the Numba dispatcher of the JVP.
    ``fuse=False`` (or ``FWDJIT_FUSE=0`` in the environment) turns off the loop fusion of
    reductions of elementwise code (:mod:`fwdjit.compiler.fuse`; the CUDA target never fuses).
    """
    if target == "cuda":     # the CUDA target imports the CPU one, never the other way round
        if parallel:
            raise FwdjitError("parallel=True is for the CPU target (CUDA kernels are parallel already)")
        from .targets.cuda import cuda_fwdjit        # numba.cuda itself is imported on first compile
        return cuda_fwdjit(func, fastmath=fastmath, cache=cache)
    return _fwdjit_decorator(func, fastmath=fastmath, cache=cache, parallel=parallel, target=target, fuse=fuse)


from .derivatives import grad, hessian, hvp, jacfwd, vhv  # noqa: E402

fwdjit.jvp = jvp
fwdjit.jacfwd = jacfwd
fwdjit.grad = grad
fwdjit.hvp = hvp
fwdjit.vhv = vhv
fwdjit.hessian = hessian
fwdjit.defjvp = defjvp
fwdjit.LowRank = LowRank
fwdjit.FwdjitError = FwdjitError
fwdjit.TangentError = TangentError
fwdjit.UnsupportedSyntax = UnsupportedSyntax
fwdjit.UnsupportedCall = UnsupportedCall
fwdjit.CompileError = CompileError
fwdjit.InternalError = InternalError

__all__ = ["fwdjit", "LowRank", "jvp", "defjvp", "jacfwd", "grad", "hvp", "vhv", "hessian", "FwdjitFunction", "FwdjitError", "TransformError", "UnsupportedSyntax",
           "UnsupportedCall", "CompileError", "InternalError", "TangentError", "TangentMismatch", "Float32PromotionWarning", "get_fwdjit", "__version__"]

from .training.estimator import forward_grad, forward_grad_function  # noqa: E402
from .training.loop import SGD, Adam, Momentum, TrainResult, train  # noqa: E402

fwdjit.forward_grad = forward_grad
fwdjit.forward_grad_function = forward_grad_function
fwdjit.train = train
__all__ += ["forward_grad", "forward_grad_function", "train", "TrainResult", "SGD", "Momentum", "Adam"]

from .training.blas import blas_threads, get_blas_threads, set_blas_threads  # noqa: E402

fwdjit.set_blas_threads = set_blas_threads
fwdjit.get_blas_threads = get_blas_threads
fwdjit.blas_threads = blas_threads
__all__ += ["set_blas_threads", "get_blas_threads", "blas_threads"]
