"""Shared corpus of plain numeric Python functions for fwdjit tests.

Benchmark workloads (imported by benchmarks/):
    rosenbrock(x)
    softmax_loss(W, b, X, Y)
    mlp_loss(W1, b1, W2, b2, W3, b3, X, Y)
    lorenz_rk4(sigma, rho, beta, x0, y0, z0, dt, n_steps) -> (x, y, z)
"""
import math

import numpy as np


# ---------------------------------------------------------------------------
# Benchmark workloads
# ---------------------------------------------------------------------------

def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def softmax_loss(W, b, X, Y):
    logits = X @ W + b
    m = np.zeros(logits.shape[0], dtype=logits.dtype)
    for i in range(logits.shape[0]):
        m[i] = np.max(logits[i])
    z = logits - m.reshape((-1, 1))
    lse = np.log(np.sum(np.exp(z), axis=1))
    logp = z - lse.reshape((-1, 1))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_loss(W1, b1, W2, b2, W3, b3, X, Y):
    h1 = np.maximum(X @ W1 + b1, 0.0)
    h2 = np.maximum(h1 @ W2 + b2, 0.0)
    logits = h2 @ W3 + b3
    m = np.zeros(logits.shape[0], dtype=logits.dtype)
    for i in range(logits.shape[0]):
        m[i] = np.max(logits[i])
    z = logits - m.reshape((-1, 1))
    lse = np.log(np.sum(np.exp(z), axis=1))
    logp = z - lse.reshape((-1, 1))
    return -np.sum(Y * logp) / X.shape[0]


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


# ---------------------------------------------------------------------------
# Helpers called by corpus functions (plain, undecorated user functions)
# ---------------------------------------------------------------------------

def helper_sums(x):
    """Returns a tuple (sum of squares, sum)."""
    return np.sum(x * x), np.sum(x)


def helper_scale_inplace(a, s):
    """Mutates the array argument in place; returns nothing."""
    for i in range(a.shape[0]):
        a[i] *= s
    a[0] += s


def helper_poly(x, c):
    return c * x * x + 0.5 * x - c


def helper_affine(A, x, b):
    return A @ x + b


def helper_minmax(x, y):
    if x < y:
        return x, y
    return y, x


def helper_sq(v):
    return v * v


def helper_outer_call(x, c):
    # helper calling another helper
    return helper_sq(helper_poly(x, c))


# ---------------------------------------------------------------------------
# Scalar arithmetic and Python-level constructs
# ---------------------------------------------------------------------------

def scalar_poly(x, y):
    return 3.0 * x * x - 2.0 * x * y + y ** 3 - 1.5


def scalar_div(x, y):
    return (x + 1.0) / (y * y + 0.5) - x / y


def scalar_floordiv_mod(x, y):
    q = x // y
    r = x % y
    return q * 0.25 + r * r + x * q


def scalar_pow_active(x, y):
    return x ** y + y ** 2 + 2.0 ** x + x ** 0.5


def scalar_unary_neg(x):
    return -x * -(x - 1.0) + (-x) ** 2


def scalar_cond_expr(x, y):
    return x * y if x > y else x - y * 2.0


def scalar_bool_ops(x, y, flag):
    if (x > 0.0 and y > 0.0) or not flag:
        return x * y
    return x + y


def scalar_comparisons(x, y):
    r = 0.0
    if x < y:
        r += x
    if x <= y:
        r += y * 2.0
    if x >= y:
        r -= x * 3.0
    if x != y:
        r += x * y
    if not (x == y):
        r += 1.0
    return r


def scalar_augassign(x, y):
    z = x
    z += y
    z *= x
    z -= 1.0
    z /= y
    return z


def scalar_multi_target(x):
    a = b = x * 2.0
    a = a + 1.0
    return a * b


def scalar_tuple_swap(x, y):
    a, b = x, y
    for _ in range(3):
        a, b = b, a * 0.5 + b
    return a - b * 0.1


def scalar_int_arg(x, n):
    acc = 0.0
    for i in range(n):
        acc += x ** i / (i + 1)
    return acc


def scalar_builtins(x, y):
    return abs(x) * max(x, y) + min(x, y, 0.5)


def scalar_int_valued(x):
    return math.floor(x) + int(x) + np.sign(x) + math.ceil(x) * 2.0


def scalar_int_output(x):
    return x * 2.0, int(x)


def scalar_bool_arith(x, flag):
    k = 3 if flag else 1
    return x * k + (x if flag else -x)


def scalar_np_scalars(x):
    return np.sin(x) + np.exp(x) * np.sqrt(x) + np.log(x)


def scalar_f32_literals(x):
    return x * 0.5 + 1.0 / (1.0 + np.exp(-x)) - 2.0


def scalar_int_mix(x, n):
    # Python int and float literals mixed with a float argument
    return (x + n) * 2 - n / 3 + x / 2


# ---------------------------------------------------------------------------
# math.* twins
# ---------------------------------------------------------------------------

def math_trig(x):
    return math.sin(x) * math.cos(x) + math.tan(x * 0.5)


def math_inverse_trig(x):
    return math.asin(x) + math.acos(x * 0.5) + math.atan(x * 3.0)


def math_atan2_hypot(x, y):
    return math.atan2(y, x) + math.hypot(x, y)


def math_hyperbolic(x):
    return math.sinh(x) + math.cosh(x) * math.tanh(x)


def math_exp_log(x):
    return (math.exp(x) + math.log(x) + math.expm1(x) + math.log1p(x)
            + math.log2(x) + math.log10(x))


def math_sqrt_pow(x, y):
    return math.sqrt(x) + math.pow(x, y) + math.pow(x, 2.0)


def math_fabs_floor(x):
    return math.fabs(x) * x + math.floor(x) + math.ceil(x)


def pendulum_euler(theta, omega, g, L, dt, n):
    for _ in range(n):
        alpha = -g / L * math.sin(theta)
        omega = omega + dt * alpha
        theta = theta + dt * omega
    return theta, omega


def kepler_newton(M, e):
    E = M
    for _ in range(25):
        E = E - (E - e * math.sin(E) - M) / (1.0 - e * math.cos(E))
    return E


# ---------------------------------------------------------------------------
# NumPy elementwise
# ---------------------------------------------------------------------------

def np_trig(x):
    return np.sum(np.sin(x) * np.cos(x) + np.tan(0.5 * x))


def np_inverse_trig(x):
    return np.arcsin(x) + np.arccos(x) * 0.5 + np.arctan(2.0 * x)


def np_arctan2(y, x):
    return np.arctan2(y, x)


def np_hyperbolic(x):
    return np.sinh(x) * 0.5 - np.cosh(x) + np.tanh(x) * 2.0


def np_exp_log(x):
    return (np.exp(x) + np.expm1(x) + np.log(x) + np.log1p(x)
            + np.log2(x) + np.log10(x))


def np_sqrt_cbrt(x):
    return np.sqrt(x) * np.cbrt(x) + np.cbrt(-x)


def np_power_arrays(x, y):
    return np.power(x, y) + x ** y


def np_power_scalar(x, p):
    return x ** p + p ** x + np.power(x, 3)


def np_hypot(x, y):
    return np.hypot(x, y)


def np_abs_sign(x):
    return np.abs(x) * np.sign(x) + np.fabs(x) ** 2


def np_floor_ceil(x):
    return x * np.floor(x) + np.ceil(x)


def np_maximum_minimum(x, y):
    return np.maximum(x, y) * 2.0 + np.minimum(x, y)


def np_clip(x):
    return np.clip(x, -0.5, 0.5) * x


def np_where(x, y):
    return np.where(x > y, x * y, x - y)


def relu_literal(x):
    return np.maximum(x, 0.0) * 0.5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.log1p(np.exp(x))


def np_mixed_scalar_array(x, s):
    return np.exp(s) * x + np.sin(s * x) - s


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------

def red_sum_mean(x):
    return np.sum(x) + np.mean(x) * 2.0 + x.sum() - x.mean()


def red_sum_axis(A):
    return np.sum(A, axis=0) * np.sum(A, axis=1).sum()


def red_sum_axis3(T):
    return np.sum(T, axis=2), np.sum(T, axis=1), T.sum(axis=0)


def red_prod(x):
    return np.prod(x) + x.prod()


def red_max_min(x):
    return np.max(x) - np.min(x) * 2.0 + x.max() * x.min()


def red_dot_vdot(x, y):
    return np.dot(x, y) + np.vdot(x, y) + x.dot(y)


def red_cumsum(x):
    return np.cumsum(x) * x


def red_cumsum_2d(A):
    return np.cumsum(A) + A.cumsum()


def red_mean_2d(A):
    return np.mean(A) + A.mean() * np.sum(A)


def red_zero_d(a, b):
    return np.sin(a) * b + a ** 2 + np.sum(a)


def log_sum_exp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


# ---------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------

def la_matmul(A, B):
    return A @ B


def la_matvec(A, x):
    return A @ x + np.dot(A, x)


def la_outer_trace(x, y):
    P = np.outer(x, y)
    return P * np.trace(P)


def la_transpose(A):
    return A.T @ A + np.transpose(A) @ A


def la_dot_method(A, B):
    return A.dot(B).T


def la_quadratic_form(A, x):
    return x @ A @ x


def la_gram(X):
    return X.T @ X / X.shape[0]


def la_bilinear(x, A, y):
    return np.dot(x, np.dot(A, y))


# ---------------------------------------------------------------------------
# Array creation
# ---------------------------------------------------------------------------

def create_zeros_fill(x):
    out = np.zeros(x.shape[0] + 1)
    out[1:] = x
    out[0] = x.sum()
    return out


def create_like(x):
    z = np.zeros_like(x)
    o = np.ones_like(x)
    e = np.empty_like(x)
    e[:] = x * 2.0
    f = np.full_like(x, 3.0)
    return z + o * x + e + f * x


def create_ones_empty_full(x):
    n = x.shape[0]
    a = np.ones(n, dtype=x.dtype) * x
    b = np.empty((n,), dtype=x.dtype)
    for i in range(n):
        b[i] = x[i] ** 2
    c = np.full(n, 2.0, dtype=x.dtype)
    return a + b * c


def create_arange_linspace(x):
    t = np.linspace(0.0, 1.0, x.shape[0])
    k = np.arange(x.shape[0])
    return x * t + k * x


def create_eye(A):
    return (np.eye(A.shape[0], dtype=A.dtype) + A) @ A


def create_copy(x):
    y = np.copy(x)
    z = x.copy()
    y *= 2.0
    z[0] = y[1]
    return y + z


def create_zeros_2d(A):
    out = np.zeros((A.shape[1], A.shape[0]), dtype=A.dtype)
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            out[j, i] = A[i, j] * (i + j + 1)
    return out


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------

def shape_reshape_ravel(A):
    B = A.reshape((A.shape[1], A.shape[0]))
    return B.ravel() * np.ravel(A) + A.reshape(A.size)


def shape_concat_stack(x, y):
    return np.concatenate((x, y * 2.0)), np.stack((x, y)).sum(axis=0)


def shape_attrs(A):
    n, m = A.shape
    return A * (n + m) / A.size + A.ndim


def sort_weighted(x):
    s = np.sort(x)
    return s * np.arange(s.shape[0])


def reshape_3d(x):
    T = x.reshape((2, 3, 4))
    return np.sum(T * T, axis=2) + T[:, :, 1] * T[1, 0, 0]


def broadcast(A, x):
    return A * x + x[0] - A.sum(axis=1).reshape((-1, 1))


def three_d_ops(T):
    return np.exp(T * 0.5) * T.sum(axis=0) + np.sin(T)


# ---------------------------------------------------------------------------
# Indexing, slicing, views
# ---------------------------------------------------------------------------

def idx_read(x):
    return x[0] * x[-1] + x[1:3].sum() + x[::2].sum() + x[-2] ** 2


def idx_write(x):
    y = np.zeros_like(x)
    y[0] = x[1] * 2.0
    y[-1] = x[0] ** 2
    y[1:3] = x[1:3] * x[0]
    return y


def idx_2d_aug(A):
    B = A.copy()
    B[0, 1] += A[1, 0] * 3.0
    B[1, :] *= 2.0
    B[:, 0] -= A[:, 1]
    B[2, 2] /= 2.0
    B[-1, -1] = A[0, 0] * A[1, 1]
    return B


def idx_view_write(a, x):
    b = a.copy()
    v = b[1:]
    v[0] = x * 2.0
    return b.sum() * x


def idx_view_write_arg(a, x):
    v = a[1:]
    v[0] = x * 2.0
    return a.sum()


def idx_3d(T):
    return T[1, 2, 3] * T[0, :, 1:].sum() + T[-1, -1, :].dot(T[0, 0, :])


def idx_row_col(A):
    return A[1] * A[:, 2].sum()


def idx_aug_arr(x, y):
    x2 = x.copy()
    x2 += y
    x2 *= y
    x2 -= 1.0
    x2 /= (y * y + 1.0)
    return x2


def aug_arg_inplace(x, y):
    x += y
    x *= 2.0
    return x


def idx_loop_write(x):
    out = np.empty(x.shape[0] - 1)
    for i in range(x.shape[0] - 1):
        out[i] = x[i + 1] - x[i]
    return out


def idx_slice_assign_2d(A, x):
    B = np.zeros((A.shape[0] + 1, A.shape[1]), dtype=A.dtype)
    B[1:, :] = A
    B[0] = x
    B[1:3, 1:3] += A[:2, :2] * x[0]
    return B


def idx_subscript_augassign_loop(x):
    y = np.zeros(3, dtype=x.dtype)
    for i in range(x.shape[0]):
        y[i % 3] += x[i] * x[i]
        y[0] -= x[i] * 0.25
    return y


# ---------------------------------------------------------------------------
# Control flow
# ---------------------------------------------------------------------------

def loop_while(x):
    y = x
    k = 0
    while y < 10.0:
        y = y * 1.5 + 0.1
        k += 1
    return y, k


def loop_break_continue(x):
    acc = 0.0
    for i in range(x.shape[0]):
        if x[i] < 0.0:
            continue
        if acc > 2.0:
            break
        acc += x[i] * x[i]
    return acc


def loop_if_elif(x):
    acc = 0.0
    for v in x:
        if v > 1.0:
            acc += v * v
        elif v > 0.0:
            acc += np.sin(v)
        else:
            acc -= v ** 3
    return acc


def loop_over_rows(A):
    acc = np.zeros(A.shape[1], dtype=A.dtype)
    for row in A:
        acc += row * row
    return acc


def early_return(x, y):
    if x > 1.0:
        return x * y
    if y < 0.0:
        return -y * x
    return x + y


def nested_loops(A):
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            s += A[i, j] * (i + 1) ** 0.5 * A[j % A.shape[0], i % A.shape[1]]
    return s


def loop_range_step(x):
    acc = 0.0
    for i in range(len(x) - 1, -1, -2):
        acc = acc * 0.5 + x[i]
    return acc


def while_newton_sqrt(a):
    y = a
    i = 0
    while i < 30:
        y = 0.5 * (y + a / y)
        i += 1
    return y


def loop_nested_break(A):
    total = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            if A[i, j] > 1.2:
                break
            total += A[i, j] * (j + 1)
    return total


def early_return_loop(x):
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] ** 2
        if acc > 3.0:
            return acc * 2.0
    return acc


# ---------------------------------------------------------------------------
# Calls to helpers
# ---------------------------------------------------------------------------

def call_helper_tuple(x):
    ss, s = helper_sums(x)
    return ss - s * s / x.size


def call_helper_inplace(x, s):
    y = x.copy()
    helper_scale_inplace(y, s)
    return y.sum() + y[0] * s


def call_helper_chain(x, y):
    return helper_poly(helper_poly(x, y), x)


def call_helper_affine(A, x, b):
    h = np.tanh(helper_affine(A, x, b))
    return helper_affine(A.T, h, x)


def call_helper_minmax(x, y):
    lo, hi = helper_minmax(x, y)
    return hi - lo * 2.0 + helper_outer_call(lo, hi)


# ---------------------------------------------------------------------------
# Tuples
# ---------------------------------------------------------------------------

def tuple_out(x, y):
    return x + y, x * y, np.sum(x)


def tuple_arg(p, x):
    a, b = p
    return a * x + b * x * x


def tuple_unpack_nested(x):
    (a, b), c = (x[0], x[1]), x[2]
    return a * b + c


def tuple_return_scalars(x, y):
    s = x + y
    d = x - y
    return s * d, s / (d * d + 1.0)


# ---------------------------------------------------------------------------
# Models and numerical kernels
# ---------------------------------------------------------------------------

def rosenbrock_loop(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def logistic_loss(w, X, y):
    z = X @ w
    return np.mean(np.log1p(np.exp(-y * z)))


def tanh_rnn(W, U, h0, xs):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return h


def gaussian_kernel(X, ell):
    n = X.shape[0]
    K = np.empty((n, n), dtype=X.dtype)
    for i in range(n):
        for j in range(n):
            d = X[i] - X[j]
            K[i, j] = np.exp(-np.dot(d, d) / (2.0 * ell * ell))
    return K


def horner(c, x):
    acc = c[c.shape[0] - 1] * 1.0
    for i in range(c.shape[0] - 2, -1, -1):
        acc = acc * x + c[i]
    return acc


def normalize(x):
    return x / np.sqrt(np.sum(x * x))


def layer_norm(x, g, b):
    mu = np.mean(x)
    var = np.mean((x - mu) ** 2)
    return g * (x - mu) / np.sqrt(var + 1e-5) + b


def trapezoid(y, dx):
    s = 0.0
    for i in range(y.shape[0] - 1):
        s += 0.5 * (y[i] + y[i + 1]) * dx
    return s


def heat_step(u, alpha, n):
    v = u.copy()
    for _ in range(n):
        w = v.copy()
        w[1:-1] = v[1:-1] + alpha * (v[2:] - 2.0 * v[1:-1] + v[:-2])
        v = w
    return v


def power_iteration(A, n):
    v = np.ones(A.shape[0], dtype=A.dtype)
    lam = 0.0
    for _ in range(n):
        w = A @ v
        lam = np.sqrt(np.dot(w, w))
        v = w / lam
    return lam, v


def cross_entropy(p, q):
    return -np.sum(p * np.log(q) + (1.0 - p) * np.log(1.0 - q))


def smooth_abs_sum(x, eps):
    return np.sum(np.sqrt(x * x + eps * eps))


def huber(x, delta):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        a = abs(x[i])
        if a <= delta:
            out[i] = 0.5 * x[i] * x[i]
        else:
            out[i] = delta * (a - 0.5 * delta)
    return out


def van_der_pol_rk2(mu, x0, v0, dt, n):
    x = x0
    v = v0
    for _ in range(n):
        ax = v
        av = mu * (1.0 - x * x) * v - x
        xm = x + 0.5 * dt * ax
        vm = v + 0.5 * dt * av
        x = x + dt * vm
        v = v + dt * (mu * (1.0 - xm * xm) * vm - xm)
    return x, v


def cumulative_returns(r):
    w = np.cumsum(np.log1p(r))
    return np.exp(w) - 1.0


def polyval_matrix(A, c0, c1, c2):
    return c0 * np.eye(A.shape[0]) + c1 * A + c2 * (A @ A)


def conv1d_valid(x, k):
    n = x.shape[0] - k.shape[0] + 1
    out = np.zeros(n, dtype=x.dtype)
    for i in range(n):
        for j in range(k.shape[0]):
            out[i] += x[i + j] * k[j]
    return out


def mean_squared_error(W, X, Y):
    R = X @ W - Y
    return np.sum(R * R) / R.size


def attention_scores(Q, K):
    S = Q @ K.T / np.sqrt(Q.shape[1] * 1.0)
    E = np.exp(S)
    return E / E.sum(axis=1).reshape((-1, 1))


def gauss_newton_step(x, y):
    r = x * x - y
    return x - r / (2.0 * x)


def logit_clip(p):
    q = np.clip(p, 0.05, 0.95)
    return np.log(q / (1.0 - q))


def angle_between(u, v):
    c = np.dot(u, v) / (np.sqrt(np.dot(u, u)) * np.sqrt(np.dot(v, v)))
    return np.arccos(c)


def stable_sigmoid_loop(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        if x[i] >= 0.0:
            out[i] = 1.0 / (1.0 + np.exp(-x[i]))
        else:
            e = np.exp(x[i])
            out[i] = e / (1.0 + e)
    return out


def discounted_sum(r, gamma):
    acc = 0.0
    g = 1.0
    for v in r:
        acc += g * v
        g *= gamma
    return acc


def spring_energy(pos, k, rest):
    e = 0.0
    for i in range(pos.shape[0] - 1):
        d = pos[i + 1] - pos[i]
        L = np.sqrt(np.sum(d * d))
        e += 0.5 * k * (L - rest) ** 2
    return e


# ===========================================================================
# Registry: example arguments for each corpus function
# ===========================================================================
#
# make_args(dtype, rng) -> tuple of arguments, dtype is np.float64 or
# np.float32.  Float scalars are Python floats (or np.float64 scalars) in the
# float64 variant and np.float32 scalars in the float32 variant.  Inputs stay
# inside the domain of the function and at least ~0.1 away from kinks and
# jumps, so that finite differences (whose stencil reaches ~1e-2 away) are
# valid.

class Case:
    """One corpus entry.

    name        -- the function's name
    fn          -- the plain Python function
    make_args   -- make_args(dtype, rng) -> tuple of arguments
    tags        -- coverage keywords (free-form)
    complex_ok  -- the plain function can be evaluated on complex inputs
                   (usable with check_jvp(..., method="complex"))
    mutates     -- indices of arguments that the function mutates in place
    """

    def __init__(self, fn, make_args, tags=(), complex_ok=False, mutates=()):
        self.name = fn.__name__
        self.fn = fn
        self.make_args = make_args
        self.tags = tuple(tags)
        self.complex_ok = complex_ok
        self.mutates = tuple(mutates)

    def args(self, dtype, seed=0):
        rng = np.random.default_rng(
            [seed, sum(ord(c) * (i + 1) for i, c in enumerate(self.name))])
        return self.make_args(np.dtype(dtype).type, rng)

    def __repr__(self):
        return "Case(%s)" % self.name


def _f(v, dt):
    """Python float in the float64 variant, np.float32 in the float32 one."""
    return float(v) if dt is np.float64 else np.float32(v)


def _s(v, dt):
    """NumPy scalar of the variant's dtype (np.float64 / np.float32)."""
    return dt(v)


def _u(rng, shape, dt, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(dt)


def _us(rng, dt, lo=-1.0, hi=1.0):
    return _f(rng.uniform(lo, hi), dt)


def _avoid(rng, shape, dt, lo, hi, kinks=(0.0,), margin=0.15):
    """Uniform in [lo, hi] but at least `margin` away from every kink."""
    out = np.empty(int(np.prod(shape)) if shape != () else 1)
    for i in range(out.size):
        while True:
            v = rng.uniform(lo, hi)
            if all(abs(v - k) >= margin for k in kinks):
                out[i] = v
                break
    return out.reshape(shape).astype(dt)


def _avoid_s(rng, dt, lo, hi, kinks=(0.0,), margin=0.15):
    return _f(_avoid(rng, (), dt, lo, hi, kinks, margin)[()], dt)


def _frac(rng, shape, dt, lo=-3, hi=3):
    """Values whose fractional part is in [0.25, 0.75] (away from integers)."""
    k = rng.integers(lo, hi, shape)
    return (k + rng.uniform(0.25, 0.75, shape)).astype(dt)


def _distinct(rng, n, dt, gap=0.5):
    v = rng.permutation(n) * gap + rng.uniform(-0.1 * gap, 0.1 * gap, n) - n * gap / 2
    return v.astype(dt)


def _sep_pair(rng, shape, dt, lo=-1.5, hi=1.5, gap=0.3):
    x = rng.uniform(lo, hi, shape)
    y = x + rng.choice([-1.0, 1.0], shape) * rng.uniform(gap, 1.0, shape)
    return x.astype(dt), y.astype(dt)


def _sep_scalars(rng, dt, gap=0.3):
    x, y = _sep_pair(rng, (), dt, gap=gap)
    return _f(x[()], dt), _f(y[()], dt)


def _retry(rng, gen, ok, tries=1000):
    for _ in range(tries):
        v = gen(rng)
        if ok(v):
            return v
    raise RuntimeError("could not generate valid arguments")


def _mk_floordiv(dt, rng):
    y = rng.uniform(0.9, 1.1)
    x = y * (rng.integers(-3, 3) + rng.uniform(0.3, 0.7))
    return _f(x, dt), _f(y, dt)


def _mk_builtins(dt, rng):
    def gen(r):
        x = r.choice([-1.0, 1.0]) * r.uniform(0.3, 1.5)
        y = x + r.choice([-1.0, 1.0]) * r.uniform(0.3, 1.0)
        return x, y
    x, y = _retry(rng, gen, lambda p: all(abs(v - 0.5) > 0.2 for v in p))
    return _f(x, dt), _f(y, dt)


def _mk_loop_while(dt, rng):
    def ok(x):
        y = x
        while y < 10.0:
            if abs(y - 10.0) < 0.5:
                return False
            y = y * 1.5 + 0.1
        return abs(y - 10.0) > 0.5
    x = _retry(rng, lambda r: r.uniform(0.5, 3.0), ok)
    return (_f(x, dt),)


def _mk_break_continue(dt, rng):
    def ok(x):
        acc = 0.0
        for v in x:
            if v < 0.0:
                continue
            if abs(acc - 2.0) < 0.2:
                return False
            if acc > 2.0:
                break
            acc += v * v
        return True
    x = _retry(rng, lambda r: _avoid(r, (8,), np.float64, -1.2, 1.2, (0.0,), 0.2), ok)
    return (x.astype(dt),)


def _mk_early_return_loop(dt, rng):
    def ok(x):
        acc = 0.0
        for v in x:
            acc += v * v
            if abs(acc - 3.0) < 0.2:
                return False
        return True
    x = _retry(rng, lambda r: r.uniform(-1.2, 1.2, 6), ok)
    return (x.astype(dt),)


def _mk_softmax(dt, rng, n=4, d=12, k=5):
    W = (rng.standard_normal((d, k)) / np.sqrt(d)).astype(dt)
    b = (0.1 * rng.standard_normal(k)).astype(dt)
    X = rng.standard_normal((n, d)).astype(dt)
    Y = np.zeros((n, k), dtype=dt)
    for i in range(n):
        Y[i, rng.integers(0, k)] = 1.0
    return W, b, X, Y


def _bias_away_from_zero(rng, Z, margin):
    """Bias b such that |Z + b| >= margin for every row of Z."""
    b = np.empty(Z.shape[1])
    for j in range(Z.shape[1]):
        b[j] = _retry(rng, lambda r: r.uniform(-0.5, 0.5),
                      lambda v: np.all(np.abs(Z[:, j] + v) >= margin))
    return b


def _mk_mlp(dt, rng, n=4, d=12, h=8, k=5, margin=0.1):
    X = rng.standard_normal((n, d))
    W1 = rng.standard_normal((d, h)) / np.sqrt(d)
    b1 = _bias_away_from_zero(rng, X @ W1, margin)
    H1 = np.maximum(X @ W1 + b1, 0.0)
    W2 = rng.standard_normal((h, h)) / np.sqrt(h)
    b2 = _bias_away_from_zero(rng, H1 @ W2, margin)
    W3 = rng.standard_normal((h, k)) / np.sqrt(h)
    b3 = 0.1 * rng.standard_normal(k)
    Y = np.zeros((n, k))
    for i in range(n):
        Y[i, rng.integers(0, k)] = 1.0
    return tuple(a.astype(dt) for a in (W1, b1, W2, b2, W3, b3, X, Y))


def _mk_lorenz(dt, rng):
    return (_f(10.0 + rng.uniform(-0.5, 0.5), dt), _f(28.0 + rng.uniform(-1, 1), dt),
            _f(8.0 / 3.0 + rng.uniform(-0.1, 0.1), dt), _f(1.0 + rng.uniform(-0.1, 0.1), dt),
            _f(1.0 + rng.uniform(-0.1, 0.1), dt), _f(1.0 + rng.uniform(-0.1, 0.1), dt),
            _f(0.01, dt), 20)


def _mk_power_iter(dt, rng):
    B = rng.standard_normal((4, 4))
    A = B @ B.T + np.diag([3.0, 1.0, 0.5, 0.2])
    return A.astype(dt), 10


CORPUS = [
    # --- benchmark workloads ---------------------------------------------
    Case(rosenbrock, lambda dt, r: (_u(r, 8, dt, -1.5, 1.5),),
         ("bench", "slices", "power", "reduction"), complex_ok=True),
    Case(softmax_loss, _mk_softmax, ("bench", "matmul", "axis", "loop", "reshape")),
    Case(mlp_loss, _mk_mlp, ("bench", "matmul", "maximum", "f32_literal")),
    Case(lorenz_rk4, _mk_lorenz, ("bench", "scalar_loop", "tuple_out", "int_arg"),
         complex_ok=True),
    # --- scalars / Python constructs ------------------------------------
    Case(scalar_poly, lambda dt, r: (_us(r, dt, -2, 2), _us(r, dt, -2, 2)),
         ("py_float", "arith"), complex_ok=True),
    Case(scalar_div, lambda dt, r: (_us(r, dt, -2, 2), _avoid_s(r, dt, -2, 2, (0.0,), 0.5)),
         ("py_float", "div"), complex_ok=True),
    Case(scalar_floordiv_mod, _mk_floordiv, ("py_float", "floordiv", "mod")),
    Case(scalar_pow_active, lambda dt, r: (_us(r, dt, 0.5, 2), _us(r, dt, -1.5, 1.5)),
         ("py_float", "power_active_base_exp"), complex_ok=True),
    Case(scalar_unary_neg, lambda dt, r: (_us(r, dt, -2, 2),), ("unary_neg",),
         complex_ok=True),
    Case(scalar_cond_expr, lambda dt, r: _sep_scalars(r, dt), ("ifexp", "compare")),
    Case(scalar_bool_ops,
         lambda dt, r: (_avoid_s(r, dt, -2, 2, (0.0,), 0.3), _avoid_s(r, dt, -2, 2, (0.0,), 0.3),
                        bool(r.integers(0, 2))),
         ("and_or_not", "bool_arg", "early_return")),
    Case(scalar_comparisons, lambda dt, r: _sep_scalars(r, dt), ("compare",)),
    Case(scalar_augassign, lambda dt, r: (_us(r, dt, -2, 2), _avoid_s(r, dt, -2, 2, (0.0,), 0.5)),
         ("augassign",), complex_ok=True),
    Case(scalar_multi_target, lambda dt, r: (_us(r, dt, -2, 2),), ("multi_target",),
         complex_ok=True),
    Case(scalar_tuple_swap, lambda dt, r: (_us(r, dt), _us(r, dt)), ("tuple_unpack",),
         complex_ok=True),
    Case(scalar_int_arg, lambda dt, r: (_us(r, dt, -1.5, 1.5), 5), ("int_arg", "power_int")),
    Case(scalar_builtins, _mk_builtins, ("abs", "max", "min")),
    Case(scalar_int_valued, lambda dt, r: (_f(_frac(r, (), dt)[()], dt),),
         ("int_valued", "floor", "sign", "int")),
    Case(scalar_int_output, lambda dt, r: (_f(_frac(r, (), dt)[()], dt),),
         ("int_output", "tuple_out")),
    Case(scalar_bool_arith, lambda dt, r: (_us(r, dt, -2, 2), bool(r.integers(0, 2))),
         ("bool_arg", "ifexp")),
    Case(scalar_np_scalars, lambda dt, r: (_s(r.uniform(0.3, 2.0), dt),),
         ("np_scalar",), complex_ok=True),
    Case(scalar_f32_literals, lambda dt, r: (_s(r.uniform(-2, 2), dt),),
         ("np_scalar", "f32_literal"), complex_ok=True),
    Case(scalar_int_mix, lambda dt, r: (_us(r, dt, -2, 2), 3), ("int_arg", "py_int")),
    # --- math.* -------------------------------------------------------------
    Case(math_trig, lambda dt, r: (_us(r, dt),), ("math",)),
    Case(math_inverse_trig, lambda dt, r: (_us(r, dt, -0.8, 0.8),), ("math",)),
    Case(math_atan2_hypot, lambda dt, r: (_us(r, dt, 0.3, 2), _us(r, dt, -2, 2)), ("math",)),
    Case(math_hyperbolic, lambda dt, r: (_us(r, dt, -1.5, 1.5),), ("math",)),
    Case(math_exp_log, lambda dt, r: (_us(r, dt, 0.3, 2),), ("math",)),
    Case(math_sqrt_pow, lambda dt, r: (_us(r, dt, 0.3, 2), _us(r, dt, -1.5, 1.5)), ("math",)),
    Case(math_fabs_floor, lambda dt, r: (_f(_frac(r, (), dt)[()], dt),),
         ("math", "int_valued")),
    Case(pendulum_euler,
         lambda dt, r: (_us(r, dt, 0.2, 1.0), _us(r, dt, -0.5, 0.5), _f(9.81, dt),
                        _us(r, dt, 0.8, 1.2), _f(0.01, dt), 20),
         ("math", "scalar_loop", "tuple_out")),
    Case(kepler_newton, lambda dt, r: (_us(r, dt, 0.5, 2.5), _us(r, dt, 0.1, 0.5)),
         ("math", "scalar_loop")),
    # --- NumPy elementwise ---------------------------------------------------
    Case(np_trig, lambda dt, r: (_u(r, 5, dt),), ("ufunc",), complex_ok=True),
    Case(np_inverse_trig, lambda dt, r: (_u(r, (2, 3), dt, -0.8, 0.8),), ("ufunc", "2d")),
    Case(np_arctan2, lambda dt, r: (_u(r, (3, 4), dt, -2, 2), _u(r, (3, 4), dt, 0.3, 2)),
         ("ufunc", "2d")),
    Case(np_hyperbolic, lambda dt, r: (_u(r, (2, 3, 2), dt, -1.5, 1.5),), ("ufunc", "3d"),
         complex_ok=True),
    Case(np_exp_log, lambda dt, r: (_u(r, 6, dt, 0.3, 2),), ("ufunc",), complex_ok=True),
    Case(np_sqrt_cbrt, lambda dt, r: (_u(r, (2, 3), dt, 0.3, 2),), ("ufunc",)),
    Case(np_power_arrays, lambda dt, r: (_u(r, (3, 3), dt, 0.5, 2), _u(r, (3, 3), dt, -1.5, 1.5)),
         ("power_active_base_exp",), complex_ok=True),
    Case(np_power_scalar, lambda dt, r: (_u(r, 4, dt, 0.5, 2), _us(r, dt, 0.5, 2)),
         ("power_active_base_exp", "py_float", "f32_literal")),
    Case(np_hypot, lambda dt, r: (_avoid(r, 5, dt, -2, 2, (0.0,), 0.3), _u(r, 5, dt, -2, 2)),
         ("ufunc",)),
    Case(np_abs_sign, lambda dt, r: (_avoid(r, 5, dt, -2, 2, (0.0,), 0.3),),
         ("abs", "sign", "fabs")),
    Case(np_floor_ceil, lambda dt, r: (_frac(r, (2, 4), dt),), ("floor", "ceil")),
    Case(np_maximum_minimum, lambda dt, r: _sep_pair(r, 6, dt), ("maximum", "minimum")),
    Case(np_clip, lambda dt, r: (_avoid(r, 7, dt, -1.5, 1.5, (-0.5, 0.5), 0.15),), ("clip",)),
    Case(np_where, lambda dt, r: _sep_pair(r, (2, 3), dt), ("where", "compare")),
    Case(relu_literal, lambda dt, r: (_avoid(r, 8, dt, -2, 2, (0.0,), 0.2),),
         ("maximum", "f32_literal")),
    Case(sigmoid, lambda dt, r: (_u(r, 7, dt, -3, 3),), ("f32_literal",), complex_ok=True),
    Case(softplus, lambda dt, r: (_u(r, (2, 3), dt, -3, 3),), ("ufunc",), complex_ok=True),
    Case(np_mixed_scalar_array, lambda dt, r: (_u(r, 4, dt), _us(r, dt)),
         ("scalar_array_mix",), complex_ok=True),
    # --- reductions -----------------------------------------------------------
    Case(red_sum_mean, lambda dt, r: (_u(r, 6, dt),), ("sum", "mean", "methods"),
         complex_ok=True),
    Case(red_sum_axis, lambda dt, r: (_u(r, (3, 4), dt),), ("sum_axis", "2d")),
    Case(red_sum_axis3, lambda dt, r: (_u(r, (2, 3, 4), dt),), ("sum_axis", "3d", "tuple_out")),
    Case(red_prod, lambda dt, r: (_u(r, 6, dt, 0.5, 1.5),), ("prod",), complex_ok=True),
    Case(red_max_min, lambda dt, r: (_distinct(r, 7, dt),), ("max", "min")),
    Case(red_dot_vdot, lambda dt, r: (_u(r, 5, dt), _u(r, 5, dt)), ("dot", "vdot")),
    Case(red_cumsum, lambda dt, r: (_u(r, 6, dt),), ("cumsum",), complex_ok=True),
    Case(red_cumsum_2d, lambda dt, r: (_u(r, (2, 3), dt),), ("cumsum", "2d")),
    Case(red_mean_2d, lambda dt, r: (_u(r, (3, 4), dt),), ("mean", "2d")),
    Case(red_zero_d, lambda dt, r: (np.array(r.uniform(-1, 1), dtype=dt),
                                    np.array(r.uniform(-1, 1), dtype=dt)), ("0d",)),
    Case(log_sum_exp, lambda dt, r: (_distinct(r, 6, dt),), ("max", "exp")),
    # --- linear algebra -----------------------------------------------------
    Case(la_matmul, lambda dt, r: (_u(r, (3, 4), dt), _u(r, (4, 2), dt)), ("matmul",),
         complex_ok=True),
    Case(la_matvec, lambda dt, r: (_u(r, (3, 4), dt), _u(r, 4, dt)), ("matmul", "dot")),
    Case(la_outer_trace, lambda dt, r: (_u(r, 3, dt), _u(r, 3, dt)), ("outer", "trace")),
    Case(la_transpose, lambda dt, r: (_u(r, (3, 4), dt),), ("transpose", "matmul")),
    Case(la_dot_method, lambda dt, r: (_u(r, (2, 3), dt), _u(r, (3, 4), dt)),
         ("dot", "methods", "transpose")),
    Case(la_quadratic_form, lambda dt, r: (_u(r, (4, 4), dt), _u(r, 4, dt)), ("matmul",),
         complex_ok=True),
    Case(la_gram, lambda dt, r: (_u(r, (5, 3), dt),), ("matmul", "transpose", "shape")),
    Case(la_bilinear, lambda dt, r: (_u(r, 3, dt), _u(r, (3, 4), dt), _u(r, 4, dt)), ("dot",)),
    # --- creation -----------------------------------------------------------
    Case(create_zeros_fill, lambda dt, r: (_u(r, 5, dt),), ("zeros", "slice_write")),
    Case(create_like, lambda dt, r: (_u(r, (2, 3), dt),),
         ("zeros_like", "ones_like", "empty_like", "full_like")),
    Case(create_ones_empty_full, lambda dt, r: (_u(r, 5, dt),), ("ones", "empty", "full")),
    Case(create_arange_linspace, lambda dt, r: (_u(r, 6, dt),), ("arange", "linspace")),
    Case(create_eye, lambda dt, r: (_u(r, (3, 3), dt),), ("eye", "matmul")),
    Case(create_copy, lambda dt, r: (_u(r, 4, dt),), ("copy",)),
    Case(create_zeros_2d, lambda dt, r: (_u(r, (2, 3), dt),), ("zeros", "nested_loop")),
    # --- shapes -------------------------------------------------------------
    Case(shape_reshape_ravel, lambda dt, r: (_u(r, (3, 4), dt),), ("reshape", "ravel", "size")),
    Case(shape_concat_stack, lambda dt, r: (_u(r, 4, dt), _u(r, 4, dt)),
         ("concatenate", "stack", "tuple_out")),
    Case(shape_attrs, lambda dt, r: (_u(r, (3, 4), dt),), ("shape", "size", "ndim")),
    Case(sort_weighted, lambda dt, r: (_distinct(r, 7, dt),), ("sort", "arange")),
    Case(reshape_3d, lambda dt, r: (_u(r, 24, dt),), ("reshape", "3d", "sum_axis")),
    Case(broadcast, lambda dt, r: (_u(r, (3, 4), dt), _u(r, 4, dt)), ("broadcast",)),
    Case(three_d_ops, lambda dt, r: (_u(r, (2, 3, 4), dt),), ("3d", "sum_axis")),
    # --- indexing -------------------------------------------------------------
    Case(idx_read, lambda dt, r: (_u(r, 6, dt),), ("index", "negative_index", "slice")),
    Case(idx_write, lambda dt, r: (_u(r, 5, dt),), ("index_write", "slice_write")),
    Case(idx_2d_aug, lambda dt, r: (_u(r, (3, 3), dt),),
         ("index_augassign", "2d", "negative_index")),
    Case(idx_view_write, lambda dt, r: (_u(r, 5, dt), _us(r, dt)), ("view_write",)),
    Case(idx_view_write_arg, lambda dt, r: (_u(r, 5, dt), _us(r, dt)),
         ("view_write", "mutates_arg"), mutates=(0,)),
    Case(idx_3d, lambda dt, r: (_u(r, (2, 3, 4), dt),), ("3d", "index", "slice")),
    Case(idx_row_col, lambda dt, r: (_u(r, (3, 4), dt),), ("row", "column")),
    Case(idx_aug_arr, lambda dt, r: (_u(r, 5, dt), _u(r, 5, dt)), ("augassign_array",)),
    Case(aug_arg_inplace, lambda dt, r: (_u(r, (2, 3), dt), _u(r, (2, 3), dt)),
         ("augassign_array", "mutates_arg"), mutates=(0,)),
    Case(idx_loop_write, lambda dt, r: (_u(r, 6, dt),), ("index_write", "loop")),
    Case(idx_slice_assign_2d, lambda dt, r: (_u(r, (3, 4), dt), _u(r, 4, dt)),
         ("slice_write", "2d")),
    Case(idx_subscript_augassign_loop, lambda dt, r: (_u(r, 7, dt),),
         ("index_augassign", "mod", "loop")),
    # --- control flow ---------------------------------------------------------
    Case(loop_while, _mk_loop_while, ("while", "int_output", "tuple_out")),
    Case(loop_break_continue, _mk_break_continue, ("break", "continue")),
    Case(loop_if_elif,
         lambda dt, r: (_avoid(r, 8, dt, -1.5, 2.0, (0.0, 1.0), 0.15),),
         ("if_elif_else", "iterate_array")),
    Case(loop_over_rows, lambda dt, r: (_u(r, (4, 3), dt),), ("iterate_rows",)),
    Case(early_return,
         lambda dt, r: (_avoid_s(r, dt, -0.5, 2.5, (1.0,), 0.2),
                        _avoid_s(r, dt, -2, 2, (0.0,), 0.2)),
         ("early_return",)),
    Case(nested_loops, lambda dt, r: (_u(r, (3, 4), dt),), ("nested_loop",)),
    Case(loop_range_step, lambda dt, r: (_u(r, 7, dt),), ("range_step", "len")),
    Case(while_newton_sqrt, lambda dt, r: (_us(r, dt, 0.5, 4.0),), ("while",),
         complex_ok=True),
    Case(loop_nested_break, lambda dt, r: (_avoid(r, (3, 4), dt, 0.0, 1.6, (1.2,), 0.1),),
         ("break", "nested_loop")),
    Case(early_return_loop, _mk_early_return_loop, ("early_return", "loop")),
    # --- helper calls -----------------------------------------------------------
    Case(call_helper_tuple, lambda dt, r: (_u(r, 6, dt),), ("call", "helper_tuple")),
    Case(call_helper_inplace, lambda dt, r: (_u(r, 5, dt), _us(r, dt, 0.5, 1.5)),
         ("call", "helper_mutates")),
    Case(call_helper_chain, lambda dt, r: (_us(r, dt), _us(r, dt)), ("call",)),
    Case(call_helper_affine, lambda dt, r: (_u(r, (3, 4), dt), _u(r, 4, dt), _u(r, 3, dt)),
         ("call", "matmul")),
    Case(call_helper_minmax, lambda dt, r: _sep_scalars(r, dt), ("call", "helper_tuple")),
    # --- tuples ---------------------------------------------------------------
    Case(tuple_out, lambda dt, r: (_u(r, 4, dt), _u(r, 4, dt)), ("tuple_out",)),
    Case(tuple_arg, lambda dt, r: ((_us(r, dt), _us(r, dt)), _u(r, 4, dt)), ("tuple_arg",)),
    Case(tuple_unpack_nested, lambda dt, r: (_u(r, 3, dt),), ("tuple_unpack",)),
    Case(tuple_return_scalars, lambda dt, r: (_us(r, dt), _us(r, dt)), ("tuple_out",)),
    # --- models and kernels -----------------------------------------------------
    Case(rosenbrock_loop, lambda dt, r: (_u(r, 6, dt, -1.5, 1.5),), ("loop", "power")),
    Case(logistic_loss,
         lambda dt, r: (_u(r, 3, dt), _u(r, (6, 3), dt),
                        r.choice([-1.0, 1.0], 6).astype(dt)),
         ("matmul", "mean"), complex_ok=True),
    Case(tanh_rnn,
         lambda dt, r: (_u(r, (4, 4), dt, -0.5, 0.5), _u(r, (4, 3), dt, -0.5, 0.5),
                        _u(r, 4, dt), _u(r, (5, 3), dt)),
         ("matmul", "loop", "row"), complex_ok=True),
    Case(gaussian_kernel, lambda dt, r: (_u(r, (4, 2), dt), _us(r, dt, 0.8, 1.5)),
         ("empty", "nested_loop", "dot"), complex_ok=True),
    Case(horner, lambda dt, r: (_u(r, 5, dt), _us(r, dt)), ("range_step",), complex_ok=True),
    Case(normalize, lambda dt, r: (_u(r, 5, dt),), ("sqrt", "sum")),
    Case(layer_norm, lambda dt, r: (_u(r, 6, dt), _u(r, 6, dt), _u(r, 6, dt)),
         ("mean",), complex_ok=True),
    Case(trapezoid, lambda dt, r: (_u(r, 7, dt), _us(r, dt, 0.1, 0.5)), ("loop",)),
    Case(heat_step, lambda dt, r: (_u(r, 8, dt), _us(r, dt, 0.1, 0.3), 5),
         ("slice_write", "loop", "int_arg")),
    Case(power_iteration, _mk_power_iter, ("matmul", "ones", "tuple_out")),
    Case(cross_entropy, lambda dt, r: (_u(r, 5, dt, 0.1, 0.9), _u(r, 5, dt, 0.1, 0.9)),
         ("log",), complex_ok=True),
    Case(smooth_abs_sum, lambda dt, r: (_u(r, 5, dt), _us(r, dt, 0.2, 0.5)), ("sqrt",)),
    Case(huber,
         lambda dt, r: (_avoid(r, 7, dt, -2.0, 2.0, (-1.0, 0.0, 1.0), 0.15), _f(1.0, dt)),
         ("abs", "if_else", "empty_like")),
    Case(van_der_pol_rk2,
         lambda dt, r: (_us(r, dt, 0.5, 1.5), _us(r, dt, 0.5, 1.5), _us(r, dt, -0.5, 0.5),
                        _f(0.05, dt), 20),
         ("scalar_loop", "tuple_out"), complex_ok=True),
    Case(cumulative_returns, lambda dt, r: (_u(r, 6, dt, -0.1, 0.1),), ("cumsum",),
         complex_ok=True),
    Case(polyval_matrix,
         lambda dt, r: (_u(r, (3, 3), dt), _us(r, dt), _us(r, dt), _us(r, dt)),
         ("eye", "matmul"), complex_ok=True),
    Case(conv1d_valid, lambda dt, r: (_u(r, 8, dt), _u(r, 3, dt)),
         ("index_augassign", "nested_loop"), complex_ok=True),
    Case(mean_squared_error, lambda dt, r: (_u(r, (3, 2), dt), _u(r, (5, 3), dt), _u(r, (5, 2), dt)),
         ("matmul", "size"), complex_ok=True),
    Case(attention_scores, lambda dt, r: (_u(r, (3, 4), dt), _u(r, (5, 4), dt)),
         ("matmul", "sum_axis", "reshape"), complex_ok=True),
    Case(gauss_newton_step, lambda dt, r: (_u(r, 5, dt, 0.5, 2), _u(r, 5, dt, 0.5, 2)),
         ("div",), complex_ok=True),
    Case(logit_clip, lambda dt, r: (_avoid(r, 8, dt, 0.0, 1.0, (0.05, 0.95), 0.03),),
         ("clip",)),
    Case(angle_between, lambda dt, r: (_u(r, 4, dt), _u(r, 4, dt)), ("dot", "arccos")),
    Case(stable_sigmoid_loop, lambda dt, r: (_avoid(r, 6, dt, -3, 3, (0.0,), 0.1),),
         ("if_else", "empty_like")),
    Case(discounted_sum, lambda dt, r: (_u(r, 6, dt), _us(r, dt, 0.8, 0.99)),
         ("iterate_array", "augassign")),
    Case(spring_energy, lambda dt, r: (_u(r, (5, 2), dt, -2, 2), _us(r, dt, 0.5, 2),
                                       _us(r, dt, 0.5, 1.0)),
         ("row", "sqrt")),
]

CASES = {c.name: c for c in CORPUS}
