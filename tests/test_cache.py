"""The on-disk cache: concurrent processes, invalidation, corruption, the cache command.

Every test runs real Python processes (``subprocess``) with ``FWDJIT_CACHE_DIR``
pointing at one temporary folder, the way separate programs share the cache:

* two or more processes compiling the same function at once all get correct
  results, and a later process loads their code from the cache;
* a changed function source, global constant, callee, option (``fastmath``)
  or fwdjit fingerprint gives a recompile and the new values, never stale code;
* a corrupted cache file (generated ``.py``, Numba's ``.nbi`` index or
  ``.nbc`` data in ``__pycache__``) gives a clean recompile;
* ``python -m fwdjit cache info`` / ``cache clear`` show and empty the folder.

The child reports its results and Numba's cache statistics of the ``jvp``
entry point (``hits``: loaded from disk, ``misses``: compiled) as JSON.
"""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TARGET = '''\
import math
import numpy as np
from helper_mod import helper

SCALE = {scale}


def f(x, a):
    s = 0.0
    for i in range(len(x)):
        s += {body} * a
    return s * SCALE + helper(a)
'''

HELPER = '''\
import numpy as np


def helper(a):
    return {helper}
'''

CHILD = r'''
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
opts = json.loads(sys.argv[2])
import numpy as np
import fwdjit.targets.cache as cg
if opts.get("fingerprint"):
    cg._FINGERPRINT = opts["fingerprint"]
from fwdjit import fwdjit
import target
f = fwdjit(target.f, fastmath=opts.get("fastmath", False))
x = np.linspace(0.1, 1.0, 5)
t1 = time.perf_counter()
y, dy = f.jvp((x, 0.7), (np.ones(5), 1.0))
t2 = time.perf_counter()
st = f.jvp.dispatcher.stats
print(json.dumps({"y": float(y), "dy": float(dy), "import_s": t1 - t0, "first_jvp_s": t2 - t1,
                  "hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values())}))
'''


def write_target(d, body="np.sin(x[i])", scale="2.0", helper="np.tanh(a)"):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "target.py"), "w") as fh:
        fh.write(TARGET.format(body=body, scale=scale))
    with open(os.path.join(d, "helper_mod.py"), "w") as fh:
        fh.write(HELPER.format(helper=helper))


def expected(body="np.sin(x[i])", scale=2.0, helper="np.tanh(a)"):
    """y and dy (direction dx = 1, da = 1) from plain NumPy."""
    ns = {"np": np}
    exec(f"def b(x, i):\n    return {body}\n", ns)
    exec(f"def h(a):\n    return {helper}\n", ns)
    x, a = np.linspace(0.1, 1.0, 5), 0.7

    def F(t):
        xx, aa = x + t, a + t
        return sum(ns["b"](xx, i) * aa for i in range(5)) * scale + ns["h"](aa)
    h = 1e-5
    d = (-F(2 * h) + 8 * F(h) - 8 * F(-h) + F(-2 * h)) / (12 * h)
    return F(0.0), d


def child_env(cache):
    env = dict(os.environ)
    env["FWDJIT_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NUMBA_CACHE_DIR", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"    # target.py is rewritten within the same second
    return env


def start(src_dir, cache, **opts):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(src_dir), json.dumps(opts)],
                            env=child_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"child failed:\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])


def run(src_dir, cache, **opts):
    return finish(start(src_dir, cache, **opts))


def check_values(res, **formula):
    y, dy = expected(**formula)
    assert res["y"] == pytest.approx(y, rel=1e-12)
    assert res["dy"] == pytest.approx(dy, rel=1e-7)


def cache_files(cache):
    out = []
    for root, _, files in os.walk(cache):
        out += [os.path.join(root, f) for f in files]
    return sorted(out)


# ------------------------------------------------------------------ warm/cold
def test_second_process_loads_from_cache(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    cold = run(src, cache)
    check_values(cold)
    assert cold["misses"] >= 1 and cold["hits"] == 0
    warm = run(src, cache)
    check_values(warm)
    assert warm["hits"] >= 1 and warm["misses"] == 0
    assert any(p.endswith(".nbi") for p in cache_files(cache))


# --------------------------------------------------------------- concurrency
def test_concurrent_processes_cold_then_warm(tmp_path):
    """Four processes compile the same function into an empty cache at the same time."""
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    procs = [start(src, cache) for _ in range(4)]
    for r in [finish(p) for p in procs]:
        check_values(r)
    assert not [p for p in cache_files(cache) if ".tmp" in os.path.basename(p)], "temporary files left behind"
    # everything they wrote is complete: a later process loads it
    warm = run(src, cache)
    check_values(warm)
    assert warm["hits"] >= 1 and warm["misses"] == 0
    procs = [start(src, cache) for _ in range(4)]
    for r in [finish(p) for p in procs]:
        check_values(r)
        assert r["misses"] == 0


def test_concurrent_processes_different_functions(tmp_path):
    """Processes compiling different versions into one cache never see each other's code."""
    cache = tmp_path / "cache"
    bodies = ["np.sin(x[i])", "np.cos(x[i])", "x[i] ** 3", "np.exp(-x[i])"]
    dirs = []
    for k, body in enumerate(bodies):
        d = tmp_path / f"src{k}"
        write_target(d, body=body)
        dirs.append(d)
    procs = [start(d, cache) for d in dirs]
    for body, p in zip(bodies, procs):
        check_values(finish(p), body=body)
    procs = [start(d, cache) for d in dirs]
    for body, p in zip(bodies, procs):
        r = finish(p)
        check_values(r, body=body)


# -------------------------------------------------------------- invalidation
@pytest.mark.parametrize("change", ["source", "global", "callee"])
def test_changed_code_is_recompiled(tmp_path, change):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    check_values(run(src, cache))
    new = {"source": dict(body="np.cos(x[i])"), "global": dict(scale=3.0),
           "callee": dict(helper="np.sin(3.0 * a)")}[change]
    write_target(src, **{k: str(v) for k, v in new.items()})
    r = run(src, cache)
    check_values(r, **new)
    assert r["misses"] >= 1
    # and the old version, back again, still gets its own (cached) code
    write_target(src)
    r = run(src, cache)
    check_values(r)


def test_changed_option_is_a_separate_entry(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    check_values(run(src, cache))
    before = set(cache_files(cache))
    r = run(src, cache, fastmath=True)
    assert r["misses"] >= 1 and r["hits"] == 0
    assert r["y"] == pytest.approx(expected()[0], rel=1e-9)
    assert set(cache_files(cache)) - before, "fastmath=True must get its own files"
    r = run(src, cache)       # the default options still hit their own entry
    assert r["hits"] >= 1 and r["misses"] == 0


def test_changed_fingerprint_recompiles(tmp_path):
    """A new fwdjit version (or Numba/NumPy/Python) gives new file names: no old code is used."""
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    run(src, cache)
    before = set(cache_files(cache))
    r = run(src, cache, fingerprint="0" * 64)
    check_values(r)
    assert r["misses"] >= 1 and r["hits"] == 0
    new = set(cache_files(cache)) - before
    assert any(p.endswith(".py") for p in new)


# ---------------------------------------------------------------- corruption
def _corrupt(cache, pattern, how):
    hit = 0
    for p in cache_files(cache):
        if not p.endswith(pattern):
            continue
        hit += 1
        with open(p, "rb") as fh:
            data = fh.read()
        with open(p, "wb") as fh:
            if how == "garbage":
                fh.write(b"\x00garbage\x13\x37" * 7)
            elif how == "truncate":
                fh.write(data[: len(data) // 3])
            elif how == "empty":
                pass
            elif how == "syntax":
                fh.write(b"def broken(:\n")
    assert hit, f"no {pattern} file in the cache"


@pytest.mark.parametrize("pattern,how", [
    (".nbi", "garbage"), (".nbi", "truncate"), (".nbc", "truncate"), (".nbc", "empty"),
    (".py", "truncate"), (".py", "syntax"),
])
def test_corrupted_cache_file_recompiles(tmp_path, pattern, how):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    run(src, cache)
    _corrupt(cache, pattern, how)
    r = run(src, cache)
    check_values(r)
    r = run(src, cache)        # and the cache works again afterwards
    check_values(r)
    assert r["hits"] >= 1


def test_truncated_entry_module_is_rewritten(tmp_path):
    """A half-written generated module of the function itself is detected and rewritten."""
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    run(src, cache)
    entry = [p for p in cache_files(cache) if p.endswith(".py") and "_jvp_any_" in p]
    assert entry
    for p in entry:
        with open(p, "r+") as fh:
            text = fh.read()
            fh.seek(0)
            fh.truncate()
            fh.write(text[: len(text) // 2])
    check_values(run(src, cache))
    for p in entry:
        with open(p) as fh:
            assert fh.read().endswith("\n") and "def " in open(p).read()


# -------------------------------------------------------------- the command
def _cli(cache, *args):
    return subprocess.run([sys.executable, "-m", "fwdjit", "cache", *args], env=child_env(cache),
                          capture_output=True, text=True, timeout=120, cwd=_ROOT)


def test_cache_info_and_clear(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    run(src, cache)
    n = len(cache_files(cache))
    assert n >= 4
    info = _cli(cache, "info")
    assert info.returncode == 0, info.stderr
    assert str(cache) in info.stdout and f"{n} files" in info.stdout
    clear = _cli(cache, "clear")
    assert clear.returncode == 0, clear.stderr
    assert cache_files(cache) == []
    assert "0 files" in _cli(cache, "info").stdout
    r = run(src, cache)      # an empty cache folder is fine
    check_values(r)
    assert r["misses"] >= 1


def test_cache_dir_is_created_and_env_respected(tmp_path):
    cache = tmp_path / "does" / "not" / "exist"
    info = _cli(cache, "info")
    assert info.returncode == 0, info.stderr
    assert cache.is_dir()


CLEAR_WHILE_RUNNING = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from fwdjit import fwdjit
from fwdjit.targets.cache import cache_clear
import target
f = fwdjit(target.f)
jf = f.tangent_function((True, True))        # generated and imported, not compiled yet
cache_clear()                                # another process empties the folder now
y, dy = jf(np.linspace(0.1, 1.0, 5), 0.7, np.ones(5), 1.0)
y2, dy2 = f.jvp((np.linspace(0.1, 1.0, 5), 0.7), (np.ones(5), 1.0))
print(json.dumps({"y": float(y), "dy": float(dy), "y2": float(y2), "dy2": float(dy2)}))
'''


def test_cache_cleared_under_a_running_process(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    write_target(src)
    out = subprocess.run([sys.executable, "-c", CLEAR_WHILE_RUNNING, str(src)], env=child_env(cache),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    check_values(r)
    check_values({"y": r["y2"], "dy": r["dy2"]})
