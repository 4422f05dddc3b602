"""Forward-gradient training across processes on Dask distributed: workers exchange scalars.

``fwdjit.train(loss, params, data, ..., client=dask_client, parallel="data" | "directions")``.

Every worker regenerates the directions ``v`` of a step from ``(seed, step, k, i)``
(:mod:`fwdjit.training.rng`), so a step needs only the scalars ``d = grad f . v``:

* ``parallel="data"``: the global minibatch of step ``t`` is the one ``fwdjit.train``
  uses (rows ``minibatch_indices(N, batch_size, ...)[t]``), split into contiguous
  even parts: worker ``w`` takes rows ``[lo_w, hi_w)`` of it and evaluates all ``K``
  directions on its part, ``d_{w,k}``.  ``d_k = sum_w (n_w / B) d_{w,k}`` (the loss
  must be a mean over rows, as the models' cross-entropy is).
* ``parallel="directions"``: every worker takes the whole global minibatch and
  evaluates its own directions ``k`` in ``[k0_w, k1_w)`` (an even split of the ``K``
  directions of the step); ``d`` is their concatenation.

Then every worker applies the same update ``g = (1/K) sum_k d_k v_k`` (exactly the
update kernels of ``fwdjit.train``) to its own copy of the parameters, which stays
identical everywhere.  A run is determined by (initial parameters, seed, config,
the per-step scalars): ``result.scalar_log`` (steps x K float64) is the checkpoint;
:func:`replay` rebuilds the parameters from it without a JVP.

How a step's scalars travel (one round trip per step): each worker hosts a Dask
*actor* (:class:`StepWorker`) that holds the parameters, the optimizer state, the
data (placed once, never sent again) and two compiled functions generated here:
``jvp_step`` (gather the rows, draw the directions, JVPs) and ``update_step``
(regenerate the directions, apply the update).  The driver (the client process)
calls ``actor.step(t, d_{t-1})`` on every worker at once: the worker applies
step ``t-1``'s update with the combined scalars and returns its scalars of step ``t``.
Actor calls go from the client to the worker directly (not through the scheduler), and
one call carries O(K) floats each way.  ``step`` is idempotent (a worker remembers the
last update it applied), so a failed step can be retried, and a worker that died is
replaced by a new actor that replays the log (``fault handling``).

Bit-for-bit: ``parallel="directions"`` computes the same JVPs on the same batch as
``fwdjit.train`` and the same update, so the parameters equal ``train``'s bit for bit
(with BLAS deterministic for a fixed thread count); ``parallel="data"`` sums per-shard
means, a reassociated sum, so it equals ``train`` to float rounding.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import rng
from ..api import as_fwdjit
from ..errors import FwdjitError
from .estimator import direction_rank
from .chunk import as_param, dtype_name, training_arrays
from .optimizers import make_optimizer
from .result import TrainResult
from .steps import build_jvp, build_update

__all__ = ["train_distributed", "replay", "DistributedResult", "StepWorker", "available", "actor_latency"]



def available():
    """True when ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------- state
class _State:
    """Parameters, optimizer state and direction buffers of one replica (driver-free)."""

    def __init__(self, params, cfg):
        self.cfg = cfg
        self.P = [as_param(p, i) for i, p in enumerate(params)]
        P = self.P
        n_p = len(P)
        opt = make_optimizer(cfg["optimizer_obj"])
        self.opt = opt
        K = cfg["n_directions"]
        rank = cfg["rank"] or 0
        self.lowrank = tuple(bool(rank) and p.ndim == 2 for p in P)
        lr_ = self.lowrank
        dummy = [np.zeros(0, p.dtype) for p in P]
        self.M = [np.zeros_like(p) if opt.n_state >= 1 else dummy[i] for i, p in enumerate(P)]
        self.S = [np.zeros_like(p) if opt.n_state >= 2 else dummy[i] for i, p in enumerate(P)]
        self.V = [dummy[i] if lr_[i] else np.zeros_like(p) for i, p in enumerate(P)]
        fused = K == 1 and not any(lr_)
        self.G = [dummy[i] if fused or (lr_[i] and opt.name == "sgd") else np.zeros_like(p)
                  for i, p in enumerate(P)]
        self.FA = [np.zeros((K, p.shape[0], rank), p.dtype) if lr_[i] else np.zeros((1, 1, 1), p.dtype)
                   for i, p in enumerate(P)]
        self.FB = [np.zeros((K, p.shape[1], rank), p.dtype) if lr_[i] else np.zeros((1, 1, 1), p.dtype)
                   for i, p in enumerate(P)]
        self.cc = np.zeros(K)
        self.dist = rng.distribution_code(cfg["distribution"])
        self.update_fn, self.update_source = build_update(n_p, [dtype_name(p) for p in P], opt, self.dist, K,
                                                           self.lowrank)
        self.applied = -1          # last step whose update was applied

    def update(self, step, coef, vhold=0):
        c = self.cfg
        self.update_fn(*self.P, *self.M, *self.S, *self.V, *self.G, *self.FA, *self.FB,
                       np.asarray(coef, np.float64), self.cc, int(step), c["seed_i"], c["lr"], c["lr_decay"],
                       c["clip_v"], int(vhold))
        self.applied = int(step)

    def warm(self):
        """Compile (or load) update_step on scratch copies, so that no step pays for it."""
        c = self.cfg
        cp = [np.array(x, copy=True) for x in (*self.P, *self.M, *self.S, *self.V, *self.G, *self.FA, *self.FB)]
        self.update_fn(*cp, np.zeros(c["n_directions"]), self.cc.copy(), 0, c["seed_i"], c["lr"], c["lr_decay"],
                       c["clip_v"], 0)

    def replay(self, log, start=0):
        log = np.asarray(log, np.float64).reshape(len(log), -1)
        for t in range(start, log.shape[0]):
            self.update(t, log[t], 0)


def _config(loss_name, params, *, steps, batch_size, lr, lr_decay, optimizer, n_directions, distribution,
            seed, clip, directions, rank, parallel, n_workers):
    opt = optimizer
    rank = direction_rank(directions, rank)
    return {"loss": loss_name, "steps": int(steps), "batch_size": batch_size, "lr": float(lr),
            "lr_decay": float(lr_decay), "optimizer": repr(opt), "optimizer_obj": opt,
            "n_directions": int(n_directions),
            "distribution": "normal" if rng.distribution_code(distribution) == rng.NORMAL else "rademacher",
            "directions": "lowrank" if rank else "dense", "rank": rank or None, "gradient": "forward",
            "seed": int(seed), "seed_i": int(seed) & 0x7FFFFFFFFFFFFFFF, "clip": clip,
            "clip_v": float(clip) if clip else 0.0, "parallel": parallel, "n_workers": n_workers,
            "n_params": int(sum(np.size(p) for p in params))}


# what must agree between a checkpoint and the run that continues it
_REPLAY_KEYS = ("batch_size", "lr", "lr_decay", "optimizer", "n_directions", "distribution", "directions", "rank",
                "seed", "clip")


def replay(params, checkpoint, steps=None):
    """The parameters after replaying ``checkpoint`` (``result.checkpoint()``: seed, config and the
    per-step scalars) from the initial ``params``: directions regenerated, updates applied, no JVP.
    Bit for bit what the workers computed.  ``steps``: replay only the first ``steps`` steps."""
    cfg = dict(checkpoint["config"])
    cfg["optimizer_obj"] = checkpoint["optimizer"]
    cfg["seed_i"] = int(cfg["seed"]) & 0x7FFFFFFFFFFFFFFF
    cfg["clip_v"] = float(cfg["clip"]) if cfg.get("clip") else 0.0
    log = np.asarray(checkpoint["scalar_log"], np.float64)
    if steps is not None:
        log = log[:int(steps)]
    st = _State(params, cfg)
    st.replay(log)
    return tuple(st.P)


# ------------------------------------------------------------- the actor
class StepWorker:
    """A Dask actor: one replica of the parameters and the compiled per-step functions.

    ``part``: ``("data", lo, hi)`` rows of each global minibatch, or ``("directions", k0, k1)``.
    ``log``: scalars of the steps already done (a checkpoint or a replacement worker): replayed.
    """

    def __init__(self, loss, params, data, extra, cfg, part, log=None, cache_dir=None, blas=1):
        if cache_dir and not os.environ.get("FWDJIT_CACHE_DIR"):
            os.environ["FWDJIT_CACHE_DIR"] = cache_dir
        from .blas import compiled_call
        self._blas = compiled_call(blas)     # held for the actor's life: its process runs only these calls
        self._blas.__enter__()
        fj = as_fwdjit(loss)
        self.st = st = _State(params, cfg)
        self.D = [np.ascontiguousarray(d) for d in data]
        self.E = tuple(extra)
        mode, a, b = part
        K = cfg["n_directions"]
        nb = cfg["batch_size"]
        if mode == "data":
            self.lo, self.hi, self.k0, self.k1 = a, b, 0, K
        else:
            self.lo, self.hi, self.k0, self.k1 = 0, nb, a, b
        self.nb = nb
        self.Bf = [np.empty((self.hi - self.lo,) + d.shape[1:], d.dtype) for d in self.D]
        self.perm = np.arange(max(self.D[0].shape[0] if self.D else 1, 1), dtype=np.int64)
        self.state = np.full(1, -1, np.int64)
        self.dout = np.zeros(self.k1 - self.k0)
        self.jvp_fn, _ = build_jvp(fj, len(st.P), len(self.D), len(self.E), st.dist, st.lowrank)
        # vhold: after this worker's JVPs of a step its buffers hold that step's directions when it
        # evaluated all of them (data-parallel); update_step then skips drawing them again
        self.vhold = 1 if mode == "data" else 0
        self.last_jvp = -1
        st.warm()
        start = 0 if log is None else len(log)
        self._jvp(start)                  # compiles jvp_step; changes no parameter
        self.last_jvp = -1
        t0 = time.perf_counter()
        if log is not None and len(log):
            st.replay(log)
        self.replay_seconds = time.perf_counter() - t0
        self.pid = os.getpid()

    def _jvp(self, t):
        st = self.st
        value = self.jvp_fn(*st.P, *st.V, *st.FA, *st.FB, *self.D, *self.Bf, self.perm, self.state, *self.E,
                            int(t), st.cfg["seed_i"], self.nb, self.lo, self.hi, self.k0, self.k1, self.dout)
        self.last_jvp = int(t)
        return float(value), tuple(float(x) for x in self.dout)

    def step(self, t, prev=None):
        """Apply step ``t-1``'s update with the combined scalars ``prev`` (unless done), then return
        this worker's ``(loss, scalars)`` of step ``t``."""
        st = self.st
        if prev is not None and st.applied < t - 1:
            hold = self.vhold if self.last_jvp == t - 1 else 0
            st.update(t - 1, prev, hold)
        return self._jvp(t)

    def update(self, t, coef):
        """Apply step ``t``'s update (the last one of a run)."""
        if self.st.applied < t:
            self.st.update(t, coef, self.vhold if self.last_jvp == t else 0)
        return self.st.applied

    def params(self):
        return tuple(self.st.P)

    def checksum(self):
        import hashlib
        h = hashlib.sha256()
        for p in self.st.P:
            h.update(np.ascontiguousarray(p).tobytes())
        return h.hexdigest()

    def info(self):
        return {"pid": self.pid, "applied": self.st.applied, "replay_seconds": self.replay_seconds}

    def ping(self, x=None):
        return x


# ------------------------------------------------------------- driver
@dataclass
class DistributedResult(TrainResult):
    """``TrainResult`` plus the checkpoint: ``scalar_log`` (steps x K combined scalars, float64)."""
    scalar_log: np.ndarray | None = None
    n_workers: int = 0
    parallel: str = "data"
    round_trip: np.ndarray | None = None      # seconds of each step's exchange, as the driver saw it
    restarts: list = field(default_factory=list)
    optimizer: object = None

    def checkpoint(self):
        """(seed, config, scalars): everything needed, with the initial parameters, to rebuild or continue."""
        return {"seed": self.config["seed"], "config": dict(self.config), "optimizer": self.optimizer,
                "scalar_log": np.array(self.scalar_log[:self.steps_done], copy=True)}


def _split(n, parts):
    edges = [(n * w) // parts for w in range(parts + 1)]
    return [(edges[w], edges[w + 1]) for w in range(parts)]


def train_distributed(loss, params, data=(), *, steps, client, parallel="data", batch_size=64, lr=2e-4,
                      lr_decay=0.0, optimizer="sgd", momentum=0.9, betas=(0.9, 0.999), eps=1e-8, n_directions=1,
                      distribution="normal", gradient="forward", seed=0, extra_args=(), clip=None, progress=True,
                      desc=None, blas_threads_n=1, max_seconds=None, directions="dense", rank=1, workers=None,
                      checkpoint=None, on_step=None, max_restarts=3, **ignored):
    """Forward-gradient training on the workers of the Dask ``client`` (see the module docstring).

    Same arguments as :func:`fwdjit.train`, plus: ``parallel`` (``"data"`` or ``"directions"``),
    ``workers`` (worker addresses to use; default all the client's workers), ``checkpoint``
    (``result.checkpoint()`` of an earlier run with the same initial ``params``: the workers
    replay it and continue at its next step), ``on_step(step, driver)`` (called after each
    step; tests use it to kill a worker), ``max_restarts`` (dead workers replaced, each
    caught up by replaying the scalar log).  ``blas_threads_n``: BLAS threads per worker (1).
    Not supported here: ``gradient="exact"``, ``callback``, ``timing="phases"``.
    """
    _refuse_unsupported(ignored, gradient, parallel)
    fj = as_fwdjit(loss)
    py_loss = fj.py_func
    P0, D, E = training_arrays(fj, params, data, extra_args)
    addrs = list(workers) if workers is not None else sorted(client.scheduler_info(n_workers=-1)["workers"])
    W, K = len(addrs), int(n_directions)
    bs = _check_sizes(D, batch_size, W, K, parallel)
    opt = make_optimizer(optimizer, momentum, betas, eps)
    cfg = _config(fj.name, P0, steps=steps, batch_size=bs, lr=lr, lr_decay=lr_decay, optimizer=opt, n_directions=K,
                  distribution=distribution, seed=seed, clip=clip, directions=directions, rank=rank,
                  parallel=parallel, n_workers=W)
    start, log = _scalar_log(checkpoint, cfg, steps, K)
    parts = _split(bs, W) if parallel == "data" else _split(K, W)
    weights = np.array([(hi - lo) / bs for lo, hi in parts]) if parallel == "data" else None
    cache_dir = os.environ.get("FWDJIT_CACHE_DIR")

    def make_actor(w, upto):
        addr = addrs[w]
        dfut = client.scatter(D, workers=[addr], hash=False)
        fut = client.submit(StepWorker, py_loss, P0, dfut, E, cfg, (parallel,) + tuple(parts[w]),
                            log[:upto] if upto else None, cache_dir, blas_threads_n,
                            actor=True, workers=[addr], allow_other_workers=False, pure=False)
        return fut.result()

    t_c = time.perf_counter()
    actors = [make_actor(w, start) for w in range(W)]
    # compile / load on every worker in parallel, and measure a bare round trip
    [f.result() for f in [a.info() for a in actors]]
    compile_time = time.perf_counter() - t_c
    losses = np.full(int(steps), np.nan)
    rt = np.zeros(int(steps))
    step_times = np.zeros(int(steps))
    restarts = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(steps), initial=start, desc=desc or f"fwdjit.train {fj.name} ({W} workers, {parallel})",
                   unit="step", leave=True, dynamic_ncols=True)
    prev = None
    done = start
    stopped = None
    wall0 = time.perf_counter()
    last_bar = wall0

    def exchange(t, prev):
        futs = [a.step(t, prev) for a in actors]
        return [f.result() for f in futs]

    try:
        t = start
        while t < steps:
            t1 = time.perf_counter()
            try:
                res = exchange(t, prev)
            except Exception as exc:     # a worker died: replace it, replay the log, retry the step
                if len(restarts) >= max_restarts:
                    raise
                restarts.append((t, repr(exc)))
                _replace_dead(client, addrs, W)
                actors = _rebuild(actors, addrs, make_actor, t)
                continue
            t2 = time.perf_counter()
            value, coef = _combine(res, parallel, weights, K)
            log[t] = coef
            losses[t] = value
            rt[t] = t2 - t1
            step_times[t] = time.perf_counter() - t1
            prev = coef
            done = t + 1
            t += 1
            if on_step is not None:
                on_step(t - 1, {"client": client, "actors": actors, "addrs": addrs})
            if bar is not None and time.perf_counter() - last_bar > 0.5:
                bar.update(done - bar.n)
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                last_bar = time.perf_counter()
            if not np.isfinite(value):
                stopped = f"loss is not finite at step {t - 1}"
                break
            if max_seconds is not None and time.perf_counter() - wall0 >= max_seconds and done < steps:
                stopped = f"time limit of {max_seconds} s reached after {done} steps"
                break
        if done > start or checkpoint is not None:
            final = _final_params(client, actors, addrs, make_actor, log, done, restarts, max_restarts)
        else:
            final = tuple(P0)
    finally:
        if bar is not None:
            bar.update(done - bar.n)
            bar.close()
    wall = time.perf_counter() - wall0
    conf = {k: v for k, v in cfg.items() if k not in ("optimizer_obj", "seed_i", "clip_v")}
    conf["steps_start"] = start
    return DistributedResult(
        params=tuple(np.array(p, copy=True) for p in final), losses=losses[:done].copy(),
        step_times=step_times[:done].copy(), phase_times=None,
        lr=float(lr) * np.exp(-float(lr_decay) * np.arange(done)), wall_time=wall, compile_time=compile_time,
        steps_done=done, config=conf, source="", stopped=stopped, scalar_log=log[:done].copy(), n_workers=W,
        parallel=parallel, round_trip=rt[:done].copy(), restarts=restarts, optimizer=opt)


def _refuse_unsupported(ignored, gradient, parallel):
    """train()'s options that distributed training does not take."""
    for name in ("callback", "callback_every"):
        if ignored.get(name) is not None:
            raise FwdjitError(f"train(client=...): {name} is not supported in distributed training")
    if ignored.get("timing", "step") != "step":
        raise FwdjitError("train(client=...): timing='phases' is not supported in distributed training")
    if gradient != "forward":
        raise FwdjitError("train(client=...): only gradient='forward'")
    if parallel not in ("data", "directions"):
        raise FwdjitError(f"parallel must be 'data' or 'directions', given {parallel!r}")


def _check_sizes(D, batch_size, W, K, parallel):
    """The batch size, checked against the rows, the workers and the directions to split."""
    if not D:
        raise FwdjitError("train(client=...): needs data arrays (a loss of the parameters only has nothing "
                          "to distribute)")
    N = D[0].shape[0]
    bs = N if batch_size is None else int(batch_size)
    if not 1 <= bs <= N:
        raise FwdjitError(f"train: batch_size {bs} must be between 1 and the number of rows {N}")
    if W == 0:
        raise FwdjitError("train(client=...): the cluster has no workers")
    if parallel == "data" and W > bs:
        raise FwdjitError(f"data-parallel: {W} workers for a batch of {bs} rows")
    if parallel == "directions" and W > K:
        raise FwdjitError(f"direction-parallel: {W} workers for {K} directions per step (n_directions)")
    return bs


def _scalar_log(checkpoint, cfg, steps, K):
    """``(first step, the (steps, K) log of scalars d)``, filled from ``checkpoint`` when resuming."""
    log = np.zeros((int(steps), K))
    if checkpoint is None:
        return 0, log
    old = checkpoint["config"]
    bad = [k for k in _REPLAY_KEYS if old.get(k) != cfg.get(k)]
    if bad:
        raise FwdjitError(f"checkpoint: config differs in {bad}")
    clog = np.asarray(checkpoint["scalar_log"], np.float64).reshape(-1, K)
    start = clog.shape[0]
    if start > steps:
        raise FwdjitError(f"checkpoint has {start} steps, more than steps={steps}")
    log[:start] = clog
    return start, log


def _combine(res, parallel, weights, K):
    """One step's ``(loss, scalars d)`` from the workers' replies: data-parallel, the batch-weighted
    sums in a fixed order (the same sums on every run); direction-parallel, the directions in order."""
    if parallel == "data":
        d = np.zeros(K)
        value = 0.0
        for w in range(len(res)):
            value += weights[w] * res[w][0]
            d += weights[w] * np.asarray(res[w][1])
        return value, tuple(float(x) for x in d)
    return res[0][0], tuple(x for r in res for x in r[1])


def _final_params(client, actors, addrs, make_actor, log, done, restarts, max_restarts):
    """Apply the last step's update on every worker, check that all hold the same parameters
    (checksums), and fetch them; dead workers are replaced and replayed as during training."""
    for attempt in range(max_restarts + 1):
        try:
            if done > 0:
                [f.result() for f in [a.update(done - 1, tuple(log[done - 1])) for a in actors]]
            sums = [f.result() for f in [a.checksum() for a in actors]]
            final = actors[0].params().result()
            break
        except Exception as exc:
            if attempt == max_restarts:
                raise
            restarts.append((done, repr(exc)))
            _replace_dead(client, addrs, len(addrs))
            actors = _rebuild(actors, addrs, make_actor, done)
    if len(set(sums)) != 1:
        raise FwdjitError(f"distributed training: the workers' parameters differ (checksums {sums})")
    return final


def _replace_dead(client, addrs, W, timeout=120):
    """Wait until the cluster has ``W`` workers again and put the live ones in ``addrs``:
    the survivors keep their places, new workers take the places of the dead ones."""
    t0 = time.time()
    while True:
        live = sorted(client.scheduler_info(n_workers=-1)["workers"])
        new = [a for a in live if a not in addrs]
        dead = [i for i, a in enumerate(addrs) if a not in live]
        if len(new) >= len(dead):
            for i, a in zip(dead, new):
                addrs[i] = a
            if dead:
                return dead
            if len(live) >= W:
                return []
        if time.time() - t0 > timeout:
            raise FwdjitError(f"distributed training: no replacement worker within {timeout} s")
        time.sleep(0.2)


def _rebuild(actors, addrs, make_actor, t):
    """Actors whose worker is gone are created again on their new address, replaying log[:t]."""
    out = []
    for w, a in enumerate(actors):
        try:
            ok = a._address == addrs[w]
            if ok:
                a.ping().result()
        except Exception:
            ok = False
        out.append(a if ok else make_actor(w, t))
    return out


def actor_latency(client, n=200, workers=None):
    """Median and 90th percentile seconds of one round trip ``actor.ping()`` to all workers at once,
    and of one round trip to a single worker (what a step's exchange costs beyond compute)."""
    addrs = list(workers) if workers is not None else sorted(client.scheduler_info(n_workers=-1)["workers"])
    actors = [client.submit(StepWorkerPing, actor=True, workers=[a], pure=False).result() for a in addrs]
    [f.result() for f in [a.ping(0) for a in actors]]
    one, allw = [], []
    for i in range(n):
        t0 = time.perf_counter()
        actors[0].ping((i, 0.5)).result()
        one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        [f.result() for f in [a.ping((i, 0.5)) for a in actors]]
        allw.append(time.perf_counter() - t0)
    return {"one_worker_median_s": float(np.median(one)), "one_worker_p90_s": float(np.percentile(one, 90)),
            "all_workers_median_s": float(np.median(allw)), "all_workers_p90_s": float(np.percentile(allw, 90)),
            "n_workers": len(addrs)}


class StepWorkerPing:
    """An empty actor, for :func:`actor_latency`."""

    def ping(self, x=None):
        return x
