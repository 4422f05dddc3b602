"""Beale and Rosenbrock in 2-D: forward gradient descent vs exact-gradient descent.

The paper's first experiment (Baydin et al. 2022, Sec. 5.1): Beale for 1,000
iterations with eta = 0.01 and Rosenbrock (a = 1, b = 100) for 25,000
iterations with eta = 5e-4.  Both methods run as compiled fwdjit training
loops: forward gradient descent draws one normal direction per step (one
JVP); exact-gradient descent uses forward mode with the two basis tangents
(two JVPs per step, ``gradient="exact"``).  Forward gradient descent is run
for several seeds.

Writes ``toy_2d_{beale,rosenbrock}_{trajectories,loss_vs_iteration,loss_vs_time}.png``
into ``--out`` (default: the current directory) and prints a summary table.

    python examples/toy_2d.py [--out DIR (default: .)] [--seeds 5] [--scale 1.0]

``--scale 0.1`` runs a tenth of the iterations (the smoke test uses it).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

try:
    import fwdjit  # noqa: F401
except ImportError:       # running from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fwdjit.experiments.demo import format_table, machine_description
from fwdjit.training.loop import train


def beale(p):
    x = p[0]
    y = p[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y * y * y) ** 2


def rosenbrock(p):
    x = p[0]
    y = p[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


PROBLEMS = {
    # name: (function, start, iterations, eta, minimum, plot box)
    # starts: Beale (1, 1); Rosenbrock the classic (-1.2, 1) (the paper does not give its starts)
    "beale": (beale, (1.0, 1.0), 1000, 0.01, (3.0, 0.5), (0.0, 3.6, -0.6, 1.6)),
    "rosenbrock": (rosenbrock, (-1.2, 1.0), 25000, 5e-4, (1.0, 1.0), (-1.6, 1.4, -0.4, 1.6)),
}


def _trajectory(fn, start, steps, eta, gradient, seed):
    """Parameters after every step (one compiled call per step would be slow: re-run with callbacks)."""
    path = [np.array(start, float)]
    res = train(fn, (np.array(start, float),), steps=steps, lr=eta, gradient=gradient, seed=seed, progress=False,
                callback=lambda step, p: path.append(p[0].copy()) or None, callback_every=1)
    return res, np.array(path)


def run(name, seeds=5, scale=1.0):
    fn, start, iters, eta, xmin, box = PROBLEMS[name]
    steps = max(10, int(iters * scale))
    runs = []
    res, path = _trajectory(fn, start, steps, eta, "exact", 0)
    # timing run without per-step callbacks (the compiled loop only)
    timed = train(fn, (np.array(start, float),), steps=steps, lr=eta, gradient="exact", progress=False)
    runs.append(("exact gradient (2 JVPs/step)", res, timed, path))
    for s in range(seeds):
        res, path = _trajectory(fn, start, steps, eta, "forward", s)
        timed = train(fn, (np.array(start, float),), steps=steps, lr=eta, seed=s, progress=False)
        runs.append((f"forward gradient, seed {s}", res, timed, path))
    return {"name": name, "steps": steps, "eta": eta, "start": start, "xmin": xmin, "box": box, "fn": fn,
            "runs": runs}


_COLORS = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9"]      # forward-gradient seeds; the exact gradient is black
_EXACT = dict(color="k", lw=1.3, ls="--", zorder=4)              # dashed and on top: the paths under it stay visible


def _fg_style(k):
    return dict(color=_COLORS[(k - 1) % len(_COLORS)], lw=0.9, alpha=0.85, zorder=3)


def plot(result, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots")
        return []
    name, fn, box = result["name"], result["fn"], result["box"]
    seeds = len(result["runs"]) - 1
    setting = (f"{result['steps']:,} iterations, η = {result['eta']:g}, start {tuple(result['start'])}, "
               f"forward gradient: {seeds} seed{'s' if seeds != 1 else ''}")
    paths = []
    xs = np.linspace(box[0], box[1], 300)
    ys = np.linspace(box[2], box[3], 300)
    Xg, Yg = np.meshgrid(xs, ys)
    Z = np.vectorize(lambda a, b: fn(np.array([a, b])))(Xg, Yg)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), dpi=110)
    ax.contour(Xg, Yg, np.log1p(Z), levels=30, cmap="Greys", linewidths=0.6)
    for k, (label, _, _, path) in enumerate(result["runs"]):
        ax.plot(path[:, 0], path[:, 1], label=label, **(_EXACT if k == 0 else _fg_style(k)))
    ax.plot(*result["start"], "ko", ms=5, label="start", zorder=5)
    ax.plot(*result["xmin"], "k*", ms=10, label="minimum", zorder=5)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_xlabel("x  (first parameter)")
    ax.set_ylabel("y  (second parameter)")
    ax.set_title(f"{name}: descent paths on contours of log(1 + f)\n{setting}", fontsize=9)
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    p = os.path.join(out, f"toy_2d_{name}_trajectories.png")
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    longest = max(float(timed.times[-1]) for _, _, timed, _ in result["runs"])
    unit, per_s = ("µs", 1e6) if longest < 1e-3 else ("ms", 1e3) if longest < 1.0 else ("s", 1.0)
    for xkind in ("iteration", "time"):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
        for k, (label, _, timed, _) in enumerate(result["runs"]):
            x = np.arange(1, timed.steps_done + 1) if xkind == "iteration" else np.asarray(timed.times) * per_s
            ax.plot(x, np.maximum(timed.losses, 1e-16), label=f"{label}: final f = {timed.losses[-1]:.2g}",
                    **(_EXACT if k == 0 else _fg_style(k)))
        ax.set_yscale("log")
        ax.set_xlabel("iteration" if xkind == "iteration"
                      else f"wall-clock time in the compiled loop ({unit}), compilation excluded")
        ax.set_ylabel(f"f (loss, log scale; minimum f = {fn(np.array(result['xmin'], float)):.2g})")
        ax.set_title(f"{name}: loss vs {xkind}\n{setting}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = os.path.join(out, f"toy_2d_{name}_loss_vs_{xkind}.png")
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)
    return paths


def summary_rows(result):
    rows = []
    exact = result["runs"][0][2]
    fg = [r[2] for r in result["runs"][1:]]
    for label, timed in [("exact gradient", exact)] + [("forward gradient (median of seeds)", None)]:
        if timed is not None:
            rows.append([result["name"], label, result["steps"], f"{timed.losses[-1]:.3g}",
                         f"{timed.median_step_time * 1e9:.0f} ns", f"{timed.step_times.sum() * 1e3:.2f} ms"])
        else:
            rows.append([result["name"], label, result["steps"], f"{np.median([r.losses[-1] for r in fg]):.3g}",
                         f"{np.median([r.median_step_time for r in fg]) * 1e9:.0f} ns",
                         f"{np.median([r.step_times.sum() for r in fg]) * 1e3:.2f} ms"])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".", help="folder for the plots (default: the current directory)")
    ap.add_argument("--seeds", type=int, default=5, help="forward-gradient runs (seeds 0..n-1)")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the paper's iterations")
    ap.add_argument("--only", choices=list(PROBLEMS), help="run one problem")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    print(f"machine: {machine_description()}")
    rows, paths = [], []
    for name in ([args.only] if args.only else list(PROBLEMS)):
        res = run(name, args.seeds, args.scale)
        rows += summary_rows(res)
        paths += plot(res, args.out)
    print(format_table(["problem", "method", "iterations", "final f", "time/step (median)", "total time"], rows))
    print("(times are wall-clock inside the compiled loop; the exact gradient takes one JVP per coordinate)")
    for p in paths:
        print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
