"""The paper's summary table (Baydin et al. 2022, Table 2 style) on this machine.

Runs the three MNIST models with forward gradients (fwdjit) and backprop
(JAX or PyTorch) from the same start on the same minibatches (see
examples/mnist.py) and prints, per model: time per step T_fwd and T_bwd, their
ratio, and the time each method needs to reach a loss both reach.  Also the
2-D problems (examples/toy_2d.py) unless ``--no-toy``.  Writes
``paper_table.md`` and ``paper_table.json`` into ``--out``.

    python examples/paper_table.py                      # default steps: logreg 25000, mlp 2000, cnn 40
    python examples/paper_table.py --scale 0.1          # a quick look
    python examples/paper_table.py --idx ~/data/mnist   # full MNIST

The paper reports (PyTorch, GPU) T_fwd/T_bwd = 0.553 for logistic regression
(same iterations), 0.229-0.567 for the MLP (time to backprop's final loss),
and R_f = 2.46 vs R_b = 4.17 evaluations of f for the MLP (ratio 0.59).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

try:
    import fwdjit  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mnist  # noqa: E402
import toy_2d  # noqa: E402
from fwdjit.experiments.demo import format_table, machine_description  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="logreg,mlp,cnn")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the default steps")
    ap.add_argument("--idx", help="folder with the MNIST IDX files (default: the shipped 5k subset)")
    ap.add_argument("--backprop", default="auto", choices=["auto", "jax", "torch", "none"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-toy", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    machine = machine_description()
    print(f"machine: {machine}")
    results = []
    for m in args.models.split(","):
        steps = max(5, int(mnist.DEFAULT_STEPS[m] * args.scale))
        results.append(mnist.run_model(m, steps, idx_dir=args.idx, backprop=args.backprop,
                                       threads=args.threads, out=args.out,
                                       progress=not args.quiet))
    table = format_table(mnist.HEADERS, mnist.table_rows(results))
    lines = [f"Machine: {machine}", f"Backprop: {results[0]['backprop_backend']}", f"Data: {results[0]['data']}",
             "Settings: batch 64, SGD eta_i = 2e-4 exp(-1e-4 i), normal directions, same start and minibatches.",
             "", table, "",
             "T = mean wall time per step; L = the larger of the two final losses (moving average of 100 steps);",
             "'T_fwd/T_bwd to L' = wall time to reach L, forward gradient over backprop."]
    toy_rows = []
    if not args.no_toy:
        for name in toy_2d.PROBLEMS:
            toy_rows += toy_2d.summary_rows(toy_2d.run(name, 5, args.scale))
        lines += ["", format_table(["problem", "method", "iterations", "final f", "time/step (median)",
                                    "total time"], toy_rows)]
    text = "\n".join(lines)
    print()
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "paper_table.md"), "w") as f:
        f.write("```\n" + text + "\n```\n")
    with open(os.path.join(args.out, "paper_table.json"), "w") as f:
        json.dump({"machine": machine, "mnist": results, "toy": toy_rows}, f, indent=1, default=float)
    print(f"\nwrote {os.path.join(args.out, 'paper_table.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
