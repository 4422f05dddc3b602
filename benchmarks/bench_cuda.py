"""GPU benchmark of fwdjit's CUDA target (needs an NVIDIA GPU; not run in CI).

Two workloads, batched JVPs in one kernel launch each:

1. **Elementwise** ``f(x) = sin(x) * x + 0.5 * x * x`` over ``--n-elem``
   inputs (default 1e8): ``jvp_map((x,), (dx,))`` on device arrays, outputs
   written into preallocated device arrays.  Memory bound: reported as bytes
   moved (read x, dx; write out, dout) per second, against the GPU's peak
   bandwidth (from the device attributes) and a measured device-to-device
   copy.  Target: >= 70 % of bandwidth.
2. **Lorenz sensitivities**: RK4 integration (``--steps`` steps) for
   ``--n-lorenz`` parameter sets (default 1e6) with d(x, y, z)/d(sigma, rho,
   beta): ``jacobian_map`` (3 JVPs per parameter set, one launch).

Both are compared with ``jax.jit(jax.vmap(jax.jvp))`` on the same GPU when
JAX with CUDA is installed (target: >= 1.0x JAX's throughput).  Times are the
median of ``--repeat`` runs after a warm-up (compilation excluded), measured
with CUDA events around the launch for fwdjit and ``block_until_ready`` for
JAX.

    python benchmarks/bench_cuda.py                       # float32, full sizes
    python benchmarks/bench_cuda.py --dtype float64 --json benchmarks/results/cuda.json
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_cuda.py --dry-run   # checks the script, no GPU

``--dry-run`` uses tiny sizes (and the CUDA simulator if it is on, JAX on the
CPU if that is all there is) to check that every code path runs; its numbers
mean nothing.
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fwdjit.targets.cuda import cuda_fwdjit, simulator_enabled  # noqa: E402


# ---------------------------------------------------------------- workloads
def elementwise(x):
    return math.sin(x) * x + 0.5 * x * x


def lorenz_rk4(sigma, rho, beta, x0, y0, z0, dt, n_steps):
    x = x0
    y = y0
    z = z0
    for _ in range(n_steps):
        k1x = sigma * (y - x)
        k1y = x * (rho - z) - y
        k1z = x * y - beta * z
        x2 = x + 0.5 * dt * k1x
        y2 = y + 0.5 * dt * k1y
        z2 = z + 0.5 * dt * k1z
        k2x = sigma * (y2 - x2)
        k2y = x2 * (rho - z2) - y2
        k2z = x2 * y2 - beta * z2
        x3 = x + 0.5 * dt * k2x
        y3 = y + 0.5 * dt * k2y
        z3 = z + 0.5 * dt * k2z
        k3x = sigma * (y3 - x3)
        k3y = x3 * (rho - z3) - y3
        k3z = x3 * y3 - beta * z3
        x4 = x + dt * k3x
        y4 = y + dt * k3y
        z4 = z + dt * k3z
        k4x = sigma * (y4 - x4)
        k4y = x4 * (rho - z4) - y4
        k4z = x4 * y4 - beta * z4
        x = x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y = y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        z = z + dt / 6.0 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
    return x, y, z


# ------------------------------------------------------------------ timing
def _cuda_time(fn, repeat):
    """Median seconds of fn() between two CUDA events (after one warm-up call)."""
    from numba import cuda
    fn()
    cuda.synchronize()
    times = []
    for _ in range(repeat):
        if simulator_enabled():
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
            continue
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cuda.event_elapsed_time(start, end) / 1e3)
    return statistics.median(times)


def _wall_time(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def device_info():
    from numba import cuda
    if simulator_enabled():
        return {"name": "CUDA simulator", "peak_bandwidth_GBs": None}
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    info = {"name": name, "compute_capability": list(dev.compute_capability)}
    try:
        clock_khz = dev.MEMORY_CLOCK_RATE
        bus_bits = dev.GLOBAL_MEMORY_BUS_WIDTH
        info["peak_bandwidth_GBs"] = 2.0 * clock_khz * 1e3 * bus_bits / 8 / 1e9
    except Exception as exc:   # attribute names differ between numba-cuda versions
        info["peak_bandwidth_GBs"] = None
        info["peak_bandwidth_error"] = str(exc)
    return info


def measured_copy_bandwidth(nbytes, repeat):
    """Device-to-device copy of ``nbytes``: GB/s counting the read and the write."""
    from numba import cuda
    n = nbytes // 4
    a = cuda.device_array(n, np.float32)
    b = cuda.device_array(n, np.float32)
    t = _cuda_time(lambda: b.copy_to_device(a), repeat)
    return 2.0 * n * 4 / t / 1e9


# ------------------------------------------------------------------- JAX
def _jax(allow_cpu):
    try:
        import jax
    except Exception:
        return None, "jax is not installed"
    try:
        gpus = jax.devices("gpu")
    except Exception:
        gpus = []
    if not gpus and not allow_cpu:
        return None, "jax has no GPU backend here"
    return jax, ("gpu" if gpus else "cpu (dry run)")


def jax_elementwise(jax, x_host, dx_host, repeat):
    import jax.numpy as jnp

    def f(x):
        return jnp.sin(x) * x + 0.5 * x * x

    jvp = jax.jit(jax.vmap(lambda x, dx: jax.jvp(f, (x,), (dx,))))
    x = jax.device_put(x_host)
    dx = jax.device_put(dx_host)
    return _wall_time(lambda: jax.block_until_ready(jvp(x, dx)), repeat)


def jax_lorenz(jax, sigma, rho, beta, dt, n_steps, repeat):
    import jax.numpy as jnp
    from jax import lax

    def f(p):
        sigma, rho, beta = p[0], p[1], p[2]
        one = jnp.ones((), p.dtype)

        def body(_, s):
            x, y, z = s
            k1x = sigma * (y - x)
            k1y = x * (rho - z) - y
            k1z = x * y - beta * z
            x2 = x + 0.5 * dt * k1x
            y2 = y + 0.5 * dt * k1y
            z2 = z + 0.5 * dt * k1z
            k2x = sigma * (y2 - x2)
            k2y = x2 * (rho - z2) - y2
            k2z = x2 * y2 - beta * z2
            x3 = x + 0.5 * dt * k2x
            y3 = y + 0.5 * dt * k2y
            z3 = z + 0.5 * dt * k2z
            k3x = sigma * (y3 - x3)
            k3y = x3 * (rho - z3) - y3
            k3z = x3 * y3 - beta * z3
            x4 = x + dt * k3x
            y4 = y + dt * k3y
            z4 = z + dt * k3z
            k4x = sigma * (y4 - x4)
            k4y = x4 * (rho - z4) - y4
            k4z = x4 * y4 - beta * z4
            return (x + dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x),
                    y + dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y),
                    z + dt / 6.0 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z))

        return jnp.stack(lax.fori_loop(0, n_steps, body, (one, one, one)))

    eye = jnp.eye(3, dtype=sigma.dtype)

    def sens(p):   # 3 JVPs (one per parameter) for one parameter set
        return jax.vmap(lambda v: jax.jvp(f, (p,), (v,)))(eye)

    run = jax.jit(jax.vmap(sens))
    p = jax.device_put(np.stack([sigma, rho, beta], axis=1))
    return _wall_time(lambda: jax.block_until_ready(run(p)), repeat)


# ------------------------------------------------------------------- main
def bench_elementwise(n, dtype, repeat, jax, results):
    from numba import cuda
    g = cuda_fwdjit(elementwise)
    rng = np.random.default_rng(0)
    x_host = rng.uniform(-2, 2, n).astype(dtype)
    dx_host = np.ones(n, dtype)
    x, dx = cuda.to_device(x_host), cuda.to_device(dx_host)
    out, dout = cuda.device_array(n, dtype), cuda.device_array(n, dtype)
    t = _cuda_time(lambda: g.jvp_map((x,), (dx,), out=(out, dout)), repeat)
    # correctness on a few elements
    o, d = out[:8].copy_to_host(), dout[:8].copy_to_host()
    xs = x_host[:8].astype(np.float64)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert np.allclose(o, np.sin(xs) * xs + 0.5 * xs * xs, rtol=tol, atol=tol)
    assert np.allclose(d, np.cos(xs) * xs + np.sin(xs) + xs, rtol=tol, atol=tol)
    nbytes = 4 * n * np.dtype(dtype).itemsize
    r = {"n": n, "dtype": np.dtype(dtype).name, "fwdjit_seconds": t, "fwdjit_GBs": nbytes / t / 1e9,
         "fwdjit_elements_per_s": n / t}
    if jax is not None:
        try:
            tj = jax_elementwise(jax, x_host, dx_host, repeat)
            r.update(jax_seconds=tj, jax_elements_per_s=n / tj, speedup_vs_jax=tj / t)
        except Exception as exc:   # out of memory, no x64, ...
            r["jax_error"] = f"{type(exc).__name__}: {exc}"[:300]
    results["elementwise"] = r
    return r


def bench_lorenz(n, n_steps, dtype, repeat, jax, results):
    from numba import cuda
    g = cuda_fwdjit(lorenz_rk4)
    rng = np.random.default_rng(1)
    sigma = rng.uniform(9.0, 11.0, n).astype(dtype)
    rho = rng.uniform(26.0, 30.0, n).astype(dtype)
    beta = rng.uniform(2.4, 2.9, n).astype(dtype)
    ds, dr, db = (cuda.to_device(a) for a in (sigma, rho, beta))
    one = dtype(1.0)
    dt = dtype(0.01)
    t = _cuda_time(lambda: g.jacobian_map((ds, dr, db, one, one, one, dt, n_steps), argnums=(0, 1, 2)), repeat)
    r = {"n": n, "n_steps": n_steps, "dtype": np.dtype(dtype).name, "fwdjit_seconds": t,
         "fwdjit_parameter_sets_per_s": n / t, "fwdjit_jvps_per_s": 3 * n / t}
    if jax is not None:
        try:
            tj = jax_lorenz(jax, sigma, rho, beta, float(dt), n_steps, repeat)
            r.update(jax_seconds=tj, jax_parameter_sets_per_s=n / tj, speedup_vs_jax=tj / t)
        except Exception as exc:
            r["jax_error"] = f"{type(exc).__name__}: {exc}"[:300]
    results["lorenz"] = r
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-elem", type=float, default=1e8, help="elementwise inputs (default 1e8)")
    ap.add_argument("--n-lorenz", type=float, default=1e6, help="Lorenz parameter sets (default 1e6)")
    ap.add_argument("--steps", type=int, default=200, help="RK4 steps (default 200)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, simulator / JAX on CPU allowed")
    a = ap.parse_args(argv)
    from numba import cuda
    if not simulator_enabled() and not cuda.is_available():
        print("bench_cuda: no CUDA GPU here (run on a GPU machine, or --dry-run under NUMBA_ENABLE_CUDASIM=1)")
        return 2
    dtype = np.float32 if a.dtype == "float32" else np.float64
    n_elem, n_lor, steps, repeat = int(a.n_elem), int(a.n_lorenz), a.steps, a.repeat
    if a.dry_run:
        n_elem, n_lor, steps, repeat = 256, 64, 10, 2
    jax, jax_where = (None, "disabled") if a.no_jax else _jax(allow_cpu=a.dry_run)
    if jax is not None and dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    info = device_info()
    results = {"device": info, "python": platform.python_version(), "jax": jax_where,
               "numba_cuda_simulator": simulator_enabled(), "dry_run": a.dry_run}
    print(f"device: {info['name']}   JAX: {jax_where}   dtype: {np.dtype(dtype).name}")

    e = bench_elementwise(n_elem, dtype, repeat, jax, results)
    peak = info.get("peak_bandwidth_GBs")
    copy_bw = measured_copy_bandwidth(min(4 * n_elem * np.dtype(dtype).itemsize, 2 ** 31), repeat)
    e["measured_copy_GBs"] = copy_bw
    line = (f"elementwise JVP, {n_elem:.0e} {np.dtype(dtype).name}: {e['fwdjit_seconds'] * 1e3:.3f} ms, "
            f"{e['fwdjit_GBs']:.1f} GB/s = {100 * e['fwdjit_GBs'] / copy_bw:.0f}% of a measured D2D copy "
            f"({copy_bw:.0f} GB/s)")
    if peak:
        e["fraction_of_peak_bandwidth"] = e["fwdjit_GBs"] / peak
        line += f", {100 * e['fwdjit_GBs'] / peak:.0f}% of peak ({peak:.0f} GB/s)"
    e["fraction_of_copy_bandwidth"] = e["fwdjit_GBs"] / copy_bw
    print(line)
    if "speedup_vs_jax" in e:
        print(f"    JAX jit(vmap(jvp)): {e['jax_seconds'] * 1e3:.3f} ms -> fwdjit is {e['speedup_vs_jax']:.2f}x JAX")
    elif "jax_error" in e:
        print(f"    JAX failed: {e['jax_error']}")

    lo = bench_lorenz(n_lor, steps, dtype, repeat, jax, results)
    print(f"Lorenz RK4 sensitivities, {n_lor:.0e} sets x {steps} steps x 3 JVPs: {lo['fwdjit_seconds'] * 1e3:.2f} ms "
          f"({lo['fwdjit_parameter_sets_per_s']:.3g} sets/s)")
    if "speedup_vs_jax" in lo:
        print(f"    JAX jit(vmap(jvp)): {lo['jax_seconds'] * 1e3:.2f} ms -> fwdjit is {lo['speedup_vs_jax']:.2f}x JAX")
    elif "jax_error" in lo:
        print(f"    JAX failed: {lo['jax_error']}")

    targets = {"elementwise_bandwidth_ge_70pct": e["fraction_of_copy_bandwidth"] >= 0.7}
    if "speedup_vs_jax" in e:
        targets["elementwise_ge_jax"] = e["speedup_vs_jax"] >= 1.0
    if "speedup_vs_jax" in lo:
        targets["lorenz_ge_jax"] = lo["speedup_vs_jax"] >= 1.0
    results["targets_met"] = targets
    print("targets:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in targets.items()),
          "(dry run: meaningless)" if a.dry_run else "")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print("wrote", a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
