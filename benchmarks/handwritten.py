"""Hand-written Numba forward-mode tangents: the "expert" reference.

Each ``*_jvp`` function is what a person would write by hand: the same
algorithm as the plain workload in ``tests/functions.py``, carrying value and
tangent side by side, in the same array-expression style as the primal.  No
algebraic shortcuts that the primal does not take (e.g. the tangent of the row
max in the softmax is carried although it cancels mathematically).

Calling convention = ``f.tangent_function(active=...)`` of the API contract:
all primal arguments first, then the tangents of the active arguments in order;
returns ``(y, dy)`` (tuples for tuple outputs).

Only deliberate deviation from the plain functions: float32 workloads use
dtype-preserving constants (``np.maximum(z, 0)`` rather than
``np.maximum(z, 0.0)``), because under Numba's typing rules
``float32_array op float64_literal`` promotes to float64 (NumPy 2 / NEP 50 does
not).  The hand-written code stays in float32 throughout, as an expert would.

Run ``python -m benchmarks.handwritten`` to check every tangent against central
differences (float64).
"""
import numpy as np
import numba

njit = numba.njit


# ---------------------------------------------------------------------------
# Rosenbrock
# ---------------------------------------------------------------------------

@njit
def rosenbrock_jvp(x, dx):
    a = x[1:] - x[:-1] ** 2
    c = 1.0 - x[:-1]
    y = np.sum(100.0 * a ** 2 + c ** 2)
    dy = np.sum(200.0 * a * (dx[1:] - 2.0 * x[:-1] * dx[:-1]) - 2.0 * c * dx[:-1])
    return y, dy


@njit
def rosenbrock_jvp_loop(x, dx):
    """Extra reference only: single fused pass, no temporaries (not the
    'same style' reference; shows the ceiling for array code)."""
    y = 0.0
    dy = 0.0
    for i in range(x.shape[0] - 1):
        a = x[i + 1] - x[i] * x[i]
        da = dx[i + 1] - 2.0 * x[i] * dx[i]
        c = 1.0 - x[i]
        y += 100.0 * a * a + c * c
        dy += 200.0 * a * da - 2.0 * c * dx[i]
    return y, dy


# ---------------------------------------------------------------------------
# Softmax regression loss (mean cross-entropy, stable log-softmax)
# ---------------------------------------------------------------------------

@njit
def softmax_loss_jvp(W, b, X, Y, dW, db):
    logits = X @ W + b
    dlogits = X @ dW + db
    n = logits.shape[0]
    m = np.zeros(n, dtype=logits.dtype)
    dm = np.zeros(n, dtype=logits.dtype)
    for i in range(n):
        j = np.argmax(logits[i])
        m[i] = logits[i, j]
        dm[i] = dlogits[i, j]
    z = logits - m.reshape((-1, 1))
    dz = dlogits - dm.reshape((-1, 1))
    e = np.exp(z)
    s = np.sum(e, axis=1)
    lse = np.log(s)
    dlse = np.sum(e * dz, axis=1) / s
    logp = z - lse.reshape((-1, 1))
    dlogp = dz - dlse.reshape((-1, 1))
    return -np.sum(Y * logp) / X.shape[0], -np.sum(Y * dlogp) / X.shape[0]


@njit
def softmax_loss_jvp_fused(W, b, X, Y, dW, db):
    """Extra reference: the two products, then one pass per row (max, exp-sum, loss)
    computing value and tangent together, no temporaries (the ceiling for fusion)."""
    logits = X @ W
    dlogits = X @ dW
    n, k = logits.shape
    y = logits[0, 0] * 0
    dy = y
    for i in range(n):
        m = logits[i, 0] + b[0]
        dm = dlogits[i, 0] + db[0]
        for j in range(1, k):
            v = logits[i, j] + b[j]
            if v > m:
                m = v
                dm = dlogits[i, j] + db[j]
        s = y * 0
        ds = s
        for j in range(k):
            e = np.exp(logits[i, j] + b[j] - m)
            s += e
            ds += e * (dlogits[i, j] + db[j] - dm)
        lse = np.log(s)
        dlse = ds / s
        for j in range(k):
            y += Y[i, j] * (logits[i, j] + b[j] - m - lse)
            dy += Y[i, j] * (dlogits[i, j] + db[j] - dm - dlse)
    return -y / n, -dy / n


# ---------------------------------------------------------------------------
# Smoothed total variation (a reduction of an elementwise expression)
# ---------------------------------------------------------------------------

def tv_smooth(x):
    """The plain function (array form) fwdjit transforms."""
    return np.sum(np.sqrt((x[1:] - x[:-1]) ** 2 + 1e-3))


@njit
def tv_smooth_jvp(x, dx):
    d = x[1:] - x[:-1]
    r = np.sqrt(d ** 2 + 1e-3)
    return np.sum(r), np.sum(d * (dx[1:] - dx[:-1]) / r)


@njit
def tv_smooth_jvp_loop(x, dx):
    y = 0.0
    dy = 0.0
    for i in range(x.shape[0] - 1):
        d = x[i + 1] - x[i]
        r = np.sqrt(d * d + 1e-3)
        y += r
        dy += d * (dx[i + 1] - dx[i]) / r
    return y, dy


# ---------------------------------------------------------------------------
# MLP 784-1024-1024-10, ReLU, mean cross-entropy
# ---------------------------------------------------------------------------

def mlp_loss_dtype_safe(W1, b1, W2, b2, W3, b3, X, Y):
    """tests.functions.mlp_loss with a dtype-preserving ReLU constant.

    Under Numba, ``np.maximum(float32_array, 0.0)`` is float64, and the next
    ``float64 @ float32`` matmul does not type, so ``numba.njit(mlp_loss)``
    fails for float32 inputs.  ``np.maximum(., 0)`` keeps float32.  Plain
    (undecorated) so that fwdjit can also transform it."""
    h1 = np.maximum(X @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    logits = h2 @ W3 + b3
    m = np.zeros(logits.shape[0], dtype=logits.dtype)
    for i in range(logits.shape[0]):
        m[i] = np.max(logits[i])
    z = logits - m.reshape((-1, 1))
    lse = np.log(np.sum(np.exp(z), axis=1))
    logp = z - lse.reshape((-1, 1))
    return -np.sum(Y * logp) / X.shape[0]


mlp_loss_primal = njit(mlp_loss_dtype_safe)


@njit
def mlp_loss_jvp(W1, b1, W2, b2, W3, b3, X, Y, dW1, db1, dW2, db2, dW3, db3):
    a1 = X @ W1 + b1
    da1 = X @ dW1 + db1
    h1 = np.maximum(a1, 0)
    dh1 = da1 * (a1 > 0)
    a2 = h1 @ W2 + b2
    da2 = dh1 @ W2 + h1 @ dW2 + db2
    h2 = np.maximum(a2, 0)
    dh2 = da2 * (a2 > 0)
    logits = h2 @ W3 + b3
    dlogits = dh2 @ W3 + h2 @ dW3 + db3
    n = logits.shape[0]
    m = np.zeros(n, dtype=logits.dtype)
    dm = np.zeros(n, dtype=logits.dtype)
    for i in range(n):
        j = np.argmax(logits[i])
        m[i] = logits[i, j]
        dm[i] = dlogits[i, j]
    z = logits - m.reshape((-1, 1))
    dz = dlogits - dm.reshape((-1, 1))
    e = np.exp(z)
    s = np.sum(e, axis=1)
    lse = np.log(s)
    dlse = np.sum(e * dz, axis=1) / s
    logp = z - lse.reshape((-1, 1))
    dlogp = dz - dlse.reshape((-1, 1))
    return -np.sum(Y * logp) / X.shape[0], -np.sum(Y * dlogp) / X.shape[0]


# ---------------------------------------------------------------------------
# Lorenz system, RK4, scalar loop; active: sigma, rho, beta
# ---------------------------------------------------------------------------

@njit
def lorenz_rk4_jvp(sigma, rho, beta, x0, y0, z0, dt, n_steps,
                   dsigma, drho, dbeta):
    x = x0
    y = y0
    z = z0
    dx = 0.0
    dy = 0.0
    dz = 0.0
    h = 0.5 * dt
    for _ in range(n_steps):
        k1x = sigma * (y - x)
        dk1x = dsigma * (y - x) + sigma * (dy - dx)
        k1y = x * (rho - z) - y
        dk1y = dx * (rho - z) + x * (drho - dz) - dy
        k1z = x * y - beta * z
        dk1z = dx * y + x * dy - (dbeta * z + beta * dz)

        x2 = x + h * k1x
        dx2 = dx + h * dk1x
        y2 = y + h * k1y
        dy2 = dy + h * dk1y
        z2 = z + h * k1z
        dz2 = dz + h * dk1z
        k2x = sigma * (y2 - x2)
        dk2x = dsigma * (y2 - x2) + sigma * (dy2 - dx2)
        k2y = x2 * (rho - z2) - y2
        dk2y = dx2 * (rho - z2) + x2 * (drho - dz2) - dy2
        k2z = x2 * y2 - beta * z2
        dk2z = dx2 * y2 + x2 * dy2 - (dbeta * z2 + beta * dz2)

        x3 = x + h * k2x
        dx3 = dx + h * dk2x
        y3 = y + h * k2y
        dy3 = dy + h * dk2y
        z3 = z + h * k2z
        dz3 = dz + h * dk2z
        k3x = sigma * (y3 - x3)
        dk3x = dsigma * (y3 - x3) + sigma * (dy3 - dx3)
        k3y = x3 * (rho - z3) - y3
        dk3y = dx3 * (rho - z3) + x3 * (drho - dz3) - dy3
        k3z = x3 * y3 - beta * z3
        dk3z = dx3 * y3 + x3 * dy3 - (dbeta * z3 + beta * dz3)

        x4 = x + dt * k3x
        dx4 = dx + dt * dk3x
        y4 = y + dt * k3y
        dy4 = dy + dt * dk3y
        z4 = z + dt * k3z
        dz4 = dz + dt * dk3z
        k4x = sigma * (y4 - x4)
        dk4x = dsigma * (y4 - x4) + sigma * (dy4 - dx4)
        k4y = x4 * (rho - z4) - y4
        dk4y = dx4 * (rho - z4) + x4 * (drho - dz4) - dy4
        k4z = x4 * y4 - beta * z4
        dk4z = dx4 * y4 + x4 * dy4 - (dbeta * z4 + beta * dz4)

        c = dt / 6.0
        x = x + c * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        dx = dx + c * (dk1x + 2.0 * dk2x + 2.0 * dk3x + dk4x)
        y = y + c * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
        dy = dy + c * (dk1y + 2.0 * dk2y + 2.0 * dk3y + dk4y)
        z = z + c * (k1z + 2.0 * k2z + 2.0 * k3z + k4z)
        dz = dz + c * (dk1z + 2.0 * dk2z + 2.0 * dk3z + dk4z)
    return (x, y, z), (dx, dy, dz)


# ---------------------------------------------------------------------------
# Central-difference check
# ---------------------------------------------------------------------------

def _fd(fn, primals, active, tangents, h):
    """Central difference of fn along the tangent direction (float64)."""
    def shifted(s):
        args = list(primals)
        it = iter(tangents)
        for k, a in enumerate(active):
            if a:
                args[k] = args[k] + s * h * next(it)
        return fn(*args)
    fp, fm = shifted(+1.0), shifted(-1.0)
    if isinstance(fp, tuple):
        return tuple((np.asarray(p) - np.asarray(m)) / (2 * h) for p, m in zip(fp, fm))
    return (np.asarray(fp) - np.asarray(fm)) / (2 * h)


def check_all(verbose=True):
    """Check each hand-written tangent against central differences in float64
    (and the float32 run against the float64 run).  Returns a dict of
    name -> (max relative error, ok)."""
    import sys
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks import workloads as W

    out = {}

    def report(name, got, ref, rtol):
        got = np.atleast_1d(np.asarray(got, dtype=np.float64))
        ref = np.atleast_1d(np.asarray(ref, dtype=np.float64))
        err = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)))
        ok = bool(np.allclose(got, ref, rtol=rtol, atol=0.0))
        out[name] = (err, ok)
        if verbose:
            print(f"  {name:32s} rel.err {err:9.2e}  (rtol {rtol:.0e})  {'OK' if ok else 'FAIL'}")

    for wl in W.all_workloads(quick=True):
        p64 = tuple(np.asarray(a, dtype=np.float64) if isinstance(a, np.ndarray) else a
                    for a in wl.primals)
        t64 = tuple(np.asarray(t, dtype=np.float64) if isinstance(t, np.ndarray) else t
                    for t in wl.tangents)
        ref = _fd(wl.plain, p64, wl.active, t64, wl.fd_h)
        y, dy = wl.handwritten(*p64, *t64)
        if isinstance(dy, tuple):
            dy = np.array(dy)
            ref = np.array(ref)
        report(f"{wl.name} (float64 vs FD)", dy, ref, wl.fd_rtol)
        if wl.dtype == np.float32:
            y32, dy32 = wl.handwritten(*wl.primals, *wl.tangents)
            report(f"{wl.name} (float32 vs float64)", dy32, np.asarray(dy), 1e-3)
        if wl.name.startswith("rosenbrock"):
            _, dyl = rosenbrock_jvp_loop(*p64, *t64)
            report(f"{wl.name} loop variant", dyl, dy, 1e-10)
    return out


if __name__ == "__main__":
    res = check_all()
    raise SystemExit(0 if all(ok for _, ok in res.values()) else 1)
