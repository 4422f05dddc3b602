"""Rules of shape functions, copies, creation and sorting: all linear in their data argument.

``reshape ravel transpose squeeze expand_dims flip diag concatenate stack ...``
apply themselves to the tangent; creation functions (``zeros``, ``arange``)
make constants; ``np.array((a, b))`` and ``concatenate`` take one tangent per
element; ``np.sort`` permutes the tangent like the values.

>>> import numpy as np
>>> RULES[np.zeros].zero, RULES[np.reshape].diff
(True, (0,))
"""
from __future__ import annotations

import ast

import numpy as np

from .core import METHOD_RULES, RULES, Rule, linear, num, zero_rule


def _seq_linear(c):
    """concatenate/stack/array((a, b, ...)): linear in every element of the tuple argument."""
    seq = c.args[0]
    if not isinstance(seq.node, ast.Tuple):
        if seq.active:
            return c.same_call([seq.t] + [a.p() for a in c.args[1:]])
        return None
    elts = []
    for v in seq.items:
        elts.append(v.t if v.active else c.gen.zero_expr(v.p()))
    return c.same_call([ast.Tuple(elts, ast.Load())] + [a.p() for a in c.args[1:]])


def _full(c):
    # np.full(shape, value): linear in value
    if not c.active(1):
        return None
    return c.same_call([c.args[0].p(), c.args[1].t] + [a.p() for a in c.args[2:]])


def _linspace(c):
    a, b = c.args[0], c.args[1]
    rest = [x.p() for x in c.args[2:]]
    ta = a.t if a.active else num(0.0)
    tb = b.t if b.active else num(0.0)
    return c.same_call([ta, tb] + rest)


def _sort(c):
    if len(c.args) > 1 or c.kw:
        raise c.gen.unsupported("np.sort with axis or kind arguments", "sort a 1-D array")
    x = c.args[0]
    order = ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "argsort", ast.Load()), [x.p()], [])
    return ast.Subscript(x.t, order, ast.Load())


def _append(c):
    """``np.append(a, v[, axis])``: the tangents appended the same way (zeros for a constant part)."""
    a, v = c.args[0], c.args[1]
    ta = a.t if a.active else c.zero_of(0)
    tv = v.t if v.active else c.zero_of(1)
    return c.same_call([ta, tv] + [x.p() for x in c.args[2:]])


def _partition(c):
    """``np.partition(x, kth)`` (last axis): the tangent permuted like the values."""
    if len(c.args) != 2 or c.kw:
        raise c.gen.unsupported("np.partition with axis or kind arguments", "partition along the last axis")
    return c.gen.fj_call("permuted_like", [c.args[0].t, c.args[0].p(), c.result()])


for _f in (np.transpose, np.reshape, np.ravel, np.copy, np.squeeze, np.expand_dims, np.diff, np.flip,
           np.fliplr, np.flipud, np.diag, np.asarray, np.ascontiguousarray, np.real, np.atleast_1d,
           np.atleast_2d, np.atleast_3d, np.broadcast_to, np.repeat, np.tile, np.moveaxis, np.swapaxes,
           np.rot90, np.tril, np.triu, np.split, np.array_split, np.hsplit, np.vsplit, np.roll, np.diagonal):
    RULES[_f] = linear(0)
RULES[np.sort] = Rule(_sort)
RULES[np.partition] = Rule(_partition, diff=(0,))
RULES[np.append] = Rule(_append, diff=(0, 1))
RULES[np.concatenate] = Rule(_seq_linear)
RULES[np.stack] = Rule(_seq_linear)
RULES[np.hstack] = Rule(_seq_linear)
RULES[np.vstack] = Rule(_seq_linear)
RULES[np.array] = Rule(_seq_linear)
RULES[np.full] = Rule(_full, nondiff={0})
RULES[np.full_like] = Rule(_full, nondiff={0})
RULES[np.linspace] = Rule(_linspace, nondiff={2})
for _f in (np.zeros, np.ones, np.empty, np.eye, np.identity, np.arange, np.zeros_like, np.ones_like,
           np.empty_like, np.tri, np.argpartition, np.tril_indices, np.triu_indices, np.argsort, np.searchsorted, np.nonzero,
           np.shape, np.size, np.ndim, len, range, print, np.random.rand, np.random.randn,
           np.random.random, np.random.normal, np.random.uniform, np.random.standard_normal,
           np.random.seed, np.random.randint):
    RULES[_f] = zero_rule(getattr(_f, "__name__", str(_f)))

for _m in ("copy", "reshape", "ravel", "flatten", "transpose", "squeeze", "astype", "diagonal", "swapaxes",
           "view", "repeat"):
    METHOD_RULES[_m] = linear(0)
for _m in ("argsort", "nonzero"):
    METHOD_RULES[_m] = zero_rule(_m)

#: attributes of arrays: linear ones carry the tangent, the rest never do
LINEAR_ATTRS = {"T", "real"}
ZERO_ATTRS = {"shape", "size", "ndim", "dtype", "strides", "itemsize", "nbytes", "imag"}
