"""Rules of fwdjit's own runtime helpers (``fj.select``, ``fj.bcast``, ...).

Generated tangent code calls these helpers; their rules let fwdjit
differentiate its own output (forward over forward: ``hvp``, ``hessian``).

>>> RULES[rt.select].nondiff
{0}
"""
from __future__ import annotations

from .. import runtime as rt
from .core import RULES, Rule, add_terms, linear, num, zero_rule


def _select_rt(c):
    cond, a, b = c.args
    ta = a.t if a.active else num(0.0)
    tb = b.t if b.active else num(0.0)
    return c.gen.fj_call("select", [cond.p(), ta, tb])


def _pow_dexp_rt(c):
    base, res = c.args
    terms = []
    if base.active:
        terms.append(c.fill("{g} * {1} / {0}", g=base.t))
    if res.active:
        terms.append(c.fill("{g} * fj.select({1} == 0, 0.0, np.log({0}))", g=res.t))
    return add_terms(terms)


RULES[rt.bcast] = linear(0)
RULES[rt.fresh] = linear(0)


def _prod_jvp_rt(c):
    """``prod_jvp(x, dx)`` is linear in ``dx``; along ``x`` it gives the mixed term ``fj.prod_jvp2``."""
    x, dx = c.args
    terms = [c.gen.fj_call("prod_jvp", [x.p(), dx.t])] if dx.active else []
    if x.active:
        terms.append(c.gen.fj_call("prod_jvp2", [x.p(), dx.p(), x.t]))
    return add_terms(terms)


def _prod_jvp2_rt(c):
    raise c.gen.unsupported("the third derivative of np.prod",
                            "write the product as a loop so fwdjit can differentiate it three times")


def _cumprod_jvp_rt(c):
    raise c.gen.unsupported("the second derivative of np.cumprod",
                            "write the running product as a loop so fwdjit can differentiate it twice")


RULES[rt.zero] = zero_rule("zero")
RULES[rt.lit] = linear(0)          # a cast of its first argument (constant when that is a literal)
RULES[rt.lit_args] = zero_rule("lit_args")
RULES[rt.select] = Rule(_select_rt, nondiff={0})
RULES[rt.pow_dexp] = Rule(_pow_dexp_rt)
RULES[rt.pick_flat] = linear(0)
RULES[rt.argmax] = zero_rule("argmax")
RULES[rt.argmin] = zero_rule("argmin")
RULES[rt.like] = linear(0)
RULES[rt.prod_jvp] = Rule(_prod_jvp_rt)
RULES[rt.prod_jvp2] = Rule(_prod_jvp2_rt)
# fused reductions (fwdjit.compiler.fuse): a leaf read as n elements; the loop's guard
RULES[rt.flat] = linear(0)
RULES[rt.fuse_size] = zero_rule("fuse_size")
RULES[rt.cumprod_jvp] = Rule(_cumprod_jvp_rt)
RULES[rt.int_cast] = zero_rule("int_cast")     # np.int64(x): integer-valued
RULES[rt.like_each] = linear(0)        # a cast of each element
RULES[rt.permuted_like] = linear(0)    # a permutation of dx (piecewise constant in x and y)
RULES[rt.buffer] = linear(0)       # a block's scratch: the tangent's scratch has the tangent's dtype
# the identity on values (a copy of a negative-stride 1-d view, before BLAS): the tangent goes through it too,
# since the tangent code may hand it to BLAS as well (np.linalg.norm's second derivative)
RULES[rt.blas_strides] = linear(0)
