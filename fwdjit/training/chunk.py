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
from ..compiler.emit import Source
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


class _Layout:
    """The chunk's variable names and what this configuration does (dense/fused/low-rank...)."""

    def __init__(self, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank):
        self.n_p, self.n_d, self.dtypes, self.opt, self.dist, self.n_dir = n_p, n_d, dtypes, opt, dist, n_dir
        self.gradient, self.phases = gradient, timing == "phases"
        self.lowrank = tuple(lowrank) if lowrank is not None and any(lowrank) else None
        self.lr = self.lowrank or (False,) * n_p          # per parameter: low-rank directions
        for kind, n in (("p", n_p), ("m", n_p), ("s", n_p), ("v", n_p), ("g", n_p), ("d", n_d), ("b", n_d),
                        ("e", n_e), ("fa", n_p), ("fb", n_p)):
            setattr(self, kind.upper(), [f"{kind}{i}" for i in range(n)])
        self.fused = gradient == "forward" and n_dir == 1 and not self.lowrank
        slots = [f"{self.FA[i]}[k], {self.FB[i]}[k]" if self.lr[i] else self.V[i] for i in range(n_p)]
        self.jvp_args = ", ".join(self.P + self.B + self.E + slots)

    def signature(self):
        sig = (self.P + self.M + self.S + self.V + self.G + self.D + self.B + ["perm"] + self.E
               + ["start", "nsteps", "seed", "lr0", "decay", "clip", "losses", "times", "phases"])
        return sig + (self.FA + self.FB + ["coef"] if self.lowrank else [])

    @staticmethod
    def dir_key(step, k, i):
        return f"derive(derive(base, {step}, {k}), 7, {i})"


def _chunk_source(n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank=None):
    """Source of the chunk function (see the module docstring).

    ``lowrank[i]``: parameter ``i`` (2-d) gets low-rank directions ``A_k @ B_k.T`` whose
    factors (``fa{i}[k]``, ``fb{i}[k]``, drawn per direction ``k``) go to the JVP as they
    are; with SGD the update is one rank-(K r) pass over the parameter, nothing dense formed.
    """
    c = _Layout(n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank)
    src = Source()
    with src.block(f"def chunk({', '.join(c.signature())}):"):
        _emit_prologue(src, c)
        with src.block("for it in range(nsteps):"):
            src("step = start + it")
            _emit_minibatch(src, c)
            if c.phases:
                src("t1 = now()")
            if gradient == "exact":
                _emit_exact_gradient(src, c)
            elif c.fused:
                if c.phases:
                    src("t2 = now()")
                src(f"value, d = jf({c.jvp_args})", "c = d")
            else:
                _emit_directions(src, c)
            if c.fused:
                with src.block("if clip > 0.0:"):
                    src("c = min(max(c, -clip), clip)")
            if c.phases:
                src("t3 = now()")
            _emit_update(src, c)
            _emit_records(src, c)
        src("return done")
    return src.text()


def _emit_prologue(src, c):
    src("base = seed_key(seed)")
    if c.n_d:
        src(f"nb = {c.B[0]}.shape[0]", f"spe = {c.D[0]}.shape[0] // nb          # steps per epoch")
        for d, b in zip(c.D, c.B):   # rows as flat vectors, for the minibatch copy
            src(f"{d}f = {d}.reshape(({d}.shape[0], -1))", f"{b}f = {b}.reshape((nb, -1))")
    src("t_prev = now()")
    if c.fused:
        # the first step's directions (later ones are drawn by the fused update of the step before)
        with src.block("if nsteps > 0:"):
            for i in range(c.n_p):
                src(f"fill_direction({c.V[i]}.reshape(-1), {c.dir_key('start', 0, i)}, {c.dist})")
        src("tfill = now() - t_prev      # counted as the first step's direction phase")
    src("done = 0")


def _emit_minibatch(src, c):
    """Rows ``perm[pos * nb:(pos + 1) * nb]`` of every data array; a new permutation per epoch."""
    if not c.n_d:
        return
    src("epoch = step // spe", "pos = step - epoch * spe")
    with src.block("if pos == 0 or it == 0:"):
        src("permutation(perm, derive(base, epoch, 3))")
    src("r0 = pos * nb")
    with src.block("for r in range(nb):"):
        src("j = perm[r0 + r]")
        for d, b in zip(c.D, c.B):
            with src.block(f"for q in range({b}f.shape[1]):"):
                src(f"{b}f[r, q] = {d}f[j, q]")


def _emit_exact_gradient(src, c):
    """One JVP per parameter element along the basis tangents (``gradient="exact"``)."""
    for v in c.V:
        src(f"{v}.reshape(-1)[:] = 0")
    src("value = 0.0")
    for v, g in zip(c.V, c.G):
        src(f"vf = {v}.reshape(-1)", f"gf = {g}.reshape(-1)")
        with src.block("for q in range(vf.size):"):
            src("vf[q] = 1", f"value, d = jf({c.jvp_args})", "gf[q] = d", "vf[q] = 0")
    src("c = 1.0")


def _emit_directions(src, c):
    """K directions per step, each one JVP; dense estimates summed into ``g``, low-rank
    coefficients kept in ``coef``."""
    for i in range(c.n_p):
        if not c.lr[i]:
            src(f"{c.G[i]}.reshape(-1)[:] = 0")
    src("tdir = 0.0")
    with src.block(f"for k in range({c.n_dir}):"):
        if c.phases:
            src("ta = now()")
        for i in range(c.n_p):
            key = c.dir_key("step", "k", i)
            if c.lr[i]:
                src(f"draw_factors({c.FA[i]}[k], {c.FB[i]}[k], {key}, {c.dist})")
            else:
                src(f"fill_direction({c.V[i]}.reshape(-1), {key}, {c.dist})")
        if c.phases:
            src("tdir += now() - ta")
        src(f"value_k, d = jf({c.jvp_args})")
        with src.block("if k == 0:"):
            src("value = value_k")
        with src.block("if clip > 0.0:"):
            src("d = min(max(d, -clip), clip)")
        if c.lowrank:
            src("coef[k] = d")
        for i in range(c.n_p):
            if not c.lr[i]:
                src(f"axpy_flat({c.G[i]}.reshape(-1), d, {c.V[i]}.reshape(-1))")
    src(f"c = {1.0 / c.n_dir!r}")
    if c.phases:
        src("t2 = now()")


def _emit_update(src, c):
    """The optimizer step of every parameter (fused with the next step's direction when one
    dense direction per step; one rank-(K r) pass for low-rank SGD)."""
    src("t = step + 1", "lr = lr0 * math.exp(-decay * step)")
    for line in c.opt.hyper_source():
        src(line)
    for i in range(c.n_p):
        dt, p, m, s = c.dtypes[i], c.P[i], c.M[i], c.S[i]
        cast = f"{dt}(c), {dt}(lr), {dt}(h1), {dt}(h2), {dt}(h3), {dt}(h4), {dt}(h5)"
        if c.lr[i] and c.opt.name == "sgd":
            src(f"lowrank_sgd({p}, {dt}(lr * c), coef, {c.FA[i]}, {c.FB[i]})")
            continue
        if c.lr[i]:      # other optimizers need the dense estimate
            src(f"lowrank_sum({c.G[i]}, coef, {c.FA[i]}, {c.FB[i]})")
        est = c.V[i] if c.fused else c.G[i]
        flat = f"{p}.reshape(-1), {m}.reshape(-1), {s}.reshape(-1), {est}.reshape(-1), {cast}"
        if c.fused:
            with src.block("if it + 1 < nsteps:"):
                src(f"update_resample({flat}, {c.dir_key('step + 1', 0, i)})")
            with src.block("else:"):
                src(f"update({flat}, 0)")
        else:
            src(f"update({flat}, 0)")


def _emit_records(src, c):
    """The step's loss, wall time and (``timing="phases"``) phase times; stop on a non-finite loss."""
    src("t4 = now()", "losses[it] = value", "times[it] = t4 - t_prev")
    if c.phases:
        if c.fused:
            src("phases[it, 0] = t1 - t_prev - tfill", "phases[it, 1] = t2 - t1 + tfill", "tfill = 0.0",
                "phases[it, 2] = t3 - t2")
        elif c.gradient == "exact":
            src("phases[it, 0] = t1 - t_prev", "phases[it, 1] = 0.0", "phases[it, 2] = t3 - t1")
        else:
            src("phases[it, 0] = t1 - t_prev", "phases[it, 1] = tdir", "phases[it, 2] = t3 - t1 - tdir")
        src("phases[it, 3] = t4 - t3")
    src("t_prev = t4", "done = it + 1")
    with src.block("if not math.isfinite(value):"):
        src("break")


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
