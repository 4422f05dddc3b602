"""The differential fuzzer's command line.

    python -m tests.fuzz --count 300              # programs from seed 0, summary at the end
    python -m tests.fuzz --long 10000 --json out.json --shrink --save-dir /tmp/fuzz-found
    python -m tests.fuzz --show 123               # print the program of seed 123
    python -m tests.fuzz --repro 123              # check seed 123 and print the outcome
    python -m tests.fuzz --cache-mode --count 64 --jobs 2   # several processes share one cache folder

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
    from tests.fuzz.gen import generate, rotate_functions
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

    seeds = args.seed_list if args.seed_list else range(args.seeds[0], args.seeds[1])
    for seed in seeds:
        if time.time() > deadline:
            break
        log({"start": seed})
        t0 = time.time()
        if isinstance(seed, str):           # cache mode: "SEED" or "SEEDvK", variant K of SEED
            base, _, variant = seed.partition("v")
            prog = generate(int(base), dtype=args.dtype, avoid=_avoid(args))
            if variant:
                prog = rotate_functions(prog, int(variant))
        else:
            prog = generate(seed, dtype=args.dtype, avoid=_avoid(args))
        prog.meta["tangents"] = list(random_tangents(tuple(prog.args), seed=prog.seed))
        if args.program_dir:     # cache mode: one file per program, shared by every process
            # through the public f.jvp, every activity pattern (what users call)
            oc = check_program(prog, args.program_dir, module_name=f"fzc_{seed}", cache=True, full=True)
        else:
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


def _cache_mode(args):
    """Programs compiled and loaded by several processes sharing one cache folder, in random orders.

    Seeds ``--seed`` .. ``--seed + --count`` are cut into groups of
    ``--group``, programs of the same argument types together.  Each group
    gets a fresh cache folder and program folder; every program is first
    compiled alone in a fresh process, then ``--generations`` rounds of ``--jobs`` concurrent processes each check a
    random subset of the group in a random order (compiling what is new,
    loading what earlier processes compiled), and a last process checks the
    whole group in a random order, loading everything.  Every check compares
    with the finite-difference reference, as in the ordinary mode: a
    function served another function's cached code is a mismatch.
    """
    import random
    t0 = time.time()
    deadline = t0 + args.time_budget if args.time_budget else None
    records, died = [], []
    from tests.fuzz.gen import generate, mutable
    # programs with the same argument types go into one group: the clash this mode hunts swaps
    # the compiled code of functions of identical signatures
    buckets = {}
    for seed in range(args.seed, args.seed + args.count):
        prog = generate(seed, dtype=args.dtype, avoid=_avoid(args))
        sig = tuple((type(a).__name__, str(getattr(a, "dtype", "")), getattr(a, "ndim", -1)) for a in prog.args)
        buckets.setdefault(sig, []).append(seed)
    # and with variants of themselves: the same program with sin, cos and tanh rotated (the same
    # structure, so the same number of compiled functions before each shim, different values)
    units = []
    for seeds in buckets.values():
        for seed in seeds:
            units += [f"{seed}v{k}" for k in range(3)] if mutable(generate(seed, dtype=args.dtype,
                                                                        avoid=_avoid(args)).source) \
                else [str(seed)]
    groups = [units[i:i + args.group] for i in range(0, len(units), args.group)]
    processes = 0
    for gi, group in enumerate(groups):
        if deadline and time.time() > deadline:
            break
        run_dir = tempfile.mkdtemp(prefix="fwdjit-fuzz-cache-")
        env = dict(os.environ, FWDJIT_CACHE_DIR=os.path.join(run_dir, "cache"))
        # Numba's default optimization level: with NUMBA_OPT=0 the jvp entry point is not cached
        # at all ("uses dynamic globals"), which would hide what this mode is for
        env.pop("NUMBA_OPT", None)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        prog_dir = os.path.join(run_dir, "programs")
        os.makedirs(prog_dir)
        r = random.Random(group[0])
        # first every program alone in a fresh process (so programs of one signature get the same
        # per-process symbol counters), then random subsets in random orders, then all of them
        plan = [[[s] for s in group[i:i + args.jobs]] for i in range(0, len(group), args.jobs)]
        plan += [[r.sample(group, r.randint(1, len(group))) for _ in range(args.jobs)]
                 for _ in range(args.generations)]
        plan.append([r.sample(group, len(group))])
        for gen_i, lists in enumerate(plan):
            running = []
            for k, seed_list in enumerate(lists):
                outfile = os.path.join(run_dir, f"g{gen_i}_{k}.jsonl")
                cmd = [sys.executable, "-m", "tests.fuzz", "--worker", "--out", outfile, "--program-dir", prog_dir,
                       "--seed-list", *map(str, seed_list)]
                if args.dtype:
                    cmd += ["--dtype", args.dtype]
                if args.avoid is not None:
                    cmd += ["--avoid", args.avoid]
                running.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.PIPE), outfile, seed_list))
            for proc, outfile, seed_list in running:
                _, err = proc.communicate()
                processes += 1
                got = []
                if os.path.exists(outfile):
                    with open(outfile, encoding="utf-8") as fh:
                        got = [json.loads(line) for line in fh]
                for rec in got:
                    if "start" in rec:
                        continue
                    rec["generation"] = gen_i
                    rec["order"] = seed_list
                    records.append(rec)
                    if not args.quiet and rec["status"] in ("mismatch", "crash"):
                        print(f"group {gi} generation {gen_i} seed {rec['seed']}: {rec['status']} "
                              f"({rec['stage']}) in a process that ran {seed_list}", flush=True)
                if proc.returncode != 0:
                    died.append({"seeds": seed_list, "returncode": proc.returncode,
                                 "stderr": err.decode(errors="replace")[-2000:]})
    summary = _summarize(records, time.time() - t0, died)
    summary["mode"] = "cache"
    summary["groups"] = len(groups)
    summary["processes"] = processes
    summary["distinct_programs"] = len({r["seed"] for r in records})
    # a program's outcome must not depend on which process compiled it and which loaded it
    by_seed = {}
    for rec in records:
        by_seed.setdefault(rec["seed"], set()).add(rec["status"])
    summary["inconsistent_seeds"] = sorted(s for s, st in by_seed.items() if len(st) > 1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    for f in summary["failures"]:
        print(f"FAIL seed {f['seed']}: {f['status']} ({f['stage']}) {f.get('exc') or ''} mask={f.get('mask')}")
        print("   " + "\n   ".join((f.get("detail") or "").splitlines()[:8]))
    bad = summary["mismatches"] or summary["crashes"] or summary["inconsistent_seeds"]
    return 1 if bad else 0


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
    p.add_argument("--seed-list", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--program-dir", help=argparse.SUPPRESS)
    p.add_argument("--cache-mode", action="store_true",
                   help="multi-process cache mode: programs compiled with cache=True by several processes "
                        "that share one cache folder, in random orders (see --group, --generations)")
    p.add_argument("--group", type=int, default=8, help="cache mode: programs that share one cache folder")
    p.add_argument("--generations", type=int, default=3,
                   help="cache mode: rounds of --jobs concurrent processes per group, before a last process "
                        "checks the whole group in a random order")
    args = p.parse_args(argv)

    if args.worker:
        return _worker(args)
    if args.cache_mode:
        if ROOT not in sys.path:
            sys.path.insert(0, ROOT)
        return _cache_mode(args)
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
