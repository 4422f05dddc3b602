"""Training benchmark: forward-gradient steps (fwdjit) vs JAX, measured side by side.

    python -m benchmarks.bench_training                 # both thread configurations (~5-8 min)
    python -m benchmarks.bench_training --quick         # smoke run (~2 min)
    python -m benchmarks.bench_training --threads 1     # one configuration only (1 or all)
    python -m benchmarks.bench_training --json PATH --no-jax

Targets (see benchmarks/README_training.md):
1. MLP 784-1024-1024-10, batch 64, float32: one forward-gradient training step
   of ``fwdjit.train`` (minibatch + normal directions + JVP + SGD update, compiled)
   <= 1.0x one JAX backprop SGD step (``jax.jit`` of ``value_and_grad`` + update);
   the paper reports 0.59.  Reference = the faster of two JAX variants: a jitted
   step called from Python, and the same step in a ``lax.scan`` loop.
2. Softmax regression 784 -> 10, batch 64: the compiled forward-gradient loop
   >= 3x faster per step than the same loop in JAX (``lax.fori_loop`` inside
   ``jax.jit``: minibatch sampling, normal directions, ``jax.jvp``, update).
   Reference = the faster of JAX's default PRNG (threefry) and ``rbg``.

Each configuration runs in its own process, so thread settings take effect
before NumPy, SciPy and JAX load:
* ``1``: the process is pinned to one CPU; OpenBLAS and XLA use one thread.
* ``all``: no limits (OpenBLAS and XLA use every core).
Within a process the variants are timed in interleaved rounds (fwdjit, JAX,
fwdjit, JAX, ...) so drifts of machine load hit all alike; reported: the
median over rounds of the mean time per step within a round.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_MLP = 1.0
TARGET_SOFTMAX = 3.0


# --------------------------------------------------------------------- worker
def _pin_one_cpu():
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    return None


def _env_for(threads):
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):   # the CPU's own BLAS kernel (issue 13)
        env.pop(k, None)
    if threads == "1":
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[k] = "1"
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stats(xs):
    import numpy as np
    xs = np.asarray(xs, float)
    return {"median_s": float(np.median(xs)), "min_s": float(xs.min()), "q1_s": float(np.percentile(xs, 25)),
            "q3_s": float(np.percentile(xs, 75)), "rounds": int(len(xs))}


def worker(threads, quick, use_jax):
    cpu = _pin_one_cpu() if threads == "1" else None
    import numpy as np

    from fwdjit.experiments import data, models
    from fwdjit.training import rng
    from fwdjit.api import fwdjit as fj_decorate
    from fwdjit.training.loop import train

    rounds = 2 if quick else 7
    s_mlp = 8 if quick else 40
    s_soft = 300 if quick else 3000
    out = {"threads": threads, "pinned_cpu": cpu, "rounds": rounds, "mlp_steps_per_round": s_mlp,
           "softmax_steps_per_round": s_soft, "times": {}, "notes": []}
    from benchmarks.bench_env import fwdjit_side
    out["fwdjit_side"] = fwdjit_side()
    T = out["times"]

    images, labels = data.load_mnist_subset()
    tr_i, tr_l, _, _ = data.split_subset(images, labels)
    X, Y = data.prepare(tr_i, tr_l)

    # ------------------------------------------------------------ MLP
    p_mlp = models.init("mlp", 0)
    p_soft = models.init("logreg", 0)
    lr = 2e-4

    def fg_mlp():
        r = train(models.mlp_loss, p_mlp, (X, Y), steps=s_mlp, lr=lr, lr_decay=1e-4, progress=False)
        return float(r.step_times.mean()), float(np.median(r.step_times))

    def fg_soft():
        r = train(models.logreg_loss, p_soft, (X, Y), steps=s_soft, lr=lr, lr_decay=1e-4, progress=False)
        return r.wall_time / s_soft

    t0 = time.perf_counter()
    fg_mlp()
    fg_soft()
    out["fwdjit_compile_s"] = time.perf_counter() - t0
    # phase shares (one longer run, five clock reads per step)
    ph = train(models.mlp_loss, p_mlp, (X, Y), steps=2 * s_mlp, lr=lr, progress=False, timing="phases")
    out["mlp_phase_share"] = ph.phase_share(skip=2)
    out["mlp_sampling_update_share"] = ph.sampling_update_share(skip=2)
    phr = train(models.mlp_loss, p_mlp, (X, Y), steps=2 * s_mlp, lr=lr, progress=False, timing="phases",
                distribution="rademacher")
    out["mlp_sampling_update_share_rademacher"] = phr.sampling_update_share(skip=2)
    out["mlp_step_rademacher_s"] = float(phr.step_times[2:].mean())
    # components: the JVP alone and the direction generator alone
    f = fj_decorate(models.mlp_loss)
    jf = f.tangent_function((True,) * 6 + (False, False))
    V = [np.ones_like(p) for p in p_mlp]
    Xb, Yb = X[:64].copy(), Y[:64].copy()
    jf(*p_mlp, Xb, Yb, *V)
    flat = np.empty(models.n_params(p_mlp), np.float32)
    rng.fill_normal(flat, 1)

    def per_call_median(fn, n):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    def jvp_only():
        return per_call_median(lambda: jf(*p_mlp, Xb, Yb, *V), max(2, s_mlp // 2))

    def fill_only():
        return per_call_median(lambda: rng.fill_normal(flat, 7), max(2, s_mlp // 2))

    jax_fns = {}
    if use_jax:
        try:
            jax_fns = _jax_setup(X, Y, p_mlp, p_soft, lr, s_mlp, s_soft)
            out["jax"] = jax_fns.pop("_version")
        except ImportError as exc:
            out["jax"] = f"not installed ({exc})"
            jax_fns = {}
    else:
        out["jax"] = "skipped (--no-jax)"

    samples = {k: [] for k in ["fwdjit FG step (median)", "fwdjit FG step (mean)", "fwdjit JVP only",
                               "fwdjit normal directions only", "fwdjit softmax FG loop"] + list(jax_fns)}
    for _ in range(rounds):
        mean, med = fg_mlp()
        samples["fwdjit FG step (median)"].append(med)
        samples["fwdjit FG step (mean)"].append(mean)
        samples["fwdjit JVP only"].append(jvp_only())
        samples["fwdjit normal directions only"].append(fill_only())
        samples["fwdjit softmax FG loop"].append(fg_soft())
        for k, fn in jax_fns.items():
            r = fn()
            if isinstance(r, tuple):      # (median, mean) per step
                samples[k].append(r[0])
                samples.setdefault(k.replace(", median)", ", mean)"), []).append(r[1])
            else:
                samples[k].append(r)
    for k, v in samples.items():
        T[k] = _stats(v)
    T["fwdjit FG step, rademacher (1 run)"] = {"median_s": out["mlp_step_rademacher_s"], "rounds": 1}

    # ratios: per-step medians on both sides (robust to preemption on a shared machine); means as a check
    out["ratios"] = {}
    if "JAX BP step (jit, Python loop, median)" in T:
        out["ratios"]["MLP FG step / JAX BP step"] = (T["fwdjit FG step (median)"]["median_s"]
                                                      / T["JAX BP step (jit, Python loop, median)"]["median_s"])
        means = [T[k]["median_s"] for k in ("JAX BP step (jit, Python loop, mean)", "JAX BP step (lax.scan, mean)")
                 if k in T]
        out["ratios"]["MLP FG step / JAX BP step (means)"] = T["fwdjit FG step (mean)"]["median_s"] / min(means)
    jax_bp = [T[k]["median_s"] for k in T if k.startswith("JAX BP")]
    jax_soft = [T[k]["median_s"] for k in ("JAX softmax FG loop (threefry)", "JAX softmax FG loop (rbg)") if k in T]
    if jax_soft:
        out["ratios"]["JAX softmax FG loop / fwdjit"] = min(jax_soft) / T["fwdjit softmax FG loop"]["median_s"]
    if "JAX FG step (jit, Python loop, median)" in T and jax_bp:
        out["ratios"]["JAX FG step / JAX BP step"] = (T["JAX FG step (jit, Python loop, median)"]["median_s"]
                                                      / T["JAX BP step (jit, Python loop, median)"]["median_s"])
    return out


def _jax_setup(X, Y, p_mlp, p_soft, lr, s_mlp, s_soft):
    """The JAX variants (each returns seconds per step of one round)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from fwdjit.experiments import models
    from fwdjit.training.loop import minibatch_indices

    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    mlp_loss = models.jax_loss("mlp")
    soft_loss = models.jax_loss("logreg")
    idx = jnp.asarray(minibatch_indices(X.shape[0], 64, max(s_mlp, 64), 0))

    def bp_step(p, rows, lr):
        l, g = jax.value_and_grad(mlp_loss)(p, Xd[rows], Yd[rows])
        return tuple(a - lr * b for a, b in zip(p, g)), l

    step = jax.jit(bp_step, donate_argnums=0)

    @jax.jit
    def scan_loop(p, rows, lrs):
        return lax.scan(lambda c, i: bp_step(c, i[0], i[1]), p, (rows, lrs))

    def fg_step_fn(p, rows, key, lr):
        keys = jax.random.split(key, len(p))
        v = tuple(jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, p))
        l, d = jax.jvp(lambda *q: mlp_loss(q, Xd[rows], Yd[rows]), p, v)
        return tuple(a - lr * d * b for a, b in zip(p, v)), l

    fg_step = jax.jit(fg_step_fn, donate_argnums=0)
    state = {"p": tuple(jnp.asarray(a) for a in p_mlp), "pf": tuple(jnp.asarray(a) for a in p_mlp),
             "ps": tuple(jnp.asarray(a) for a in p_mlp)}
    lr32 = jnp.float32(lr)
    lrs = jnp.full((s_mlp,), lr, jnp.float32)
    key0 = jax.random.PRNGKey(0)

    def bp_python():
        p = state["p"]
        ts = []
        for i in range(s_mlp):
            t = time.perf_counter()
            p, l = step(p, idx[i], lr32)
            jax.block_until_ready(l)
            ts.append(time.perf_counter() - t)
        state["p"] = p
        return float(np.median(ts)), float(np.mean(ts))

    def bp_scan():
        t = time.perf_counter()
        p, ls = scan_loop(state["ps"], idx[:s_mlp], lrs)
        jax.block_until_ready(ls)
        return (time.perf_counter() - t) / s_mlp

    def fg_python():
        p = state["pf"]
        ts = []
        for i in range(s_mlp):
            t = time.perf_counter()
            p, l = fg_step(p, idx[i], jax.random.fold_in(key0, i), lr32)
            jax.block_until_ready(l)
            ts.append(time.perf_counter() - t)
        state["pf"] = p
        return float(np.median(ts)), float(np.mean(ts))

    # softmax regression: the forward-gradient loop in lax.fori_loop
    def make_soft(impl):
        n = X.shape[0]

        @jax.jit
        def loop(W, b, key, lr):
            def body(i, st):
                W, b, key = st
                key, k1, k2, k3 = jax.random.split(key, 4)
                rows = jax.random.randint(k1, (64,), 0, n)
                vW = jax.random.normal(k2, W.shape, W.dtype)
                vb = jax.random.normal(k3, b.shape, b.dtype)
                _, d = jax.jvp(lambda W_, b_: soft_loss((W_, b_), Xd[rows], Yd[rows]), (W, b), (vW, vb))
                lr_i = lr * jnp.exp(-1e-4 * i)
                return (W - lr_i * d * vW, b - lr_i * d * vb, key)
            return lax.fori_loop(0, s_soft, body, (W, b, key))

        key = jax.random.key(0, impl=impl) if impl != "threefry" else jax.random.PRNGKey(0)
        W0, b0 = jnp.asarray(p_soft[0]), jnp.asarray(p_soft[1])

        def run():
            t = time.perf_counter()
            jax.block_until_ready(loop(W0, b0, key, jnp.float32(lr)))
            return (time.perf_counter() - t) / s_soft
        return run

    fns = {"JAX BP step (jit, Python loop, median)": bp_python, "JAX BP step (lax.scan, mean)": bp_scan,
           "JAX FG step (jit, Python loop, median)": fg_python,
           "JAX softmax FG loop (threefry)": make_soft("threefry")}
    try:
        jax.random.key(0, impl="rbg")
        fns["JAX softmax FG loop (rbg)"] = make_soft("rbg")
    except Exception:       # older JAX without named PRNG implementations
        pass
    t = time.perf_counter()
    for fn in fns.values():
        fn()
    fns["_version"] = f"{jax.__version__} ({jax.default_backend()}), compile+warm-up {time.perf_counter() - t:.1f} s"
    return fns


# --------------------------------------------------------------------- parent
def machine_info():
    import numpy as np
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import numba
        info["numba"] = numba.__version__
    except ImportError:
        pass
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except ImportError:
        pass
    return info


def _fmt(s):
    if s is None:
        return "-"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def markdown(results, info):
    lines = [f"Machine: {info['cpu']}, {info['cores']} logical cores; load average at start "
             f"{tuple(round(x, 2) for x in info['loadavg_start']) if info.get('loadavg_start') else '?'}, "
             f"at end {tuple(round(x, 2) for x in info['loadavg_end']) if info.get('loadavg_end') else '?'}; "
             f"Python {info['python']}, NumPy {info['numpy']}, Numba {info.get('numba')}, "
             f"JAX {results[0].get('jax') if results else '?'}; {info['date']}.", ""]
    for r in results:
        cfg = "1 core (pinned; OpenBLAS and XLA single-threaded)" if r["threads"] == "1" else \
            f"all {info['cores']} cores (default thread pools)"
        lines += [f"### {cfg}", "", "| variant | per step (median of rounds) | min | ratio |", "|---|---|---|---|"]
        T = r["times"]
        ref = T.get("JAX BP step (jit, Python loop, median)", {}).get("median_s")
        soft = T.get("fwdjit softmax FG loop", {}).get("median_s")
        for k, v in T.items():
            ratio = ""
            if "softmax" in k:
                if soft and k != "fwdjit softmax FG loop":
                    ratio = f"{v['median_s'] / soft:.2f}x the fwdjit loop"
            elif ref:
                ratio = f"{v['median_s'] / ref:.2f}x JAX BP step"
            lines.append(f"| {k} | {_fmt(v['median_s'])} | {_fmt(v.get('min_s'))} | {ratio} |")
        rat = r.get("ratios", {})
        share = r.get("mlp_sampling_update_share")
        lines.append("")
        if "MLP FG step / JAX BP step" in rat:
            v = rat["MLP FG step / JAX BP step"]
            means = rat.get("MLP FG step / JAX BP step (means)")
            lines.append(f"* MLP: FG step / JAX BP step = **{v:.2f}** (per-step medians; "
                         + (f"{means:.2f} from means; " if means else "")
                         + f"target <= {TARGET_MLP}, paper 0.59): {'met' if v <= TARGET_MLP else 'NOT met'}.")
        if "JAX softmax FG loop / fwdjit" in rat:
            v = rat["JAX softmax FG loop / fwdjit"]
            lines.append(f"* Softmax regression loop: JAX / fwdjit = **{v:.1f}x** (target >= {TARGET_SOFTMAX}): "
                         f"{'met' if v >= TARGET_SOFTMAX else 'NOT met'}.")
        if share is not None:
            lines.append(f"* Share of direction sampling + update in the MLP step (median): "
                         f"**{100 * share:.1f}%** normal, "
                         f"{100 * r['mlp_sampling_update_share_rademacher']:.1f}% Rademacher (target <= 25%): "
                         f"{'met' if share <= 0.25 else 'NOT met'}.")
        if "JAX FG step / JAX BP step" in rat:
            lines.append(f"* For context, JAX's own forward-gradient step / its backprop step = "
                         f"{rat['JAX FG step / JAX BP step']:.2f}.")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", choices=["1", "all", "both"], default="both")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--json", default=os.path.join(_ROOT, "benchmarks", "results", "training.json"))
    ap.add_argument("--worker", choices=["1", "all"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = worker(args.worker, args.quick, not args.no_jax)
        print("@@RESULT@@" + json.dumps(res, default=float))
        return 0
    info = machine_info()
    configs = ["1", "all"] if args.threads == "both" else [args.threads]
    results = []
    for cfg in configs:
        cmd = [sys.executable, "-m", "benchmarks.bench_training", "--worker", cfg]
        if args.quick:
            cmd.append("--quick")
        if args.no_jax:
            cmd.append("--no-jax")
        print(f"running configuration threads={cfg} ...", flush=True)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=_ROOT, env=_env_for(cfg), capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-6000:], file=sys.stderr)
            raise SystemExit(f"worker for threads={cfg} failed")
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")][-1]
        res = json.loads(line[len("@@RESULT@@"):])
        res["elapsed_s"] = time.perf_counter() - t
        results.append(res)
    info["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    md = markdown(results, info)
    print()
    print(md)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "quick": args.quick, "targets": {"mlp_fg_over_jax_bp": TARGET_MLP,
                   "jax_softmax_over_fwdjit": TARGET_SOFTMAX, "sampling_update_share": 0.25},
                   "configs": results, "markdown": md}, f, indent=1, default=float)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
