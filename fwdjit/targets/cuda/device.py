"""Units: one user function compiled for the CUDA target, as device functions or kernels.

Input: a Python function (its source, resolved and validated by the compiler);
output: CUDA device functions (or, for functions that return nothing, kernels)
of its primal and of its JVP for each activity mask, in a ``plain`` and a
``f32`` variant, compiled by ``numba.cuda.jit`` from a generated module in the
cache folder.  Callees become units too; they are bound in the generated code
as :class:`_DeviceRef` and compiled in the same variant.

The passes are the compiler's pipeline (:func:`fwdjit.compiler.primal`,
:func:`fwdjit.compiler.jvp`) with device-code subclasses of its generators and
:class:`CudaResolver` for intrinsics and callees, then ``float32_twin`` and
:func:`~fwdjit.targets.cuda.devicecode.device_rewrite`.  What numba-cuda's compiler
then refuses comes back as fwdjit's located ``CompileError`` (:func:`located_compiles`).
"""
from __future__ import annotations

import ast
import copy
import functools
import math
import types as pytypes

import numpy as np
from numba.core.dispatcher import Dispatcher

from ... import compiler
from ... import rules as R
from ..._version import __version__
from ...compiler.float32 import float32_twin
from ...compiler.primal import PrimalGen
from ...compiler.resolve import MISSING, parse_function, resolve_attr
from ...compiler.callees import Resolver
from ...compiler.render import render
from ...compiler.tangent import TangentGen
from ...compiler.validate import validate
from ...errors import TangentError, UnsupportedSyntax
from ..base import TargetFunction, cached, user_python_function
from ..cache import HEADER, load_module, namespace_key
from ..numba_errors import compile_error, is_numba_error, numpy_type
from .devicecode import check_device_code, device_rewrite
from .intrinsics import ALLOC_PATHS, LOCK, cuda_module, cuda_path, path_rule, simulator_enabled

__all__ = ["CudaResolver", "CudaUnit", "get_unit", "located_compile", "located_compiles"]


class CudaResolver(Resolver):
    """Classifies calls for device code: CUDA intrinsics by path, user callees as CUDA units."""

    def __init__(self, info, unit):
        super().__init__(info, registry=lambda py: get_unit(py, unit.options))
        self.unit = unit

    def classify(self, node):
        path = cuda_path(self.info, node.func)
        if path is not None:
            rule = path_rule(path)
            return ("rule", "cuda." + path, rule) if rule is not None else ("blackbox", "cuda." + path, None)
        obj = resolve_attr(self.info, node.func)
        if obj is not None and obj is not MISSING and R.hashable(obj) and obj in R.USER_RULES:
            return "rule", obj, R.USER_RULES[obj]
        py = user_python_function(obj, device=True) if obj is not None and obj is not MISSING else None
        if py is not None:
            return "user", get_unit(py, self.unit.options), None
        return super().classify(node)



class _DeviceRef:
    """A callee's device function, bound in generated code; resolved per variant when compiled."""

    def __init__(self, unit, kind, mask):
        self.unit, self.kind, self.mask = unit, kind, mask

    def resolve(self, variant):
        return self.unit.device(self.kind, self.mask, variant)

    def key(self):
        return f"{self.unit.deep_key()}:{self.kind}:{self.mask}"


_DEVICE_OF_CPU = {}


def _device_for(obj):
    """A CPU dispatcher (defjvp partials, rule implementations) as a CUDA device function."""
    if isinstance(obj, Dispatcher):
        dev = _DEVICE_OF_CPU.get(obj)
        if dev is None:
            dev = _DEVICE_OF_CPU[obj] = cuda_module().jit(device=True)(obj.py_func)
            dev._fwdjit_cpu = obj
        return dev
    return obj


class _BindMixin:
    """Generators for device code bind CPU dispatchers (rule partials) as device functions."""

    def bind(self, obj, stem):
        """Bind ``obj`` (its device twin for a CPU dispatcher) under a fresh name."""
        return super().bind(_device_for(obj), stem)


class _CudaPrimalGen(_BindMixin, PrimalGen):
    """PrimalGen for device code: kernels return nothing."""

    def run(self):
        fdef = super().run()
        if self.fj.is_kernel:
            fdef = _void_returns(fdef)
        return fdef


class _CudaTangentGen(_BindMixin, TangentGen):
    """TangentGen for device code: CUDA callees, local/shared arrays, void kernels."""

    def __init__(self, unit, *args, **options):
        self.unit = unit
        super().__init__(*args, **options)

    def _assign_name(self, target, value):
        if target.id in self.active and isinstance(value, ast.Call) \
                and cuda_path(self.info, value.func) in ALLOC_PATHS:
            # the tangent gets its own local/shared array, allocated the same way
            self.emit(ast.Assign([ast.Name(target.id, ast.Store())], self.primal(value)))
            self.emit(ast.Assign([ast.Name(self.tname(target.id), ast.Store())], self.primal(value)))
            return
        return super()._assign_name(target, value)

    def st_Return(self, s):
        if self.unit.is_kernel:
            if s.value is not None:
                raise self.info.error(UnsupportedSyntax, s, "a CUDA kernel cannot return a value",
                                      hint="write results into an output array", construct="return in kernel")
            self.emit(ast.Return(None))
            return
        return super().st_Return(s)

    def run(self):
        fdef = super().run()
        if self.unit.is_kernel:
            fdef = _void_returns(fdef)
        return fdef


def _void_returns(fdef):
    """``return (None, None)`` -> ``return`` (kernels return nothing); a final bare return is dropped."""
    class V(ast.NodeTransformer):
        def visit_Return(self, node):
            v = node.value
            if isinstance(v, ast.Tuple) and all(isinstance(e, ast.Constant) and e.value is None for e in v.elts):
                return ast.copy_location(ast.Return(None), node)
            return node
    fdef = V().visit(fdef)
    if fdef.body and isinstance(fdef.body[-1], ast.Return) and fdef.body[-1].value is None and len(fdef.body) > 1:
        fdef.body.pop()
    return ast.fix_missing_locations(fdef)


# ----------------------------------------------------------------- units
_UNITS: dict = {}


def get_unit(py_func, options):
    """The unit of ``py_func`` for these options (created once; a unit registers itself first, for recursion)."""
    key = (py_func, options.get("fastmath", False))
    with LOCK:
        unit = _UNITS.get(key)
        if unit is None:
            unit = CudaUnit(py_func, options)
        return unit


class CudaUnit(TargetFunction):
    """One user function transformed for the CUDA target (device function or kernel)."""

    def __init__(self, func, options):
        self.py_func = func
        self.options = dict(options)
        self.info = parse_function(func)
        self.name = self.info.name          # a lambda's is lambda_<line>
        validate(self.info)
        self.params = list(self.info.params)
        self.is_kernel = not any(isinstance(n, ast.Return) and n.value is not None
                                 for n in ast.walk(self.info.tree))
        self.resolver = CudaResolver(self.info, self)
        self._effective = {}
        self._analyzing = set()
        self._gens = {}
        self._devices = {}
        self._refs = {}
        _UNITS[(func, self.options.get("fastmath", False))] = self   # callees (and recursion) find it
        try:
            self._check_device_code()
        except BaseException:
            _UNITS.pop((func, self.options.get("fastmath", False)), None)
            raise

    def __repr__(self):
        return f"<fwdjit CUDA unit {self.info.qualname} ({self.info.filename}:{self.info.tree.lineno})>"

    def _check_device_code(self):
        """Raise now (at transform time) for what device code cannot run."""
        check_device_code(self.info, self.resolver)

    # ------------------------------------------------------ analysis/keys
    key_prefix = "cuda"

    def key_entry(self, value):
        """A callee counts by its unit's deep key, a module by its name."""
        py = user_python_function(value, device=True)
        if py is not None:
            return "unit:" + get_unit(py, self.options).deep_key()
        if isinstance(value, pytypes.ModuleType):
            return "module:" + value.__name__
        return value

    # ------------------------------------- the interface TangentGen uses
    def tangent_function(self, mask, _internal=True):
        return self._ref("jvp", tuple(bool(m) for m in mask))

    def primal_function_internal(self):
        return self._ref("primal", None)

    def _ref(self, kind, mask):
        ref = self._refs.get((kind, mask))
        if ref is None:
            ref = self._refs[(kind, mask)] = _DeviceRef(self, kind, mask)
        return ref

    # ----------------------------------------------------- generation
    def generate(self, kind, mask):
        """(FunctionDef, bindings) of the primal or of the JVP for ``mask`` (plain variant)."""
        return cached(self._gens, (kind, mask), lambda: self._generate(kind, mask), LOCK)

    def _generate(self, kind, mask):
        if kind == "primal":
            fdef, bindings = compiler.primal(self, generator=_CudaPrimalGen)
        else:
            fdef, gen = compiler.jvp(self.info, mask, self.resolver,
                                     generator=functools.partial(_CudaTangentGen, self))
            bindings = gen.bindings
            if self.is_kernel:
                missing = [p for p, m, e in zip(self.params, mask, gen.effective) if e and not m]
                if missing:
                    raise TangentError(
                        f"{self.name}: argument(s) {', '.join(repr(p) for p in missing)} receive "
                        "differentiable values in the kernel; pass a tangent array for each")
        return fdef, dict(bindings)

    def source(self, kind, mask, variant="plain"):
        fdef, ns, _ = self._variant(kind, mask, variant)
        return render(fdef)

    def _variant(self, kind, mask, variant):
        fdef, bindings = self.generate(kind, mask)
        fdef = copy.deepcopy(fdef)
        ns = dict(self.info.namespace)
        ns.update(bindings)
        if variant == "f32":
            fdef.name = fdef.name + "__f32"
            fdef = float32_twin(fdef, {**{k: v for k, v in ns.items() if not isinstance(v, _DeviceRef)},
                                       "np": np, "fj": None})
        fdef, helpers = device_rewrite(fdef, {**ns, "np": np, "math": math})
        ns.update(helpers)
        return fdef, ns, bindings

    def device(self, kind, mask, variant):
        """The compiled CUDA function (device function, or kernel for kernel units)."""
        return cached(self._devices, (kind, mask, variant), lambda: self._compile(kind, mask, variant), LOCK)

    def _compile(self, kind, mask, variant):
        """Render, write and ``cuda.jit`` one variant; callees' device functions are compiled first."""
        cuda = cuda_module()
        fdef, ns, bindings = self._variant(kind, mask, variant)
        keys = []
        for k, v in sorted(ns.items()):
            if isinstance(v, _DeviceRef):
                keys.append(f"{k}->{v.key()}")
                ns[k] = v.resolve(variant)
            elif hasattr(v, "_fwdjit_cpu"):
                keys.append(f"{k}->cpu:{namespace_key({k: v._fwdjit_cpu})}")
        bits = "" if mask is None else "_" + "".join("1" if m else "0" for m in mask)
        stem = f"{self.name}_cuda_{kind}{bits}_{variant}"
        text = (HEADER.format(version=__version__, qualname=self.info.qualname,
                              where=f"{self.info.filename}:{self.info.tree.lineno}")
                + f"# CUDA target ({'kernel' if self.is_kernel else 'device function'}, {variant} variant)\n\n"
                + render(fdef))
        extra = "cuda" + self.deep_key() + ";".join(keys) + repr(sorted(self.options.items()))
        plain_ns = {k: v for k, v in ns.items()}
        mod, _, path = load_module(stem, text, plain_ns, extra)
        fn = getattr(mod, fdef.name)
        if self.is_kernel:
            dev = cuda.jit(fn, fastmath=self.options.get("fastmath", False),
                           **({} if simulator_enabled() else {"cache": self.options.get("cache", True)}))
        else:
            dev = cuda.jit(device=True, fastmath=self.options.get("fastmath", False))(fn)
        dev._fwdjit_path = str(path)
        what = "CUDA kernel" if self.is_kernel else "CUDA device function"
        return located_compiles(dev, self, f"{what} {self.name}")


# ------------------------------------------------------- compile failures
def located_compile(compile, unit, what):
    """``compile`` (a dispatcher's ``compile`` or ``compile_device``: argument types in), raising
    Numba's compile failures as fwdjit's located :class:`~fwdjit.errors.CompileError`.

    The error names the user's line behind the generated code's ``# file:line:`` comments
    (:func:`~fwdjit.targets.numba_errors.compile_error`), ``what`` ("CUDA kernel f") and the
    argument types in NumPy's words; it is raised ``from`` Numba's exception.  Anything else
    (a callee's CompileError already located, a driver error) passes unchanged.
    """
    @functools.wraps(compile)
    def located(sig, *rest):
        try:
            return compile(sig, *rest)
        except Exception as exc:    # noqa: BLE001 - only compile failures are turned, the rest re-raised
            if not is_numba_error(exc):
                raise
            argtypes = getattr(sig, "args", sig)        # a tuple of types, a Signature or a string
            err = compile_error(exc, what, argtypes if isinstance(argtypes, tuple) else (argtypes,),
                                lambda t: numpy_type(str(t)),
                                fallback=(unit.info.filename, unit.info.tree.lineno))
            raise err from exc.with_traceback(None)
    return located


def located_compiles(disp, unit, what):
    """``disp``, numba-cuda's dispatcher of code generated from ``unit``, made to raise located
    errors (:func:`located_compile`) when Numba cannot compile it; returned.

    A kernel compiles in ``compile`` (called by a launch), a device function in ``compile_device``
    (called when a kernel or device function that calls it is typed, the user's own included).
    The simulator compiles nothing (it runs the Python code): its dispatchers come back as they are.
    """
    if simulator_enabled():
        return disp
    method = "compile_device" if disp.targetoptions.get("device") else "compile"
    setattr(disp, method, located_compile(getattr(disp, method), unit, what))
    return disp
