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
import re

from ..errors import UnsupportedCall, UnsupportedSyntax
from ..rules import lowrank as LR
from .activity import alias_groups, factorable, mutated_names
from .callees import Resolver  # noqa: F401  (re-exported: targets and tests import it from here)
from .normalize import NameGen, all_names
from .primal import Binder
from .render import COMMENT, render
from .tangent_expr import ExpressionTangents, Val, is_cheap  # noqa: F401  (re-exported)
from .tangent_stmt import StatementTangents


#: the ``_1`` a fresh name ends with
_FRESH_SUFFIX = re.compile(r"_[0-9]+$")

#: names of complex types (builtins and NumPy attributes)
_COMPLEX_NAMES = {"complex", "complex64", "complex128", "complexfloating", "cdouble", "csingle"}


class TangentGen(ExpressionTangents, StatementTangents, Binder):
    """Generates ``<name>_jvp(primals..., tangents of active params...)``.

    This class holds the state and the driver; the visitors of expressions (``ex_*``) and of
    statements (``st_*``) are its two halves in :mod:`~fwdjit.compiler.tangent_expr` and
    :mod:`~fwdjit.compiler.tangent_stmt`."""

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
        """The tangent variable of ``var``: ``dx`` for ``x`` (``_dt1`` for ``_t1``), or a fresh ``dx_1``,
        ``dx_2``... where that name is taken (``def f(x, dx)``; the third order's parameters).

        Every name this hands out is reserved in the shared NameGen, so it is never handed out again:
        not as another variable's tangent (at third order the tangent of ``da`` is ``dda`` and that of
        ``da_1``, itself a fresh tangent name, would be ``dda_1``, the fresh name a taken ``dda`` gets),
        nor as a fresh temporary, nor where the user already wrote that name (``def f(x, dx)``)."""
        n = self._tnames.get(var)
        if n is None:
            cand = "d" + var if not var.startswith("_") else "_d" + var[1:]
            if cand in self.names.taken:
                # ``ddx_1`` taken: ``ddx_2``, not ``ddx_1_1`` (names stay flat at any order)
                cand = self.names.fresh(_FRESH_SUFFIX.sub("", cand) + "_")
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
        self._refuse_complex()
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

    def _refuse_complex(self):
        """Complex types (``complex(...)``, ``np.complex128``, ``astype("complex128")``) in code being
        differentiated: refused, located; the rules are those of real functions (``abs``, ``norm`` would be
        silently wrong).  Complex literals (``1j``) never get here: validate refuses them."""
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Name, ast.Attribute)) and \
                    (node.id if isinstance(node, ast.Name) else node.attr) in _COMPLEX_NAMES:
                raise self.info.error(UnsupportedSyntax, node,
                                      f"the complex type {ast.unparse(node)} in a function being differentiated",
                                      hint="fwdjit differentiates real-valued code: write the real and imaginary "
                                           "parts as separate float variables", construct="complex number")

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
