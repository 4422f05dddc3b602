"""Markdown for README's benchmark section from the saved results of issue 13's benchmarks.

    python -m benchmarks.readme_snippet                 # from benchmarks/results/{forward_step,time_to_accuracy}.json
    python -m benchmarks.readme_snippet --quick         # from the *.quick.json smoke results (not for README)

Prints two compact tables (step targets, time to accuracy) with the machine
line, then the full tables each benchmark printed.  Nothing is written: paste
what fits into README.md after a run on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks.bench_env import fmt_t, md_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name, quick):
    p = os.path.join(ROOT, "benchmarks", "results", name + (".quick" if quick else "") + ".json")
    if not os.path.exists(p):
        return None, p
    with open(p) as f:
        return json.load(f), p


def step_table(d):
    res, T, R = d["result"], d["result"]["times"], d["result"].get("ratios", {})
    ref = res.get("reference")
    rows = []
    for label, key, target in (("JAX backprop SGD step (reference)", ref, None),
                               ("fwdjit FG step, rank 1 (compiled loop)", "fwdjit train, rank 1 (compiled loop)", 0.6),
                               ("fwdjit FG step, rank 4 (compiled loop)", "fwdjit train, rank 4 (compiled loop)", None),
                               ("fwdjit FG step, dense (compiled loop)", "fwdjit train, dense (compiled loop)", 1.0),
                               ("fwdjit `forward_grad` step from Python, dense",
                                "fwdjit forward_grad from Python, dense", None),
                               ("fwdjit `forward_grad` step from Python, rank 1",
                                "fwdjit forward_grad from Python, rank 1", None)):
        if key not in T:
            continue
        r = R.get(key)
        rows.append([label, fmt_t(T[key]["median_s"]), "-" if r is None else f"**{r:.2f}x**",
                     "-" if target is None else (f"≤ {target}: " + ("met" if r is not None and r <= target
                                                                   else "**not met**"))])
    sh = res.get("phase_share", {}).get("rank 1", {}).get("sampling_update")
    if sh is not None:
        rows.append(["sampling + update share of the rank-1 step", f"{100 * sh:.1f}%", "-",
                     "≤ 10%: " + ("met" if sh <= 0.10 else "**not met**")])
    return md_table(["per step (1 pinned core, median of rounds)", "time", "ratio to JAX", "target"], rows)


def tta_table(d):
    M = d["result"]["methods"]
    rows = []
    for name, m in M.items():
        r = m["race"]
        rc = r["reach"]

        def f(x, k):
            return "not reached" if x is None else f"{x[k]:.1f} s"
        rows.append([name, f"{m['best_lr']:g}", f(rc["80"], "train_s"), f(rc["80"], "with_compile_s"),
                     f(rc["90"], "train_s"), f"{100 * r['final_acc']:.1f}%"])
    return md_table(["method", "η₀ (best of grid)", "to 80%", "to 80% + compile", "to 90%",
                     f"test acc. after {d['result']['seconds']:g} s"], rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    for name, table in (("forward_step", step_table), ("time_to_accuracy", tta_table)):
        d, p = _load(name, args.quick)
        if d is None:
            print(f"<!-- {os.path.relpath(p, ROOT)} not found: run python -m benchmarks.bench_{name} first -->\n")
            continue
        m = d["machine"]
        print(f"<!-- from {os.path.relpath(p, ROOT)} -->")
        print(f"Machine: {m['cpu']}, load average {m.get('load_start')} → {m.get('load_end')}, {m['date']}.\n")
        print(table(d))
        print("\n<details><summary>full table</summary>\n")
        print(d["markdown"])
        print("\n</details>\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
