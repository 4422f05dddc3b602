"""The differential fuzzer's command line.

    python -m tests.fuzz --count 300              # programs from seed 0, summary at the end
    python -m tests.fuzz --long 10000 --json out.json --shrink --save-dir /tmp/fuzz-found
    python -m tests.fuzz --show 123               # print the program of seed 123
    python -m tests.fuzz --repro 123              # check seed 123 and print the outcome

Programs run in worker processes, ``--chunk`` programs each (a fresh process
bounds memory and survives a crash of compiled code); ``--jobs`` workers at
a time (default 1).  Workers compile with ``NUMBA_OPT=0`` unless ``--opt``
is given: LLVM's optimizer does not change IEEE results without fastmath
and skipping it halves compile time.  ``--time-budget`` stops launching
programs after that many seconds (the count actually run is reported).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _avoid(args):
    """The generator's known-bug avoidance set: gen.KNOWN_BUGS unless --avoid is given."""
    if args.avoid is None:
        return None
    return {a for a in args.avoid.split(",") if a}


def _worker(args):
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests.fuzz.gen import generate
    from tests.fuzz.runner import check_program
    from tests.fuzz.shrink import shrink
    from tests.fuzz.regress import write_regression
    from fwdjit.testing import random_tangents
    workdir = tempfile.mkdtemp(prefix="fwdjit-fuzz-")
    deadline = args.deadline or float("inf")
    out = open(args.out, "a", encoding="utf-8")

    def log(rec):
        out.write(json.dumps(rec) + "\n")
        out.flush()

    for seed in range(args.seeds[0], args.seeds[1]):
        if time.time() > deadline:
            break
        log({"start": seed})
        t0 = time.time()
        prog = generate(seed, dtype=args.dtype, avoid=_avoid(args))
        prog.meta["tangents"] = list(random_tangents(tuple(prog.args), seed=seed))
        oc = check_program(prog, workdir)
        rec = {"seed": seed, "status": oc.status, "stage": oc.stage, "exc": oc.exc_type,
               "configs": oc.configs, "seconds": round(time.time() - t0, 3),
               "full": bool(oc.extra.get("full")), "lines": prog.source.count("\n"), "dtype": prog.dtype}
        if oc.extra.get("dtype_deviation"):
            rec["dtype_deviation"] = oc.extra["dtype_deviation"]
        if oc.failed:
            rec["detail"] = oc.detail[:4000]
            rec["mask"] = list(oc.mask)
            rec["source"] = prog.source
            rec["traceback"] = oc.extra.get("traceback", "")[-3000:]
            sig = "-".join(str(x) for x in oc.signature())
            done_before = 0
            if args.shrink_dir:
                os.makedirs(args.shrink_dir, exist_ok=True)
                done_before = sum(1 for n in os.listdir(args.shrink_dir) if n.startswith(sig + "@"))
            if args.shrink and time.time() < deadline and done_before < args.shrinks_per_kind:
                if args.shrink_dir:
                    open(os.path.join(args.shrink_dir, f"{sig}@{seed}"), "w").close()
                target = oc.signature()
                prog.meta["mask"] = tuple(oc.mask)
                full = bool(oc.extra.get("full")) or oc.stage == "full"
                primal = oc.stage == "primal"

                def still_fails(cand):
                    mask = cand.meta.get("mask") or ()
                    c = check_program(cand, workdir, configs=[tuple(mask)], full=full, check_primal=primal)
                    return c.signature() == target

                small, attempts = shrink(prog, still_fails, max_attempts=args.shrink_attempts,
                                         max_seconds=args.shrink_seconds)
                rec["shrunk_source"] = small.source
                rec["shrink_attempts"] = attempts
                final = check_program(small, workdir, configs=[tuple(small.meta.get("mask") or ())], full=full,
                                      check_primal=primal)
                rec["shrunk_detail"] = final.detail[:4000]
                if args.save_dir:
                    small.meta["full"] = full
                    path = write_regression(small, final, f"seed{seed}_{oc.status}_{oc.stage}",
                                            title=f"{oc.status} ({oc.stage}) {oc.exc_type}".strip(),
                                            xfail="bug: found by the fuzzer, not yet triaged",
                                            directory=args.save_dir)
                    rec["saved"] = path
        elif oc.status in ("numba", "invalid"):
            rec["detail"] = oc.detail[:500]
        log(rec)
    out.close()
    return 0


def _summarize(records, elapsed, died):
    from collections import Counter
    st = Counter(r["status"] for r in records)
    configs = sum(r.get("configs", 0) for r in records)
    failures = [r for r in records if r["status"] in ("mismatch", "crash")]
    return {
        "programs": len(records),
        "by_status": dict(st),
        "patterns_checked": configs,
        "full_jvp_programs": sum(1 for r in records if r.get("full")),
        "float32_programs": sum(1 for r in records if r.get("dtype") == "float32"),
        "float32_dtype_deviations": sum(1 for r in records if r.get("dtype_deviation")),
        "dtype_deviation_seeds": [r["seed"] for r in records if r.get("dtype_deviation")][:50],
        "mismatches": st.get("mismatch", 0),
        "crashes": st.get("crash", 0) + len(died),
        "worker_deaths": died,
        "seconds": round(elapsed, 1),
        "programs_per_second": round(len(records) / elapsed, 3) if elapsed else None,
        "failures": [{k: r.get(k) for k in ("seed", "status", "stage", "exc", "mask", "detail", "saved",
                                              "shrunk_source", "source")} for r in failures],
    }


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100, help="number of programs (default 100)")
    p.add_argument("--long", type=int, metavar="N", help="long run: N programs, shrink and save failures")
    p.add_argument("--seed", type=int, default=0, help="first seed (programs use seed, seed+1, ...)")
    p.add_argument("--chunk", type=int, default=100, help="programs per worker process")
    p.add_argument("--jobs", type=int, default=1, help="worker processes at a time")
    p.add_argument("--time-budget", type=float, default=None, help="stop starting programs after SEC seconds")
    p.add_argument("--json", help="write the summary (and every failure) to this file")
    p.add_argument("--log", help="append one JSON line per program to this file")
    p.add_argument("--shrink", action="store_true", help="shrink failing programs")
    p.add_argument("--shrink-attempts", type=int, default=300)
    p.add_argument("--shrink-seconds", type=float, default=600)
    p.add_argument("--save-dir", help="write shrunk failures as regression modules here")
    p.add_argument("--shrinks-per-kind", type=int, default=3,
                   help="shrink at most this many failures of each kind (status, stage, exception) per run")
    p.add_argument("--shrink-dir", help=argparse.SUPPRESS)
    p.add_argument("--program-timeout", type=float, default=1800,
                   help="kill a worker that reports nothing for this many seconds (default 1800)")
    p.add_argument("--opt", action="store_true", help="compile with Numba's default optimization level")
    p.add_argument("--show", type=int, metavar="SEED", help="print the program of SEED and exit")
    p.add_argument("--repro", type=int, metavar="SEED", help="check the program of SEED in this process")
    p.add_argument("--dtype", choices=["float32", "float64"], help="force this float dtype (default: by seed, "
                   "20%% float32)")
    p.add_argument("--avoid", help="comma-separated known bugs the generator steers around (default: "
                   "gen.KNOWN_BUGS; '' for none), e.g. augmul_self to reproduce seeds of older runs")
    p.add_argument("--quiet", action="store_true")
    # internal: worker mode
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        return _worker(args)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    if args.show is not None:
        from tests.fuzz.gen import generate
        prog = generate(args.show, dtype=args.dtype, avoid=_avoid(args))
        print(prog.source)
        print("# args:", prog.args)
        return 0
    if args.repro is not None:
        from tests.fuzz.gen import generate
        from tests.fuzz.runner import check_program
        prog = generate(args.repro, dtype=args.dtype, avoid=_avoid(args))
        print(prog.source)
        oc = check_program(prog, tempfile.mkdtemp(prefix="fwdjit-fuzz-"))
        print(oc.status, oc.stage, oc.exc_type, oc.mask)
        print(oc.detail)
        if oc.extra.get("traceback"):
            print(oc.extra["traceback"])
        return 0 if not oc.failed else 1

    if args.long:
        args.count = args.long
        args.shrink = True
    t0 = time.time()
    end = args.seed + args.count
    deadline = t0 + args.time_budget if args.time_budget else None
    run_dir = tempfile.mkdtemp(prefix="fwdjit-fuzz-run-")
    env = dict(os.environ)
    env.setdefault("FWDJIT_CACHE_DIR", os.path.join(run_dir, "cache"))
    if not args.opt:
        env["NUMBA_OPT"] = "0"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    records, died = [], []
    pending = []                 # (start, stop) seed ranges still to run
    for s in range(args.seed, end, args.chunk):
        pending.append((s, min(end, s + args.chunk)))
    running = []                 # (proc, range, outfile)
    logf = open(args.log, "a", encoding="utf-8") if args.log else None

    def launch(rng):
        outfile = os.path.join(run_dir, f"w{rng[0]}.jsonl")
        cmd = [sys.executable, "-m", "tests.fuzz", "--worker", "--seeds", str(rng[0]), str(rng[1]), "--out", outfile,
               "--shrink-attempts", str(args.shrink_attempts), "--shrink-seconds", str(args.shrink_seconds)]
        if args.shrink:
            cmd += ["--shrink", "--shrink-dir", os.path.join(run_dir, "shrinks"),
                    "--shrinks-per-kind", str(args.shrinks_per_kind)]
        if args.dtype:
            cmd += ["--dtype", args.dtype]
        if args.avoid is not None:
            cmd += ["--avoid", args.avoid]
        if args.save_dir:
            cmd += ["--save-dir", os.path.abspath(args.save_dir)]
        if deadline:
            cmd += ["--deadline", str(deadline)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        running.append((proc, rng, outfile))

    def collect(proc, rng, outfile):
        _, err = proc.communicate()
        last_start, done = None, set()
        if os.path.exists(outfile):
            with open(outfile, encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    if "start" in rec:
                        last_start = rec["start"]
                        continue
                    records.append(rec)
                    done.add(rec["seed"])
                    if logf:
                        logf.write(line)
                        logf.flush()
                    if not args.quiet and rec["status"] in ("mismatch", "crash"):
                        print(f"seed {rec['seed']}: {rec['status']} ({rec['stage']}) {rec.get('exc', '')}: "
                              f"{(rec.get('detail') or '').splitlines()[:1]}", flush=True)
        if proc.returncode != 0:
            if last_start is not None and last_start not in done:
                died.append({"seed": last_start, "returncode": proc.returncode,
                             "stderr": err.decode(errors="replace")[-2000:]})
                print(f"seed {last_start}: worker died (return code {proc.returncode})", flush=True)
                nxt = last_start + 1
            else:
                nxt = (max(done) + 1) if done else rng[0]
                if not done:
                    print(err.decode(errors="replace")[-3000:], file=sys.stderr)
                    raise SystemExit("fuzz worker failed before running a program")
            if nxt < rng[1] and not (deadline and time.time() > deadline):
                pending.insert(0, (nxt, rng[1]))

    while pending or running:
        while pending and len(running) < args.jobs and not (deadline and time.time() > deadline):
            launch(pending.pop(0))
        if not running:
            break
        time.sleep(0.2)
        for item in list(running):
            proc, _, outfile = item
            # watchdog: a worker silent for too long is stuck in compiled code: kill it (reported as a death)
            if proc.poll() is None and os.path.exists(outfile) and \
                    time.time() - os.path.getmtime(outfile) > args.program_timeout:
                proc.kill()
            if proc.poll() is not None:
                running.remove(item)
                collect(*item)
        if not args.quiet and records and len(records) % 50 == 0:
            pass
    elapsed = time.time() - t0
    summary = _summarize(records, elapsed, died)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)
    short = {k: v for k, v in summary.items() if k != "failures"}
    print(json.dumps(short, indent=1))
    for f in summary["failures"]:
        print(f"FAIL seed {f['seed']}: {f['status']} ({f['stage']}) {f.get('exc') or ''} mask={f.get('mask')}")
        print("   " + "\n   ".join((f.get("detail") or "").splitlines()[:8]))
        if f.get("saved"):
            print(f"   saved: {f['saved']}")
    return 1 if summary["mismatches"] or summary["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
