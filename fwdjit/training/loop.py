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

import time

import numpy as np

from . import rng
from ..api import as_fwdjit
from ..errors import FwdjitError
from ..targets.numba_errors import located_compile_errors
from .blas import blas_threads, compiled_call  # noqa: F401  (blas_threads: re-exported)
from .chunk import (as_param, build_chunk, draw_factors, dtype_name, minibatch_indices,  # noqa: F401
                    training_arrays)
from .clock import HAVE_CLOCK, now  # noqa: F401  (now: re-exported)
from .estimator import direction_rank
from .optimizers import SGD, Adam, Momentum, Optimizer, make_optimizer  # noqa: F401  (re-exported)
from .result import PHASES, TrainResult  # noqa: F401  (re-exported)

__all__ = ["train", "TrainResult", "SGD", "Momentum", "Adam", "Optimizer", "blas_threads", "now",
           "PHASES", "make_optimizer", "minibatch_indices"]


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
    P, D, E = training_arrays(fj, params, data, extra_args)
    plan = _plan(P, D, E, steps, batch_size, optimizer, momentum, betas, eps, distribution, gradient,
                 n_directions, timing, directions, rank)
    t_compile0 = time.perf_counter()
    chunk, source = build_chunk(fj, plan.mask, len(P), len(D), len(E), plan.dtypes, plan.opt, plan.dist,
                                plan.n_dir, gradient, timing, plan.lowrank)
    buf = _Buffers(P, D, plan, gradient)
    rec = _Records(plan.steps, timing)
    scalars = (int(seed) & 0x7FFFFFFFFFFFFFFF, float(lr), float(lr_decay), float(clip) if clip else 0.0)

    def run(start, n):
        rec.grow(start + n)
        return chunk(*P, *buf.M, *buf.S, *buf.V, *buf.G, *D, *buf.B, buf.perm, *E, start, n, *scalars,
                     *rec.window(start, n), *buf.low)

    with compiled_call(blas_threads_n) as n_blas:
        with located_compile_errors(fj, (*P, *D, *E)):
            run(0, 0)                  # compile (or load from the cache)
        compile_time = time.perf_counter() - t_compile0
        bar = _progress_bar(progress, plan.steps, desc or f"fwdjit.train {fj.name}")
        try:
            done, wall, evals, stopped = _drive(run, P, rec, plan.steps, chunk_seconds, max_seconds, callback,
                                                callback_every, stop_on_nan, bar)
        finally:
            if bar is not None:
                bar.refresh()
                bar.close()
    if not HAVE_CLOCK and done:
        rec.times[:done] = wall / done
    lr_arr = float(lr) * np.exp(-float(lr_decay) * np.arange(done))
    config = {"loss": fj.name, "steps": plan.steps, "batch_size": plan.bs, "lr": float(lr),
              "lr_decay": float(lr_decay), "optimizer": repr(plan.opt), "n_directions": plan.n_dir,
              "distribution": "normal" if plan.dist == rng.NORMAL else "rademacher",
              "directions": "lowrank" if plan.rank else "dense", "rank": plan.rank or None,
              "gradient": gradient, "seed": int(seed), "clip": clip, "timing": timing,
              "blas_threads": n_blas, "n_params": int(sum(p.size for p in P))}
    return TrainResult(params=tuple(P), losses=rec.losses[:done].copy(), step_times=rec.times[:done].copy(),
                       phase_times=rec.phases[:done].copy() if timing == "phases" else None, lr=lr_arr,
                       wall_time=wall, compile_time=compile_time, steps_done=done, config=config,
                       source=source, evals=evals, stopped=stopped)


class _Plan:
    """The checked options of one training run (what the compiled chunk is specialized on)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _plan(P, D, E, steps, batch_size, optimizer, momentum, betas, eps, distribution, gradient,
          n_directions, timing, directions, rank):
    """Check train()'s options against the arrays; a :class:`_Plan`."""
    steps = int(steps)
    if steps < 0:
        raise FwdjitError("steps must be >= 0")
    N, bs = 0, 0
    if D:
        N = D[0].shape[0]
        for d in D:
            if d.ndim == 0 or d.shape[0] != N:
                raise FwdjitError("train: data arrays must share their first dimension")
        bs = N if batch_size is None else int(batch_size)
        if not 1 <= bs <= N:
            raise FwdjitError(f"train: batch_size {bs} must be between 1 and the number of rows {N}")
    if gradient not in ("forward", "exact"):
        raise FwdjitError("gradient must be 'forward' or 'exact'")
    n_dir = int(n_directions)
    if n_dir < 1:
        raise FwdjitError("n_directions must be >= 1")
    if timing not in ("step", "phases"):
        raise FwdjitError("timing must be 'step' or 'phases'")
    rank = direction_rank(directions, rank)
    lowrank = tuple(bool(rank) and p.ndim == 2 for p in P)
    if any(lowrank) and gradient != "forward":
        raise FwdjitError("directions='lowrank' is for gradient='forward'")
    return _Plan(steps=steps, N=N, bs=bs, opt=make_optimizer(optimizer, momentum, betas, eps),
                 dist=rng.distribution_code(distribution), n_dir=n_dir, rank=rank,
                 lowrank=lowrank if any(lowrank) else None, dtypes=[dtype_name(p) for p in P],
                 mask=(True,) * len(P) + (False,) * (len(D) + len(E)))


class _Buffers:
    """The chunk's work arrays: optimizer state (M, S), directions (V), gradient estimates (G),
    low-rank factors, the minibatch (B) and the row permutation; empty where unused."""

    def __init__(self, P, D, plan, gradient):
        dummy = [np.zeros(0, p.dtype) for p in P]
        lr_i = plan.lowrank or (False,) * len(P)
        opt = plan.opt
        self.M = [np.zeros_like(p) if opt.n_state >= 1 else dummy[i] for i, p in enumerate(P)]
        self.S = [np.zeros_like(p) if opt.n_state >= 2 else dummy[i] for i, p in enumerate(P)]
        self.V = [dummy[i] if lr_i[i] else np.zeros_like(p) for i, p in enumerate(P)]
        fused = gradient == "forward" and plan.n_dir == 1 and plan.lowrank is None
        self.G = [dummy[i] if fused or (lr_i[i] and opt.name == "sgd") else np.zeros_like(p)
                  for i, p in enumerate(P)]
        # low-rank factors, one (A, B) pair per direction of a step
        empty3 = [np.zeros((1, 1, 1), p.dtype) for p in P]
        FA = [np.zeros((plan.n_dir, p.shape[0], plan.rank), p.dtype) if lr_i[i] else empty3[i]
              for i, p in enumerate(P)]
        FB = [np.zeros((plan.n_dir, p.shape[1], plan.rank), p.dtype) if lr_i[i] else empty3[i]
              for i, p in enumerate(P)]
        self.low = (*FA, *FB, np.zeros(plan.n_dir)) if plan.lowrank else ()
        self.B = [np.empty((plan.bs,) + d.shape[1:], d.dtype) for d in D]
        self.perm = np.arange(max(plan.N, 1), dtype=np.int64)


class _Records:
    """Per-step loss, time and phase records, grown as needed (``steps`` may be huge when
    ``max_seconds`` ends the run)."""

    def __init__(self, steps, timing):
        self.steps, self.timing = steps, timing
        cap = min(steps, 4096)
        self.losses = np.full(cap, np.nan)
        self.times = np.zeros(cap)
        self.phases = np.zeros((cap if timing == "phases" else 0, 4))

    def grow(self, need):
        cap = self.losses.shape[0]
        if need <= cap:
            return
        cap = min(self.steps, max(need, 2 * cap))
        self.losses = np.concatenate([self.losses, np.full(cap - self.losses.shape[0], np.nan)])
        self.times = np.concatenate([self.times, np.zeros(cap - self.times.shape[0])])
        if self.timing == "phases":
            self.phases = np.concatenate([self.phases, np.zeros((cap - self.phases.shape[0], 4))])

    def window(self, start, n):
        """The chunk's output views for steps ``start .. start + n``."""
        ph = self.phases[start:start + n] if self.timing == "phases" else self.phases
        return self.losses[start:start + n], self.times[start:start + n], ph


def _progress_bar(progress, steps, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=steps, desc=desc, unit="step", leave=True, dynamic_ncols=True)


def _drive(run, P, rec, steps, chunk_seconds, max_seconds, callback, callback_every, stop_on_nan, bar):
    """Call the compiled chunk until ``steps`` are done: chunks sized to ``chunk_seconds``, cut at
    callback steps and the time limit; returns ``(done, wall seconds, evals, why it stopped)``."""
    evals, done, stopped, wall, per_step = [], 0, None, 0.0, None
    while done < steps:
        n = 1 if per_step is None else max(1, int(chunk_seconds / max(per_step, 1e-9)))
        n = min(n, steps - done)
        if max_seconds is not None and per_step is not None:
            n = max(1, min(n, int((max_seconds - wall) / max(per_step, 1e-9)) + 1))
        if callback is not None and callback_every:
            n = min(n, (done // callback_every + 1) * callback_every - done)
        t0 = time.perf_counter()
        got = run(done, n)
        dt = time.perf_counter() - t0
        wall += dt
        per_step = dt / max(got, 1) if per_step is None or got == 0 else 0.5 * per_step + 0.5 * dt / got
        done += got
        recent = f"{np.mean(rec.losses[max(0, done - got):done]):.4g}"
        if bar is not None:
            bar.update(got)
            bar.set_postfix(loss=recent, steps_s=f"{got / max(dt, 1e-12):.1f}", refresh=False)
        if got < n and stop_on_nan:
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
                                     "loss": recent}, refresh=False)
    if callback is not None and not callback_every:
        r = callback(done, tuple(P))
        if r is not None:
            evals.append((done, wall, r))
    return done, wall, evals, stopped
