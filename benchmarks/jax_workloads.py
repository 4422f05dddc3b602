"""JAX versions of the benchmark workloads (optional comparison column).

Same algorithms as tests/functions.py, written with jax.numpy; the Lorenz
loop uses lax.fori_loop.  Requires jax_enable_x64 (set by ``load``) so the
float64 workloads stay float64; float32 inputs stay float32.
"""


def load():
    """Return (jax, dict of name -> (primal_fn, n_static_tail)) or raise ImportError."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def _xent(logits, Y, n):
        m = jnp.max(logits, axis=1)
        z = logits - m.reshape((-1, 1))
        lse = jnp.log(jnp.sum(jnp.exp(z), axis=1))
        logp = z - lse.reshape((-1, 1))
        return -jnp.sum(Y * logp) / n

    def softmax_loss(W, b, X, Y):
        return _xent(X @ W + b, Y, X.shape[0])

    def mlp_loss(W1, b1, W2, b2, W3, b3, X, Y):
        h1 = jnp.maximum(X @ W1 + b1, 0.0)
        h2 = jnp.maximum(h1 @ W2 + b2, 0.0)
        return _xent(h2 @ W3 + b3, Y, X.shape[0])

    def lorenz_rk4(sigma, rho, beta, x0, y0, z0, dt, n_steps):
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
        return lax.fori_loop(0, n_steps, body, (x0, y0, z0))

    fns = {"rosenbrock": rosenbrock, "softmax_loss": softmax_loss,
           "mlp_loss": mlp_loss, "lorenz_rk4": lorenz_rk4}
    return jax, fns


def build(jax, fn, primals, active):
    """jit-compiled primal and JVP callables for JAX.

    Active arguments must be a prefix of the argument list (true for all
    workloads).  Python ints among the inactive arguments (n_steps) are bound
    statically.  Returns (primal_call, jvp_call, primal_args, jvp_args); the
    calls block until the result is ready."""
    import jax.numpy as jnp
    k = sum(active)
    assert all(active[:k]) and not any(active[k:])

    def conv(a):
        return a if isinstance(a, int) else jnp.asarray(a)

    act = tuple(conv(a) for a in primals[:k])
    rest_static = {i: a for i, a in enumerate(primals[k:]) if isinstance(a, int)}
    rest = tuple(conv(a) for i, a in enumerate(primals[k:]) if i not in rest_static)

    def full_args(a, r):
        r = list(r)
        out = list(a)
        for i in range(len(primals) - k):
            out.append(rest_static[i] if i in rest_static else r.pop(0))
        return out

    primal = jax.jit(lambda a, r: fn(*full_args(a, r)))
    jvp = jax.jit(lambda a, r, t: jax.jvp(lambda *aa: fn(*full_args(aa, r)), a, t))

    def primal_call(a, r):
        return jax.block_until_ready(primal(a, r))

    def jvp_call(a, r, t):
        return jax.block_until_ready(jvp(a, r, t))
    return primal_call, jvp_call, act, rest
