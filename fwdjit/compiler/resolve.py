"""Pass 1, resolve: read a function's source and bind every free name to an object.

The AST keeps absolute line numbers of the user's file, so every later error
points at the real line.  Globals and closure values are read into a fresh
namespace; the user's module is never written to.

>>> import math
>>> def f(x):
...     return math.sin(x) * SCALE
>>> SCALE = 2.0
>>> info = parse_function(f)
>>> sorted(k for k in info.namespace if k not in ("len", "range", "min"))
['SCALE', 'math']
>>> info.params
['x']
"""
from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedSyntax


@dataclass
class FunctionInfo:
    """A parsed user function: its AST (absolute lines) and resolved names."""
    func: object
    name: str
    qualname: str
    filename: str
    tree: ast.FunctionDef
    params: list
    namespace: dict = field(default_factory=dict)
    source: str = ""
    #: (node, name) of names neither local nor defined anywhere; validate() reports the first
    #: one after the syntax checks (a nested def or ``*args`` explains its names better)
    undefined: list = field(default_factory=list)
    #: columns of ``tree`` are this much left of the file's (the source was dedented)
    indent: int = 0
    #: defaulted parameter -> its constant default value (bound at decoration; desugar fills it)
    defaults: dict = field(default_factory=dict)
    bound_functions: dict = field(default_factory=dict)     # function defaults, bound at decoration

    def source_line(self, lineno):
        line = linecache.getline(self.filename, lineno)
        return line if line else None

    def error(self, cls, node, message, hint=None, construct=None):
        """Build a TransformError of class ``cls`` located at ``node``."""
        lineno = getattr(node, "lineno", self.tree.lineno)
        col = getattr(node, "col_offset", None)
        if col is not None:
            col += self.indent
        return cls(message, filename=self.filename, lineno=lineno, col=col,
                   source_line=self.source_line(lineno), hint=hint, construct=construct)


def _get_source(func):
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError) as exc:
        raise UnsupportedSyntax(
            f"cannot read the source of {getattr(func, '__qualname__', func)!r}: {exc}",
            hint="fwdjit transforms source code: define the function in a file "
                 "(not in an interactive prompt without source), or register a rule "
                 "with fwdjit.defjvp") from None
    return "".join(lines), first


def _lambda_function(func, filename):
    """A lambda's AST as the FunctionDef ``def lambda_<line>(params): return body`` (absolute lines),
    found in its file's AST by its line and parameters and, where a line holds several such lambdas,
    by the source positions of its code (Python >= 3.11), innermost first."""
    code = func.__code__
    line = code.co_firstlineno
    try:
        module = ast.parse("".join(linecache.getlines(filename, func.__globals__)))
    except (SyntaxError, ValueError):
        module = None
    if module is None:
        raise UnsupportedSyntax(f"cannot read the source of {func.__qualname__}", filename=filename, lineno=line,
                                hint="define the function with 'def' in a file")
    params = list(code.co_varnames[:code.co_argcount])
    found = [n for n in ast.walk(module) if isinstance(n, ast.Lambda) and n.lineno == line
             and [a.arg for a in n.args.posonlyargs + n.args.args] == params]
    if len(found) > 1 and hasattr(code, "co_positions"):
        # every instruction's start, but zero-width positions (RESUME, the implicit return: column 0)
        spots = [(ln, col) for ln, end, col, end_col in code.co_positions()
                 if None not in (ln, col) and (end, end_col) != (ln, col)]

        def holds(n):
            return all((n.lineno, n.col_offset) <= spot <= (n.end_lineno, n.end_col_offset) for spot in spots)
        found = sorted((n for n in found if holds(n)),
                       key=lambda n: (n.end_lineno - n.lineno, n.end_col_offset - n.col_offset))[:1]
    if len(found) != 1:
        raise UnsupportedSyntax(
            f"cannot tell which lambda on line {line} is {func.__qualname__}", filename=filename, lineno=line,
            source_line=linecache.getline(filename, line), hint="write the function with 'def'",
            construct="lambda")
    lam = found[0]
    fdef = ast.FunctionDef(name=f"lambda_{line}", args=lam.args, body=[ast.Return(lam.body)],
                           decorator_list=[], returns=None)
    if "type_params" in ast.FunctionDef._fields:        # Python >= 3.12
        fdef.type_params = []
    for node in (fdef, fdef.body[0]):
        ast.copy_location(node, lam)
        node.end_lineno, node.end_col_offset = lam.end_lineno, lam.end_col_offset
    text = ast.get_source_segment("".join(linecache.getlines(filename)), lam) or ast.unparse(lam)
    return fdef, f"# lambda at {filename}:{line}:{lam.col_offset}\n{text}\n"


def parse_function(func) -> FunctionInfo:
    """Parse ``func`` and resolve its free names (a lambda's too: it becomes ``def lambda_<line>``)."""
    if not isinstance(func, types.FunctionType):
        raise UnsupportedSyntax(
            f"fwdjit can only transform plain Python functions, not {type(func).__name__}",
            hint="decorate a function defined with 'def'")
    if func.__name__ == "<lambda>":
        filename = inspect.getsourcefile(func) or func.__code__.co_filename
        tree, src = _lambda_function(func, filename)
        info = FunctionInfo(func=func, name=tree.name, qualname=func.__qualname__, filename=filename, tree=tree,
                            params=[a.arg for a in tree.args.args], source=src)
        _resolve_names(info)
        return info
    src, first = _get_source(func)
    raw = src
    src = textwrap.dedent(src)
    # columns in the dedented source are this much left of the file's (nested definitions)
    line_raw = next((ln for ln in raw.splitlines() if ln.strip()), "")
    line_ded = next((ln for ln in src.splitlines() if ln.strip()), "")
    indent = len(line_raw) - len(line_ded)
    filename = inspect.getsourcefile(func) or func.__code__.co_filename
    try:
        module = ast.parse(src)
    except SyntaxError as exc:  # e.g. a lambda source line
        raise UnsupportedSyntax(
            f"cannot parse the source of {func.__qualname__}: {exc.msg}",
            filename=filename, lineno=first, hint="define the function with 'def'") from None
    ast.increment_lineno(module, first - 1)
    fdefs = [n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not fdefs:
        node = module.body[0] if module.body else module
        raise UnsupportedSyntax(
            f"{func.__qualname__} is not defined with 'def'",
            filename=filename, lineno=getattr(node, "lineno", first), col=getattr(node, "col_offset", None),
            source_line=linecache.getline(filename, getattr(node, "lineno", first)),
            hint="write the function with 'def'", construct="lambda")
    tree = fdefs[0]
    tree.decorator_list = []
    params = [a.arg for a in tree.args.args]
    info = FunctionInfo(func=func, name=func.__name__, qualname=func.__qualname__,
                        filename=filename, tree=tree, params=params, source=src, indent=indent)
    if isinstance(tree, ast.AsyncFunctionDef):
        raise info.error(UnsupportedSyntax, tree, "async functions are not supported",
                         construct="async def")
    _resolve_names(info)
    return info


def local_names(tree: ast.FunctionDef) -> set:
    """Every name the function binds: parameters, assignment and loop targets."""
    names = {a.arg for a in tree.args.args}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
    return names


MUTABLE_TYPES = (list, dict, set, bytearray)


def _resolve_names(info: FunctionInfo):
    func = info.func
    locals_ = local_names(info.tree)
    closure = {}
    if func.__closure__:
        for name, cell in zip(func.__code__.co_freevars, func.__closure__):
            try:
                closure[name] = cell.cell_contents
            except ValueError:  # empty cell
                pass
    in_defaults = {id(n) for d in info.tree.args.defaults for n in ast.walk(d)}     # values: __defaults__
    for node in ast.walk(info.tree):
        if not (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)) or id(node) in in_defaults:
            continue
        name = node.id
        if name in locals_ or name in info.namespace:
            continue
        if name in closure:
            value = closure[name]
            if isinstance(value, MUTABLE_TYPES) or _is_plain_object(value):
                raise info.error(
                    UnsupportedSyntax, node,
                    f"closure over mutable state: '{name}' is a {type(value).__name__} from an enclosing function",
                    hint="pass it as an argument, or make it a tuple or a number",
                    construct="closure over mutable state")
        elif name in func.__globals__:
            value = func.__globals__[name]
            if isinstance(value, MUTABLE_TYPES):
                raise info.error(
                    UnsupportedSyntax, node,
                    f"global '{name}' is a {type(value).__name__}, which compiled code cannot read",
                    hint="pass it as an argument, or make it a tuple or a NumPy array",
                    construct="mutable global")
        elif hasattr(builtins, name):
            value = getattr(builtins, name)
        else:
            info.undefined.append((node, name))
            continue
        info.namespace[name] = value
    for name in ("len", "range", "min"):   # introduced by normalize
        if name not in locals_ and name not in info.namespace:
            info.namespace[name] = getattr(builtins, name)


def _is_plain_object(value):
    """An instance of a user class (mutable state compiled code cannot see)."""
    if isinstance(value, (int, float, complex, bool, str, bytes, tuple, np.ndarray, np.generic,
                          types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)):
        return False
    if callable(value):
        return False
    return True


def resolve_attr(info: FunctionInfo, node):
    """The object an expression like ``np.linalg.norm`` denotes, or None if it is local."""
    if isinstance(node, ast.Name):
        if node.id in info.namespace:
            return info.namespace[node.id]
        return getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        base = resolve_attr(info, node.value)
        if base is None:
            return None
        if isinstance(base, types.ModuleType) or isinstance(base, type):
            return getattr(base, node.attr, MISSING)
        return None
    return None


class _Missing:
    def __repr__(self):
        return "<missing>"


MISSING = _Missing()
