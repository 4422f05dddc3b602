"""Forward-gradient step vs JAX backprop step on the MNIST MLP (issue 13's targets), one pinned core.

    python -m benchmarks.bench_forward_step            # ~3-5 min (compilation cached after the first run)
    python -m benchmarks.bench_forward_step --quick    # smoke run
    python -m benchmarks.bench_forward_step --keep-blas-env   # keep OPENBLAS_CORETYPE/L2_SIZE (comparison)

The runner re-executes itself as a worker with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed from the worker's environment (the CPU's own BLAS
kernel; same as ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m
benchmarks.bench_forward_step``), one BLAS/XLA thread, and the worker pins
itself to one CPU: fwdjit and JAX run on the same core, in the same process,
on the same inputs (MLP 784-1024-1024-10, batch 64, float32, the shipped 5k
MNIST subset, same minibatch rows).

Correctness first (the run stops if a check fails):
* the loss of both sides at the same parameters and batch agrees;
* fwdjit's directional derivative equals ``jax.jvp``'s in the same direction;
* forward-gradient estimates are unbiased against ``jax.grad``: along
  ``u = ∇f/‖∇f‖`` the mean of ``u·g`` over K independent directions is within
  5 standard errors (sample standard deviation) of ``‖∇f‖``, for dense and
  low-rank directions.

Timed, in interleaved rounds (the order rotates each round), medians:
* JAX: ``jax.jit`` of ``value_and_grad`` + SGD update, called per step from
  Python (per-step median within a round) and the same step in ``lax.scan``
  (mean per step).  The reference for the ratios is the faster of the two.
* fwdjit ``train`` (compiled loop: minibatch, directions, JVP, update): the
  per-step median of the clock inside the loop; dense normal directions and,
  when the API is there, low-rank directions of rank 1 and 4.
* fwdjit ``forward_grad`` called from Python, as a whole SGD step
  (gather the batch, ``forward_grad``, NumPy update), per-call median.
* the share of direction sampling + update in the rank-1 (and dense) step,
  from ``TrainResult.sampling_update_share`` of a run with ``timing="phases"``.

Prints a markdown table (absolute times beside the ratios), the thread counts
and BLAS kernel of each side; writes benchmarks/results/forward_step.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.bench_env import (describe_sides, fmt_t, fwdjit_side, jax_side, lowrank_support, md_table,
                                  pin_one_cpu, run_worker)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {"rank-1 FG step / JAX BP step": 0.6, "dense FG step / JAX BP step": 1.0,
           "sampling + update share of the rank-1 step": 0.10}
LR, DECAY, BATCH = 2e-4, 1e-4, 64


def _stats(xs):
    import numpy as np
    xs = np.asarray(xs, float)
    return {"median_s": float(np.median(xs)), "min_s": float(xs.min()), "q1_s": float(np.percentile(xs, 25)),
            "q3_s": float(np.percentile(xs, 75)), "rounds": int(len(xs))}


# ------------------------------------------------------------------ worker
def worker(quick, use_jax):
    cpu = pin_one_cpu()
    import numpy as np

    import fwdjit
    from fwdjit.experiments import data, models
    from fwdjit.training.loop import minibatch_indices, train

    rounds = 2 if quick else 7
    steps = 8 if quick else 40
    K = 64 if quick else 400
    out = {"pinned_cpu": cpu, "rounds": rounds, "steps_per_round": steps, "checks": {}, "times": {}, "notes": []}
    print(f"worker pinned to CPU {cpu}; {rounds} rounds of {steps} steps", flush=True)

    images, labels = data.load_mnist_subset()
    tr_i, tr_l, _, _ = data.split_subset(images, labels)
    X, Y = data.prepare(tr_i, tr_l)
    p0 = [np.ascontiguousarray(a) for a in models.init("mlp", 0)]
    idx = minibatch_indices(X.shape[0], BATCH, max(steps, 64), 0)
    Xb, Yb = X[idx[0]], Y[idx[0]]
    wrt = tuple(range(6))
    loss = models.mlp_loss
    t_ok, f_ok, msg = lowrank_support()
    if msg:
        print(msg, flush=True)
        out["notes"].append(msg)
    dirs = [("dense", {})] + ([(f"rank {r}", {"directions": "lowrank", "rank": r}) for r in (1, 4)]
                              if (t_ok and f_ok) else [])
    out["fwdjit_side"] = fwdjit_side()

    # ------------------------------------------------ correctness
    print("compiling fwdjit's forward gradient and checking it against JAX ...", flush=True)
    t = time.perf_counter()
    value, _ = fwdjit.forward_grad(loss, (*p0, Xb, Yb), wrt=wrt, seed=0)
    out["fwdjit_forward_grad_compile_s"] = time.perf_counter() - t
    C = out["checks"]
    if use_jax:
        import jax
        import jax.numpy as jnp
        jloss = models.jax_loss("mlp")
        jp = tuple(jnp.asarray(a) for a in p0)
        jv, jg = jax.value_and_grad(jloss)(jp, jnp.asarray(Xb), jnp.asarray(Yb))
        jv = float(jv)
        C["loss fwdjit"], C["loss JAX"] = float(value), jv
        C["loss rel. diff"] = abs(float(value) - jv) / abs(jv)
        assert C["loss rel. diff"] < 1e-4, f"losses differ: fwdjit {value} vs JAX {jv}"
        r = np.random.default_rng(1)
        v = [r.standard_normal(a.shape).astype(np.float32) for a in p0]
        f = fwdjit.fwdjit(loss)
        _, d_fj = f.jvp((*p0, Xb, Yb), (*v, None, None))
        _, d_jx = jax.jvp(lambda *q: jloss(q, jnp.asarray(Xb), jnp.asarray(Yb)), jp, tuple(jnp.asarray(a) for a in v))
        C["JVP fwdjit"], C["JVP JAX"] = float(d_fj), float(d_jx)
        C["JVP rel. diff"] = abs(float(d_fj) - float(d_jx)) / abs(float(d_jx))
        assert C["JVP rel. diff"] < 1e-3, f"directional derivatives differ: fwdjit {d_fj} vs JAX {d_jx}"
        jg = [np.asarray(g, np.float64) for g in jg]
        gnorm = float(np.sqrt(sum(float(np.sum(g * g)) for g in jg)))
        u = [g / gnorm for g in jg]
        C["|grad f| (JAX)"] = gnorm
        for name, kw in list(dirs):
            proj = []
            try:
                for k in range(K):
                    _, g = fwdjit.forward_grad(loss, (*p0, Xb, Yb), wrt=wrt, seed=1000 + k, **kw)
                    proj.append(sum(float(np.vdot(ui, gi.astype(np.float64))) for ui, gi in zip(u, g)))
            except (fwdjit.FwdjitError, TypeError) as exc:      # the API refused this configuration
                note = f"forward_grad with {name} directions failed, variant dropped: {type(exc).__name__}: {exc}"
                print("  " + note, flush=True)
                out["notes"].append(note)
                dirs.remove((name, kw))
                continue
            proj = np.asarray(proj)
            m, se = float(proj.mean()), float(proj.std(ddof=1) / np.sqrt(K))
            z = (m - gnorm) / se
            C[f"unbiased {name}"] = {"K": K, "mean u.g": m, "|grad f|": gnorm, "std err": se, "z": z}
            print(f"  {name}: mean of u.g over {K} directions {m:.5g} vs |grad f| {gnorm:.5g} "
                  f"({z:+.2f} standard errors)", flush=True)
            assert abs(z) < 5, f"forward gradient ({name}) looks biased: z = {z:.2f}"
        print(f"  loss {float(value):.6g} (JAX {jv:.6g}); JVP {float(d_fj):.6g} (JAX {float(d_jx):.6g})", flush=True)
    else:
        out["notes"].append("--no-jax: no checks against JAX")

    # ------------------------------------------------ timed variants
    def fwdjit_train(kw):
        def run():
            r = train(loss, p0, (X, Y), steps=steps, batch_size=BATCH, lr=LR, lr_decay=DECAY, progress=False,
                      seed=0, **kw)
            return float(np.median(r.step_times)), r.config.get("blas_threads")
        return run

    def fwdjit_python(kw):
        state = {"p": [a.copy() for a in p0]}

        def run():
            p = state["p"]
            ts = []
            for i in range(steps):
                t = time.perf_counter()
                rows = idx[i]
                _, g = fwdjit.forward_grad(loss, (*p, X[rows], Y[rows]), wrt=wrt, seed=i, **kw)
                lr_t = LR * np.exp(-DECAY * i)
                for a, b in zip(p, g):
                    b *= -lr_t
                    a += b
                ts.append(time.perf_counter() - t)
            state["p"] = [a.copy() for a in p0]
            return float(np.median(ts)), None
        return run

    variants = {}
    for name, kw in dirs:
        variants[f"fwdjit train, {name} (compiled loop)"] = fwdjit_train(kw)
        variants[f"fwdjit forward_grad from Python, {name}"] = fwdjit_python(kw)
    print("compiling the training loops ...", flush=True)
    t = time.perf_counter()
    for fn in variants.values():
        fn()
    out["fwdjit_compile_and_warmup_s"] = time.perf_counter() - t
    if use_jax:
        jv = _jax_variants(X, Y, p0, idx, steps)
        out["jax_side"] = jax_side()
        variants.update(jv)

    samples = {k: [] for k in variants}
    blas_used = {}
    names = list(variants)
    for rd in range(rounds):
        order = names[rd % len(names):] + names[:rd % len(names)]
        for k in order:
            med, nb = variants[k]()
            samples[k].append(med)
            if nb is not None:
                blas_used[k] = nb
        print(f"  round {rd + 1}/{rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
    T = out["times"]
    for k, v in samples.items():
        T[k] = _stats(v)
    out["fwdjit_blas_threads_in_train"] = blas_used

    # ------------------------------------------------ phase shares
    out["phase_share"] = {}
    for name, kw in dirs:
        if name == "rank 4":
            continue
        r = train(loss, p0, (X, Y), steps=2 * steps, batch_size=BATCH, lr=LR, lr_decay=DECAY, progress=False,
                  timing="phases", **kw)
        out["phase_share"][name] = {"phases": r.phase_share(skip=2), "sampling_update": r.sampling_update_share(skip=2)}

    # ------------------------------------------------ ratios
    ref_keys = [k for k in ("JAX BP step (jit, per call)", "JAX BP step (lax.scan)") if k in T]
    ratios = {}
    if ref_keys:
        ref_k = min(ref_keys, key=lambda k: T[k]["median_s"])
        ref = T[ref_k]["median_s"]
        out["reference"] = ref_k
        for k in T:
            ratios[k] = T[k]["median_s"] / ref
    out["ratios"] = ratios
    return out


def _jax_variants(X, Y, p0, idx, steps):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from fwdjit.experiments import models

    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)
    jloss = models.jax_loss("mlp")
    rows_all = jnp.asarray(idx[:steps])
    lrs = jnp.asarray((LR * np.exp(-DECAY * np.arange(steps))).astype(np.float32))

    def bp_step(p, rows, lr):
        v, g = jax.value_and_grad(jloss)(p, Xd[rows], Yd[rows])
        return tuple(a - lr * b for a, b in zip(p, g)), v

    step = jax.jit(bp_step, donate_argnums=0)

    @jax.jit
    def scan_loop(p, rows, lrs):
        return lax.scan(lambda c, i: bp_step(c, i[0], i[1]), p, (rows, lrs))

    def fresh():
        return tuple(jnp.asarray(a) for a in p0)

    def per_call():
        p = fresh()
        jax.block_until_ready(p)
        ts = []
        for i in range(steps):
            t = time.perf_counter()
            p, v = step(p, rows_all[i], lrs[i])
            jax.block_until_ready(v)
            ts.append(time.perf_counter() - t)
        return float(np.median(ts)), None

    def scan():
        p = fresh()
        jax.block_until_ready(p)
        t = time.perf_counter()
        p, vs = scan_loop(p, rows_all, lrs)
        jax.block_until_ready(vs)
        return (time.perf_counter() - t) / steps, None

    per_call()
    scan()
    return {"JAX BP step (jit, per call)": per_call, "JAX BP step (lax.scan)": scan}


# ------------------------------------------------------------------ parent
def markdown(res, info):
    T, R = res["times"], res.get("ratios", {})
    lines = [f"Machine: {info['cpu']}; load average {info['load_start']} at start, {info['load_end']} at end; "
             f"{info['date']}.  One pinned core for both sides; {res['rounds']} interleaved rounds of "
             f"{res['steps_per_round']} steps; medians of the rounds.", ""]
    lines += describe_sides(res["fwdjit_side"], res.get("jax_side"))
    if res.get("fwdjit_blas_threads_in_train"):
        lines.append(f"BLAS threads fwdjit used in train: {sorted(set(res['fwdjit_blas_threads_in_train'].values()))}")
    lines.append("")
    rows = []
    for k, v in T.items():
        ratio = f"{R[k]:.2f}x" if k in R else "-"
        rows.append([k, fmt_t(v["median_s"]), fmt_t(v["min_s"]), f"{fmt_t(v['q1_s'])} – {fmt_t(v['q3_s'])}", ratio])
    ref = res.get("reference", "JAX")
    lines.append(md_table(["per step", "median", "min", "quartiles", f"ratio to {ref}"], rows))
    lines.append("")
    for name, ps in res.get("phase_share", {}).items():
        if ps["phases"]:
            p = ps["phases"]
            lines.append(f"* {name} step phases (medians of shares): minibatch {100 * p['batch']:.1f}%, directions "
                         f"{100 * p['directions']:.1f}%, JVP {100 * p['jvp']:.1f}%, update {100 * p['update']:.1f}%; "
                         f"sampling + update **{100 * ps['sampling_update']:.1f}%**")
    tgt = []
    r1 = R.get("fwdjit train, rank 1 (compiled loop)")
    dn = R.get("fwdjit train, dense (compiled loop)")
    sh = res.get("phase_share", {}).get("rank 1", {}).get("sampling_update")
    for label, val, lim, pct in (("rank-1 FG step / JAX BP step", r1, 0.6, False),
                                 ("dense FG step / JAX BP step", dn, 1.0, False),
                                 ("sampling + update share of the rank-1 step", sh, 0.10, True)):
        if val is None:
            tgt.append(f"* {label}: not measured")
        else:
            shown = f"{100 * val:.1f}%" if pct else f"{val:.2f}"
            lim_s = f"{100 * lim:.0f}%" if pct else f"{lim}"
            tgt.append(f"* {label} = **{shown}** (target ≤ {lim_s}): {'met' if val <= lim else 'NOT met'}")
    lines += tgt
    for n in res.get("notes", []):
        lines.append(f"* note: {n}")
    C = res.get("checks", {})
    if C:
        lines.append(f"* checks: loss rel. diff {C.get('loss rel. diff', float('nan')):.1e}, JVP rel. diff "
                     f"{C.get('JVP rel. diff', float('nan')):.1e}; unbiasedness z-scores "
                     + ", ".join(f"{k[9:]} {v['z']:+.2f} (K={v['K']})" for k, v in C.items() if k.startswith("unbiased")))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 8 steps, K = 64 directions in the checks")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--keep-blas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in the worker (default: removed)")
    ap.add_argument("--json", default=None, help="default: benchmarks/results/forward_step.json "
                    "(forward_step.quick.json with --quick, not committed)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        res = worker(args.quick, not args.no_jax)
        print("@@RESULT@@" + json.dumps(res, default=float), flush=True)
        return 0
    from benchmarks.bench_training import machine_info
    info = machine_info()
    info["load_start"] = tuple(round(x, 2) for x in os.getloadavg())
    wargs = ["--worker"] + (["--quick"] if args.quick else []) + (["--no-jax"] if args.no_jax else [])
    t = time.perf_counter()
    res = run_worker("benchmarks.bench_forward_step", wargs, pinned=True, keep_blas_env=args.keep_blas_env)
    res["elapsed_s"] = time.perf_counter() - t
    info["load_end"] = tuple(round(x, 2) for x in os.getloadavg())
    md = markdown(res, info)
    if args.json is None:
        args.json = os.path.join(ROOT, "benchmarks", "results",
                                 "forward_step.quick.json" if args.quick else "forward_step.json")
    print()
    print(md)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "quick": args.quick, "targets": TARGETS, "result": res, "markdown": md}, f,
                  indent=1, default=float)
    print(f"wrote {args.json} ({res['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
