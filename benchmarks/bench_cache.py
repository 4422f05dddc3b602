"""First-call time in a fresh process: cold cache vs warm cache.

    python -m benchmarks.bench_cache               # all functions, 2 repeats
    python -m benchmarks.bench_cache --repeats 3 --json benchmarks/results/cache.json

For each function a new Python process imports fwdjit, decorates the
function and times, in this order,

* ``import``: ``import numpy, fwdjit`` (and the function's module);
* ``primal``: the first call ``f(*args)``;
* ``jvp``: the first call ``f.jvp(primals, tangents)``;

first with an empty cache folder (``FWDJIT_CACHE_DIR`` pointing at a fresh
temporary folder: everything is generated and compiled), then again with the
folder the first process filled (Numba loads the machine code from
``__pycache__``).  ``total`` is the child's wall time from start to the end
of the first jvp, Python start-up excluded.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from fwdjit import fwdjit
sys.path.insert(0, sys.argv[1])
import functions as F
t1 = time.perf_counter()
name = sys.argv[2]
rng = np.random.default_rng(0)
if name == "rosenbrock":
    fn, args = F.rosenbrock, (rng.standard_normal(1000),)
    tans = (np.ones(1000),)
elif name == "lorenz_rk4":
    fn, args = F.lorenz_rk4, (10.0, 28.0, 8.0 / 3.0, 1.0, 1.0, 1.0, 1e-3, 1000)
    tans = (1.0, 0.0, 0.0, None, None, None, None, None)
elif name == "mlp_loss":
    X = rng.standard_normal((64, 784)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    W1 = (rng.standard_normal((784, 128)) * 0.05).astype(np.float32)
    W2 = (rng.standard_normal((128, 128)) * 0.05).astype(np.float32)
    W3 = (rng.standard_normal((128, 10)) * 0.05).astype(np.float32)
    b1, b2, b3 = (np.zeros(128, np.float32), np.zeros(128, np.float32), np.zeros(10, np.float32))
    fn, args = F.mlp_loss, (W1, b1, W2, b2, W3, b3, X, Y)
    tans = tuple(np.ones_like(a) for a in args[:6]) + (None, None)
elif name == "softmax_loss":
    X = rng.standard_normal((64, 784)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    W = (rng.standard_normal((784, 10)) * 0.05).astype(np.float32)
    b = np.zeros(10, np.float32)
    fn, args = F.softmax_loss, (W, b, X, Y)
    tans = (np.ones_like(W), np.ones_like(b), None, None)
else:
    raise SystemExit("unknown function " + name)
f = fwdjit(fn)
t2 = time.perf_counter()
f(*args)
t3 = time.perf_counter()
f.jvp(args, tans)
t4 = time.perf_counter()
st = f.jvp.dispatcher.stats
print(json.dumps({"import": t1 - t0, "decorate": t2 - t1, "primal": t3 - t2, "jvp": t4 - t3, "total": t4 - t0,
                  "jvp_cache_hits": sum(st.cache_hits.values())}))
"""

FUNCTIONS = ["rosenbrock", "softmax_loss", "mlp_loss", "lorenz_rk4"]


def child(name, cache):
    env = dict(os.environ)
    env["FWDJIT_CACHE_DIR"] = cache
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", CHILD, os.path.join(ROOT, "tests"), name], env=env,
                         capture_output=True, text=True, check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--only", nargs="*", default=FUNCTIONS)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    rows = []
    for name in args.only:
        for rep in range(args.repeats):
            cache = tempfile.mkdtemp(prefix="fwdjit-bench-cache-")
            try:
                cold = child(name, cache)
                warm = child(name, cache)
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            rows.append({"function": name, "repeat": rep, "cold": cold, "warm": warm})
            print(f"{name:14s} cold: import {cold['import']:.2f}s primal {cold['primal']:.2f}s jvp {cold['jvp']:.2f}s"
                  f" total {cold['total']:.2f}s | warm: import {warm['import']:.2f}s primal {warm['primal']:.2f}s "
                  f"jvp {warm['jvp']:.2f}s total {warm['total']:.2f}s (jvp cache hits {warm['jvp_cache_hits']})",
                  flush=True)
    print()
    print("| function | cold primal | cold jvp | cold total | warm primal | warm jvp | warm total |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only:
        rs = [r for r in rows if r["function"] == name]

        def med(kind, key):
            v = sorted(r[kind][key] for r in rs)
            return v[len(v) // 2]
        print(f"| {name} | {med('cold', 'primal'):.2f} s | {med('cold', 'jvp'):.2f} s | {med('cold', 'total'):.2f} s "
              f"| {med('warm', 'primal'):.2f} s | {med('warm', 'jvp'):.2f} s | {med('warm', 'total'):.2f} s |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "python": sys.version, "load": os.getloadavg()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
