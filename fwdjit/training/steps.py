"""The two compiled functions a distributed-training worker runs per step.

Input: the training configuration (parameter count and dtypes, optimizer, direction
distribution, directions per step, low-rank mask).  Output: Numba functions generated
from the same building blocks as ``fwdjit.train``'s compiled loop (the counter-based
direction keys, the optimizer's update kernels, ``f.tangent_function``):

* ``jvp_step``: this worker's part of step ``t``'s minibatch, the step's directions, one
  JVP per direction -> the scalars ``d``;
* ``update_step``: the step's directions again and the update with the combined scalars.

Used by :mod:`fwdjit.training.distributed`.
"""
from __future__ import annotations

import threading

import numba

from .._version import __version__
from ..targets.cache import HEADER, load_module
from .chunk import RUNTIME, update_kernels

__all__ = ["build_jvp", "build_update"]

_LOCK = threading.RLock()
_CACHE: dict = {}


def _names(prefix, n):
    return [f"{prefix}{i}" for i in range(n)]


def _dir_key(step, k, i):
    return f"derive(derive(base, {step}, {k}), 7, {i})"


def _jvp_source(n_p, n_d, n_e, dist, lowrank):
    """``jvp_step``: rows ``[lo, hi)`` of step ``step``'s global minibatch (size ``nb``), directions
    ``k0 .. k1-1``; writes the ``d`` into ``dout`` and returns the loss of direction ``k0``."""
    P, V, D, B, E = _names("p", n_p), _names("v", n_p), _names("d", n_d), _names("b", n_d), _names("e", n_e)
    FA, FB = _names("fa", n_p), _names("fb", n_p)
    sig = P + V + FA + FB + D + B + ["perm", "state"] + E + ["step", "seed", "nb", "lo", "hi", "k0", "k1", "dout"]
    L = [f"def jvp_step({', '.join(sig)}):"]
    a = L.append
    a("    base = seed_key(seed)")
    if n_d:
        a(f"    spe = {D[0]}.shape[0] // nb")
        a("    epoch = step // spe")
        a("    pos = step - epoch * spe")
        a("    if state[0] != epoch:       # the permutation of this epoch (as fwdjit.train draws it)")
        a("        permutation(perm, derive(base, epoch, 3))")
        a("        state[0] = epoch")
        for i in range(n_d):
            a(f"    {D[i]}f = {D[i]}.reshape(({D[i]}.shape[0], -1))")
            a(f"    {B[i]}f = {B[i]}.reshape(({B[i]}.shape[0], -1))")
        a("    r0 = pos * nb")
        a("    for r in range(lo, hi):")
        a("        j = perm[r0 + r]")
        for i in range(n_d):
            a(f"        for q in range({B[i]}f.shape[1]):")
            a(f"            {B[i]}f[r - lo, q] = {D[i]}f[j, q]")
    slots = [f"{FA[i]}[k], {FB[i]}[k]" if lowrank[i] else V[i] for i in range(n_p)]
    a("    value = 0.0")
    a("    for k in range(k0, k1):")
    for i in range(n_p):
        if lowrank[i]:
            a(f"        draw_factors({FA[i]}[k], {FB[i]}[k], {_dir_key('step', 'k', i)}, {dist})")
        else:
            a(f"        fill_direction({V[i]}.reshape(-1), {_dir_key('step', 'k', i)}, {dist})")
    a(f"        value_k, d = jf({', '.join(P + B + E + slots)})")
    a("        if k == k0:")
    a("            value = value_k")
    a("        dout[k - k0] = d")
    a("    return value")
    return "\n".join(L) + "\n"


def _update_source(n_p, dtypes, opt, dist, K, lowrank):
    """``update_step``: step ``step``'s update with the combined scalars ``coef`` (K), exactly as
    ``fwdjit.train``'s chunk applies it.  ``vhold``: the buffers already hold this step's
    directions (dense: only with K == 1; low-rank: all K factor pairs)."""
    P, M, S, V, G = (_names(x, n_p) for x in "pmsvg")
    FA, FB = _names("fa", n_p), _names("fb", n_p)
    sig = P + M + S + V + G + FA + FB + ["coef", "cc", "step", "seed", "lr0", "decay", "clip", "vhold"]
    anylr = any(lowrank)
    fused = K == 1 and not anylr
    L = [f"def update_step({', '.join(sig)}):"]
    a = L.append
    a("    base = seed_key(seed)")
    a("    t = step + 1")
    a("    lr = lr0 * math.exp(-decay * step)")
    for line in opt.hyper_source():
        a("    " + line)
    if fused:
        a("    c = coef[0]")
        a("    if clip > 0.0:")
        a("        c = min(max(c, -clip), clip)")
    else:
        for i in range(n_p):
            if not lowrank[i]:
                a(f"    {G[i]}.reshape(-1)[:] = 0")
        a(f"    for k in range({K}):")
        for i in range(n_p):
            if lowrank[i]:
                a("        if vhold == 0:")
                a(f"            draw_factors({FA[i]}[k], {FB[i]}[k], {_dir_key('step', 'k', i)}, {dist})")
            else:
                a(f"        fill_direction({V[i]}.reshape(-1), {_dir_key('step', 'k', i)}, {dist})")
        a("        d = coef[k]")
        a("        if clip > 0.0:")
        a("            d = min(max(d, -clip), clip)")
        a("        cc[k] = d")
        for i in range(n_p):
            if not lowrank[i]:
                a(f"        axpy_flat({G[i]}.reshape(-1), d, {V[i]}.reshape(-1))")
        a(f"    c = {1.0 / K!r}")
    for i in range(n_p):
        dt = dtypes[i]
        cast = f"{dt}(c), {dt}(lr), {dt}(h1), {dt}(h2), {dt}(h3), {dt}(h4), {dt}(h5)"
        if lowrank[i] and opt.name == "sgd":
            a(f"    lowrank_sgd({P[i]}, {dt}(lr * c), cc, {FA[i]}, {FB[i]})")
            continue
        if lowrank[i]:
            a(f"    lowrank_sum({G[i]}, cc, {FA[i]}, {FB[i]})")
        if fused:
            a("    if vhold == 0:")
            a(f"        fill_direction({V[i]}.reshape(-1), {_dir_key('step', 0, i)}, {dist})")
        src = V[i] if fused else G[i]
        a(f"    update({P[i]}.reshape(-1), {M[i]}.reshape(-1), {S[i]}.reshape(-1), {src}.reshape(-1), {cast}, 0)")
    a("    return 0")
    return "\n".join(L) + "\n"


def build_update(n_p, dtypes, opt, dist, K, lowrank):
    """The compiled update of one step (``update_step``) and its source, built once per configuration."""
    ckey = ("update", n_p, tuple(dtypes), opt.key(), dist, K, lowrank)
    with _LOCK:
        hit = _CACHE.get(ckey)
        if hit is None:
            text = (HEADER.format(version=__version__, qualname="update_step", where="fwdjit.training.distributed")
                    + f"# Distributed training: the update of one step, optimizer {opt!r}, {K} direction(s).\n"
                    + update_kernels(opt, dist) + "\n\n" + _update_source(n_p, dtypes, opt, dist, K, lowrank))
            mod, _, _ = load_module("dist_update", text, dict(RUNTIME), "dist-update")
            jit = numba.njit(cache=True, nogil=True)
            for kname in ("update", "update_resample"):
                setattr(mod, kname, jit(getattr(mod, kname)))
            hit = _CACHE[ckey] = (jit(mod.update_step), text)
        return hit


def build_jvp(fj, n_p, n_d, n_e, dist, lowrank):
    """The compiled JVPs of one step on a part of the minibatch (``jvp_step``) and its source."""
    mask = (True,) * n_p + (False,) * (n_d + n_e)
    lrmask = tuple(lowrank) + (False,) * (n_d + n_e) if any(lowrank) else None
    jf = fj.tangent_function(mask, lowrank=lrmask)
    ckey = ("jvp", fj, n_p, n_d, n_e, dist, lowrank)
    with _LOCK:
        hit = _CACHE.get(ckey)
        if hit is None:
            text = (HEADER.format(version=__version__, qualname=fj.info.qualname,
                                  where=f"{fj.info.filename}:{fj.info.tree.lineno}")
                    + "# Distributed training: the JVPs of one step on a part of the minibatch.\n"
                    + _jvp_source(n_p, n_d, n_e, dist, lowrank))
            ns = dict(RUNTIME)
            ns["jf"] = jf
            extra = "dist-jvp:" + getattr(jf, "_fwdjit_key", fj.deep_key())
            mod, _, _ = load_module(f"{fj.name}_dist_jvp", text, ns, extra)
            hit = _CACHE[ckey] = (numba.njit(cache=True, nogil=True)(mod.jvp_step), text)
        return hit
