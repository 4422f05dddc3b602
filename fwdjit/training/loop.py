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
    n_p, n_d, n_e = len(P), len(D), len(E)
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
    dtypes = [dtype_name(p) for p in P]
    mask = (True,) * n_p + (False,) * (n_d + n_e)
    rank = direction_rank(directions, rank)
    lowrank = tuple(bool(rank) and p.ndim == 2 for p in P)
    if any(lowrank) and gradient != "forward":
        raise FwdjitError("directions='lowrank' is for gradient='forward'")
    if not any(lowrank):
        lowrank = None

    t_compile0 = time.perf_counter()
    chunk, source = build_chunk(fj, mask, n_p, n_d, n_e, dtypes, opt, dist, n_dir, gradient, timing, lowrank)

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
        with located_compile_errors(fj, (*P, *D, *E)):
            run(0, 0)                  # compile (or load from the cache)
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
