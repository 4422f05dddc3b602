"""``fwdjit.train(directions="lowrank")``: the compiled loop with factored directions.

Reference for one step, computed outside the loop: the factors the loop draws for
``(seed, step, direction, parameter)`` (same counter-based keys), the directional
derivative from ``f.jvp`` with a ``LowRank`` tangent (itself checked against complex-step
references in test_forward_grad_lowrank.py), and the update written in NumPy.
"""
import numpy as np
import pytest

import fwdjit
from fwdjit.training import rng
from fwdjit.training.loop import draw_factors, train


def softmax_reg(W, b, X, Y):
    z = X @ W + b
    m = np.max(z)
    lse = np.log(np.sum(np.exp(z - m), axis=1)) + m
    return np.mean(lse - np.sum(z * Y, axis=1))


def _data(n=48, d=5, c=3, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d)).astype(dtype)
    T = r.standard_normal((d, c))
    Y = np.eye(c, dtype=dtype)[np.argmax(X @ T, axis=1)]
    return X, Y


def _factors(seed, step, k, i, shape, rank, dtype, dist=rng.NORMAL):
    base = rng.seed_key(seed)
    key = rng.derive(rng.derive(base, step, k), 7, i)
    a = np.empty((shape[0], rank), dtype)
    b = np.empty((shape[1], rank), dtype)
    draw_factors(a, b, key, dist)
    return a, b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K", [1, 2])
def test_one_sgd_step_matches_reference(dtype, K):
    X, Y = _data(dtype=dtype)
    W0 = np.random.default_rng(1).standard_normal((5, 3)).astype(dtype) * 0.1
    b0 = np.zeros(3, dtype)
    rank, lr, seed = 2, 0.05, 11
    res = train(softmax_reg, (W0, b0), (X, Y), steps=1, batch_size=None, lr=lr, seed=seed, n_directions=K,
                directions="lowrank", rank=rank, progress=False)
    # reference: the same factors (W) and dense direction (b), the same JVPs, the update in NumPy
    f = fwdjit.fwdjit(softmax_reg)
    gW, gb = np.zeros((5, 3)), np.zeros(3)
    for k in range(K):
        a, bf = _factors(seed, 0, k, 0, W0.shape, rank, dtype)
        vb = np.empty(3, dtype)
        rng.fill_direction(vb, rng.derive(rng.derive(rng.seed_key(seed), 0, k), 7, 1), rng.NORMAL)
        _, d = f.jvp((W0, b0, X, Y), (fwdjit.LowRank(a, bf), vb, None, None))
        gW += float(d) * (a.astype(np.float64) @ bf.T.astype(np.float64))
        gb += float(d) * vb
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.params[0], W0 - lr * gW / K, **tol)
    np.testing.assert_allclose(res.params[1], b0 - lr * gb / K, **tol)
    assert res.params[0].dtype == dtype and res.config["directions"] == "lowrank" and res.config["rank"] == rank
    assert "draw_factors" in res.source and "lowrank_sgd" in res.source


def test_stateful_optimizer_gets_the_same_estimate():
    """Momentum with mu = 0 is SGD: its dense low-rank estimate (lowrank_sum) must give SGD's fused update."""
    X, Y = _data(200)
    p0 = (np.zeros((5, 3)), np.zeros(3))
    kw = dict(steps=40, batch_size=16, lr=0.1, seed=2, directions="lowrank", rank=3, n_directions=2,
              progress=False)
    sgd = train(softmax_reg, p0, (X, Y), **kw)
    mom = train(softmax_reg, p0, (X, Y), optimizer=fwdjit.Momentum(0.0), **kw)
    assert "lowrank_sum" in mom.source
    for a, b in zip(sgd.params, mom.params):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lowrank_training_learns_and_is_reproducible():
    X, Y = _data(400)
    p0 = (np.zeros((5, 3)), np.zeros(3))
    kw = dict(steps=3000, batch_size=32, lr=0.05, seed=4, directions="lowrank", rank=1, progress=False)
    r1 = train(softmax_reg, p0, (X, Y), **kw)
    r2 = train(softmax_reg, p0, (X, Y), chunk_seconds=1e-7, **{**kw, "steps": 300})
    r3 = train(softmax_reg, p0, (X, Y), **{**kw, "steps": 300})
    assert r1.losses[-100:].mean() < 0.5 * r1.losses[:10].mean()
    for a, b in zip(r2.params, r3.params):          # chunking does not change the result
        assert np.array_equal(a, b)


def test_lowrank_argument_errors():
    X, Y = _data(100)
    p0 = (np.zeros((5, 3)), np.zeros(3))
    with pytest.raises(fwdjit.FwdjitError, match="directions must be"):
        train(softmax_reg, p0, (X, Y), steps=1, directions="sparse", progress=False)
    with pytest.raises(fwdjit.FwdjitError, match="rank must be an int >= 1"):
        train(softmax_reg, p0, (X, Y), steps=1, directions="lowrank", rank=0, progress=False)
    with pytest.raises(fwdjit.FwdjitError, match="for directions='lowrank'"):
        train(softmax_reg, p0, (X, Y), steps=1, rank=4, progress=False)
    with pytest.raises(fwdjit.FwdjitError, match="gradient='forward'"):
        train(softmax_reg, p0, (X, Y), steps=1, directions="lowrank", gradient="exact", progress=False)
