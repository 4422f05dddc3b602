"""Shared pieces of the forward-gradient benchmarks (bench_forward_step, bench_time_to_accuracy).

* ``worker_env(pinned)``: the environment a benchmark worker is re-executed
  with.  ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are removed (test
  machines force AVX2 kernels with them; benchmarks run the CPU's own kernel),
  for the worker only: the caller's environment, tests and CI keep them.
  ``pinned``: one BLAS/XLA thread (the worker also pins itself to one CPU).
* ``pin_one_cpu()``, ``fwdjit_side()`` / ``jax_side()`` (what each side ran
  with: BLAS kernel and threads from ``threadpoolctl.threadpool_info()``,
  JAX's device and XLA flags), ``lowrank_support()``, ``md_table()``.

Equivalent by hand: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_forward_step``.
"""
from __future__ import annotations

import inspect
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def worker_env(pinned=True, keep_blas_env=False):
    env = dict(os.environ)
    removed = {}
    if not keep_blas_env:
        for k in UNSET:
            if k in env:
                removed[k] = env.pop(k)
    if pinned:
        for k in THREAD_VARS:
            env[k] = "1"
        env["FWDJIT_BLAS_THREADS"] = "1"
        flags = env.get("XLA_FLAGS", "")
        if XLA_ONE_THREAD not in flags:
            env["XLA_FLAGS"] = (flags + " " + XLA_ONE_THREAD).strip()
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["BENCH_PARENT_REMOVED"] = ",".join(f"{k}={v}" for k, v in removed.items())
    return env


def run_worker(module, args, pinned=True, keep_blas_env=False, tag="@@RESULT@@"):
    """Run ``python -m module args`` in a clean worker; returns (parsed JSON result, stdout)."""
    import json
    cmd = [sys.executable, "-m", module] + list(args)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(pinned, keep_blas_env), stdout=subprocess.PIPE,
                            stderr=None, text=True)
    out = []
    for line in proc.stdout:            # progress lines go through as they come
        if line.startswith(tag):
            out.append(line)
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
    if proc.wait() != 0:
        raise SystemExit(f"worker {module} failed (exit {proc.returncode})")
    return json.loads(out[-1][len(tag):])


def pin_one_cpu():
    """Pin this process to its last allowed CPU (None where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    return None


def fwdjit_side():
    """BLAS libraries as threadpoolctl sees them, fwdjit's BLAS-thread setting, environment."""
    from fwdjit.training import blas
    info = [{k: d.get(k) for k in ("filepath", "version", "architecture", "num_threads", "threading_layer")}
            for d in blas.blas_info()]
    return {"blas": info, "fwdjit_blas_threads": blas.get_blas_threads(),
            "available_cpus": blas.available_cpus(),
            "env": {k: os.environ.get(k) for k in UNSET + THREAD_VARS + ("FWDJIT_BLAS_THREADS",)},
            "removed_by_runner": os.environ.get("BENCH_PARENT_REMOVED", "")}


def jax_side():
    import jax
    try:
        import jaxlib
        jl = jaxlib.__version__
    except Exception:       # pragma: no cover
        jl = "?"
    try:
        from jax.extend import backend as _b
        pv = _b.get_backend().platform_version
    except Exception:       # pragma: no cover
        pv = "?"
    return {"jax": jax.__version__, "jaxlib": jl, "backend": jax.default_backend(), "platform_version": pv,
            "devices": [str(d) for d in jax.devices()], "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "x64": bool(jax.config.jax_enable_x64)}


def describe_sides(fj, jx):
    lines = []
    for d in fj["blas"]:
        lines.append(f"fwdjit side: BLAS {os.path.basename(d['filepath'] or '?')} {d['version']}, kernel "
                     f"{d['architecture']}, {d['num_threads']} thread(s) in the pool now; fwdjit sets "
                     f"{fj['fwdjit_blas_threads']} around its calls ({fj['available_cpus']} CPU(s) available)")
    env = {k: v for k, v in fj["env"].items() if v is not None}
    lines.append(f"fwdjit side env: {env}; removed by the runner: {fj['removed_by_runner'] or 'nothing (not set)'}")
    if jx:
        lines.append(f"JAX side: JAX {jx['jax']} (jaxlib {jx['jaxlib']}), backend {jx['backend']}, devices "
                     f"{', '.join(jx['devices'])}, XLA_FLAGS={jx['XLA_FLAGS']!r}, affinity CPUs {jx['affinity']}")
    return lines


def lowrank_support():
    """(train_ok, forward_grad_ok, message): whether the low-rank API of issue 13 is there."""
    from fwdjit import forward_grad, train
    t = "directions" in inspect.signature(train).parameters
    f = "directions" in inspect.signature(forward_grad).parameters
    msg = None if (t and f) else (
        "low-rank directions skipped: this fwdjit's " + " and ".join(
            n for n, ok in (("train", t), ("forward_grad", f)) if not ok)
        + " do(es) not accept directions= yet (issue 13's API, branch issue-13)")
    return t, f, msg


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt_t(s):
    if s is None:
        return "-"
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"
