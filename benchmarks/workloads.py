"""Benchmark workloads: inputs, tangent directions and references.

The plain functions come from ``tests/functions.py`` (shared with the test
suite).  Inputs are deterministic (fixed seeds).
"""
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.functions import rosenbrock, rosenbrock_loop, softmax_loss, mlp_loss, lorenz_rk4  # noqa: E402
from benchmarks import handwritten as hw  # noqa: E402


@dataclass
class Workload:
    name: str
    plain: Callable                 # plain Python function (tests/functions.py)
    primals: Tuple                  # primal arguments
    active: Tuple[bool, ...]        # which arguments carry a tangent
    tangents: Tuple                 # tangents of the active arguments, in order
    handwritten: Callable           # hand-written njit tangent (tangent_function convention)
    dtype: type = np.float64
    fd_h: float = 1e-6
    fd_rtol: float = 1e-5
    # plain function to use (flagged in the output) when numba.njit(plain) /
    # fwdjit(plain) cannot compile the plain function itself
    plain_fallback: Optional[Callable] = None
    jvp_vs_primal_target: bool = False   # report JVP/primal ratio against the 2.0 target
    extra_handwritten: dict = field(default_factory=dict)
    jax_key: str = ""
    note: str = ""
    # hand-written fused loop (value and tangent in one pass, no temporaries): the fusion target
    fused: Optional[Callable] = None

    @property
    def all_tangents(self):
        """One tangent per primal (None for inactive), JAX/f.jvp order."""
        it = iter(self.tangents)
        return tuple(next(it) if a else None for a in self.active)


def _rosenbrock(n):
    rng = np.random.default_rng(1000 + n)
    x = rng.uniform(-2.0, 2.0, n)
    dx = rng.standard_normal(n)
    return Workload(
        name=f"rosenbrock n={n}", plain=rosenbrock, primals=(x,), active=(True,),
        tangents=(dx,), handwritten=hw.rosenbrock_jvp, fd_h=1e-6, fd_rtol=1e-5,
        jvp_vs_primal_target=True, fused=hw.rosenbrock_jvp_loop,
        jax_key="rosenbrock")


def _rosenbrock_loop(n):
    """The same function written as a loop over floats: fwdjit's tangent is then one fused pass."""
    rng = np.random.default_rng(1000 + n)
    x = rng.uniform(-2.0, 2.0, n)
    dx = rng.standard_normal(n)
    return Workload(
        name=f"rosenbrock (loop form) n={n}", plain=rosenbrock_loop, primals=(x,), active=(True,),
        tangents=(dx,), handwritten=hw.rosenbrock_jvp_loop, fd_h=1e-6, fd_rtol=1e-5,
        jvp_vs_primal_target=True, jax_key="rosenbrock", fused=hw.rosenbrock_jvp_loop,
        note="same function as a Python loop; hand-written reference is the fused loop")


def _onehot(rng, batch, k, dtype):
    return np.eye(k, dtype=dtype)[rng.integers(0, k, batch)]


def _softmax():
    rng = np.random.default_rng(2)
    f32 = np.float32
    W = (rng.standard_normal((784, 10)) / np.sqrt(784)).astype(f32)
    b = (0.1 * rng.standard_normal(10)).astype(f32)
    X = rng.standard_normal((64, 784)).astype(f32)
    Y = _onehot(rng, 64, 10, f32)
    dW = rng.standard_normal(W.shape).astype(f32)
    db = rng.standard_normal(b.shape).astype(f32)
    return Workload(
        name="softmax_loss 784->10 b=64 f32", plain=softmax_loss,
        primals=(W, b, X, Y), active=(True, True, False, False),
        tangents=(dW, db), handwritten=hw.softmax_loss_jvp, dtype=f32,
        fd_h=1e-6, fd_rtol=1e-6, jax_key="softmax_loss", fused=hw.softmax_loss_jvp_fused)


def _tv(n):
    rng = np.random.default_rng(3000 + n)
    x = rng.standard_normal(n)
    dx = rng.standard_normal(n)
    return Workload(
        name=f"smoothed TV n={n}", plain=hw.tv_smooth, primals=(x,), active=(True,),
        tangents=(dx,), handwritten=hw.tv_smooth_jvp, fused=hw.tv_smooth_jvp_loop,
        jvp_vs_primal_target=True)


def _mlp():
    rng = np.random.default_rng(3)
    f32 = np.float32

    def lin(i, o):
        return ((rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(f32),
                (0.01 * rng.standard_normal(o)).astype(f32))
    W1, b1 = lin(784, 1024)
    W2, b2 = lin(1024, 1024)
    W3, b3 = lin(1024, 10)
    X = rng.standard_normal((64, 784)).astype(f32)
    Y = _onehot(rng, 64, 10, f32)
    params = (W1, b1, W2, b2, W3, b3)
    tangents = tuple((0.01 * rng.standard_normal(p.shape)).astype(f32) for p in params)
    return Workload(
        name="mlp_loss 784-1024-1024-10 b=64 f32", plain=mlp_loss,
        primals=params + (X, Y), active=(True,) * 6 + (False, False),
        tangents=tangents, handwritten=hw.mlp_loss_jvp, dtype=f32,
        fd_h=1e-6, fd_rtol=1e-6, plain_fallback=hw.mlp_loss_dtype_safe,
        jax_key="mlp_loss")


def _lorenz(n_steps=10000):
    # dt = 1e-3 -> t_end = 10: the sensitivities stay O(1e3) so central
    # differences remain meaningful (with dt=1e-2, t_end=100, the chaotic
    # tangent grows like e^{90} and no FD check is possible).  Cost does not
    # depend on dt.
    rng = np.random.default_rng(4)
    primals = (10.0, 28.0, 8.0 / 3.0, 1.0, 1.0, 1.0, 1e-3, n_steps)
    tangents = tuple(float(t) for t in rng.standard_normal(3))
    return Workload(
        name=f"lorenz_rk4 {n_steps} steps", plain=lorenz_rk4, primals=primals,
        active=(True, True, True, False, False, False, False, False),
        tangents=tangents, handwritten=hw.lorenz_rk4_jvp, fd_h=1e-6, fd_rtol=1e-5,
        jvp_vs_primal_target=True, jax_key="lorenz_rk4")


def all_workloads(quick=False):
    return [_rosenbrock(10), _rosenbrock(1000), _rosenbrock(100000),
            _rosenbrock_loop(10), _rosenbrock_loop(1000), _rosenbrock_loop(100000),
            _softmax(), _tv(1000), _tv(100000), _mlp(), _lorenz()]
