"""One cache folder, many processes: a function's compiled code never serves another function.

Regression for a silent wrong derivative (fixed in cache format 2): every
``exec``-built shim of fwdjit had the same module and qualified name in every
fwdjit function, Numba's symbol names carry a counter that restarts in each
process, so cache files written by two processes could define one symbol
with two bodies, and a third process that loaded both ran one function's
code for the other (``numpy_cos.jvp`` returned sin's value and derivative).

Each step below is a real Python process sharing ``FWDJIT_CACHE_DIR`` with
the others, as two scripts, notebooks or test workers on one machine do; each
checks its results against closed forms (``tests/cache_jobs.py``).
"""
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _start(cache, jobs):
    env = dict(os.environ, FWDJIT_CACHE_DIR=str(cache), PYTHONPATH=ROOT)
    env.pop("NUMBA_OPT", None)     # Numba's default: with NUMBA_OPT=0 the jvp entry is not cached at all
    return subprocess.Popen([sys.executable, os.path.join(HERE, "cache_jobs.py"), *jobs], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, jobs):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    results = json.loads(out.strip().splitlines()[-1])
    assert list(results) == list(jobs)
    bad = {j: r for j, r in results.items() if not r["ok"]}
    assert not bad, f"wrong results in a process that ran {jobs}: {bad}"
    return results


def run_processes(cache, *job_lists, concurrent=False):
    """Run one process per job list (one after another, or all at once); every result must be exact."""
    if concurrent:
        procs = [_start(cache, jobs) for jobs in job_lists]
        return [_finish(p, jobs) for p, jobs in zip(procs, job_lists)]
    return [_finish(_start(cache, jobs), jobs) for jobs in job_lists]


def test_issue_sequence_sin_cos_tanh(tmp_path):
    """The sequence as it was reported: sin, then cos, then both, then tanh (new) and sin (cached)."""
    run_processes(tmp_path,
                  ["jvp:numpy_sin:f64"],
                  ["jvp:numpy_cos:f64"],
                  ["jvp:numpy_sin:f64", "jvp:numpy_cos:f64"],
                  ["jvp:numpy_tanh:f64", "jvp:numpy_sin:f64"],
                  ["jvp:numpy_floor:f64"],
                  ["jvp:numpy_ceil:f64", "jvp:numpy_floor:f64", "jvp:numpy_cos:f64"])


def test_derivative_rules_across_processes(tmp_path):
    """fwdjit.defjvp rules: closures of one factory, a rule changed between runs, lambdas.

    Each was a silent wrong derivative before: the closures' machine code had one
    name (the factory's qualified name), f.jvp's entry point did not depend on
    the rules its callees use, and two lambdas differing only in a global name
    (np.cos / np.sin) hashed alike.
    """
    run_processes(tmp_path, ["rule:use_bb2:f64"], ["rule:use_bb3:f64"])
    run_processes(tmp_path, ["rule:use_bb3:f64", "rule:use_bb2:f64"])
    run_processes(tmp_path, ["rulechange:2.0:f64"], ["rulechange:3.0:f64"], ["rulechange:2.0:f32"],
                  ["rulechange:3.0:f32"])
    run_processes(tmp_path, ["rulelambda:cos:f64"], ["rulelambda:sin:f64"])


CONFIG_USER = """\
import numpy as np
import {cfg}


def scaled(x):
    return {cfg}.L * np.sin(x)
"""


def test_module_constant_read_through_an_attribute(tmp_path):
    """A constant read as cfg.L: changing it in cfg.py gives new code, not the cached one."""
    (tmp_path / "uses_cfg.py").write_text(CONFIG_USER.format(cfg="cfg_consts"))
    child = ("import sys, numpy as np, fwdjit, uses_cfg\n"
             "y, dy = fwdjit.fwdjit(uses_cfg.scaled).jvp((np.array([0.5]),), (np.array([1.0]),))\n"
             "print(float(dy[0] / np.cos(0.5)))\n")
    env = dict(os.environ, FWDJIT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    for L in (2.0, 3.0, 2.0):
        (tmp_path / "cfg_consts.py").write_text(f"L = {L}\n")
        out = subprocess.run([sys.executable, "-c", child], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert abs(float(out.stdout.strip().splitlines()[-1]) - L) < 1e-12, (L, out.stdout)


def _family(names, kinds):
    return [k.format(n=n) for n in names for k in kinds]


# every kind of compiled code the cache holds, float64 and float32
KINDS = ["jvp:{n}:f64", "jvp:{n}:f32", "batched:{n}:f64", "njit:{n}:f32", "call:{n}:f32"]
MASKS = ["mask:{n}:10:f64", "mask:{n}:01:f32", "mask:{n}:11:f64"]
LOSS_KINDS = ["fg:{n}:f64", "fg:{n}:f32", "train:{n}:f64"]


def test_every_kind_of_compiled_code_across_processes(tmp_path):
    """Two processes compile two families at once; a third loads both; a fourth adds a third family.

    Each family member has the same signatures as its counterpart in the
    other families, for every kind of compiled code: jvp entries, float32
    twins, batched tangents, ``tangent_function`` inside ``@njit``,
    activity patterns, forward-gradient functions and the training loop.
    """
    one = _family(["numpy_sin"], KINDS) + _family(["mul_sin"], MASKS) + _family(["loss_sin"], LOSS_KINDS)
    two = _family(["numpy_cos"], KINDS) + _family(["mul_cos"], MASKS) + _family(["loss_cos"], LOSS_KINDS)
    three = _family(["numpy_tanh"], KINDS[:2]) + _family(["loss_quartic"], LOSS_KINDS[:1])
    run_processes(tmp_path, one, two, concurrent=True)
    both = [j for pair in zip(two[::-1], one) for j in pair]     # interleaved, other order
    run_processes(tmp_path, both)
    run_processes(tmp_path, three + one[::2])


ALL_JOBS = (_family(["numpy_sin", "numpy_cos", "numpy_tanh", "numpy_floor", "numpy_ceil"], KINDS)
            + _family(["mul_sin", "mul_cos"], MASKS)
            + _family(["loss_sin", "loss_cos", "loss_quartic"], LOSS_KINDS))


@pytest.mark.exhaustive
@pytest.mark.parametrize("seed", range(4))
def test_random_orders_of_processes(tmp_path, seed):
    """Random subsets of all jobs, in random orders, over 5 process generations sharing one cache."""
    r = random.Random(seed)
    for generation in range(5):
        lists = [r.sample(ALL_JOBS, r.randint(3, 10)) for _ in range(2)]
        run_processes(tmp_path, *lists, concurrent=True)
    run_processes(tmp_path, r.sample(ALL_JOBS, len(ALL_JOBS)))


# ------------------------------------------------------------- the cause itself
def tuple_out(a, b):
    return np.sin(a) * b, a + np.cos(b)


def _defined_symbols(dispatcher):
    """The mangled names of the functions defined in each compiled overload of ``dispatcher``."""
    import re
    out = set()
    for cres in dispatcher.overloads.values():
        out |= set(re.findall(r'define[^@\n]*@"?([^"(\s]+)', cres.library.get_llvm_str()))
    return out


def test_no_compiled_function_is_anonymous(tmp_path, monkeypatch):
    """No function in fwdjit's compiled code is named by Numba's '<dynamic>' module.

    That name (plus a per-process counter) was the clash; every function must
    belong to a real module whose name fixes its code.  Checked on the machine
    code of every kind of entry point: f.jvp (float64, float32, batched, every
    activity pattern, tuple outputs), tangent_function, the primal,
    forward_grad_function and train's compiled loop.
    """
    import numpy as np
    import fwdjit
    import importlib
    from fwdjit import forward_grad_function, train
    chunk_mod = importlib.import_module("fwdjit.training.chunk")     # where train() keeps its compiled loops
    monkeypatch.setenv("FWDJIT_CACHE_DIR", str(tmp_path))
    f = fwdjit.fwdjit(tuple_out)
    for dt in (np.float64, np.float32):
        a, b = np.linspace(0.1, 0.9, 4).astype(dt), np.linspace(-1, 1, 4).astype(dt)
        f(a, b)
        f.jvp((a, b), (a, None))
        f.jvp((a, b), (None, b))
        f.jvp((a, b), (a, b))
        f.jvp((a, b), (np.stack([a, b]), np.stack([b, a])), batched=True)
    loss = fwdjit.fwdjit(lambda_free_loss)
    w = np.linspace(-1, 1, 5)
    fg = forward_grad_function(loss, wrt=0, n_directions=2)
    fg(w, 3)
    train(loss, (w,), steps=3, batch_size=None, progress=False)
    dispatchers = [f.jvp.dispatcher, f.primal_function, f.tangent_function((True, True)), fg]
    dispatchers += [v[0] for v in chunk_mod._CACHE.values() if isinstance(v, tuple)]
    assert len(dispatchers) >= 5
    anonymous = {}
    for d in dispatchers:
        assert d.overloads, d
        bad = [s for s in _defined_symbols(d) if "_3cdynamic_3e" in s]
        if bad:
            anonymous[d.py_func.__qualname__] = bad[:3]
    assert not anonymous, f"functions compiled under Numba's anonymous module name: {anonymous}"


def lambda_free_loss(w):
    return np.sum(np.sin(w) * w)
