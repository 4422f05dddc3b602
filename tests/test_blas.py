"""fwdjit.training.blas: BLAS threads set around compiled calls (threadpoolctl) and restored afterwards.

The thread counts are read with ``threadpoolctl.threadpool_info()`` (what the
BLAS libraries themselves report), never from fwdjit's own bookkeeping.
OPENBLAS_CORETYPE is never touched here.
"""
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fwdjit
from fwdjit.training import blas
from fwdjit.training import estimator as forward_mod
from fwdjit.errors import FwdjitError
from fwdjit.training.loop import train


def sq(x):
    return np.sum(x * x)


def linreg(w, b, X, y):
    r = X @ w + b[0] - y
    return np.sum(r * r) / X.shape[0]


def blas_counts():
    """{filepath: num_threads} of every BLAS library, as threadpoolctl reads them now."""
    blas._blas_libs()            # SciPy's BLAS loaded (the one Numba calls)
    return {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}


needs_2_cpus = pytest.mark.skipif(blas.available_cpus() < 2, reason="needs 2 CPUs to tell thread counts apart")


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    """No user setting, no environment variable; the pools' own numbers checked unchanged afterwards."""
    monkeypatch.delenv(blas.ENV_VAR, raising=False)
    blas.set_blas_threads(None)
    before = blas_counts()
    yield
    blas.set_blas_threads(None)
    assert blas_counts() == before
    assert blas._held["depth"] == 0


@pytest.fixture
def wide():
    """The BLAS pools at every available CPU (so that 1 is a visible change)."""
    with threadpool_limits(limits=blas.available_cpus(), user_api="blas"):
        yield blas.available_cpus()


@pytest.fixture
def spy(monkeypatch):
    """forward_grad's dispatcher wrapped so that it records the BLAS threads while it runs."""
    seen = []
    real = forward_mod.forward_grad_function

    def wrapped(*a, **k):
        disp = real(*a, **k)

        def call(*args):
            seen.append(blas_counts())
            return disp(*args)
        return call
    monkeypatch.setattr(forward_mod, "forward_grad_function", wrapped)
    return seen


def test_there_is_a_blas_to_control():
    assert blas_counts(), "threadpoolctl finds no BLAS library (NumPy's and SciPy's OpenBLAS are expected)"
    for d in blas.blas_info():
        assert d["user_api"] == "blas" and "num_threads" in d


def test_default_policy(monkeypatch):
    for cpus, want in [(1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (64, blas.DEFAULT_CAP)]:
        monkeypatch.setattr(blas, "available_cpus", lambda c=cpus: c)
        assert blas.default_blas_threads() == want
        assert blas.get_blas_threads() == want
    monkeypatch.setattr(blas, "available_cpus", lambda: 3)
    assert blas.get_blas_threads(8) == 3               # never more threads than CPUs
    blas.set_blas_threads(100)
    assert blas.get_blas_threads() == 3


def test_available_cpus_follows_affinity():
    import os
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity")
    assert blas.available_cpus() <= len(os.sched_getaffinity(0))
    assert blas.available_cpus() >= 1


@needs_2_cpus
def test_forward_grad_sets_threads_during_the_call_and_restores(wide, spy):
    before = blas_counts()
    assert set(before.values()) == {wide}
    value, g = fwdjit.forward_grad(sq, (np.ones(4),), seed=1)
    assert value == 4.0 and g.shape == (4,)
    during = spy[-1]
    assert set(during.values()) == {blas.default_blas_threads()}
    assert blas_counts() == before


@needs_2_cpus
def test_set_blas_threads_env_and_block(wide, spy, monkeypatch):
    x = (np.ones(3),)
    assert fwdjit.set_blas_threads(1) == "auto"
    fwdjit.forward_grad(sq, x)
    assert set(spy[-1].values()) == {1}
    assert fwdjit.set_blas_threads("keep") == 1
    fwdjit.forward_grad(sq, x)
    assert set(spy[-1].values()) == {wide}              # left alone
    assert fwdjit.get_blas_threads() is None
    fwdjit.set_blas_threads(None)
    monkeypatch.setenv(blas.ENV_VAR, "1")
    fwdjit.forward_grad(sq, x)
    assert set(spy[-1].values()) == {1}
    monkeypatch.setenv(blas.ENV_VAR, "0")
    fwdjit.forward_grad(sq, x)
    assert set(spy[-1].values()) == {wide}
    fwdjit.set_blas_threads(2)                          # the setting beats the environment
    monkeypatch.setenv(blas.ENV_VAR, "1")
    assert fwdjit.get_blas_threads() == 2
    with fwdjit.blas_threads(1):                        # a block beats both, for fwdjit's calls too
        assert set(blas_counts().values()) == {1}
        fwdjit.forward_grad(sq, x)
        assert set(spy[-1].values()) == {1}
        assert set(blas_counts().values()) == {1}
    assert set(blas_counts().values()) == {wide}


@needs_2_cpus
def test_train_sets_threads_during_training_and_restores(wide):
    r = np.random.default_rng(0)
    X = r.standard_normal((32, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    seen = []

    def cb(step, params):
        seen.append(blas_counts())
    before = blas_counts()
    res = train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=20, batch_size=8, lr=0.01,
                progress=False, callback=cb, callback_every=10)
    assert len(seen) == 2 and all(set(s.values()) == {blas.default_blas_threads()} for s in seen)
    assert res.config["blas_threads"] == blas.default_blas_threads()
    assert blas_counts() == before
    seen.clear()
    res = train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=20, batch_size=8, lr=0.01,
                progress=False, callback=cb, callback_every=10, blas_threads_n=0)
    assert all(set(s.values()) == {wide} for s in seen) and res.config["blas_threads"] is None
    seen.clear()
    res = train(linreg, (np.zeros(3), np.zeros(1)), (X, y), steps=20, batch_size=8, lr=0.01,
                progress=False, callback=cb, callback_every=10, blas_threads_n=10_000)
    assert all(set(s.values()) == {blas.available_cpus()} for s in seen)
    assert blas_counts() == before


def test_restored_after_an_error(spy):
    before = blas_counts()
    with pytest.raises(FwdjitError):
        fwdjit.forward_grad(sq, (np.ones(3),), wrt=3)
    with pytest.raises(ZeroDivisionError):
        with fwdjit.blas_threads(1):
            1 / 0
    assert blas_counts() == before


@needs_2_cpus
def test_calls_from_several_threads_restore_the_pools_once(wide):
    before = blas_counts()
    errors = []
    start = threading.Barrier(4)

    def work():
        try:
            start.wait()
            for i in range(20):
                fwdjit.forward_grad(sq, (np.ones(8),), seed=i)
        except Exception as exc:       # pragma: no cover - reported below
            errors.append(exc)
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert blas_counts() == before


def test_bad_settings_are_refused(monkeypatch):
    for bad in (-1, 1.5, "two", True):
        with pytest.raises(FwdjitError):
            fwdjit.set_blas_threads(bad)
    monkeypatch.setenv(blas.ENV_VAR, "lots")
    with pytest.raises(FwdjitError, match=blas.ENV_VAR):
        fwdjit.forward_grad(sq, (np.ones(3),))
    monkeypatch.setenv(blas.ENV_VAR, " Auto ")
    assert fwdjit.get_blas_threads() == blas.default_blas_threads()
