"""fwdjit.train: compiled training loops (tiny problems, so the tests stay fast)."""
import io
import math

import numpy as np
import pytest

import fwdjit
from fwdjit.training import rng
from fwdjit.training.loop import Adam, Momentum, SGD, minibatch_indices, train


def linreg(w, b, X, y):
    r = X @ w + b[0] - y
    return np.sum(r * r) / X.shape[0]


def quad(x):
    return 0.5 * np.sum(C_QUAD * x * x)


C_QUAD = np.array([1.0, 2.0, 4.0])


def rosen(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def _data(n=40, d=3, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d)).astype(dtype)
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(dtype)
    return X, y


def test_same_seed_same_result_any_chunking():
    X, y = _data()
    p0 = (np.zeros(3), np.zeros(1))
    kw = dict(steps=157, batch_size=8, lr=0.01, seed=3, progress=False)
    r1 = train(linreg, p0, (X, y), **kw)
    r2 = train(linreg, p0, (X, y), chunk_seconds=1e-7, **kw)      # one step per chunk
    r3 = train(linreg, p0, (X, y), **{**kw, "seed": 4})
    for a, b in zip(r1.params, r2.params):
        assert np.array_equal(a, b)
    assert np.array_equal(r1.losses, r2.losses)
    assert not np.array_equal(r1.params[0], r3.params[0])
    assert np.all(p0[0] == 0)                                      # inputs are not modified
    assert r1.steps_done == 157 and r1.losses.shape == (157,) and r1.step_times.shape == (157,)
    assert np.all(np.diff(r1.times) >= 0)


@pytest.mark.parametrize("dist", ["normal", "rademacher"])
@pytest.mark.parametrize("K", [1, 3])
def test_forward_gradient_training_learns(dist, K):
    X, y = _data(200)
    r = train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=3000, batch_size=16, lr=0.02,
              n_directions=K, distribution=dist, seed=1, progress=False)
    assert r.losses[-50:].mean() < 0.05 * r.losses[:10].mean()
    np.testing.assert_allclose(r.params[0], [1.0, -2.0, 0.5], atol=0.1)


def _reference(opt, x0, grad, steps, lr, decay):
    """Optimizer formulas in plain Python (float64) for gradient='exact'."""
    x = x0.copy()
    m = np.zeros_like(x)
    s = np.zeros_like(x)
    for t in range(steps):
        g = grad(x)
        eta = lr * math.exp(-decay * t)
        if opt == "sgd":
            x = x - eta * g
        elif opt == "momentum":
            m = 0.9 * m + g
            x = x - eta * m
        elif opt == "nesterov":
            m = 0.9 * m + g
            x = x - eta * (g + 0.9 * m)
        elif opt == "adam":
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * g * g
            mh = m / (1 - 0.9 ** (t + 1))
            sh = s / (1 - 0.999 ** (t + 1))
            x = x - eta * mh / (np.sqrt(sh) + 1e-8)
    return x


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam"])
def test_optimizers_match_reference_with_exact_gradient(opt):
    x0 = np.array([1.0, -1.0, 0.5])
    r = train(quad, (x0,), steps=40, lr=0.05, lr_decay=0.01, optimizer=opt, gradient="exact", progress=False)
    ref = _reference(opt, x0, lambda x: C_QUAD * x, 40, 0.05, 0.01)
    np.testing.assert_allclose(r.params[0], ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.lr, 0.05 * np.exp(-0.01 * np.arange(40)))


def test_optimizer_objects():
    assert repr(Momentum(0.5)) == "Momentum(mu=0.5, nesterov=False)"
    x0 = np.array([1.0, -1.0, 0.5])
    r = train(quad, (x0,), steps=5, lr=0.05, optimizer=Adam(b1=0.5), gradient="exact", progress=False)
    assert r.params[0].shape == (3,)
    r = train(quad, (x0,), steps=5, lr=0.05, optimizer=SGD(), progress=False)
    assert "SGD" in r.config["optimizer"]
    with pytest.raises(fwdjit.FwdjitError):
        train(quad, (x0,), steps=5, optimizer="lbfgs", progress=False)


def test_minibatches_match_reference():
    """Exact-gradient SGD on minibatches equals a Python loop over minibatch_indices."""
    X, y = _data(30)
    idx = minibatch_indices(30, 7, 12, seed=5)
    assert idx.shape == (12, 7)
    per_epoch = 30 // 7
    for e in range(3):       # each epoch draws distinct rows
        rows = idx[e * per_epoch:(e + 1) * per_epoch].ravel()
        assert len(set(rows.tolist())) == rows.size
    r = train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=12, batch_size=7, lr=0.05, gradient="exact",
              seed=5, progress=False)
    w, b = np.zeros(3), np.zeros(1)
    for t in range(12):
        Xb, yb = X[idx[t]], y[idx[t]]
        res = Xb @ w + b[0] - yb
        gw = 2 * Xb.T @ res / 7
        gb = np.array([2 * res.sum() / 7])
        w, b = w - 0.05 * gw, b - 0.05 * gb
    np.testing.assert_allclose(r.params[0], w, rtol=1e-10)
    np.testing.assert_allclose(r.params[1], b, rtol=1e-10)


def test_exact_descent_rosenbrock_and_phases():
    r = train(rosen, (np.array([-1.5, 2.0]),), steps=2000, lr=5e-4, gradient="exact", progress=False,
              timing="phases")
    assert r.losses[-1] < 0.5 * r.losses[0]
    assert r.phase_times.shape == (2000, 4)
    share = r.phase_share()
    assert set(share) == {"batch", "directions", "jvp", "update"}
    assert 0.0 <= r.sampling_update_share() <= 1.0


def test_float32_parameters_stay_float32():
    X, y = _data(64, dtype=np.float32)
    r = train(linreg, (np.zeros(3, np.float32), np.zeros(1, np.float32)), (X, y), steps=50, batch_size=16,
              lr=0.01, progress=False, timing="phases")
    assert r.params[0].dtype == np.float32 and r.params[1].dtype == np.float32
    assert np.isfinite(r.losses).all()


def test_progress_bar_and_callback():
    buf = io.StringIO()
    import tqdm.auto as ta
    orig = ta.tqdm

    def patched(*a, **k):
        k["file"] = buf
        return orig(*a, **k)
    ta.tqdm = patched
    try:
        seen = []
        r = train(quad, (np.ones(3),), steps=30, lr=0.01, progress=True, desc="tiny",
                  callback=lambda step, p: seen.append(step) or {"norm": float(np.linalg.norm(p[0]))},
                  callback_every=10)
    finally:
        ta.tqdm = orig
    out = buf.getvalue()
    assert "tiny" in out and "30/30" in out and "loss" in out
    assert seen == [10, 20, 30]
    assert [e[0] for e in r.evals] == [10, 20, 30] and "norm" in r.evals[0][2]


def test_stops_on_nan_and_time_limit():
    r = train(quad, (np.ones(3),), steps=500, lr=10.0, gradient="exact", progress=False)
    assert r.stopped is not None and "finite" in r.stopped and r.steps_done < 500
    r = train(rosen, (np.array([-1.5, 2.0]),), steps=10 ** 9, lr=1e-6, progress=False, max_seconds=0.3)
    assert r.stopped is not None and "time limit" in r.stopped
    assert 0 < r.steps_done < 10 ** 9


def test_argument_errors():
    X, y = _data()
    with pytest.raises(fwdjit.FwdjitError):
        train(linreg, (np.zeros(3),), (X, y), steps=1, progress=False)
    with pytest.raises(fwdjit.FwdjitError):
        train(linreg, (np.zeros(3, np.int64), np.zeros(1)), (X, y), steps=1, progress=False)
    with pytest.raises(fwdjit.FwdjitError):
        train(linreg, (np.zeros(3), np.zeros(1)), (X, y[:5]), steps=1, progress=False)
    with pytest.raises(fwdjit.FwdjitError):
        train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=1, batch_size=1000, progress=False)


def test_source_is_inspectable_and_directions_are_counter_based():
    r = train(quad, (np.ones(3),), steps=1, lr=0.1, seed=9, progress=False)
    assert "def chunk(" in r.source and "update_resample" in r.source
    # step 0 of seed 9: v from derive(derive(seed_key(9), 0, 0), 7, 0); x1 = x0 - lr (grad . v) v
    v = np.empty(3)
    rng.fill_normal(v, rng.derive(rng.derive(rng.seed_key(9), 0, 0), 7, 0))
    g = C_QUAD * np.ones(3)
    np.testing.assert_allclose(r.params[0], np.ones(3) - 0.1 * (g @ v) * v, rtol=1e-12)
