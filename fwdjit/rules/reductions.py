"""Rules of reductions: ``sum mean prod max min cumsum trace``, ``max``/``min`` builtins, norms.

Input: a reduction call and its argument's tangent; output: the tangent of the
result (linear reductions apply themselves to the tangent; ``max``/``min`` pick
the tangent of the first extremal element).

>>> import numpy as np
>>> RULES[np.sum].diff, sorted(k for k in METHOD_RULES if k in ("max", "min"))
((0,), ['max', 'min'])
"""
from __future__ import annotations

import ast
import builtins

import numpy as np

from .core import METHOD_RULES, RULES, Rule, linear, num, zero_rule


def reduce_pick(argfn):
    def fn(c):
        if c.kw or len(c.args) > 1:
            raise c.gen.unsupported("the axis argument of a max/min reduction",
                                    "reduce over the whole array, or loop over the axis")
        x = c.args[0]
        idx = c.gen.fj_call(argfn, [x.p()])      # fj.argmax: also for a scalar x (NumPy gives 0)
        return c.gen.fj_call("pick_flat", [x.t, idx])
    return fn


def _method_pick(argfn):
    def fn(c):
        recv = c.args[0]
        if len(c.args) > 1 or c.kw:
            raise c.gen.unsupported("the axis argument of .max()/.min()", "reduce over the whole array")
        idx = c.gen.fj_call(argfn, [recv.p()])
        return c.gen.fj_call("pick_flat", [recv.t, idx])
    return Rule(fn)


def _builtin_minmax(cond_op):
    def fn(c):
        if len(c.args) == 1:
            return reduce_pick("argmax" if isinstance(cond_op(), ast.GtE) else "argmin")(c)
        # fold left: Python's max returns the first maximal argument
        acc_p, acc_t = c.args[0].p(), c.args[0].t if c.args[0].active else num(0.0)
        for v in c.args[1:]:
            cond = ast.Compare(acc_p, [cond_op()], [v.p()])
            tv = v.t if v.active else num(0.0)
            acc_t = c.gen.fj_call("select", [cond, acc_t, tv])
            acc_p = ast.Call(ast.Name("max" if isinstance(cond_op(), ast.GtE) else "min", ast.Load()),
                             [acc_p, v.p()], [])
        return acc_t
    return Rule(fn)


def _prod(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("the axis argument of prod", "reduce over the whole array, or loop")
    return c.gen.fj_call("prod_jvp", [c.args[0].p(), c.args[0].t])


def _cumprod(c):
    """``np.cumprod(x)`` (flattened): the prefix recurrence ``dy[i] = dy[i-1] x[i] + y[i-1] dx[i]``,
    exact where ``x`` has zeros (no division)."""
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("the axis argument of cumprod", "take the cumprod of each row in a loop")
    return c.gen.fj_call("cumprod_jvp", [c.args[0].p(), c.args[0].t])


def _norm(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("np.linalg.norm with ord and no axis",
                                "pass the axis: np.linalg.norm(x, ord, axis=0) for a vector, "
                                "axis=(0, 1) for a matrix (ord None or 'fro')")
    x = c.args[0]
    return ast.BinOp(ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "vdot", ast.Load()),
                              [ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "ravel", ast.Load()), [x.p()], []),
                               ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "ravel", ast.Load()), [x.t], [])], []),
                     ast.Div(), c.result())


RULES[builtins.max] = _builtin_minmax(ast.GtE)
RULES[builtins.min] = _builtin_minmax(ast.LtE)
for _f in (np.sum, np.mean, np.cumsum, np.trace):
    RULES[_f] = linear(0)
RULES[np.prod] = Rule(_prod)
RULES[np.cumprod] = Rule(_cumprod)
RULES[np.max] = Rule(reduce_pick("argmax"))
RULES[np.amax] = RULES[np.max]
RULES[np.min] = Rule(reduce_pick("argmin"))
RULES[np.amin] = RULES[np.min]
RULES[np.linalg.norm] = Rule(_norm)
for _f in (np.argmax, np.argmin, np.count_nonzero, np.any, np.all):
    RULES[_f] = zero_rule(_f.__name__)

for _m in ("sum", "mean", "cumsum", "trace"):
    METHOD_RULES[_m] = linear(0)
METHOD_RULES["max"] = _method_pick("argmax")
METHOD_RULES["min"] = _method_pick("argmin")
METHOD_RULES["prod"] = Rule(lambda c: c.gen.fj_call("prod_jvp", [c.args[0].p(), c.args[0].t]))
for _m in ("argmax", "argmin", "all", "any"):
    METHOD_RULES[_m] = zero_rule(_m)
