"""Train the MNIST MLP with forward gradients on 2 Dask workers: only scalars travel per step.

    python examples/distributed_mnist.py                      # starts a LocalCluster, 2 workers
    python examples/distributed_mnist.py --parallel directions --directions 2
    python examples/distributed_mnist.py --scheduler tcp://host:8786   # a running cluster

On a real cluster: ``dask scheduler`` on one machine, ``dask worker tcp://host:8786 --nthreads 1``
on each of the others (same Python environment with fwdjit, and ``FWDJIT_CACHE_DIR`` pointing
at a folder on each machine), then pass ``--scheduler``.  The data are sent to each worker once;
per step each worker receives the previous step's combined scalars and returns its own.
Data: the 5,000-image MNIST subset shipped with fwdjit (4,000 train, 1,000 test).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

try:
    import fwdjit  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fwdjit
from fwdjit.experiments import data, models
from fwdjit.training import distributed as dist


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--parallel", choices=("data", "directions"), default="data")
    ap.add_argument("--directions", type=int, default=1, help="directions per step (all workers together)")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster)")
    a = ap.parse_args(argv)
    if not dist.available():
        sys.exit("needs dask.distributed: pip install 'fwdjit[distributed]'")
    from distributed import Client, LocalCluster

    imgs, labels = data.load_mnist_subset()
    tr_x, tr_y, te_x, te_y = data.split_subset(imgs, labels)
    X = (tr_x.reshape(len(tr_x), -1) / 255.0).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[tr_y]
    Xt = (te_x.reshape(len(te_x), -1) / 255.0).astype(np.float32)
    P = models.init("mlp", seed=0, hidden=a.hidden)
    cluster = None
    if a.scheduler:
        client = Client(a.scheduler)
    else:     # the workers inherit this process's environment, FWDJIT_CACHE_DIR included
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        client.wait_for_workers(a.workers)
        res = fwdjit.train(models.mlp_loss, P, (X, Y), steps=a.steps, batch_size=64, lr=a.lr, seed=0,
                           n_directions=a.directions, client=client, parallel=a.parallel)
        print(res.summary())
        print(f"{res.n_workers} workers, {a.parallel}-parallel: median exchange round trip "
              f"{np.median(res.round_trip) * 1e3:.2f} ms per step; checkpoint = {res.scalar_log.size} scalars")
        acc = models.accuracy("mlp", res.params, Xt, te_y)
        print(f"test accuracy {acc:.3f}")
        again = dist.replay(P, res.checkpoint())        # from the scalar log alone, no JVP
        print("replay of the checkpoint gives the same parameters:",
              all(np.array_equal(x, y) for x, y in zip(again, res.params)))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
