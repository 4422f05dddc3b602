"""Pass 6, float32: the float32-safe twin of a generated function.

NumPy 2 (NEP 50) treats Python numbers as *weak*: ``float32_array * 2.0`` is
float32.  Numba promotes it to float64, and also computes ``np.sin(float32)``
and ``np.sum(float32_array)`` as float64.  This pass rewrites a function so
that, compiled by Numba, it gives the dtypes NumPy gives:

* a Python number next to a value ``v`` becomes ``fj.lit(c, v)``;
* a NumPy ufunc or reduction ``r = np.f(v, ...)`` becomes ``fj.like(np.f(v, ...), v)``
  (a no-op for arrays and float64, a cast for float32 scalars);
* ``math.f(v)`` becomes ``np.float64(math.f(v))``: Python's math returns float64;
* ``a @ b`` and ``np.dot(a, b)`` (also vdot, matmul, inner, outer, kron, cross)
  read their operands through ``fj.promote``: NumPy promotes mixed float32/float64
  arrays, Numba refuses them (a no-op when the dtypes agree).

Non-atomic partners are first computed into a temporary, so nothing is
evaluated twice.  Compiled code picks this twin when any argument is float32;
``tangent_source`` shows the plain one.

>>> import ast, numpy as np
>>> f = ast.parse("def f(x):\\n    return np.maximum(x @ x, 0.0) * 2.0").body[0]
>>> print(ast.unparse(float32_twin(f, {"np": np})))
def f(x):
    _f1 = x @ x
    _f2 = fj.like(np.maximum(_f1, fj.lit(0.0, _f1)), _f1)
    return _f2 * fj.lit(2.0, _f2)
"""
from __future__ import annotations

import ast
import copy

import numpy as np

from .normalize import NameGen

_REDUCTIONS = {np.sum, np.mean, np.dot, np.vdot, np.prod, np.trace, np.max, np.min, np.amax, np.amin,
               np.linalg.norm}
_REDUCTION_METHODS = {"sum", "mean", "dot", "prod", "max", "min", "trace"}
#: functions of two arrays that NumPy promotes to a common dtype and Numba refuses to mix
_MIXED_ARRAY_FUNCS = {np.dot, np.vdot, np.matmul, np.inner, np.outer, np.kron, np.cross}
#: NumPy functions that are not ufuncs but type their result like one (Numba gives float64 for a float32 scalar)
_UFUNC_LIKE = {np.sinc, np.linalg.det, np.angle}
#: functions returning a tuple of scalars typed like their argument (cast with fj.like_each)
_TUPLE_LIKE = {np.linalg.slogdet}
#: ufuncs with an operand that must stay an integer
_INT_OPERAND_FUNCS = {np.ldexp, np.left_shift, np.right_shift}
_VALUE_FUNCS = {np.where: (1, 2), np.clip: (0, 1, 2), min: (0, 1, 2, 3, 4, 5), max: (0, 1, 2, 3, 4, 5)}


def _runtime_value_funcs():
    from .. import runtime
    return {runtime.select: (1, 2)}     # fj.select(cond, dx, 0.0): the 0.0 takes dx's float type


def _is_num(node):
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    return isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_num(node.operand)


def _atom(node):
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Attribute):
        return _atom(node.value)
    if isinstance(node, ast.Subscript):
        return _atom(node.value) and all(isinstance(n, (ast.Name, ast.Constant, ast.Slice, ast.Tuple,
                                                        ast.UnaryOp, ast.BinOp, ast.operator, ast.unaryop,
                                                        ast.expr_context))
                                         for n in ast.walk(node.slice))
    return False


def _fj(fn, args):
    return ast.Call(ast.Attribute(ast.Name("fj", ast.Load()), fn, ast.Load()), args, [])


def _resolve(node, ns):
    if isinstance(node, ast.Name):
        return ns.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, ns)
        return getattr(base, node.attr, None) if base is not None else None
    return None


class _Twin(ast.NodeTransformer):
    def __init__(self, ns, names):
        self.ns = ns
        self.names = names
        self.pre = None          # statements to insert before the current statement, or None (no hoisting)

    def _linspace(self, node):
        """``np.linspace(a, b, n)``: NumPy's dtype is that of the ends (float32 ends, or a float32 end
        and a weak number: float32); Numba's is float64, so the result is cast."""
        ends = [None if _is_num(e) else self._atomize(e) for e in node.args[:2]]
        if all(e is not None for e in ends):
            node.args[:2] = ends
            return _fj("array_like_common", [node] + [copy.deepcopy(e) for e in ends])
        ref = next((e for e in ends if e is not None), None)
        if ref is None:
            return node
        node.args[:2] = [e if e is not None else _fj("lit", [a, copy.deepcopy(ref)])
                         for e, a in zip(ends, node.args[:2])]
        return _fj("array_like_common", [node, copy.deepcopy(ref), copy.deepcopy(ref)])

    def _atomize(self, node):
        if _atom(node) or self.pre is None:
            return node if _atom(node) else None
        name = self.names.fresh("_f")
        self.pre.append(ast.Assign([ast.Name(name, ast.Store())], node))
        return ast.Name(name, ast.Load())

    # tests and conditional branches: rewritten in place, nothing hoisted out of them (pre is None,
    # so only atomic operands are cast; np.vdot(v32, u64) > 0 still gets its promotion)
    def visit_Compare(self, node):
        saved, self.pre = self.pre, None
        self.generic_visit(node)
        self.pre = saved
        return node

    def visit_BoolOp(self, node):
        saved, self.pre = self.pre, None
        self.generic_visit(node)
        self.pre = saved
        return node

    def visit_IfExp(self, node):
        saved, self.pre = self.pre, None
        node.body = self.visit(node.body)
        node.orelse = self.visit(node.orelse)
        self.pre = saved
        return node

    def visit_Subscript(self, node):
        node.value = self.visit(node.value)
        return node           # indices are integers

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.MatMult):
            # float32 @ float64 promotes in NumPy; Numba refuses mixed dtypes
            a, b = self._atomize(node.left), self._atomize(node.right)
            if a is not None and b is not None and ast.dump(a) != ast.dump(b):
                node.left, node.right = _fj("promote", [a, copy.deepcopy(b)]), _fj("promote", [b, copy.deepcopy(a)])
            return node
        # arithmetic of Python scalars stays a (weak) Python scalar: an enclosing operation treats it so
        weak = all((_is_num(o) or self._int_like(o)) for o in (node.left, node.right))
        if _is_num(node.left) and not _is_num(node.right):
            partner = self._atomize(node.right)
            if partner is not None:
                node.right = partner
                node.left = _fj("lit", [node.left, copy.deepcopy(partner)])
        elif _is_num(node.right) and not _is_num(node.left):
            partner = self._atomize(node.left)
            if partner is not None:
                node.left = partner
                node.right = _fj("lit", [node.right, copy.deepcopy(partner)])
        elif isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow)):
            # an int next to a float32 value: NumPy keeps float32 (a Python int is weak), Numba gives float64.
            # fj.lit casts an int to the partner's float type and leaves everything else alone.
            left_weak, right_weak = self._int_like(node.left), self._int_like(node.right)
            if left_weak and right_weak:
                # two names: which one holds a Python scalar is known only to Numba's typing;
                # fj.lit casts only toward float32, so wrapping both is safe.  Each side is the
                # other's reference, so compound sides are hoisted first (copying them would
                # double the code at every level of nesting: exponential in the depth)
                a, b = self._atomize(node.left), self._atomize(node.right)
                if a is not None and b is not None:
                    node.left = _fj("lit", [a, copy.deepcopy(b)])
                    node.right = _fj("lit", [b, copy.deepcopy(a)])
            elif left_weak or right_weak:
                side, other = ("left", "right") if left_weak else ("right", "left")
                operand = getattr(node, side)
                partner = self._atomize(getattr(node, other))
                if partner is not None:
                    setattr(node, other, partner)
                    setattr(node, side, _fj("lit", [operand, copy.deepcopy(partner)]))
        if weak and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow, ast.FloorDiv)):
            node._fj_weak = True
        return node

    def _int_like(self, node):
        """Operands that hold a Python scalar in NumPy (a weak type): names, shapes, sizes, len(), math results."""
        if isinstance(node, ast.Name) or getattr(node, "_fj_weak", False):
            return True
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("size", "ndim"):
            return True
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in ("len", "int"):
                return True
            obj = _resolve(node.func, self.ns)
            return getattr(obj, "__module__", None) == "math" and getattr(obj, "__name__", "") in (
                "floor", "ceil", "trunc")               # Python ints
        return False

    def visit_Call(self, node):
        self.generic_visit(node)
        obj = _resolve(node.func, self.ns)
        if isinstance(node.func, ast.Attribute) and obj is None:      # a method: x.sum()
            if node.func.attr in _REDUCTION_METHODS:
                recv = self._atomize(node.func.value)
                if recv is not None:
                    node.func.value = recv
                    return _fj("like", [node, copy.deepcopy(recv)])
            return node
        if getattr(obj, "__module__", None) == "math" and callable(obj) and \
                getattr(obj, "__name__", "") not in ("floor", "ceil", "trunc", "isnan", "isinf", "isfinite",
                                                     "factorial", "gcd", "comb", "perm", "isqrt"):
            # math functions return Python floats (float64) even for float32 arguments; Numba keeps float32.
            # A Python float is weak: next to a float32 value it becomes float32 (marked for visit_BinOp).
            call = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "float64", ast.Load()), [node], [])
            call._fj_weak = True
            return call
        try:
            is_ufunc = isinstance(obj, np.ufunc) or obj in _UFUNC_LIKE
            rt_pos = _runtime_value_funcs().get(obj)
            if rt_pos is not None:
                value_pos = rt_pos
                for i in value_pos:
                    if i < len(node.args) and not _is_num(node.args[i]):
                        ref = self._atomize(node.args[i])
                        if ref is not None:
                            node.args[i] = ref
                            for j in value_pos:
                                if j < len(node.args) and _is_num(node.args[j]):
                                    node.args[j] = _fj("lit", [node.args[j], copy.deepcopy(ref)])
                        break
                return node
            value_pos = _VALUE_FUNCS.get(obj) if is_ufunc or obj in _VALUE_FUNCS else None
            reduction = obj in _REDUCTIONS
        except TypeError:
            return node
        if obj is np.linspace and len(node.args) >= 2 and "dtype" not in {k.arg for k in node.keywords}:
            return self._linspace(node)
        if obj in _TUPLE_LIKE and len(node.args) == 1 and not _is_num(node.args[0]):
            ref = self._atomize(node.args[0])
            if ref is not None:
                node.args[0] = ref
                return _fj("like_each", [node, copy.deepcopy(ref)])
            return node
        if obj in _MIXED_ARRAY_FUNCS and len(node.args) == 2 and not node.keywords:
            # np.dot(float32, float64) promotes in NumPy; Numba refuses mixed dtypes
            a, b = self._atomize(node.args[0]), self._atomize(node.args[1])
            if a is not None and b is not None and ast.dump(a) != ast.dump(b):
                node.args = [_fj("promote", [a, copy.deepcopy(b)]), _fj("promote", [b, copy.deepcopy(a)])]
                return _fj("like_common", [node, copy.deepcopy(a), copy.deepcopy(b)]) if reduction else node
        if is_ufunc:
            value_pos = tuple(range(len(node.args)))
        if value_pos is None and not reduction:
            return node
        if obj in (min, max):
            value_pos = tuple(range(len(node.args)))
        first = None        # the atom of args[0], for the result's fj.like
        if value_pos:
            var_pos = [i for i in value_pos if i < len(node.args) and not _is_num(node.args[i])]
            ref = None
            for i in value_pos:
                if i < len(node.args) and not _is_num(node.args[i]):
                    ref = self._atomize(node.args[i])
                    if ref is not None:
                        node.args[i] = ref
                    break
            if ref is not None:
                for i in value_pos:
                    if i < len(node.args) and _is_num(node.args[i]):
                        node.args[i] = _fj("lit", [node.args[i], copy.deepcopy(ref)])
                first = self._weak_names(node, var_pos, obj)
        if (is_ufunc or reduction) and node.args and not _is_num(node.args[0]):
            if first is not None:
                return _fj("like", [node, first])
            ref = self._atomize(node.args[0])
            if ref is not None:
                node.args[0] = ref
                return _fj("like", [node, copy.deepcopy(ref)])
        return node


    def _weak_names(self, node, pos, obj):
        """``np.minimum(v, x)`` with ``x`` a Python float: NumPy 2 keeps ``v``'s float32, Numba may
        promote.  Each variable value operand (positions ``pos``: not literal numbers) is typed against
        the next one (``fj.lit`` casts only a scalar, only toward float32), as for ``a op b`` in
        visit_BinOp.  Returns the atom of args[0]."""
        if len(pos) < 2 or obj in _INT_OPERAND_FUNCS:
            return None
        atoms = [self._atomize(node.args[i]) for i in pos]
        if any(a is None for a in atoms):
            return None
        for k, i in enumerate(pos):
            node.args[i] = _fj("lit", [atoms[k], copy.deepcopy(atoms[(k + 1) % len(atoms)])])
        return copy.deepcopy(atoms[0]) if pos[0] == 0 else None


def float32_twin(fdef, namespace, names=None, returns=None):
    """A copy of ``fdef`` with dtype-preserving casts (see module docstring).

    ``returns="jvp"``: the function returns ``(primal, tangent)``; the tangent
    is cast to the primal's dtype.  ``returns="vector"``: it returns
    ``(primal, (tangent_0, ..., tangent_K-1))``.
    """
    fdef = copy.deepcopy(fdef)
    if returns is not None:
        for node in ast.walk(fdef):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
                p, t = node.value.elts
                if returns == "jvp":
                    node.value.elts[1] = _fj("match_dtype", [t, copy.deepcopy(p)])
                elif returns == "vector" and isinstance(t, ast.Tuple):
                    t.elts = [_fj("match_dtype", [tk, copy.deepcopy(p)]) for tk in t.elts]
    taken = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)} | {a.arg for a in ast.walk(fdef)
                                                                        if isinstance(a, ast.arg)}
    names = names or NameGen(taken)
    tw = _Twin(namespace, names)
    tw.params = [a.arg for a in fdef.args.args]
    fdef.body = _block(fdef.body, tw)
    return ast.fix_missing_locations(fdef)


def _block(stmts, tw):
    out = []
    for s in stmts:
        if isinstance(s, (ast.If, ast.While)):
            saved, tw.pre = tw.pre, None
            s.test = tw.visit(s.test)          # in place: a while test is evaluated on every iteration
            s.body = _block(s.body, tw)
            s.orelse = _block(s.orelse, tw)
            tw.pre = saved
            out.append(s)
        elif isinstance(s, ast.For):
            s.body = _block(s.body, tw)
            out.append(s)
        elif isinstance(s, (ast.Assign, ast.AugAssign, ast.Return, ast.Expr)):
            tw.pre = []
            if isinstance(s, ast.Assign):
                if len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Constant) \
                        and isinstance(s.value.value, float) and tw.params:
                    # acc = 0.0: a Python float, which NumPy keeps weak; accumulated with float32 data it
                    # stays float32.  Start it in float32 when an argument is float32 (fj.lit_args).
                    s.value = _fj("lit_args", [s.value, ast.Tuple([ast.Name(p, ast.Load()) for p in tw.params],
                                                                   ast.Load())])
                else:
                    s.value = tw.visit(s.value)
            elif isinstance(s, ast.AugAssign):
                s.value = tw.visit(s.value)
                if (_is_num(s.value) or tw._int_like(s.value)) and isinstance(s.target, ast.Name):
                    s.value = _fj("lit", [s.value, ast.Name(s.target.id, ast.Load())])
            elif s.value is not None:
                s.value = tw.visit(s.value)
            out.extend(tw.pre)
            tw.pre = None
            out.append(s)
        else:
            out.append(s)
    return out
