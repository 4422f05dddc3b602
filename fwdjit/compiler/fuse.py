"""Pass 4b, fuse: a reduction of elementwise array code becomes one loop, with no temporaries.

``np.sum``, ``np.mean``, ``np.max``/``np.amax``, ``np.min``/``np.amin`` (no
``axis``, no keywords) of an elementwise expression (``+ - * / **``, unary
minus, NumPy ufuncs with a derivative rule) over *leaves* (local or global
names, subscripts of names with simple indices, numbers) become a loop over
the elements that reads every leaf once per element.  Single-use
intermediates assigned just before (``a = x[1:] - x[:-1] ** 2`` then
``np.sum(a ** 2)``, ``a`` read nowhere else) are inlined into the reduction
first, so a chain of elementwise statements fuses too.

The pass runs on the primal AST *before* activity and tangent: the tangent
pass then differentiates the loop as it does any scalar loop (``_r += e``
gives ``d_r += de``), so value and tangent come out of the same pass over
memory, K tangent directions (vector mode) share it, and the pass needs no
rules of its own.  Fusing after the tangent pass would have to recognize the
tangent pass's output (temporaries, ``fj.bcast``...) and pair each
reduction with its tangent: more fragile for the same loop.  The primal that
fwdjit compiles gets the same rewrite (:class:`~fwdjit.compiler.primal.PrimalGen`).

Types are not known here (Numba specializes the code per argument type), so
each loop is guarded at run time by ``fj.fuse_size(leaves...)``: the common
number of elements when every array leaf has the same shape (scalars
broadcast; float or complex dtype; C-contiguous when n-d), else -1, and then
the original expression runs (``else:`` branch).  ``fj.flat(leaf, n)`` reads a
leaf as ``n`` elements (an n-d array through a 1-d view, a scalar through a
stride-0 view), so the loop types for every argument type.  The loop's
accumulator starts from the first element, so it has the element's dtype, as
NumPy's result does (float32 stays float32).

Loop shape (sums and means): where an element needs an operation whose
scalar form is slow (a ufunc call such as ``sqrt`` or ``exp``, a division, a
non-integer power), the elements are computed a block of ``fj.BLOCK`` (32)
at a time into a scratch array (``fj.buffer``), in a loop with no carried
value that LLVM vectorizes, and a second loop adds the block in order.  A
single loop ``r += e`` cannot be vectorized without reassociating the sum
(only fastmath allows that), so its ``sqrt`` ran on one lane.  Elements made
of ``+ - *`` and integer powers stay one sequential loop: blocks cost two
passes over the scratch and two allocations, which made Rosenbrock's JVP
about 2.5x slower (measured n = 1e3 and 1e5).  Max/min stay one loop.

Summation order: Numba's ``np.sum`` adds the elements one after another, as
both loop shapes do, so fused and unfused compiled code agree to the last
bits (tests use rtol 1e-12 in float64); NumPy's own ``np.sum`` is pairwise,
which differs by up to about ``n * eps`` relative to ``sum(|terms|)``
(float32, n = 1e5: about 1e-5 measured).

Where a reduction looks fusable but is not, a comment in the generated source
says why (``axis=``, a non-elementwise operand, a low-rank tangent, another
call in the same statement that could write the leaves first).

>>> import ast, numpy as np
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> from fwdjit.compiler.normalize import NameGen, all_names
>>> from fwdjit.compiler.render import render
>>> src = "def f(x):\\n    a = x[1:] - x[:-1] ** 2\\n    return np.sum(100.0 * a ** 2)"
>>> tree = ast.parse(src).body[0]
>>> info = FunctionInfo(func=None, name="f", qualname="f", filename="demo.py", tree=tree,
...                     params=["x"], namespace={"np": np})
>>> print(render(fuse(tree, NameGen(all_names(tree)), info)), end="")
def f(x):
    # inlined (used once, below): demo.py:2: a = x[1:] - x[:-1] ** 2
    # fused into one loop (np.sum): demo.py:3: return np.sum(100.0 * a ** 2)
    _n1 = fj.fuse_size(x[1:], x[:-1])
    if _n1 > 0:
        _e1 = fj.flat(x[1:], _n1)
        _e2 = fj.flat(x[:-1], _n1)
        _r1 = 100.0 * (_e1[0] - _e2[0] ** 2) ** 2
        # one sequential loop: only + - * and integer powers per element
        for _i1 in range(1, _n1):
            _r1 += 100.0 * (_e1[_i1] - _e2[_i1] ** 2) ** 2
    else:
        _r1 = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2)
    return _r1
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import os

import numpy as np

from .. import rules as R
from .. import runtime
from .resolve import resolve_attr
from .render import COMMENT

__all__ = ["fuse", "fused_info", "enabled_by_default", "REDUCERS"]

#: the reductions fused, by object: how the loop combines elements
REDUCERS = {np.sum: "sum", np.mean: "mean", np.max: "max", np.amax: "max", np.min: "min", np.amin: "min"}
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_SAFE_MODULES = ("numpy", "math", "builtins")


def enabled_by_default():
    """Fusion is on unless the environment says ``FWDJIT_FUSE=0``."""
    return os.environ.get("FWDJIT_FUSE", "1").strip().lower() not in ("0", "false", "no", "off")


def fused_info(info):
    """``info`` with ``fj`` (fwdjit.runtime) in its namespace, so later passes resolve the loop's helpers."""
    return dataclasses.replace(info, namespace={**info.namespace, "fj": runtime})


def fuse(tree, names, info, keep=frozenset()):
    """A copy of the FunctionDef ``tree`` with its fusable reductions written as loops.

    ``names``: the NameGen fresh names come from; ``keep``: names whose
    tangent must not be read element by element (low-rank factored tangents).
    """
    tree = copy.deepcopy(tree)
    fuser = _Fuser(info, names, keep, tree)
    tree.body = fuser.block(tree.body)
    return ast.fix_missing_locations(tree)


def _comment(text, like):
    return ast.copy_location(ast.Expr(ast.Constant(COMMENT + text)), like)


class _NotFusable(Exception):
    pass


class _Fuser:
    def __init__(self, info, names, keep, tree):
        self.info, self.names, self.keep = info, names, set(keep)
        self.counts = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.Name):
                self.counts[n.id] = self.counts.get(n.id, 0) + 1

    # ------------------------------------------------------------ blocks
    def block(self, stmts):
        out = []
        for s in stmts:
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(s, field, None), list) and not isinstance(s, ast.FunctionDef):
                    setattr(s, field, self.block(getattr(s, field)))
            if isinstance(s, (ast.Assign, ast.AugAssign, ast.Return, ast.Expr)):
                out.extend(self.statement(s, out))
            out.append(s)
        return out

    def statement(self, s, out):
        """The statements that compute ``s``'s reductions (``s`` is rewritten to read their results)."""
        value = s.value
        if value is None:
            return []
        cands = [c for c in _unconditional_calls(value) if self.reducer(c) is not None]
        if not cands:
            return []
        others = [c for c in _unconditional_calls(value) if not any(c is x or _inside(c, x) for x in cands)]
        unsafe = [c for c in others if not self.safe_call(c)]
        pre, repl = [], {}
        line = self.line_text(s)
        for call in cands:
            kind = self.reducer(call)
            fname = ast.unparse(call.func)
            if call.keywords or len(call.args) != 1:
                if _has_ops(call.args[0] if call.args else call):
                    pre.append(_comment(f"not fused ({fname} with {_extra(call)}): {line}", s))
                continue
            if unsafe:
                if _has_ops(call.args[0]):
                    pre.append(_comment(f"not fused ({fname}): the statement also calls "
                                        f"{ast.unparse(unsafe[0].func)}, which may write its operands first: "
                                        f"{line}", s))
                continue
            inlined = self.inline(call, out)
            arg = call.args[0]
            leaves = []
            try:
                ops = self.elementwise(arg, leaves)
            except _NotFusable as exc:
                pre.append(_comment(f"not fused ({fname}): {exc}: {line}", s))
                continue
            if not ops:
                continue            # already one pass: nothing to fuse
            result = self.loop(call, kind, fname, arg, leaves, pre, s, line, inlined)
            repl[id(call)] = result
        if repl:
            _Replace(repl).visit(s)
        return pre

    def line_text(self, s):
        short = self.info.filename.rsplit("/", 1)[-1]
        line = getattr(s, "lineno", None)
        text = (self.info.source_line(line) if line else None) or ast.unparse(s).splitlines()[0]
        return f"{short}:{line}: {text.strip()}"

    # ------------------------------------------------------- recognition
    def reducer(self, call):
        obj = resolve_attr(self.info, call.func)
        try:
            return REDUCERS.get(obj)
        except TypeError:           # an unhashable object
            return None

    def safe_call(self, call):
        """A call that cannot write the reduction's operands: a NumPy, math or builtin function."""
        obj = resolve_attr(self.info, call.func)
        mod = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "") or ""
        return obj is not None and (isinstance(obj, np.ufunc) or mod.split(".")[0] in _SAFE_MODULES)

    def elementwise(self, node, leaves):
        """Number of operations in the elementwise expression ``node``; its leaves appended to ``leaves``."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                return 0
            raise _NotFusable(f"{node.value!r} is not a number")
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPS):
            return 1 + self.elementwise(node.left, leaves) + self.elementwise(node.right, leaves)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return 1 + self.elementwise(node.operand, leaves)
        if isinstance(node, ast.Call):
            obj = resolve_attr(self.info, node.func)
            rule = R.lookup(obj) if isinstance(obj, np.ufunc) else None
            if rule is None or rule.zero or node.keywords or obj.nout != 1 or len(node.args) != obj.nin:
                raise _NotFusable(f"{ast.unparse(node)} is not elementwise")
            return 1 + sum(self.elementwise(a, leaves) for a in node.args)
        if isinstance(node, (ast.Name, ast.Subscript)):
            root = node
            if isinstance(node, ast.Subscript):
                root = node.value
                if not isinstance(root, ast.Name) or not _simple_index(node.slice):
                    raise _NotFusable(f"{ast.unparse(node)} is not a simple view")
            obj = resolve_attr(self.info, root)
            if obj is not None and not isinstance(obj, (np.ndarray, int, float, complex)):
                raise _NotFusable(f"{root.id} is not an array or number")
            if root.id in self.keep:
                raise _NotFusable(f"{root.id} has a low-rank tangent")
            leaves.append(node)
            return 0
        raise _NotFusable(f"{ast.unparse(node)} is not elementwise")

    def inline(self, call, out):
        """Inline single-use intermediates assigned just before the statement; their source lines."""
        lines = []
        while out:
            prev = out[-1]
            if not (isinstance(prev, ast.Assign) and len(prev.targets) == 1
                    and isinstance(prev.targets[0], ast.Name)):
                break
            name = prev.targets[0].id
            uses = [n for n in ast.walk(call.args[0]) if isinstance(n, ast.Name) and n.id == name]
            if len(uses) != 1 or self.counts.get(name) != 2 or name in self.keep:
                break
            try:
                if not self.elementwise(prev.value, []):
                    break
            except _NotFusable:
                break
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(prev.value)):
                break
            call.args[0] = _Replace({id(uses[0]): copy.deepcopy(prev.value)}).visit(call.args[0])
            out.pop()
            lines.append(self.line_text(prev))
        return lines[::-1]

    # ------------------------------------------------------------ output
    def loop(self, call, kind, fname, arg, leaves, pre, s, line, inlined):
        n, r, i = self.names.fresh("_n"), self.names.fresh("_r"), self.names.fresh("_i")
        flat, order = {}, []
        for leaf in leaves:
            key = ast.dump(leaf)
            if key not in flat:
                flat[key] = self.names.fresh("_e")
                order.append(leaf)
        load = lambda name: ast.Name(name, ast.Load())          # noqa: E731
        store = lambda name: ast.Name(name, ast.Store())        # noqa: E731

        def elem(index):
            return _Leaves(flat, index).visit(copy.deepcopy(arg))

        def fj(fn, args):
            return ast.Call(ast.Attribute(load("fj"), fn, ast.Load()), args, [])
        for text in inlined:
            pre.append(_comment(f"inlined (used once, below): {text}", s))
        pre.append(_comment(f"fused into one loop ({fname}): {line}", s))
        pre.append(ast.Assign([store(n)], fj("fuse_size", [copy.deepcopy(x) for x in order])))
        body = [ast.Assign([store(flat[ast.dump(x)])], fj("flat", [copy.deepcopy(x), load(n)])) for x in order]
        body.append(ast.Assign([store(r)], elem(ast.Constant(0))))
        if kind in ("sum", "mean") and _slow_scalar(arg):
            body.extend(self.blocked_sum(r, n, elem, s))
        elif kind in ("sum", "mean"):
            # + - * and integer powers: one sequential loop is as fast as the elements allow (measured:
            # blocks make Rosenbrock's JVP 2.5x slower); blocks pay where scalar code is slow (sqrt, /)
            body.append(_comment("one sequential loop: only + - * and integer powers per element", s))
            step = [ast.AugAssign(store(r), ast.Add(), elem(load(i)))]
            body.append(ast.For(store(i), ast.Call(load("range"), [ast.Constant(1), load(n)], []), step, []))
        else:
            e = self.names.fresh("_x")
            cmp = ast.Gt() if kind == "max" else ast.Lt()
            # NaN wins and stays (as in np.max); ties keep the first element (the rule's argmax)
            test = ast.BoolOp(ast.And(), [
                ast.Compare(load(r), [ast.Eq()], [load(r)]),
                ast.BoolOp(ast.Or(), [ast.Compare(load(e), [cmp], [load(r)]),
                                      ast.Compare(load(e), [ast.NotEq()], [load(e)])])])
            step = [ast.Assign([store(e)], elem(load(i))),
                    ast.If(test, [ast.Assign([store(r)], load(e))], [])]
            body.append(ast.For(store(i), ast.Call(load("range"), [ast.Constant(1), load(n)], []), step, []))
        if kind == "mean":
            count = fj("like", [ast.Call(load("float"), [load(n)], []), load(r)])
            body.append(ast.Assign([store(r)], ast.BinOp(load(r), ast.Div(), count)))
        fallback = [ast.Assign([store(r)], copy.deepcopy(call))]
        guard = ast.If(ast.Compare(load(n), [ast.Gt()], [ast.Constant(0)]), body, fallback)
        pre.append(guard)
        for st in pre:
            for node in ast.walk(st):
                ast.copy_location(node, s)
        return load(r)


    def blocked_sum(self, r, n, elem, s):
        """``r += element`` for elements 1..n-1 (``r`` holds element 0), a block of ``fj.BLOCK`` at a time.

        The elementwise values of a block go to a scratch array in a loop with
        no loop-carried value, which LLVM vectorizes (``sqrt``, ``/``, ``exp``
        on 4 or 8 lanes); a second loop adds them in order, so the sum is
        the same, bit for bit, as Numba's sequential ``np.sum`` of the
        unfused expression.  (One sequential loop cannot be vectorized
        without reassociating the sum, which fastmath alone allows.)
        """
        b, start, m, j, k = (self.names.fresh(x) for x in ("_b", "_s", "_m", "_j", "_k"))
        load = lambda name: ast.Name(name, ast.Load())          # noqa: E731
        store = lambda name: ast.Name(name, ast.Store())        # noqa: E731

        def rng(*args):
            return ast.Call(load("range"), list(args), [])
        at = ast.BinOp(load(start), ast.Add(), load(j))
        fill = ast.For(store(j), rng(load(m)),
                       [ast.Assign([ast.Subscript(load(b), load(j), ast.Store())], elem(at))], [])
        add = ast.For(store(j), rng(load(k), load(m)),
                      [ast.AugAssign(store(r), ast.Add(), ast.Subscript(load(b), load(j), ast.Load()))], [])
        size = ast.Call(load("min"), [ast.Attribute(load("fj"), "BLOCK", ast.Load()),
                                      ast.BinOp(load(n), ast.Sub(), load(start))], [])
        # blocks start at element 0 (aligned loads vectorize twice as fast as from element 1 here);
        # the first block's element 0 is r's initial value, so its adding loop starts at 1
        block = ast.For(store(start), rng(ast.Constant(0), load(n), ast.Attribute(load("fj"), "BLOCK", ast.Load())),
                        [ast.Assign([store(m)], size), fill, add, ast.Assign([store(k)], ast.Constant(0))], [])
        return [_comment("in blocks: the elements into a scratch array (a loop LLVM vectorizes), "
                         "then added in order (the same sum as np.sum's); element 0 is in "
                         f"{r} already", s),
                ast.Assign([store(b)], ast.Call(ast.Attribute(load("fj"), "buffer", ast.Load()),
                                                [load(r), load(n)], [])),
                ast.Assign([store(k)], ast.Constant(1)),
                block]


# ---------------------------------------------------------------- helpers
def _slow_scalar(node):
    """Whether the elements need an operation whose scalar form is slow (a ufunc call: ``sqrt``,
    ``exp``...; a division; a non-integer power): then the sum runs in vectorizable blocks."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call) or (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)):
            return True
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and not (
                isinstance(n.right, ast.Constant) and isinstance(n.right.value, int)):
            return True
    return False


def _unconditional_calls(node):
    """Calls in ``node`` evaluated whenever it is (not inside ``a if c else b``, ``and``/``or``, lambdas)."""
    out = []

    def walk(n):
        if isinstance(n, (ast.IfExp, ast.BoolOp, ast.Lambda, ast.ListComp, ast.GeneratorExp, ast.SetComp,
                          ast.DictComp)):
            return
        if isinstance(n, ast.Call):
            out.append(n)
        for c in ast.iter_child_nodes(n):
            walk(c)
    walk(node)
    return out


def _inside(node, outer):
    return any(n is node for n in ast.walk(outer))


def _has_ops(node):
    return any(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) for n in ast.walk(node))


def _extra(call):
    parts = [k.arg for k in call.keywords]
    return ", ".join(f"{p}=" for p in parts) if parts else f"{len(call.args)} arguments"


def _simple_index(node):
    if isinstance(node, ast.Tuple):
        return all(_simple_index(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return all(c is None or _simple_index(c) for c in (node.lower, node.upper, node.step))
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):    # x.shape[0]
        return node.value.attr == "shape" and isinstance(node.value.value, ast.Name) \
            and isinstance(node.slice, ast.Constant)
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return all(_simple_index(c) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))
    return False


class _Replace(ast.NodeTransformer):
    """Replace nodes by identity."""

    def __init__(self, table):
        self.table = table

    def visit(self, node):
        new = self.table.get(id(node))
        if new is not None:
            return new
        return super().visit(node)


class _Leaves(ast.NodeTransformer):
    """Leaves -> ``_e[index]`` (the element the loop is at)."""

    def __init__(self, flat, index):
        self.flat, self.index = flat, index

    def visit(self, node):
        name = self.flat.get(ast.dump(node)) if isinstance(node, (ast.Name, ast.Subscript)) else None
        if name is not None:
            return ast.Subscript(ast.Name(name, ast.Load()), copy.deepcopy(self.index), ast.Load())
        return super().visit(node)
