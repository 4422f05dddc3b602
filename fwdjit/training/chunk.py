"""The compiled training loop: one Numba function (the *chunk*) that runs many steps of :func:`fwdjit.train`.

Input: the loss's JVP dispatcher and the settings (number of parameter, data and
extra arrays, their dtypes, optimizer, direction distribution and count,
timing, low-rank parameters).  Output: the source of ``chunk(...)`` and its
update kernels (kept in ``TrainResult.source``), written to the cache folder
and compiled (:func:`build_chunk`).  The source is built from the string
templates below; :func:`minibatch_indices` is the sampling it reproduces, for
tests and references.
"""
from __future__ import annotations

import threading

import numba
import numpy as np

from . import rng
from .._version import __version__
from ..errors import FwdjitError
from ..targets.base import cached
from ..targets.cache import HEADER, load_module
from .clock import now
from .rng import draw_factors  # noqa: F401  (called by the generated loop; re-exported)

__all__ = ["build_chunk", "dtype_name", "draw_factors", "lowrank_sgd", "lowrank_sum", "axpy_flat",
           "minibatch_indices"]

_LOCK = threading.RLock()
_CACHE: dict = {}


_KERNEL_FUSED_NORMAL = '''
def {name}(p, m, s, v, c, lr, h1, h2, h3, h4, h5, key):
    # update with g = c * v, then overwrite v with the normal direction of `key` (one pass)
    wide_vectors()
    n = p.size
    nb = n // (2 * BLOCK)
    for b in range(nb):
        base = 2 * BLOCK * b
        for k in range(BLOCK):
            z0, z1 = normal_pair(key, b * BLOCK + k)
            i = base + k
            g = c * v[i]
{elem12}
            v[i] = z0
            i = base + BLOCK + k
            g = c * v[i]
{elem12}
            v[i] = z1
    j = nb * BLOCK
    i0 = 2 * BLOCK * nb
    while i0 < n:
        z0, z1 = normal_pair(key, j)
        i = i0
        g = c * v[i]
{elem8}
        v[i] = z0
        if i0 + 1 < n:
            i = i0 + 1
            g = c * v[i]
{elem12}
            v[i] = z1
        i0 += 2
        j += 1
'''

_KERNEL_FUSED_RADEMACHER = '''
def {name}(p, m, s, v, c, lr, h1, h2, h3, h4, h5, key):
    # update with g = c * v, then overwrite v with the Rademacher direction of `key` (one pass)
    wide_vectors()
    n = p.size
    nw = (n + 63) // 64
    for w in range(nw):
        h = mix64(np.uint64(key) + np.uint64(w) * GOLDEN)
        kmax = min(64, n - 64 * w)
        for k in range(kmax):
            i = 64 * w + k
            g = c * v[i]
{elem12}
            v[i] = ONE - TWO * np.float32(np.int64((h >> np.uint64(k)) & np.uint64(1)))
'''

_KERNEL_PLAIN = '''
def {name}(p, m, s, v, c, lr, h1, h2, h3, h4, h5, key):
    # update with g = c * v
    wide_vectors()
    for i in range(p.size):
        g = c * v[i]
{elem8}
'''


def _indent(text, n):
    return "\n".join(" " * n + line for line in text.strip().splitlines())


def update_kernels(opt, dist):
    elem = opt.elem
    fused_t = _KERNEL_FUSED_NORMAL if dist == rng.NORMAL else _KERNEL_FUSED_RADEMACHER
    fused = fused_t.format(name="update_resample", elem12=_indent(elem, 12), elem8=_indent(elem, 8))
    plain = _KERNEL_PLAIN.format(name="update", elem8=_indent(elem, 8))
    return fused + plain


def dtype_name(a):
    return {np.dtype(np.float32): "np.float32", np.dtype(np.float64): "np.float64"}.get(np.dtype(a.dtype))


def _chunk_source(n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank=None):
    """Source of the chunk function (see the module docstring).

    ``lowrank[i]``: parameter ``i`` (2-d) gets low-rank directions ``A_k @ B_k.T`` whose
    factors (``fa{i}[k]``, ``fb{i}[k]``, drawn per direction ``k``) go to the JVP as they
    are; with SGD the update is one rank-(K r) pass over the parameter, nothing dense formed.
    """
    lowrank = tuple(lowrank) if lowrank is not None and any(lowrank) else None
    P = [f"p{i}" for i in range(n_p)]
    M = [f"m{i}" for i in range(n_p)]
    S = [f"s{i}" for i in range(n_p)]
    V = [f"v{i}" for i in range(n_p)]
    G = [f"g{i}" for i in range(n_p)]
    D = [f"d{i}" for i in range(n_d)]
    B = [f"b{i}" for i in range(n_d)]
    E = [f"e{i}" for i in range(n_e)]
    FA = [f"fa{i}" for i in range(n_p)]
    FB = [f"fb{i}" for i in range(n_p)]
    sig = P + M + S + V + G + D + B + ["perm"] + E + ["start", "nsteps", "seed", "lr0", "decay", "clip",
                                                      "losses", "times", "phases"]
    if lowrank:
        sig += FA + FB + ["coef"]
    fused = gradient == "forward" and n_dir == 1 and not lowrank
    sgd_lowrank = lowrank is not None and opt.name == "sgd"
    L = [f"def chunk({', '.join(sig)}):"]
    a = L.append
    a("    base = seed_key(seed)")
    if n_d:
        a(f"    nb = {B[0]}.shape[0]")
        a(f"    spe = {D[0]}.shape[0] // nb          # steps per epoch")
        for i in range(n_d):   # rows as flat vectors, for the minibatch copy
            a(f"    {D[i]}f = {D[i]}.reshape(({D[i]}.shape[0], -1))")
            a(f"    {B[i]}f = {B[i]}.reshape((nb, -1))")
    jvp_args = ", ".join(P + B + E + V)
    if lowrank:
        slots = [f"{FA[i]}[k], {FB[i]}[k]" if lowrank[i] else V[i] for i in range(n_p)]
        jvp_args = ", ".join(P + B + E + slots)

    def dir_key(step, k, i):
        return f"derive(derive(base, {step}, {k}), 7, {i})"

    a("    t_prev = now()")
    if fused:
        # the first step's directions (later ones are drawn by the fused update of the step before)
        a("    if nsteps > 0:")
        for i in range(n_p):
            a(f"        fill_direction({V[i]}.reshape(-1), {dir_key('start', 0, i)}, {dist})")
        a("    tfill = now() - t_prev      # counted as the first step's direction phase")
    a("    done = 0")
    a("    for it in range(nsteps):")
    a("        step = start + it")
    if n_d:
        a("        epoch = step // spe")
        a("        pos = step - epoch * spe")
        a("        if pos == 0 or it == 0:")
        a("            permutation(perm, derive(base, epoch, 3))")
        a("        r0 = pos * nb")
        a("        for r in range(nb):")
        a("            j = perm[r0 + r]")
        for i in range(n_d):
            a(f"            for q in range({B[i]}f.shape[1]):")
            a(f"                {B[i]}f[r, q] = {D[i]}f[j, q]")
    if timing == "phases":
        a("        t1 = now()")
    # directions and JVPs
    if gradient == "exact":
        for i in range(n_p):
            a(f"        {V[i]}.reshape(-1)[:] = 0")
        a("        value = 0.0")
        for i in range(n_p):
            a(f"        vf = {V[i]}.reshape(-1)")
            a(f"        gf = {G[i]}.reshape(-1)")
            a("        for q in range(vf.size):")
            a("            vf[q] = 1")
            a(f"            value, d = jf({jvp_args})")
            a("            gf[q] = d")
            a("            vf[q] = 0")
        a("        c = 1.0")
    elif fused:
        if timing == "phases":
            a("        t2 = now()")
        a(f"        value, d = jf({jvp_args})")
        a("        c = d")
    else:
        for i in range(n_p):
            if not (lowrank and lowrank[i]):
                a(f"        {G[i]}.reshape(-1)[:] = 0")
        a("        tdir = 0.0")
        a(f"        for k in range({n_dir}):")
        if timing == "phases":
            a("            ta = now()")
        for i in range(n_p):
            if lowrank and lowrank[i]:
                a(f"            draw_factors({FA[i]}[k], {FB[i]}[k], {dir_key('step', 'k', i)}, {dist})")
            else:
                a(f"            fill_direction({V[i]}.reshape(-1), {dir_key('step', 'k', i)}, {dist})")
        if timing == "phases":
            a("            tdir += now() - ta")
        a(f"            value_k, d = jf({jvp_args})")
        a("            if k == 0:")
        a("                value = value_k")
        a("            if clip > 0.0:")
        a("                d = min(max(d, -clip), clip)")
        if lowrank:
            a("            coef[k] = d")
        for i in range(n_p):
            if not (lowrank and lowrank[i]):
                a(f"            axpy_flat({G[i]}.reshape(-1), d, {V[i]}.reshape(-1))")
        a(f"        c = {1.0 / n_dir!r}")
        if timing == "phases":
            a("        t2 = now()")
    if fused:
        a("        if clip > 0.0:")
        a("            c = min(max(c, -clip), clip)")
    if timing == "phases":
        a("        t3 = now()")
    # update
    a("        t = step + 1")
    a("        lr = lr0 * math.exp(-decay * step)")
    for line in opt.hyper_source():
        a("        " + line)
    for i in range(n_p):
        dt = dtypes[i]
        cast = f"{dt}(c), {dt}(lr), {dt}(h1), {dt}(h2), {dt}(h3), {dt}(h4), {dt}(h5)"
        src = V[i] if fused else G[i]
        if lowrank and lowrank[i] and sgd_lowrank:
            a(f"        lowrank_sgd({P[i]}, {dt}(lr * c), coef, {FA[i]}, {FB[i]})")
            continue
        if lowrank and lowrank[i]:      # other optimizers need the dense estimate
            a(f"        lowrank_sum({G[i]}, coef, {FA[i]}, {FB[i]})")
        if fused:
            a("        if it + 1 < nsteps:")
            a(f"            update_resample({P[i]}.reshape(-1), {M[i]}.reshape(-1), {S[i]}.reshape(-1), "
              f"{src}.reshape(-1), {cast}, {dir_key('step + 1', 0, i)})")
            a("        else:")
            a(f"            update({P[i]}.reshape(-1), {M[i]}.reshape(-1), {S[i]}.reshape(-1), "
              f"{src}.reshape(-1), {cast}, 0)")
        else:
            a(f"        update({P[i]}.reshape(-1), {M[i]}.reshape(-1), {S[i]}.reshape(-1), "
              f"{src}.reshape(-1), {cast}, 0)")
    a("        t4 = now()")
    a("        losses[it] = value")
    a("        times[it] = t4 - t_prev")
    if timing == "phases":
        if fused:
            a("        phases[it, 0] = t1 - t_prev - tfill")
            a("        phases[it, 1] = t2 - t1 + tfill")
            a("        tfill = 0.0")
            a("        phases[it, 2] = t3 - t2")
            a("        phases[it, 3] = t4 - t3")
        elif gradient == "exact":
            a("        phases[it, 0] = t1 - t_prev")
            a("        phases[it, 1] = 0.0")
            a("        phases[it, 2] = t3 - t1")
            a("        phases[it, 3] = t4 - t3")
        else:
            a("        phases[it, 0] = t1 - t_prev")
            a("        phases[it, 1] = tdir")
            a("        phases[it, 2] = t3 - t1 - tdir")
            a("        phases[it, 3] = t4 - t3")
    a("        t_prev = t4")
    a("        done = it + 1")
    a("        if not math.isfinite(value):")
    a("            break")
    a("    return done")
    return "\n".join(L) + "\n"


@numba.njit(cache=True, nogil=True)
def lowrank_sgd(p, scale, coef, a, b):
    """``p -= scale * sum_k coef[k] a[k] @ b[k].T``: one pass over ``p`` (rows stay in cache)."""
    K, m, r = a.shape
    n = b.shape[1]
    for i in range(m):
        row = p[i]
        for k in range(K):
            c = scale * p.dtype.type(coef[k])
            for q in range(r):
                ca = c * a[k, i, q]
                bk = b[k]
                for j in range(n):
                    row[j] -= ca * bk[j, q]


@numba.njit(cache=True, nogil=True)
def lowrank_sum(g, coef, a, b):
    """``g = sum_k coef[k] a[k] @ b[k].T`` (the dense estimate, for optimizers with state)."""
    g[:] = 0
    lowrank_sgd(g, g.dtype.type(-1.0), coef, a, b)     # g -= -1 * sum: the same sums, exactly


@numba.njit(cache=True, nogil=True)
def axpy_flat(g, c, v):
    """g += c * v on flat arrays."""
    for i in range(g.size):
        g[i] += c * v[i]


@numba.njit(cache=True, nogil=True)
def _minibatch_indices(n_rows, batch, start, steps, seed):
    out = np.empty((steps, batch), np.int64)
    base = rng.seed_key(seed)
    spe = n_rows // batch
    perm = np.empty(n_rows, np.int64)
    for it in range(steps):
        step = start + it
        epoch = step // spe
        pos = step - epoch * spe
        if pos == 0 or it == 0:
            rng.permutation(perm, rng.derive(base, epoch, 3))
        for r in range(batch):
            out[it, r] = perm[pos * batch + r]
    return out


def minibatch_indices(n_rows, batch_size, steps, seed=0, start=0):
    """The rows of the minibatches ``train`` uses for ``seed``: an int64 array (steps, batch_size).

    Lets a reference (backprop in JAX or PyTorch) see exactly the same batches.
    """
    return _minibatch_indices(int(n_rows), int(batch_size), int(start), int(steps),
                              int(seed) & 0x7FFFFFFFFFFFFFFF)


RUNTIME = {"seed_key": rng.seed_key, "derive": rng.derive, "fill_direction": rng.fill_direction,
            "permutation": rng.permutation, "normal_pair": rng.normal_pair, "mix64": rng.mix64,
            "GOLDEN": rng.GOLDEN, "BLOCK": rng.BLOCK, "ONE": np.float32(1.0), "TWO": np.float32(2.0),
            "now": now, "axpy_flat": axpy_flat, "wide_vectors": rng.wide_vectors,
            "draw_factors": draw_factors, "lowrank_sgd": lowrank_sgd, "lowrank_sum": lowrank_sum}


def build_chunk(fj, mask, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank=None):
    """``(chunk dispatcher, its source)``: the compiled training loop of ``fj`` for these settings (made once)."""
    lowrank = tuple(lowrank) + (False,) * (len(mask) - len(lowrank)) if lowrank and any(lowrank) else None
    jf = fj.tangent_function(mask, lowrank=lowrank)
    ckey = (fj, mask, n_p, n_d, n_e, tuple(dtypes), opt.key(), dist, n_dir, gradient, timing, lowrank)
    return cached(_CACHE, ckey, lambda: _compile_chunk(fj, jf, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient,
                                                       timing, lowrank), _LOCK)


def _compile_chunk(fj, jf, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank):
    """Write the chunk's module to the cache folder and ``njit`` it (see :func:`build_chunk`)."""
    text = (HEADER.format(version=__version__, qualname=fj.info.qualname,
                          where=f"{fj.info.filename}:{fj.info.tree.lineno}")
            + f"# Training loop: optimizer {opt!r}, gradient={gradient}, "
              f"{n_dir} direction(s) per step, distribution "
              f"{'normal' if dist == rng.NORMAL else 'rademacher'}"
            + (f", low-rank directions for parameters {[i for i, x in enumerate(lowrank) if x]}"
               if lowrank else "") + ".\n"
            + update_kernels(opt, dist) + "\n\n" + _chunk_source(n_p, n_d, n_e, dtypes, opt, dist, n_dir,
                                                            gradient, timing, lowrank and lowrank[:n_p]))
    ns = dict(RUNTIME)
    ns["jf"] = jf
    extra = "train:" + getattr(jf, "_fwdjit_key", fj.deep_key())
    mod, key, _ = load_module(f"{fj.name}_train", text, ns, extra)
    jit = numba.njit(cache=True, nogil=True)
    for kname in ("update", "update_resample"):
        setattr(mod, kname, jit(getattr(mod, kname)))
    chunk = jit(mod.chunk)
    return chunk, text


def as_param(a, i):
    """A parameter array for training: a C-contiguous float32/float64 copy, checked."""
    arr = np.array(a, copy=True, order="C")
    if arr.dtype.kind != "f" or arr.dtype not in (np.float32, np.float64):
        raise FwdjitError(f"train: parameter {i} must be a float32 or float64 array, given dtype {arr.dtype}")
    if arr.ndim == 0:
        raise FwdjitError(f"train: parameter {i} is a scalar; pass it as an array of shape (1,) "
                          "(the loss then reads p[0])")
    return arr


def training_arrays(fj, params, data, extra_args):
    """``(params, data, extra)`` of a training call: parameter copies, contiguous data arrays and
    the extra arguments, checked against the loss ``fj`` (an @fwdjit function)."""
    if isinstance(params, np.ndarray):
        params = (params,)
    P = [as_param(p, i) for i, p in enumerate(params)]
    if isinstance(data, np.ndarray):
        data = (data,)
    D = [np.ascontiguousarray(d) for d in data]
    E = tuple(extra_args)
    if not P:
        raise FwdjitError("train: no parameters")
    if len(P) + len(D) + len(E) != fj._nparams:
        raise FwdjitError(f"train: {fj.name} takes {fj._nparams} arguments ({', '.join(fj.params)}); given "
                          f"{len(P)} parameters + {len(D)} data arrays + {len(E)} extra arguments")
    return P, D, E
