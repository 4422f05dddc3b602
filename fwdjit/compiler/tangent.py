"""Pass 5, tangent: emit the JVP of a normalized function.

For each primal statement the generator emits the primal statement and the
tangent statement given by the rules table.  Active subexpressions are split
into one-operation temporaries (``_t1``, ``_t2``...) only where a rule needs
their value twice (for the primal and for the tangent); tangents of
subexpressions are used once and stay inline.  Inactive values carry no
tangent and get no code.  Each block of output starts with a comment naming
the source line it came from.

>>> import ast
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> import numpy as np
>>> src = "def f(x, y):\\n    z = np.sin(np.exp(x) * y)\\n    return z + 1.0"
>>> tree = ast.parse(src).body[0]
>>> info = FunctionInfo(func=None, name="f", qualname="f", filename="<demo>", tree=tree,
...                     params=["x", "y"], namespace={"np": np})
>>> from fwdjit.compiler.activity import Activity
>>> from fwdjit.compiler.normalize import NameGen, normalize
>>> names = NameGen({"f", "x", "y", "z", "np", "math", "fj"})
>>> tree = normalize(tree, names, info)                 # the input: a normalized function...
>>> active = Activity(info, tree, {"x"}, Resolver(info)).run()      # ...and its active variables
>>> sorted(active)
['x', 'z']
>>> gen = TangentGen(info, tree, (True, False), Resolver(info), active, names=names)
>>> print(gen.source(), end="")
def f_jvp(x, y, dx):
    # <demo>:2: z = np.sin(np.exp(x) * y)
    _t1 = np.exp(x)
    z = np.sin(_t1 * y)
    dz = dx * _t1 * y * np.cos(_t1 * y)
    # <demo>:3: return z + 1.0
    return (z + 1.0, dz)

``np.exp(x)`` is needed by the primal and by the tangent, so it is computed
once; the cheap product ``_t1 * y`` is recomputed (Numba fuses it into each
loop, LLVM removes the duplicate for scalars).
"""
from __future__ import annotations

import ast
import copy
import re

import numpy as np

from .. import rules as R
from ..rules import lowrank as LR
from .activity import Activity, alias_groups, factorable, mutated_names, root_name, view_base
from ..errors import UnsupportedCall, UnsupportedSyntax
from .normalize import NameGen, all_names
from .resolve import MISSING, resolve_attr
from .callees import user_python_function

COMMENT = "__FJ_COMMENT__"


def is_atom(node):
    """Cheap to evaluate twice: names, numbers, views and element reads of names."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, ast.Attribute):
        return is_atom(node.value)
    if isinstance(node, ast.Subscript):
        return is_atom(node.value) and _simple_index(node.slice)
    return False


_CHEAP_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def is_cheap(node, budget=4):
    """Cheap elementwise arithmetic over atoms: recomputing it beats storing it.

    Numba fuses elementwise array expressions into one loop, so an expression
    like ``x[1:] - x[:-1] ** 2`` used by both the primal and the tangent costs
    less recomputed in each fused loop than written to a temporary array; for
    scalars LLVM removes the duplicate.  Transcendental functions, matrix
    products and reductions are always computed once.
    """
    count = sum(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call)) for n in ast.walk(node)
                if not (isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant)))
    if count > budget:
        return False
    return _cheap(node)


def _cheap(node):
    if is_atom(node):
        return True
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, _CHEAP_OPS):
            return _cheap(node.left) and _cheap(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value in (2, 3):
            return _cheap(node.left)
        return False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _cheap(node.operand)
    return False


def _simple_index(node):
    if isinstance(node, ast.Tuple):
        return all(_simple_index(e) for e in node.elts)
    if isinstance(node, ast.Slice):
        return all(c is None or _simple_index(c) for c in (node.lower, node.upper, node.step))
    return isinstance(node, (ast.Name, ast.Constant)) or (
        isinstance(node, (ast.BinOp, ast.UnaryOp)) and all(_simple_index(c) for c in ast.iter_child_nodes(node)
                                                         if isinstance(c, ast.expr)))


def names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


class Val:
    """An expression's primal (built on demand) and tangent (AST or None)."""

    def __init__(self, gen, build, t=None, node=None, items=None):
        self.gen = gen
        self._build = build
        self.name = None
        self.t = t
        self.node = node
        self.items = items
        self.lowrank = None          # (A, B): the tangent is A @ B.T, kept factored (fwdjit.rules.lowrank)

    @property
    def active(self):
        return self.t is not None

    @property
    def expr(self):
        if self.name is not None:
            return ast.Name(self.name, ast.Load())
        return self._build()

    def p(self):
        """The primal as an atom, computing it into a temporary once if needed."""
        if self.name is not None:
            return ast.Name(self.name, ast.Load())
        e = self._build()
        if is_atom(e) or is_cheap(e):
            return e
        self.name = self.gen.fresh("_t")
        self.gen.emit(ast.Assign([ast.Name(self.name, ast.Store())], e))
        return ast.Name(self.name, ast.Load())


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


class Binder:
    """Fresh names (``self.names``, a NameGen) and the objects generated code refers to by them
    (``self.bindings``, name -> object; one name per object)."""

    def fresh(self, stem):
        return self.names.fresh(stem)

    def bind(self, obj, stem):
        for k, v in self.bindings.items():
            if v is obj:
                return k
        name = self.fresh(stem)
        self.bindings[name] = obj
        return name


class TangentGen(Binder):
    """Generates ``<name>_jvp(primals..., tangents of active params...)``."""

    def __init__(self, info, tree, mask, resolver, active, check_inputs=False, names=None, lowrank=None,
                 stack_products=False):
        """``tree``: the normalized function; ``active``: its variables that carry tangents (the
        activity pass); ``names``: the NameGen normalize drew its fresh names from
        (:func:`fwdjit.compiler.analyze` gives all three)."""
        self.info = info
        # x @ W with an active x: compute x @ W and dx @ W as one product (fj.matmul_stacked);
        # only where the output is not transformed again (vector mode, second order)
        self.stack_products = stack_products
        self.resolver = resolver
        self.mask = tuple(mask)
        # lowrank[i]: argument i's tangent comes as two factors (A, B), dW = A @ B.T
        self.lowrank_mask = tuple(bool(x) for x in lowrank) if lowrank is not None else (False,) * len(self.mask)
        self.check_inputs = check_inputs
        self.names = names or NameGen(all_names(tree) | {"np", "math", "fj"})
        self.tree = tree
        self.active = active
        self.effective = tuple(p in self.active for p in info.params)
        self.mutated = mutated_names(self.tree)
        self.aliases = alias_groups(self.tree)
        self.bindings = {}           # name in generated module -> object
        self._tnames = {}
        self._factors = {}           # argument -> (A name, B name) while its tangent stays factored
        if any(self.lowrank_mask):
            keep = factorable(self.tree, info.params, self.resolver.classify)
            for p, m, lr in zip(info.params, self.mask, self.lowrank_mask):
                if m and lr:
                    a, b = self.tname(p) + "_A", self.tname(p) + "_B"
                    a, b = self.names.fresh(a) if a in self.names.taken else a, \
                        self.names.fresh(b) if b in self.names.taken else b
                    self.names.reserve(a)
                    self.names.reserve(b)
                    self._factors[p] = (a, b, p in keep)
        self.out = []
        self._last_line = None
        self.fn_name = f"{info.name}_jvp"

    # ------------------------------------------------------------- helpers
    def emit(self, stmt):
        self.out.append(stmt)

    def tname(self, var):
        n = self._tnames.get(var)
        if n is None:
            cand = "d" + var if not var.startswith("_") else "_d" + var[1:]
            if cand in self.names.taken and cand not in self._tnames.values():
                cand = self.names.fresh(cand + "_")
            self.names.reserve(cand)
            self._tnames[var] = n = cand
        return n

    def tangent_names(self):
        """The names of the tangent variables emitted so far (``dx`` for ``x``...)."""
        return self._tnames.values()

    def fj_call(self, fn, args):
        return ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), fn, ast.Load()), args, [])

    def zero_expr(self, primal):
        if isinstance(primal, ast.Constant) or (isinstance(primal, ast.UnaryOp) and isinstance(primal.operand, ast.Constant)):
            return ast.Constant(0.0)
        return self.fj_call("zero", [primal])

    def unsupported(self, what, hint):
        return self.info.error(UnsupportedCall, self._cur, f"{what} is not supported", hint=hint, construct=what)

    def _comment(self, stmt):
        line = getattr(stmt, "lineno", None)
        if line is None or line == self._last_line:
            return
        self._last_line = line
        text = (self.info.source_line(line) or ast.unparse(stmt).splitlines()[0]).strip()
        short = self.info.filename.rsplit("/", 1)[-1]
        self.emit(ast.Expr(ast.Constant(f"{COMMENT}{short}:{line}: {text}")))

    # --------------------------------------------------------------- driver
    def run(self):
        params = list(self.info.params)
        args = [ast.arg(p) for p in params]
        targs = []
        for p, m in zip(params, self.mask):
            if p in self._factors:
                targs += [ast.arg(self._factors[p][0]), ast.arg(self._factors[p][1])]
            elif m:
                targs.append(ast.arg(self.tname(p)))
        body = []
        self.out = body
        for p, m, e in zip(params, self.mask, self.effective):
            if p in self._factors:
                if self.check_inputs:
                    a, b, _ = self._factors[p]
                    self.emit(ast.Assign([ast.Tuple([ast.Name(a, ast.Store()), ast.Name(b, ast.Store())],
                                                    ast.Store())],
                                         self.fj_call("check_lowrank", [ast.Name(p, ast.Load()),
                                                                        ast.Name(a, ast.Load()),
                                                                        ast.Name(b, ast.Load()),
                                                                        ast.Constant(p)])))
            elif m and self.check_inputs:
                self.emit(ast.Assign([ast.Name(self.tname(p), ast.Store())],
                                     self.fj_call("check_tangent", [ast.Name(p, ast.Load()),
                                                                    ast.Name(self.tname(p), ast.Load()),
                                                                    ast.Constant(p)])))
            elif e and not m:
                self.emit(ast.Assign([ast.Name(self.tname(p), ast.Store())],
                                     self.fj_call("zero", [ast.Name(p, ast.Load())])))
        self._preamble = len(body)
        self._block_into(self.tree.body, body)
        self._materialize_factored(body)
        if not any(isinstance(n, ast.Return) for n in ast.walk(self.tree)):
            body.append(ast.Return(ast.Tuple([ast.Constant(None), ast.Constant(None)], ast.Load())))
        fdef = ast.FunctionDef(name=self.fn_name, args=ast.arguments(posonlyargs=[], args=args + targs, vararg=None,
                                                                   kwonlyargs=[], kw_defaults=[], kwarg=None,
                                                                   defaults=[]),
                               body=body or [ast.Pass()], decorator_list=[], returns=None, type_params=[])
        return ast.fix_missing_locations(fdef)

    def source(self):
        return render(self.run())

    def _materialize_factored(self, body):
        """``dW = dW_A @ dW_B.T`` at the top, for each low-rank tangent that some use reads densely."""
        used = {n.id for s in body for n in ast.walk(s) if isinstance(n, ast.Name)}
        start = self._preamble
        for p, (a, b, _) in self._factors.items():
            d = self.tname(p)
            if d in used:
                note = ast.Expr(ast.Constant(f"{COMMENT}low-rank tangent of {p} materialized: a use below "
                                             f"has no factored rule"))
                body[start:start] = [note, ast.Assign([ast.Name(d, ast.Store())], LR.materialize(a, b))]
                start += 2

    def _block_into(self, stmts, buf):
        saved, saved_line = self.out, self._last_line
        self.out = buf
        self._last_line = None
        for s in stmts:
            self._cur = s
            self._comment(s)
            getattr(self, "st_" + type(s).__name__)(s)
        self.out = saved
        self._last_line = saved_line if buf is not saved else self._last_line

    def block(self, stmts):
        buf = []
        saved_line = self._last_line
        self._block_into(stmts, buf)
        self._last_line = saved_line
        return buf or [ast.Pass()]

    # -------------------------------------------------------- expressions
    def is_active(self, node):
        act = Activity(self.info, self.tree, self.active, self.resolver)
        return act.expr_active(node)

    def primal(self, node):
        """An inactive expression, copied, with calls to user functions bound to compiled ones."""
        return PrimalRewriter(self).visit(copy.deepcopy(node))

    def expr(self, node, target=None):
        if not self.is_active(node):
            return Val(self, lambda: self.primal(node), node=node)
        meth = getattr(self, "ex_" + type(node).__name__, None)
        if meth is None:
            raise self.info.error(UnsupportedSyntax, node,
                                  f"{type(node).__name__} on differentiable values is not supported",
                                  construct=type(node).__name__)
        return meth(node, target)

    def _result_fn(self, val, node, target):
        def result():
            if (target is not None and isinstance(target, ast.Name) and val.name is None
                    and target.id not in names_in(node)):
                self.emit(ast.Assign([ast.Name(target.id, ast.Store())], val.expr))
                val.name = target.id
                self._target_done = True
                return ast.Name(target.id, ast.Load())
            return val.p()
        return result

    def ex_Name(self, node, target):
        val = Val(self, lambda: ast.Name(node.id, ast.Load()), t=ast.Name(self.tname(node.id), ast.Load()), node=node)
        f = self._factors.get(node.id)
        if f is not None and f[2]:
            val.lowrank = (ast.Name(f[0], ast.Load()), ast.Name(f[1], ast.Load()))
        return val

    def ex_BinOp(self, node, target):
        l, r = self.expr(node.left), self.expr(node.right)
        op = node.op
        if isinstance(op, ast.MatMult) and self.stack_products and l.active and l.lowrank is None:
            return self._stacked_matmul(l, r, node)
        val = Val(self, lambda: ast.BinOp(l.expr, copy.deepcopy(op), r.expr), node=node)
        rc = R.RuleCall(self, None, [l, r], {}, self._result_fn(val, node, target))
        val.t = R.BINOP_RULES[type(op)].fn(rc)
        return val

    def _stacked_matmul(self, l, r, node):
        """``l @ r`` and its term ``dl @ r`` as one product of stacked rows (``fj.matmul_stacked``)."""
        left, right = l.p(), r.p()
        out = self.fresh("_mm")
        dout = self.tname(out)
        self.emit(ast.Assign([ast.Tuple([ast.Name(out, ast.Store()), ast.Name(dout, ast.Store())], ast.Store())],
                             self.fj_call("matmul_stacked", [left, l.t, right])))
        terms = [ast.Name(dout, ast.Load())]
        if r.active:        # the other term, l @ dr (factored when dr is low-rank)
            terms.append(LR.right_term(copy.deepcopy(left), r, lambda x, y: ast.BinOp(x, ast.MatMult(), y)))
        val = Val(self, lambda: ast.Name(out, ast.Load()), t=R.add_terms(terms), node=node)
        val.name = out
        return val

    def ex_UnaryOp(self, node, target):
        o = self.expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return o
        val = Val(self, lambda: ast.UnaryOp(ast.USub(), o.expr), t=ast.UnaryOp(ast.USub(), o.t), node=node)
        if o.lowrank is not None:
            val.lowrank = LR.negated(o)
        return val

    def ex_Subscript(self, node, target):
        v = self.expr(node.value)
        idx = node.slice
        return Val(self, lambda: ast.Subscript(v.expr, self.primal(idx), ast.Load()),
                   t=ast.Subscript(v.t, self.primal(idx), ast.Load()), node=node)

    def ex_Attribute(self, node, target):
        if node.attr not in R.LINEAR_ATTRS:
            raise self.info.error(UnsupportedSyntax, node, f"attribute .{node.attr} of a differentiable value",
                                  hint="supported: .T, .real, .shape, .size, .ndim, .dtype",
                                  construct=f".{node.attr}")
        v = self.expr(node.value)
        val = Val(self, lambda: ast.Attribute(v.expr, node.attr, ast.Load()),
                  t=ast.Attribute(v.t, node.attr, ast.Load()), node=node)
        if node.attr == "T" and v.lowrank is not None:
            val.lowrank = LR.transposed(v)
        return val

    def ex_Tuple(self, node, target):
        items = [self.expr(e) for e in node.elts]
        t = ast.Tuple([i.t if i.active else self.zero_expr(i.p()) for i in items], ast.Load())
        return Val(self, lambda: ast.Tuple([i.expr for i in items], ast.Load()), t=t, node=node, items=items)

    def ex_IfExp(self, node, target):
        tmp = self.fresh("_t")
        dtmp = self.tname(tmp)
        branches = []
        for branch in (node.body, node.orelse):
            buf = []
            saved = self.out
            self.out = buf
            v = self.expr(branch)
            self.emit(ast.Assign([ast.Name(tmp, ast.Store())], v.expr))
            self.emit(ast.Assign([ast.Name(dtmp, ast.Store())], v.t if v.active else self.zero_expr(ast.Name(tmp, ast.Load()))))
            self.out = saved
            branches.append(buf)
        self.emit(ast.If(self.primal(node.test), branches[0], branches[1]))
        val = Val(self, lambda: ast.Name(tmp, ast.Load()), t=ast.Name(dtmp, ast.Load()), node=node)
        val.name = tmp
        return val

    def ex_BoolOp(self, node, target):
        raise self.info.error(UnsupportedSyntax, node, "'and'/'or' used as a value of differentiable operands",
                              hint="use a conditional expression: a if cond else b", construct="and/or value")

    def ex_Call(self, node, target):
        kind, obj, rule = self.resolver.classify(node)
        if kind == "method":
            return self._method_call(node, obj, rule, target)
        if kind == "rule":
            if isinstance(obj, np.ufunc) and (len(node.args) > obj.nin or any(k.arg == "out" for k in node.keywords)):
                name = f"np.{obj.__name__}"
                raise self.info.error(
                    UnsupportedCall, node, f"{name} with an output argument (writing the result into an array) "
                    f"is not supported on differentiable values",
                    hint=f"assign the result instead: y = {name}(...), or y[...] = {name}(...)",
                    construct=f"{name}(..., out)")
            args = [self.expr(a) for a in node.args]
            kw = {k.arg: self.expr(k.value) for k in node.keywords}
            func = self.primal(node.func)
            if getattr(rule, "compiled", None) is not None and rule.compiled is not obj:
                func = ast.Name(self.bind(rule.compiled, f"{getattr(obj, '__name__', 'f')}_"), ast.Load())
            val = Val(self, lambda: ast.Call(copy.deepcopy(func), blas_safe_args(obj, [a.expr for a in args], kw),
                                             [ast.keyword(k, v.expr) for k, v in kw.items()]), node=node)
            rc = R.RuleCall(self, func, args, kw, self._result_fn(val, node, target), fam=rule.fam)
            val.t = rule.fn(rc)
            return val
        if kind == "user":
            return self._user_call(node, obj)
        name = getattr(obj, "__name__", repr(obj))
        raise self.info.error(
            UnsupportedCall, node, f"no derivative rule for {name}(), called here with differentiable arguments",
            hint=f"register a rule with fwdjit.defjvp({name}, ...), or write it in Python so fwdjit can transform it",
            construct=f"call to {name}")

    def _method_call(self, node, attr, rule, target):
        if rule is None:
            raise self.info.error(UnsupportedCall, node, f"no derivative rule for the array method .{attr}()",
                                  hint="use the NumPy function form or a supported method "
                                       f"({', '.join(sorted(R.METHOD_RULES))})", construct=f".{attr}()")
        recv = self.expr(node.func.value)
        args = [recv] + [self.expr(a) for a in node.args]
        kw = {k.arg: self.expr(k.value) for k in node.keywords}
        val = Val(self, lambda: ast.Call(ast.Attribute(recv.expr, attr, ast.Load()), [a.expr for a in args[1:]],
                                         [ast.keyword(k, v.expr) for k, v in kw.items()]), node=node)
        rc = _MethodCall(self, attr, args, kw, self._result_fn(val, node, target))
        val.t = rule.fn(rc)
        return val

    def _user_call(self, node, callee):
        if node.keywords:
            raise self.info.error(UnsupportedSyntax, node, "keyword arguments in calls to user functions",
                                  hint="pass the arguments by position", construct="keyword arguments")
        args = [self.expr(a) for a in node.args]
        mask = tuple(a.active for a in args)
        eff = callee.effective_mask(mask)
        # eff can exceed mask only for arguments that are not variables (a literal, an expression):
        # the callee writes into a temporary the caller never sees, so a zero tangent is right
        tangents = []
        for a, m in zip(args, eff):
            if m:
                tangents.append(a.t if a.active else self.zero_expr(a.p()))
        mask = eff
        jvp = callee.tangent_function(mask, _internal=True)
        fname = self.bind(jvp, f"{callee.name}_jvp_")
        out, dout = self.fresh(f"_{callee.name}"), None
        dout = self.tname(out)
        call = ast.Call(ast.Name(fname, ast.Load()), [a.p() for a in args] + tangents, [])
        self.emit(ast.Assign([ast.Tuple([ast.Name(out, ast.Store()), ast.Name(dout, ast.Store())], ast.Store())], call))
        val = Val(self, lambda: ast.Name(out, ast.Load()), t=ast.Name(dout, ast.Load()), node=node)
        val.name = out
        return val

    # ---------------------------------------------------------- statements
    def st_Pass(self, s):
        self.emit(ast.Pass())

    def st_Break(self, s):
        self.emit(ast.Break())

    def st_Continue(self, s):
        self.emit(ast.Continue())

    def st_Assert(self, s):
        self.emit(self.primal(s))

    def st_Expr(self, s):
        if self.is_active(s.value):
            kind = self.resolver.classify(s.value)[0] if isinstance(s.value, ast.Call) else None
            v = self.expr(s.value)
            if kind != "user":
                self.emit(ast.Expr(v.expr))
        else:
            self.emit(ast.Expr(self.primal(s.value)))

    def st_Assign(self, s):
        target = s.targets[0]
        if isinstance(target, ast.Name):
            return self._assign_name(target, s.value)
        if isinstance(target, ast.Tuple):
            return self._assign_tuple(target, s.value)
        return self._assign_subscript(target, s.value)

    def _assign_name(self, target, value):
        name = target.id
        if name not in self.active:
            self.emit(ast.Assign([ast.Name(name, ast.Store())], self.primal(value)))
            return
        self._target_done = False
        v = self.expr(value, target=target)
        dname = ast.Name(self.tname(name), ast.Store())
        if not v.active:
            p = v.expr
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
            self.emit(ast.Assign([dname], self.zero_expr(p if isinstance(p, ast.Constant) else ast.Name(name, ast.Load()))))
            return
        if name in self.mutated and _is_alias_expr(v.t) and not _is_alias_expr(v.expr):
            # a new primal array whose tangent would share memory with another tangent:
            # copy it, since the array is written in place later
            v.t = self.fj_call("fresh", [v.t])
        if self._target_done:
            self.emit(ast.Assign([dname], v.t))
            return
        p = v.expr
        if name in names_in(v.t):     # the tangent reads the old value: compute it first
            self.emit(ast.Assign([dname], v.t))
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
        else:
            self.emit(ast.Assign([ast.Name(name, ast.Store())], p))
            self.emit(ast.Assign([dname], v.t))

    def _tangent_target(self, t):
        """``a[i]`` -> ``da[i]`` (index copied), for a target whose root is active."""
        t = copy.deepcopy(t)
        node = t
        while isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name):
                node.value = ast.Name(self.tname(node.value.id), ast.Load())
                break
            node = node.value
        return t

    def _assign_subscript(self, target, value):
        root = root_name(target)
        if root not in self.active:
            self.emit(ast.Assign([self.primal(target)], self.primal(value)))
            return
        v = self.expr(value)
        t = v.t if v.active else ast.Constant(0.0)
        self.emit(ast.Assign([self._tangent_target(target)], t))
        self.emit(ast.Assign([self.primal(target)], v.expr))

    def _assign_tuple(self, target, value):
        v = self.expr(value)
        names = []
        for e in target.elts:
            if not isinstance(e, ast.Name):
                raise self.info.error(UnsupportedSyntax, e, "unpacking into array elements",
                                      hint="unpack into names, then assign the elements", construct="tuple target")
            names.append(e.id)
        if any(n in self.active for n in names) and v.active:
            dt = ast.Tuple([ast.Name(self.tname(n) if n in self.active else self.fresh("_unused"), ast.Store())
                            for n in names], ast.Store())
            p = v.expr
            tv = v.t
            first = any(n in names_in(tv) for n in names)
            stmts = [ast.Assign([copy.deepcopy(target)], p), ast.Assign([dt], tv)]
            for st in (stmts[::-1] if first else stmts):
                self.emit(st)
            return
        self.emit(ast.Assign([copy.deepcopy(target)], v.expr))
        for n in names:
            if n in self.active:
                self.emit(ast.Assign([ast.Name(self.tname(n), ast.Store())],
                                     self.fj_call("zero", [ast.Name(n, ast.Load())])))

    def st_AugAssign(self, s):
        target = s.target
        root = target.id if isinstance(target, ast.Name) else root_name(target)
        if root not in self.active:
            self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(s.op),
                                    buffered_rhs(target, self.primal(s.value), self.aliases)))
            return
        v = self.expr(s.value)
        if isinstance(target, ast.Name):
            dt = ast.Name(self.tname(root), ast.Store())
            tload = ast.Name(target.id, ast.Load())
        else:
            dt = self._tangent_target(target)
            tload = self.primal(target)
            tload.ctx = ast.Load()
        op = s.op
        if isinstance(op, (ast.Add, ast.Sub)):
            if v.active:
                t = v.t
                if _is_alias_expr(t):        # dx += dx[::-1]: read through a copy, not an overlapping view
                    t = self.fj_call("fresh", [t])
                self.emit(ast.AugAssign(dt, copy.deepcopy(op), t))
            self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(op),
                                    buffered_rhs(target, v.expr, self.aliases)))
            return
        b = v.p()
        if v.active:
            # the tangent of e may read dx (or an alias of it): evaluate it before dx changes in place
            de = self.tname(self.fresh("_e"))     # a tangent name: vector mode gives each direction its own
            t = v.t
            if _is_alias_expr(t):
                t = self.fj_call("fresh", [t])
            self.emit(ast.Assign([ast.Name(de, ast.Store())], t))
            v.t = ast.Name(de, ast.Load())
        if isinstance(op, ast.Mult):
            self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Mult(), copy.deepcopy(b)))
            if v.active:
                self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Add(), ast.BinOp(tload, ast.Mult(), v.t)))
        elif isinstance(op, ast.Div):
            if v.active:
                self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Sub(),
                                        ast.BinOp(ast.BinOp(tload, ast.Div(), copy.deepcopy(b)), ast.Mult(), v.t)))
            self.emit(ast.AugAssign(copy.deepcopy(dt), ast.Div(), copy.deepcopy(b)))
        self.emit(ast.AugAssign(self.primal(target), copy.deepcopy(op), buffered_rhs(target, b, self.aliases)))

    def st_Return(self, s):
        if s.value is None:
            self.emit(ast.Return(ast.Tuple([ast.Constant(None), ast.Constant(None)], ast.Load())))
            return
        v = self.expr(s.value)
        t = v.t if v.active else self.zero_expr(v.p())
        self.emit(ast.Return(ast.Tuple([v.expr, t], ast.Load())))

    def st_If(self, s):
        self.emit(ast.If(self.primal(s.test), self.block(s.body), self.block(s.orelse) if s.orelse else []))

    def st_While(self, s):
        self.emit(ast.While(self.primal(s.test), self.block(s.body), []))

    def st_For(self, s):
        if self.is_active(s.iter) or (isinstance(s.target, ast.Name) and s.target.id in self.active):
            raise self.info.error(UnsupportedSyntax, s, "for loop whose loop variable carries a derivative",
                                  hint="loop over range(len(a)) and index the array", construct="for over values")
        self.emit(ast.For(copy.deepcopy(s.target), self.primal(s.iter), self.block(s.body), []))


class _MethodCall(R.RuleCall):
    """RuleCall for ``recv.method(args)``: args[0] is the receiver."""

    def __init__(self, gen, attr, args, kw, result_fn):
        super().__init__(gen, None, args, kw, result_fn)
        self.attr = attr

    def same_call(self, args=None, kw=None):
        args = args if args is not None else [a.p() for a in self.args]
        kw = kw if kw is not None else {k: v.p() for k, v in self.kw.items()}
        return ast.Call(ast.Attribute(args[0], self.attr, ast.Load()), args[1:],
                        [ast.keyword(arg=k, value=v) for k, v in kw.items()])


class PrimalRewriter(ast.NodeTransformer):
    """Point calls to user functions at their compiled primal (and buffer overlapping in-place updates)."""

    def __init__(self, gen):
        self.gen = gen

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        node.value = buffered_rhs(node.target, node.value, self.gen.aliases)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if self.gen.resolver is None:
            return node
        kind, obj, rule = self.gen.resolver.classify(node)
        node.args = blas_safe_args(obj, node.args, node.keywords)
        if kind == "user":
            name = self.gen.bind(obj.primal_function_internal(), f"{obj.name}_")
            node.func = ast.Name(name, ast.Load())
        elif kind == "rule" and getattr(rule, "compiled", None) is not None and rule.compiled is not obj:
            name = self.gen.bind(rule.compiled, f"{getattr(obj, '__name__', 'f')}_")
            node.func = ast.Name(name, ast.Load())
        return node


def _is_alias_expr(node):
    """An expression that may share memory with an existing array (a name, a view, a bcast no-op)."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, (ast.Subscript, ast.Attribute)):
        return _is_alias_expr(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "bcast" and node.args:
            return _is_alias_expr(node.args[0])
        base = view_base(node)                  # x.reshape(...), np.flip(x)
        if base is not None:
            return _is_alias_expr(base)
    return False


def _mentions(node, name):
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _partial_view_of(node, root):
    """Whether ``node`` may be a *shifted or reordered* view of the array ``root``.

    ``u[1:] += u[:-1]`` and ``u += np.flip(u)``: NumPy computes the right-hand side
    as if copied first, Numba updates element by element through the view.  A
    plain name or an index without slices (``u``, ``A[j]``) meets the target
    element for element or not at all, so it needs no copy.
    """
    if isinstance(node, ast.Subscript):
        sliced = any(isinstance(n, ast.Slice) for n in ast.walk(node.slice))
        return (sliced and _mentions(node.value, root)) or _partial_view_of(node.value, root)
    if isinstance(node, ast.Attribute):
        return node.attr == "T" and _mentions(node.value, root)
    base = view_base(node)
    return base is not None and _mentions(base, root)


def blas_safe_args(obj, args, keywords):
    """The arguments of a call to ``obj``, with ``np.linalg.norm(x)``'s passed through ``fj.blas_strides``.

    Numba's norm goes to BLAS, which gives wrong values for negative strides (``v[::-1]``).
    """
    if obj is np.linalg.norm and len(args) == 1 and not keywords:
        return [ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), "blas_strides", ast.Load()), [args[0]], [])]
    return args


def buffered_rhs(target, value, aliases):
    """``value`` read through a copy when it may be a partial view of the in-place ``target``.

    ``aliases`` is :func:`fwdjit.compiler.activity.alias_groups` of the function: after
    ``u = v``, ``u[1:] += v[::-1][1:]`` overlaps as ``u[1:] += u[::-1][1:]`` does;
    after ``u = v[::-1]``, even ``u += v`` does.
    """
    root = target.id if isinstance(target, ast.Name) else root_name(target)
    if root is None:
        return value
    same, views = aliases.get(root, ({root}, set()))
    if any(_partial_view_of(value, n) for n in same) or any(_mentions(value, n) for n in views):
        return ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), "fresh", ast.Load()), [value], [])
    return value


_COMMENT_RE = re.compile(r"""^(\s*)('''|\"\"\"|'|")""" + COMMENT)


def render(fdef):
    """Unparse a generated function, turning comment markers into comments."""
    text = ast.unparse(fdef)
    lines = []
    for line in text.splitlines():
        m = _COMMENT_RE.match(line)
        if m:
            body = ast.literal_eval(line.strip())[len(COMMENT):]
            lines.append(f"{m.group(1)}# {body}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
