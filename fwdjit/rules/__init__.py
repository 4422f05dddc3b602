"""The table of derivative rules, keyed by the real Python object, split by family.

A rule receives a :class:`RuleCall` (the call's arguments as values that
carry a primal expression and, when active, a tangent expression) and returns
the tangent expression of the result.  Most rules are written as templates,
one partial per argument in autograd's style::

    np.sin:  partials("{g} * np.cos({0})")

where ``{g}`` is the incoming tangent of that argument, ``{0}``, ``{1}`` the
primal arguments, ``{y}`` the result and ``{m}`` the module family (``np`` or
``math``).  Arguments whose partial is ``None`` are not differentiable.
Inactive arguments contribute nothing: no code is emitted for them.

Where a rule lives (add a rule to the family's module, and a test for it):

* :mod:`~fwdjit.rules.core`: ``Rule``, ``RuleCall``, templates, the tables;
* :mod:`~fwdjit.rules.elementwise`: ufuncs, ``math`` functions, operators;
* :mod:`~fwdjit.rules.reductions`: ``sum mean prod max min cumsum trace``, norms;
* :mod:`~fwdjit.rules.linalg`: ``@ dot matmul vdot outer inner kron cross``;
* :mod:`~fwdjit.rules.shapes`: shape functions, creation, copies, sorting;
* :mod:`~fwdjit.rules.runtime_rules`: fwdjit's own runtime helpers (second order);
* :mod:`~fwdjit.rules.npimpl`: fwdjit's NumPy implementations (``fj.sum_axis``, ``fj.einsum``...);
* :mod:`~fwdjit.rules.lowrank`: low-rank tangents through products;
* this module: user rules (``defjvp``) and :func:`lookup`.

Conventions at non-differentiable points (documented in README):

* ``abs``/``fabs``: derivative ``sign(x)``, 0 at 0.
* ``maximum(a, b)``/``max``: the first argument wins ties (``a >= b``),
  like ``max`` in Python; ``minimum``/``min``: the first wins when ``a <= b``.
* ``clip(x, lo, hi)``: derivative 1 on the closed interval ``[lo, hi]``.
* ``np.max``/``np.min`` reductions: the tangent of the first maximal element.
* ``where(c, a, b)``: the tangent of the branch taken.
* ``floor, ceil, trunc, rint, round, sign, int()``: zero tangent.

>>> import numpy as np
>>> lookup(np.sin) is RULES[np.sin], is_zero_rule(np.floor)
(True, True)
"""
from __future__ import annotations

from . import elementwise, linalg, lowrank, npimpl, reductions, runtime_rules, shapes  # noqa: F401  (fill the tables)
from .core import (BINOP_RULES, METHOD_RULES, RULES, ZERO, Rule, RuleCall, add_terms, bilinear,  # noqa: F401
                   const_value, linear, partials, zero_rule)
from .shapes import LINEAR_ATTRS, ZERO_ATTRS  # noqa: F401

# ---------------------------------------------------------- user rules -----
USER_RULES: dict = {}


def hashable(obj):
    """Whether ``obj`` can be a key of the tables (arrays and lists cannot)."""
    try:
        hash(obj)
        return True
    except TypeError:
        return False


def is_zero_rule(obj):
    r = RULES.get(obj) if hashable(obj) else None
    return r is not None and r.zero


def lookup(obj):
    """The rule for a callee object, or None."""
    if not hashable(obj):
        return None
    r = USER_RULES.get(obj)
    if r is not None:
        return r
    return RULES.get(obj)
