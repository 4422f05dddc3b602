"""Scalar functions and kernels for the CUDA target tests (tests/test_cuda.py, tests/test_cuda_ptx.py).

``SCALAR_CASES``: (function, argument specs).  A spec is ``(lo, hi)`` for a
float argument drawn uniformly (per element), an ``int`` for an integer
argument passed as a scalar, or a ``bool``.  Functions come from the shared
corpus (tests/functions.py) where one fits, and from this file for what the
corpus does not cover (user callees, while loops, NumPy calls that the CUDA
target rewrites, defjvp rules).

``KERNELS`` are CUDA kernels (``cuda.grid`` indexing) written against
``numba.cuda``; they are plain functions here (not ``@cuda.jit``) so that
both fwdjit and the tests can compile them.
"""
import math
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import functions as _F  # noqa: E402

try:
    from numba import cuda
except ImportError:   # pragma: no cover - numba-cuda missing: the tests skip
    cuda = None


# --------------------------------------------------------------- callees
def _sq(v):
    return v * v


def _damped(x, k):
    return math.exp(-k * x) * _sq(x)


def _step(y, h):
    return y + h * math.sin(y)


# ---------------------------------------------------------- own functions
def callee_chain(x, y):
    return _damped(x, 0.5) + _sq(y) * _damped(y, x)


def while_newton_sqrt(a):
    # Newton iterations for sqrt(a), with a data-dependent stopping rule
    x = a
    it = 0
    while abs(x * x - a) > 1e-12 * a and it < 60:
        x = 0.5 * (x + a / x)
        it += 1
    return x


def loop_callee(y0, h, n):
    y = y0
    for _ in range(n):
        y = _step(y, h)
    return y


def early_return(x, y):
    if x > 0.5:
        return x * y
    z = math.sin(x) + y
    if z < 0.0:
        return -z
    return z * z


def np_rewrites(x, y):
    # NumPy calls numba-cuda cannot lower on scalars: rewritten to math / helpers
    a = np.exp(x) + np.sqrt(y) + np.abs(x - y) + np.expm1(x) + np.log1p(y)
    b = np.square(x) + np.reciprocal(y) + np.cbrt(y) + np.exp2(x)
    c = np.where(x > y, x, y) + np.floor(y) * x + np.sign(x) * y + np.trunc(y) + np.rint(x)
    return a + b * c + np.power(y, x) + np.maximum(x, y) * np.hypot(x, y)


def np_clip_scalar(x):
    # np.clip on scalars: the CPU target (Numba) cannot compile it, the CUDA target rewrites it
    return np.clip(x, -0.5, 0.5) * x


def math_special(x):
    return math.erf(x) + math.erfc(0.5 * x) + math.atanh(0.5 * x) * math.asinh(x) + math.log(2.0 + x) * math.cosh(x)


def tuple_out_mixed(x, y):
    s = x + y
    p = x * y
    return s * s, math.sin(p), p - s


def int_and_bool_args(x, n, flag):
    acc = 0.0
    for i in range(n):
        if flag:
            acc += x ** i
        else:
            acc -= math.cos(x * i)
    return acc


def logistic_steps(r, x0, n):
    x = x0
    for _ in range(n):
        x = r * x * (1.0 - x)
    return x


# the corpus functions that are scalar: (name, specs)
_CORPUS_SCALAR = [
    ("scalar_poly", [(-2, 2), (-2, 2)]),
    ("scalar_div", [(-2, 2), (0.5, 2)]),
    ("scalar_pow_active", [(0.5, 2), (-1.5, 1.5)]),
    ("scalar_unary_neg", [(-2, 2)]),
    ("scalar_comparisons", [(-2, -0.2), (0.2, 2)]),
    ("scalar_augassign", [(-2, 2), (0.5, 2)]),
    ("scalar_multi_target", [(-2, 2)]),
    ("scalar_tuple_swap", [(-1, 1), (-1, 1)]),
    ("scalar_int_arg", [(-1.5, 1.5), 5]),
    ("scalar_np_scalars", [(0.3, 2)]),
    ("scalar_f32_literals", [(-2, 2)]),
    ("scalar_int_mix", [(-2, 2), 3]),
    ("math_trig", [(-1, 1)]),
    ("math_inverse_trig", [(-0.8, 0.8)]),
    ("math_atan2_hypot", [(0.3, 2), (-2, 2)]),
    ("math_hyperbolic", [(-1.5, 1.5)]),
    ("math_exp_log", [(0.3, 2)]),
    ("math_sqrt_pow", [(0.3, 2), (-1.5, 1.5)]),
    ("pendulum_euler", [(-1, 1), (-0.5, 0.5), (9.0, 10.0), (0.8, 1.2), (0.01, 0.02), 10]),
    ("kepler_newton", [(0.5, 2.5), (0.1, 0.5)]),
    ("lorenz_rk4", [(9.5, 10.5), (27, 29), (2.5, 2.8), (0.9, 1.1), (0.9, 1.1), (0.9, 1.1), (0.009, 0.011), 20]),
]

SCALAR_CASES = [(getattr(_F, name), specs) for name, specs in _CORPUS_SCALAR if hasattr(_F, name)]
SCALAR_CASES += [
    (callee_chain, [(0.1, 2), (0.1, 2)]),
    (while_newton_sqrt, [(0.5, 4)]),
    (loop_callee, [(-1, 1), (0.05, 0.1), 6]),
    (early_return, [(-1, 1), (-1, 1)]),
    (np_rewrites, [(0.2, 0.9), (1.1, 1.9)]),
    (math_special, [(-0.9, 0.9)]),
    (tuple_out_mixed, [(-1, 1), (-1, 1)]),
    (int_and_bool_args, [(0.2, 1.2), 4, True]),
    (int_and_bool_args, [(0.2, 1.2), 4, False]),
    (logistic_steps, [(2.5, 3.5), (0.2, 0.8), 8]),
]


def case_id(case):
    fn, specs = case
    flags = [str(s) for s in specs if isinstance(s, bool)]
    return fn.__name__ + ("-" + "-".join(flags) if flags else "")


def make_args(specs, n, dtype, rng):
    """Per-element float arrays (or scalars) for the specs: (args, differentiable positions)."""
    args, diff = [], []
    for j, s in enumerate(specs):
        if isinstance(s, bool):
            args.append(s)
        elif isinstance(s, int):
            args.append(s)
        else:
            lo, hi = s
            args.append(rng.uniform(lo, hi, n).astype(dtype))
            diff.append(j)
    return args, diff


# ---------------------------------------------------------------- kernels
def k_saxpy_sin(a, x, y, out):
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i] = a * math.sin(x[i]) + _sq(y[i])


def k_local_atomic(a, x, out, total):
    # local array, thread index attribute, atomic accumulation, early return
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    tmp = cuda.local.array(3, np.float64)
    tmp[0] = x[i]
    tmp[1] = a * x[i] * x[i]
    tmp[2] = math.exp(-x[i])
    t = cuda.threadIdx.x
    s = 0.0
    for k in range(3):
        s += tmp[k]
    out[i] = s + 0.0 * t
    cuda.atomic.add(total, 0, s)


def k_grid2d(A, B, C):
    # C = A * B + sin(A), elementwise over a 2-d grid; grid-stride in both directions
    i, j = cuda.grid(2)
    si, sj = cuda.gridsize(2)
    for r in range(i, A.shape[0], si):
        for c in range(j, A.shape[1], sj):
            C[r, c] = A[r, c] * B[r, c] + math.sin(A[r, c])


def k_block_sum(x, partial):
    # one partial sum of x**2 per block: shared memory, syncthreads, tree reduction (32 threads per block)
    buf = cuda.shared.array(32, np.float64)
    t = cuda.threadIdx.x
    i = cuda.blockIdx.x * cuda.blockDim.x + t
    v = 0.0
    if i < x.shape[0]:
        v = x[i] * x[i]
    buf[t] = v
    cuda.syncthreads()
    s = 16
    while s > 0:
        if t < s:
            buf[t] += buf[t + s]
        cuda.syncthreads()
        s = s // 2
    if t == 0:
        partial[cuda.blockIdx.x] = buf[0]


def k_rk4_lorenz(sigma, rho, beta, out, dt, n_steps):
    # one Lorenz trajectory per thread, parameters from arrays
    i = cuda.grid(1)
    if i < sigma.shape[0]:
        # (names, not literals, for the initial state: the core's activity pass marks a parameter
        # that is copied into a variable (x = x0) as written, see the report)
        s0 = 1.0
        x, y, z = _F.lorenz_rk4(sigma[i], rho[i], beta[i], s0, s0, s0, dt, n_steps)
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z


# ------------------------------------------------ code the CUDA target rejects
def bad_alloc(x):
    tmp = np.zeros(3)
    tmp[0] = x
    return tmp[0] * 2.0


def bad_reduction(x, y):
    return np.sum(x) * y


def bad_method(x):
    return x.sum()


def bad_random(x):
    return x * np.random.rand()


def bad_matmul(A, B):
    C = A @ B
    return C[0, 0]
