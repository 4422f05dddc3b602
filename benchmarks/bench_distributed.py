"""Distributed forward-gradient training on Dask: steps/s and bytes per step, scalars vs gradients.

    python -m benchmarks.bench_distributed            # ~2-4 min on 2 cores
    python -m benchmarks.bench_distributed --quick

A LocalCluster of 2 worker processes (1 thread each) on this machine.  For softmax regression
(7,850 parameters) and the MLP 784-1024-1024-10 (1.86 M parameters), batch 64, float32,
synthetic MNIST-shaped data:

* ``single``: ``fwdjit.train`` in this process (no Dask), the reference;
* ``scalars W=1,2``: ``fwdjit.train(client=..., parallel="data")``: per step each worker
  receives the previous step's scalars and returns its own (one actor round trip);
* ``gradients W=1,2``: the same forward-gradient steps, but data-parallel the way backprop
  must do it: each worker returns its dense gradient estimate (n float32) and receives the
  average (n float32): what exchanging gradients costs with the same compute.

Bytes per step: all traffic on the loopback interface during the timed steps (psutil; the
cluster's heartbeats included), divided by the steps.  Then a projection for 8-64 workers.
On a 2-core machine 2 workers + the driver + the scheduler share 2 cores: timings are noisy
and the 2-worker numbers show overhead, not speed-up.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("FWDJIT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "fwdjit"))


def _data(n=4096, seed=0):
    r = np.random.default_rng(seed)
    X = r.random((n, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[r.integers(0, 10, n)]
    return X, Y


class GradientWorker:
    """Data-parallel with gradients exchanged: returns d v (n floats), receives the average."""

    def __init__(self, loss, params, data, cfg, part, cache_dir):
        from fwdjit.training.distributed import StepWorker
        self.w = StepWorker(loss, params, data, (), cfg, part, None, cache_dir, 1)
        self.lr = cfg["lr"]

    def step(self, t, gavg):
        st = self.w.st
        if gavg is not None:
            off = 0
            for p in st.P:
                p.reshape(-1)[:] -= np.float32(self.lr) * gavg[off:off + p.size]
                off += p.size
        _, d = self.w._jvp(t)
        return np.concatenate([np.float32(d[0]) * v.reshape(-1) for v in st.V])


def _lo_bytes():
    import psutil
    c = psutil.net_io_counters(pernic=True).get("lo")
    return c.bytes_sent if c is not None else 0


def run(quick=False):
    import fwdjit
    from distributed import Client, LocalCluster
    from fwdjit.experiments.models import init, logreg_loss, mlp_loss
    from fwdjit.training import distributed as dist
    from fwdjit.training.loop import make_optimizer

    X, Y = _data()
    out = {"machine": f"{os.cpu_count()} CPUs (busy, shared)", "models": {}}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        addrs = sorted(client.scheduler_info(n_workers=-1)["workers"])
        lat = dist.actor_latency(client, n=100 if quick else 300)
        out["latency"] = lat
        print(f"actor round trip: one worker median {lat['one_worker_median_s'] * 1e3:.2f} ms "
              f"(p90 {lat['one_worker_p90_s'] * 1e3:.2f}), both workers at once "
              f"{lat['all_workers_median_s'] * 1e3:.2f} ms (p90 {lat['all_workers_p90_s'] * 1e3:.2f})")
        for model, loss, steps in (("softmax", logreg_loss, 100 if quick else 400),
                                   ("mlp", mlp_loss, 20 if quick else 80)):
            P = init("logreg" if model == "softmax" else "mlp", seed=0)
            n = int(sum(p.size for p in P))
            kw = dict(batch_size=64, lr=1e-3, seed=1, progress=False)
            rows = {}
            fwdjit.train(loss, P, (X, Y), steps=3, **kw)                 # compile
            t0 = time.perf_counter()
            ref = fwdjit.train(loss, P, (X, Y), steps=steps, **kw)
            rows["single"] = {"steps_s": steps / (time.perf_counter() - t0), "bytes_step": 0}
            for W in (1, 2):
                ws = addrs[:W]
                dist.train_distributed(loss, P, (X, Y), steps=2, client=client, workers=ws, **kw)   # compile
                mark = {}

                def on_step(t, drv, mark=mark, last=steps - 1):
                    if t == 0 or t == last:         # steps 1..last: the exchange only (no data placement)
                        mark[t] = (time.perf_counter(), _lo_bytes())

                res = dist.train_distributed(loss, P, (X, Y), steps=steps, client=client, workers=ws,
                                             on_step=on_step, **kw)
                (t0, b0), (t1, b1) = mark[0], mark[steps - 1]
                rows[f"scalars W={W}"] = {"steps_s": (steps - 1) / (t1 - t0), "bytes_step": (b1 - b0) / (steps - 1),
                                          "round_trip_median_ms": float(np.median(res.round_trip)) * 1e3}
                if W == 2:
                    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ref.params, res.params))
                    rows[f"scalars W={W}"]["max_abs_diff_vs_single"] = diff
                # gradients exchanged
                cfg = dist._config(loss.__name__, P, steps=steps, batch_size=64, lr=1e-3, lr_decay=0.0,
                                   optimizer=make_optimizer("sgd"), n_directions=1, distribution="normal", seed=1,
                                   clip=None, directions="dense", rank=1, parallel="data", n_workers=W)
                parts = dist._split(64, W)
                actors = [client.submit(GradientWorker, loss, P, client.scatter([X, Y], workers=[a], hash=False),
                                        cfg, ("data",) + parts[w], os.environ["FWDJIT_CACHE_DIR"], actor=True,
                                        workers=[a], pure=False).result() for w, a in enumerate(ws)]
                g = None
                for t in range(2):
                    gs = [f.result() for f in [a.step(t, g) for a in actors]]
                    g = sum(gs) / W
                b0 = _lo_bytes()
                t0 = time.perf_counter()
                for t in range(2, 2 + steps):
                    gs = [f.result() for f in [a.step(t, g) for a in actors]]
                    g = sum(gs) / W
                dt = time.perf_counter() - t0
                b1 = _lo_bytes()
                rows[f"gradients W={W}"] = {"steps_s": steps / dt, "bytes_step": (b1 - b0) / steps}
                del actors
            out["models"][model] = {"n_params": n, "steps": steps, "rows": rows}
            print(f"\n{model} ({n:,} parameters, batch 64, {steps} steps)")
            print(f"  {'':14s} {'steps/s':>9s} {'bytes/step':>12s}")
            for k, r in rows.items():
                print(f"  {k:14s} {r['steps_s']:9.1f} {r['bytes_step']:12,.0f}"
                      + (f"   (max |diff| vs single {r['max_abs_diff_vs_single']:.1e})"
                         if "max_abs_diff_vs_single" in r else ""))
    out["projection"] = projection(out)
    return out


def projection(out, bandwidth=1.25e9, net_latency=50e-6, per_message=50e-6):
    """Per-step seconds for W workers, data-parallel, global batch 64 (a model on paper).

    compute(W) = t_single / W (the shard shrinks; optimistic at small shards);
    scalars: + the measured actor round trip to one worker (software) + network latency +
    (W - 1) x ``per_message`` (the driver sends and receives one ~100-byte message per worker;
    an assumed 50 us each: the increment measured here, 2 workers + driver on 2 cores, is
    CPU contention, not a per-message cost);
    gradients (ring all-reduce, the best case for exchanging n float32):
    + 2 (W-1)/W x 4n / bandwidth + 2 (W-1) x network latency.  bandwidth: 10 GbE.
    """
    lat = out["latency"]
    rt1 = lat["one_worker_median_s"]
    per_w = per_message
    rows = {}
    print(f"\nprojection (10 GbE {bandwidth / 1e9:.2f} GB/s, {net_latency * 1e6:.0f} us network latency, "
          f"actor round trip {rt1 * 1e3:.2f} ms measured here + {per_w * 1e3:.2f} ms per extra worker assumed)")
    for model, m in out["models"].items():
        n = m["n_params"]
        t1 = 1.0 / m["rows"]["single"]["steps_s"]
        rows[model] = {}
        print(f"  {model}: ms per step       " + "  ".join(f"W={W:<3d}" for W in (8, 16, 32, 64)))
        sc, gr = [], []
        for W in (8, 16, 32, 64):
            comp = t1 / W
            s = comp + rt1 + (W - 1) * per_w + net_latency
            g = comp + 2 * (W - 1) / W * 4 * n / bandwidth + 2 * (W - 1) * net_latency
            rows[model][W] = {"scalars_ms": s * 1e3, "gradients_ms": g * 1e3,
                              "scalars_bytes_per_worker": 2 * 8 + 200, "gradients_bytes_per_worker": 2 * 4 * n}
            sc.append(s)
            gr.append(g)
        print("    scalars              " + "  ".join(f"{x * 1e3:6.2f}" for x in sc))
        print("    gradients (ring)     " + "  ".join(f"{x * 1e3:6.2f}" for x in gr))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    out = run(a.quick)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
