"""Pass 3a, lower: NumPy calls Numba cannot compile (or compiles wrong) become calls of fwdjit's own.

``np.sum(x, axis=(0, 2), keepdims=True)`` becomes ``fj.sum_axis(x, (0, 2), True)``,
``np.einsum("ij,jk", a, b)`` becomes ``fj.einsum("ij,jk", a, b)``, and so on
(:mod:`fwdjit.npimpl`); the rules table differentiates those functions, so
the primal and the tangent (and second derivatives) share one implementation.
The arguments that fix the result's shape (``axis``, ``keepdims``,
subscripts, ``axes``, ``n``) must be literals in the call (or module-level
constants); anything else is refused here with a located
:class:`~fwdjit.errors.UnsupportedCall`.  Forms Numba compiles right stay as
they are (``np.sum(x, axis=1)``, ``np.cumsum(x, axis=0)``, ``np.dot`` of matrices).

Runs on the primal (:mod:`~fwdjit.compiler.primal`) and in normalize (the tangent);
validate runs it once for its errors, at decoration time.

>>> import numpy as np
>>> from fwdjit.compiler.resolve import parse_function
>>> def f(x):
...     return np.mean(x, axis=-1, keepdims=True) + x.max(0)
>>> info = parse_function(f)
>>> print(ast.unparse(lower(info.tree, info)).splitlines()[1].strip())
return fj.mean_axis(x, -1, True) + fj.max_axis(x, 0, False)
"""
from __future__ import annotations

import ast
import copy

import numpy as np

from .. import rules as R
from .. import runtime
from ..errors import UnsupportedCall
from ..npimpl.products import parse_spec
from .resolve import MISSING, resolve_attr

__all__ = ["lower"]

#: NumPy's integer types: ``np.int64(x)`` casts an array too, which Numba's ``np.int64`` does not
_INT_TYPES = frozenset(t for t in set(np.sctypeDict.values())
                       if isinstance(t, type) and issubclass(t, np.integer) and t is not np.timedelta64)
_REDUCE = {np.sum: "sum", np.mean: "mean", np.prod: "prod", np.max: "max", np.amax: "max", np.min: "min",
           np.amin: "min", np.var: "var", np.std: "std", np.cumsum: "cumsum", np.cumprod: "cumprod"}
#: parameters of each reduction, in NumPy's order (functions; methods drop the first)
_PARAMS = {
    "sum": ("a", "axis", "dtype", "out", "keepdims", "initial", "where"),
    "prod": ("a", "axis", "dtype", "out", "keepdims", "initial", "where"),
    "mean": ("a", "axis", "dtype", "out", "keepdims", "where"),
    "max": ("a", "axis", "out", "keepdims", "initial", "where"),
    "min": ("a", "axis", "out", "keepdims", "initial", "where"),
    "var": ("a", "axis", "dtype", "out", "ddof", "keepdims", "where"),
    "std": ("a", "axis", "dtype", "out", "ddof", "keepdims", "where"),
    "cumsum": ("a", "axis", "dtype", "out"),
    "cumprod": ("a", "axis", "dtype", "out"),
}
_OTHER = {
    np.squeeze: ("a", "axis"), np.rollaxis: ("a", "axis", "start"), np.repeat: ("a", "repeats", "axis"),
    np.diff: ("a", "n", "axis", "prepend", "append"), np.matmul: ("a", "b"), np.inner: ("a", "b"),
    np.kron: ("a", "b"), np.tensordot: ("a", "b", "axes"), np.roll: ("a", "shift", "axis"),
    np.cross: ("a", "b", "axisa", "axisb", "axisc", "axis"),
}
_METHODS = {"squeeze": ("axis",), "repeat": ("repeats", "axis"), "clip": ("min", "max")}


class _Lower(ast.NodeTransformer):
    def __init__(self, info):
        self.info = info

    # ------------------------------------------------------------ helpers
    def error(self, node, message, hint):
        return self.info.error(UnsupportedCall, node, message, hint=hint, construct=message)

    def bind(self, node, params, name, args=None):
        args = node.args if args is None else args
        if len(args) > len(params) or any(isinstance(a, ast.Starred) for a in args) or \
                any(k.arg is None for k in node.keywords):
            raise self.error(node, f"{name}() with these arguments is not supported",
                             "pass the arguments one by one, as NumPy documents them")
        out = dict(zip(params, args))
        for k in node.keywords:
            if k.arg not in params:
                raise self.error(node, f"{name}(..., {k.arg}=...) is not supported", f"call {name} with "
                                 f"{', '.join(p for p in params if p in ('axis', 'keepdims', 'ddof', 'n'))} only")
            out[k.arg] = k.value
        return out

    def literal(self, node, what, example):
        """The Python value of a literal argument, or a located error."""
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError):
            value = self._constant(node)
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple) and any(isinstance(v, list) for v in value):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        if value is MISSING or not self._plain(value):
            raise self.error(node, f"{what} must be a literal written in the call",
                             f"it fixes the shape of the result, which fwdjit must know when it compiles: "
                             f"write it as a number or a tuple, e.g. {example}")
        return value

    def _constant(self, node):
        if isinstance(node, ast.Name) and node.id in self.info.namespace:      # a module-level constant
            return self.info.namespace[node.id]
        return MISSING

    def _plain(self, v):
        if v is None or isinstance(v, (bool, int, str)):
            return True
        return isinstance(v, tuple) and all(self._plain(e) for e in v)

    @staticmethod
    def const(value):
        return ast.parse(repr(value), mode="eval").body

    def fj(self, name, args):
        self.info.namespace.setdefault("fj", runtime)
        return ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), name, ast.Load()), args, [])

    def refuse_extra(self, node, bound, name, allowed):
        for k, v in bound.items():
            if k not in allowed and not (isinstance(v, ast.Constant) and v.value is None):
                raise self.error(v, f"{name}(..., {k}=...) is not supported",
                                 f"call {name} without {k}, and convert or write the result afterwards")

    # -------------------------------------------------------------- calls
    def visit_Subscript(self, node):
        self.generic_visit(node)
        obj = resolve_attr(self.info, node.value)
        if obj is np.r_ or obj is np.c_:
            return self.concat(node, obj is np.c_)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        obj = resolve_attr(self.info, func)
        if obj is None and isinstance(func, ast.Attribute):
            return self.method(node, func.attr, func.value)
        if obj is None or obj is MISSING:
            return node
        if R.hashable(obj) and obj in R.USER_RULES:      # the user's fwdjit.defjvp rule decides
            return node
        try:
            op = _REDUCE.get(obj)
        except TypeError:
            return node
        if op is not None:
            bound = self.bind(node, _PARAMS[op], f"np.{obj.__name__}")
            return self.reduction(node, op, bound, f"np.{obj.__name__}")
        if obj in _INT_TYPES and len(node.args) == 1 and not node.keywords:      # np.int64(x), also of an array
            return ast.copy_location(self.fj("int_cast", [node.args[0], node.func]), node)
        if obj is np.einsum:
            return self.einsum(node)
        if obj is np.gradient:
            return self.gradient(node)
        if obj is np.linalg.norm:
            return self.norm(node)
        try:
            params = _OTHER.get(obj)
        except TypeError:
            return node
        if params is None:
            return node
        bound = self.bind(node, params, f"np.{obj.__name__}")
        return getattr(self, "fn_" + obj.__name__)(node, bound)

    def method(self, node, attr, recv):
        if attr in _PARAMS:
            params = _PARAMS[attr]
            bound = self.bind(node, params, f".{attr}", [recv] + node.args)
            return self.reduction(node, attr, bound, f".{attr}")
        if attr in _METHODS:
            bound = self.bind(node, ("a",) + _METHODS[attr], f".{attr}", [recv] + node.args)
            return getattr(self, "fn_" + attr)(node, bound)
        return node

    # --------------------------------------------------------- reductions
    def reduction(self, node, op, bound, name):
        self.refuse_extra(node, bound, name, ("a", "axis", "keepdims", "ddof"))
        example = f"{name}(x, axis=1)" if name.startswith("np") else f"x{name}(axis=1)"
        axis = self.literal(bound["axis"], "axis", example) if "axis" in bound else None
        keep = self.literal(bound["keepdims"], "keepdims", f"{name}(..., keepdims=True)") \
            if "keepdims" in bound else False
        ddof = bound.get("ddof")
        ddof_zero = ddof is None or (isinstance(ddof, ast.Constant) and ddof.value == 0)
        if axis is None and not keep and ddof_zero and op not in ("var", "std", "cumprod"):
            return self.numba_form(node, name, False)   # Numba's own (var, std, cumprod: ours, with a rule)
        if op in ("sum", "cumsum") and isinstance(axis, int) and not keep:
            return self.numba_form(node, name, True)    # Numba's own is right
        x = bound["a"]
        if op in ("cumsum", "cumprod"):
            return ast.copy_location(self.fj(f"{op}_axis", [x, self.const(axis)]), node)
        if op in ("var", "std"):
            return ast.copy_location(self.fj(f"{op}_axis", [x, self.const(axis), ddof if ddof is not None
                                                            else ast.Constant(0), self.const(bool(keep))]), node)
        return ast.copy_location(self.fj(f"{op}_axis", [x, self.const(axis), self.const(bool(keep))]), node)

    @staticmethod
    def numba_form(node, name, keep_axis):
        """The reduction as Numba's own takes it: the array and, where ``keep_axis``, its one axis.
        NumPy's defaults written out (``axis=None``, ``keepdims=False``, ``ddof=0``) are dropped:
        Numba's reductions take no keepdims and, but for sum, no axis. An unchanged call is returned
        as it is."""
        args = node.args[:(0 if name.startswith(".") else 1) + keep_axis]
        keywords = [k for k in node.keywords if keep_axis and k.arg == "axis"]
        if len(args) == len(node.args) and len(keywords) == len(node.keywords):
            return node
        return ast.copy_location(ast.Call(func=node.func, args=args, keywords=keywords), node)

    # ----------------------------------------------------------- products
    def fn_matmul(self, node, b):
        return ast.copy_location(self.fj("matmul", [b["a"], b["b"]]), node)

    def fn_inner(self, node, b):
        return ast.copy_location(self.fj("inner", [b["a"], b["b"]]), node)

    def fn_kron(self, node, b):
        return ast.copy_location(self.fj("kron", [b["a"], b["b"]]), node)

    def fn_tensordot(self, node, b):
        axes = self.literal(b["axes"], "axes", "np.tensordot(a, b, axes=((1,), (0,)))") if "axes" in b else 2
        if isinstance(axes, int):
            pair = [self.const(axes), ast.Constant(None)]
        elif isinstance(axes, tuple) and len(axes) == 2:
            pair = [self.const(axes[0]), self.const(axes[1])]
        else:
            raise self.error(b["axes"], "np.tensordot axes must be an int or a pair of sequences",
                             "e.g. axes=1 or axes=((1, 2), (0, 1))")
        return ast.copy_location(self.fj("tensordot", [b["a"], b["b"]] + pair), node)

    def einsum(self, node):
        if not node.args or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.error(node, "np.einsum with keyword or unpacked arguments is not supported",
                             "write np.einsum('ij,jk->ik', a, b) with the operands listed")
        subs = self.literal(node.args[0], "the einsum subscripts", "np.einsum('ij,jk->ik', a, b)")
        if not isinstance(subs, str):
            raise self.error(node.args[0], "np.einsum in operand-list form is not supported",
                             "write the subscripts as a string, e.g. np.einsum('ij,jk->ik', a, b)")
        try:
            parse_spec(subs, len(node.args) - 1)
        except ValueError as exc:
            raise self.error(node.args[0], f"np.einsum: {exc}", "write one letter per axis of each operand, "
                             "e.g. np.einsum('ij,jk->ik', a, b)") from None
        return ast.copy_location(self.fj("einsum", [ast.Constant(subs)] + node.args[1:]), node)

    def fn_cross(self, node, b):
        if not any(k in b for k in ("axisa", "axisb", "axisc", "axis")):
            return node                       # Numba's own: vectors along the last axis
        ax = {k: self.literal(b[k], k, "np.cross(a, b, axis=0)") if k in b else -1
              for k in ("axisa", "axisb", "axisc")}
        if "axis" in b:
            a = self.literal(b["axis"], "axis", "np.cross(a, b, axis=0)")
            if a is not None:
                ax = {k: a for k in ax}
        return ast.copy_location(self.fj("cross", [b["a"], b["b"]] + [self.const(ax[k]) for k in
                                                                        ("axisa", "axisb", "axisc")]), node)

    def norm(self, node):
        """``np.linalg.norm(x, ord, axis=k, keepdims)`` as NumPy defines it along the axes (reductions
        fwdjit has); without ``axis``, Numba's own (whole-array norms, where the rule takes no ``ord``)."""
        b = self.bind(node, ("x", "ord", "axis", "keepdims"), "np.linalg.norm")
        axis = self.literal(b["axis"], "axis", "np.linalg.norm(x, axis=1)") if "axis" in b else None
        keep = self.literal(b["keepdims"], "keepdims", "np.linalg.norm(x, axis=1, keepdims=True)") \
            if "keepdims" in b else False
        ord_ = _norm_ord(self, b["ord"]) if "ord" in b else None
        self.info.namespace.setdefault("np", np)
        if axis is None:
            if keep:
                raise self.error(node, "np.linalg.norm with keepdims and no axis is not supported",
                                 "pass the axes: np.linalg.norm(x, axis=(0, 1), keepdims=True) for a matrix")
            if ord_ is not None:
                return node                   # Numba's own; its rule refuses ord, with a hint
            # NumPy's norm of any ndim without ord: the 2-norm of the flattened array (Numba: 1-d, 2-d only)
            return ast.copy_location(ast.Call(node.func, [_np_call("ravel", b["x"])], []), node)
        axes = axis if isinstance(axis, tuple) else (axis,)
        out = _norm_along(lambda op, arg: self.fj(f"{op}_axis", [arg, self.const(axes), self.const(bool(keep))]),
                          b["x"], len(axes), ord_, self.const)
        if out is None:
            raise self.error(node, f"np.linalg.norm with ord={ord_!r} and axis={axis!r} is not supported",
                             "vector norms (one axis) take ord None, 1, 2, inf, -inf or another number, "
                             "matrix norms (two axes) ord None or 'fro'")
        return ast.copy_location(out, node)

    def fn_clip(self, node, b):
        """``x.clip(lo, hi)``: ``np.clip(x, lo, hi)`` (Numba has the function, not the method)."""
        self.info.namespace.setdefault("np", np)
        none = ast.Constant(None)
        return ast.copy_location(_np_call("clip", b["a"], b.get("min", none), b.get("max", none)), node)

    # ------------------------------------------------------------- shapes
    def fn_squeeze(self, node, b):
        axis = self.literal(b["axis"], "axis", "np.squeeze(x, axis=0)") if "axis" in b else None
        if axis is None:
            raise self.error(node, "np.squeeze without axis is not supported",
                             "the number of dimensions of the result depends on the shape's values, which "
                             "compiled code must know in advance: pass the axes to drop, e.g. np.squeeze(x, axis=0)")
        return ast.copy_location(self.fj("squeeze_axis", [b["a"], self.const(axis)]), node)

    def fn_rollaxis(self, node, b):
        axis = self.literal(b["axis"], "axis", "np.rollaxis(x, 2)") if "axis" in b else None
        start = self.literal(b["start"], "start", "np.rollaxis(x, 2, 0)") if "start" in b else 0
        return ast.copy_location(self.fj("rollaxis", [b["a"], self.const(axis), self.const(start)]), node)

    def fn_repeat(self, node, b):
        axis = self.literal(b["axis"], "axis", "np.repeat(x, 2, axis=0)") if "axis" in b else None
        if axis is None:
            return node                       # Numba's own (flattened)
        return ast.copy_location(self.fj("repeat_axis", [b["a"], b["repeats"], self.const(axis)]), node)

    def fn_roll(self, node, b):
        axis = self.literal(b["axis"], "axis", "np.roll(x, 1, axis=0)") if "axis" in b else None
        if axis is None:
            return node                       # Numba's own (flattened)
        if isinstance(axis, tuple):
            raise self.error(b["axis"], "np.roll over several axes is not supported",
                             "roll one axis at a time: np.roll(np.roll(x, 1, axis=0), 2, axis=1)")
        return ast.copy_location(self.fj("roll_axis", [b["a"], b["shift"], self.const(axis)]), node)

    def fn_diff(self, node, b):
        self.refuse_extra(node, b, "np.diff", ("a", "n", "axis"))
        if "axis" not in b:
            return node                       # Numba's own (last axis)
        n = self.literal(b["n"], "n", "np.diff(x, n=2, axis=0)") if "n" in b else 1
        axis = self.literal(b["axis"], "axis", "np.diff(x, axis=0)")
        return ast.copy_location(self.fj("diff_axis", [b["a"], self.const(n), self.const(axis)]), node)

    def gradient(self, node):
        if len(node.args) > 2 or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.error(node, "np.gradient with one spacing per axis is not supported",
                             "pass one scalar spacing and axis=, e.g. np.gradient(f, h, axis=0)")
        kw = {k.arg: k.value for k in node.keywords}
        if set(kw) - {"axis", "edge_order"} or (
                "edge_order" in kw and self.literal(kw["edge_order"], "edge_order", "edge_order=1") != 1):
            raise self.error(node, "np.gradient with these arguments is not supported",
                             "pass one scalar spacing and axis= (edge_order 1), e.g. np.gradient(f, h, axis=0)")
        axis = self.literal(kw["axis"], "axis", "np.gradient(f, h, axis=0)") if "axis" in kw else None
        h = node.args[1] if len(node.args) > 1 else ast.Constant(1.0)
        return ast.copy_location(self.fj("gradient", [node.args[0], h, self.const(axis)]), node)

    def concat(self, node, columns):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        name = "np.c_" if columns else "np.r_"
        for it in items:
            if isinstance(it, ast.Constant) and isinstance(it.value, str):
                raise self.error(it, f"{name}[...] with a directive string is not supported",
                                 "concatenate the arrays: np.concatenate((a, b), axis=1)")
            if isinstance(it, ast.Slice) and it.upper is None:
                raise self.error(it, f"{name}[...] with a slice without an end is not supported",
                                 "write the end: np.r_[a, 0:3]")
        # a slice is a range, as in NumPy: np.r_[a, 1:10:2] appends np.arange(1, 10, 2)
        items = [ast.copy_location(_np_call("arange", it.lower or ast.Constant(0), it.upper,
                                            it.step or ast.Constant(1)), it) if isinstance(it, ast.Slice) else it
                 for it in items]
        if columns:
            parts = [self.fj("c_item", [it]) for it in items]
            call = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "concatenate", ast.Load()),
                            [ast.Tuple(parts, ast.Load())], [ast.keyword("axis", ast.Constant(1))])
        else:
            # a number written literally takes a float array's dtype, as NumPy's weak scalars do
            like = next((it for it in items if R.const_value(it) is None), None)
            parts = [self.fj("r_item", [it]) if like is None or R.const_value(it) is None
                     else self.fj("r_scalar", [it, like]) for it in items]
            call = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "concatenate", ast.Load()),
                            [ast.Tuple(parts, ast.Load())], [])
        self.info.namespace.setdefault("np", np)
        return ast.copy_location(call, node)


def _np_call(name, *args):
    return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()), list(args), [])


def _norm_along(reduce, x, naxes, ord_, const):
    """NumPy's definition of the ``ord`` norm of ``x`` along ``naxes`` axes, written with ``reduce(op, arg)``
    (fwdjit's reductions over those axes); None where NumPy's is not one of these."""
    square = ast.BinOp(x, ast.Pow(), ast.Constant(2))
    if naxes == 2:
        return _np_call("sqrt", reduce("sum", square)) if ord_ in (None, "fro") else None
    if naxes != 1 or isinstance(ord_, str) or ord_ == 0:
        return None
    if ord_ is None or ord_ == 2:
        return _np_call("sqrt", reduce("sum", square))
    if ord_ in (np.inf, -np.inf):
        return reduce("max" if ord_ > 0 else "min", _np_call("abs", x))
    if ord_ == 1:
        return reduce("sum", _np_call("abs", x))
    powered = reduce("sum", ast.BinOp(_np_call("abs", x), ast.Pow(), const(float(ord_))))
    return ast.BinOp(powered, ast.Pow(), const(1.0 / ord_))


def _norm_ord(lowerer, node):
    """The value of ``ord``: a literal, ``np.inf`` or ``-np.inf`` (or a module-level constant)."""
    neg = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    value = resolve_attr(lowerer.info, node.operand if neg else node)
    if isinstance(value, float) and not isinstance(node, ast.Constant):      # np.inf
        return -value if neg else value
    value = lowerer.literal(node, "ord", "np.linalg.norm(x, np.inf, axis=1)")
    if value is not None and not isinstance(value, (int, float, str)):
        raise lowerer.error(node, f"np.linalg.norm with ord={value!r} is not supported",
                            "ord is None, a number, np.inf, -np.inf or 'fro'")
    return value


def lower(tree, info):
    """A copy of ``tree`` with the NumPy calls Numba lacks pointed at :mod:`fwdjit.npimpl` (``fj.*``)."""
    return ast.fix_missing_locations(_Lower(info).visit(copy.deepcopy(tree)))
