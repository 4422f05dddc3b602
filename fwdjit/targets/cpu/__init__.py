"""The CPU target: user functions compiled with ``numba.njit``.

* :mod:`~fwdjit.targets.cpu.function`: :class:`FwdjitFunction` (what ``@fwdjit``
  returns: the primal, JVPs per activity pattern, vector mode) and the
  registry :func:`get_fwdjit`;
* :mod:`~fwdjit.targets.cpu.compile`: a generated FunctionDef in, a Numba
  dispatcher (plain code + float32 twin, in one hashed cache module) out;
* :mod:`~fwdjit.targets.cpu.entry`: the ``f.jvp`` shim, ``f.jvp`` inside
  ``@njit`` code, and :class:`FwdjitType` (an @fwdjit function's Numba type).

It imports the compiler, the rules and :mod:`fwdjit.targets.base`; never
:mod:`fwdjit.api` nor the CUDA target.
"""
from .compile import numpy_scalars
from .entry import FwdjitType, is_lowrank_type
from .function import FwdjitFunction, get_fwdjit, int_params

__all__ = ["FwdjitFunction", "FwdjitType", "get_fwdjit", "int_params", "is_lowrank_type", "numpy_scalars"]
