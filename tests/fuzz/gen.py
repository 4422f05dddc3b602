"""Random programs in the subset fwdjit differentiates (the fuzzer's generator).

``generate(seed)`` returns a :class:`Program`: the text of a Python module
that defines ``f`` (and, sometimes, helper functions ``f`` calls), the
parameter kinds and concrete arguments.  Same seed, same program.

Programs are built from

* straight-line float arithmetic (``+ - * /``, unary minus, ``**`` with
  constant and with differentiable exponents);
* NumPy and ``math`` functions with arguments that stay inside their domain
  (``np.log(1.0 + a ** 2)``, ``np.sqrt(0.5 + a ** 2)``,
  ``np.arcsin(0.9 * np.tanh(a))``...), piecewise functions (``abs``, ``max``,
  ``np.maximum``, ``np.clip``, ``np.where``, ``%``, ``np.sort``), reductions
  (``np.sum``, ``np.dot``, ``@``, ``np.max``, ``np.prod``, ``np.linalg.norm``,
  ``.sum()``) and array builders (``np.zeros``, ``np.full``, ``np.array``,
  ``np.concatenate``, ``np.outer``, ``np.cumsum``...);
* array element and slice reads and writes (``u[i] = e``, ``u[i] += e``,
  ``u[1:3] = e[1:3]``, ``M[i, j]``, rows and (strided) columns), aliases and
  views (``u = v``, ``u = v[1:]``), in-place updates (``u += e``, ``u *= e``);
* ``for`` loops over ``range``, over arrays, ``enumerate`` and ``zip``, with
  value-dependent ``if``/``elif``/``else``, ``break`` and ``continue``;
  ``while`` loops with a value-dependent condition (and a counter, so they
  end); conditional expressions;
* tuple, chained and annotated assignments, ``a, b = b, a``;
* calls to helper functions (plain, ``@numba.njit`` or ``@fwdjit``), some of
  them returning tuples, some writing into an array argument.

Every float value stays bounded (squashing functions, bounded loop counts)
so the plain program gives finite values; the runner skips the rare program
that does not.  Vectors all have the program's length ``N`` (3 to 6),
matrices are ``N x N``.
"""
from __future__ import annotations

import re
import random
from dataclasses import dataclass, field

import numpy as np

try:   # numba's matrix products need SciPy's BLAS
    import importlib.util as _ilu
    HAVE_BLAS = _ilu.find_spec("scipy") is not None
except Exception:  # pragma: no cover
    HAVE_BLAS = False

# kinds of values: 's' float scalar, 'v' float vector (length N), 'm' float
# matrix (N x N), 'n' int (loop count), 'b' bool
FLOAT_KINDS = ("s", "v", "m")

HEADER = "import math\nimport numpy as np\n"

#: Open compiler bugs the generator steers around (so that a long run can
#: find other ones); remove an entry when the bug is fixed.  Recognized:
#:   augmul_self: ``x *= e`` where ``e`` reads ``x`` (or an alias of it): the
#:   tangent update read the already-scaled tangent (fixed; see
#:   regressions/augmul_self_*.py).  When avoided the generator writes
#:   ``t = e; x *= t``.
KNOWN_BUGS = set()


@dataclass
class Program:
    """A generated module: ``source`` defines ``f(*params)``; ``args`` are its inputs."""
    seed: int
    source: str
    params: list            # [(name, kind)]
    args: list              # concrete values, one per parameter
    N: int = 4
    dtype: str = "float64"
    meta: dict = field(default_factory=dict)

    @property
    def names(self):
        return [p for p, _ in self.params]

    def differentiable(self):
        return [p for p, k in self.params if k in FLOAT_KINDS]


# ------------------------------------------------------------------ templates
# {a}, {b}: scalar sub-expressions (parenthesized by the generator)
S_UNARY = [
    "np.sin({a})", "math.sin({a})", "np.cos({a})", "math.cos({a})", "np.tanh({a})", "math.tanh({a})",
    "np.arctan({a})", "math.atan({a})", "np.exp(np.sin({a}))", "math.exp(np.tanh({a}))",
    "np.exp(-{a} ** 2)", "np.expm1(np.sin({a}))", "math.expm1(math.cos({a}))", "np.exp2(np.cos({a}))",
    "np.log(1.0 + {a} ** 2)", "math.log(1.5 + np.sin({a}))", "np.log1p({a} ** 2)", "math.log1p(np.tanh({a}) + 1.2)",
    "np.log2(1.0 + {a} ** 2)", "np.log10(2.0 + np.cos({a}))", "math.log2(2.0 + math.sin({a}))",
    "math.log10(1.0 + {a} ** 2)",
    "np.sqrt(1.0 + {a} ** 2)", "math.sqrt(0.5 + {a} ** 2)", "np.cbrt(2.0 + np.sin({a}))",
    "np.arcsin(0.9 * np.tanh({a}))", "math.asin(0.8 * math.sin({a}))", "np.arccos(0.9 * np.tanh({a}))",
    "math.acos(0.7 * np.cos({a}))", "np.arctanh(0.9 * np.tanh({a}))", "math.atanh(0.5 * math.sin({a}))",
    "np.arcsinh({a})", "math.asinh({a})", "np.arccosh(1.5 + {a} ** 2)", "math.acosh(2.0 + np.sin({a}))",
    "np.sinh(np.tanh({a}))", "math.sinh(math.sin({a}))", "np.cosh(np.sin({a}))", "math.cosh(np.tanh({a}))",
    "np.tan(0.5 * np.tanh({a}))", "math.tan(0.6 * math.sin({a}))", "math.erf({a})", "math.erfc({a})",
    "abs({a})", "np.abs({a})", "math.fabs({a})", "np.fabs({a})", "np.square({a})", "np.reciprocal(1.0 + {a} ** 2)",
    "np.deg2rad({a})", "np.rad2deg(0.01 * {a})", "math.radians({a})", "math.degrees(0.01 * {a})",
    "np.radians({a})", "np.negative({a})", "np.positive({a})", "float({a})", "np.sign({a}) * {a}",
    "np.floor({a}) + {a}", "{a} - math.floor({a})", "({a}) % 1.5", "np.round({a}) * 0.5 + {a}",
]
S_BINARY = [
    "{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / (1.0 + {b} ** 2)", "{a} / 1.7", "{a} * 0.5 - {b}",
    "np.hypot({a}, {b})", "math.hypot({a}, 0.5 + {b} ** 2)", "np.arctan2({a}, 1.0 + {b} ** 2)",
    "math.atan2({a}, {b})", "max({a}, {b})", "min({a}, {b})", "max({a}, {b}, 0.1)", "min({a}, 0.3)",
    "np.maximum({a}, {b})", "np.minimum({a}, {b})", "np.fmax({a}, {b})", "np.fmin({a}, {b})",
    "(1.0 + {a} ** 2) ** 0.5", "(1.0 + {a} ** 2) ** -1.5", "(0.5 + {a} ** 2) ** np.tanh({b})",
    "np.power(1.0 + {a} ** 2, 0.5 * np.sin({b}))", "math.pow(1.5 + np.sin({a}), {b})",
    "pow(1.0 + {a} ** 2, np.cos({b}))", "(1.2 + math.cos({a})) ** 2.5", "{a} ** 3", "{a} ** 2",
    "np.power({a}, 2)", "np.power(2.0, np.sin({a}))", "2.0 ** np.tanh({a})",
    "np.add({a}, {b})", "np.subtract({a}, {b})", "np.multiply({a}, {b})", "np.divide({a}, 2.0 + np.cos({b}))",
    "({a} if {a} > {b} else {b} * 0.5)", "{a} * np.tanh({b})",
]
# {v}, {w}: vector sub-expressions; {s}: scalar
V_UNARY = [
    "np.sin({v})", "np.cos({v})", "np.tanh({v})", "np.arctan({v})", "np.exp(np.sin({v}))", "np.exp(-{v} ** 2)",
    "np.expm1(np.cos({v}))", "np.log(1.0 + {v} ** 2)", "np.log1p({v} * {v})", "np.sqrt(0.5 + {v} ** 2)",
    "np.cbrt(2.0 + np.sin({v}))", "np.arcsin(0.9 * np.tanh({v}))", "np.arccos(0.8 * np.tanh({v}))",
    "np.arctanh(0.9 * np.tanh({v}))", "np.arcsinh({v})", "np.arccosh(1.5 + {v} ** 2)", "np.sinh(np.tanh({v}))",
    "np.cosh(np.sin({v}))", "np.abs({v})", "np.fabs({v})", "np.square({v})", "np.reciprocal(2.0 + np.cos({v}))",
    "np.log2(1.5 + np.sin({v}))", "np.log10(1.0 + {v} ** 2)", "np.exp2(np.tanh({v}))", "np.deg2rad({v})",
    "np.negative({v})", "-{v}", "np.cumsum({v}) * 0.3", "np.sort({v})", "np.flip({v})", "{v} ** 2", "{v} ** 3",
    "np.power(1.0 + {v} ** 2, 0.5)", "np.copy({v})", "np.ravel({v})", "np.sign({v}) * {v}", "np.floor({v}) + {v}",
    "{v} % 1.3",
]
V_BINARY = [
    "{v} + {w}", "{v} - {w}", "{v} * {w}", "{v} / (1.0 + {w} ** 2)", "{v} * {s}", "{s} * {v}", "{v} + {s}",
    "{s} - {v}", "{v} / (2.0 + np.cos({s}))", "np.maximum({v}, {w})", "np.minimum({v}, {s})",
    "np.maximum({v}, 0.1)", "np.where({v} > {w}, {v}, {w} * 0.5)", "np.where({v} > 0.2, {v}, {s})",
    "np.clip({v}, -0.5, 0.7)", "np.hypot({v}, {w})", "np.arctan2({v}, 1.0 + {w} ** 2)",
    "np.power(0.5 + {v} ** 2, np.tanh({s}))", "np.power(1.0 + {v} ** 2, np.sin({w}))",
    "{v} * np.tanh({w})", "np.add({v}, {s})", "np.multiply({v}, {w})", "np.subtract({s}, {v})",
    "np.divide({v}, 1.5 + np.sin({w}))",
]
V_TO_S = [
    "np.sum({v})", "np.mean({v})", "np.dot({v}, {w})", "np.vdot({v}, {w})", "np.max({v})", "np.min({v})",
    "np.amax({v})", "np.prod(np.tanh({v}) + 1.1)", "np.prod({v})", "np.linalg.norm({v})", "np.sum({v}[1:] * {w}[:-1])",
    "np.sum({v}[::2])", "np.sum({v}[::-1] * {w})", "np.dot({v}[1:], {w}[1:])",
]
M_TO_S = ["np.sum({m})", "np.trace({m})", "np.sum({m} * {m})", "np.max({m})", "np.mean({m})"]
M_TO_V = ["{m} @ {v}", "np.dot({m}, {v})", "{v} @ {m}", "{m}.T @ {v}", "np.sum({m}, axis=0)"]
M_EXPR = ["np.outer({v}, {w})", "{m} * {s}", "np.tanh({m})", "{m} + np.outer({v}, {w})", "{m}.T", "{m} @ {m}",
          "np.sin({m}) * 0.5"]
COND_OPS = [">", "<", ">=", "<="]


class _Scope:
    def __init__(self, parent=None):
        self.parent = parent
        self.vars = {}

    def all(self):
        out = dict(self.parent.all()) if self.parent else {}
        out.update(self.vars)
        return out


class Gen:
    """Builds one module from a seed."""

    def __init__(self, seed, *, allow_helpers=True, allow_matrix=None, max_stmts=None, dtype="float64",
                 avoid=None):
        self.seed = seed
        self.avoid = set(KNOWN_BUGS if avoid is None else avoid)
        self.r = random.Random(seed)
        r = self.r
        self.N = r.randint(3, 6)
        self.dtype = dtype
        self.allow_matrix = HAVE_BLAS if allow_matrix is None else allow_matrix
        self.allow_helpers = allow_helpers
        self.max_stmts = max_stmts or r.randint(2, 6)
        self.counter = 0
        self.helpers = []           # (name, [(pname, kind)], ret_kind, text, mutating_index)
        self.helper_texts = []
        self.uses_numba = False
        self.uses_fwdjit = False
        self.lines = []
        self.indent = 1
        self.loop_idx = []          # names usable as vector indices (0 <= i < N)
        self.loop_depth = 0
        self.in_while = 0
        self.params = []
        self.scope = _Scope()
        self.writable = set()       # local arrays that may be written into
        self.nstmts = 0

    # ----------------------------------------------------------- utilities
    def fresh(self, stem):
        self.counter += 1
        return f"{stem}{self.counter}"

    def pick(self, seq):
        return self.r.choice(seq)

    def vars_of(self, kind):
        return [n for n, k in self.scope.all().items() if k == kind]

    def const(self):
        return self.pick(["0.5", "1.5", "2.0", "0.25", "3.0", "0.75", "1.25", "(-0.5)", "(-1.5)"])

    def emit(self, line):
        self.lines.append("    " * self.indent + line)

    # --------------------------------------------------------- expressions
    def idx(self):
        """An int expression valid as an index into a vector of length N."""
        opts = [str(self.r.randrange(self.N)), str(-self.r.randint(1, self.N))]
        if self.loop_idx:
            opts += self.loop_idx * 3
        return self.pick(opts)

    def s_leaf(self):
        r = self.r
        x = r.random()
        svars = self.vars_of("s")
        vvars = self.vars_of("v")
        if svars and x < 0.5:
            return self.pick(svars)
        if vvars and x < 0.85:
            return f"{self.pick(vvars)}[{self.idx()}]"
        mvars = self.vars_of("m")
        if mvars and x < 0.9:
            return f"{self.pick(mvars)}[{self.idx()}, {self.idx()}]"
        if svars:
            return self.pick(svars)
        if vvars:
            return f"{self.pick(vvars)}[{self.idx()}]"
        return self.const()

    def s_expr(self, d=2):
        r = self.r
        if d <= 0 or r.random() < 0.25:
            return self.s_leaf()
        x = r.random()
        if x < 0.35:
            return "(" + self.pick(S_UNARY).format(a=self._p(self.s_expr(d - 1))) + ")"
        if x < 0.7:
            a = self._p(self.s_expr(d - 1))
            b = self._p(self.s_expr(d - 1)) if r.random() < 0.7 else self.const()
            return "(" + self.pick(S_BINARY).format(a=a, b=b) + ")"
        if x < 0.9 and self.vars_of("v"):
            t = self.pick(V_TO_S)
            return "(" + t.format(v=self._p(self.v_expr(d - 1)), w=self._p(self.v_expr(d - 1))) + ")"
        if x < 0.95 and self.vars_of("m"):
            return "(" + self.pick(M_TO_S).format(m=self._p(self.m_expr(d - 1))) + ")"
        if self.vars_of("v") and r.random() < 0.5:
            v = self.pick(self.vars_of("v"))
            meth = self.pick(["sum", "max", "min", "mean", "prod"])
            return f"{v}.{meth}()"
        return f"({self.s_expr(d - 1)} if {self.cond(d - 1)} else {self.s_expr(d - 1)})"

    @staticmethod
    def _p(e):
        """Parenthesize unless atomic."""
        if e.replace("_", "").replace(".", "").isalnum() and not e.startswith("-"):
            return e
        if e.startswith("(") and e.endswith(")") and _balanced(e[1:-1]):
            return e
        return f"({e})"

    def v_leaf(self):
        vvars = self.vars_of("v")
        r = self.r
        if not vvars:
            return f"np.full({self.N}, {self.s_leaf()})"
        v = self.pick(vvars)
        x = r.random()
        if x < 0.7:
            return v
        if x < 0.8:
            return f"{v}[::-1]"
        mvars = self.vars_of("m")
        if mvars and x < 0.9:
            m = self.pick(mvars)
            return self.pick([f"{m}[{self.idx()}]", f"{m}[:, {self.idx()}]"])
        return f"np.full(len({v}), {self.s_leaf()})"

    def v_expr(self, d=2):
        r = self.r
        if d <= 0 or r.random() < 0.25 or not self.vars_of("v"):
            return self.v_leaf()
        x = r.random()
        if x < 0.35:
            return "(" + self.pick(V_UNARY).format(v=self._p(self.v_expr(d - 1))) + ")"
        if x < 0.75:
            return "(" + self.pick(V_BINARY).format(v=self._p(self.v_expr(d - 1)), w=self._p(self.v_expr(d - 1)),
                                                    s=self._p(self.s_expr(d - 1))) + ")"
        if x < 0.85 and self.vars_of("m"):
            return "(" + self.pick(M_TO_V).format(m=self._p(self.m_expr(d - 1)), v=self._p(self.v_expr(d - 1))) + ")"
        if x < 0.9:
            k = r.randint(1, self.N - 1)
            return f"np.concatenate(({self._p(self.v_expr(d - 1))}[:{k}], {self._p(self.v_expr(d - 1))}[{k}:]))"
        if x < 0.95:
            elts = ", ".join(self.s_expr(0) for _ in range(self.N))
            return f"np.array(({elts}))"
        return f"np.full({self.N}, {self.s_expr(d - 1)})"

    def m_expr(self, d=1):
        mvars = self.vars_of("m")
        if d <= 0 or self.r.random() < 0.5 or not self.vars_of("v"):
            if mvars:
                return self.pick(mvars)
            v = self.pick(self.vars_of("v"))
            return f"np.outer({v}, {v})"
        m = self._p(self.m_expr(d - 1))
        return "(" + self.pick(M_EXPR).format(m=m, v=self._p(self.v_expr(d - 1)), w=self._p(self.v_expr(d - 1)),
                                            s=self._p(self.s_expr(d - 1))) + ")"

    def cond(self, d=1):
        r = self.r
        x = r.random()
        ints = self.vars_of("n")
        bools = self.vars_of("b")
        if bools and x < 0.1:
            return self.pick(bools) if r.random() < 0.7 else f"not {self.pick(bools)}"
        if ints and x < 0.2:
            return f"{self.pick(ints)} {self.pick(COND_OPS)} {r.randint(0, 3)}"
        if self.loop_idx and x < 0.3:
            return f"{self.pick(self.loop_idx)} % 2 == {r.randint(0, 1)}"
        c = f"{self.s_expr(d)} {self.pick(COND_OPS)} {self.pick(['0.0', '0.3', '-0.2', self.s_leaf()])}"
        if r.random() < 0.15:
            c2 = f"{self.s_leaf()} {self.pick(COND_OPS)} {self.const()}"
            c = f"({c} {self.pick(['and', 'or'])} {c2})"
        return c

    # ----------------------------------------------------------- statements
    def emit_aug(self, target, op, e):
        """``target op= e``; with a known bug to avoid, ``e`` goes through a temporary first."""
        if op == "*=" and "augmul_self" in self.avoid:
            tmp = self.fresh("t")
            self.emit(f"{tmp} = {e}")
            e = tmp
        self.emit(f"{target} {op} {e}")

    def define(self, name, kind):
        self.scope.vars[name] = kind

    def block(self, n, *, allow_break=False):
        self.indent += 1
        self.scope = _Scope(self.scope)
        saved_writable = set(self.writable)
        start = len(self.lines)
        for _ in range(n):
            self.stmt(allow_break=allow_break)
        if len(self.lines) == start:
            self.emit("pass")
        self.scope = self.scope.parent
        self.writable = saved_writable
        self.indent -= 1

    def stmt(self, allow_break=False):
        r = self.r
        self.nstmts += 1
        depth = self.indent - 1
        choices = [("assign_s", 6), ("assign_v", 4), ("aug_s", 3), ("aug_v", 2), ("write", 4), ("tuple", 1),
                   ("chain", 0.5), ("ann", 0.5)]
        if depth < 3:
            choices += [("for", 3), ("if", 3), ("while", 1)]
        if self.allow_helpers and self.helpers:
            choices += [("call", 2)]
        if allow_break and self.in_while == 0:
            choices += [("break", 0.7), ("continue", 0.7)]
        if self.allow_matrix and self.vars_of("m"):
            choices += [("write_m", 1)]
        total = sum(w for _, w in choices)
        x = r.random() * total
        for name, w in choices:
            x -= w
            if x <= 0:
                break
        getattr(self, "st_" + name)()

    def _target_s(self):
        svars = [v for v in self.vars_of("s")]
        if svars and self.r.random() < 0.4:
            return self.pick(svars), False
        return self.fresh("s"), True

    def st_assign_s(self):
        name, new = self._target_s()
        self.emit(f"{name} = {self.s_expr(self.r.randint(1, 2))}")
        if new:
            self.define(name, "s")

    def st_ann(self):
        name, new = self._target_s()
        self.emit(f"{name}: float = {self.s_expr(2)}")
        if new:
            self.define(name, "s")

    def st_chain(self):
        a, b = self.fresh("s"), self.fresh("s")
        self.emit(f"{a} = {b} = {self.s_expr(2)}")
        self.define(a, "s")
        self.define(b, "s")

    def st_assign_v(self):
        r = self.r
        vvars = self.vars_of("v")
        x = r.random()
        name = self.fresh("u")
        if vvars and x < 0.2:
            src = self.pick(vvars)
            self.emit(f"{name} = " + self.pick([f"{src}.copy()", f"np.copy({src})", f"{src} * 1.0"]))
            self.writable.add(name)
        elif x < 0.3:
            like = self.pick(vvars) if vvars else None
            self.emit(f"{name} = " + (self.pick([f"np.zeros(len({like}))", f"np.zeros_like({like})",
                                                  f"np.ones({self.N})"]) if like else f"np.zeros({self.N})"))
            self.writable.add(name)
        elif vvars and x < 0.38:
            src = self.pick(vvars)
            self.emit(f"{name} = {src}")    # alias
            if src in self.writable:
                self.writable.add(name)
        elif vvars and x < 0.43 and self.vars_of("v"):
            # a view: u = v[k:] is shorter, so only its elements are used (through the base)
            src = self.pick([v for v in vvars if v in self.writable] or [None])
            if src is not None:
                k = r.randint(1, self.N - 1)
                view = self.fresh("w")
                self.emit(f"{view} = {src}[{k}:]")
                self.emit(f"{view}[0] = {self.s_expr(1)}")
                self.emit(f"{name} = {src} * 1.0")
                self.writable.add(name)
            else:
                self.emit(f"{name} = {self.v_expr(2)}")
        elif vvars and x < 0.5 and r.random() < 0.5:
            old = self.pick(vvars)
            self.emit(f"{old} = {self.v_expr(2)}")
            self.writable.add(old)
            return
        else:
            self.emit(f"{name} = {self.v_expr(r.randint(1, 2))}")
            self.writable.add(name)
        self.define(name, "v")

    def st_aug_s(self):
        svars = self.vars_of("s")
        if not svars:
            return self.st_assign_s()
        name = self.pick(svars)
        op = self.pick(["+=", "-=", "*=", "/=", "+=", "-=", "**="])
        e = self.s_expr(2)
        if op == "*=":
            e = self.pick([f"np.tanh({e})", f"(1.0 + 0.1 * np.sin({e}))", f"np.cos({e})"])
        elif op == "/=":
            e = self.pick([f"(1.0 + {self._p(e)} ** 2)", f"(2.0 + np.sin({e}))"])
        elif op == "**=":
            if self.loop_depth:
                op, e = "+=", e
            else:
                e = "2"
        self.emit_aug(name, op, e)

    def st_aug_v(self):
        vvars = [v for v in self.vars_of("v") if v in self.writable]
        if not vvars:
            return self.st_assign_v()
        name = self.pick(vvars)
        op = self.pick(["+=", "-=", "*=", "/="])
        e = self.pick([self.v_expr(2), self.s_expr(1)])
        if op == "*=":
            e = f"np.tanh({e})"
        elif op == "/=":
            e = f"(1.0 + {self._p(e)} ** 2)"
        self.emit_aug(name, op, e)

    def st_write(self):
        r = self.r
        vvars = [v for v in self.vars_of("v") if v in self.writable]
        if not vvars:
            return self.st_assign_v()
        name = self.pick(vvars)
        x = r.random()
        if x < 0.45:
            self.emit(f"{name}[{self.idx()}] = {self.s_expr(2)}")
        elif x < 0.7:
            op = self.pick(["+=", "-=", "*=", "/="])
            e = self.s_expr(2)
            if op == "*=":
                e = f"np.cos({e})"
            elif op == "/=":
                e = f"(1.5 + np.sin({e}))"
            self.emit_aug(f"{name}[{self.idx()}]", op, e)
        elif x < 0.85:
            lo = r.randint(0, self.N - 2)
            hi = r.randint(lo + 1, self.N)
            self.emit(f"{name}[{lo}:{hi}] = {self._p(self.v_expr(2))}[{lo}:{hi}]")
        elif x < 0.93:
            lo = r.randint(0, self.N - 2)
            self.emit(f"{name}[{lo}:] += {self._p(self.v_expr(1))}[{lo}:]")
        else:
            self.emit(f"{name}[:] = {self.v_expr(2)}")

    def st_write_m(self):
        mvars = [m for m in self.vars_of("m") if m in self.writable]
        if not mvars:
            m = self.fresh("M")
            src = self.pick(self.vars_of("m"))
            self.emit(f"{m} = {src}.copy()")
            self.define(m, "m")
            self.writable.add(m)
            return
        m = self.pick(mvars)
        x = self.r.random()
        if x < 0.5:
            self.emit(f"{m}[{self.idx()}, {self.idx()}] = {self.s_expr(2)}")
        elif x < 0.8 and self.vars_of("v"):
            self.emit(f"{m}[{self.idx()}] = {self.v_expr(1)}")
        elif self.vars_of("v"):
            self.emit(f"{m}[:, {self.idx()}] += {self.v_expr(1)}")

    def st_tuple(self):
        svars = self.vars_of("s")
        if len(svars) >= 2 and self.r.random() < 0.5:
            a, b = self.r.sample(svars, 2)
            self.emit(f"{a}, {b} = {b}, {a}")
            return
        a, b = self.fresh("s"), self.fresh("s")
        self.emit(f"{a}, {b} = {self.s_expr(1)}, {self.s_expr(1)}")
        self.define(a, "s")
        self.define(b, "s")

    def st_for(self):
        r = self.r
        vvars = self.vars_of("v")
        ints = self.vars_of("n")
        x = r.random()
        self.loop_depth += 1
        saved_idx = list(self.loop_idx)
        nb = r.randint(1, 2)
        if vvars and x < 0.35:
            i = self.fresh("i")
            self.emit(f"for {i} in range(len({self.pick(vvars)})):")
            self.loop_idx.append(i)
            self.block(nb, allow_break=True)
        elif ints and x < 0.55:
            k = self.fresh("k")
            self.emit(f"for {k} in range({self.pick(ints)}):")
            self.block(nb, allow_break=True)
        elif vvars and x < 0.7:
            e = self.fresh("e")
            self.emit(f"for {e} in {self.pick(vvars)}:")
            self.scope = _Scope(self.scope)
            self.define(e, "s")
            self.block(nb, allow_break=True)
            self.scope = self.scope.parent
        elif vvars and x < 0.8:
            i, e = self.fresh("j"), self.fresh("e")
            self.emit(f"for {i}, {e} in enumerate({self.pick(vvars)}):")
            self.loop_idx.append(i)
            self.scope = _Scope(self.scope)
            self.define(e, "s")
            self.block(nb, allow_break=True)
            self.scope = self.scope.parent
        elif len(vvars) >= 1 and x < 0.9:
            a, b = self.fresh("a"), self.fresh("b")
            v1, v2 = self.pick(vvars), self.pick(vvars)
            self.emit(f"for {a}, {b} in zip({v1}, {v2}):")
            self.scope = _Scope(self.scope)
            self.define(a, "s")
            self.define(b, "s")
            self.block(nb, allow_break=True)
            self.scope = self.scope.parent
        else:
            i = self.fresh("i")
            self.emit(f"for {i} in range(1, {self.N}):")
            self.loop_idx.append(i)
            self.loop_idx.append(f"{i} - 1")
            self.block(nb, allow_break=True)
        self.loop_idx = saved_idx
        self.loop_depth -= 1

    def st_while(self):
        c = self.fresh("c")
        ints = self.vars_of("n")
        bound = self.pick(ints) if ints and self.r.random() < 0.5 else str(self.r.randint(1, 4))
        self.emit(f"{c} = 0")
        self.emit(f"while {c} < {bound} and ({self.cond(1)}):")
        self.indent += 1
        self.emit(f"{c} += 1")
        self.indent -= 1
        self.loop_depth += 1
        self.in_while += 1
        self.block(self.r.randint(1, 2))
        self.in_while -= 1
        self.loop_depth -= 1

    def st_if(self):
        r = self.r
        self.emit(f"if {self.cond(1)}:")
        self.block(r.randint(1, 2), allow_break=self.loop_depth > 0)
        if r.random() < 0.3:
            self.emit(f"elif {self.cond(1)}:")
            self.block(1, allow_break=self.loop_depth > 0)
        if r.random() < 0.6:
            self.emit("else:")
            self.block(r.randint(1, 2), allow_break=self.loop_depth > 0)

    def st_break(self):
        self.emit(f"if {self.cond(0)}:")
        self.indent += 1
        self.emit(self.pick(["break", "continue"]))
        self.indent -= 1

    st_continue = st_break

    def st_call(self):
        name, hparams, ret, mut = self.pick(self.helpers)
        args = []
        for i, (_, k) in enumerate(hparams):
            if i == mut:
                w = [v for v in self.vars_of("v") if v in self.writable]
                if not w:
                    return self.st_assign_v()
                args.append(self.pick(w))
            elif k == "s":
                args.append(self.s_expr(1))
            elif k == "v":
                vv = self.vars_of("v")
                args.append(self.pick(vv) if vv and self.r.random() < 0.7 else self.v_expr(1))
            elif k == "n":
                ints = self.vars_of("n")
                args.append(self.pick(ints) if ints else str(self.r.randint(0, 3)))
        call = f"{name}({', '.join(args)})"
        if mut is not None and ret == "s" and self.r.random() < 0.5:
            self.emit(call)
            return
        if ret == "s":
            n, new = self._target_s()
            self.emit(f"{n} = {call}")
            if new:
                self.define(n, "s")
        elif ret == "v":
            n = self.fresh("u")
            self.emit(f"{n} = {call}")
            self.define(n, "v")
        else:   # tuple (s, v)
            a, b = self.fresh("s"), self.fresh("u")
            self.emit(f"{a}, {b} = {call}")
            self.define(a, "s")
            self.define(b, "v")

    # -------------------------------------------------------- functions
    def make_helper(self):
        r = self.r
        name = f"h{len(self.helpers) + 1}"
        kinds = [self.pick(["s", "v", "s", "v", "n"]) for _ in range(r.randint(1, 3))]
        if "v" not in kinds and "s" not in kinds:
            kinds.append("s")
        mut = None
        if "v" in kinds and r.random() < 0.25:
            mut = kinds.index("v")
        hparams = [(f"{'xyzabc'[i]}", k) for i, k in enumerate(kinds)]
        ret = self.pick(["s", "s", "v", "sv"]) if "v" in kinds else "s"
        body = Gen(r.randrange(1 << 30), allow_helpers=False, allow_matrix=False, max_stmts=r.randint(1, 2),
                   avoid=self.avoid)
        body.N = self.N
        body.counter = 100 * (len(self.helpers) + 1)
        for p, k in hparams:
            body.define(p, k)
        if mut is not None:
            body.writable.add(hparams[mut][0])
        for _ in range(body.max_stmts):
            body.stmt()
        if mut is not None:
            body.emit(f"{hparams[mut][0]}[{r.randrange(self.N)}] = {body.s_expr(1)}")
        body.emit("return " + body.ret_expr(ret))
        deco = ""
        x = r.random()
        if x < 0.15:
            deco = "@numba.njit\n"
            self.uses_numba = True
        elif x < 0.25:
            deco = "@fwdjit(cache=False)\n"
            self.uses_fwdjit = True
        text = f"{deco}def {name}({', '.join(p for p, _ in hparams)}):\n" + "\n".join(body.lines) + "\n"
        self.helper_texts.append(text)
        self.helpers.append((name, hparams, ret, mut))

    def ret_expr(self, kind):
        svars = self.vars_of("s")
        vvars = self.vars_of("v")
        parts = self.r.sample(svars, min(len(svars), self.r.randint(1, 3))) if svars else []
        if vvars and (not parts or self.r.random() < 0.5):
            parts.append(f"np.sum({self.pick(vvars)})")
        mvars = self.vars_of("m")
        if mvars and self.r.random() < 0.3:
            parts.append(f"np.sum({self.pick(mvars)})")
        s = " + ".join(parts) if parts else self.s_expr(1)
        if kind == "s":
            return s
        v = self.pick(vvars) if vvars else f"np.full({self.N}, {s})"
        if kind == "v":
            return v if self.r.random() < 0.5 else f"{v} * {self._p(s)}"
        if kind == "sv":
            return f"{s}, {v}"
        if kind == "ss":
            return f"{s}, {self.s_expr(1)}"
        raise ValueError(kind)

    def run(self):
        r = self.r
        kinds = []
        for _ in range(r.randint(1, 4)):
            kinds.append(self.pick(["s", "v", "v", "s"] + (["m"] if self.allow_matrix and r.random() < 0.3 else [])))
        if r.random() < 0.5:
            kinds.append("n")
        if r.random() < 0.1:
            kinds.append("b")
        if "v" not in kinds and r.random() < 0.7:
            kinds.insert(0, "v")
        names = {"s": "x", "v": "v", "m": "M", "n": "n", "b": "flag"}
        seen = {}
        for k in kinds:
            seen[k] = seen.get(k, 0) + 1
            self.params.append((f"{names[k]}{seen[k] - 1 if seen[k] > 1 else ''}", k))
        for p, k in self.params:
            self.define(p, k)
            if k in ("v", "m") and r.random() < 0.15:
                self.writable.add(p)     # the function writes into its argument
        if self.allow_helpers:
            for _ in range(r.choice([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])):
                self.make_helper()
        for _ in range(self.max_stmts):
            self.stmt()
        ret = self.pick(["s"] * 6 + ["v", "sv", "ss"])
        self.emit("return " + self.ret_expr(ret))
        head = HEADER
        if self.uses_numba:
            head += "import numba\n"
        if self.uses_fwdjit:
            head += "from fwdjit import fwdjit\n"
        src = head + "\n\n" + "\n\n".join(self.helper_texts + [
            f"def f({', '.join(p for p, _ in self.params)}):\n" + "\n".join(self.lines) + "\n"])
        args = make_args(self.params, self.N, self.seed, self.dtype)
        return Program(seed=self.seed, source=src, params=list(self.params), args=args, N=self.N, dtype=self.dtype)


def _balanced(s):
    depth = 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def make_args(params, N, seed, dtype="float64"):
    rng = np.random.default_rng(seed + 7919)
    dt = np.dtype(dtype)
    out = []
    for _, k in params:
        if k == "s":
            v = float(rng.uniform(-1.5, 1.5))
            out.append(dt.type(v) if dt != np.float64 else v)
        elif k == "v":
            out.append(rng.uniform(-1.5, 1.5, N).astype(dt))
        elif k == "m":
            out.append((rng.uniform(-1.0, 1.0, (N, N)) / np.sqrt(N)).astype(dt))
        elif k == "n":
            out.append(int(rng.integers(0, 5)))
        elif k == "b":
            out.append(bool(rng.integers(0, 2)))
    return out


#: fraction of programs whose float arguments are float32 (the dtype-preserving twin)
F32_FRACTION = 0.2


def generate(seed, dtype=None, **kw):
    """The program for ``seed`` (deterministic); float32 arguments for F32_FRACTION of the seeds."""
    if dtype is None:
        dtype = "float32" if random.Random(seed * 31 + 17).random() < F32_FRACTION else "float64"
    return Gen(seed, dtype=dtype, **kw).run()


if __name__ == "__main__":   # pragma: no cover
    import sys
    for s in sys.argv[1:] or ["0"]:
        p = generate(int(s))
        print(p.source)
        print("# args:", p.args)


# ------------------------------------------------------- cache-mode variants
_ROTATE = re.compile(r"\b(np|math)\.(sin|cos|tanh)\(")
_CYCLE = ["sin", "cos", "tanh"]


def mutable(source):
    """True when ``source`` calls sin, cos or tanh (so :func:`rotate_functions` changes it)."""
    return bool(_ROTATE.search(source))


def rotate_functions(prog, k):
    """``prog`` with every np/math sin, cos, tanh replaced by the one ``k`` places further.

    The variant has the same structure and argument types as the original
    but computes other values: the cache mode of the fuzzer compiles such
    siblings in separate processes, the case where a symbol clash between
    cache files would swap their machine code.

    >>> p = generate(3)
    >>> q = rotate_functions(p, 1)
    >>> (q.source == p.source) == (not mutable(p.source))
    True
    """
    import dataclasses

    def sub(m):
        return f"{m.group(1)}.{_CYCLE[(_CYCLE.index(m.group(2)) + k) % 3]}("
    return dataclasses.replace(prog, source=_ROTATE.sub(sub, prog.source), meta=dict(prog.meta))
