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
helpers in the generated device code.
"""
from __future__ import annotations

import ast
import builtins
import copy
import math
import threading
import types as pytypes
import warnings

import numpy as np
from numba import types as nbtypes
from numba.core.dispatcher import Dispatcher
from numba.extending import overload

from .. import rules as R
from ..api import __version__
from .cache import HEADER, load_module, namespace_key
from ..compiler.float32 import float32_twin
from ..errors import FwdjitError, TangentError, UnsupportedCall, UnsupportedSyntax
from ..compiler.primal import PrimalGen
from ..compiler.resolve import MISSING, parse_function, resolve_attr
from ..compiler.tangent import Resolver, TangentGen, render
from .base import TargetFunction, describe, is_device_array, mismatch, user_python_function
from ..compiler.validate import validate

__all__ = ["CudaFwdjitFunction", "cuda_fwdjit", "simulator_enabled", "is_available"]

_LOCK = threading.RLock()
_CUDA = None


# ------------------------------------------------------------ lazy numba.cuda
def _cuda():
    """``numba.cuda``, imported on first use (rules registered then)."""
    global _CUDA
    if _CUDA is None:
        with _LOCK:
            if _CUDA is None:
                try:
                    from numba import cuda
                except ImportError as exc:   # pragma: no cover - depends on the environment
                    raise FwdjitError("the CUDA target needs numba-cuda: pip install 'fwdjit[cuda]' "
                                      f"(importing numba.cuda failed: {exc})") from None
                _register_object_rules(cuda)
                _CUDA = cuda
    return _CUDA


def simulator_enabled():
    """True when Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before numba was imported)."""
    try:
        from numba.cuda.core import config as cconfig
        return bool(getattr(cconfig, "ENABLE_CUDASIM", 0))
    except ImportError:
        from numba.core import config
        return bool(getattr(config, "ENABLE_CUDASIM", 0))


def is_available():
    """True when CUDA kernels can run here: a GPU with its driver, or the simulator."""
    try:
        cuda = _cuda()
    except FwdjitError:
        return False
    if simulator_enabled():
        return True
    try:
        return bool(cuda.is_available())
    except Exception:   # pragma: no cover - driver problems
        return False


def _register_object_rules(cuda):
    """Zero rules for the real intrinsic objects (the simulator has none at module level).

    The CUDA resolver below recognizes intrinsics by their ``cuda.<name>``
    path, which also works under the simulator; registering the objects keeps
    ``fwdjit.rules`` complete for code that resolves them directly.
    """
    for name in ("grid", "gridsize", "syncthreads", "syncthreads_count", "syncthreads_and",
                 "syncthreads_or", "threadfence", "threadfence_block", "threadfence_system", "popc",
                 "brev", "clz", "ffs", "activemask", "lanemask_lt", "ballot_sync", "all_sync",
                 "any_sync", "eq_sync"):
        obj = getattr(cuda, name, None)
        if obj is not None and not isinstance(obj, str) and R._hashable(obj) and obj not in R.RULES:
            R.RULES[obj] = R.zero_rule(f"cuda.{name}")


# -------------------------------------------------------- intrinsics by path
def _chain(func):
    parts = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None, None
    return node.id, parts[::-1]


def _is_cuda_module_name(modname):
    return modname == "numba.cuda" or modname.startswith("numba.cuda.") or modname.startswith("numba_cuda")


def _strip(modname):
    """``numba.cuda.random`` -> ``random``; ``numba.cuda.intrinsics`` -> ``''``."""
    if modname.startswith("numba_cuda.numba.cuda"):
        modname = modname[len("numba_cuda."):]
    rest = modname[len("numba.cuda"):].lstrip(".")
    if rest in ("intrinsics", "stubs", "intrinsic_wrapper", "device_init", "api", "kernels.reduction"):
        return ""
    return rest


def cuda_path(info, func):
    """``"grid"``, ``"atomic.add"``, ``"random.xoroshiro128p_normal_float64"``... for a call to a
    CUDA intrinsic, else None.  Works from the source (the simulator has no intrinsic objects)."""
    root, parts = _chain(func)
    if root is None or root not in info.namespace:
        return None
    val = info.namespace[root]
    if isinstance(val, pytypes.ModuleType):
        name = val.__name__
        if name == "numba":
            return ".".join(parts[1:]) if parts[:1] == ["cuda"] and len(parts) > 1 else None
        if _is_cuda_module_name(name):
            sub = _strip(name)
            return ".".join(([sub] if sub else []) + parts) or None
        return None
    if parts:
        return None
    py = getattr(val, "py_func", val)
    mod = getattr(py, "__module__", None) or getattr(type(val), "__module__", "") or ""
    if _is_cuda_module_name(mod) and user_python_function(val, device=True) is None:
        sub = _strip(mod)
        name = getattr(py, "__name__", None) or getattr(val, "_name", None) or root
        return ".".join(([sub] if sub else []) + [name])
    return None


def _atomic_rule(sign):
    def fn(c):
        arr, idx, val = c.args[0], c.args[1], c.args[2]
        if not val.active:
            return None
        if not arr.active:
            raise c.gen.unsupported(
                "an atomic update of an array without a tangent by a differentiable value",
                "give the array a tangent (pass a tangent array for it)")
        # d(atomic.add(a, i, v)) = atomic.add(da, i, dv); atomic.sub likewise subtracts dv
        c.gen.emit(ast.Expr(c.call(c.func_ast, [arr.t, idx.p(), val.t])))
        return None
    return R.Rule(fn, diff=(2,))


def _shfl_rule(c):
    if not c.active(1):
        return None
    return c.same_call([a.t if i == 1 else a.p() for i, a in enumerate(c.args)])


_ZERO_PATHS = {
    "grid", "gridsize", "syncthreads", "syncthreads_count", "syncthreads_and", "syncthreads_or",
    "threadfence", "threadfence_block", "threadfence_system", "laneid", "warpsize", "popc", "brev",
    "clz", "ffs", "activemask", "lanemask_lt", "ballot_sync", "all_sync", "any_sync", "eq_sync",
    "match_any_sync", "match_all_sync", "nanosleep", "local.array", "shared.array",
    "const.array_like", "cg.this_grid",
}
_ALLOC_PATHS = {"local.array", "shared.array"}


def _path_rule(path):
    if path in _ZERO_PATHS or path.startswith("random.") or path.startswith("cg."):
        return R.zero_rule("cuda." + path)
    if path in ("atomic.add", "atomic.sub"):
        return _atomic_rule(1 if path.endswith("add") else -1)
    if path in ("shfl_sync", "shfl_up_sync", "shfl_down_sync", "shfl_xor_sync"):
        return R.Rule(_shfl_rule, diff=(1,))
    if path == "fma":
        return R.partials("{g} * {1}", "{0} * {g}", "{g}")
    if path == "cbrt":
        return R.partials("{g} / (3.0 * {y} * {y})")
    if path == "selp":
        def sel(c):
            tb = c.args[1].t if c.active(1) else ast.Constant(0.0)
            tc = c.args[2].t if c.active(2) else ast.Constant(0.0)
            return c.gen.fj_call("select", [c.args[0].p(), tb, tc])
        return R.Rule(sel, nondiff={0})
    return None


# ------------------------------------------------------- user functions
class CudaResolver(Resolver):
    """Classifies calls for device code: CUDA intrinsics by path, user callees as CUDA units."""

    def __init__(self, info, unit):
        super().__init__(info, registry=lambda py: _get_unit(py, unit.options))
        self.unit = unit

    def classify(self, node):
        path = cuda_path(self.info, node.func)
        if path is not None:
            rule = _path_rule(path)
            return ("rule", "cuda." + path, rule) if rule is not None else ("blackbox", "cuda." + path, None)
        obj = resolve_attr(self.info, node.func)
        if obj is not None and obj is not MISSING and R._hashable(obj) and obj in R.USER_RULES:
            return "rule", obj, R.USER_RULES[obj]
        py = user_python_function(obj, device=True) if obj is not None and obj is not MISSING else None
        if py is not None:
            return "user", _get_unit(py, self.unit.options), None
        return super().classify(node)


# --------------------------------------------------- what device code can call
# ufuncs numba-cuda lowers on scalars (numba/cuda/ufuncs.py)
_CUDA_UFUNCS = {np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.arctan2, np.hypot, np.sinh,
                np.cosh, np.tanh, np.arcsinh, np.arccosh, np.arctanh, np.deg2rad, np.radians, np.rad2deg,
                np.degrees, np.greater, np.greater_equal, np.less, np.less_equal, np.not_equal, np.equal,
                np.logical_and, np.logical_or, np.logical_xor, np.logical_not, np.maximum, np.minimum,
                np.fmax, np.fmin, np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift,
                np.right_shift, np.log, np.log2, np.log10, np.isnan, np.conjugate, np.divide}
_ALLOC_FUNCS = {np.zeros, np.ones, np.empty, np.full, np.array, np.asarray, np.arange, np.linspace,
                np.eye, np.identity, np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.copy,
                np.concatenate, np.stack, np.hstack, np.vstack, np.tile, np.repeat, np.outer, np.diag,
                np.ascontiguousarray, np.atleast_1d, np.atleast_2d, np.kron, np.tri, np.cumsum, np.sort,
                np.diff, np.flip, np.ravel, np.reshape, np.transpose, np.broadcast_to}
_ALLOC_METHODS = {"copy", "astype", "flatten", "reshape", "ravel", "transpose", "repeat", "cumsum", "view",
                  "squeeze", "swapaxes", "diagonal"}
_BUILTINS_OK = {abs, min, max, float, int, bool, range, len, round, pow, print}


def _is_math(obj):
    return getattr(obj, "__module__", None) == "math" or any(obj is v for v in vars(math).values())


# --------------------------------------------- device-code rewrites (np -> math)
def _fjc_sign(x):
    return np.sign(x)


def _fjc_floor(x):
    return np.floor(x)


def _fjc_ceil(x):
    return np.ceil(x)


def _fjc_trunc(x):
    return np.trunc(x)


def _fjc_rint(x):
    return np.rint(x)


def _fjc_cbrt(x):
    return np.cbrt(x)


def _fjc_exp2(x):
    return np.exp2(x)


def _fjc_square(x):
    return x * x


def _fjc_reciprocal(x):
    return np.reciprocal(x)


def _fjc_signbit(x):
    return bool(np.signbit(x))


def _fjc_clip(x, lo, hi):
    return min(max(x, lo), hi)


def _fjc_select(cond, a, b):
    return a if cond else b


@overload(_fjc_sign)
def _ov_sign(x):
    if isinstance(x, nbtypes.Float):
        ty = x

        def impl(x):
            if x > 0:
                return ty(1)
            if x < 0:
                return ty(-1)
            return x * ty(0)          # 0 -> 0, nan -> nan
        return impl
    if isinstance(x, (nbtypes.Integer, nbtypes.Boolean)):
        return lambda x: (x > 0) - (x < 0)
    return None


def _libdevice_overload(pyfn, dname, fname, int_ok=True):
    def ov(x):
        from numba.cuda import libdevice
        if isinstance(x, nbtypes.Float):
            f = getattr(libdevice, fname if x.bitwidth == 32 else dname)
            return lambda x: f(x)
        if int_ok and isinstance(x, (nbtypes.Integer, nbtypes.Boolean)):
            f = getattr(libdevice, dname)
            return lambda x: f(float(x))
        return None
    overload(pyfn)(ov)


_libdevice_overload(_fjc_floor, "floor", "floorf")
_libdevice_overload(_fjc_ceil, "ceil", "ceilf")
_libdevice_overload(_fjc_trunc, "trunc", "truncf")
_libdevice_overload(_fjc_rint, "rint", "rintf")
_libdevice_overload(_fjc_cbrt, "cbrt", "cbrtf")
_libdevice_overload(_fjc_exp2, "exp2", "exp2f")


@overload(_fjc_signbit)
def _ov_signbit(x):
    from numba.cuda import libdevice
    if isinstance(x, nbtypes.Float):
        f = libdevice.signbitf if x.bitwidth == 32 else libdevice.signbitd
        return lambda x: f(x) != 0
    return lambda x: x < 0


@overload(_fjc_square)
def _ov_square(x):
    return lambda x: x * x


@overload(_fjc_reciprocal)
def _ov_reciprocal(x):
    if isinstance(x, nbtypes.Float):
        ty = x
        return lambda x: ty(1) / x
    return lambda x: 1 // x


@overload(_fjc_clip)
def _ov_clip(x, lo, hi):
    def impl(x, lo, hi):
        y = lo if x < lo else x
        return hi if y > hi else y
    return impl


@overload(_fjc_select)
def _ov_select(cond, a, b):
    return lambda cond, a, b: a if cond else b


_HELPERS = {"_fjc_sign": _fjc_sign, "_fjc_floor": _fjc_floor, "_fjc_ceil": _fjc_ceil, "_fjc_trunc": _fjc_trunc,
            "_fjc_rint": _fjc_rint, "_fjc_cbrt": _fjc_cbrt, "_fjc_exp2": _fjc_exp2, "_fjc_square": _fjc_square,
            "_fjc_reciprocal": _fjc_reciprocal, "_fjc_signbit": _fjc_signbit, "_fjc_clip": _fjc_clip,
            "_fjc_select": _fjc_select}

# object -> ("math", name) | ("builtin", name) | ("helper", name) | ("binop", op) | ("unary", op) | ("id",)
_REWRITE = {
    np.exp: ("math", "exp"), np.expm1: ("math", "expm1"), np.log1p: ("math", "log1p"),
    np.sqrt: ("math", "sqrt"), np.fabs: ("math", "fabs"), np.isfinite: ("math", "isfinite"),
    np.isinf: ("math", "isinf"), np.abs: ("builtin", "abs"),
    np.sign: ("helper", "_fjc_sign"), np.floor: ("helper", "_fjc_floor"), np.ceil: ("helper", "_fjc_ceil"),
    np.trunc: ("helper", "_fjc_trunc"), np.fix: ("helper", "_fjc_trunc"), np.rint: ("helper", "_fjc_rint"),
    np.round: ("helper", "_fjc_rint"), np.around: ("helper", "_fjc_rint"), np.cbrt: ("helper", "_fjc_cbrt"),
    np.exp2: ("helper", "_fjc_exp2"), np.square: ("helper", "_fjc_square"),
    np.reciprocal: ("helper", "_fjc_reciprocal"), np.signbit: ("helper", "_fjc_signbit"),
    np.clip: ("helper", "_fjc_clip"), np.where: ("helper", "_fjc_select"),
    np.power: ("binop", ast.Pow), np.add: ("binop", ast.Add), np.subtract: ("binop", ast.Sub),
    np.multiply: ("binop", ast.Mult), np.floor_divide: ("binop", ast.FloorDiv),
    np.remainder: ("binop", ast.Mod), np.negative: ("unary", ast.USub), np.positive: ("id",),
}
if hasattr(math, "cbrt"):
    _REWRITE[math.cbrt] = ("helper", "_fjc_cbrt")
if hasattr(np, "absolute"):
    _REWRITE[np.absolute] = ("builtin", "abs")
if hasattr(np, "true_divide") and np.true_divide is not np.divide:   # pragma: no cover
    _REWRITE[np.true_divide] = ("binop", ast.Div)


def _resolve_ns(node, ns):
    if isinstance(node, ast.Name):
        return ns.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        base = _resolve_ns(node.value, ns)
        if isinstance(base, (pytypes.ModuleType, type)):
            return getattr(base, node.attr, None)
    return None


class _DeviceRewriter(ast.NodeTransformer):
    """NumPy scalar calls numba-cuda cannot lower -> math functions, operators or helpers."""

    def __init__(self, ns):
        self.ns = ns
        self.used = set()

    def visit_Call(self, node):
        self.generic_visit(node)
        if node.keywords:
            return node
        obj = _resolve_ns(node.func, self.ns)
        try:
            how = _REWRITE.get(obj)
        except TypeError:
            return node
        if how is None:
            return node
        kind = how[0]
        args = node.args
        if kind == "math":
            node.func = ast.Attribute(ast.Name("math", ast.Load()), how[1], ast.Load())
        elif kind == "builtin":
            node.func = ast.Name(how[1], ast.Load())
        elif kind == "helper":
            if how[1] == "_fjc_rint" and len(args) > 1:
                return node                      # np.round(x, decimals): left to Numba
            node.func = ast.Name(how[1], ast.Load())
            self.used.add(how[1])
        elif kind == "binop" and len(args) == 2:
            return ast.copy_location(ast.BinOp(args[0], how[1](), args[1]), node)
        elif kind == "unary" and len(args) == 1:
            return ast.copy_location(ast.UnaryOp(how[1](), args[0]), node)
        elif kind == "id" and len(args) == 1:
            return args[0]
        return node


def _device_rewrite(fdef, ns):
    rw = _DeviceRewriter(ns)
    fdef = rw.visit(fdef)
    return ast.fix_missing_locations(fdef), {k: _HELPERS[k] for k in rw.used}


# ------------------------------------------------------------ generators
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
            dev = _DEVICE_OF_CPU[obj] = _cuda().jit(device=True)(obj.py_func)
            dev._fwdjit_cpu = obj
        return dev
    return obj


class _BindMixin:
    def bind(self, obj, stem):
        return super().bind(_device_for(obj), stem)


class _CudaPrimalGen(_BindMixin, PrimalGen):
    def run(self):
        fdef = super().run()
        if self.fj.is_kernel:
            fdef = _void_returns(fdef)
        return fdef


class _CudaTangentGen(_BindMixin, TangentGen):
    """TangentGen for device code: CUDA callees, local/shared arrays, void kernels."""

    def __init__(self, unit, mask):
        self.unit = unit
        super().__init__(unit.info, unit.info.tree, mask, unit.resolver, check_inputs=False)

    def _assign_name(self, target, value):
        if target.id in self.active and isinstance(value, ast.Call) \
                and cuda_path(self.info, value.func) in _ALLOC_PATHS:
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


def _get_unit(py_func, options):
    key = (py_func, options.get("fastmath", False))
    with _LOCK:
        unit = _UNITS.get(key)
        if unit is None:
            unit = _CudaUnit(py_func, options)
        return unit


class _CudaUnit(TargetFunction):
    """One user function transformed for the CUDA target (device function or kernel)."""

    def __init__(self, func, options):
        self.py_func = func
        self.name = func.__name__
        self.options = dict(options)
        self.info = parse_function(func)
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

    # ------------------------------------------------ transform-time checks
    def _check_device_code(self):
        info = self.info
        for node in ast.walk(info.tree):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                raise info.error(UnsupportedSyntax, node, "matrix product (@) in CUDA device code",
                                 hint="write the product as loops over the elements", construct="@ in device code")
            if not isinstance(node, ast.Call):
                continue
            kind, obj, rule = self.resolver.classify(node)
            if kind == "user" or (isinstance(obj, str) and obj.startswith("cuda.")):
                continue
            if kind == "method":
                what = f".{obj}()"
                if obj in _ALLOC_METHODS:
                    raise info.error(UnsupportedCall, node,
                                     f"array method {what} allocates an array, which CUDA device code cannot do",
                                     hint="use cuda.local.array(shape, dtype) with a constant shape, or pass a "
                                          "preallocated array", construct=f"{what} in device code")
                raise info.error(UnsupportedCall, node, f"array method {what} is not available in CUDA device code",
                                 hint="write a loop over the elements", construct=f"{what} in device code")
            name = _qualname(obj)
            if R._hashable(obj) and obj in R.USER_RULES:
                continue
            if R._hashable(obj) and obj in _ALLOC_FUNCS:
                raise info.error(UnsupportedCall, node,
                                 f"array allocation ({name}) inside CUDA device code",
                                 hint="use cuda.local.array(shape, dtype) with a constant shape, or pass a "
                                      "preallocated array as an argument", construct="array allocation")
            if isinstance(obj, np.ufunc):
                if obj in _CUDA_UFUNCS or obj in _REWRITE:
                    continue
                raise info.error(UnsupportedCall, node, f"{name} is not available in CUDA device code",
                                 hint="use the math module's function", construct=f"call to {name}")
            if _is_math(obj):
                continue
            if R._hashable(obj) and (obj in _BUILTINS_OK or obj in _REWRITE):
                continue
            if isinstance(obj, type) and issubclass(obj, (np.number, np.bool_)):
                continue
            mod = getattr(obj, "__module__", "") or ""
            if mod.startswith("numpy.random") or getattr(obj, "__self__", None).__class__.__name__ == "RandomState":
                raise info.error(UnsupportedCall, node, f"{name} (NumPy random numbers) in CUDA device code",
                                 hint="use numba.cuda.random (xoroshiro128p_normal_float64...) with states "
                                      "passed in", construct="np.random in device code")
            if mod.split(".")[0] == "numpy" or (R._hashable(obj) and obj in R.RULES):
                raise info.error(UnsupportedCall, node,
                                 f"{name} is an array-level NumPy function, not available in CUDA device code",
                                 hint="write it as a loop over the elements", construct=f"call to {name}")
            raise info.error(UnsupportedCall, node, f"cannot call {name} from CUDA device code",
                             hint="call a user function (it becomes a device function), a math function or a "
                                  "CUDA intrinsic", construct=f"call to {name}")

    # ------------------------------------------------------ analysis/keys
    key_prefix = "cuda"

    def key_entry(self, value):
        """A callee counts by its unit's deep key, a module by its name."""
        py = user_python_function(value, device=True)
        if py is not None:
            return "unit:" + _get_unit(py, self.options).deep_key()
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
        key = (kind, mask)
        got = self._gens.get(key)
        if got is None:
            with _LOCK:
                if kind == "primal":
                    gen = _CudaPrimalGen(self)
                else:
                    gen = _CudaTangentGen(self, mask)
                    if self.is_kernel:
                        missing = [p for p, m, e in zip(self.params, mask, gen.effective) if e and not m]
                        if missing:
                            raise TangentError(
                                f"{self.name}: argument(s) {', '.join(repr(p) for p in missing)} receive "
                                "differentiable values in the kernel; pass a tangent array for each")
                fdef = gen.run()
                got = self._gens[key] = (fdef, dict(gen.bindings))
        return got

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
        fdef, helpers = _device_rewrite(fdef, {**ns, "np": np, "math": math})
        ns.update(helpers)
        return fdef, ns, bindings

    def device(self, kind, mask, variant):
        """The compiled CUDA function (device function, or kernel for kernel units)."""
        key = (kind, mask, variant)
        dev = self._devices.get(key)
        if dev is not None:
            return dev
        with _LOCK:
            dev = self._devices.get(key)
            if dev is not None:
                return dev
            cuda = _cuda()
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
            self._devices[key] = dev
            return dev


def _qualname(obj):
    if isinstance(obj, str):
        return obj
    mod = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    if isinstance(obj, np.ufunc):
        return f"np.{obj.__name__}"
    if mod and mod.split(".")[0] == "numpy":
        return f"np.{name}" if not mod.startswith("numpy.") else f"{mod.replace('numpy', 'np', 1)}.{name}"
    if mod == "math":
        return f"math.{name}"
    return name


# ------------------------------------------------------------ host helpers
def _is_scalar(a):
    if isinstance(a, (bool, int, float, np.generic)):
        return True
    return isinstance(a, np.ndarray) and a.ndim == 0


def _scalar(a):
    if isinstance(a, np.ndarray):
        return a[()]
    return a


def _dtype_of(a):
    if isinstance(a, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(a, int):
        return np.dtype(np.int64)
    if isinstance(a, float):
        return np.dtype(np.float64)
    return np.dtype(a.dtype)


def _is_float(a):
    return _dtype_of(a).kind == "f"


def _variant_of(values):
    """``"f32"`` when a float32 (or float16) value is among ``values`` (NumPy 2 keeps float32)."""
    for v in values:
        if v is None or isinstance(v, (bool, int, float)):
            continue
        dt = _dtype_of(v)
        if dt.kind == "f" and dt.itemsize < 8:
            return "f32"
    return "plain"


class _Prepared:
    """Inputs laid out for an elementwise kernel: flat device arrays or scalars."""

    def __init__(self, fn_name, params, values, what):
        cuda = _cuda()
        shapes = [tuple(v.shape) for v in values if v is not None and not _is_scalar(v)]
        try:
            self.shape = np.broadcast_shapes(*shapes) if shapes else ()
        except ValueError:
            raise TangentError(f"{fn_name}: the {what} do not broadcast together: "
                               + ", ".join(f"{p}: {describe(v)}" for p, v in zip(params, values)
                                           if v is not None)) from None
        self.n = int(np.prod(self.shape)) if self.shape else 1
        self.on_device = any(is_device_array(v) for v in values if v is not None)
        self.args = []
        self.kinds = []
        self.elems = []
        for p, v in zip(params, values):
            if v is None:
                self.args.append(None)
                self.kinds.append(None)
                self.elems.append(None)
                continue
            if _is_scalar(v):
                s = _scalar(v)
                self.args.append(s)
                self.kinds.append("s")
                self.elems.append(s)
                continue
            if is_device_array(v):
                if tuple(v.shape) != self.shape:
                    if v.size == 1:
                        s = v.copy_to_host().reshape(())[()]
                        self.args.append(s)
                        self.kinds.append("s")
                        self.elems.append(s)
                        continue
                    raise TangentError(f"{fn_name}: argument '{p}' is a {describe(v)}; device arrays must have "
                                       f"the broadcast shape {self.shape} (broadcast on the host, or pass a "
                                       "scalar)")
                if not v.is_c_contiguous():
                    raise TangentError(f"{fn_name}: argument '{p}': device arrays must be C-contiguous")
                flat = v.reshape(self.n) if v.ndim != 1 else v
                self.args.append(flat)
                self.kinds.append("a")
                self.elems.append(None)
                continue
            arr = np.asarray(v)
            if arr.shape != self.shape:
                arr = np.broadcast_to(arr, self.shape)
            arr = np.ascontiguousarray(arr).reshape(self.n)
            self.args.append(cuda.to_device(arr))
            self.kinds.append("a")
            self.elems.append(None)
        self._host = values

    def element(self, j):
        """A sample element of input j (for typing under the simulator)."""
        v = self._host[j]
        if self.kinds[j] == "s":
            return self.elems[j]
        if is_device_array(v):
            return v.copy_to_host().reshape(-1)[0] if self.n else np.zeros((), v.dtype)[()]
        arr = np.asarray(v)
        return arr.reshape(-1)[0] if arr.size else np.zeros((), arr.dtype)[()]

    def numba_type(self, j):
        import numba
        v = self._host[j]
        if self.kinds[j] == "s":
            return numba.typeof(self.elems[j])
        return numba.from_dtype(np.dtype(v.dtype))

    def dtypes(self):
        return [None if v is None else _dtype_of(v) for v in self._host]


# ------------------------------------------------------------ public object
class CudaFwdjitFunction:
    """A Python function compiled by fwdjit for NVIDIA GPUs (Numba's CUDA target).

    Scalar functions: ``f(*arrays)``, ``f.jvp_map``, ``f.jacobian_map``,
    ``f.forward_gradient``, ``f.device_function``,
    ``f.tangent_device_function(active)``.
    Kernels: ``f[blocks, threads](*args)`` and
    ``f[blocks, threads].jvp(primals, tangents)``; ``f.tangent_kernel(active)``.
    """

    fwdjit_target = "cuda"

    def __init__(self, func, *, fastmath=False, cache=True):
        py = user_python_function(func, device=True) or func
        self.py_func = py
        try:
            self.__doc__ = py.__doc__
            self.__name__ = py.__name__
            self.__qualname__ = py.__qualname__
            self.__module__ = py.__module__
            self.__wrapped__ = py
        except AttributeError:   # pragma: no cover
            pass
        self.name = getattr(py, "__name__", "f")
        self.options = {"fastmath": fastmath, "cache": cache}
        self.unit = _get_unit(py, self.options)
        self.params = self.unit.params
        self._nparams = len(self.params)
        self._kernels = {}
        self._states = {}

    def __repr__(self):
        kind = "kernel" if self.is_kernel else "device function"
        return f"<fwdjit CUDA {kind} {self.unit.info.qualname} ({self.unit.info.filename}:{self.unit.info.tree.lineno})>"

    @property
    def is_kernel(self):
        return self.unit.is_kernel

    # -------------------------------------------------------- sources
    def _mask(self, active):
        if active is None:
            return (True,) * self._nparams
        mask = tuple(bool(a) for a in active)
        if len(mask) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}); "
                               f"active has {len(mask)} entries")
        return mask

    @property
    def tangent_source(self):
        """The generated tangent code for all arguments active, as compiled for the GPU."""
        return self.tangent_source_for(None)

    def tangent_source_for(self, active, float32=False):
        return self.unit.source("jvp", self._mask(active), "f32" if float32 else "plain")

    @property
    def primal_source(self):
        return self.unit.source("primal", None, "plain")

    # ------------------------------------------------- device functions
    @property
    def device_function(self):
        """The primal as a CUDA device function (kernels: the primal kernel)."""
        return self.unit.device("primal", None, "plain")

    def tangent_device_function(self, active=None, float32=False):
        """The JVP as a CUDA device function ``(primals..., active tangents...) -> (out, dout)``.

        ``float32=True`` gives the variant that keeps float32 values float32
        (NumPy 2 rules), for float32 arguments.  For kernels this is the
        tangent kernel (see :meth:`tangent_kernel`).
        """
        return self.unit.device("jvp", self._mask(active), "f32" if float32 else "plain")

    # ----------------------------------------------------------- kernels
    def tangent_kernel(self, active=None):
        """The tangent kernel of a kernel: ``tk[blocks, threads](*primals, *tangents_of_active)``."""
        if not self.is_kernel:
            raise FwdjitError(f"{self.name} returns a value: it is a device function, not a kernel "
                              "(use jvp_map, or tangent_device_function in your own kernel)")
        return _KernelHandle(self, "jvp", self._mask(active))

    def __getitem__(self, config):
        if not self.is_kernel:
            raise FwdjitError(f"{self.name} returns a value: it is a device function, not a kernel; "
                              "call it on arrays (f(x, y)) or use jvp_map")
        return _Launch(self, config)

    def _launch(self, kind, mask, config, args):
        variant = _variant_of([a for a in args if a is not None])
        kern = self.unit.device(kind, mask, variant)
        kern[config](*args)

    def _kernel_jvp(self, config, primals, tangents):
        primals, tangents = self._check_pt(primals, tangents)
        mask = tuple(t is not None for t in tangents)
        for p, x, t in zip(self.params, primals, tangents):
            if t is None:
                continue
            msg = mismatch(x, t, device=True)
            if msg:
                raise TangentError(f"{self.name}: tangent for argument '{p}': {msg}")
        self._launch("jvp", mask, config, list(primals) + [t for t in tangents if t is not None])

    def _check_pt(self, primals, tangents):
        try:
            primals, tangents = tuple(primals), tuple(tangents)
        except TypeError:
            raise TangentError(f"{self.name}: primals and tangents must be tuples") from None
        if len(primals) != self._nparams or len(tangents) != self._nparams:
            raise TangentError(f"{self.name}({', '.join(self.params)}): expected {self._nparams} primals and "
                               f"{self._nparams} tangents (None for no tangent), given {len(primals)} and "
                               f"{len(tangents)}")
        return primals, tangents

    # ------------------------------------------------------ elementwise
    def _need_device_function(self, what):
        if self.is_kernel:
            raise FwdjitError(f"{self.name} is a kernel (it returns nothing); {what} is for scalar functions: "
                              f"launch it with {self.name}[blocks, threads](...) or "
                              f"{self.name}[blocks, threads].jvp(primals, tangents)")

    def __call__(self, *args):
        """Values of the function, elementwise over array arguments (scalars broadcast)."""
        self._need_device_function("calling it on arrays")
        if len(args) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}), "
                               f"given {len(args)}")
        prep = _Prepared(self.name, self.params, list(args), "arguments")
        variant = _variant_of(args)
        dev = self.unit.device("primal", None, variant)
        out_types = self._out_types(dev, prep, list(range(self._nparams)), [], variant)
        kernel = self._map_kernel("primal", variant, tuple(prep.kinds), None, len(out_types))
        outs = [_cuda().device_array(prep.n, dt) for dt in out_types]
        self._launch_map(kernel, prep.n, [a for a in prep.args] + outs)
        res = self._finish(prep, outs)
        return res[0] if len(res) == 1 and not self._tuple_out else tuple(res)

    map = __call__

    def jvp_map(self, primals, tangents, out=None):
        """``(out, dout)`` elementwise: one JVP per element of the broadcast inputs.

        ``tangents`` has one entry per primal (None: zero tangent; int
        arguments take None); arrays and scalars broadcast together.  Host
        inputs give host outputs; with any device array among the inputs the
        outputs stay on the device.  Tuple outputs give tuples of arrays.
        ``out=(out, dout)``: C-contiguous device arrays of the broadcast shape
        (tuples of them for tuple outputs) to write into instead of
        allocating; they are returned.
        """
        self._need_device_function("jvp_map")
        primals, tangents = self._check_pt(primals, tangents)
        for p, x, t in zip(self.params, primals, tangents):
            if t is None:
                continue
            if not _is_float(x):
                raise TangentError(f"jvp_map of {self.name}: argument '{p}' is {_dtype_of(x)}, which carries no "
                                   "derivative; pass None as its tangent")
            if not _is_float(t):
                raise TangentError(f"jvp_map of {self.name}: tangent for argument '{p}' must be floating point, "
                                   f"given {describe(t)}")
        mask = tuple(t is not None for t in tangents)
        variant = _variant_of(list(primals) + [t for t in tangents if t is not None])
        tangents = tuple(None if t is None else _cast_like(t, x) for x, t in zip(primals, tangents))
        prep = _Prepared(self.name, self.params + ["d" + p for p in self.params],
                         list(primals) + list(tangents), "primals and tangents")
        n = self._nparams
        dev = self.unit.device("jvp", mask, variant)
        idx_p = list(range(n))
        idx_t = [n + j for j in range(n) if mask[j]]
        out_types = self._out_types(dev, prep, idx_p, idx_t, variant, jvp=True)
        nout = len(out_types) // 2
        kinds = tuple(prep.kinds)
        kernel = self._map_kernel("jvp", variant, kinds, mask, nout)
        if out is not None:
            outs = _given_outputs(self.name, out, nout, prep, out_types)
        else:
            outs = [_cuda().device_array(prep.n, dt) for dt in out_types]
        args = [prep.args[j] for j in idx_p] + [prep.args[j] for j in idx_t] + outs
        self._launch_map(kernel, prep.n, args)
        res = self._finish(prep, outs)
        if nout == 1 and not self._tuple_out:
            return res[0], res[1]
        return tuple(res[:nout]), tuple(res[nout:])

    def jacobian_map(self, primals, argnums=None):
        """``(out, jac)``: derivatives w.r.t. each argument in ``argnums``, elementwise, in one launch.

        ``jac[k]`` is d out / d primals[argnums[k]] (a tuple over outputs for
        tuple outputs).  ``argnums`` defaults to every floating-point argument.
        Each thread runs one JVP per argument (one-hot tangents).
        """
        self._need_device_function("jacobian_map")
        primals, _ = self._check_pt(primals, (None,) * self._nparams)
        argnums = self._argnums(primals, argnums, "jacobian_map")
        variant = _variant_of(primals)
        prep = _Prepared(self.name, self.params, list(primals), "arguments")
        out_types = self._out_types(self.unit.device("primal", None, variant), prep,
                                    list(range(self._nparams)), [], variant)
        nout = len(out_types)
        kernel = self._map_kernel("jac", variant, tuple(prep.kinds), tuple(argnums), nout)
        cuda = _cuda()
        outs = [cuda.device_array(prep.n, dt) for dt in out_types]
        jacs = [cuda.device_array(prep.n, _tangent_dtype(dt)) for _ in argnums for dt in out_types]
        self._launch_map(kernel, prep.n, list(prep.args) + outs + jacs)
        res = self._finish(prep, outs + jacs)
        vals, jr = res[:nout], res[nout:]
        per = [tuple(jr[k * nout:(k + 1) * nout]) for k in range(len(argnums))]
        if nout == 1 and not self._tuple_out:
            return vals[0], tuple(p[0] for p in per)
        return tuple(vals), tuple(per)

    def forward_gradient(self, primals, num_directions=1, seed=0, argnums=None, states=None):
        """Forward-gradient estimates, elementwise, with random directions drawn on the GPU.

        For each element (sample) ``i``, draws ``num_directions`` directions
        ``v ~ N(0, I)`` over the arguments in ``argnums`` (xoroshiro128+
        generators, one per sample), and returns ``(out, grads)`` with
        ``grads[k][i] = mean_j (grad f . v_j) v_j[k]``, an unbiased estimate of
        d f / d primals[argnums[k]].  One kernel launch for the whole batch.
        ``states``: reuse ``numba.cuda.random.create_xoroshiro128p_states(n, seed)``
        (at least one per sample) across calls.
        """
        self._need_device_function("forward_gradient")
        if int(num_directions) < 1:
            raise FwdjitError("forward_gradient needs num_directions >= 1")
        primals, _ = self._check_pt(primals, (None,) * self._nparams)
        argnums = self._argnums(primals, argnums, "forward_gradient")
        variant = _variant_of(primals)
        prep = _Prepared(self.name, self.params, list(primals), "arguments")
        out_types = self._out_types(self.unit.device("primal", None, variant), prep,
                                    list(range(self._nparams)), [], variant)
        if len(out_types) != 1 or self._tuple_out or np.dtype(out_types[0]).kind != "f":
            raise FwdjitError(f"forward_gradient of {self.name}: the function must return one float "
                              f"(it returns {len(out_types)} value(s) of dtype "
                              f"{', '.join(str(np.dtype(t)) for t in out_types)})")
        mask = tuple(j in argnums for j in range(self._nparams))
        self.unit.device("jvp", mask, variant)
        kernel = self._map_kernel("fgrad", variant, tuple(prep.kinds), tuple(argnums), 1)
        cuda = _cuda()
        if states is None:
            states = self._rng_states(prep.n, seed)
        elif len(states) < prep.n:
            raise FwdjitError(f"forward_gradient: {len(states)} random states for {prep.n} samples")
        out = cuda.device_array(prep.n, out_types[0])
        grads = [cuda.device_array(prep.n, out_types[0]) for _ in argnums]
        self._launch_map(kernel, prep.n, list(prep.args) + [states, int(num_directions), out] + grads)
        res = self._finish(prep, [out] + grads)
        return res[0], tuple(res[1:])

    def _rng_states(self, n, seed):
        """Generator states for ``n`` samples, as ``create_xoroshiro128p_states(n, seed)`` makes them.

        Drawing advances the states, so a pristine copy is kept on the device
        and copied (device to device) before each use: the same seed gives the
        same directions on every call without initializing states again.
        """
        key = (n, seed)
        got = self._states.get(key)
        if got is None:
            from numba.cuda.random import create_xoroshiro128p_states
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pristine = create_xoroshiro128p_states(n, seed=seed)
            work = _cuda().device_array_like(pristine)
            got = (pristine, work)
            self._states = {key: got}          # keep one set alive
        pristine, work = got
        try:
            work.copy_to_device(pristine)
        except TypeError:    # the simulator cannot copy record arrays device to device
            from numba.cuda.random import create_xoroshiro128p_states
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                work = create_xoroshiro128p_states(n, seed=seed)
        return work

    def _argnums(self, primals, argnums, what):
        if argnums is None:
            argnums = [j for j, x in enumerate(primals) if _is_float(x)]
        elif isinstance(argnums, int):
            argnums = [argnums]
        argnums = [int(a) for a in argnums]
        for a in argnums:
            if not 0 <= a < self._nparams:
                raise TangentError(f"{what} of {self.name}: argnum {a} out of range for {self._nparams} arguments")
            if not _is_float(primals[a]):
                raise TangentError(f"{what} of {self.name}: argument '{self.params[a]}' is "
                                   f"{_dtype_of(primals[a])}, which carries no derivative")
        if not argnums:
            raise TangentError(f"{what} of {self.name}: no floating-point argument to differentiate")
        return argnums

    # ------------------------------------------------- kernel plumbing
    @property
    def _tuple_out(self):
        v = getattr(self, "_tuple_out_v", None)
        return bool(v)

    def _out_types(self, dev, prep, idx_p, idx_t, variant, jvp=False):
        """Output dtypes (outs, then douts for jvp), cached per device function and argument types."""
        key = (id(dev), jvp, tuple(str(prep.numba_type(j)) for j in idx_p + idx_t))
        cache = self.__dict__.setdefault("_types_cache", {})
        got = cache.get(key)
        if got is None:
            got = cache[key] = (self._out_types_uncached(dev, prep, idx_p, idx_t, variant, jvp), self._tuple_out_v)
        self._tuple_out_v = got[1]
        return got[0]

    def _out_types_uncached(self, dev, prep, idx_p, idx_t, variant, jvp=False):
        """Numba's CUDA typing of the device function, or a sample run under the simulator."""
        if simulator_enabled():
            args = [prep.element(j) for j in idx_p + idx_t]
            with np.errstate(all="ignore"):
                res = dev(*args)
            outs = res[0] if jvp else res
            tup = isinstance(outs, tuple)
            outs = list(outs) if tup else [outs]
            fl = _float_result(prep.dtypes())
            types_ = [_host_result_dtype(v, fl) for v in outs]
            self._tuple_out_v = tup
            if jvp:
                return types_ + [_tangent_dtype(t) for t in types_]
            return types_
        from numba.np.numpy_support import as_dtype
        argtypes = tuple(prep.numba_type(j) for j in idx_p + idx_t)
        cres = dev.compile_device(argtypes)
        rt = cres.signature.return_type
        if jvp:
            rt_out, rt_d = rt.types if isinstance(rt, nbtypes.BaseTuple) else (rt, None)
        else:
            rt_out, rt_d = rt, None
        tup = isinstance(rt_out, nbtypes.BaseTuple)
        self._tuple_out_v = tup
        outs = list(rt_out.types) if tup else [rt_out]
        out_dt = [as_dtype(t) for t in outs]
        if not jvp:
            return out_dt
        ds = list(rt_d.types) if isinstance(rt_d, nbtypes.BaseTuple) else [rt_d] * len(outs)
        d_dt = [as_dtype(t) if isinstance(t, (nbtypes.Float, nbtypes.Integer)) else _tangent_dtype(o)
                for t, o in zip(ds, out_dt)]
        return out_dt + d_dt

    def _launch_map(self, kernel, n, args):
        if n == 0:
            return
        threads = 64 if simulator_enabled() else 256
        blocks = (n + threads - 1) // threads
        kernel[blocks, threads](*args)

    def _finish(self, prep, outs):
        res = []
        for o in outs:
            if prep.on_device:
                res.append(o.reshape(prep.shape) if prep.shape else o)
            else:
                h = o.copy_to_host()
                res.append(h.reshape(prep.shape) if prep.shape else h.reshape(())[()])
        return res

    def _map_kernel(self, mode, variant, kinds, extra, nout):
        key = (mode, variant, kinds, extra, nout)
        k = self._kernels.get(key)
        if k is not None:
            return k
        with _LOCK:
            k = self._kernels.get(key)
            if k is not None:
                return k
            n = self._nparams
            ns = {}
            lines = []
            ps = [f"p{j}" for j in range(n)]
            elem = [f"p{j}[i]" if kinds[j] == "a" else f"p{j}" for j in range(n)]
            if mode == "primal":
                ns["F"] = self.unit.device("primal", None, variant)
                outs = [f"o{m}" for m in range(nout)]
                params = ps + outs
                lines.append(f"r = F({', '.join(elem)})")
                lines += _store(outs, "r", nout, self._tuple_out)
            elif mode == "jvp":
                mask = extra
                ns["F"] = self.unit.device("jvp", mask, variant)
                ts = [f"t{j}" for j in range(n) if mask[j]]
                telem = [f"t{j}[i]" if kinds[n + j] == "a" else f"t{j}" for j in range(n) if mask[j]]
                outs = [f"o{m}" for m in range(nout)]
                douts = [f"do{m}" for m in range(nout)]
                params = ps + ts + outs + douts
                lines.append(f"r, dr = F({', '.join(elem + telem)})")
                lines += _store(outs, "r", nout, self._tuple_out)
                lines += _store(douts, "dr", nout, self._tuple_out)
            elif mode == "jac":
                argnums = extra
                outs = [f"o{m}" for m in range(nout)]
                jac = [f"j{k}_{m}" for k in range(len(argnums)) for m in range(nout)]
                params = ps + outs + jac
                lines += [f"a{j} = {elem[j]}" for j in range(n)]
                args = [f"a{j}" for j in range(n)]
                for k, a in enumerate(argnums):
                    ns[f"F{k}"] = self.unit.device("jvp", tuple(j == a for j in range(n)), variant)
                    lines.append(f"r, dr = F{k}({', '.join(args)}, fj.lit(1.0, a{a}))")
                    lines += _store([f"j{k}_{m}" for m in range(nout)], "dr", nout, self._tuple_out)
                lines += _store(outs, "r", nout, self._tuple_out)
            elif mode == "fgrad":
                argnums = extra
                mask = tuple(j in argnums for j in range(n))
                ns["F"] = self.unit.device("jvp", mask, variant)
                from numba.cuda import random as cr
                ns["normal"] = cr.xoroshiro128p_normal_float32 if variant == "f32" else cr.xoroshiro128p_normal_float64
                gs = [f"g{k}" for k in range(len(argnums))]
                params = ps + ["states", "ndir", "o0"] + gs
                lines += [f"a{j} = {elem[j]}" for j in range(n)]
                args = [f"a{j}" for j in range(n)]
                draws = [f"v{k} = fj.like(normal(states, i), a{a})" for k, a in enumerate(argnums)]
                vs = [f"v{k}" for k in range(len(argnums))]
                lines += draws
                lines.append(f"r, dr = F({', '.join(args + vs)})")
                lines += [f"s{k} = dr * v{k}" for k in range(len(argnums))]
                lines.append("for _k in range(1, ndir):")
                lines += ["    " + d for d in draws]
                lines.append(f"    r, dr = F({', '.join(args + vs)})")
                lines += [f"    s{k} += dr * v{k}" for k in range(len(argnums))]
                lines.append("o0[i] = r")
                lines += [f"g{k}[i] = s{k} / ndir" for k in range(len(argnums))]
            else:  # pragma: no cover
                raise ValueError(mode)
            body = "\n".join("        " + l for l in lines)
            name = f"{self.name}_{mode}_map"
            text = (HEADER.format(version=__version__, qualname=self.unit.info.qualname,
                                  where=f"{self.unit.info.filename}:{self.unit.info.tree.lineno}")
                    + f"# CUDA elementwise kernel: mode={mode}, variant={variant}, kinds={kinds}, "
                      f"extra={extra}, outputs={nout}\nfrom numba import cuda\n\n\n"
                    + f"def {name}({', '.join(params)}):\n"
                    + "    i = cuda.grid(1)\n"
                    + "    if i < o0.shape[0]:\n" + body + "\n")
            keys = ";".join(f"{k}->{_dev_key(v)}" for k, v in sorted(ns.items()))
            mod, _, path = load_module(f"{self.name}_cuda_{mode}_map", text, ns,
                                       "cudamap" + self.unit.deep_key() + keys)
            cuda = _cuda()
            opts = {} if simulator_enabled() else {"cache": self.options.get("cache", True)}
            k = cuda.jit(getattr(mod, name), fastmath=self.options.get("fastmath", False), **opts)
            k._fwdjit_path = str(path)
            self._kernels[key] = k
            return k


def _given_outputs(name, out, nout, prep, out_types):
    """Flat views of user-given device output arrays ``(out, dout)``, checked."""
    try:
        o, d = out
    except (TypeError, ValueError):
        raise TangentError(f"jvp_map of {name}: out must be a pair (out, dout)") from None
    os_ = list(o) if isinstance(o, (tuple, list)) else [o]
    ds = list(d) if isinstance(d, (tuple, list)) else [d]
    arrs = os_ + ds
    if len(arrs) != 2 * nout:
        raise TangentError(f"jvp_map of {name}: out needs {nout} output array(s) and {nout} tangent array(s)")
    flat = []
    for a, dt in zip(arrs, out_types):
        if not is_device_array(a) or tuple(a.shape) != tuple(prep.shape) or np.dtype(a.dtype) != np.dtype(dt) \
                or not a.is_c_contiguous():
            raise TangentError(f"jvp_map of {name}: out arrays must be C-contiguous device arrays of shape "
                               f"{prep.shape} and dtype {np.dtype(dt)}, given {describe(a)}")
        flat.append(a.reshape(prep.n) if a.ndim != 1 else a)
    prep.on_device = True
    return flat


def _dev_key(v):
    fn = getattr(v, "py_func", None) or getattr(v, "fn", None)
    path = getattr(v, "_fwdjit_path", None)
    if path:
        return path.rsplit("/", 1)[-1]
    if fn is not None:
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    return repr(v)


def _store(names, var, nout, tuple_out):
    if nout == 1 and not tuple_out:
        return [f"{names[0]}[i] = {var}"]
    return [f"{nm}[i] = {var}[{m}]" for m, nm in enumerate(names)]


def _tangent_dtype(dt):
    dt = np.dtype(dt)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _float_result(dtypes):
    ds = [d for d in dtypes if d is not None and d.kind in "fiub"]
    if not ds:
        return np.dtype(np.float64)
    r = np.result_type(*ds)
    return r if r.kind == "f" else np.dtype(np.float64)


def _host_result_dtype(v, float_dt):
    if isinstance(v, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(v, (int, np.integer)):
        return np.dtype(np.int64)
    return float_dt


def _cast_like(t, x):
    """A host tangent in the primal's float dtype (device tangents are taken as they are)."""
    if is_device_array(t) or not _is_float(x):
        return t
    dt = _dtype_of(x)
    if isinstance(t, np.ndarray) and t.dtype != dt:
        return t.astype(dt)
    if isinstance(t, (float, np.floating)) and not isinstance(x, float):
        return dt.type(t)
    return t


class _KernelHandle:
    """``tk[blocks, threads](*primals, *tangents_of_active)``."""

    def __init__(self, cf, kind, mask):
        self.cf, self.kind, self.mask = cf, kind, mask

    def __getitem__(self, config):
        cf, kind, mask = self.cf, self.kind, self.mask

        def launch(*args):
            cf._launch(kind, mask, config, list(args))
        return launch

    @property
    def source(self):
        return self.cf.unit.source(self.kind, self.mask)


class _Launch:
    """``f[blocks, threads]``: call it for the primal kernel, ``.jvp(primals, tangents)`` for the tangent."""

    def __init__(self, cf, config):
        self.cf, self.config = cf, config

    def __call__(self, *args):
        self.cf._launch("primal", None, self.config, list(args))

    def jvp(self, primals, tangents):
        self.cf._kernel_jvp(self.config, primals, tangents)


def cuda_fwdjit(func=None, *, fastmath=False, cache=True):
    """Decorator: ``@cuda_fwdjit`` (same as ``@fwdjit(target="cuda")``)."""
    if func is None:
        return lambda f: cuda_fwdjit(f, fastmath=fastmath, cache=cache)
    if isinstance(func, CudaFwdjitFunction):
        return func
    return CudaFwdjitFunction(func, fastmath=fastmath, cache=cache)
