"""Desugar the everyday Python that Numba does not take as it is, before any other pass sees it.

Runs at the end of :func:`~fwdjit.compiler.validate.validate`, on ``info.tree`` in place,
so the primal, the tangent and every target get the same code; new nodes keep the
line and column of what they replace, so errors still point at the user's source.

* list literals become tuples: ``np.array([a, b, c])``, ``np.stack([x, y])``,
  and arrays where a reduction reads them (``np.mean([a, b])``, ``np.linalg.norm((x, y))``),
  ``axes=[0, 1]``, ``b = [1.0, a * a, 2.0]`` (read, indexed, looped over, turned
  into an array); a list used as an index becomes an int array (NumPy's fancy index):
  ``x[[0, 2]]`` is ``x[np.array((0, 2))]``, and so is ``x[idx]`` after ``idx = [0, 2]``;
  a list indexed by a variable (``b[i]``) is an array too (Numba indexes tuples by a
  variable only when their items share one type).
  Mutating a list (``b.append(v)``, ``b[i] = v``, ``b += [v]``) is refused, located;
* the builtin ``sum`` of a list or tuple literal becomes additions: ``sum([x, y])`` is ``x + y``;
* dtype strings become NumPy types: ``x.astype("float32")``, ``dtype="float64"``;
  other strings stay as they are where they are arguments of calls (einsum subscripts);
* constant default parameter values (``def f(x, n=3)``) are bound when the function is
  decorated: ``info.defaults`` maps each defaulted parameter to its value (callers may
  omit it), and calls to other user functions that omit defaulted arguments get them
  written in.  A function default (``def f(x, act=np.tanh)``) is bound at decoration: the body calls
  that function, and the compiled code has no such parameter.  A default that is neither (an array,
  a list, an object) is refused.

>>> import ast
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> import numpy as np
>>> tree = ast.parse("def f(x, i=1):\\n    b = [x, 2.0 * x]\\n    return x[[0, i]].astype('float32'), b[1]").body[0]
>>> info = FunctionInfo(func=None, name="f", qualname="f", filename="<demo>", tree=tree, params=["x", "i"],
...                     namespace={"np": np})
>>> desugar(info, defaults=(1,))
>>> print(ast.unparse(info.tree))
def f(x, i):
    b = (x, 2.0 * x)
    return (x[np.array((0, i))].astype(np.float32), b[1])
>>> info.defaults
{'i': 1}
"""
from __future__ import annotations

import ast
import builtins

import numpy as np

from ..errors import UnsupportedSyntax
from .callees import user_python_function
from .resolve import resolve_attr

__all__ = ["desugar", "constant_default", "fill_defaults"]

_MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"}
_NUMBER = (bool, int, float, np.bool_, np.integer, np.floating)


def constant_default(value):
    """Whether ``value`` may be a default parameter value: a number, bool, None, str or a tuple of them."""
    if value is None or isinstance(value, (_NUMBER, str)):
        return True
    return isinstance(value, tuple) and all(constant_default(v) for v in value)


def fill_defaults(params, defaults, args):
    """``args`` (a tuple of leading positional arguments) completed with the defaults of the
    parameters they omit; unchanged when complete, too long, or when an omitted one has no default."""
    n = len(args)
    if n >= len(params) or not defaults or any(p not in defaults for p in params[n:]):
        return args
    return tuple(args) + tuple(defaults[p] for p in params[n:])


def _np(info):
    """The name generated code uses for NumPy (``np`` unless the user's function binds that name)."""
    if info.namespace.get("np") is np:
        return "np"
    for name in ("np", "fj_numpy"):
        if name not in info.namespace and not any(isinstance(n, ast.Name) and n.id == name
                                                  for n in ast.walk(info.tree)):
            info.namespace[name] = np
            return name
    raise info.error(UnsupportedSyntax, info.tree, "list literal in a function that rebinds 'np'",
                     construct="list literal")


def _attr(info, node, attr):
    return ast.copy_location(ast.Attribute(ast.copy_location(ast.Name(_np(info), ast.Load()), node), attr,
                                           ast.Load()), node)


def _as_tuple(node):
    return ast.copy_location(ast.Tuple([_lists_to_tuples(e) for e in node.elts], ast.Load()), node)


def _lists_to_tuples(node):
    if isinstance(node, ast.List):
        return _as_tuple(node)
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            setattr(node, field, [_lists_to_tuples(v) if isinstance(v, ast.AST) else v for v in value])
        elif isinstance(value, ast.AST):
            setattr(node, field, _lists_to_tuples(value))
    return node


#: NumPy reductions whose first argument may be a list or tuple of numbers (Numba's take arrays only)
_ARRAY_FIRST = {np.sum, np.mean, np.std, np.var, np.prod, np.max, np.min, np.amax, np.amin, np.median, np.ptp,
                np.average, np.cumsum, np.cumprod, np.linalg.norm, np.nansum, np.nanmean, np.nanmax, np.nanmin}


def _takes_array(obj):
    try:
        return obj in _ARRAY_FIRST
    except TypeError:       # unhashable
        return False


def _int_array(info, node):
    """``[0, 2]`` as ``np.array((0, 2))`` (also ``[a, b]`` as ``np.array((a, b))``)."""
    call = ast.Call(_attr(info, node, "array"), [_as_tuple(node)], [])
    return ast.copy_location(call, node)


class _Desugar(ast.NodeTransformer):
    def __init__(self, info, lists):
        self.info = info
        self.lists = lists          # names bound to list literals somewhere in the function
        self.index_lists = set()    # ... of which some are used as an index or indexed by a variable

    def visit_Subscript(self, node):
        sl = node.slice
        elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        new = []
        for e in elts:
            if isinstance(e, ast.List):
                e = _int_array(self.info, self.generic_visit(e))
            elif isinstance(e, ast.Name) and e.id in self.lists:
                self.index_lists.add(e.id)
            new.append(e)
        if isinstance(node.value, ast.Name) and node.value.id in self.lists \
                and not (isinstance(sl, ast.Constant) and isinstance(sl.value, int)):
            # b = [1.0, a * a, 2.0]; b[i]: Numba indexes a tuple by a variable only when its items share
            # one type, so b is an array (of rows, for a list of arrays), as np.array(b) would be
            self.index_lists.add(node.value.id)
        if isinstance(sl, ast.Tuple):
            sl.elts = new
        else:
            node.slice = new[0]
        node.value = self.visit(node.value)
        node.slice = self.visit(node.slice)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in _MUTATORS and isinstance(f.value, ast.Name) \
                and f.value.id in self.lists:
            raise self.info.error(UnsupportedSyntax, node, f"{f.value.id}.{f.attr}(): fwdjit compiles a list "
                                  f"literal as a tuple, which cannot change",
                                  hint="build an array instead: np.zeros(n), then assign its elements",
                                  construct="list mutation")
        first = node.args[0] if node.args else None
        if (isinstance(first, ast.Tuple) or isinstance(first, ast.Name) and first.id in self.lists) \
                and _takes_array(resolve_attr(self.info, f)):
            # np.mean([a, b]), np.mean(b) after b = [a, c]: np.mean(np.array((a, b))), np.mean(np.array(b))
            node.args[0] = ast.copy_location(ast.Call(_attr(self.info, first, "array"), [first], []), first)
        if first is not None and isinstance(first, ast.Tuple) and not node.keywords and len(node.args) <= 2 \
                and not any(isinstance(e, ast.Starred) for e in first.elts) \
                and resolve_attr(self.info, f) is builtins.sum:
            return _sum_of_literal(node)
        if isinstance(f, ast.Attribute) and f.attr == "astype" and node.args:
            node.args[0] = self._dtype(node.args[0])
        for k in node.keywords:
            if k.arg == "dtype":
                k.value = self._dtype(k.value)
        self._fill_call_defaults(node)
        return node

    def visit_List(self, node):
        self.generic_visit(node)
        return _as_tuple(node)

    def _dtype(self, node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                name = np.dtype(node.value).name
            except TypeError:
                return node
            if isinstance(getattr(np, name, None), type):
                return _attr(self.info, node, name)
        return node

    def _fill_call_defaults(self, node):
        """A call to a user function gets its arguments by position: keyword arguments are placed, and
        omitted defaulted ones written in (the callee's compiled code takes every parameter, but those
        bound to function defaults)."""
        obj = resolve_attr(self.info, node.func)
        py = user_python_function(obj) if obj is not None else None     # not np.ones(shape, dtype=None)
        code = getattr(py, "__code__", None)
        if code is None or any(isinstance(a, ast.Starred) for a in node.args) \
                or (not py.__defaults__ and not node.keywords):
            return
        names = code.co_varnames[:code.co_argcount]
        defaults = dict(zip(names[len(names) - len(py.__defaults__ or ()):], py.__defaults__ or ()))
        given = dict(zip(names, node.args))
        for k in node.keywords:
            if k.arg not in names or k.arg in given:
                return          # Python's own TypeError names it (or Numba's, located)
            given[k.arg] = k.value
        args = []
        for name in names:
            if name in defaults and function_default(defaults[name]):
                if name in given:
                    raise self.info.error(UnsupportedSyntax, given[name], f"'{name}' of {py.__name__} defaults to "
                                          f"a function, which fwdjit binds when it transforms {py.__name__}: "
                                          f"it cannot be passed", hint=f"call a function whose default is the one "
                                          f"you pass (or wrap {py.__name__})", construct="function argument")
                continue        # bound: not a parameter of the compiled callee
            if name in given:
                args.append(given[name])
            elif name in defaults and constant_default(defaults[name]):
                args.append(ast.copy_location(_const(defaults[name]), node))
            else:
                return          # missing, or a default fwdjit refuses: the callee's transform says so
        node.args, node.keywords = args, []


def _sum_of_literal(node):
    """``sum([a, b, c], start)`` as ``start + a + b + c`` (``start`` 0 when omitted, kept only when it is
    not 0 or there is a single item: ``sum([x])`` is a new array, not ``x``)."""
    elts = node.args[0].elts
    start = node.args[1] if len(node.args) > 1 else ast.copy_location(ast.Constant(0), node)
    keep_start = len(node.args) > 1 or len(elts) < 2
    out = start if keep_start else elts[0]
    for e in (elts if keep_start else elts[1:]):
        out = ast.copy_location(ast.BinOp(out, ast.Add(), e), node)
    return out


def _const(value):
    if isinstance(value, tuple):
        return ast.Tuple([_const(v) for v in value], ast.Load())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _list_names(tree):
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.List):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _check_list_writes(info, tree, lists):
    for n in ast.walk(tree):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AugAssign) else []
        for t in targets:
            base = t
            while isinstance(base, ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name) and base.id in lists and (t is not base or isinstance(n, ast.AugAssign)):
                raise info.error(UnsupportedSyntax, t, f"writing into the list '{base.id}': fwdjit compiles a "
                                 f"list literal as a tuple, which cannot change",
                                 hint="build an array instead (np.array([...]) or np.zeros(n)) and write into it",
                                 construct="list mutation")


def function_default(value):
    """Whether ``value`` may be a function default (``def f(x, act=np.tanh)``): a function, NumPy ufunc,
    builtin or compiled function, which the body then calls as it would a global of that value."""
    return callable(value) and not isinstance(value, type) and not constant_default(value)


def _bind_defaults(info, defaults):
    args = info.tree.args
    info.defaults = {}
    info.bound_functions = {}
    if not args.defaults:
        return
    values = tuple(defaults) if defaults is not None else (None,) * len(args.defaults)
    params = [a.arg for a in args.args][len(args.args) - len(args.defaults):]
    for p, node, value in zip(params, args.defaults, values):
        if defaults is None:
            if not isinstance(node, ast.Constant) and not (isinstance(node, ast.UnaryOp)
                                                            and isinstance(node.operand, ast.Constant)):
                raise _default_error(info, node, p)
            value = ast.literal_eval(node)
        if function_default(value):
            info.bound_functions[p] = value       # not a parameter of the compiled code: a name for the body
            continue
        if not constant_default(value):
            raise _default_error(info, node, p)
        info.defaults[p] = value
    args.defaults = []
    if info.bound_functions:
        args.args = [a for a in args.args if a.arg not in info.bound_functions]
        info.params = [a for a in info.params if a not in info.bound_functions]
        info.namespace.update(info.bound_functions)


def _default_error(info, node, p):
    return info.error(UnsupportedSyntax, node, f"the default value of '{p}' is not a constant "
                      f"(a number, bool, None, string or tuple of them) or a function",
                      hint="pass the value as an argument, or make the default a constant and "
                           "build the array inside the function", construct="non-constant default")


def desugar(info, defaults=None):
    """Rewrite ``info.tree`` in place (see the module docstring); ``defaults``: the function's
    ``__defaults__`` (by default ``info.func``'s; read from the source when there is no function)."""
    if defaults is None and info.func is not None:
        defaults = getattr(info.func, "__defaults__", None) or ()
    _bind_defaults(info, defaults)
    lists = _list_names(info.tree)
    _check_list_writes(info, info.tree, lists)
    d = _Desugar(info, lists)
    info.tree.body = [d.visit(s) for s in info.tree.body]
    if d.index_lists:       # idx = [0, 2]; x[idx] (a fancy index) or idx[i]: idx is an array
        for n in ast.walk(info.tree):
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in d.index_lists
                                                 for t in n.targets) and isinstance(n.value, ast.Tuple):
                n.value = ast.copy_location(ast.Call(_attr(info, n.value, "array"), [n.value], []), n.value)
    ast.fix_missing_locations(info.tree)
