"""Backpropagation references for the MNIST models, with JAX or PyTorch when installed.

Neither is a dependency of fwdjit: ``backend()`` says which one imports
(JAX first), and ``backprop_train`` raises ``ImportError`` with an
explanation when neither does.  The references train the same models
(:mod:`fwdjit.experiments.models`) from the same initial parameters on exactly the same
minibatches as ``fwdjit.train`` with the same seed
(:func:`fwdjit.training.loop.minibatch_indices`), with plain SGD and the same
learning-rate schedule, so loss curves are comparable step by step.

JAX: one ``jax.jit``-compiled step (``value_and_grad`` + update) run in
chunks of steps by ``lax.scan`` (a compiled loop, like fwdjit's; per-step
time = chunk time / steps), or called once per step for the CNN (XLA:CPU runs
convolution gradients inside loops far slower).  PyTorch: a Python loop over steps (eager, autograd).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import models
from ..training.loop import minibatch_indices

__all__ = ["backend", "backprop_train", "BackpropResult", "describe_backend"]


def backend(prefer=None):
    """'jax', 'torch' or None: the first of them that imports (``prefer`` first)."""
    order = ["jax", "torch"]
    if prefer in order:
        order.remove(prefer)
        order.insert(0, prefer)
    for name in order:
        try:
            __import__(name)
            return name
        except Exception:    # ImportError, or a broken install
            continue
    return None


def describe_backend(name):
    if name == "jax":
        import jax
        return f"JAX {jax.__version__} ({jax.default_backend()}, jit + lax.scan)"
    if name == "torch":
        import torch
        return f"PyTorch {torch.__version__} (CPU, eager autograd, {torch.get_num_threads()} threads)"
    return "none"


@dataclass
class BackpropResult:
    params: tuple
    losses: np.ndarray
    step_times: np.ndarray
    wall_time: float
    compile_time: float
    backend: str

    @property
    def times(self):
        return np.cumsum(self.step_times)

    @property
    def median_step_time(self):
        return float(np.median(self.step_times))


def backprop_train(model, params, X, Y, *, steps, batch_size=64, lr=2e-4, lr_decay=0.0, seed=0, backend_name=None,
                   chunk_steps=None, progress=False, desc=None, loop="auto"):
    """Plain SGD with exact gradients (backprop) on ``model`` ('logreg', 'mlp', 'cnn').

    JAX: ``loop="scan"`` runs chunks of steps in ``lax.scan`` (per-step time = chunk time / steps),
    ``"python"`` one jitted call per step (timed one by one); ``"auto"``: python for the CNN
    (XLA:CPU's convolution gradients are very slow inside loops), scan otherwise.
    """
    name = backend_name or backend()
    if name is None:
        raise ImportError("no backprop reference: neither jax nor torch is installed "
                          "(pip install 'jax[cpu]' or pip install torch)")
    idx = minibatch_indices(X.shape[0], batch_size, steps, seed)
    lrs = (lr * np.exp(-lr_decay * np.arange(steps))).astype(np.float32)
    if name == "jax":
        return _train_jax(model, params, X, Y, idx, lrs, chunk_steps, progress, desc, loop)
    if name == "torch":
        return _train_torch(model, params, X, Y, idx, lrs, progress, desc)
    raise ValueError(f"unknown backend {name!r}")


def _bar(progress, steps, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=steps, desc=desc, unit="step", dynamic_ncols=True)


def _train_jax(model, params, X, Y, idx, lrs, chunk_steps, progress, desc, loop="auto"):
    import jax
    import jax.numpy as jnp
    from jax import lax

    loss_fn = models.jax_loss(model)
    Xd, Yd = jnp.asarray(X), jnp.asarray(Y)

    def step(p, inp):
        rows, lr = inp
        l, g = jax.value_and_grad(loss_fn)(p, Xd[rows], Yd[rows])
        return tuple(a - lr * b for a, b in zip(p, g)), l

    @jax.jit
    def run(p, rows, lr):
        return lax.scan(step, p, (rows, lr))

    steps = idx.shape[0]
    p = tuple(jnp.asarray(a) for a in params)
    losses = np.empty(steps)
    step_times = np.empty(steps)
    wall = 0.0
    done = 0
    if loop == "auto":
        # XLA:CPU runs convolution gradients inside a while loop (lax.scan) ~60x slower than in a
        # plain jitted call; the CNN therefore gets one jitted call per step
        loop = "python" if model == "cnn" else "scan"
    if loop == "python":
        jstep = jax.jit(lambda p, rows, lr: step(p, (rows, lr)), donate_argnums=0)
        t_c = time.perf_counter()
        warm = tuple(jnp.array(a) for a in p)
        jax.block_until_ready(jstep(warm, jnp.asarray(idx[0]), jnp.float32(lrs[0])))
        compile_time = time.perf_counter() - t_c
        bar = _bar(progress, steps, desc or f"backprop (JAX) {model}")
        for s in range(steps):
            rows, lr = jnp.asarray(idx[s]), jnp.float32(lrs[s])
            t0 = time.perf_counter()
            p, ls = jstep(p, rows, lr)
            ls = float(jax.block_until_ready(ls))
            dt = time.perf_counter() - t0
            wall += dt
            losses[s] = ls
            step_times[s] = dt
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{ls:.4g}", refresh=False)
        if bar is not None:
            bar.close()
        return BackpropResult(tuple(np.asarray(a) for a in p), losses, step_times, wall, compile_time, "jax")
    # compile for the chunk shape (and the tail shape) before timing
    if chunk_steps is None:
        out = run(p, jnp.asarray(idx[:1]), jnp.asarray(lrs[:1]))
        jax.block_until_ready(out)
        t0 = time.perf_counter()
        out = run(p, jnp.asarray(idx[:1]), jnp.asarray(lrs[:1]))
        jax.block_until_ready(out)
        per = time.perf_counter() - t0
        chunk_steps = int(max(1, min(steps, 0.5 / max(per, 1e-6))))
    t_c = time.perf_counter()
    shapes = {min(chunk_steps, steps)}
    if steps % chunk_steps:
        shapes.add(steps % chunk_steps)
    for s in shapes:
        jax.block_until_ready(run(p, jnp.asarray(idx[:s]), jnp.asarray(lrs[:s])))
    compile_time = time.perf_counter() - t_c
    bar = _bar(progress, steps, desc or f"backprop (JAX) {model}")
    while done < steps:
        n = min(chunk_steps, steps - done)
        rows, lr = jnp.asarray(idx[done:done + n]), jnp.asarray(lrs[done:done + n])
        t0 = time.perf_counter()
        p, ls = run(p, rows, lr)
        ls = np.asarray(jax.block_until_ready(ls))
        dt = time.perf_counter() - t0
        wall += dt
        losses[done:done + n] = ls
        step_times[done:done + n] = dt / n
        done += n
        if bar is not None:
            bar.update(n)
            bar.set_postfix(loss=f"{ls.mean():.4g}", steps_s=f"{n / dt:.1f}", refresh=False)
    if bar is not None:
        bar.close()
    return BackpropResult(tuple(np.asarray(a) for a in p), losses, step_times, wall, compile_time, "jax")


def _train_torch(model, params, X, Y, idx, lrs, progress, desc):
    import torch
    import torch.nn.functional as F

    p = [torch.tensor(np.asarray(a), requires_grad=True) for a in params]
    Xt, Yt = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(Y))

    def xent(logits, y):
        return -(y * F.log_softmax(logits, dim=1)).sum() / logits.shape[0]

    def loss_fn(p, xb, yb):
        if model == "logreg":
            return xent(xb @ p[0] + p[1], yb)
        if model == "mlp":
            h1 = torch.relu(xb @ p[0] + p[1])
            h2 = torch.relu(h1 @ p[2] + p[3])
            return xent(h2 @ p[4] + p[5], yb)
        if model == "cnn":
            x = xb.permute(0, 3, 1, 2)
            for k in range(4):
                K = p[2 * k].permute(3, 2, 0, 1)          # HWIO -> OIHW
                x = torch.relu(F.conv2d(x, K, p[2 * k + 1], padding=1))
                if k in (1, 3):
                    x = F.max_pool2d(x, 2)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)   # NHWC flattening, as the NumPy model
            h5 = torch.relu(x @ p[8] + p[9])
            return xent(h5 @ p[10] + p[11], yb)
        raise ValueError(model)

    steps = idx.shape[0]
    losses = np.empty(steps)
    step_times = np.empty(steps)
    bar = _bar(progress, steps, desc or f"backprop (PyTorch) {model}")
    compile_time = 0.0
    wall = 0.0
    for s in range(steps):
        rows = torch.from_numpy(idx[s])
        t0 = time.perf_counter()
        l = loss_fn(p, Xt[rows], Yt[rows])
        grads = torch.autograd.grad(l, p)
        with torch.no_grad():
            for a, g in zip(p, grads):
                a -= float(lrs[s]) * g
        dt = time.perf_counter() - t0
        wall += dt
        losses[s] = float(l.detach())
        step_times[s] = dt
        if bar is not None and (s % 20 == 19 or s == steps - 1):
            bar.update(s + 1 - bar.n)
            bar.set_postfix(loss=f"{losses[max(0, s - 19):s + 1].mean():.4g}", refresh=False)
    if bar is not None:
        bar.close()
    return BackpropResult(tuple(a.detach().numpy().copy() for a in p), losses, step_times, wall, compile_time,
                          "torch")
