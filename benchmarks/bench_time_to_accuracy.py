"""Time to accuracy on the shipped 5k MNIST subset: forward gradients (fwdjit) vs JAX backprop.

    python -m benchmarks.bench_time_to_accuracy            # full: ~15 min on 2 cores (cold compile included)
    python -m benchmarks.bench_time_to_accuracy --quick    # smoke run, ~2-3 min (warm cache)

Issue 13, "Time to accuracy, honestly".  MLP 784-1024-1024-10 (ReLU,
float32), batch 64, plain SGD with the paper's schedule ``η_t = η₀ e^{-kt}``
(k = 1e-4), same initial parameters and the same minibatch sequence for every
method (``fwdjit.train.minibatch_indices``), 4,000 training / 1,000 test
images (``fwdjit.data.split_subset``, as the demo).

Methods: forward gradients with dense directions (normal, Rademacher) and
low-rank directions (rank 1 and 4 with normal factors), each with K = 1 and K = 4,
and rank-1 Rademacher factors with K = 1
directions per step; and JAX backprop (``jax.jit`` of ``lax.scan`` over a
chunk of steps).

Procedure:
1. Grid: every method is trained for ``--grid-seconds`` of training time at
   each η₀ of its grid (≥ 5 values; forward gradients and backprop have
   different ranges).  Winner: highest test accuracy at the end (diverged
   runs lose), ties broken by the lower mean training loss of the last steps.
   The grids and the winners are printed; a winner on the edge of its grid is
   flagged.
2. Race: every method at its winning η₀ for ``--seconds`` of training time
   (a winner that diverges in the longer race is raced again at the next
   smaller η₀ of its grid; both are reported);
   test accuracy evaluated about every ``--eval-every`` seconds of training.

Timing: "training time" is the time of the compiled training calls only
(``TrainResult`` / the JAX chunks, with ``block_until_ready``); the test
evaluations run between chunks (``train``'s ``callback``) and are not counted:
``train`` adds only the chunks' durations to its clock, and the JAX loop stops
its clock before evaluating.  Times to 80% / 90% test accuracy are the
training time at the first evaluation at or above the target (resolution: the
evaluation interval), reported without and with compilation (``train``'s
``compile_time``; JAX's ahead-of-time ``lower().compile()`` time).  Variants
that share a JVP (dense normal/Rademacher, K = 1/4; low-rank of one rank)
compile it once in the process; each is charged the larger of its own
compile time and its family's first (cold JVP + loop), what it would cost
alone.  By
default the worker uses a fresh fwdjit/Numba cache, so compilation is the
cold first-run cost (``--warm-cache`` uses the usual cache instead).

Everything runs in one worker pinned to one CPU, one BLAS/XLA thread, with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment (the CPU's
own BLAS kernel).  Writes benchmarks/results/time_to_accuracy.json and
time_to_accuracy.png (accuracy vs training time, all methods on one figure;
needs matplotlib, else skipped with a message).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

from benchmarks.bench_env import (describe_sides, fmt_t, fwdjit_side, jax_side, lowrank_support, md_table,
                                  pin_one_cpu, run_worker)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECAY, BATCH, SEED = 1e-4, 64, 0
TARGETS = (0.80, 0.90)
GRID_FG_K1 = [5e-5, 1e-4, 2e-4, 4e-4, 8e-4]
GRID_FG_K4 = [1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3]
GRID_BP = [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
QUICK_FG = [2e-4, 6e-4]
QUICK_BP = [3e-2, 1e-1]


def methods(lowrank_ok):
    """(name, kind, train kwargs, K)."""
    out = []
    for K in (1, 4):
        out.append((f"FG dense normal K={K}", "fg", {"distribution": "normal"}, K))
        out.append((f"FG dense Rademacher K={K}", "fg", {"distribution": "rademacher"}, K))
        if lowrank_ok:
            for r in (1, 4):
                out.append((f"FG low-rank r={r} K={K}", "fg", {"directions": "lowrank", "rank": r}, K))
            # rank-1 Rademacher factors: the second moments of a dense Rademacher direction
            # (tests/test_forward_grad_lowrank.py) at the cost of a rank-1 one
            if K == 1:
                out.append((f"FG low-rank Rademacher r=1 K={K}", "fg",
                            {"directions": "lowrank", "rank": 1, "distribution": "rademacher"}, K))
    out.append(("JAX backprop", "bp", {}, 1))
    return out


# ------------------------------------------------------------------ worker
class Problem:
    def __init__(self):
        import numpy as np

        from fwdjit.experiments import data, models
        images, labels = data.load_mnist_subset()
        tr_i, tr_l, te_i, te_l = data.split_subset(images, labels, test_per_class=100, seed=0)
        self.X, self.Y = data.prepare(tr_i, tr_l)
        self.Xt, _ = data.prepare(te_i, te_l)
        self.lt = np.asarray(te_l)
        self.p0 = [np.ascontiguousarray(a) for a in models.init("mlp", SEED)]

    def evaluate(self, params):
        """(test accuracy, test cross-entropy) with NumPy."""
        import numpy as np
        W1, b1, W2, b2, W3, b3 = (np.asarray(a, np.float32) for a in params)
        h = np.maximum(self.Xt @ W1 + b1, 0)
        h = np.maximum(h @ W2 + b2, 0)
        z = (h @ W3 + b3).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-np.mean(logp[np.arange(len(self.lt)), self.lt]))
        return float(np.mean(np.argmax(z, axis=1) == self.lt)), loss

    def accuracy(self, params):
        return self.evaluate(params)[0]


def run_fg(P, kw, K, lr, seconds, eval_every):
    """One fwdjit.train run; evaluations between chunks (not in the training clock)."""
    import numpy as np

    from fwdjit.experiments import models
    from fwdjit.training.loop import train
    probe = train(models.mlp_loss, P.p0, (P.X, P.Y), steps=3, batch_size=BATCH, lr=lr, lr_decay=DECAY,
                  n_directions=K, seed=SEED, progress=False, **kw)      # compiles (first time) and times a step
    per_step = max(float(np.median(probe.step_times)), 1e-5)
    every = max(1, int(round(eval_every / per_step)))
    acc0 = P.accuracy(P.p0)

    def cb(step, params):
        return {"acc": P.accuracy(params)}
    r = train(models.mlp_loss, P.p0, (P.X, P.Y), steps=10**9, batch_size=BATCH, lr=lr, lr_decay=DECAY,
              n_directions=K, seed=SEED, progress=False, callback=cb, callback_every=every,
              max_seconds=seconds, **kw)
    curve = [(0, 0.0, acc0)] + [(int(s), float(w), float(d["acc"])) for s, w, d in r.evals]
    if r.stopped and "finite" in r.stopped:
        curve.append((r.steps_done, r.wall_time, float("nan")))
    elif curve[-1][0] < r.steps_done:       # train stops on max_seconds before its callback: evaluate the end
        curve.append((r.steps_done, r.wall_time, P.accuracy(r.params)))
    tail = r.losses[-min(100, len(r.losses)):] if len(r.losses) else np.array([np.nan])
    diverged = bool(r.stopped and "finite" in r.stopped)
    return {"lr": lr, "steps": r.steps_done, "diverged": diverged, "test_loss": P.evaluate(r.params)[1], "train_s": r.wall_time, "compile_s": probe.compile_time,
            "median_step_s": r.median_step_time, "curve": curve, "final_acc": curve[-1][2],
            "tail_loss": float(np.mean(tail)), "stopped": r.stopped, "blas_threads": r.config.get("blas_threads")}


class JaxBP:
    def __init__(self, P, chunk):
        import jax
        import jax.numpy as jnp
        from jax import lax

        from fwdjit.experiments import models
        self.jax, self.jnp, self.P, self.chunk = jax, jnp, P, chunk
        Xd, Yd = jnp.asarray(P.X), jnp.asarray(P.Y)
        jloss = models.jax_loss("mlp")

        def step(p, inp):
            rows, lr = inp
            v, g = jax.value_and_grad(jloss)(p, Xd[rows], Yd[rows])
            return tuple(a - lr * b for a, b in zip(p, g)), v

        def run(p, rows, lrs):
            return lax.scan(step, p, (rows, lrs))
        p = tuple(jnp.asarray(a) for a in P.p0)
        rows = jnp.zeros((chunk, BATCH), jnp.int32)
        lrs = jnp.zeros((chunk,), jnp.float32)
        t = time.perf_counter()
        self.compiled = jax.jit(run, donate_argnums=0).lower(p, rows, lrs).compile()
        self.compile_s = time.perf_counter() - t

    def train(self, lr, seconds, eval_every):
        import numpy as np

        from fwdjit.training.loop import minibatch_indices
        jax, jnp, P, n = self.jax, self.jnp, self.P, self.chunk
        p = tuple(jnp.asarray(a) for a in P.p0)
        curve = [(0, 0.0, P.accuracy(P.p0))]
        wall, done, losses, step_times = 0.0, 0, [], []
        since_eval = 0.0
        stopped = None
        while wall < seconds:
            rows = jnp.asarray(minibatch_indices(P.X.shape[0], BATCH, n, SEED, start=done).astype(np.int32))
            lrs = jnp.asarray((lr * np.exp(-DECAY * np.arange(done, done + n))).astype(np.float32))
            jax.block_until_ready((rows, lrs))
            t = time.perf_counter()
            p, ls = self.compiled(p, rows, lrs)
            jax.block_until_ready(ls)
            dt = time.perf_counter() - t                      # the training clock stops here
            wall += dt
            since_eval += dt
            done += n
            step_times.append(dt / n)
            ls = np.asarray(ls)
            losses.extend(ls.tolist())
            if not np.all(np.isfinite(ls)):
                stopped = f"loss is not finite near step {done}"
                curve.append((done, wall, float("nan")))
                break
            if since_eval >= eval_every or wall >= seconds:
                curve.append((done, wall, P.accuracy(p)))
                since_eval = 0.0
        tail = np.asarray(losses[-100:]) if losses else np.array([np.nan])
        return {"lr": lr, "steps": done, "diverged": stopped is not None, "test_loss": P.evaluate(p)[1], "train_s": wall, "compile_s": self.compile_s,
                "median_step_s": float(np.median(step_times)) if step_times else float("nan"), "curve": curve,
                "final_acc": curve[-1][2], "tail_loss": float(np.mean(tail)), "stopped": stopped}


def _score(run):
    """Lowest test cross-entropy at the end of the grid run (smoother than accuracy after few steps);
    a diverged run loses."""
    tl = run["test_loss"]
    if run["diverged"] or not math.isfinite(tl):
        return -math.inf
    return -tl


def worker(quick, grid_seconds, seconds, eval_every, use_jax):
    cpu = pin_one_cpu()
    t_all = time.perf_counter()
    P = Problem()
    t_ok, _, msg = lowrank_support()
    out = {"pinned_cpu": cpu, "quick": quick, "grid_seconds": grid_seconds, "seconds": seconds,
           "eval_every_s": eval_every, "decay": DECAY, "batch": BATCH, "seed": SEED, "notes": [],
           "fwdjit_cache": os.environ.get("FWDJIT_CACHE_DIR"), "methods": {}}
    if msg:
        print(msg, flush=True)
        out["notes"].append(msg)
    out["fwdjit_side"] = fwdjit_side()
    jbp = None
    if use_jax:
        # chunk: about eval_every seconds at ~15 ms per step, so evaluations come on time
        jbp = JaxBP(P, chunk=max(4, int(round(eval_every / 0.015))))
        out["jax_side"] = jax_side()
    family_compile = {}          # cold compile of the first variant of a JVP family (dense / low-rank r)
    for name, kind, kw, K in methods(t_ok):
        if kind == "bp" and jbp is None:
            continue
        grid = (QUICK_BP if kind == "bp" else QUICK_FG) if quick else (
            GRID_BP if kind == "bp" else (GRID_FG_K1 if K == 1 else GRID_FG_K4))
        print(f"{name}: grid η₀ {grid}, {grid_seconds:g} s each", flush=True)
        runs = []
        compile_s = None
        for lr in grid:
            if kind == "bp":
                r = jbp.train(lr, grid_seconds, max(grid_seconds, eval_every))
            else:
                r = run_fg(P, kw, K, lr, grid_seconds, max(grid_seconds, eval_every))
            if compile_s is None:
                compile_s = r["compile_s"]          # the first call of this variant in the process
            runs.append({k: r[k] for k in ("lr", "steps", "train_s", "final_acc", "test_loss", "tail_loss",
                                           "diverged", "stopped")})
            print(f"    η₀ {lr:g}: {r['steps']} steps, test acc {100 * r['final_acc']:.1f}%, test loss "
                  f"{r['test_loss']:.4g}, train loss {r['tail_loss']:.4g}{' (diverged)' if r['diverged'] else ''}",
                  flush=True)
        best = max(runs, key=_score)
        i = grid.index(best["lr"])
        edge = len(grid) > 2 and i in (0, len(grid) - 1)
        print(f"  winner η₀ {best['lr']:g}{' (on the edge of the grid)' if edge else ''}; racing {seconds:g} s",
              flush=True)
        # the race is 8x longer than a grid run: a winner that diverges in it (forward gradients
        # at the largest step sizes) is raced again at the next smaller η₀ of its grid, and both
        # are reported
        order = [lr for lr in sorted(grid, reverse=True) if lr <= best["lr"]]
        diverged_at = []
        for lr in order:
            if kind == "bp":
                race = jbp.train(lr, seconds, eval_every)
            else:
                race = run_fg(P, kw, K, lr, seconds, eval_every)
            if not race["diverged"]:
                break
            diverged_at.append(lr)
            print(f"  η₀ {lr:g} diverged after {race['steps']} steps ({race['train_s']:.1f} s) in the race; "
                  f"racing the next smaller η₀", flush=True)
        race["lr"] = lr
        race["diverged_at"] = diverged_at
        race["max_acc"] = max((a for _, _, a in race["curve"] if math.isfinite(a)), default=float("nan"))
        fam = (kind, kw.get("directions", "dense"), kw.get("rank"))
        family_compile.setdefault(fam, compile_s)
        # what running this method alone would cost: its family's JVP compiled cold, plus a loop
        # (the family's first variant paid both; later ones reused the JVP and measured less)
        race["own_compile_s"] = compile_s
        race["compile_s"] = max(compile_s, family_compile[fam])
        reach = {}
        for tgt in TARGETS:
            hit = next(((s, w) for s, w, a in race["curve"] if math.isfinite(a) and a >= tgt), None)
            reach[f"{int(100 * tgt)}"] = None if hit is None else {"step": hit[0], "train_s": hit[1],
                                                                  "with_compile_s": hit[1] + compile_s}
        race["reach"] = reach
        out["methods"][name] = {"kind": kind, "K": K, "kwargs": kw, "grid": grid, "grid_runs": runs,
                                "best_lr": best["lr"], "best_on_edge": edge, "race_lr": lr,
                                "diverged_at": diverged_at, "race": race}
        acc = race["final_acc"]
        print(f"  race at η₀ {lr:g}: {race['steps']} steps, median step {fmt_t(race['median_step_s'])}, test acc "
              f"{100 * acc:.1f}% after {race['train_s']:.1f} s (best {100 * race['max_acc']:.1f}%); 80%: "
              f"{_fmt_reach(reach['80'])}; 90%: {_fmt_reach(reach['90'])}", flush=True)
    out["elapsed_s"] = time.perf_counter() - t_all
    return out


def _fmt_reach(r, key="train_s"):
    return "not reached" if r is None else f"{r[key]:.1f} s"


# ------------------------------------------------------------------ parent
def markdown(res, info):
    M = res["methods"]
    bp = M.get("JAX backprop")
    lines = [f"Machine: {info['cpu']}; load average {info['load_start']} at start, {info['load_end']} at end; "
             f"{info['date']}.  One pinned core, one BLAS/XLA thread; MLP 784-1024-1024-10, batch {res['batch']}, "
             f"SGD η₀·e^(-{res['decay']:g} t); grid {res['grid_seconds']:g} s per η₀, race {res['seconds']:g} s of "
             f"training time, test accuracy every ~{res['eval_every_s']:g} s (evaluations not timed); "
             f"compilation {'cold (fresh cache)' if 'fresh' in (res.get('cache_kind') or '') else 'from the cache as found'}.",
             ""]
    lines += describe_sides(res["fwdjit_side"], res.get("jax_side"))
    lines.append("")
    rows = []
    for name, m in M.items():
        r = m["race"]
        rc = r["reach"]
        ratio = ""
        if bp and rc["80"] and bp["race"]["reach"]["80"]:
            ratio = f"{rc['80']['train_s'] / bp['race']['reach']['80']['train_s']:.2f}x"
        raced = m.get("race_lr", m["best_lr"])
        div = m.get("diverged_at") or []
        lr_txt = f"{m['best_lr']:g}" + (" (edge)" if m["best_on_edge"] else "")
        if div:
            lr_txt += f"; diverged in the race at {', '.join(f'{x:g}' for x in div)}, raced at {raced:g}"
        rows.append([name, lr_txt,
                     ", ".join(f"{x:g}" for x in m["grid"]), r["steps"], fmt_t(r["median_step_s"]),
                     fmt_t(r["compile_s"]),
                     f"{_fmt_reach(rc['80'])} / {_fmt_reach(rc['80'], 'with_compile_s')}",
                     f"{_fmt_reach(rc['90'])} / {_fmt_reach(rc['90'], 'with_compile_s')}",
                     f"{100 * r['final_acc']:.1f}% ({r['train_s']:.0f} s)" + (" (diverged)" if r["diverged"] else "")
                     + (f", best {100 * r['max_acc']:.1f}%" if "max_acc" in r else ""),
                     ratio or "-"])
    lines.append(md_table(["method", "best η₀ (grid winner; raced)", "grid", "steps in budget", "median step", "compile",
                           "to 80% (train / +compile)", "to 90% (train / +compile)",
                           "test acc. at the end (train s)", "to 80% vs backprop"], rows))
    fg = {k: v for k, v in M.items() if v["kind"] == "fg" and v["race"]["reach"]["80"]}
    lines.append("")
    if fg and bp and bp["race"]["reach"]["80"]:
        best = min(fg, key=lambda k: fg[k]["race"]["reach"]["80"]["train_s"])
        v = fg[best]["race"]["reach"]["80"]["train_s"] / bp["race"]["reach"]["80"]["train_s"]
        lines.append(f"* Time to 80%: best forward-gradient variant ({best}) / JAX backprop = **{v:.2f}** "
                     f"(target ≤ 1): {'met' if v <= 1 else 'NOT met'}.")
    elif bp:
        lines.append(f"* Time to 80%: no forward-gradient variant reached 80% in {res['seconds']:g} s "
                     f"(backprop: {_fmt_reach(bp['race']['reach']['80'])}); target NOT met.")
    for n in res.get("notes", []):
        lines.append(f"* note: {n}")
    return "\n".join(lines)


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install 'fwdjit[examples]')")
        return None
    fig, ax = plt.subplots(figsize=(8.0, 5.0), dpi=110)
    styles = {"JAX backprop": dict(color="k", lw=2.0)}
    for k, (name, m) in enumerate(res["methods"].items()):
        c = m["race"]["curve"]
        x = [w for _, w, a in c if math.isfinite(a)]
        y = [100 * a for _, w, a in c if math.isfinite(a)]
        st = styles.get(name, dict(color=f"C{k % 10}", lw=1.4, ls="-" if m["K"] == 1 else "--"))
        ax.plot(x, y, label=f"{name} (η₀ {m.get('race_lr', m['best_lr']):g})", **st)
    for t in TARGETS:
        ax.axhline(100 * t, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("training wall time (s), compilation and test evaluations excluded")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST 5k subset, MLP 784-1024-1024-10, batch 64, SGD η₀·e^(-kt), one pinned core", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 η₀ per method, 1 s grid runs, 4 s races, warm cache")
    ap.add_argument("--grid-seconds", type=float, default=None, help="training seconds per grid point (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="training seconds of each race (default 40)")
    ap.add_argument("--eval-every", type=float, default=None, help="seconds of training between evaluations (1)")
    ap.add_argument("--warm-cache", action="store_true", help="use the usual fwdjit cache (default: a fresh one, "
                    "so compilation is the cold first-run cost; --quick implies it)")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--keep-blas-env", action="store_true", help="keep OPENBLAS_CORETYPE/L2_SIZE in the worker")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    gs = args.grid_seconds if args.grid_seconds is not None else (1.0 if args.quick else 5.0)
    sec = args.seconds if args.seconds is not None else (4.0 if args.quick else 40.0)
    ev = args.eval_every if args.eval_every is not None else 1.0
    if args.worker:
        res = worker(args.quick, gs, sec, ev, not args.no_jax)
        print("@@RESULT@@" + json.dumps(res, default=float), flush=True)
        return 0
    from benchmarks.bench_training import machine_info
    info = machine_info()
    info["load_start"] = tuple(round(x, 2) for x in os.getloadavg())
    wargs = ["--worker", "--grid-seconds", str(gs), "--seconds", str(sec), "--eval-every", str(ev)]
    wargs += (["--quick"] if args.quick else []) + (["--no-jax"] if args.no_jax else [])
    fresh = not (args.warm_cache or args.quick)
    saved = os.environ.get("FWDJIT_CACHE_DIR")
    tmp = tempfile.TemporaryDirectory(prefix="fwdjit-tta-cache-") if fresh else None
    try:
        if tmp is not None:
            os.environ["FWDJIT_CACHE_DIR"] = tmp.name
        res = run_worker("benchmarks.bench_time_to_accuracy", wargs, pinned=True, keep_blas_env=args.keep_blas_env)
    finally:
        if tmp is not None:
            if saved is None:
                os.environ.pop("FWDJIT_CACHE_DIR", None)
            else:
                os.environ["FWDJIT_CACHE_DIR"] = saved
            tmp.cleanup()
    res["cache_kind"] = "fresh" if fresh else "as found"
    info["load_end"] = tuple(round(x, 2) for x in os.getloadavg())
    md = markdown(res, info)
    print()
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "time_to_accuracy" + (".quick" if args.quick else ""))
    with open(stem + ".json", "w") as f:
        json.dump({"machine": info, "result": res, "markdown": md}, f, indent=1, default=float)
    p = plot(res, stem + ".png")
    print(f"wrote {stem}.json" + (f" and {p}" if p else "") + f" ({res['elapsed_s']:.0f} s in the worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
