r"""What CUDA device code may call: the transform-time check and the NumPy -> math rewrite.

:func:`check_device_code`: a function's resolved source in, ``UnsupportedCall``
or ``UnsupportedSyntax`` (file, line, caret, hint) out for what device code
cannot do: allocate arrays, call array-level NumPy functions, ``@``.

:func:`device_rewrite`: a generated function in, the same function out with
the NumPy scalar calls that numba-cuda cannot lower replaced by ``math``
functions, operators or small helpers (``_fjc_*``, overloaded here with
libdevice), plus the helpers it uses:

>>> import ast, numpy as np
>>> fdef = ast.parse("def f(x):\n    return np.exp(x) + np.sign(x) + np.power(x, 2)").body[0]
>>> fdef, helpers = device_rewrite(fdef, {"np": np})
>>> print(ast.unparse(fdef))
def f(x):
    return math.exp(x) + _fjc_sign(x) + x ** 2
>>> sorted(helpers)
['_fjc_sign']
"""
from __future__ import annotations

import ast
import builtins
import math
import types as pytypes

import numpy as np
from numba import types as nbtypes
from numba.extending import overload

from ... import rules as R
from ...errors import UnsupportedCall, UnsupportedSyntax

__all__ = ["check_device_code", "device_rewrite", "qualname"]


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
    """A function of the ``math`` module."""
    return getattr(obj, "__module__", None) == "math" or any(obj is v for v in vars(math).values())


def qualname(obj):
    """How a callee is named in messages: ``np.sum``, ``math.exp``, ``f``."""
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



def check_device_code(info, resolver):
    """Raise for the first call or operation in ``info``'s source that CUDA device code cannot run.

    ``resolver`` classifies the calls (the unit's :class:`~fwdjit.targets.cuda.device.CudaResolver`).
    """
    for node in ast.walk(info.tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            raise info.error(UnsupportedSyntax, node, "matrix product (@) in CUDA device code",
                             hint="write the product as loops over the elements", construct="@ in device code")
        if not isinstance(node, ast.Call):
            continue
        kind, obj, rule = resolver.classify(node)
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
        name = qualname(obj)
        if R.hashable(obj) and obj in R.USER_RULES:
            continue
        if R.hashable(obj) and obj in _ALLOC_FUNCS:
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
        if R.hashable(obj) and (obj in _BUILTINS_OK or obj in _REWRITE):
            continue
        if isinstance(obj, type) and issubclass(obj, (np.number, np.bool_)):
            continue
        mod = getattr(obj, "__module__", "") or ""
        if mod.startswith("numpy.random") or getattr(obj, "__self__", None).__class__.__name__ == "RandomState":
            raise info.error(UnsupportedCall, node, f"{name} (NumPy random numbers) in CUDA device code",
                             hint="use numba.cuda.random (xoroshiro128p_normal_float64...) with states "
                                  "passed in", construct="np.random in device code")
        if mod.split(".")[0] == "numpy" or (R.hashable(obj) and obj in R.RULES):
            raise info.error(UnsupportedCall, node,
                             f"{name} is an array-level NumPy function, not available in CUDA device code",
                             hint="write it as a loop over the elements", construct=f"call to {name}")
        raise info.error(UnsupportedCall, node, f"cannot call {name} from CUDA device code",
                         hint="call a user function (it becomes a device function), a math function or a "
                              "CUDA intrinsic", construct=f"call to {name}")


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
    """Overload ``pyfn`` with libdevice's ``dname`` (float64) / ``fname`` (float32); ints as float64."""
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
    """The object a name or ``module.attr`` chain denotes in the namespace ``ns`` (or builtins)."""
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


def device_rewrite(fdef, ns):
    """``(fdef rewritten, {helper name: helper})``: see the module's docstring."""
    rw = _DeviceRewriter(ns)
    fdef = rw.visit(fdef)
    return ast.fix_missing_locations(fdef), {k: _HELPERS[k] for k in rw.used}

