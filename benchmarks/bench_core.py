"""Core fwdjit benchmark: generated JVP vs hand-written Numba tangent vs primal.

    python -m benchmarks.bench_core [--quick] [--json PATH] [--no-jax]

See benchmarks/README.md for the method.  Everything is measured in one run on
the same inputs; correctness is checked before anything is timed.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import sys
import time
import traceback

import numpy as np
import numba

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks import workloads as W  # noqa: E402

TARGET_GEN_VS_HAND = 1.10
TARGET_GEN_VS_FUSED = 1.2       # array form vs a hand-written fused loop (1.1 for loop form)
TARGET_JVP_VS_PRIMAL = 2.0
TARGET_PY_OVERHEAD = 2.0


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------

def _run(fn, args, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn(*args)
    return time.perf_counter() - t0


def _calibrate(fn, args, min_sample):
    fn(*args)  # warm-up (compilation must not count as a sample)
    n = 1
    while True:
        dt = _run(fn, args, n)
        if dt >= min_sample:
            return n
        n = max(2 * n, int(n * 1.3 * min_sample / max(dt, 1e-9)))


def time_group(variants, min_sample, n_samples):
    """variants: dict label -> (callable, args).  Samples are interleaved
    round-robin across the variants (so slow drifts in machine load hit all
    of them alike).  Each sample runs the call n_inner times, n_inner chosen
    so one sample takes >= min_sample seconds.  Returns label -> stats of the
    per-call time in seconds."""
    inner = {k: _calibrate(fn, a, min_sample) for k, (fn, a) in variants.items()}
    samples = {k: [] for k in variants}
    for _ in range(n_samples):
        for k, (fn, a) in variants.items():
            samples[k].append(_run(fn, a, inner[k]) / inner[k])
    out = {}
    for k, s in samples.items():
        q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0]] * 3
        out[k] = {"median_s": statistics.median(s), "min_s": min(s), "q1_s": q[0],
                  "q3_s": q[2], "n_inner": inner[k], "n_samples": len(s)}
    return out


def fmt_t(t):
    if t is None:
        return "n/a"
    if t < 1e-6:
        return f"{t * 1e9:.0f} ns"
    if t < 1e-3:
        return f"{t * 1e6:.2f} µs"
    if t < 1:
        return f"{t * 1e3:.3f} ms"
    return f"{t:.3f} s"


# ---------------------------------------------------------------------------
# correctness
# ---------------------------------------------------------------------------

def _flat(v):
    if isinstance(v, tuple):
        return np.concatenate([np.atleast_1d(np.asarray(x, dtype=np.float64)).ravel() for x in v])
    return np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()


def close(a, b, dtype):
    rtol, atol = (1e-9, 1e-12) if dtype == np.float64 else (2e-4, 1e-6)
    fa, fb = _flat(a), _flat(b)
    if fa.shape != fb.shape:
        return False, float("inf")
    err = float(np.max(np.abs(fa - fb) / np.maximum(np.abs(fb), 1e-30)))
    return bool(np.allclose(fa, fb, rtol=rtol, atol=atol)), err


def _dtype_of(v):
    if isinstance(v, tuple):
        return tuple(_dtype_of(x) for x in v)
    return str(np.asarray(v).dtype) if not isinstance(v, float) else "float(py)"


# ---------------------------------------------------------------------------
# machine info
# ---------------------------------------------------------------------------

def machine_info():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                "NUMBA_OPT", "XLA_FLAGS", "FWDJIT_BENCH_THREADS")},
    }
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except ImportError:
        pass
    try:
        import threadpoolctl
        info["threadpools"] = [{k: d.get(k) for k in ("internal_api", "num_threads", "version")}
                               for d in threadpoolctl.threadpool_info()]
    except Exception:
        pass
    # fingerprint of the compiler sources measured (repo may have no commits)
    h = hashlib.sha256()
    src = os.path.join(_ROOT, "fwdjit")
    if os.path.isdir(src):
        for name in sorted(os.listdir(src)):
            if name.endswith(".py"):
                with open(os.path.join(src, name), "rb") as fh:
                    h.update(name.encode() + b"\0" + fh.read())
    info["fwdjit_sources_sha256"] = h.hexdigest()[:16]
    try:
        import subprocess
        info["git_head"] = subprocess.run(["git", "-C", _ROOT, "rev-parse", "HEAD"],
                                          capture_output=True, text=True).stdout.strip() or None
    except Exception:
        info["git_head"] = None
    return info


# ---------------------------------------------------------------------------
# one workload
# ---------------------------------------------------------------------------

def _try(label, fn, notes):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        msg = f"{label}: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"
        notes.append(msg)
        return None


def bench_workload(wl, fwdjit, jaxmod, min_sample, n_samples, verbose=True):
    notes = []
    res = {"workload": wl.name, "dtype": np.dtype(wl.dtype).name,
           "active": list(wl.active), "notes": notes, "correct": {}, "times": {}}
    args = wl.primals
    targs = wl.primals + wl.tangents

    # --- hand-written reference (checked against FD by benchmarks.handwritten)
    hw_out = wl.handwritten(*targs)
    res["output_dtypes"] = {"hand-written": _dtype_of(hw_out)}

    # --- (a) numba primal of the plain function
    variants = {}
    nb = numba.njit(wl.plain)
    nb_ok = _try("numba.njit(plain)", lambda: nb(*args), notes) is not None
    if not nb_ok and wl.plain_fallback is not None:
        nb = numba.njit(wl.plain_fallback)
        nb(*args)
        notes.append(f"numba primal: timed {wl.plain_fallback.__name__} "
                     "(dtype-safe copy of the plain function) instead")
        res["numba_primal_is_fallback"] = True
        nb_ok = True
    if nb_ok:
        ok, err = close(nb(*args), hw_out[0], wl.dtype)
        res["correct"]["numba primal == hand-written primal"] = [ok, err]
        variants["numba primal"] = (nb, args)

    # --- fwdjit primal and generated JVP
    if fwdjit is not None:
        def build(plain):
            f = fwdjit(plain)
            jf = f.tangent_function(active=wl.active)
            return f, jf

        def check(f, jf):
            y_f = f(*args)
            y, dy = jf(*targs)
            return y_f, y, dy

        fj = _try("fwdjit(plain)", lambda: build(wl.plain), notes)
        outs = _try("fwdjit compile/call", lambda: check(*fj), notes) if fj else None
        if outs is None and wl.plain_fallback is not None:
            notes.append(f"fwdjit: using {wl.plain_fallback.__name__} (dtype-safe copy) instead")
            res["fwdjit_is_fallback"] = True
            fj = _try("fwdjit(fallback)", lambda: build(wl.plain_fallback), notes)
            outs = _try("fwdjit(fallback) compile/call", lambda: check(*fj), notes) if fj else None
        if outs is not None:
            f, jf = fj
            y_f, y, dy = outs
            res["output_dtypes"]["fwdjit tangent_function"] = _dtype_of((y, dy))
            res["correct"]["fwdjit primal == hand-written primal"] = list(close(y_f, hw_out[0], wl.dtype))
            res["correct"]["fwdjit JVP primal out == hand-written"] = list(close(y, hw_out[0], wl.dtype))
            res["correct"]["fwdjit JVP tangent == hand-written"] = list(close(dy, hw_out[1], wl.dtype))
            yj, dyj = _try("f.jvp", lambda: f.jvp(args, wl.all_tangents), notes) or (None, None)
            if dyj is not None:
                res["correct"]["f.jvp tangent == hand-written"] = list(close(dyj, hw_out[1], wl.dtype))
            try:
                res["tangent_source_lines"] = len(f.tangent_source.splitlines())
            except Exception:
                pass
            variants["fwdjit primal"] = (f.primal_function, args)
            variants["fwdjit JVP"] = (jf, targs)
            res["_f"] = f
    variants["hand-written"] = (wl.handwritten, targs)
    if wl.fused is not None:
        variants["hand-written fused loop"] = (wl.fused, targs)
        res["correct"]["hand-written fused loop == hand-written"] = list(close(wl.fused(*targs), hw_out,
                                                                              wl.dtype))
    for k, fn in wl.extra_handwritten.items():
        variants[k] = (fn, targs)
        res["correct"][f"{k} == hand-written"] = list(close(fn(*targs), hw_out, wl.dtype))

    # --- JAX
    if jaxmod is not None and wl.jax_key:
        jax, jfns, jbuild = jaxmod

        def jsetup():
            pc, jc, act, rest = jbuild(jax, jfns[wl.jax_key], wl.primals, wl.active)
            import jax.numpy as jnp
            tans = tuple(jnp.asarray(t) for t in wl.tangents)
            yp = pc(act, rest)
            y, dy = jc(act, rest, tans)
            return pc, jc, act, rest, tans, yp, y, dy
        js = _try("jax", jsetup, notes)
        if js is not None:
            pc, jc, act, rest, tans, yp, y, dy = js
            jtol = np.float32 if wl.dtype == np.float32 else np.float64
            res["correct"]["jax primal == hand-written"] = list(close(yp, hw_out[0], jtol))
            res["correct"]["jax JVP tangent == hand-written"] = list(close(dy, hw_out[1], jtol))
            variants["jax primal"] = (pc, (act, rest))
            variants["jax JVP"] = (jc, (act, rest, tans))

    bad = [k for k, (ok, _) in res["correct"].items() if not ok]
    res["all_correct"] = not bad
    if bad:
        notes.append("CORRECTNESS FAILED: " + ", ".join(bad) + " (timings still reported)")

    # --- timing
    # JAX is timed in its own group, after the Numba variants: XLA's CPU
    # thread pool (and OpenBLAS's) spin-wait after a call, so interleaving
    # JAX and Numba/BLAS calls on a small machine slows whichever runs next.
    nb_vars = {k: v for k, v in variants.items() if not k.startswith("jax")}
    jax_vars = {k: v for k, v in variants.items() if k.startswith("jax")}
    res["times"] = time_group(nb_vars, min_sample, n_samples)
    if jax_vars:
        res["times"].update(time_group(jax_vars, min_sample, n_samples))
    t = {k: v["median_s"] for k, v in res["times"].items()}
    ratios = {}
    if "fwdjit JVP" in t:
        ratios["gen/hand"] = t["fwdjit JVP"] / t["hand-written"]
        if "hand-written fused loop" in t:
            ratios["gen/fused hand"] = t["fwdjit JVP"] / t["hand-written fused loop"]
    if wl.jvp_vs_primal_target and "numba primal" in t:
        if "fwdjit JVP" in t:
            ratios["jvp/primal"] = t["fwdjit JVP"] / t["numba primal"]
        ratios["hand/primal"] = t["hand-written"] / t["numba primal"]
    if "fwdjit primal" in t and "numba primal" in t:
        ratios["fwdjit primal/numba primal"] = t["fwdjit primal"] / t["numba primal"]
    if "jax JVP" in t:
        ratios["jax JVP/hand"] = t["jax JVP"] / t["hand-written"]
    res["ratios"] = ratios
    if verbose:
        print(f"  {wl.name}: " + ", ".join(f"{k} {fmt_t(v)}" for k, v in t.items()), flush=True)
        for n in notes:
            print(f"    note: {n}")
    return res


@numba.njit
def _empty2(x, dx):
    return 0.0, 0.0


def bench_python_overhead(fwdjit, min_sample, n_samples):
    """(d) Python-level call overhead on Rosenbrock n=10."""
    wl = W._rosenbrock(10)
    x, dx = wl.primals[0], wl.tangents[0]
    nb = numba.njit(wl.plain)
    nb(x)
    variants = {"raw numba primal nb(x)": (nb, (x,))}
    notes = []
    if fwdjit is not None:
        f = _try("fwdjit", lambda: fwdjit(wl.plain), notes)
        if f is not None and _try("f.jvp", lambda: f.jvp((x,), (dx,)), notes) is not None:
            jf = f.tangent_function(active=(True,))
            jf(x, dx)
            f(x)
            variants["fwdjit primal f(x)"] = (f, (x,))
            variants["f.jvp((x,), (dx,))"] = (f.jvp, ((x,), (dx,)))
            # what f.jvp calls after unpacking the tuples: the difference is the Python shim
            variants["f.jvp's dispatcher entry(x, dx)"] = (f.jvp.dispatcher, (x, dx))
            variants["tangent_function jf(x, dx)"] = (jf, (x, dx))
    variants["hand-written hw(x, dx)"] = (wl.handwritten, (x, dx))
    variants["hand-written loop (fused, no temporaries)"] = (W.hw.rosenbrock_jvp_loop, (x, dx))
    variants["floor: empty njit (x, dx) -> (0.0, 0.0)"] = (_empty2, (x, dx))
    times = time_group(variants, min_sample, n_samples)
    t = {k: v["median_s"] for k, v in times.items()}
    ratios = {}
    base = t["raw numba primal nb(x)"]
    if "f.jvp((x,), (dx,))" in t:
        ratios["f.jvp / raw numba primal"] = t["f.jvp((x,), (dx,))"] / base
        ratios["f(x) / raw numba primal"] = t["fwdjit primal f(x)"] / base
        ratios["jf(x,dx) / raw numba primal"] = t["tangent_function jf(x, dx)"] / base
        ratios["entry(x,dx) / raw numba primal"] = t["f.jvp's dispatcher entry(x, dx)"] / base
    return {"times": times, "ratios": ratios, "notes": notes}


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def _ok(v, target):
    if v is None:
        return "n/a"
    return "yes" if v <= target else "NO"


def markdown(results, overhead, jax_status):
    def g(r, k):
        return r["times"].get(k, {}).get("median_s")

    lines = []
    hdr = ["workload", "numba primal", "fwdjit primal", "fwdjit JVP", "hand-written",
           "hand-written fused loop", f"gen/fused hand (≤{TARGET_GEN_VS_FUSED})",
           "fwdjit primal/numba primal (≤1.0)", f"gen/hand (≤{TARGET_GEN_VS_HAND})", f"JVP/primal (≤{TARGET_JVP_VS_PRIMAL})",
           "hand/primal", "JAX primal", "JAX JVP", "targets met", "correct"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "|".join("---" for _ in hdr) + "|")
    for r in results:
        rt = r["ratios"]
        gh = rt.get("gen/hand")
        jp = rt.get("jvp/primal")
        met = [_ok(gh, TARGET_GEN_VS_HAND)]
        if "hand/primal" in rt:
            met.append(_ok(jp, TARGET_JVP_VS_PRIMAL))
        primal = fmt_t(g(r, "numba primal")) + ("†" if r.get("numba_primal_is_fallback") else "")
        jvp = fmt_t(g(r, "fwdjit JVP")) + ("†" if r.get("fwdjit_is_fallback") else "")
        row = [r["workload"], primal, fmt_t(g(r, "fwdjit primal")), jvp,
               fmt_t(g(r, "hand-written")), fmt_t(g(r, "hand-written fused loop")),
               f"{rt['gen/fused hand']:.2f}" if "gen/fused hand" in rt else "—",
               f"{rt['fwdjit primal/numba primal']:.2f}" if "fwdjit primal/numba primal" in rt else "—",
               f"{gh:.2f}" if gh is not None else "n/a",
               f"{jp:.2f}" if jp is not None else ("—" if "hand/primal" not in rt else "n/a"),
               f"{rt['hand/primal']:.2f}" if "hand/primal" in rt else "—",
               fmt_t(g(r, "jax primal")) if jax_status == "ok" else "—",
               fmt_t(g(r, "jax JVP")) if jax_status == "ok" else "—",
               "yes" if all(m == "yes" for m in met) else ("n/a" if all(m == "n/a" for m in met) else "NO"),
               "yes" if r["all_correct"] else "NO"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("Times are medians of per-call wall time. † = timed on a dtype-safe copy of the "
                 "plain function (see notes). gen/hand = fwdjit JVP / hand-written; JVP/primal = "
                 "fwdjit JVP / numba.njit(plain) primal; hand/primal = the same for the "
                 "hand-written tangent (what is attainable). JAX: " + jax_status + ".")
    extra = [(r["workload"], k, r["times"][k]["median_s"]) for r in results
             for k in r["times"] if k.startswith("hand-written ") and k != "hand-written"]
    for w, k, t in extra:
        lines.append(f"- {w}: {k} {fmt_t(t)}")
    lines.append("")
    if overhead is not None:
        lines.append("Python-level call overhead, Rosenbrock n=10 (target f.jvp / raw numba primal "
                     f"≤ {TARGET_PY_OVERHEAD}):")
        lines.append("")
        lines.append("| call | per call | / raw numba primal |")
        lines.append("|---|---|---|")
        base = overhead["times"]["raw numba primal nb(x)"]["median_s"]
        for k, v in overhead["times"].items():
            lines.append(f"| `{k}` | {fmt_t(v['median_s'])} | {v['median_s'] / base:.2f} |")
        r = overhead["ratios"].get("f.jvp / raw numba primal")
        lines.append("")
        lines.append(f"f.jvp / raw numba primal = {r:.2f} -> target met: {_ok(r, TARGET_PY_OVERHEAD)}"
                     if r is not None else "f.jvp: n/a (fwdjit not available)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few short samples (smoke test)")
    ap.add_argument("--json", default=os.path.join(_ROOT, "benchmarks", "results", "core.json"),
                    help="where to write the JSON results")
    ap.add_argument("--no-jax", action="store_true", help="skip the optional JAX comparison")
    ap.add_argument("--only", default=None, help="substring filter on workload names")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--min-sample-ms", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="pin BLAS/OpenMP/Numba/XLA thread pools to N threads (re-executes the "
                         "process with OPENBLAS_NUM_THREADS etc. set); default: library defaults")
    a = ap.parse_args(argv)
    if a.threads is not None and os.environ.get("FWDJIT_BENCH_THREADS") != str(a.threads):
        env = dict(os.environ)
        n = str(a.threads)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[k] = n
        if a.threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
        env["FWDJIT_BENCH_THREADS"] = n
        os.chdir(_ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.bench_core"]
                  + (list(argv) if argv is not None else sys.argv[1:]), env)
    n_samples = a.samples or (5 if a.quick else 15)
    min_sample = (a.min_sample_ms or (5.0 if a.quick else 20.0)) / 1e3

    info = machine_info()
    print(f"# fwdjit core benchmark  ({info['date']})")
    print(f"CPU: {info['cpu_model']} x{info['cpu_count']}; numpy {info['numpy']}, "
          f"numba {info['numba']}; loadavg {info['loadavg_start']}")
    print(f"samples={n_samples}, min sample time={min_sample * 1e3:.0f} ms"
          + ("  [QUICK: numbers are indicative only]" if a.quick else ""))

    # hand-written references must match central differences before we trust them
    from benchmarks import handwritten
    print("\nHand-written tangents vs central differences:")
    fd = handwritten.check_all(verbose=True)
    info["handwritten_fd_check"] = {k: {"rel_err": e, "ok": ok} for k, (e, ok) in fd.items()}

    try:
        from fwdjit import fwdjit
        fwdjit_status = "ok"
    except Exception as e:  # noqa: BLE001
        fwdjit = None
        fwdjit_status = f"fwdjit not importable ({type(e).__name__}: {e})"
        print("\n" + fwdjit_status)

    jaxmod = None
    if a.no_jax:
        jax_status = "skipped (--no-jax)"
    else:
        try:
            from benchmarks import jax_workloads
            jax, jfns = jax_workloads.load()
            jaxmod = (jax, jfns, jax_workloads.build)
            jax_status = "ok"
            info["jax"] = jax.__version__
            info["jax_devices"] = [str(d) for d in jax.devices()]
        except ImportError:
            jax_status = "jax not installed"
            print("\njax not installed: JAX columns skipped")

    print("\nMeasuring:")
    results = []
    for wl in W.all_workloads(quick=a.quick):
        if a.only and a.only not in wl.name:
            continue
        try:
            results.append(bench_workload(wl, fwdjit, jaxmod, min_sample, n_samples))
        except Exception:
            traceback.print_exc()
            results.append({"workload": wl.name, "error": traceback.format_exc(),
                            "times": {}, "ratios": {}, "all_correct": False, "notes": []})
    overhead = None
    if not a.only or "rosenbrock n=10" in a.only:
        overhead = bench_python_overhead(fwdjit, min_sample, n_samples)
    info["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    print()
    md = markdown(results, overhead, jax_status)
    print(md)
    for r in results:
        for n in r.get("notes", []):
            print(f"note [{r['workload']}]: {n}")

    for r in results:
        r.pop("_f", None)
    out = {"machine": info, "quick": a.quick, "threads": a.threads, "n_samples": n_samples,
           "min_sample_s": min_sample, "fwdjit": fwdjit_status, "jax": jax_status,
           "targets": {"gen/hand": TARGET_GEN_VS_HAND, "jvp/primal": TARGET_JVP_VS_PRIMAL,
                       "f.jvp/raw numba primal": TARGET_PY_OVERHEAD},
           "workloads": results, "python_overhead": overhead, "markdown": md}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(out, fh, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    print(f"\nJSON written to {a.json}")


if __name__ == "__main__":
    main()
