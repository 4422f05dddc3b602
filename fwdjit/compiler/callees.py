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

import ast
import types

from .. import rules as R
from ..errors import UnsupportedCall, UnsupportedSyntax
from .resolve import MISSING, resolve_attr

__all__ = ["user_python_function", "Resolver"]

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
    if mod.split(".")[0] in (_NOT_DEVICE if device else _LIBRARY) or mod == "fwdjit.runtime" or mod.startswith("fwdjit.runtime."):
        return None
    return fn


class Resolver:
    """Classifies calls: rule, method, user function (transformed) or black box."""

    def __init__(self, info, registry=None, compiled=None):
        self.info = info
        self.registry = registry   # callable: python function -> FwdjitFunction
        self.compiled = compiled   # callable: object -> the FwdjitFunction it already is, or None

    def classify(self, node):
        func = node.func
        obj = resolve_attr(self.info, func)
        if obj is None and isinstance(func, ast.Attribute):
            return "method", func.attr, R.METHOD_RULES.get(func.attr)
        if obj is None or obj is MISSING:
            raise self.info.error(UnsupportedCall, node, f"cannot resolve the function called here ({ast.unparse(func)})",
                                  hint="call a module-level function, a NumPy/math function or an array method",
                                  construct="unresolved call")
        user_rule = R.USER_RULES.get(obj) if R.hashable(obj) else None
        if user_rule is not None:
            return "rule", obj, user_rule
        fj = self.compiled(obj) if self.compiled is not None else None
        if fj is not None:
            return "user", fj, None
        rule = R.lookup(obj)
        if rule is not None:
            return "rule", obj, rule
        py = user_python_function(obj)
        if py is not None and self.registry is not None:
            return "user", self.registry(py), None
        return "blackbox", obj, None

    def effective_mask(self, callee, mask, node):
        try:
            return callee.effective_mask(mask)
        except RecursionError:
            raise self.info.error(UnsupportedSyntax, node, "recursive function calls are not supported",
                                  hint="write the recursion as a loop", construct="recursion") from None
