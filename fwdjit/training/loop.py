"""Training with forward gradients in compiled loops.

``fwdjit.train(loss, params, data, steps=...)`` generates one Numba function
(the *chunk*) that runs many training steps natively: minibatch sampling,
direction sampling, the JVP (``f.tangent_function(mask)`` called from inside)
and the optimizer update.  Python only calls the chunk repeatedly, refreshes
a tqdm progress bar between chunks and collects the per-step loss and wall
time the chunk recorded.

One step (Algorithm 1 of Baydin et al. 2022 for ``optimizer="sgd"``):

1. minibatch: rows ``perm[pos*B:(pos+1)*B]`` of every data array, ``perm`` a
   random permutation of the rows per epoch (no replacement);
2. directions: one ``v`` per parameter array, from ``(seed, step, k, i)``
   (:mod:`fwdjit.training.rng`, counter-based);
3. JVP: ``value, d = jf(params, batch, extra, v)``, ``d = grad f . v``;
4. update with ``g = d v``; ``lr_t = lr * exp(-lr_decay * t)``.

With one direction per step (the paper's setting), step 4 is fused with
step 2 of the next step: the kernel that applies ``p -= lr_t d v`` reads
``v`` once and overwrites it with the next step's direction in the same pass.
Directions depend only on ``(seed, step)`` and the permutation only on
``(seed, epoch)``, so the result does not depend on how the steps are split
into chunks, and the same seed gives the same parameters bit for bit.

The generated source is kept in ``TrainResult.source`` for inspection.
"""
from __future__ import annotations

import ctypes
import sys
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np
from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import rng
from ..api import __version__, as_fwdjit
from .blas import blas_threads, compiled_call  # noqa: F401  (blas_threads: re-exported)
from ..targets.cache import HEADER, load_module
from ..errors import FwdjitError
from .estimator import direction_rank

__all__ = ["train", "TrainResult", "SGD", "Momentum", "Adam", "Optimizer", "blas_threads", "now",
           "PHASES", "make_optimizer", "minibatch_indices"]

PHASES = ("batch", "directions", "jvp", "update")
_LOCK = threading.RLock()
_CACHE: dict = {}


# ------------------------------------------------------------------ clock
def _setup_clock():
    """Make ``clock_gettime`` resolvable by name in JIT-ed code (so cached code can call it)."""
    if sys.platform.startswith("win"):
        return None
    try:
        libc = ctypes.CDLL(None)
        fn = libc.clock_gettime
    except (OSError, AttributeError):
        return None
    llb.add_symbol("clock_gettime", ctypes.cast(fn, ctypes.c_void_p).value)
    return 1 if sys.platform.startswith("linux") else 6        # CLOCK_MONOTONIC (Linux, macOS)


_CLOCK_ID = _setup_clock()
HAVE_CLOCK = _CLOCK_ID is not None


@intrinsic
def _clock_ns(typingctx):
    """Monotonic clock in nanoseconds (0 where clock_gettime is unavailable)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if _CLOCK_ID is None:
            return ir.Constant(i64, 0)
        ts_ty = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_ty)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), ts_ty.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(fn, [ir.Constant(ir.IntType(32), _CLOCK_ID), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)
    return sig, codegen


@numba.njit(cache=True, nogil=True)
def now():
    """Seconds of a monotonic clock, callable from Numba code (as time.monotonic)."""
    return _clock_ns() * 1e-9


# ------------------------------------------------------------- BLAS threads
# blas_threads (the block form) lives in fwdjit.training.blas; kept importable from here.


# ------------------------------------------------------------- optimizers
class Optimizer:
    """An elementwise update rule compiled into the training loop.

    ``elem`` is Python source for one element ``i`` given the gradient
    estimate ``g``; it may use ``p`` (parameter), ``m`` and ``s`` (state
    arrays), ``lr`` and hyper-parameters ``h1..h5`` computed per step by
    ``hyper`` (a source expression tuple in terms of ``t`` = step + 1, the
    float64 ``lr`` and the attributes stored in ``values``).
    """
    name = "optimizer"
    n_state = 0
    elem = ""
    values: dict = {}

    def hyper_source(self):
        """Source lines computing (lr, h1..h5) in float64 from lr and t."""
        return ["h1 = 0.0", "h2 = 0.0", "h3 = 0.0", "h4 = 0.0", "h5 = 0.0"]

    def key(self):
        return (self.name, self.elem, tuple(self.hyper_source()))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """``p -= lr_t * g`` (the paper's forward gradient descent)."""
    name = "sgd"
    n_state = 0
    elem = "p[i] -= lr * g"

    def __init__(self):
        self.values = {}


class Momentum(Optimizer):
    """Heavy-ball momentum (PyTorch's form): ``m = mu m + g; p -= lr_t m`` (or Nesterov)."""
    name = "momentum"
    n_state = 1

    def __init__(self, mu=0.9, nesterov=False):
        self.values = {"mu": float(mu), "nesterov": bool(nesterov)}
        self.elem = ("m[i] = h1 * m[i] + g\n"
                     + ("p[i] -= lr * (g + h1 * m[i])" if nesterov else "p[i] -= lr * m[i]"))

    def hyper_source(self):
        return [f"h1 = {self.values['mu']!r}", "h2 = 0.0", "h3 = 0.0", "h4 = 0.0", "h5 = 0.0"]


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias correction folded into the step size and epsilon."""
    name = "adam"
    n_state = 2
    elem = ("m[i] = h1 * m[i] + h2 * g\n"
            "s[i] = h3 * s[i] + h4 * (g * g)\n"
            "p[i] -= lr * m[i] / (np.sqrt(s[i]) + h5)")

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8):
        self.values = {"b1": float(b1), "b2": float(b2), "eps": float(eps)}

    def hyper_source(self):
        b1, b2, eps = self.values["b1"], self.values["b2"], self.values["eps"]
        return [f"c2 = math.sqrt(1.0 - {b2!r} ** t)",
                f"lr = lr * c2 / (1.0 - {b1!r} ** t)",
                f"h1 = {b1!r}", f"h2 = {1.0 - b1!r}", f"h3 = {b2!r}", f"h4 = {1.0 - b2!r}",
                f"h5 = {eps!r} * c2"]


def make_optimizer(optimizer, momentum=0.9, betas=(0.9, 0.999), eps=1e-8):
    """An Optimizer from a name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    name = str(optimizer).lower()
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    if name == "nesterov":
        return Momentum(momentum, nesterov=True)
    if name == "adam":
        return Adam(betas[0], betas[1], eps)
    raise FwdjitError(f"unknown optimizer {optimizer!r}: use 'sgd', 'momentum', 'nesterov', 'adam' "
                      "or an instance of fwdjit.train.SGD/Momentum/Adam")


# ---------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What ``fwdjit.train`` returns.

    params : the trained parameters (new arrays, same shapes and dtypes).
    losses : loss of the minibatch at each step, before that step's update.
    step_times : wall-clock seconds of each step, measured inside the compiled loop.
    times : cumulative seconds at the end of each step (``np.cumsum(step_times)``).
    phase_times : seconds per step and phase (``PHASES``: batch, directions, jvp,
        update; with one direction per step the next direction is drawn inside
        the update), or None unless ``timing="phases"``.
    lr : learning rate used at each step.
    wall_time : total seconds of the training calls, Python overhead included,
        compilation excluded (``compile_time``).
    """
    params: tuple
    losses: np.ndarray
    step_times: np.ndarray
    phase_times: np.ndarray | None
    lr: np.ndarray
    wall_time: float
    compile_time: float
    steps_done: int
    config: dict
    source: str
    evals: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def times(self):
        return np.cumsum(self.step_times)

    @property
    def median_step_time(self):
        return float(np.median(self.step_times)) if len(self.step_times) else float("nan")

    def phase_share(self, skip=0):
        """Median share of each phase in the step time (dict), steps before ``skip`` ignored."""
        if self.phase_times is None or len(self.phase_times) <= skip:
            return None
        ph = self.phase_times[skip:]
        tot = ph.sum(axis=1)
        tot[tot == 0] = np.nan
        return {name: float(np.nanmedian(ph[:, k] / tot)) for k, name in enumerate(PHASES)}

    def sampling_update_share(self, skip=0):
        """Median share of direction sampling + update in the step time."""
        if self.phase_times is None or len(self.phase_times) <= skip:
            return None
        ph = self.phase_times[skip:]
        tot = ph.sum(axis=1)
        tot[tot == 0] = np.nan
        return float(np.nanmedian((ph[:, 1] + ph[:, 3]) / tot))

    def summary(self):
        n = self.steps_done
        if n == 0:
            return "no steps"
        k = max(1, min(100, n // 10))
        s = (f"{n} steps in {self.wall_time:.2f} s ({n / max(self.wall_time, 1e-12):.1f} steps/s, "
             f"median step {self.median_step_time * 1e3:.3f} ms); loss {np.mean(self.losses[:k]):.4g} -> "
             f"{np.mean(self.losses[n - k:n]):.4g} (means of {k} steps)")
        share = self.sampling_update_share()
        if share is not None:
            s += f"; sampling+update {100 * share:.1f}% of a step"
        return s


# ------------------------------------------------------------- generation
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


def _kernels(opt, dist):
    elem = opt.elem
    fused_t = _KERNEL_FUSED_NORMAL if dist == rng.NORMAL else _KERNEL_FUSED_RADEMACHER
    fused = fused_t.format(name="update_resample", elem12=_indent(elem, 12), elem8=_indent(elem, 8))
    plain = _KERNEL_PLAIN.format(name="update", elem8=_indent(elem, 8))
    return fused + plain


def _dtype_name(a):
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
def draw_factors(a, b, key, dist):
    """A low-rank direction's factors: entries of ``a`` (m x r) and ``b`` (n x r) from ``dist``,
    ``a`` scaled by ``1/sqrt(r)`` (then ``E[vec(a b^T) vec(a b^T)^T] = I``)."""
    af = a.reshape(-1)
    rng.fill_direction(af, rng.derive(key, 0, 0), dist)
    rng.fill_direction(b.reshape(-1), rng.derive(key, 0, 1), dist)
    s = a.dtype.type(1.0 / np.sqrt(a.shape[1]))
    for i in range(af.size):
        af[i] *= s


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
    K, m, r = a.shape
    n = b.shape[1]
    for i in range(m):
        for k in range(K):
            for q in range(r):
                ca = g.dtype.type(coef[k]) * a[k, i, q]
                for j in range(n):
                    g[i, j] += ca * b[k, j, q]


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


_RUNTIME = {"seed_key": rng.seed_key, "derive": rng.derive, "fill_direction": rng.fill_direction,
            "permutation": rng.permutation, "normal_pair": rng.normal_pair, "mix64": rng.mix64,
            "GOLDEN": rng.GOLDEN, "BLOCK": rng.BLOCK, "ONE": np.float32(1.0), "TWO": np.float32(2.0),
            "now": now, "axpy_flat": axpy_flat, "wide_vectors": rng.wide_vectors,
            "draw_factors": draw_factors, "lowrank_sgd": lowrank_sgd, "lowrank_sum": lowrank_sum}


def _build(fj, mask, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank=None):
    lowrank = tuple(lowrank) + (False,) * (len(mask) - len(lowrank)) if lowrank and any(lowrank) else None
    jf = fj.tangent_function(mask, lowrank=lowrank)
    ckey = (fj, mask, n_p, n_d, n_e, tuple(dtypes), opt.key(), dist, n_dir, gradient, timing, lowrank)
    hit = _CACHE.get(ckey)
    if hit is not None:
        return hit
    with _LOCK:
        hit = _CACHE.get(ckey)
        if hit is not None:
            return hit
        text = (HEADER.format(version=__version__, qualname=fj.info.qualname,
                              where=f"{fj.info.filename}:{fj.info.tree.lineno}")
                + f"# Training loop: optimizer {opt!r}, gradient={gradient}, "
                  f"{n_dir} direction(s) per step, distribution "
                  f"{'normal' if dist == rng.NORMAL else 'rademacher'}"
                + (f", low-rank directions for parameters {[i for i, x in enumerate(lowrank) if x]}"
                   if lowrank else "") + ".\n"
                + _kernels(opt, dist) + "\n\n" + _chunk_source(n_p, n_d, n_e, dtypes, opt, dist, n_dir,
                                                                gradient, timing, lowrank and lowrank[:n_p]))
        ns = dict(_RUNTIME)
        ns["jf"] = jf
        extra = "train:" + getattr(jf, "_fwdjit_key", fj.deep_key())
        mod, key, _ = load_module(f"{fj.name}_train", text, ns, extra)
        jit = numba.njit(cache=True, nogil=True)
        for kname in ("update", "update_resample"):
            setattr(mod, kname, jit(getattr(mod, kname)))
        chunk = jit(mod.chunk)
        _CACHE[ckey] = (chunk, text)
        return chunk, text


# ------------------------------------------------------------------- train
def _as_param(a, i):
    arr = np.array(a, copy=True, order="C")
    if arr.dtype.kind != "f" or arr.dtype not in (np.float32, np.float64):
        raise FwdjitError(f"train: parameter {i} must be a float32 or float64 array, given dtype {arr.dtype}")
    if arr.ndim == 0:
        raise FwdjitError(f"train: parameter {i} is a scalar; pass it as an array of shape (1,) "
                          "(the loss then reads p[0])")
    return arr


def train(loss, params, data=(), *, steps, batch_size=64, lr=2e-4, lr_decay=0.0, optimizer="sgd",
          momentum=0.9, betas=(0.9, 0.999), eps=1e-8, n_directions=1, distribution="normal",
          gradient="forward", seed=0, extra_args=(), clip=None, progress=True, desc=None,
          chunk_seconds=0.5, timing="step", blas_threads_n=None, callback=None, callback_every=None,
          stop_on_nan=True, max_seconds=None, directions="dense", rank=1, client=None, parallel="data"):
    """Train ``params`` of ``loss`` with forward gradients in a compiled loop.

    Parameters
    ----------
    loss : function (plain or @fwdjit) called as ``loss(*params, *batch, *extra_args)``
        and returning a scalar; ``batch`` holds ``batch_size`` rows of each array in ``data``.
    params : sequence of float32/float64 arrays (copied; the originals are not changed).
    data : sequence of arrays sharing their first dimension (e.g. ``(X, Y)``), or ``()``
        for a loss of the parameters only.
    steps : number of steps.
    batch_size : rows per minibatch (epochs are random permutations, the last partial
        batch of an epoch is dropped); ``None`` = all rows.
    lr, lr_decay : step size ``lr * exp(-lr_decay * t)`` at step ``t`` (the paper: 2e-4, 1e-4).
    optimizer : ``"sgd"`` (default, the paper), ``"momentum"``, ``"nesterov"``, ``"adam"``
        or an Optimizer instance (``SGD()``, ``Momentum(mu)``, ``Adam(b1, b2, eps)``).
    n_directions : directions averaged per step (K JVPs per step, variance / K).
    distribution : ``"normal"`` or ``"rademacher"``.
    directions, rank : ``"dense"`` (default) or ``"lowrank"``: every 2-d parameter gets
        directions ``A @ B.T / sqrt(rank)`` (``A``: m x rank, ``B``: n x rank) that the JVP
        keeps factored (:mod:`fwdjit.rules.lowrank`); 1-d parameters stay dense.  Unbiased, cheaper
        per step, more variance.  With ``optimizer="sgd"`` the update is one rank-r pass over
        each matrix; nothing dense is drawn or stored.
    gradient : ``"forward"`` (forward gradient) or ``"exact"`` (the exact gradient from
        one JVP per parameter element, basis tangents: for small problems and references).
    seed : int; the same seed gives the same result, bit for bit, whatever the chunking.
    extra_args : more arguments passed after the batch (not differentiated).
    clip : clip the directional derivative ``d`` to ``[-clip, clip]`` (None: no clipping).
    progress : show a tqdm progress bar (step, loss, steps/s), refreshed between chunks.
    chunk_seconds : target duration of one compiled call (the bar's refresh period).
    timing : ``"step"`` (wall time per step) or ``"phases"`` (also per phase:
        batch, directions, jvp, update; five clock reads per step).
    blas_threads_n : BLAS threads during training: an int, 0 (leave the pools as they are) or
        None (``fwdjit.set_blas_threads``, ``FWDJIT_BLAS_THREADS``, else half the available
        CPUs, at most 8; see :mod:`fwdjit.training.blas`); restored afterwards.
    callback : ``callback(step, params) -> dict or None`` called between chunks, every
        ``callback_every`` steps (the chunks are cut there) and at the end; dicts are
        collected in ``result.evals`` as ``(step, seconds, dict)``.
    stop_on_nan : stop when the loss is not finite.
    max_seconds : stop after the chunk during which this many seconds of training have
        passed (``result.steps_done`` says how many steps ran).

    client, parallel : a ``dask.distributed.Client``: train on its workers, exchanging only the
        scalars ``d`` per step (``parallel="data"``: the global batch split across the workers;
        ``"directions"``: the directions split); see :mod:`fwdjit.training.distributed`.

    Returns a :class:`TrainResult`.
    """
    if client is not None:      # distributed training lives in fwdjit.training.distributed
        from .distributed import train_distributed
        return train_distributed(**dict(locals()))
    fj = as_fwdjit(loss)
    if isinstance(params, np.ndarray):
        params = (params,)
    P = [_as_param(p, i) for i, p in enumerate(params)]
    if isinstance(data, np.ndarray):
        data = (data,)
    D = [np.ascontiguousarray(d) for d in data]
    E = tuple(extra_args)
    n_p, n_d, n_e = len(P), len(D), len(E)
    if n_p == 0:
        raise FwdjitError("train: no parameters")
    if n_p + n_d + n_e != fj._nparams:
        raise FwdjitError(f"train: {fj.name} takes {fj._nparams} arguments ({', '.join(fj.params)}); given "
                          f"{n_p} parameters + {n_d} data arrays + {n_e} extra arguments")
    steps = int(steps)
    if steps < 0:
        raise FwdjitError("steps must be >= 0")
    if n_d:
        N = D[0].shape[0]
        for d in D:
            if d.ndim == 0 or d.shape[0] != N:
                raise FwdjitError("train: data arrays must share their first dimension")
        bs = N if batch_size is None else int(batch_size)
        if not 1 <= bs <= N:
            raise FwdjitError(f"train: batch_size {bs} must be between 1 and the number of rows {N}")
    else:
        N, bs = 0, 0
    opt = make_optimizer(optimizer, momentum, betas, eps)
    dist = rng.distribution_code(distribution)
    if gradient not in ("forward", "exact"):
        raise FwdjitError("gradient must be 'forward' or 'exact'")
    n_dir = int(n_directions)
    if n_dir < 1:
        raise FwdjitError("n_directions must be >= 1")
    if timing not in ("step", "phases"):
        raise FwdjitError("timing must be 'step' or 'phases'")
    dtypes = [_dtype_name(p) for p in P]
    mask = (True,) * n_p + (False,) * (n_d + n_e)
    rank = direction_rank(directions, rank)
    lowrank = tuple(bool(rank) and p.ndim == 2 for p in P)
    if any(lowrank) and gradient != "forward":
        raise FwdjitError("directions='lowrank' is for gradient='forward'")
    if not any(lowrank):
        lowrank = None

    t_compile0 = time.perf_counter()
    chunk, source = _build(fj, mask, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank)

    # buffers
    dummy = [np.zeros(0, p.dtype) for p in P]
    M = [np.zeros_like(p) if opt.n_state >= 1 else dummy[i] for i, p in enumerate(P)]
    S = [np.zeros_like(p) if opt.n_state >= 2 else dummy[i] for i, p in enumerate(P)]
    lr_i = lowrank or (False,) * n_p
    V = [dummy[i] if lr_i[i] else np.zeros_like(p) for i, p in enumerate(P)]
    fused = gradient == "forward" and n_dir == 1 and lowrank is None
    G = [dummy[i] if fused or (lr_i[i] and opt.name == "sgd") else np.zeros_like(p) for i, p in enumerate(P)]
    # low-rank factors, one (A, B) pair per direction of a step
    FA = [np.zeros((n_dir, p.shape[0], rank), p.dtype) if lr_i[i] else np.zeros((1, 1, 1), p.dtype)
          for i, p in enumerate(P)]
    FB = [np.zeros((n_dir, p.shape[1], rank), p.dtype) if lr_i[i] else np.zeros((1, 1, 1), p.dtype)
          for i, p in enumerate(P)]
    coef = np.zeros(n_dir)
    low = (*FA, *FB, coef) if lowrank else ()
    B = [np.empty((bs,) + d.shape[1:], d.dtype) for d in D]
    perm = np.arange(max(N, 1), dtype=np.int64)
    # per-step records, grown as needed (steps may be huge when max_seconds ends the run)
    rec = {"losses": np.full(min(steps, 4096), np.nan), "times": np.zeros(min(steps, 4096)),
           "phases": np.zeros((min(steps, 4096) if timing == "phases" else 0, 4))}
    seed_i = int(seed) & 0x7FFFFFFFFFFFFFFF
    clip_v = float(clip) if clip else 0.0

    def grow(need):
        cap = rec["losses"].shape[0]
        if need <= cap:
            return
        cap = min(steps, max(need, 2 * cap))
        for k in ("losses", "times"):
            a = np.full(cap, np.nan) if k == "losses" else np.zeros(cap)
            a[:rec[k].shape[0]] = rec[k]
            rec[k] = a
        if timing == "phases":
            a = np.zeros((cap, 4))
            a[:rec["phases"].shape[0]] = rec["phases"]
            rec["phases"] = a

    def run(start, n):
        grow(start + n)
        ph = rec["phases"]
        return chunk(*P, *M, *S, *V, *G, *D, *B, perm, *E, start, n, seed_i, float(lr), float(lr_decay), clip_v,
                     rec["losses"][start:start + n], rec["times"][start:start + n],
                     ph[start:start + n] if timing == "phases" else ph, *low)

    with compiled_call(blas_threads_n) as n_blas:
        run(0, 0)                      # compile (or load from the cache)
        compile_time = time.perf_counter() - t_compile0
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc=desc or f"fwdjit.train {fj.name}", unit="step", leave=True,
                       dynamic_ncols=True)
        evals = []
        done = 0
        stopped = None
        wall = 0.0
        per_step = None
        try:
            while done < steps:
                if per_step is None:
                    n = 1
                else:
                    n = max(1, int(chunk_seconds / max(per_step, 1e-9)))
                n = min(n, steps - done)
                if max_seconds is not None and per_step is not None:
                    n = max(1, min(n, int((max_seconds - wall) / max(per_step, 1e-9)) + 1))
                if callback is not None and callback_every:
                    nxt = (done // callback_every + 1) * callback_every
                    n = min(n, nxt - done)
                t0 = time.perf_counter()
                got = run(done, n)
                dt = time.perf_counter() - t0
                wall += dt
                per_step = dt / max(got, 1) if per_step is None or got == 0 else 0.5 * per_step + 0.5 * dt / got
                done += got
                if bar is not None:
                    lo = rec["losses"][max(0, done - got):done]
                    bar.update(got)
                    bar.set_postfix(loss=f"{np.mean(lo):.4g}", steps_s=f"{got / max(dt, 1e-12):.1f}", refresh=False)
                if got < n:
                    if stop_on_nan:
                        stopped = f"loss is not finite at step {done - 1}"
                        break
                if max_seconds is not None and wall >= max_seconds and done < steps:
                    stopped = f"time limit of {max_seconds} s reached after {done} steps"
                    break
                if callback is not None and callback_every and (done % callback_every == 0 or done == steps):
                    r = callback(done, tuple(P))
                    if r is not None:
                        evals.append((done, wall, r))
                        if bar is not None:
                            bar.set_postfix({**{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()},
                                             "loss": f"{np.mean(rec['losses'][max(0, done - got):done]):.4g}"},
                                            refresh=False)
            if callback is not None and not callback_every:
                r = callback(done, tuple(P))
                if r is not None:
                    evals.append((done, wall, r))
        finally:
            if bar is not None:
                bar.refresh()
                bar.close()
    losses, step_times, phases = rec["losses"], rec["times"], rec["phases"]
    if not HAVE_CLOCK and done:
        step_times[:done] = wall / done
    steps_arr = np.arange(done)
    lr_arr = float(lr) * np.exp(-float(lr_decay) * steps_arr)
    config = {"loss": fj.name, "steps": steps, "batch_size": bs, "lr": float(lr), "lr_decay": float(lr_decay),
              "optimizer": repr(opt), "n_directions": n_dir, "distribution": "normal" if dist == rng.NORMAL
              else "rademacher", "directions": "lowrank" if rank else "dense", "rank": rank or None,
              "gradient": gradient, "seed": int(seed), "clip": clip, "timing": timing,
              "blas_threads": n_blas, "n_params": int(sum(p.size for p in P))}
    return TrainResult(params=tuple(P), losses=losses[:done].copy(), step_times=step_times[:done].copy(),
                       phase_times=phases[:done].copy() if timing == "phases" else None, lr=lr_arr,
                       wall_time=wall, compile_time=compile_time, steps_done=done, config=config,
                       source=source, evals=evals, stopped=stopped)
