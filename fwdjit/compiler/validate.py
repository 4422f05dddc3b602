"""Pass 2, validate: a whitelist of the Python syntax fwdjit differentiates.

Anything else raises :class:`~fwdjit.errors.UnsupportedSyntax` naming the
construct, with file, line, a caret and a hint.

>>> import ast
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> tree = ast.parse("def f(x):\\n    return [v for v in x]").body[0]
>>> info = FunctionInfo(func=None, name="f", qualname="f", filename="<demo>", tree=tree, params=["x"])
>>> try:
...     validate(info)
... except Exception as e:
...     print(type(e).__name__, e.construct)
UnsupportedSyntax list comprehension
"""
from __future__ import annotations

import ast

from ..errors import UnsupportedSyntax
from .desugar import desugar
from .lower import lower

_STMT_HINTS = {
    ast.Try: ("try/except", "compiled derivative code cannot catch exceptions; check inputs before calling"),
    ast.With: ("with statement", "move the context manager outside the differentiated function"),
    ast.ClassDef: ("class definition", "define classes outside; pass arrays and numbers in"),
    ast.FunctionDef: ("nested function", "define the helper at module level and call it"),
    ast.AsyncFunctionDef: ("nested async function", "define the helper at module level"),
    ast.Global: ("global statement", "return the value instead of writing a global"),
    ast.Nonlocal: ("nonlocal statement", "return the value instead of writing an enclosing variable"),
    ast.Delete: ("del statement", "let the variable go out of scope instead"),
    ast.Import: ("import inside the function", "import at module level"),
    ast.ImportFrom: ("import inside the function", "import at module level"),
    ast.Raise: ("raise statement", "validate inputs before calling the differentiated function"),
    ast.AsyncFor: ("async for", "use a plain for loop"),
    ast.AsyncWith: ("async with", "move it outside the function"),
}
if hasattr(ast, "Match"):
    _STMT_HINTS[ast.Match] = ("match statement", "use if/elif/else")
if hasattr(ast, "TryStar"):
    _STMT_HINTS[ast.TryStar] = ("try/except*", "check inputs before calling")

_EXPR_HINTS = {
    ast.Lambda: ("lambda", "define a function with 'def' at module level and call it"),
    ast.GeneratorExp: ("generator expression", "write a for loop that fills an array"),
    ast.ListComp: ("list comprehension", "write a for loop that fills a NumPy array"),
    ast.SetComp: ("set comprehension", "write a for loop"),
    ast.DictComp: ("dict comprehension", "write a for loop"),
    ast.Yield: ("yield (generator)", "return an array of all values instead"),
    ast.YieldFrom: ("yield from (generator)", "return an array of all values instead"),
    ast.Await: ("await", "compiled code cannot await"),
    ast.JoinedStr: ("f-string (string formatting)", "compiled derivative code works on numbers; format outside"),
    ast.Dict: ("dict", "use a tuple or separate arguments"),
    ast.Set: ("set", "use a tuple or an array"),
    ast.Starred: ("starred expression (*args)", "pass arguments explicitly"),
    ast.NamedExpr: ("assignment expression (:=)", "assign on a separate line"),
}

_ALLOWED_STMTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.If, ast.For, ast.While,
                  ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.Assert)

_ALLOWED_EXPRS = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
                  ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.keyword,
                  ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


def validate(info):
    """Raise UnsupportedSyntax for the first construct outside the subset."""
    tree = info.tree
    args = tree.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise info.error(UnsupportedSyntax, tree, "*args, **kwargs and keyword-only parameters are not supported",
                         hint="list the parameters explicitly", construct="variadic parameters")
    for stmt in tree.body:
        _check_stmt(info, stmt)
    for node, name in getattr(info, "undefined", ()):
        raise info.error(UnsupportedSyntax, node, f"name '{name}' is not defined",
                         hint="define it before decorating the function", construct="undefined name")
    desugar(info)       # list literals, dtype strings, default values: see fwdjit.compiler.desugar
    if getattr(info, "func", None) is not None:
        lower(info.tree, info)     # NumPy forms fwdjit cannot compile: refused now, at decoration


def _err(info, node, construct, hint):
    return info.error(UnsupportedSyntax, node, f"{construct} is not supported by fwdjit",
                      hint=hint, construct=construct)


def _check_stmt(info, node):
    for cls, (construct, hint) in _STMT_HINTS.items():
        if isinstance(node, cls):
            raise _err(info, node, construct, hint)
    if not isinstance(node, _ALLOWED_STMTS):
        raise _err(info, node, type(node).__name__ + " statement", "rewrite it with assignments, if, for and while")
    if isinstance(node, (ast.For, ast.While)) and node.orelse:
        raise _err(info, node.orelse[0], "else clause on a loop", "use a flag variable and an if after the loop")
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring or a string statement: dropped
        _check_expr(info, node.value)
        if not isinstance(node.value, ast.Call):
            raise _err(info, node, "expression statement without effect",
                       "assign the value to a variable or remove the line")
    if isinstance(node, ast.AnnAssign) and node.value is None:
        raise _err(info, node, "annotation without a value", "assign a value")
    for field, value in ast.iter_fields(node):
        if isinstance(value, list):
            for item in value:
                if isinstance(item, ast.stmt):
                    _check_stmt(info, item)
                elif isinstance(item, ast.AST):
                    _check_expr(info, item)
        elif isinstance(value, ast.AST):
            if field == "annotation":
                continue
            _check_expr(info, value)
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            _check_target(info, t)


def _check_target(info, t):
    if isinstance(t, ast.Name):
        return
    if isinstance(t, ast.Tuple):
        for e in t.elts:
            _check_target(info, e)
        return
    if isinstance(t, ast.Subscript):
        base = t.value
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name):
            return
        raise _err(info, t, "assignment into a computed array", "assign the array to a name first")
    if isinstance(t, ast.Attribute):
        raise _err(info, t, "attribute assignment", "keep state in arrays passed as arguments")
    raise _err(info, t, f"assignment to {type(t).__name__}", "assign to a name or an array element")


def _check_expr(info, node, in_call=False):
    for cls, (construct, hint) in _EXPR_HINTS.items():
        if isinstance(node, cls):
            raise _err(info, node, construct, hint)
    if not isinstance(node, _ALLOWED_EXPRS):
        raise _err(info, node, type(node).__name__ + " expression", "rewrite it with arithmetic and calls")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bytes) or (isinstance(node.value, str) and not in_call):
            raise _err(info, node, "string value (string work)",
                       "compiled derivative code works on numbers; strings may only be arguments of calls "
                       "(einsum subscripts, dtype names)")
        if isinstance(node.value, complex):
            raise _err(info, node, "complex number", "fwdjit differentiates real-valued code")
        return
    if isinstance(node, ast.Call):
        _check_expr(info, node.func)
        for a in node.args:       # strings as arguments: einsum subscripts, dtype names, print
            _check_expr(info, a, in_call=isinstance(a, (ast.Constant, ast.Tuple, ast.List)))
        for k in node.keywords:
            if k.arg is None:
                raise _err(info, k.value, "**kwargs in a call", "pass keyword arguments explicitly")
            _check_expr(info, k.value, in_call=isinstance(k.value, (ast.Constant, ast.Tuple, ast.List)))
        return
    if isinstance(node, (ast.Tuple, ast.List)):     # ("ij,jk->ik",) inside a call's argument
        for e in node.elts:
            _check_expr(info, e, in_call=in_call and isinstance(e, (ast.Constant, ast.Tuple, ast.List)))
        return
    for child in ast.iter_child_nodes(node):
        _check_expr(info, child, in_call=in_call)
