"""Run one generated program through fwdjit and compare with the reference.

``check_program(program, workdir)`` writes the program to a real file (fwdjit
reads source code), imports it, runs the plain function, then compiles the
JVP for a few activity patterns and compares each with the independent
finite-difference reference of ``fwdjit.testing.check_jvp``.  It returns an
:class:`Outcome`:

``ok``           every checked pattern agrees;
``mismatch``     a JVP (or the primal computed with it) disagrees with the
                 reference, also with a smaller finite-difference step;
``crash``        fwdjit raised (at decoration or when compiling the JVP) on a
                 program plain Numba compiles, or the compiled code raised;
``invalid``      the plain program raised or gave non-finite values (skipped);
``unreliable``   the finite-difference reference is not smooth at this point
                 (a branch or a kink inside the stencil; skipped);
``numba``        the program is outside what Numba itself compiles (skipped).

Activity patterns checked per program (chosen from the seed): all
differentiable arguments together, and for about a third of the programs one
random argument alone or a random subset.  Three programs in a hundred go
through the public ``f.jvp`` with
``check_jvp``'s full pattern list (every argument alone, then all); the
others call ``f.tangent_function(mask)`` directly, which avoids compiling
the ``jvp`` entry point for every pattern.
"""
from __future__ import annotations

import importlib.util
import itertools
import math
import os
import random
import sys
import traceback
import types
import warnings
from dataclasses import dataclass, field

import numpy as np

from fwdjit import FwdjitError, fwdjit
from fwdjit.testing import JVPMismatch, UnreliableReference, check_jvp, random_tangents

_COUNTER = itertools.count()

#: absolute tolerance of the tangent check: check_jvp's default (1e-12) is
#: below the rounding noise of the reference when an output's derivative is
#: exactly zero; a wrong rule is off by O(1), so 1e-9 loses nothing.
ATOL = 1e-9


def _atol(single):
    """float32 programs use check_jvp's float32 default (1e-6): a derivative that float32
    computes as a difference of nearly equal numbers (tanh'(s) = 1 - tanh(s)**2 for large s,
    as JAX and PyTorch compute it) is off by about 1e-8 in absolute terms, well over 1e-9."""
    return None if single else ATOL


@dataclass
class Outcome:
    status: str
    detail: str = ""
    stage: str = ""
    exc_type: str = ""
    mask: tuple = ()            # names of the active parameters of the failing check
    configs: int = 0            # activity patterns compiled and checked
    extra: dict = field(default_factory=dict)

    def signature(self):
        """What must stay the same while a failing program is shrunk."""
        if self.status == "mismatch":
            return ("mismatch", self.stage)
        if self.status == "crash":
            return ("crash", self.stage, self.exc_type)
        return (self.status,)

    @property
    def failed(self):
        return self.status in ("mismatch", "crash")


def _copy(v):
    if isinstance(v, list):
        return [_copy(e) for e in v]
    if isinstance(v, tuple):
        return tuple(_copy(e) for e in v)
    return v.copy() if isinstance(v, np.ndarray) else v


def load_module(source, workdir, stem="fz", name=None):
    """Write ``source`` to a file in ``workdir`` and import it.

    The module is named ``name`` if given (the cache mode: every process
    imports a program from the same file, so fwdjit's cache entries are
    shared), else a fresh name.
    """
    name = name or f"{stem}_{os.getpid()}_{next(_COUNTER)}"
    path = os.path.join(workdir, name + ".py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class Packed:
    """``f`` seen by ``check_jvp`` as a function of one tuple argument.

    ``check_jvp`` checks one activity pattern per call this way: the tangent
    tuple has ``None`` for the inactive arguments.  ``jvp`` calls
    ``fj.tangent_function(mask)`` directly (tangents are copied, since the
    compiled code writes through them when ``f`` writes into its arguments).
    """

    def __init__(self, fj):
        self.fj = fj
        plain = fj.py_func
        self.py_func = lambda packed: plain(*packed)
        self.__qualname__ = fj.py_func.__qualname__

    def jvp(self, primals, tangents):
        (p,), (t,) = primals, tangents
        if t is None:
            t = (None,) * len(p)
        mask = tuple(x is not None for x in t)
        jf = self.fj.tangent_function(mask)
        flat = (*p, *[_copy(x) for x in t if x is not None])
        out = jf(*flat)
        try:    # Numba returns float32 scalars as Python floats; f.jvp gives np.float32 like NumPy
            from fwdjit.api import numpy_scalars
            out = numpy_scalars(jf, flat, out)
        except ImportError:   # pragma: no cover
            pass
        return out


def finite(out):
    leaves = out if isinstance(out, tuple) else (out,)
    for leaf in leaves:
        if isinstance(leaf, tuple):
            if not finite(leaf):
                return False
        elif not np.all(np.isfinite(np.asarray(leaf, dtype=np.float64))):
            return False
    return True


def choose_configs(names, kinds, seed, full_fraction=0.03):
    """Activity patterns (tuples of active parameter names) to check, and whether to use the public jvp."""
    r = random.Random(seed * 7 + 3)
    diff = [n for n, k in zip(names, kinds) if k in ("s", "v", "m")]
    full = r.random() < full_fraction
    if not diff:
        return [()], full
    configs = [tuple(diff)]
    if len(diff) > 1 and r.random() < 0.3:
        configs.append((r.choice(diff),))
    elif len(diff) > 2 and r.random() < 0.2:
        k = r.randint(2, len(diff) - 1)
        configs.append(tuple(sorted(r.sample(diff, k), key=diff.index)))
    return configs, full


class _Timeout(Exception):
    pass


def check_program(prog, workdir, *, timeout=300, **kw):
    """Check ``prog`` (a :class:`~tests.fuzz.gen.Program`); returns an :class:`Outcome`.

    ``timeout`` (seconds, main thread only) stops a program that does not end
    in plain Python (a shrunk candidate with an endless loop): ``invalid``.
    """
    import signal
    import threading
    if not timeout or threading.current_thread() is not threading.main_thread():
        return _check_program(prog, workdir, **kw)

    def handler(signum, frame):
        raise _Timeout()
    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(int(timeout))
    try:
        return _check_program(prog, workdir, **kw)
    except _Timeout:
        return Outcome("invalid", f"timeout: no result after {timeout} s", stage="timeout")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _nonfinite_at_edge(detail):
    """True when check_jvp's report shows fwdjit NaN/inf where the reference is finite.

    That is the documented convention at a point where an inner operation is not
    differentiable (``sqrt``, ``norm``, ``pow`` at 0): the chain rule gives 0/0 or
    inf * 0 even when the whole program is locally constant there (``x -= float(x)``
    makes ``x`` exactly 0).  Loud, not silent: reported apart from mismatches.
    """
    import re
    got = re.search(r"^\s*fwdjit:\s*(\S+)", detail, re.M)
    ref = re.search(r"^\s*reference:\s*(\S+)", detail, re.M)
    if not got or not ref:
        return False
    try:
        g, r = float(got.group(1)), float(ref.group(1))
    except ValueError:
        return False
    return not math.isfinite(g) and math.isfinite(r)


def _check_program(prog, workdir, **kw):
    oc = _check_program_inner(prog, workdir, **kw)
    if oc.status == "mismatch" and oc.stage != "primal" and _nonfinite_at_edge(oc.detail):
        return Outcome("edge", "fwdjit gives NaN/inf at a non-differentiable point of an inner operation "
                       "(the documented convention), the reference is finite\n" + oc.detail,
                       stage=oc.stage, mask=oc.mask, configs=oc.configs)
    if oc.status == "mismatch":
        differs = _numba_differs(prog)
        if differs:
            # plain Numba already disagrees with Python on this program (in-place updates through an
            # overlapping view, or an ill-conditioned program amplifying libm differences): the
            # reference is not the semantics fwdjit compiles to
            return Outcome("numba", f"numba.njit differs from Python: {differs}\n{oc.detail}",
                           stage="numba-semantics", mask=oc.mask, configs=oc.configs)
    return oc


def _numba_differs(prog):
    """A description of how ``numba.njit(f)`` differs from plain Python on ``prog.args``, or ''."""
    import tempfile
    import numba
    if "fwdjit" in prog.source:
        return ""
    try:
        with tempfile.TemporaryDirectory() as d, warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            mod = load_module(prog.source, d, stem="nbs")
            want = mod.f(*_copy(list(prog.args)))
            for k, v in list(vars(mod).items()):
                if k.startswith("h") and isinstance(v, types.FunctionType):
                    setattr(mod, k, numba.njit(v))
            got = numba.njit(mod.f)(*_copy(list(prog.args)))
    except Exception:
        return ""
    ok, why = _same(got, want, prog.dtype == "float32")
    return "" if ok else why


def _check_program_inner(prog, workdir, *, configs=None, full=None, check_primal=None, retry=True,
                         module_name=None, cache=False):
    names = prog.names
    kinds = [k for _, k in prog.params]
    r = random.Random(prog.seed * 13 + 1)
    if configs is None:
        configs, full0 = choose_configs(names, kinds, prog.seed)
        full = full0 if full is None else full
    full = bool(full)
    if check_primal is None:
        check_primal = r.random() < 0.15
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = load_module(prog.source, workdir, name=module_name)
    except Exception as exc:
        return Outcome("invalid", f"import: {type(exc).__name__}: {exc}", stage="import")
    plain = mod.f
    args = list(prog.args)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = plain(*_copy(args))
    except Exception as exc:
        return Outcome("invalid", f"plain: {type(exc).__name__}: {exc}", stage="plain")
    if not finite(out):
        return Outcome("invalid", "plain output is not finite", stage="plain")
    single = prog.dtype == "float32"
    if single:
        # float32 programs: skip those whose float32 result is ill-conditioned (it differs from the
        # same program run in float64 by more than 1e-3): their float32 derivatives are rounding noise
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out64 = plain(*[_to64(a) for a in args])
        except Exception as exc:
            return Outcome("invalid", f"plain float64: {type(exc).__name__}: {exc}", stage="plain")
        if not _close(out, out64, 1e-3) or _maxabs(out64) > 1e5:
            return Outcome("unreliable", "float32 result differs from float64 by more than 1e-3, or exceeds 1e5",
                           stage="f32-conditioning")

    try:
        fj = fwdjit(plain, cache=cache)
    except Exception as exc:
        return _crash(exc, "decorate", prog, args, ())
    tangents_all = prog.meta.get("tangents") or random_tangents(tuple(args), seed=prog.seed)
    outcome = Outcome("ok", configs=0)
    if check_primal:
        try:
            got = fj(*_copy(args))
        except Exception as exc:
            return _crash(exc, "primal", prog, args, ())
        ok, why = _same(got, out, single)
        if not ok:
            return Outcome("mismatch", f"compiled primal differs from the plain function: {why}", stage="primal")
    if full:
        try:
            with np.errstate(all="ignore"):
                check_jvp(fj, tuple(args), tangents_all, atol=_atol(single), check_dtype=not single)
            outcome.configs += len([a for a in args if not isinstance(a, (int, bool))]) + 1
            outcome.extra["full"] = True
            return outcome
        except UnreliableReference as exc:
            return Outcome("unreliable", str(exc), stage="full")
        except JVPMismatch as exc:
            if retry and _passes_smaller_step(fj, args, tangents_all, single):
                return Outcome("unreliable", "fd-retry passed: " + str(exc), stage="full")
            return Outcome("mismatch", str(exc), stage=_mismatch_stage(str(exc)), mask=tuple(prog.differentiable()))
        except Exception as exc:
            return _crash(exc, "jvp", prog, args, tuple(prog.differentiable()))
    packed = Packed(fj)
    for cfg in configs:
        tans = tuple(t if n in cfg else None for n, t in zip(names, tangents_all))
        try:
            with np.errstate(all="ignore"):
                check_jvp(packed, (tuple(args),), (tans,), atol=_atol(single), check_dtype=not single)
            outcome.configs += 1
        except UnreliableReference as exc:
            outcome.extra.setdefault("unreliable", []).append(cfg)
            if outcome.status == "ok":
                outcome.status = "unreliable"
                outcome.detail = str(exc)
        except JVPMismatch as exc:
            if retry and _passes_smaller_step(packed, [tuple(args)], [tans], single):
                outcome.extra.setdefault("unreliable", []).append(cfg)
                if outcome.status == "ok":
                    outcome.status = "unreliable"
                    outcome.detail = "fd-retry passed: " + str(exc)
                continue
            return Outcome("mismatch", str(exc), stage=_mismatch_stage(str(exc)), mask=cfg,
                           configs=outcome.configs + 1)
        except Exception as exc:
            return _crash(exc, "jvp", prog, args, cfg)
    if single and outcome.configs:
        # dtypes are not part of the pass/fail check for float32 programs (Numba's typing differs from
        # NumPy's in known ways: see the report); record deviations of the JVP's primal dtype
        try:
            tans = tuple(t if n in configs[0] else None for n, t in zip(names, tangents_all))
            got, _ = packed.jvp((tuple(_copy(args)),), (tans,))
            dev = _dtype_deviation(got, out)
            if dev:
                outcome.extra["dtype_deviation"] = dev
        except Exception:   # pragma: no cover
            pass
    if outcome.status == "unreliable" and outcome.configs > 0:
        outcome.status = "ok"     # at least one pattern checked; the others were skipped
        outcome.extra["partly_unreliable"] = True
    return outcome


def _passes_smaller_step(f, args, tangents, single):
    """Re-check with a 10x smaller finite-difference step (a kink or branch near the point)."""
    try:
        with np.errstate(all="ignore"):
            check_jvp(f, tuple(args), tuple(tangents), eps=2e-4, atol=_atol(single), check_dtype=not single)
        return True
    except (JVPMismatch, UnreliableReference):
        pass
    return _kink_within_step(f, args, tangents)


def _kink_within_step(f, args, tangents, rtol=1e-4):
    """Whether fwdjit's tangent is one of two *different* one-sided derivatives.

    A kink of ``min``/``max``/``abs`` or a branch closer to the point than any
    usable central-difference step (``min(v[1], 0.3)`` with ``v[1]`` the float32
    0.30000001) makes every symmetric difference average the two slopes.  The
    one-sided differences (second order, small step) tell the sides apart; when
    they differ and fwdjit matches one of them, the reference is what is wrong.
    """
    from fwdjit.testing.reference import direction_scale as _direction_scale, eval_plain as _eval_plain
    from fwdjit.testing.values import as_float_array as _as_float_array, perturb as _perturb, plain_function as _plain_function, upcast as _upcast
    fn = _plain_function(f)
    a64 = [_upcast(a) for a in args]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            jvp = getattr(f, "jvp")
            _, got = jvp(tuple(_copy(list(args))), tuple(tangents))
            h = 1e-7 * _direction_scale(a64, tangents)
            f0 = [_as_float_array(v) for _, v in _eval_plain(fn, [_copy(a) for a in a64])]
            sides = []
            for s in (1.0, -1.0):
                f1 = [_as_float_array(v) for _, v in _eval_plain(fn, [_perturb(a, t, s * h) for a, t in zip(a64, tangents)])]
                f2 = [_as_float_array(v) for _, v in _eval_plain(fn, [_perturb(a, t, 2 * s * h) for a, t in zip(a64, tangents)])]
                sides.append([s * (-3 * a + 4 * b - c) / (2 * h) for a, b, c in zip(f0, f1, f2)])
    except Exception:
        return False
    from fwdjit.testing.values import flatten_out as _flatten_out
    got = [_as_float_array(v) for _, v in _flatten_out(got)]

    def close(x, y):
        return all(np.allclose(a, b, rtol=rtol, atol=1e-6 * (1 + np.max(np.abs(b), initial=0)))
                   for a, b in zip(x, y))
    right, left = sides
    return (not close(right, left)) and (close(got, right) or close(got, left))


def _to64(a):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.astype(np.float64)
    if isinstance(a, np.floating):
        return float(a)
    return a


def _maxabs(v):
    if isinstance(v, tuple):
        return max((_maxabs(x) for x in v), default=0.0)
    return float(np.max(np.abs(np.asarray(v, dtype=np.float64)), initial=0.0))


def _close(a, b, rtol):
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b))
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return x.shape == y.shape and bool(np.all(np.abs(x - y) <= rtol * max(1e-6, float(np.max(np.abs(y), initial=0)))))


def _dtype_of(v):
    if isinstance(v, (np.ndarray, np.generic)):
        return str(v.dtype)
    return {bool: "bool", int: "int64", float: "float64"}.get(type(v), type(v).__name__)


def _dtype_deviation(got, want):
    g = got if isinstance(got, tuple) else (got,)
    w = want if isinstance(want, tuple) else (want,)
    out = [f"out[{i}]: fwdjit {_dtype_of(a)}, NumPy {_dtype_of(b)}" for i, (a, b) in enumerate(zip(g, w))
           if _dtype_of(a) != _dtype_of(b)]
    return "; ".join(out)


def _mismatch_stage(msg):
    if "primal output differs" in msg:
        return "jvp-primal"
    if "dtype" in msg and "tangent mismatch" not in msg:
        return "dtype"
    if "structure" in msg or "leaves" in msg or "is None" in msg:
        return "structure"
    return "tangent"


def _same(a, b, single=False):
    if isinstance(b, tuple):
        if not isinstance(a, tuple) or len(a) != len(b):
            return False, "structure"
        for x, y in zip(a, b):
            ok, why = _same(x, y, single)
            if not ok:
                return ok, why
        return True, ""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return False, f"shape {x.shape} vs {y.shape}"
    rtol = 1e-4 if single else 1e-10
    if not np.allclose(x, y, rtol=rtol, atol=rtol * 1e-2 * max(1.0, float(np.max(np.abs(y), initial=0)))):
        return False, f"{x!r} vs {y!r}"
    return True, ""


def _crash(exc, stage, prog, args, cfg):
    """A raised exception: fwdjit's fault unless plain Numba cannot compile the program either."""
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tb = traceback.format_exc(limit=-8)
    if not _numba_compiles(prog, args):
        return Outcome("numba", detail, stage=stage, exc_type=type(exc).__name__)
    return Outcome("crash", detail, stage=stage, exc_type=type(exc).__name__, mask=cfg, extra={"traceback": tb})


def _numba_compiles(prog, args):
    """Does ``numba.njit`` compile the plain program (without fwdjit)?"""
    if "fwdjit" in prog.source:
        return True     # helpers are fwdjit functions: numba alone cannot tell
    import tempfile
    import numba
    try:
        with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = load_module(prog.source, d, stem="nb")
            for k, v in list(vars(mod).items()):
                if k.startswith("h") and isinstance(v, types.FunctionType):
                    setattr(mod, k, numba.njit(v))      # plain helpers: numba compiles them as callees
            g = numba.njit(mod.f)
            with np.errstate(all="ignore"):
                g(*_copy(list(args)))
        return True
    except Exception:
        return False


__all__ = ["Outcome", "check_program", "load_module", "Packed", "choose_configs", "FwdjitError"]
