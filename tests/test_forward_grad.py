"""Forward gradients: API, reproducibility, unbiasedness and the variance formulas.

The statistical tests use fixed seeds, so each is deterministic; the bounds
are still derived so that a correct estimator passes them with overwhelming
probability (six standard deviations of the statistic, from the known second
and fourth moments of the estimator), and an estimator with the wrong mean or
variance fails them.

Notation: a = grad f (n components), g = (a . v) v averaged over K
directions, r_i^2 = |a|^2 - a_i^2.

* mean: E g = a;  Var(g_i) = (|a|^2 + a_i^2) / K (normal) or r_i^2 / K (Rademacher).
* fourth central moment of one direction's g_i:
  normal: g_i - a_i = a_i (v_i^2 - 1) + r v_i with r ~ N(0, r_i^2), so
  E(g_i - a_i)^4 = 60 a_i^4 + 60 a_i^2 r_i^2 + 9 r_i^4;
  Rademacher: g_i - a_i = v_i sum_{j != i} a_j v_j, so
  E(g_i - a_i)^4 = 3 (sum_{j!=i} a_j^2)^2 - 2 sum_{j!=i} a_j^4.
  For the mean of K iid directions: mu4 = (mu4_1 + 3 (K - 1) s^4) / K^3, s^2 = Var of one.
* sample mean of N draws: sd = sqrt(Var(g_i) / N);
  sample variance: sd ~= sqrt((mu4 - Var(g_i)^2) / N).
"""
import numba
import numpy as np
import pytest

import fwdjit
from fwdjit.training import rng
from fwdjit.training.estimator import forward_grad, forward_grad_function


def quad(x, a):
    # grad_x = 2 a[0] x + [a[1], 0, 0],  grad_a = [sum(x^2), x[0]]
    return a[0] * np.sum(x * x) + x[0] * a[1]


X0 = np.array([1.5, -0.5, 0.25])
A0 = np.array([0.8, 3.0])


C_LIN = np.array([1.0, -2.0, 0.5, 4.0])


def lin(x):
    return np.sum(C_LIN * x)


def exact_grad(x, a):
    gx = 2 * a[0] * x
    gx[0] += a[1]
    ga = np.array([np.sum(x * x), x[0]])
    return np.concatenate([gx, ga])


@numba.njit
def _draws(fg, x, a, n, seed0):
    out = np.empty((n, x.size + a.size))
    for s in range(n):
        _, (gx, ga) = fg(x, a, seed0 + s)
        out[s, :x.size] = gx
        out[s, x.size:] = ga
    return out


def _moments(a, dist, K):
    a2 = a * a
    norm2 = a2.sum()
    r2 = norm2 - a2
    if dist == "normal":
        var1 = norm2 + a2
        mu4_1 = 60 * a2 ** 2 + 60 * a2 * r2 + 9 * r2 ** 2
    else:
        var1 = r2
        sum4 = np.sum(a2 ** 2) - a2 ** 2
        mu4_1 = 3 * r2 ** 2 - 2 * sum4
    var = var1 / K
    mu4 = (mu4_1 + 3 * (K - 1) * var1 ** 2) / K ** 3
    return var, mu4


@pytest.mark.parametrize("dist", ["normal", "rademacher"])
@pytest.mark.parametrize("K", [1, 4])
def test_unbiased_and_variance(dist, K):
    N = 60_000
    fg = forward_grad_function(quad, wrt=(0, 1), n_directions=K, distribution=dist)
    G = _draws(fg, X0, A0, N, 12345)
    a = exact_grad(X0, A0)
    n = a.size
    var, mu4 = _moments(a, dist, K)
    mean = G.mean(axis=0)
    # unbiasedness, per component, 6 sd of the sample mean
    sd_mean = np.sqrt(var / N)
    assert np.all(np.abs(mean - a) <= 6 * sd_mean + 1e-12), (mean, a, sd_mean)
    # variance formula, per component, 6 sd of the sample variance
    svar = ((G - a) ** 2).mean(axis=0)          # the mean is known: E(g_i - a_i)^2 = Var(g_i)
    sd_var = np.sqrt(np.maximum(mu4 - var ** 2, 0) / N)
    tol = 6 * sd_var + 1e-12
    assert np.all(np.abs(svar - var) <= tol), (svar, var, tol)
    # total: E|g - a|^2 = (n + 1)|a|^2 / K (normal), (n - 1)|a|^2 / K (Rademacher)
    total = ((G - a) ** 2).sum(axis=1).mean()
    expect = (n + (1 if dist == "normal" else -1)) * (a @ a) / K
    assert abs(total - expect) <= tol.sum(), (total, expect, tol.sum())
    # the other distribution's formula is rejected by the same test (it has power)
    other = (n + (-1 if dist == "normal" else 1)) * (a @ a) / K
    assert abs(total - other) > tol.sum()


def test_normal_direction_moments():
    """The generator itself: mean 0, variance 1, fourth moment 3 (6-sd bounds)."""
    N = 2_000_000
    v = np.empty(N)
    rng.fill_normal(v, rng.seed_key(7))
    assert abs(v.mean()) <= 6 * np.sqrt(1 / N)
    assert abs((v ** 2).mean() - 1) <= 6 * np.sqrt(2 / N)            # Var(v^2) = 3 - 1
    assert abs((v ** 4).mean() - 3) <= 6 * np.sqrt((105 - 9) / N)    # Var(v^4) = E v^8 - 9
    assert abs((v ** 3).mean()) <= 6 * np.sqrt(15 / N)
    r = np.empty(100_001, np.float32)
    rng.fill_rademacher(r, rng.seed_key(7))
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) <= 6 / np.sqrt(r.size)


def test_rng_layout_and_helpers():
    k = rng.seed_key(3)
    for n in (1, 2, 3, 127, 128, 129, 257, 1000):
        x = np.empty(n, np.float32)
        rng.fill_normal(x, k)
        assert np.array_equal(x, np.array([rng.normal_at(k, i, n) for i in range(n)], np.float32))
        y = np.empty(n, np.float32)
        rng.fill_rademacher(y, k)
        assert np.array_equal(y, np.array([rng.rademacher_at(k, i) for i in range(n)], np.float32))
    p = np.empty(50, np.int64)
    rng.permutation(p, k)
    assert sorted(p.tolist()) == list(range(50))
    assert rng.derive(k, 1, 2) != rng.derive(k, 2, 1)


def test_shapes_dtypes_and_single_wrt():
    x32 = X0.astype(np.float32)
    a32 = A0.astype(np.float32)
    v, g = forward_grad(quad, (x32, a32), wrt=0, seed=1)
    assert isinstance(g, np.ndarray) and g.dtype == np.float32 and g.shape == (3,)
    v, gs = forward_grad(quad, (x32, a32), wrt=(1, 0), seed=1)
    assert isinstance(gs, tuple) and gs[0].shape == (2,) and gs[1].shape == (3,)
    assert np.isclose(v, quad(X0, A0), rtol=1e-6)


def test_estimate_is_d_times_v_and_positive():
    """K = 1: g = d v with d = grad f . v, so g . grad f = d^2 >= 0 and g / v is constant."""
    a = exact_grad(X0, A0)
    for seed in range(20):
        _, (gx, ga) = forward_grad(quad, (X0, A0), wrt=(0, 1), seed=seed)
        g = np.concatenate([gx, ga])
        assert g @ a >= 0
    # linear loss: d = c . v exactly
    c = C_LIN
    _, g = forward_grad(lin, (np.zeros(4),), wrt=0, seed=5)
    v = np.empty(4)
    rng.fill_normal(v, rng.derive(rng.seed_key(5), 0, 0))
    np.testing.assert_allclose(g, (c @ v) * v, rtol=1e-12)


def test_reproducible_with_seed():
    r1 = forward_grad(quad, (X0, A0), wrt=(0, 1), seed=42, n_directions=3)
    r2 = forward_grad(quad, (X0, A0), wrt=(0, 1), seed=42, n_directions=3)
    r3 = forward_grad(quad, (X0, A0), wrt=(0, 1), seed=43, n_directions=3)
    assert all(np.array_equal(a, b) for a, b in zip(r1[1], r2[1]))
    assert not np.array_equal(r1[1][0], r3[1][0])


def test_scalar_argument_and_decorated_loss():
    @fwdjit.fwdjit
    def h(x, s):
        return np.sum(x) * s * s

    acc = 0.0
    N = 4000
    for seed in range(N):
        _, gs = forward_grad(h, (np.ones(2), 1.5), wrt=1, seed=seed)
        acc += gs
    # d h / d s = 2 s sum(x) = 6; Var(g_s) = |a|^2 + a_s^2 with a = (3, 3, 6) -> 54 + 36 = 90
    assert abs(acc / N - 6.0) <= 6 * np.sqrt(90 / N)
    # a numba dispatcher of a plain function is accepted too (its py_func is used)
    nb = numba.njit(quad)
    v, g = forward_grad(nb, (X0, A0), wrt=0)
    assert g.shape == (3,)


def test_callable_from_njit_training_loop():
    fg = forward_grad_function(quad, wrt=0)

    @numba.njit
    def descend(x, a, steps, lr):
        x = x.copy()
        for t in range(steps):
            _, (g,) = fg(x, a, t)
            x -= lr * g
        return x

    a = np.array([1.0, 0.0])
    x = descend(np.array([1.0, -1.0, 2.0]), a, 3000, 0.02)
    assert np.linalg.norm(x) < 1e-3          # minimum of sum(x^2) at 0


def test_errors():
    with pytest.raises(fwdjit.FwdjitError):
        forward_grad(quad, (X0, A0), wrt=2)
    with pytest.raises(fwdjit.FwdjitError):
        forward_grad(quad, (X0,), wrt=0)
    with pytest.raises(ValueError):
        forward_grad(quad, (X0, A0), distribution="uniform")
    with pytest.raises(fwdjit.FwdjitError):
        forward_grad(quad, (X0, A0), n_directions=0)

    def withint(x, n):
        return np.sum(x) * n
    with pytest.raises(fwdjit.FwdjitError):
        forward_grad(withint, (X0, 3), wrt=1)
