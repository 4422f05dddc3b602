"""The CPU target and its public API: ``@fwdjit``, ``fwdjit.jvp``, ``fwdjit.defjvp``.

Input: a Python function.  Output: a :class:`FwdjitFunction`, whose primal and
JVPs are the passes' generated code compiled with ``numba.njit``.
:func:`as_fwdjit` is the one way other modules turn what a user passes (an
@fwdjit function, a plain function, a Numba dispatcher) into one.  The CUDA
target (:mod:`fwdjit.cuda`) imports this module, never the other way round;
``fwdjit.fwdjit(target="cuda")`` dispatches to it.

>>> def sq(x):
...     return x * x
>>> f = as_fwdjit(sq)
>>> f is as_fwdjit(f) is get_fwdjit(sq)
True
>>> f.jvp((3.0,), (1.0,))
(9.0, 6.0)
"""
from __future__ import annotations

import ast
import copy
import functools
import threading
import types as pytypes

import numba
import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from . import rules as R
from .targets.cache import HEADER, guard_cache, load_module, namespace_key, value_key
from .compiler.float32 import float32_twin
from .rules.lowrank import LowRank
from .rules.lowrank import mismatch as lowrank_mismatch
from .errors import Float32PromotionWarning, FwdjitError, TangentError, TangentMismatch, UnsupportedCall
from .compiler.primal import PrimalGen
from .compiler.resolve import parse_function
from .runtime import define, has_float32
from .compiler.tangent import Resolver, TangentGen, render
from .targets.base import TargetFunction, describe, mismatch, user_python_function
from .compiler.validate import validate

__version__ = "0.1.0"

_REGISTRY: dict = {}
_LOCK = threading.RLock()


def is_lowrank_type(t):
    """Whether a Numba type is that of a :class:`fwdjit.LowRank` tangent."""
    return isinstance(t, types.BaseNamedTuple) and getattr(t, "instance_class", None) is LowRank


def _compiled(obj):
    """``obj`` when it is already an @fwdjit function (what the resolver calls as it is), else None."""
    return obj if isinstance(obj, FwdjitFunction) else None


def get_fwdjit(func):
    """The FwdjitFunction for a plain Python function (created once, default options)."""
    with _LOCK:
        fj = _REGISTRY.get(func)
        if fj is None:
            fj = FwdjitFunction(func)
        return fj


_TWIN_WARNED = set()


def _warn_twin_fallback(fn, tys, exc):
    import warnings
    key = (fn.name, tuple(str(t) for t in tys))
    if key in _TWIN_WARNED:
        return
    _TWIN_WARNED.add(key)
    first = str(exc).strip().splitlines()
    keys = ("unify", "cannot be determined", "same dtype", "not supported", "Unknown attribute", "Invalid use")
    why = next((ln.strip() for ln in first if any(k in ln for k in keys)), None)
    if why is None:
        deepest = [ln.split("TypingError:", 1)[1].strip() for ln in first if "TypingError:" in ln]
        why = next((d for d in reversed(deepest) if d and not d.startswith("Failed in")), first[0] if first else "")
    warnings.warn_explicit(
        f"{fn.name}: the float32-preserving version (NumPy 2 dtype rules) does not type in Numba for "
        f"({', '.join(str(t) for t in tys)}): {why}. Using Numba's own rules instead, as numba.njit does: "
        f"values are the same, but float32 results may come back as float64. Cast explicitly "
        f"(np.float32(...)) where a variable changes dtype to keep float32.",
        Float32PromotionWarning, fn.info.filename, fn.info.tree.lineno)


class FwdjitFunction(TargetFunction):
    """A Python function compiled by fwdjit: call it for the primal, ``.jvp`` for derivatives.

    Attributes
    ----------
    py_func : the original Python function.
    tangent_source : the generated tangent (JVP) source, as Python text.
    primal_function : the Numba dispatcher of the primal.
    """

    fwdjit_target = "cpu"

    def __init__(self, func, *, fastmath=False, cache=True, parallel=False):
        self.info = parse_function(func)       # first: anything but a 'def' function is a clear FwdjitError
        functools.update_wrapper(self, func)
        self.py_func = func
        self.name = func.__name__
        self.options = {"fastmath": fastmath, "cache": cache, "parallel": parallel}
        validate(self.info)
        self.params = list(self.info.params)
        self._nparams = len(self.params)
        self.resolver = Resolver(self.info, registry=get_fwdjit, compiled=_compiled)
        self._primal = None
        self._public = {}
        self._internal = {}
        self._effective = {}
        self._analyzing = set()
        self._last_mask = None
        self._keys = {}
        self._f32_seen = False      # a float32 signature was compiled: scalar results need np.float32
        self._nsig = {}
        with _LOCK:
            _REGISTRY.setdefault(func, self)   # callees reuse the first instance
        self._check_calls()

    def __repr__(self):
        return f"<fwdjit function {self.info.qualname} ({self.info.filename}:{self.info.tree.lineno})>"

    # ------------------------------------------------------ transform time
    def _check_calls(self):
        """Resolve every call now, so unknown callees fail at decoration time."""
        for node in ast.walk(self.info.tree):
            if not isinstance(node, ast.Call):
                continue
            kind, obj, _ = self.resolver.classify(node)
            if kind == "blackbox" and not _numba_can_call(obj):
                name = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
                raise self.info.error(
                    UnsupportedCall, node,
                    f"fwdjit cannot compile or differentiate {name}() (no source, no derivative rule)",
                    hint=f"register a rule with fwdjit.defjvp({getattr(obj, '__name__', 'func')}, ...) "
                         "for a Numba-compilable function, or call it outside the differentiated function",
                    construct=f"call to {name}")

    def _jit_options(self, user_code=True):
        """Numba options.  ``parallel`` only for functions that contain the user's code: the
        wrappers around them (entry points, dtype pickers, tuple unpacking) have nothing to
        parallelize, and Numba warns about each of them (NumbaPerformanceWarning)."""
        return {"fastmath": self.options["fastmath"], "error_model": "numpy",
                "parallel": bool(self.options["parallel"]) and user_code}

    def _compile(self, fdef, stem, bindings, kind, user_code=True):
        """Write the module (plain + float32 twin + entry) and jit its entry point.

        ``user_code``: ``fdef`` is (generated from) the user's function, not a wrapper.
        """
        name = fdef.name
        fdef32 = copy.deepcopy(fdef)
        fdef32.name = name + "__f32"
        ns = dict(self.info.namespace)
        ns.update(bindings)
        for k, v in list(ns.items()):
            if isinstance(v, FwdjitFunction):
                ns[k] = v.primal_function_internal()
        returns = "jvp" if kind.startswith("jvp") else "vector" if kind.startswith("vector") else None
        from . import runtime as _runtime
        fdef32 = float32_twin(fdef32, {**ns, "np": np, "fj": _runtime}, returns=returns)
        params = [a.arg for a in fdef.args.args]
        plist = ", ".join(params)
        pick = f"_{name}__pick"
        text = (HEADER.format(version=__version__, qualname=self.info.qualname,
                              where=f"{self.info.filename}:{self.info.tree.lineno}")
                + "\n\n" + render(fdef)
                + "\n\n# The same code with dtype-preserving casts, used when an argument is float32 (NumPy 2 rules).\n"
                + render(fdef32)
                + f"\n\ndef {name}__entry({plist}):\n    return {pick}({plist})\n")
        extra = repr(sorted(self.options.items())) + kind + namespace_key(ns)
        # the selection stub: typed by Numba, picks the plain or the float32 code
        stub_ns = {}
        exec(f"def {pick}({plist}):\n    pass\n", stub_ns)
        stub = stub_ns[pick]
        ns[pick] = stub
        mod, key, path = load_module(stem, text, ns, extra)
        plain, twin = getattr(mod, name), getattr(mod, name + "__f32")
        opts, wrapper_opts = self._jit_options(user_code), self._jit_options(False)
        twin_disp = numba.njit(**opts)(twin)
        plain_disp = numba.njit(**opts)(plain)
        # the shims below belong to the hashed module, so their compiled names are unique to it
        call_twin = define(f"def {name}__call_twin({plist}):\n    return twin({plist})\n",
                           f"{name}__call_twin", {"twin": twin_disp}, mod.__name__)
        # the fallback (plain code, Numba's float64 promotion) may still compute a float32 primal
        # (math.asinh(float32) is float32 in Numba) next to a float64 tangent: cast tangents to
        # their primal's dtype, as the twin does
        if returns == "jvp":
            body = "r = plain({p})\n    return (r[0], fj.match_dtype(r[1], r[0]))"
        elif returns == "vector":
            body = "r = plain({p})\n    return (r[0], fj.match_dtype_each(r[1], r[0]))"
        else:
            body = "return plain({p})"
        call_plain = define(f"def {name}__call_plain({plist}):\n    " + body.format(p=plist) + "\n",
                            f"{name}__call_plain",
                            {"plain": plain_disp, "fj": _runtime}, mod.__name__)
        if opts == wrapper_opts:
            plain_target = plain        # compiled by the overload below, with the same options
        else:                           # parallel: only the user's code gets parallel=True
            plain_target = define(f"def {name}__call_parallel({plist}):\n    return plain({plist})\n",
                                  f"{name}__call_parallel", {"plain": plain_disp}, mod.__name__)
        me = self

        def pick_twin(*tys):
            if not has_float32(*tys):
                return plain_target
            try:
                twin_disp.get_call_template(tys, {})
            except TypingError as exc:
                if "fwdjit: " in str(exc):
                    raise           # fwdjit's own input checks (a tangent of the wrong dtype): the user's error
                # Numba cannot type the dtype-preserving code (a variable that is float32 on one
                # path and float64 on another, inside a loop): run Numba's own float64-promoting
                # semantics, as numba.njit would, and say so once
                _warn_twin_fallback(me, tys, exc)
                return call_plain
            me._f32_seen = True
            return call_twin
        typer = define(f"def {name}__typer({plist}):\n    return pick_twin({plist})\n",
                       f"{name}__typer", {"pick_twin": pick_twin}, mod.__name__)
        overload(stub, jit_options=wrapper_opts)(typer)
        disp = guard_cache(numba.njit(cache=self.options["cache"], **wrapper_opts)(
            getattr(mod, name + "__entry")))
        disp._fwdjit_user_dispatchers = (plain_disp, twin_disp)
        disp._fwdjit_key = key
        disp._fwdjit_path = str(path)
        disp._fwdjit_plain = plain
        return disp, text, path

    # --------------------------------------------------------------- primal
    def primal_function_internal(self):
        if self._primal is None:
            with _LOCK:
                if self._primal is None:
                    gen = PrimalGen(self)
                    fdef = gen.run()
                    disp, self._primal_source, self._primal_path = self._compile(
                        fdef, self.name, gen.bindings, "primal")
                    disp._fwdjit_function = self
                    self._primal = disp
        return self._primal

    @property
    def _numba_type_(self):
        """What Numba's ``typeof`` reads: the decorated function is callable from ``@njit`` code.

        A call resolves to the primal dispatcher (as a Numba dispatcher's does)
        and ``f.jvp(primals, tangents)`` inside ``@njit`` code to the JVP.
        """
        return FwdjitType(self.primal_function_internal())

    @property
    def primal_function(self):
        """The Numba dispatcher of the compiled primal (callable from @njit code)."""
        return self.primal_function_internal()

    def __call__(self, *args):
        disp = self._primal if self._primal is not None else self.primal_function_internal()
        try:
            out = disp(*args)
        except TypingError as exc:
            raise _typing_error(self, args, exc) from None
        if len(disp.overloads) != self._nsig.get(id(disp), 0):
            self._refresh_f32(disp)
        if self._f32_seen:
            out = numpy_scalars(disp, args, out)
        return out

    def _nopython_jvp(self):
        """A stub typed by an overload: ``f.jvp(primals, tangents)`` inside ``@njit`` code."""
        stub = self.__dict__.get("_njit_jvp")
        if stub is not None:
            return stub
        with _LOCK:
            if self.__dict__.get("_njit_jvp") is not None:
                return self._njit_jvp
            n, me = self._nparams, self
            ns = {}
            exec(f"def {self.name}_jvp(primals, tangents):\n    pass\n", ns)
            stub = ns[f"{self.name}_jvp"]

            def typer(primals, tangents):
                if not (isinstance(primals, types.BaseTuple) and isinstance(tangents, types.BaseTuple)
                        and len(primals) == n and len(tangents) == n):
                    raise TypingError(f"fwdjit: jvp of {me.name}({', '.join(me.params)}) in @njit code: expected "
                                      f"f.jvp(primals, tangents) with two tuples of {n} entries (None for no "
                                      f"tangent); given {primals} and {tangents}")
                if me.__dict__.get("jvp") is None:
                    me.jvp = me._jvp_entry()        # the shim that f.jvp installs on its first call
                body = ", ".join([f"primals[{i}]" for i in range(n)] + [f"tangents[{i}]" for i in range(n)])
                return define(f"def {me.name}_jvp_tuples(primals, tangents):\n    return entry({body})\n",
                              f"{me.name}_jvp_tuples", {"entry": me.jvp.dispatcher},
                              me.jvp.dispatcher.py_func.__module__)

            overload(stub, jit_options=self._jit_options(False))(typer)
            self._njit_jvp = stub
            return stub

    def _refresh_f32(self, disp):
        """Note float32 signatures (compiled now or loaded from the disk cache, where no typer runs)."""
        self._nsig[id(disp)] = len(disp.overloads)
        if any(has_float32(*sig) for sig in disp.overloads):
            self._f32_seen = True

    # -------------------------------------------------------------- tangent
    def _generator(self, mask, check_inputs, lowrank=None, stack_products=False):
        return TangentGen(self.info, self.info.tree, mask, self.resolver, check_inputs=check_inputs,
                          lowrank=lowrank, stack_products=stack_products)

    def _lowrank_mask(self, mask, lowrank):
        """``lowrank`` as one bool per argument (None: no low-rank tangent), checked against ``mask``."""
        if lowrank is None:
            return None
        lr = tuple(bool(x) for x in lowrank)
        if len(lr) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}); "
                               f"lowrank has {len(lr)} entries")
        for p, m, x in zip(self.params, mask, lr):
            if x and not m:
                raise TangentError(f"{self.name}: argument '{p}' is marked low-rank but gets no tangent")
        return lr if any(lr) else None

    def tangent_function(self, active=None, _internal=False, lowrank=None):
        """The compiled JVP as a Numba dispatcher, callable from ``@njit`` code.

        ``active[i]`` says whether argument ``i`` gets a tangent.  Signature:
        ``jf(*primals, *tangents_of_active_args) -> (out, dout)``; tuple
        outputs give ``((y1, y2), (dy1, dy2))``.  Tangents are checked against
        their primals (dtype, ndim, shape) unless the function is a callee
        compiled for another fwdjit function.

        ``lowrank[i]`` (optional) says that the tangent of the 2-d argument
        ``i`` comes as two factors ``A`` (m, r) and ``B`` (n, r), in that order
        in place of its one tangent: the JVP in the direction ``A @ B.T``,
        computed without forming it where a product allows
        (:mod:`fwdjit.rules.lowrank`).
        """
        if active is None:
            active = (True,) * self._nparams
        mask = tuple(bool(a) for a in active)
        if len(mask) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}); "
                               f"active has {len(mask)} entries")
        lr = self._lowrank_mask(mask, lowrank)
        table = self._internal if _internal else self._public
        key = mask if lr is None else (mask, lr)
        disp = table.get(key)
        if disp is None:
            with _LOCK:
                disp = table.get(key)
                if disp is None:
                    # public JVPs are not transformed again: they stack x @ W with dx @ W
                    gen = self._generator(mask, check_inputs=not _internal, lowrank=lr,
                                          stack_products=not _internal)
                    fdef = gen.run()
                    bits = "".join("1" if m else "0" for m in mask)
                    lrbits = "" if lr is None else "_lowrank" + "".join("1" if x else "0" for x in lr)
                    stem = f"{self.name}_jvp_{bits}{lrbits}" + ("_internal" if _internal else "")
                    disp, _, _ = self._compile(fdef, stem, gen.bindings, "jvp" + str(_internal) + lrbits)
                    disp._fwdjit_owner, disp._fwdjit_mask = self, mask
                    disp._fwdjit_lowrank = lr
                    table[key] = disp
        if not _internal:
            self._last_mask, self._last_lowrank = mask, lr
        return disp

    # ---------------------------------------------------------- vector mode
    def _vector_generator(self, mask, K):
        from .compiler.vector import vectorize
        gen = self._generator(mask, check_inputs=False)
        fdef = gen.run()
        tnames = set(gen._tnames.values())
        tparams = [gen.tname(p) for p, m in zip(self.params, mask) if m]
        bindings = dict(gen.bindings)
        callees = {}
        for name, obj in gen.bindings.items():
            owner = getattr(obj, "_fwdjit_owner", None)
            if owner is not None:
                kname = gen.fresh(f"{name}k{K}_")
                bindings[kname] = owner.tangent_function_k(obj._fwdjit_mask, K, _internal=True)
                callees[name] = kname
        names = set(a.arg for a in ast.walk(fdef) if isinstance(a, ast.arg)) | \
            {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name)}

        def kname(name, k):
            cand = f"{name}_{k}"
            return cand if cand not in names else f"{name}__{k}"
        fk = vectorize(fdef, tnames, K, tparams, callees, kname)
        fk.name = f"{self.name}_jvp{K}"
        return fk, bindings, tparams, kname

    def tangent_function_k(self, active, K, _internal=False):
        """K tangent directions per call, primal computed once (vector mode).

        Public form: ``jf(*primals, *stacked_tangents) -> (out, douts)`` where
        each stacked tangent has a leading axis of length K (a 1-d array of K
        values for a scalar argument) and ``douts`` stacks the K output
        tangents the same way.  With ``_internal=True`` the tangents are passed
        and returned unstacked (K arguments per tangent), for callers in
        generated code.
        """
        mask = tuple(bool(a) for a in active)
        K = int(K)
        if K < 1:
            raise TangentError(f"vector mode needs K >= 1 directions, given {K}")
        table = self.__dict__.setdefault("_vector", {})
        key = (mask, K, _internal)
        disp = table.get(key)
        if disp is not None:
            return disp
        with _LOCK:
            disp = table.get(key)
            if disp is not None:
                return disp
            bits = "".join("1" if m else "0" for m in mask)
            fk, bindings, tparams, kname = self._vector_generator(mask, K)
            inner, _, _ = self._compile(fk, f"{self.name}_jvp{K}_{bits}", bindings, f"vector{K}")
            if _internal:
                disp = inner
            else:
                prims = list(self.params)
                stacked = [f"d{p}_stacked" for p, m in zip(self.params, mask) if m]
                body = [f"    {s} = fj.check_tangents_k({p}, {s}, {p!r}, {K})"
                        for s, p in zip(stacked, [p for p, m in zip(self.params, mask) if m])]
                args = prims + [f"{s}[{k}]" for s in stacked for k in range(K)]
                ts = ", ".join(f"_d{k}" for k in range(K))
                body.append(f"    out, ({ts},) = inner({', '.join(args)})")
                body.append(f"    return out, fj.kstack(({ts},))")
                src = f"def {self.name}_jvp{K}_stacked({', '.join(prims + stacked)}):\n" + "\n".join(body) + "\n"
                fdef = ast.parse(src).body[0]
                disp, _, _ = self._compile(fdef, f"{self.name}_jvp{K}_{bits}_stacked", {"inner": inner},
                                           f"vstack{K}", user_code=False)
            table[key] = disp
            return disp

    def tangent_source_k(self, active, K):
        """The generated K-direction source for an activity pattern."""
        fk, _, _, _ = self._vector_generator(tuple(bool(a) for a in active), K)
        return render(fk)

    def jvp_batched(self, primals, tangents):
        """K directions in one pass: each non-None tangent has a leading axis of length K.

        Returns ``(out, douts)`` with ``douts[k]`` the tangent along direction k
        (tuple outputs: a tuple of such stacks).  The primal runs once.
        """
        if not (isinstance(primals, (tuple, list)) and isinstance(tangents, (tuple, list))) \
                or len(primals) != self._nparams or len(tangents) != self._nparams:
            raise self._count_error(primals, tangents)
        mask = tuple(t is not None for t in tangents)
        for name, p, t in zip(self.params, primals, tangents):
            if isinstance(t, LowRank):
                raise TangentError(f"jvp of {self.name} with batched=True: a low-rank tangent (fwdjit.LowRank) "
                                   f"for '{name}' is not supported in vector mode; pass K dense tangents "
                                   f"stacked, or call f.jvp once per LowRank direction without batched=True")
            if t is not None and isinstance(p, tuple):
                raise TangentError(f"jvp of {self.name} with batched=True: batched (vector-mode) tangents for "
                                   f"the tuple argument '{name}' are not supported; pass None for it, or pass "
                                   f"its elements as separate arguments (f.jvp without batched=True takes a "
                                   f"tuple tangent)")
        Ks = {np.shape(t)[0] if np.ndim(t) else None for t in tangents if t is not None}
        if not Ks or None in Ks or len(Ks) != 1:
            raise TangentError(f"jvp of {self.name} with batched=True: every tangent needs the same leading "
                               f"axis of K directions; given shapes "
                               f"{[None if t is None else np.shape(t) for t in tangents]}")
        K = Ks.pop()
        disp = self.tangent_function_k(mask, K)
        try:
            out = disp(*primals, *[t for t in tangents if t is not None])
        except TypingError as exc:
            raise _typing_error(self, tuple(primals) + tuple(t for t in tangents if t is not None), exc) from None
        if len(disp.overloads) != self._nsig.get(id(disp), 0):
            self._refresh_f32(disp)
        if self._f32_seen:
            out = numpy_scalars(disp, tuple(primals) + tuple(t for t in tangents if t is not None), out)
        return out

    def tangent_fwdjit(self, active):
        """The generated tangent function as a FwdjitFunction of its own (for second derivatives).

        ``tf = f.tangent_fwdjit(active)``; ``tf(*primals, *tangents) -> (out, dout)``
        and ``tf.jvp`` differentiates that again (forward over forward).
        """
        mask = tuple(bool(a) for a in active)
        disp = self.tangent_function(mask, _internal=True)
        return get_fwdjit(disp._fwdjit_plain)

    def jvp(self, primals, tangents, batched=False):
        """``(out, dout)`` at ``primals`` in the direction ``tangents`` (JAX's argument order).

        ``batched=True``: K directions in one pass (see :meth:`jvp_batched`).

        ``tangents`` has one entry per primal; ``None`` is a zero tangent, and
        int/bool arguments take ``None``.  Tuple outputs give tuple tangents.

        After the first call this method is replaced by a Numba dispatcher
        taking the two tuples, so a call costs no Python work: the activity
        pattern is read from which tangents are ``None`` when Numba types the
        call.
        """
        entry = self._jvp_entry()
        self.jvp = entry
        return entry(primals, tangents, batched)

    def _jvp_entry(self):
        """A Python shim that unpacks the tuples and calls one Numba dispatcher.

        The dispatcher takes the primals and one slot per tangent (None where
        there is none); an overload reads the activity pattern from which
        slots are None when Numba types the call, so switching patterns costs
        nothing at run time.
        """
        with _LOCK:
            if self.__dict__.get("jvp") is not None:
                return self.__dict__["jvp"]
            n = self._nparams
            name = f"{self.name}_jvp_any"
            pick = f"_{name}__pick"
            ps = [f"p{i}" for i in range(n)]
            ts = [f"t{i}" for i in range(n)]
            flat = ", ".join(ps + ts)
            text = (HEADER.format(version=__version__, qualname=self.info.qualname,
                                  where=f"{self.info.filename}:{self.info.tree.lineno}")
                    + f"\n\ndef {name}({flat}):\n"
                      f"    # primals, then one tangent slot per argument (None: no tangent);\n"
                      f"    # picks the {self.name}_jvp compiled for the slots that are not None\n"
                      f"    return {pick}({flat})\n")
            stub_ns = {}
            exec(f"def {pick}({flat}):\n    pass\n", stub_ns)
            stub = stub_ns[pick]
            me = self

            mod, key, path = load_module(name, text, {pick: stub}, "entry" + self.deep_key())

            def typer(*tys):
                mask = tuple(not isinstance(t, (types.NoneType, types.Omitted)) for t in tys[n:])
                lr = tuple(is_lowrank_type(t) for t in tys[n:])
                disp = me.tangent_function(mask, lowrank=lr if any(lr) else None)
                args = ps + [x for t, m, f in zip(ts, mask, lr) if m
                             for x in ((f"{t}[0]", f"{t}[1]") if f else (t,))]
                # named by the hashed entry module and the activity pattern: a unique compiled name
                call = f"{name}__call_{''.join('1' if m else '0' for m in mask) or 'none'}"
                if any(lr):
                    call += "_lowrank" + "".join("1" if f else "0" for f in lr)
                return define(f"def {call}({flat}):\n    return disp({', '.join(args)})\n",
                              call, {"disp": disp}, mod.__name__)

            overload(stub, jit_options=self._jit_options(False))(
                define(f"def {name}__typer({flat}):\n    return typer({flat})\n",
                       f"{name}__typer", {"typer": typer}, mod.__name__))
            entry = guard_cache(numba.njit(cache=self.options["cache"], **self._jit_options(False))(
                getattr(mod, name)))
            original = entry._compile_for_args

            def compile_for_args(*args, **kws):
                try:
                    return original(*args, **kws)
                except TypingError as exc:
                    primals, tangents = args[:n], args[n:]
                    bad = me._explain(primals, tangents, None)
                    if bad is not None:
                        raise bad from None
                    raise _typing_error(me, tuple(primals) + tuple(t for t in tangents if t is not None),
                                        exc) from None

            entry._compile_for_args = compile_for_args
            shim_ns = {"entry": entry, "count_error": self._count_error, "me": self,
                       "fix": numpy_scalars, "nsig": self._nsig, "eid": id(entry)}
            unpack_p = (", ".join(ps) + ",") if n else "()"
            unpack_t = (", ".join(ts) + ",") if n else "()"
            shim_ns["batched_jvp"] = self.jvp_batched
            exec(f"def jvp(primals, tangents, batched=False):\n"
                 f"    if batched:\n"
                 f"        return batched_jvp(primals, tangents)\n"
                 f"    if type(primals) is not tuple and not isinstance(primals, list):\n"
                 f"        raise count_error(primals, tangents)\n"
                 f"    try:\n"
                 f"        {unpack_p} = primals\n"
                 f"        {unpack_t} = tangents\n"
                 f"    except (TypeError, ValueError):\n"
                 f"        raise count_error(primals, tangents) from None\n"
                 f"    out = entry({flat})\n"
                 f"    if len(entry.overloads) != nsig.get(eid, 0):\n"
                 f"        me._refresh_f32(entry)\n"
                 f"    if me._f32_seen:\n"
                 f"        out = fix(entry, ({flat}{',' if n == 0 else ''}), out)\n"
                 f"    return out\n", shim_ns)
            shim = shim_ns["jvp"]
            shim.__doc__ = FwdjitFunction.jvp.__doc__
            shim.dispatcher = entry
            return shim

    def key_entry(self, value):
        """A callee (an @fwdjit function or a user function) counts by its own deep key."""
        fj = value if isinstance(value, FwdjitFunction) else None
        if fj is None:
            py = user_python_function(value)
            if py is not None:
                fj = get_fwdjit(py)
        return f"fwdjit:{fj.deep_key()}" if fj is not None else value

    def _count_error(self, primals, tangents):
        sig = f"{self.name}({', '.join(self.params)})"
        def desc(v):
            if isinstance(v, (tuple, list)):
                return f"a {type(v).__name__} of {len(v)}"
            return f"a {type(v).__name__}"
        return TangentError(f"jvp of {sig}: expected primals and tangents as tuples of {self._nparams} "
                            f"entries (one per parameter, None for no tangent); given primals as "
                            f"{desc(primals)} and tangents as {desc(tangents)}")

    def _explain(self, primals, tangents, exc):
        for name, p, t in zip(self.params, primals, tangents):
            if t is None:
                continue
            msg = lowrank_mismatch(p, t) if isinstance(t, LowRank) else mismatch(p, t)
            if msg:
                return TangentError(f"jvp of {self.name}: tangent for argument '{name}': {msg}")
        if exc is None:
            return None
        return TangentError(f"jvp of {self.name}: {' '.join(map(str, exc.args))}")

    @property
    def tangent_source(self):
        """The generated tangent source (plain variant) for the last mask used, or all arguments active."""
        mask = self._last_mask or self._mask_of_last_jvp() or \
            tuple(p not in int_params(self.info.tree) for p in self.params)
        lr = self.__dict__.get("_last_lowrank")
        return self.tangent_source_for(mask, lr if lr is not None and len(lr) == len(mask) else None)

    def _mask_of_last_jvp(self):
        """The activity pattern of the last ``f.jvp`` signature, read from its dispatcher.

        When the JVP's machine code comes from Numba's disk cache no typer runs, so
        ``_last_mask`` stays unset; the loaded signatures still say which tangents were None.
        """
        shim = self.__dict__.get("jvp")
        sigs = list(getattr(getattr(shim, "dispatcher", None), "overloads", {}))
        if not sigs:
            return None
        return tuple(not isinstance(t, (types.NoneType, types.Omitted)) for t in sigs[-1][self._nparams:])

    def tangent_source_for(self, active, lowrank=None):
        """The generated tangent source for an activity pattern (and low-rank arguments, as in
        :meth:`tangent_function`)."""
        mask = tuple(bool(a) for a in active)
        gen = self._generator(mask, check_inputs=False, lowrank=self._lowrank_mask(mask, lowrank),
                              stack_products=True)
        return render(gen.run())

    @property
    def primal_source(self):
        gen = PrimalGen(self)
        return render(gen.run())


def int_params(tree):
    """Parameters used where only ints go (range bounds, indices, shapes) or annotated ``int``/``bool``:
    no tangent in the default view."""
    params = {a.arg for a in tree.args.args}
    used = {a.arg for a in tree.args.args if _int_annotation(a.annotation)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range":
            used |= {m.id for a in n.args for m in ast.walk(a) if isinstance(m, ast.Name)}
        elif isinstance(n, ast.Subscript):
            used |= {m.id for m in ast.walk(n.slice) if isinstance(m, ast.Name)}
    return params & used


def _int_annotation(node):
    names = {"int", "bool", "np.int32", "np.int64", "numpy.int64", "np.intp"}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.strip() in names
    return node is not None and ast.unparse(node) in names


def _numba_can_call(obj):
    from numba.core.dispatcher import Dispatcher
    if isinstance(obj, Dispatcher):
        return True
    mod = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
    return isinstance(obj, np.ufunc) or (mod or "").split(".")[0] in ("numpy", "math", "builtins", "numba")


def numpy_scalars(disp, args, out):
    """Return float32 scalars as np.float32, as NumPy does (Numba boxes every float as a Python float)."""
    try:
        sig = tuple(disp.typeof_pyval(a) for a in args)
        cres = disp.overloads.get(sig)
    except Exception:       # pragma: no cover - typeof of an odd argument: leave the result alone
        return out
    if cres is None:
        return out
    return _convert(cres.signature.return_type, out)


def _convert(ty, value):
    if isinstance(ty, types.Float) and ty.bitwidth == 32 and isinstance(value, float):
        return np.float32(value)
    if isinstance(ty, types.BaseTuple) and isinstance(value, tuple):
        return tuple(_convert(t, v) for t, v in zip(ty.types, value))
    return value


def _typing_error(fj, args, exc):
    first = str(exc).strip().splitlines()
    summary = next((l for l in first if l.strip() and not l.startswith("\x1b")), "")
    given = ", ".join(describe(a) for a in args)
    return FwdjitError(f"{fj.name} could not be compiled for arguments ({given}).\n"
                       f"Numba said: {summary}\n(full message below)\n{exc}")


# ------------------------------------------------- nopython: f(...) and f.jvp(...)
class FwdjitType(types.Dispatcher):
    """The Numba type of a FwdjitFunction.

    Typing and lowering of a call are those of its primal dispatcher (this is a
    ``types.Dispatcher`` of it), so ``f(x)`` in ``@njit`` code calls the
    compiled primal, float32 twin included.  ``f.jvp(primals, tangents)``
    resolves to the same JVP entry that ``f.jvp`` uses from Python.
    """

    def __init__(self, primal_dispatcher):
        super().__init__(primal_dispatcher)
        self.name = f"fwdjit({primal_dispatcher._fwdjit_function.name})"
        # machine-code names of @njit functions taking f as an argument carry the hashed module
        # that holds f's code (not only its name: two functions called 'loss' must not clash)
        self._mangled = f"fwdjit({primal_dispatcher.py_func.__module__}.{primal_dispatcher._fwdjit_function.name})"

    @property
    def mangling_args(self):
        return self._mangled, ()

    @property
    def fwdjit_function(self):
        return self.dispatcher._fwdjit_function


def _register_numba_type():
    from numba.core.datamodel import models as _models
    from numba.core.datamodel.registry import register_default
    from numba.core.typing.templates import AttributeTemplate, infer_getattr
    from numba.core.imputils import lower_getattr

    register_default(FwdjitType)(_models.OpaqueModel)

    @infer_getattr
    class _FwdjitAttributes(AttributeTemplate):
        key = FwdjitType

        def resolve_jvp(self, ty):
            stub = ty.fwdjit_function._nopython_jvp()
            self.context.refresh()          # installs the overload registered for a new stub
            return self.context.resolve_value_type(stub)

    @lower_getattr(FwdjitType, "jvp")
    def _lower_jvp(context, builder, ty, val):
        return context.get_dummy_value()


_register_numba_type()


# -------------------------------------------------------------- entry points
def fwdjit(func=None, *, fastmath=False, cache=True, parallel=False, target="cpu"):
    """Decorator: compile ``func`` and give it forward-mode derivatives.

    ``f(*args)`` runs the compiled primal; ``f.jvp(primals, tangents)`` the
    JVP; ``f.tangent_source`` shows the generated code.  ``target="cuda"``
    compiles device functions and kernels instead (see :mod:`fwdjit.cuda`).
    """
    if func is None:
        return lambda f: fwdjit(f, fastmath=fastmath, cache=cache, parallel=parallel, target=target)
    if target == "cuda":
        if parallel:
            raise FwdjitError("parallel=True is for the CPU target (CUDA kernels are parallel already)")
        raise FwdjitError("target='cuda' is dispatched by fwdjit.fwdjit (or use fwdjit.cuda.cuda_fwdjit)")
    if target != "cpu":
        raise FwdjitError(f"unknown target {target!r}: use 'cpu' or 'cuda'")
    if isinstance(func, FwdjitFunction):
        return func
    return FwdjitFunction(func, fastmath=fastmath, cache=cache, parallel=parallel)


def as_fwdjit(func):
    """The FwdjitFunction of ``func`` (an @fwdjit function, a plain function or a Numba dispatcher).

    A plain function gets the one shared instance (:func:`get_fwdjit`, default options).
    """
    if isinstance(func, FwdjitFunction):
        return func
    py = getattr(func, "py_func", func)
    if not isinstance(py, pytypes.FunctionType):
        parse_function(py)      # raises the error that says what fwdjit can transform
    return get_fwdjit(py)


def jvp(func, primals, tangents):
    """``(out, dout)`` of a plain Python function (transformed and cached on first use)."""
    fj = func if isinstance(func, FwdjitFunction) else get_fwdjit(func)
    return fj.jvp(primals, tangents)


def _unique_copy(fn):
    """``fn`` as a new function object whose qualified name ends with the hash of what it computes."""
    import types as _types
    if not isinstance(fn, _types.FunctionType):
        return fn
    copy = _types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__module__ = fn.__module__
    copy.__qualname__ = f"{fn.__qualname__}__{value_key(fn)[:16]}"
    return copy


def defjvp(func, *partials):
    """Register a derivative rule for ``func`` (a function fwdjit cannot see into).

    One partial per argument, in autograd's style: ``partial_i(g, ans, *args)``
    returns the contribution of argument ``i``'s tangent ``g`` to the tangent
    of the result ``ans``; ``None`` marks a non-differentiable argument.
    Partials must be Numba-compilable (they are ``numba.njit``-ed), and so
    must ``func`` (plain Python functions are ``njit``-ed for the primal).

    >>> import numpy as np, numba
    >>> @numba.njit
    ... def softplus(x):
    ...     return np.log1p(np.exp(x))
    >>> _ = defjvp(softplus, lambda g, ans, x: g / (1.0 + np.exp(-x)))
    """
    if not partials:
        raise FwdjitError("defjvp needs one partial per argument (None for non-differentiable ones)")
    from numba.core.dispatcher import Dispatcher
    if isinstance(func, Dispatcher):     # the user's own @njit function, recompiled under a unique name
        compiled = numba.njit(**func.targetoptions)(_unique_copy(func.py_func))
    else:
        try:   # compiled by fwdjit's primal path: NumPy's dtype rules for float32 (a plain njit would not)
            compiled = FwdjitFunction(func).primal_function
        except FwdjitError:
            compiled = numba.njit(_unique_copy(func))
    # each partial is compiled as a copy whose qualified name carries the hash of its code, closure
    # and globals: two closures from one factory (same qualified name, different captured values)
    # must not get the same machine-code name (see codegen.define)
    jitted = [None if p is None else
              numba.njit(**p.targetoptions)(_unique_copy(p.py_func)) if isinstance(p, Dispatcher) else
              numba.njit(_unique_copy(p)) for p in partials]

    def fn(c):
        terms = []
        for i, p in enumerate(jitted):
            if p is None or not c.active(i):
                continue
            pname = c.gen.bind(p, f"{getattr(func, '__name__', 'f')}_d{i}_")
            terms.append(ast.Call(ast.Name(pname, ast.Load()),
                                  [c.args[i].t, c.result()] + [a.p() for a in c.args], []))
        return R.add_terms(terms)

    rule = R.Rule(fn, nondiff={i for i, p in enumerate(partials) if p is None})
    rule.compiled = compiled
    rule.key = value_key((func, *partials))     # part of the key of every function that calls func
    R.USER_RULES[func] = rule
    if compiled is not func:
        R.USER_RULES[compiled] = rule
    return func
