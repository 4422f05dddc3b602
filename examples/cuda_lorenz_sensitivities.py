"""Sensitivities of a Lorenz-63 RK4 integration w.r.t. sigma, rho and beta, on the GPU.

One plain Python function integrates the Lorenz system with RK4.  fwdjit's
CUDA target turns it into a device function and its tangent, and
``jacobian_map`` evaluates, for every parameter set, the final state and its
3x3 Jacobian d(x, y, z)/d(sigma, rho, beta) in ONE kernel launch (one thread
per parameter set, one JVP per parameter inside the thread).

    python examples/cuda_lorenz_sensitivities.py            # 1,000,000 parameter sets on a GPU
    python examples/cuda_lorenz_sensitivities.py --n 64     # any size
    NUMBA_ENABLE_CUDASIM=1 python examples/cuda_lorenz_sensitivities.py   # no GPU: simulator, small N

Under Numba's CUDA simulator (no GPU) every thread runs as Python, so the
default size drops to 64 parameter sets.  ``--check`` compares a few
parameter sets with fwdjit's CPU target.
"""
import argparse
import os
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from fwdjit import fwdjit  # noqa: E402
from fwdjit.targets.cuda import cuda_fwdjit, simulator_enabled  # noqa: E402


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


lorenz_gpu = cuda_fwdjit(lorenz_rk4)


def parameter_sets(n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(9.0, 11.0, n).astype(dtype)
    rho = rng.uniform(26.0, 30.0, n).astype(dtype)
    beta = rng.uniform(2.4, 2.9, n).astype(dtype)
    return sigma, rho, beta


def sensitivities(sigma, rho, beta, dt=0.01, n_steps=200, x0=1.0, y0=1.0, z0=1.0):
    """Final states (n, 3) and Jacobians (n, 3, 3): J[i, a, b] = d state_a / d param_b."""
    from numba import cuda
    args = (sigma, rho, beta, x0, y0, z0, dt, n_steps)
    (x, y, z), jac = lorenz_gpu.jacobian_map(args, argnums=(0, 1, 2))
    on_device = not isinstance(x, np.ndarray)
    if on_device:
        x, y, z = (a.copy_to_host() for a in (x, y, z))
        jac = tuple(tuple(a.copy_to_host() for a in col) for col in jac)
    cuda.synchronize()
    states = np.stack([x, y, z], axis=1)
    J = np.stack([np.stack(col, axis=1) for col in jac], axis=2)   # (n, state, param)
    return states, J


def main(n=None, n_steps=200, dt=0.01, check=True, verbose=True, device_arrays=True, dtype=np.float64):
    from numba import cuda
    if n is None:
        n = 64 if simulator_enabled() else 1_000_000
    sigma, rho, beta = parameter_sets(n, dtype=dtype)
    if device_arrays:   # the inputs live on the GPU; so do the outputs until copied back
        d_sigma, d_rho, d_beta = (cuda.to_device(a) for a in (sigma, rho, beta))
    else:
        d_sigma, d_rho, d_beta = sigma, rho, beta
    sensitivities(sigma[:1], rho[:1], beta[:1], dt=dt, n_steps=n_steps)   # compile (cached on disk)
    t0 = time.perf_counter()
    states, J = sensitivities(d_sigma, d_rho, d_beta, dt=dt, n_steps=n_steps)
    elapsed = time.perf_counter() - t0
    result = {"n": n, "n_steps": n_steps, "seconds": elapsed,
              "parameter_sets_per_second": n / elapsed, "states": states, "jacobian": J}
    if verbose:
        where = "CUDA simulator" if simulator_enabled() else cuda.get_current_device().name
        where = where.decode() if isinstance(where, bytes) else where
        print(f"{n} parameter sets x {n_steps} RK4 steps on {where}: {elapsed:.4f} s "
              f"({n / elapsed:,.0f} sets/s, 3 JVPs each, one launch, incl. copy back)")
        print("first parameter set: sigma=%.4f rho=%.4f beta=%.4f" % (sigma[0], rho[0], beta[0]))
        print("  final state:", states[0])
        print("  d(x, y, z)/d(sigma, rho, beta):\n", J[0])
    if check:
        cpu = fwdjit(lorenz_rk4)
        worst = 0.0
        for i in sorted({0, n // 2, n - 1}):
            p = (float(sigma[i]), float(rho[i]), float(beta[i]), 1.0, 1.0, 1.0, dt, n_steps)
            for b in range(3):
                t = [None] * 8
                t[b] = 1.0
                out, dout = cpu.jvp(p, tuple(t))
                ref = np.array(dout)
                err = np.max(np.abs(J[i, :, b] - ref) / np.maximum(1.0, np.abs(ref)))
                worst = max(worst, err)
                ref_state = np.array(out)
                worst = max(worst, np.max(np.abs(states[i] - ref_state) / np.maximum(1.0, np.abs(ref_state))))
        result["max_rel_error"] = worst
        if verbose:
            print(f"max relative difference from the CPU target on 3 parameter sets: {worst:.2e}")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=float, default=None,
                    help="parameter sets (default 1e6 on a GPU, 64 under the simulator)")
    ap.add_argument("--steps", type=int, default=200, help="RK4 steps (default 200)")
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--float32", action="store_true", help="float32 parameters (float32 arithmetic)")
    ap.add_argument("--no-check", action="store_true", help="skip the comparison with the CPU target")
    a = ap.parse_args()
    main(n=None if a.n is None else int(a.n), n_steps=a.steps, dt=a.dt, check=not a.no_check,
         dtype=np.float32 if a.float32 else np.float64)
