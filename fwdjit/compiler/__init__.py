"""The compiler: a user function's source in, the AST of its primal and tangent functions out.

It imports no target and no training code (``tests/test_layout.py`` checks
this); a target hands it what it needs through :class:`~fwdjit.compiler.callees.Resolver`
(how a call to another user function is compiled) and
:func:`~fwdjit.compiler.callees.user_python_function`.

The passes, one module each::

    resolve    source with absolute lines; every free name bound to its object
    validate   a whitelist of syntax; UnsupportedSyntax with file, line, caret and hint
    normalize  desugaring (augmented assignments, chained comparisons...), lines kept
    fuse       reductions of elementwise array code as one loop each (optional, ``fuse=True``)
    activity   which variables carry tangents (aliases, views, writes in callees)
    tangent    one tangent statement per primal statement, from the rules table (fwdjit.rules)
    primal     the primal function, with calls to user functions rewritten to their compiled twins
    vector     the K-direction (batched-tangent) form of a tangent function
    float32    the float32-safe twin of a generated function
    callees    which call targets are user functions (the protocol the targets share)

The functions below are the one place where their order is written, one per
product: :func:`primal`, :func:`jvp`, :func:`jvp_k` (and :func:`analyze`,
the front half of :func:`jvp`, which the targets also use alone to learn which
parameters a function's in-place writes make active).  ``resolve`` and
``validate`` run once per function when a target wraps it (the parsed
:class:`~fwdjit.compiler.resolve.FunctionInfo` is the input of every product);
``float32`` and rendering (``ast.unparse``) run when a target writes the
result into the cache folder (:mod:`fwdjit.targets.cache`).

>>> import numpy as np
>>> from fwdjit.compiler.resolve import parse_function
>>> from fwdjit.compiler.callees import Resolver
>>> from fwdjit.compiler.render import render
>>> def f(x, y):
...     z = x * y
...     return np.sin(z)
>>> info = parse_function(f)
>>> fdef, gen = jvp(info, (True, False), Resolver(info))
>>> print(render(fdef).split("\\n", 1)[0])
def f_jvp(x, y, dx):
>>> fk, bindings, tparams = jvp_k(info, (True, False), 2, Resolver(info), lambda obj, K: None)
>>> print(render(fk).split("\\n", 1)[0]), tparams
def f_jvp2(x, y, dx_0, dx_1):
(None, ['dx'])
"""
from __future__ import annotations

import ast
import copy

from .activity import Activity
from .fuse import fuse as fuse_pass
from .fuse import fused_info
from .normalize import NameGen, all_names, normalize
from .primal import PrimalGen
from .tangent import TangentGen
from .vector import vectorize

__all__ = ["analyze", "primal", "jvp", "jvp_k"]

# names generated code uses for its own modules: never a user variable's fresh name
RESERVED = frozenset({"np", "math", "fj"})


def analyze(info, mask, resolver):
    """normalize, then activity: ``(names, normalized tree, set of active variables)``.

    ``mask[i]``: parameter ``i`` gets a tangent.  ``names`` is the NameGen the
    tangent pass goes on drawing fresh names from.
    """
    names, tree, active, _, _ = _front(info, mask, resolver)
    return names, tree, active


def _front(info, mask, resolver, fuse=False, keep=()):
    """normalize, fuse (when asked), activity: also the info and resolver later passes use.

    Fused code calls ``fj`` helpers: the passes after fuse resolve them through
    an info (and resolver) whose namespace holds ``fj``.
    """
    names = NameGen(all_names(info.tree) | RESERVED)
    tree = normalize(info.tree, names, info)
    if fuse:
        tree = fuse_pass(tree, names, info, keep=keep)
        info = fused_info(info)
        resolver = copy.copy(resolver)
        resolver.info = info
    active = Activity(info, tree, {p for p, m in zip(info.params, mask) if m}, resolver).run()
    return names, tree, active, info, resolver


def primal(unit, generator=PrimalGen, fuse=False):
    """primal: ``(FunctionDef, bindings)`` of the function a target compiles as ``unit``'s primal.

    ``unit`` has ``info`` and ``resolver`` (:class:`~fwdjit.compiler.primal.PrimalGen`);
    ``generator`` is that pass or a target's subclass of it; ``fuse``: write
    reductions of elementwise code as loops (:mod:`fwdjit.compiler.fuse`).
    """
    gen = generator(unit, fuse=fuse)
    fdef = gen.run()
    return fdef, gen.bindings


def jvp(info, mask, resolver, *, generator=TangentGen, fuse=False, **options):
    """normalize, (fuse), activity, tangent: ``(FunctionDef of <name>_jvp, the tangent generator)``.

    The generator holds what targets read after the pass: ``bindings`` (the
    objects generated code names), ``effective`` (which parameters turned out
    active).  ``options`` go to the tangent pass (``check_inputs``,
    ``lowrank``, ``stack_products``); ``generator`` is
    :class:`~fwdjit.compiler.tangent.TangentGen` or a target's subclass of it;
    ``fuse``: reductions of elementwise code become loops before activity and
    tangent (never over a low-rank argument).
    """
    mask = tuple(mask)
    lowrank = options.get("lowrank")
    keep = {p for p, lr in zip(info.params, lowrank or ()) if lr}
    names, tree, active, info, resolver = _front(info, mask, resolver, fuse=fuse, keep=keep)
    gen = generator(info, tree, mask, resolver, active, names=names, **options)
    return gen.run(), gen


def jvp_k(info, mask, K, resolver, callee_k, fuse=False):
    """jvp, then vector: ``(FunctionDef of <name>_jvp<K>, bindings, tangent parameters)``.

    ``callee_k(obj, K)``: for an object the JVP's code calls (a binding), its
    K-direction twin to call instead, or ``None`` when it is no user JVP.
    """
    fdef, gen = jvp(info, mask, resolver, fuse=fuse)
    tnames = set(gen.tangent_names())
    tparams = [gen.tname(p) for p, m in zip(info.params, mask) if m]
    bindings = dict(gen.bindings)
    callees = {}
    for name, obj in gen.bindings.items():
        twin = callee_k(obj, K)
        if twin is not None:
            kname = gen.fresh(f"{name}k{K}_")
            bindings[kname] = twin
            callees[name] = kname
    names = set(a.arg for a in ast.walk(fdef) if isinstance(a, ast.arg)) | \
        {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)}

    def kname(name, k):
        cand = f"{name}_{k}"
        return cand if cand not in names else f"{name}__{k}"
    fk = vectorize(fdef, tnames, K, tparams, callees, kname)
    fk.name = f"{info.name}_jvp{K}"
    return fk, bindings, tparams
