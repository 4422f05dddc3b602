"""Distributed forward-gradient training (fwdjit.training.distributed) on Dask.

Data order: step ``t``'s global minibatch is row ``t`` of
``fwdjit.training.loop.minibatch_indices(N, batch_size, steps, seed)`` (what ``fwdjit.train``
uses); data-parallel splits it into contiguous even parts, worker ``w`` taking rows
``[w B / W, (w + 1) B / W)``.  So the single-process reference is ``fwdjit.train`` itself with
the same seed, global batch and total directions (``train`` is checked against NumPy reference
steps in test_train.py / test_train_lowrank.py).

Tolerances: direction-parallel evaluates the same JVPs on the same batch and applies the same
update kernels as ``train``: equal bit for bit.  Data-parallel averages per-shard means
(``0.5 mean(rows 0..31) + 0.5 mean(rows 32..63)`` instead of ``mean(rows 0..63)``): the
float32 sums are reassociated, so each ``d`` differs by a few float32 ulps (~1e-7 relative),
and these perturbations accumulate over the steps; after 30 SGD steps of the softmax regression
the parameters agree to ~1e-6 absolute (measured 2e-6 after 50 steps): we allow
``atol = 2e-5 * max|p|``, ``rtol = 1e-4``.

The tests with a LocalCluster (2 worker processes) are in the exhaustive tier (cluster start
and Numba compilation in each worker: ~20-60 s on a busy 2-core machine); the default tier runs
the worker logic in-process.
"""
import os
import signal

import numpy as np
import pytest

import fwdjit
from fwdjit.experiments.models import logreg_loss, mlp_loss
from fwdjit.training import distributed as dist

pytestmark = pytest.mark.xdist_group("distributed")

needs_dask = pytest.mark.skipif(not dist.available(),
                                reason="dask.distributed is not installed (pip install 'fwdjit[distributed]')")


def _problem(n=256, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, 784)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[r.integers(0, 10, n)]
    P = [(0.01 * r.standard_normal((784, 10))).astype(np.float32), np.zeros(10, np.float32)]
    return P, X, Y


KW = dict(batch_size=64, lr=1e-2, seed=5, progress=False)


def _close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-5 * float(np.max(np.abs(x))))


def _inprocess(parts, mode, P, X, Y, steps, K=1, **cfgkw):
    """Drive StepWorker objects in this process as the Dask driver does (no cluster)."""
    from fwdjit.training.loop import make_optimizer
    opt = make_optimizer(cfgkw.pop("optimizer", "sgd"))
    cfg = dist._config("logreg_loss", P, steps=steps, batch_size=64, lr=1e-2, lr_decay=0.0, optimizer=opt,
                       n_directions=K, distribution="normal", seed=5, clip=None, directions=cfgkw.get("directions",
                       "dense"), rank=cfgkw.get("rank", 1), parallel=mode, n_workers=len(parts))
    ws = [dist.StepWorker(logreg_loss, P, (X, Y), (), cfg, (mode,) + p) for p in parts]
    prev, log = None, []
    for t in range(steps):
        res = [w.step(t, prev) for w in ws]
        if mode == "data":
            prev = tuple(sum((hi - lo) / 64 * np.asarray(r[1]) for (lo, hi), r in zip(parts, res)))
        else:
            prev = tuple(x for r in res for x in r[1])
        log.append(prev)
    for w in ws:
        w.update(steps - 1, prev)
    assert len({w.checksum() for w in ws}) == 1
    ckpt = {"config": {k: v for k, v in cfg.items() if k not in ("optimizer_obj", "seed_i", "clip_v")},
            "optimizer": opt, "scalar_log": np.array(log)}
    return ws[0].params(), ckpt


# ------------------------------------------------------------ default tier (no cluster)
def test_without_dask_message():
    if dist.available():
        pytest.skip("dask.distributed is installed")
    with pytest.raises(ImportError):
        import distributed  # noqa: F401


@pytest.mark.parametrize("K,extra", [(1, {}), (2, {"directions": "lowrank", "rank": 2})])
def test_inprocess_directions_equal_train_bit_for_bit(K, extra):
    P, X, Y = _problem()
    ref = fwdjit.train(logreg_loss, P, (X, Y), steps=12, n_directions=2 * K, **KW, **extra)
    got, ckpt = _inprocess([(0, K), (K, 2 * K)], "directions", P, X, Y, 12, K=2 * K, **extra)
    for a, b in zip(ref.params, got):
        assert np.array_equal(a, b)
    # the checkpoint replays to the same parameters, bit for bit, without a JVP
    for a, b in zip(dist.replay(P, ckpt), got):
        assert np.array_equal(a, b)


def test_inprocess_data_parallel_close_to_train_and_replay_exact():
    P, X, Y = _problem()
    ref = fwdjit.train(logreg_loss, P, (X, Y), steps=12, **KW)
    got, ckpt = _inprocess([(0, 32), (32, 64)], "data", P, X, Y, 12)
    _close(ref.params, got)
    for a, b in zip(dist.replay(P, ckpt), got):
        assert np.array_equal(a, b)
    # one worker holding the whole batch computes exactly what train does
    one, _ = _inprocess([(0, 64)], "data", P, X, Y, 12)
    for a, b in zip(ref.params, one):
        assert np.array_equal(a, b)


def test_train_client_argument_checks():
    P, X, Y = _problem(64)

    class FakeClient:
        def scheduler_info(self, **kw):
            return {"workers": {"tcp://a": {}, "tcp://b": {}}}

    with pytest.raises(fwdjit.FwdjitError, match="parallel"):
        fwdjit.train(logreg_loss, P, (X, Y), steps=1, client=FakeClient(), parallel="pipeline")
    with pytest.raises(fwdjit.FwdjitError, match="2 workers for 1 directions"):
        fwdjit.train(logreg_loss, P, (X, Y), steps=1, client=FakeClient(), parallel="directions")


# ------------------------------------------------------------ LocalCluster (exhaustive tier)
@pytest.fixture(scope="module")
def client():
    if not dist.available():
        pytest.skip("dask.distributed is not installed (pip install 'fwdjit[distributed]')")
    from distributed import Client, LocalCluster
    # the workers inherit FWDJIT_CACHE_DIR (set by conftest) and share the compiled code
    cl = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cl)
    yield c
    c.close()
    cl.close()


@needs_dask
@pytest.mark.exhaustive
def test_cluster_data_and_directions_match_single_process(client):
    P, X, Y = _problem()
    ref = fwdjit.train(logreg_loss, P, (X, Y), steps=30, **KW)
    res = fwdjit.train(logreg_loss, P, (X, Y), steps=30, client=client, parallel="data", **KW)
    assert res.n_workers == 2 and res.scalar_log.shape == (30, 1)
    _close(ref.params, res.params)
    np.testing.assert_allclose(res.losses, ref.losses, rtol=1e-5)
    for a, b in zip(dist.replay(P, res.checkpoint()), res.params):      # bit for bit
        assert np.array_equal(a, b)
    ref4 = fwdjit.train(logreg_loss, P, (X, Y), steps=20, n_directions=4, optimizer="adam", **KW)
    res4 = fwdjit.train(logreg_loss, P, (X, Y), steps=20, n_directions=4, optimizer="adam", client=client,
                        parallel="directions", **KW)
    for a, b in zip(ref4.params, res4.params):
        assert np.array_equal(a, b)


@needs_dask
@pytest.mark.exhaustive
def test_cluster_lowrank_mlp(client):
    from fwdjit.experiments.models import init
    r = np.random.default_rng(1)
    X = r.random((128, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[r.integers(0, 10, 128)]
    P = init("mlp", seed=0, hidden=64)
    kw = dict(batch_size=32, lr=1e-3, seed=2, progress=False, directions="lowrank", rank=2, n_directions=2)
    ref = fwdjit.train(mlp_loss, P, (X, Y), steps=10, **kw)
    res = fwdjit.train(mlp_loss, P, (X, Y), steps=10, client=client, parallel="directions", **kw)
    for a, b in zip(ref.params, res.params):
        assert np.array_equal(a, b)
    resd = fwdjit.train(mlp_loss, P, (X, Y), steps=10, client=client, parallel="data", **kw)
    _close(ref.params, resd.params)


@needs_dask
@pytest.mark.exhaustive
def test_cluster_checkpoint_restart_on_other_worker_counts(client):
    P, X, Y = _problem()
    full = fwdjit.train(logreg_loss, P, (X, Y), steps=40, client=client, parallel="data", **KW)
    half = fwdjit.train(logreg_loss, P, (X, Y), steps=20, client=client, parallel="data", **KW)
    ck = half.checkpoint()
    assert np.array_equal(ck["scalar_log"], full.scalar_log[:20])
    # same number of workers: continues bit for bit
    again = dist.train_distributed(logreg_loss, P, (X, Y), steps=40, client=client, parallel="data", checkpoint=ck,
                                   **KW)
    assert again.config["steps_start"] == 20
    for a, b in zip(full.params, again.params):
        assert np.array_equal(a, b)
    # one worker: the replayed first half is exact, the second half differs only by the reassociated sums
    one = dist.train_distributed(logreg_loss, P, (X, Y), steps=40, client=client, parallel="data", checkpoint=ck,
                                 workers=sorted(client.scheduler_info(n_workers=-1)["workers"])[:1], **KW)
    assert one.n_workers == 1
    assert np.array_equal(one.scalar_log[:20], full.scalar_log[:20])
    _close(full.params, one.params)
    single = fwdjit.train(logreg_loss, P, (X, Y), steps=40, **KW)
    _close(single.params, one.params)


@needs_dask
@pytest.mark.exhaustive
def test_cluster_killed_worker_is_replaced_and_caught_up(client):
    P, X, Y = _problem()
    ref = fwdjit.train(logreg_loss, P, (X, Y), steps=30, client=client, parallel="data", **KW)
    pids = client.run(os.getpid)
    victim = sorted(pids)[1]
    killed = []

    def on_step(t, drv):
        if t == 12 and not killed:
            os.kill(pids[victim], signal.SIGKILL)        # the nanny starts a new worker process
            killed.append(t)

    res = dist.train_distributed(logreg_loss, P, (X, Y), steps=30, client=client, parallel="data",
                                 on_step=on_step, **KW)
    assert killed and res.restarts, res.restarts
    assert res.steps_done == 30
    for a, b in zip(ref.params, res.params):        # nothing lost: the same parameters bit for bit
        assert np.array_equal(a, b)
    assert np.array_equal(ref.scalar_log, res.scalar_log)
