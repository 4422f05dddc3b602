"""Callees: which objects a call can reach are user functions that fwdjit transforms.

Input: the object a call's name resolves to; output: the Python function whose
source fwdjit transforms for it, or ``None`` (library functions, black boxes).
The compiler asks this when it meets a call; each target compiles the answer
its own way (the CPU target as a Numba dispatcher, CUDA as a device function).

>>> import numpy as np
>>> def g(x):
...     return x
>>> user_python_function(g) is g, user_python_function(np.sin), user_python_function(len)
(True, None, None)
"""
from __future__ import annotations

import types

__all__ = ["user_python_function"]

# modules whose functions are library code, never transformed as user functions
_LIBRARY = ("numpy", "math", "numba", "numba_cuda")
# device code is compiled from the user's own source only: not from fwdjit's modules
# (models, runtime helpers) nor from the CPU code fwdjit generated
_NOT_DEVICE = _LIBRARY + ("fwdjit", "fwdjit_generated")


def user_python_function(obj, device=False):
    """The Python function behind a user callee, or ``None`` for anything else.

    A plain function is itself; a Numba dispatcher gives its Python function
    (for one fwdjit compiled, its plain generated function, not the entry
    stub).  ``device=True`` (the CUDA target) also unwraps fwdjit functions of
    either target (anything whose class has ``fwdjit_target``) and CUDA
    dispatchers, and leaves out fwdjit's own modules and generated code.
    """
    if device and getattr(type(obj), "fwdjit_target", None) is not None:
        return obj.py_func
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover
        Dispatcher = ()
    if isinstance(obj, Dispatcher):
        fn = getattr(obj, "_fwdjit_plain", None) or obj.py_func
    elif device and type(obj).__name__ == "FakeCUDAKernel":           # the simulator's cuda.jit
        fn = getattr(obj, "fn", None)
    elif device and hasattr(obj, "py_func") and hasattr(obj, "targetoptions"):
        fn = obj.py_func                                                # cuda.jit dispatchers
    elif isinstance(obj, types.FunctionType):
        fn = obj
    else:
        return None
    if not isinstance(fn, types.FunctionType):
        return None
    mod = getattr(fn, "__module__", "") or ""
    if mod.split(".")[0] in (_NOT_DEVICE if device else _LIBRARY) or mod == "fwdjit.runtime":
        return None
    return fn
