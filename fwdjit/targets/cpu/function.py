"""The CPU target: a Python function in, a :class:`FwdjitFunction` out.

Its primal and JVPs are the compiler's output (:mod:`fwdjit.compiler`)
compiled with ``numba.njit`` (:mod:`~fwdjit.targets.cpu.compile`), built on
first use and kept per activity pattern; ``f.jvp`` becomes the shim of
:mod:`~fwdjit.targets.cpu.entry` on its first call.  :func:`get_fwdjit` is the
registry: one shared instance per plain Python function.

>>> def sq(x):
...     return x * x
>>> f = get_fwdjit(sq)
>>> f is get_fwdjit(sq), f.jvp((3.0,), (1.0,))
(True, (9.0, 6.0))
"""
from __future__ import annotations

import ast
import functools

import numpy as np
from numba import types

from ... import compiler
from ...compiler.desugar import fill_defaults
from ...compiler.fuse import enabled_by_default
from ...compiler.resolve import parse_function
from ...compiler.callees import Resolver
from ...compiler.render import render
from ...compiler.validate import validate
from ...errors import TangentError, UnsupportedCall
from ...rules.lowrank import LowRank
from ...rules.lowrank import mismatch as lowrank_mismatch
from ..base import TargetFunction, cached, describe, mismatch, user_python_function
from ..numba_errors import is_numba_error
from .compile import LOCK, compile_unit, numpy_scalars, typing_error
from .entry import FwdjitType, jvp_entry

__all__ = ["FwdjitFunction", "get_fwdjit", "int_params"]

_REGISTRY: dict = {}


def _compiled(obj):
    """``obj`` when it is already an @fwdjit function (what the resolver calls as it is), else None."""
    return obj if isinstance(obj, FwdjitFunction) else None


def get_fwdjit(func):
    """The FwdjitFunction for a plain Python function (created once, default options)."""
    with LOCK:
        function = _REGISTRY.get(func)
        if function is None:
            function = FwdjitFunction(func)
        return function


class FwdjitFunction(TargetFunction):
    """A Python function compiled by fwdjit: call it for the primal, ``.jvp`` for derivatives.

    Attributes
    ----------
    py_func : the original Python function.
    tangent_source : the generated tangent (JVP) source, as Python text.
    primal_function : the Numba dispatcher of the primal.
    """

    fwdjit_target = "cpu"

    def __init__(self, func, *, fastmath=False, cache=True, parallel=False, fuse=None):
        self.info = parse_function(func)       # first: anything but a 'def' function is a clear FwdjitError
        functools.update_wrapper(self, func)
        self.py_func = func
        self.name = self.info.name          # a lambda's is lambda_<line>
        # fuse: reductions of elementwise code as one loop (fwdjit.compiler.fuse); None: $FWDJIT_FUSE, default on.
        # An option, so it is part of every cache key (deep_key and compile_unit hash the options)
        fuse = enabled_by_default() if fuse is None else bool(fuse)
        self.options = {"fastmath": fastmath, "cache": cache, "parallel": parallel, "fuse": fuse}
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
        # a float32 signature was compiled or loaded (compile.watch_float32): scalar results need np.float32
        self._f32_seen = False
        self._f32_flags = []        # namespaces of the f.jvp shims, whose global 'f32' mirrors _f32_seen
        with LOCK:
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

    # --------------------------------------------------------------- primal
    def primal_function_internal(self):
        if self._primal is None:
            with LOCK:
                if self._primal is None:
                    fdef, bindings = compiler.primal(self, fuse=self.options["fuse"])
                    disp, self._primal_source, self._primal_path = compile_unit(
                        self, fdef, self.name, bindings, "primal")
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
        if len(args) < self._nparams and self.info.defaults:
            args = fill_defaults(self.params, self.info.defaults, args)
        elif len(args) > self._nparams and self.info.bound_functions:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}): "
                               f"{', '.join(self.info.bound_functions)} defaults to a function, bound when the "
                               f"function was decorated, and cannot be passed; decorate a function without "
                               f"that default (or a wrapper) to call another one")
        disp = self._primal if self._primal is not None else self.primal_function_internal()
        try:
            out = disp(*args)
        except Exception as exc:    # noqa: BLE001 - only compile failures are turned, the rest re-raised
            if not is_numba_error(exc):
                raise
            raise typing_error(self, args, exc) from exc.with_traceback(None)
        if self._f32_seen:
            out = numpy_scalars(disp, args, out)
        return out

    def saw_float32(self):
        """A float32 signature was compiled or loaded: float32 scalar results become np.float32 from now on."""
        self._f32_seen = True
        for flags in self._f32_flags:
            flags["f32"] = True

    # -------------------------------------------------------------- tangent
    def _tangent(self, mask, check_inputs, lowrank=None, stack_products=False):
        """The compiler's JVP for ``mask``: (FunctionDef, tangent generator)."""
        return compiler.jvp(self.info, mask, self.resolver, check_inputs=check_inputs,
                            lowrank=lowrank, stack_products=stack_products, fuse=self.options["fuse"])

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
        disp = cached(table, key, lambda: self._compile_jvp(mask, lr, _internal), LOCK)
        if not _internal:
            self._last_mask, self._last_lowrank = mask, lr
        return disp

    def _compile_jvp(self, mask, lr, internal):
        """The compiled JVP for ``mask`` (and low-rank arguments ``lr``): see :meth:`tangent_function`."""
        # public JVPs are not transformed again: they stack x @ W with dx @ W
        fdef, gen = self._tangent(mask, check_inputs=not internal, lowrank=lr, stack_products=not internal)
        bits = "".join("1" if m else "0" for m in mask)
        lrbits = "" if lr is None else "_lowrank" + "".join("1" if x else "0" for x in lr)
        stem = f"{self.name}_jvp_{bits}{lrbits}" + ("_internal" if internal else "")
        disp, _, _ = compile_unit(self, fdef, stem, gen.bindings, "jvp" + str(internal) + lrbits, returns="jvp")
        disp._fwdjit_owner, disp._fwdjit_mask = self, mask
        disp._fwdjit_lowrank = lr
        return disp

    # ---------------------------------------------------------- vector mode
    def _vector_tangent(self, mask, K):
        """The compiler's K-direction JVP for ``mask``: (FunctionDef, bindings)."""
        def callee_k(obj, K):       # a callee's JVP dispatcher -> its K-direction twin
            owner = getattr(obj, "_fwdjit_owner", None)
            return None if owner is None else owner.tangent_function_k(obj._fwdjit_mask, K, _internal=True)
        fk, bindings, _ = compiler.jvp_k(self.info, mask, K, self.resolver, callee_k, fuse=self.options["fuse"])
        return fk, bindings

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
        return cached(table, (mask, K, _internal), lambda: self._compile_jvp_k(mask, K, _internal), LOCK)

    def _compile_jvp_k(self, mask, K, _internal):
        """The compiled K-direction JVP: see :meth:`tangent_function_k`."""
        bits = "".join("1" if m else "0" for m in mask)
        fk, bindings = self._vector_tangent(mask, K)
        inner, _, _ = compile_unit(self, fk, f"{self.name}_jvp{K}_{bits}", bindings, f"vector{K}",
                                   returns="vector")
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
            disp, _, _ = compile_unit(self, fdef, f"{self.name}_jvp{K}_{bits}_stacked", {"inner": inner},
                                      f"vstack{K}", user_code=False)
        return disp

    def tangent_source_k(self, active, K):
        """The generated K-direction source for an activity pattern."""
        fk, _ = self._vector_tangent(tuple(bool(a) for a in active), K)
        return render(fk)

    def jvp_batched(self, primals, tangents):
        """K directions in one pass: each non-None tangent has a leading axis of length K.

        Returns ``(out, douts)`` with ``douts[k]`` the tangent along direction k
        (tuple outputs: a tuple of such stacks).  The primal runs once.
        """
        primals, tangents = self.with_defaults(primals, tangents)
        if not (isinstance(primals, (tuple, list)) and isinstance(tangents, (tuple, list))) \
                or len(primals) != self._nparams or len(tangents) != self._nparams:
            raise self.count_error(primals, tangents)
        mask = tuple(t is not None for t in tangents)
        bad = self.complex_argument(primals, (None,) * len(primals))    # complex primals
        if bad is not None:
            raise bad
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
        except Exception as exc:    # noqa: BLE001 - only compile failures are turned, the rest re-raised
            if not is_numba_error(exc):
                raise
            raise typing_error(self, tuple(primals) + tuple(t for t in tangents if t is not None),
                               exc) from exc.with_traceback(None)
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
        entry = jvp_entry(self)
        self.jvp = entry
        return entry(primals, tangents, batched)

    def key_entry(self, value):
        """A callee (an @fwdjit function or a user function) counts by its own deep key."""
        callee = value if isinstance(value, FwdjitFunction) else None
        if callee is None:
            py = user_python_function(value)
            if py is not None:
                callee = get_fwdjit(py)
        return f"fwdjit:{callee.deep_key()}" if callee is not None else value

    def with_defaults(self, primals, tangents):
        """``(primals, tangents)`` with omitted defaulted arguments filled in (their tangents None)."""
        if not self.info.defaults or not isinstance(primals, (tuple, list)) \
                or not isinstance(tangents, (tuple, list)) or len(primals) >= self._nparams \
                or len(tangents) != len(primals):
            return primals, tangents
        full = fill_defaults(self.params, self.info.defaults, tuple(primals))
        return full, tuple(tangents) + (None,) * (len(full) - len(primals))

    def count_error(self, primals, tangents):
        sig = f"{self.name}({', '.join(self.params)})"
        def desc(v):
            if isinstance(v, (tuple, list)):
                return f"a {type(v).__name__} of {len(v)}"
            return f"a {type(v).__name__}"
        return TangentError(f"jvp of {sig}: expected primals and tangents as tuples of {self._nparams} "
                            f"entries (one per parameter, None for no tangent); given primals as "
                            f"{desc(primals)} and tangents as {desc(tangents)}")

    def complex_argument(self, primals, tangents):
        """The TangentError for the first complex primal or tangent, or None (real code only)."""
        for name, p, t in zip(self.params, primals, tangents):
            if is_complex_value(p) or is_complex_value(t):
                return TangentError(
                    f"jvp of {self.name}: argument '{name}' is complex ({describe(p if is_complex_value(p) else t)}); "
                    f"fwdjit differentiates real-valued code only: pass the real and imaginary parts as "
                    f"separate float arguments")
        return None

    def explain(self, primals, tangents, exc):
        bad = self.complex_argument(primals, tangents)
        if bad is not None:
            return bad
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
        fdef, _ = self._tangent(mask, check_inputs=False, lowrank=self._lowrank_mask(mask, lowrank),
                                stack_products=True)
        return render(fdef)

    @property
    def primal_source(self):
        fdef, _ = compiler.primal(self, fuse=self.options["fuse"])
        return render(fdef)



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


def is_complex_value(v):
    """Whether ``v`` is, or a tuple holds, a complex number or array."""
    if isinstance(v, tuple):
        return any(is_complex_value(e) for e in v)
    return isinstance(v, (complex, np.complexfloating)) or (isinstance(v, np.ndarray) and v.dtype.kind == "c")
