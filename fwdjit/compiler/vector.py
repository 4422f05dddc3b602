"""Vector (multi-direction) tangent mode: K tangents per pass, primal computed once.

The single-direction tangent function is rewritten so that every tangent
variable ``dv`` becomes K variables ``dv_0 ... dv_{K-1}`` and every statement
that touches a tangent is emitted once per direction; statements that touch
only primal values are emitted once.  The result has exactly the semantics of
K single-direction JVPs sharing one primal computation, for scalars, arrays,
views and in-place writes alike, and needs no per-assignment allocation for
scalar tangents (LLVM keeps them in registers and vectorizes across k).  Code
size grows with K, so callers work in chunks (``chunk=`` in jacfwd).

>>> import ast
>>> src = "def f_jvp(x, dx):\\n    y = x * x\\n    dy = dx * x + x * dx\\n    return (y, dy)"
>>> fdef = ast.parse(src).body[0]
>>> print(ast.unparse(vectorize(fdef, {"dx", "dy"}, 2, ["dx"], callees={})))
def f_jvp(x, dx_0, dx_1):
    y = x * x
    dy_0 = dx_0 * x + x * dx_0
    dy_1 = dx_1 * x + x * dx_1
    return (y, (dy_0, dy_1))
"""
from __future__ import annotations

import ast
import copy


def _uses(node, tnames):
    return any(isinstance(n, ast.Name) and n.id in tnames for n in ast.walk(node))


class _Rename(ast.NodeTransformer):
    def __init__(self, tnames, k, kname):
        self.tnames, self.k, self.kname = tnames, k, kname

    def visit_Name(self, node):
        if node.id in self.tnames:
            return ast.copy_location(ast.Name(self.kname(node.id, self.k), node.ctx), node)
        return node


def vectorize(fdef, tnames, K, tangent_params, callees, kname=None):
    """Rewrite a single-direction tangent FunctionDef into K-direction form.

    ``tnames``: every tangent variable name; ``tangent_params``: the tangent
    parameters in order; ``callees``: bound names of callee tangent functions
    -> bound names of their K-direction versions.
    """
    kname = kname or (lambda name, k: f"{name}_{k}")
    fdef = copy.deepcopy(fdef)
    tset = set(tnames)
    primal_args = [a for a in fdef.args.args if a.arg not in set(tangent_params)]
    new_args = list(primal_args)
    for t in tangent_params:
        new_args += [ast.arg(kname(t, k)) for k in range(K)]
    fdef.args.args = new_args
    fdef.body = _block(fdef.body, tset, K, callees, kname)
    return ast.fix_missing_locations(fdef)


def _block(stmts, tset, K, callees, kname):
    out = []
    for s in stmts:
        out.extend(_stmt(s, tset, K, callees, kname))
    return out


def _copies(node, tset, K, kname):
    return [_Rename(tset, k, kname).visit(copy.deepcopy(node)) for k in range(K)]


def _stmt(s, tset, K, callees, kname):
    if isinstance(s, (ast.If, ast.While)):
        s.body = _block(s.body, tset, K, callees, kname) or [ast.Pass()]
        s.orelse = _block(s.orelse, tset, K, callees, kname)
        return [s]
    if isinstance(s, ast.For):
        s.body = _block(s.body, tset, K, callees, kname) or [ast.Pass()]
        return [s]
    if isinstance(s, ast.Return):
        v = s.value
        if isinstance(v, ast.Tuple) and len(v.elts) == 2:   # (primal, tangent): K tangents, always
            tangents = ast.Tuple(_copies(v.elts[1], tset, K, kname), ast.Load())
            return [ast.Return(ast.Tuple([v.elts[0], tangents], ast.Load()))]
        return [s]
    # a call to a callee's tangent function: _g1, _dg1 = g_jvp(a, da)
    if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name) \
            and s.value.func.id in callees:
        call = s.value
        prim_args = [a for a in call.args if not _uses(a, tset)]
        tan_args = [a for a in call.args if _uses(a, tset)]
        new_args = list(prim_args)
        for a in tan_args:
            new_args += _copies(a, tset, K, kname)
        target = s.targets[0]
        out_p, out_t = target.elts
        t_targets = ast.Tuple(_copies(out_t, tset, K, kname), ast.Store())
        new = ast.Assign([ast.Tuple([out_p, t_targets], ast.Store())],
                         ast.Call(ast.Name(callees[call.func.id], ast.Load()), new_args, []))
        return [ast.copy_location(new, s)]
    if _uses(s, tset):
        return [ast.copy_location(c, s) for c in _copies(s, tset, K, kname)]
    return [s]
