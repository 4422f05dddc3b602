"""Vector mode and forward-mode gradients (issue: vector tangent mode).

Measured in one run, same inputs, correctness checked before timing:

1. K = 16 directions in one vector-mode pass vs 16 separate JVPs, on
   Rosenbrock n=1000, the Lorenz RK4 integration (10,000 steps) and the MLP
   (784-1024-1024-10, float32, batch 64).  The separate JVPs run in an
   ``@njit`` loop that calls the compiled single-direction JVP 16 times, so no
   Python sits between them (the strongest baseline).  Target: ratio <= 0.5.
2. The full gradient of the Lorenz integration (final x) with respect to
   (sigma, rho, beta) by forward mode (one K=3 pass) vs ``jax.jit(jax.grad)``
   of the same computation written with ``lax.fori_loop``.  Target: >= 20x.

    python -m benchmarks.bench_vector [--quick] [--json PATH] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _threads(n):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few, short samples (smoke test)")
    ap.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results", "vector.json"))
    ap.add_argument("--threads", type=int, default=None, help="pin BLAS/Numba/XLA thread pools")
    ap.add_argument("--K", type=int, default=16)
    args = ap.parse_args(argv)
    if args.threads:
        _threads(args.threads)

    import numba
    import numpy as np

    from benchmarks.bench_core import fmt_t, machine_info, time_group
    from benchmarks.workloads import all_workloads
    from fwdjit import fwdjit

    min_sample, n_samples = (0.005, 5) if args.quick else (0.02, 15)
    K = args.K
    rows = []
    wls = {w.name: w for w in all_workloads()}
    picks = ["rosenbrock n=1000", "lorenz_rk4 10000 steps", next(n for n in wls if n.startswith("mlp"))]
    for name in picks:
        wl = wls[name]
        f = fwdjit(wl.plain)
        mask = wl.active
        rng = np.random.default_rng(7)
        stacked = []
        for p, a in zip(wl.primals, mask):
            if not a:
                continue
            shape = (K,) + np.shape(p)
            dt = p.dtype if isinstance(p, np.ndarray) else np.float64
            stacked.append(rng.standard_normal(shape).astype(dt))
        jk = f.tangent_function_k(mask, K)
        j1 = f.tangent_function(mask)
        prim = wl.primals
        nprim = len(prim)
        ntan = len(stacked)

        # K separate JVPs, in compiled code (generated so the argument count fits)
        src = (f"def sep({', '.join(f'p{i}' for i in range(nprim))}, {', '.join(f'T{i}' for i in range(ntan))}):\n"
               f"    acc = 0.0\n"
               f"    for k in range({K}):\n"
               f"        out, d = j1({', '.join(f'p{i}' for i in range(nprim))}, "
               f"{', '.join(f'T{i}[k]' for i in range(ntan))})\n"
               f"        acc += {'d[0]' if isinstance(wl.plain(*prim), tuple) else 'd'}\n"
               f"    return acc\n")
        ns = {"j1": j1}
        exec(src, ns)
        sep = numba.njit(ns["sep"])
        out_k, d_k = jk(*prim, *stacked)
        first = (lambda d: d[0]) if isinstance(d_k, tuple) else (lambda d: d)
        # correctness before timing: every direction equals its single JVP
        worst = 0.0
        for k in range(K):
            _, d1 = j1(*prim, *[T[k] for T in stacked])
            a, b = np.asarray(first(d_k))[k], np.asarray(first(d1))
            worst = max(worst, float(np.max(np.abs(a - b)) / max(1e-300, float(np.max(np.abs(b))))))
        tol = 1e-12 if wl.dtype == np.float64 else 1e-4
        assert worst <= tol, f"{name}: vector mode differs from single JVPs by {worst:g}"
        sep(*prim, *stacked)
        t = time_group({"vector": (jk, (*prim, *stacked)), "separate": (sep, (*prim, *stacked)),
                        "primal": (f.primal_function, prim)}, min_sample, n_samples)
        ratio = t["vector"]["median_s"] / t["separate"]["median_s"]
        rows.append({"workload": name, "K": K, "vector_s": t["vector"]["median_s"],
                     "separate_s": t["separate"]["median_s"], "primal_s": t["primal"]["median_s"],
                     "ratio": ratio, "target": 0.5, "met": ratio <= 0.5, "max_rel_diff": worst})
        print(f"{name:28s} K={K}: vector {fmt_t(t['vector']['median_s'])}, 16 separate "
              f"{fmt_t(t['separate']['median_s'])}, ratio {ratio:.2f} (target <= 0.5), primal "
              f"{fmt_t(t['primal']['median_s'])}", flush=True)

    # ---- Lorenz gradient: forward mode vs jax.grad
    lw = wls["lorenz_rk4 10000 steps"]
    prim = lw.primals
    f = fwdjit(lw.plain)
    mask = lw.active
    j3 = f.tangent_function_k(mask, 3)
    eye = [np.eye(3)[:, i].copy() for i in range(3)]

    def fwd_grad():
        return j3(*prim, *eye)[1][0]          # d x_final / d(sigma, rho, beta)
    g_fwd = np.asarray(fwd_grad())
    grad_row = {"workload": "lorenz gradient wrt (sigma, rho, beta)", "fwdjit_s": None, "jax_s": None}
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        from benchmarks.jax_workloads import load
        _, fns = load()
        jl = fns["lorenz_rk4"]

        def final_x(s, r, b):
            return jl(s, r, b, *prim[3:7], prim[7])[0]
        jg = jax.jit(jax.grad(final_x, argnums=(0, 1, 2)))
        g_jax = np.array([float(v) for v in jg(*prim[:3])])
        rel = float(np.max(np.abs(g_jax - g_fwd)) / np.max(np.abs(g_jax)))
        assert rel < 1e-9, f"jax and fwdjit gradients differ: {g_jax} vs {g_fwd}"

        def jax_call():
            return [v.block_until_ready() for v in jg(*prim[:3])]
        t = time_group({"fwdjit": (fwd_grad, ()), "jax": (jax_call, ())}, min_sample, n_samples)
        speed = t["jax"]["median_s"] / t["fwdjit"]["median_s"]
        grad_row.update(fwdjit_s=t["fwdjit"]["median_s"], jax_s=t["jax"]["median_s"], speedup=speed,
                        target=20.0, met=speed >= 20.0, max_rel_diff=rel, jax_version=jax.__version__)
        print(f"lorenz gradient: fwdjit {fmt_t(t['fwdjit']['median_s'])} vs jax.grad "
              f"{fmt_t(t['jax']['median_s'])}: {speed:.1f}x (target >= 20x)", flush=True)
    except ImportError:
        grad_row["note"] = "jax not installed: pip install -e '.[bench]'"
        print("lorenz gradient: jax not installed (pip install -e '.[bench]')")

    result = {"machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M"), "vector": rows,
              "lorenz_gradient": grad_row, "quick": args.quick, "threads": args.threads}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1, default=float)
    print("\n| workload | K | vector pass | 16 separate JVPs | ratio (target <= 0.5) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['K']} | {fmt_t(r['vector_s'])} | {fmt_t(r['separate_s'])} | "
              f"{r['ratio']:.2f} {'✓' if r['met'] else '✗'} |")
    if grad_row.get("jax_s"):
        print(f"\n| Lorenz gradient (3 params) | fwdjit forward | jax.grad (fori_loop) | speed-up (target >= 20x) |")
        print("|---|---|---|---|")
        print(f"| 10,000 RK4 steps | {fmt_t(grad_row['fwdjit_s'])} | {fmt_t(grad_row['jax_s'])} | "
              f"{grad_row['speedup']:.1f}x {'✓' if grad_row['met'] else '✗'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
