"""Jobs for the cross-process cache tests: run in a child process, check against closed forms.

``python tests/cache_jobs.py JOB [JOB ...]`` (with ``FWDJIT_CACHE_DIR`` set)
runs each job in the order given and prints one JSON line
``{job: {"ok": bool, "err": float, "what": str}}``.  Every job computes
something through fwdjit's compiled code and compares it with the exact
value written here by hand (closed forms), so a derivative taken from
another function's cached machine code is caught whichever order the jobs
and processes ran in.

A job is ``KIND:FUNCTION:DTYPE`` (``DTYPE`` is ``f64`` or ``f32``), with one
more ``:PATTERN`` field for ``mask`` (which arguments get tangents, e.g.
``10``).  The families below have identical signatures on purpose: the
symbol clash the tests guard against swaps functions of the same argument
types.
"""
import json
import sys

import numpy as np

# ---------------------------------------------------------------- functions
# unary, elementwise, one array argument: all share one signature


def numpy_sin(a):
    return np.sin(a)


def numpy_cos(a):
    return np.cos(a)


def numpy_tanh(a):
    return np.tanh(a)


def numpy_floor(a):
    return np.floor(a)


def numpy_ceil(a):
    return np.ceil(a)


UNARY = {
    "numpy_sin": (np.sin, np.cos),
    "numpy_cos": (np.cos, lambda a: -np.sin(a)),
    "numpy_tanh": (np.tanh, lambda a: 1.0 - np.tanh(a) ** 2),
    "numpy_floor": (np.floor, np.zeros_like),
    "numpy_ceil": (np.ceil, np.zeros_like),
}


# two arguments, for activity patterns


def mul_sin(a, b):
    return a * np.sin(b)


def mul_cos(a, b):
    return a * np.cos(b)


BINARY = {
    # value, d/da, d/db
    "mul_sin": (lambda a, b: a * np.sin(b), lambda a, b: np.sin(b), lambda a, b: a * np.cos(b)),
    "mul_cos": (lambda a, b: a * np.cos(b), lambda a, b: np.cos(b), lambda a, b: -a * np.sin(b)),
}


# scalar losses of one array, for forward gradients and training


def loss_sin(w):
    return np.sum(np.sin(w))


def loss_cos(w):
    return np.sum(np.cos(w))


def loss_quartic(w):
    return np.sum(w * w * w * w) * 0.25


LOSSES = {
    "loss_sin": (lambda w: np.sum(np.sin(w)), np.cos),
    "loss_cos": (lambda w: np.sum(np.cos(w)), lambda w: -np.sin(w)),
    "loss_quartic": (lambda w: 0.25 * np.sum(w ** 4), lambda w: w ** 3),
}

# black boxes with derivative rules (fwdjit.defjvp): the rules are closures from one factory (one
# qualified name, different captured values) or lambdas, registered in each process as a user would


def make_rule(c):
    def d_scaled_sin(g, ans, x):
        s = 0.0
        for _ in range(3):          # a loop, so that LLVM keeps it a function of its own
            s += c
        return g * (s / 3.0) * np.cos(x)
    return d_scaled_sin


def _blackbox(c):
    import numba

    @numba.njit
    def scaled_sin(x):
        return c * np.sin(x)
    return scaled_sin


bb2 = _blackbox(2.0)
bb3 = _blackbox(3.0)
bbx = _blackbox(1.0)      # its rule changes between processes (a user fixing a rule)


def use_bb2(a):
    return bb2(a)


def use_bb3(a):
    return bb3(a)


def use_bbx(a):
    return bbx(a)


RULES = {"use_bb2": (bb2, 2.0), "use_bb3": (bb3, 3.0)}

A = np.array([0.7, -1.2, 2.0])
DA = np.array([1.0, 0.5, -2.0])
B = np.array([0.3, 1.1, -0.4])
DB = np.array([-0.5, 2.0, 0.25])
W = np.array([0.4, -0.9, 1.3, 0.2])
DTYPES = {"f64": np.float64, "f32": np.float32}
TOL = {"f64": 1e-12, "f32": 2e-6}


def _err(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / (1.0 + np.abs(want)))) if want.size else 0.0


def _function(name):
    import fwdjit
    return fwdjit.fwdjit(globals()[name])


def run(job):
    """``(max relative error, dtype the results came back in)`` for one job."""
    import numba
    kind, name, *rest = job.split(":")
    dt_name = rest[-1]
    dt = DTYPES[dt_name]
    F = _function(name) if name in globals() else None
    if kind == "call":
        f, _ = UNARY[name]
        y = F(A.astype(dt))
        return _err(y, f(A.astype(dt).astype(np.float64))), str(y.dtype)
    if kind == "jvp":
        f, df = UNARY[name]
        a, da = A.astype(dt), DA.astype(dt)
        y, dy = F.jvp((a,), (da,))
        a64, da64 = a.astype(np.float64), da.astype(np.float64)
        return max(_err(y, f(a64)), _err(dy, df(a64) * da64)), str(dy.dtype)
    if kind == "batched":
        f, df = UNARY[name]
        a = A.astype(dt)
        das = np.stack([DA, -2.0 * DA, DA[::-1].copy()]).astype(dt)
        y, dys = F.jvp((a,), (das,), batched=True)
        a64 = a.astype(np.float64)
        return max(_err(y, f(a64)), _err(dys, df(a64)[None, :] * das.astype(np.float64))), str(dys.dtype)
    if kind == "njit":
        f, df = UNARY[name]
        jf = F.tangent_function((True,))

        @numba.njit
        def outer(a, da):          # a user's own compiled code calling the derivative
            y, dy = jf(a, da)
            return y.sum(), dy.sum()

        a, da = A.astype(dt), DA.astype(dt)
        s, ds = outer(a, da)
        a64, da64 = a.astype(np.float64), da.astype(np.float64)
        return max(_err(s, f(a64).sum()), _err(ds, (df(a64) * da64).sum())), str(type(ds).__name__)
    if kind == "mask":
        f, dfa, dfb = BINARY[name]
        pattern = rest[0]
        a, b, da, db = (x.astype(dt) for x in (A, B, DA, DB))
        ta = da if pattern[0] == "1" else None
        tb = db if pattern[1] == "1" else None
        y, dy = F.jvp((a, b), (ta, tb))
        a64, b64, da64, db64 = (x.astype(np.float64) for x in (a, b, da, db))
        want = np.zeros(3)
        if ta is not None:
            want = want + dfa(a64, b64) * da64
        if tb is not None:
            want = want + dfb(a64, b64) * db64
        return max(_err(y, f(a64, b64)), _err(dy, want)), str(dy.dtype)
    if kind == "fg":
        from fwdjit import forward_grad_function
        from fwdjit.training import rng
        f, grad = LOSSES[name]
        w = W.astype(dt)
        fg = forward_grad_function(F, wrt=0, n_directions=2)
        seed = 1234
        value, (g,) = fg(w, seed)
        base = rng.seed_key(seed)
        want = np.zeros(len(w))
        w64 = w.astype(np.float64)
        for k in range(2):    # the directions are a pure function of the seed (fwdjit.training.rng)
            v = np.empty(len(w), dt)
            rng.fill_direction(v, rng.derive(base, k, 0), rng.NORMAL)
            v = v.astype(np.float64)
            want += np.dot(grad(w64), v) * v / 2
        return max(_err(value, f(w64)), _err(g, want)), str(g.dtype)
    if kind == "train":
        from fwdjit import train
        f, grad = LOSSES[name]
        w = W.astype(dt)
        lr, steps = 0.1, 5
        res = train(F, (w,), steps=steps, batch_size=None, lr=lr, gradient="exact", progress=False)
        want = w.astype(np.float64)
        for _ in range(steps):          # plain gradient descent, by hand
            want = want - lr * grad(want)
        return _err(res.params[0], want), str(res.params[0].dtype)
    if kind == "rule":              # rule:use_bb2:f64, closures from one factory
        import fwdjit
        box, c = RULES[name]
        fwdjit.defjvp(box, make_rule(c))
        return _rule_err(F, c, None, dt)
    if kind == "rulechange":        # rulechange:C:f64 / rulelambda:cos|sin:f64, the rule of bbx
        import fwdjit
        c = float(name)
        fwdjit.defjvp(bbx, make_rule(c))
        return _rule_err(_function("use_bbx"), 1.0, c, dt)
    if kind == "rulelambda":
        import fwdjit
        if name == "cos":
            fwdjit.defjvp(bbx, lambda g, ans, x: g * np.cos(x))
        else:       # a rule the user claims (wrong for sin, but what the rule says is what must run)
            fwdjit.defjvp(bbx, lambda g, ans, x: g * np.sin(x))
        deriv = np.cos if name == "cos" else np.sin
        a, da = A.astype(dt), DA.astype(dt)
        y, dy = _function("use_bbx").jvp((a,), (da,))
        a64, da64 = a.astype(np.float64), da.astype(np.float64)
        return max(_err(y, np.sin(a64)), _err(dy, deriv(a64) * da64)), str(dy.dtype)
    raise ValueError(f"unknown job {job!r}")


def _rule_err(F, c_value, c_rule, dt):
    """``F = c_value * sin`` through a black box whose rule says ``c_rule * cos`` (``c_value`` if None)."""
    c_rule = c_value if c_rule is None else c_rule
    a, da = A.astype(dt), DA.astype(dt)
    y, dy = F.jvp((a,), (da,))
    a64, da64 = a.astype(np.float64), da.astype(np.float64)
    return max(_err(y, c_value * np.sin(a64)), _err(dy, c_rule * np.cos(a64) * da64)), str(dy.dtype)


def main(jobs):
    out = {}
    for job in jobs:
        dt_name = job.split(":")[-1]
        try:
            err, dtype = run(job)
            out[job] = {"ok": bool(err <= TOL[dt_name]), "err": err, "dtype": dtype}
        except Exception as exc:    # reported, and a failure for the test
            out[job] = {"ok": False, "err": None, "what": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
