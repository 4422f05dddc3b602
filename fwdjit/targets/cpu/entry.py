"""The CPU target's JVP entry points: how ``f.jvp(primals, tangents)`` reaches compiled code.

* :func:`jvp_entry`: the Python shim that ``f.jvp`` becomes on its first call
  (it unpacks the two tuples and calls one Numba dispatcher, whose overload
  picks the JVP compiled for the activity pattern: which tangents are None);
* :func:`nopython_jvp`: the same from ``@njit`` code (``f.jvp(...)`` where ``f``
  is an argument or a global);
* :class:`FwdjitType`: the Numba type of an @fwdjit function, so that ``f(x)``
  and ``f.jvp`` type inside ``@njit`` code.

``fn`` is always a :class:`~fwdjit.targets.cpu.function.FwdjitFunction`.
"""
from __future__ import annotations

import numba
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from ..._version import __version__
from ...rules.lowrank import LowRank
from ...runtime import define
from ..cache import HEADER, guard_cache, load_module
from ..numba_errors import is_numba_error
from .compile import LOCK, jit_options, numpy_scalars, typing_error, watch_float32

__all__ = ["jvp_entry", "nopython_jvp", "FwdjitType", "is_lowrank_type"]


def is_lowrank_type(t):
    """Whether a Numba type is that of a :class:`fwdjit.LowRank` tangent."""
    return isinstance(t, types.BaseNamedTuple) and getattr(t, "instance_class", None) is LowRank


def is_complex_type(t):
    """Whether a Numba type is, or holds, a complex number (fwdjit differentiates real code only)."""
    if isinstance(t, types.Complex):
        return True
    if isinstance(t, types.Array):
        return isinstance(t.dtype, types.Complex)
    if isinstance(t, types.BaseTuple):
        return any(is_complex_type(e) for e in t)
    return False


def jvp_entry(fn):
    """A Python shim that unpacks the tuples and calls one Numba dispatcher.

    The dispatcher takes the primals and one slot per tangent (None where
    there is none); an overload reads the activity pattern from which
    slots are None when Numba types the call, so switching patterns costs
    nothing at run time.
    """
    with LOCK:
        if fn.__dict__.get("jvp") is not None:
            return fn.__dict__["jvp"]
        n = fn._nparams
        name = f"{fn.name}_jvp_any"
        pick = f"_{name}__pick"
        ps = [f"p{i}" for i in range(n)]
        ts = [f"t{i}" for i in range(n)]
        flat = ", ".join(ps + ts)
        text = (HEADER.format(version=__version__, qualname=fn.info.qualname,
                              where=f"{fn.info.filename}:{fn.info.tree.lineno}")
                + f"\n\ndef {name}({flat}):\n"
                  f"    # primals, then one tangent slot per argument (None: no tangent);\n"
                  f"    # picks the {fn.name}_jvp compiled for the slots that are not None\n"
                  f"    return {pick}({flat})\n")
        stub_ns = {}
        exec(f"def {pick}({flat}):\n    pass\n", stub_ns)
        stub = stub_ns[pick]

        mod, key, path = load_module(name, text, {pick: stub}, "entry" + fn.deep_key())

        def typer(*tys):
            if any(is_complex_type(t) for t in tys):    # explain() says which argument, in words
                raise TypingError(f"jvp of {fn.name}: complex arguments are not supported")
            mask = tuple(not isinstance(t, (types.NoneType, types.Omitted)) for t in tys[n:])
            lr = tuple(is_lowrank_type(t) for t in tys[n:])
            disp = fn.tangent_function(mask, lowrank=lr if any(lr) else None)
            args = ps + [x for t, m, f in zip(ts, mask, lr) if m
                         for x in ((f"{t}[0]", f"{t}[1]") if f else (t,))]
            # named by the hashed entry module and the activity pattern: a unique compiled name
            call = f"{name}__call_{''.join('1' if m else '0' for m in mask) or 'none'}"
            if any(lr):
                call += "_lowrank" + "".join("1" if f else "0" for f in lr)
            return define(f"def {call}({flat}):\n    return disp({', '.join(args)})\n",
                          call, {"disp": disp}, mod.__name__)

        overload(stub, jit_options=jit_options(fn, False))(
            define(f"def {name}__typer({flat}):\n    return typer({flat})\n",
                   f"{name}__typer", {"typer": typer}, mod.__name__))
        entry = watch_float32(fn, guard_cache(numba.njit(cache=fn.options["cache"], **jit_options(fn, False))(
            getattr(mod, name))))
        original = entry._compile_for_args

        def compile_for_args(*args, **kws):
            try:
                return original(*args, **kws)
            except Exception as exc:    # noqa: BLE001 - only compile failures are turned, the rest re-raised
                if not is_numba_error(exc):
                    raise
                primals, tangents = args[:n], args[n:]
                bad = fn.explain(primals, tangents, None)
                if bad is not None:
                    raise bad from None
                raise typing_error(fn, tuple(primals) + tuple(t for t in tangents if t is not None),
                                    exc) from exc.with_traceback(None)

        entry._compile_for_args = compile_for_args
        # f32: a global of the shim (cheaper to read than an attribute), kept equal to fn._f32_seen
        shim_ns = {"entry": entry, "count_error": fn.count_error, "fix": numpy_scalars, "f32": fn._f32_seen,
                   "me": fn}
        fn._f32_flags.append(shim_ns)
        shim_ns["f32"] = fn._f32_seen       # again: a signature may have been added meanwhile
        unpack_p = (", ".join(ps) + ",") if n else "()"
        unpack_t = (", ".join(ts) + ",") if n else "()"
        shim_ns["batched_jvp"] = fn.jvp_batched
        exec(f"def jvp(primals, tangents, batched=False):\n"
             f"    if batched:\n"
             f"        return batched_jvp(primals, tangents)\n"
             f"    if type(primals) is not tuple and not isinstance(primals, list):\n"
             f"        raise count_error(primals, tangents)\n"
             + (f"    if len(primals) < {n}:\n"       # defaulted arguments omitted: bound at decoration
                f"        primals, tangents = me.with_defaults(primals, tangents)\n" if fn.info.defaults else "") +
             f"    try:\n"
             f"        {unpack_p} = primals\n"
             f"        {unpack_t} = tangents\n"
             f"    except (TypeError, ValueError):\n"
             f"        raise count_error(primals, tangents) from None\n"
             f"    out = entry({flat})\n"
             f"    if f32:\n"          # read after the call: it may have compiled the first float32 signature
             f"        out = fix(entry, ({flat}{',' if n == 0 else ''}), out)\n"
             f"    return out\n", shim_ns)
        shim = shim_ns["jvp"]
        shim.__doc__ = type(fn).jvp.__doc__
        shim.dispatcher = entry
        return shim


def nopython_jvp(fn):
    """A stub typed by an overload: ``f.jvp(primals, tangents)`` inside ``@njit`` code (made once per function)."""
    stub = fn.__dict__.get("_njit_jvp")
    if stub is not None:
        return stub
    with LOCK:
        if fn.__dict__.get("_njit_jvp") is not None:
            return fn._njit_jvp
        n = fn._nparams
        ns = {}
        exec(f"def {fn.name}_jvp(primals, tangents):\n    pass\n", ns)
        stub = ns[f"{fn.name}_jvp"]

        def typer(primals, tangents):
            if not (isinstance(primals, types.BaseTuple) and isinstance(tangents, types.BaseTuple)
                    and len(primals) == n and len(tangents) == n):
                raise TypingError(f"fwdjit: jvp of {fn.name}({', '.join(fn.params)}) in @njit code: expected "
                                  f"f.jvp(primals, tangents) with two tuples of {n} entries (None for no "
                                  f"tangent); given {primals} and {tangents}")
            if fn.__dict__.get("jvp") is None:
                fn.jvp = jvp_entry(fn)        # the shim that f.jvp installs on its first call
            body = ", ".join([f"primals[{i}]" for i in range(n)] + [f"tangents[{i}]" for i in range(n)])
            return define(f"def {fn.name}_jvp_tuples(primals, tangents):\n    return entry({body})\n",
                          f"{fn.name}_jvp_tuples", {"entry": fn.jvp.dispatcher},
                          fn.jvp.dispatcher.py_func.__module__)

        overload(stub, jit_options=jit_options(fn, False))(typer)
        fn._njit_jvp = stub
        return stub


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
            stub = nopython_jvp(ty.fwdjit_function)
            self.context.refresh()          # installs the overload registered for a new stub
            return self.context.resolve_value_type(stub)

    @lower_getattr(FwdjitType, "jvp")
    def _lower_jvp(context, builder, ty, val):
        return context.get_dummy_value()


_register_numba_type()
