"""Compiling generated code on the CPU: a FunctionDef in, a Numba dispatcher out.

:func:`compile_unit` renders the function and its float32 twin into one hashed
module of the cache folder (:mod:`fwdjit.targets.cache`), and returns the
``numba.njit`` dispatcher of its entry point: a stub whose overload picks the
plain code or the float32-preserving twin when Numba types a call.
:func:`numpy_scalars` and :func:`typing_error` turn what Numba gives back into
what NumPy users expect (float32 scalars, errors that name the arguments).
"""
from __future__ import annotations

import copy
import threading

import numba
import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload

from ... import runtime as _runtime
from ..._version import __version__
from ...compiler.float32 import float32_twin
from ...compiler.render import render
from ...errors import Float32PromotionWarning
from ...runtime import define, has_float32
from ..base import describe
from ..numba_errors import compile_error
from ..cache import HEADER, guard_cache, load_module, namespace_key

__all__ = ["LOCK", "compile_unit", "jit_options", "is_cpu_function", "numpy_scalars", "typing_error"]

# one re-entrant lock for everything the CPU target builds lazily (a JVP builds its callees' first)
LOCK = threading.RLock()


def is_cpu_function(obj):
    """Whether ``obj`` is an @fwdjit function of the CPU target."""
    return getattr(type(obj), "fwdjit_target", None) == "cpu"


def jit_options(fn, user_code=True):
    """Numba options.  ``parallel`` only for functions that contain the user's code: the
    wrappers around them (entry points, dtype pickers, tuple unpacking) have nothing to
    parallelize, and Numba warns about each of them (NumbaPerformanceWarning)."""
    return {"fastmath": fn.options["fastmath"], "error_model": "numpy",
            "parallel": bool(fn.options["parallel"]) and user_code}


_TWIN_WARNED = set()


def warn_twin_fallback(fn, tys, exc):
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



def compile_unit(fn, fdef, stem, bindings, kind, returns=None, user_code=True):
    """Write the module (plain + float32 twin + entry) of ``fdef`` and jit its entry point.

    ``fn`` is the :class:`~fwdjit.targets.cpu.function.FwdjitFunction` it belongs to;
    ``kind`` names the product in the cache key ("primal", "jvpFalse", "vector2"...);
    ``returns`` is what the function returns: ``"jvp"`` (out, dout), ``"vector"``
    (out, K douts) or ``None`` (anything else), which decides the float32 casts.
    ``user_code``: ``fdef`` is (generated from) the user's function, not a wrapper.
    """
    name = fdef.name
    fdef32 = copy.deepcopy(fdef)
    fdef32.name = name + "__f32"
    ns = dict(fn.info.namespace)
    ns.update(bindings)
    for k, v in list(ns.items()):
        if is_cpu_function(v):
            ns[k] = v.primal_function_internal()
    fdef32 = float32_twin(fdef32, {**ns, "np": np, "fj": _runtime}, returns=returns)
    params = [a.arg for a in fdef.args.args]
    plist = ", ".join(params)
    pick = f"_{name}__pick"
    text = (HEADER.format(version=__version__, qualname=fn.info.qualname,
                          where=f"{fn.info.filename}:{fn.info.tree.lineno}")
            + "\n\n" + render(fdef)
            + "\n\n# The same code with dtype-preserving casts, used when an argument is float32 (NumPy 2 rules).\n"
            + render(fdef32)
            + f"\n\ndef {name}__entry({plist}):\n    return {pick}({plist})\n")
    extra = repr(sorted(fn.options.items())) + kind + namespace_key(ns)
    # the selection stub: typed by Numba, picks the plain or the float32 code
    stub_ns = {}
    exec(f"def {pick}({plist}):\n    pass\n", stub_ns)
    stub = stub_ns[pick]
    ns[pick] = stub
    mod, key, path = load_module(stem, text, ns, extra)
    plain, twin = getattr(mod, name), getattr(mod, name + "__f32")
    opts, wrapper_opts = jit_options(fn, user_code), jit_options(fn, False)
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
            warn_twin_fallback(fn, tys, exc)
            return call_plain
        fn.saw_float32()
        return call_twin
    typer = define(f"def {name}__typer({plist}):\n    return pick_twin({plist})\n",
                   f"{name}__typer", {"pick_twin": pick_twin}, mod.__name__)
    overload(stub, jit_options=wrapper_opts)(typer)
    disp = watch_float32(fn, guard_cache(numba.njit(cache=fn.options["cache"], **wrapper_opts)(
        getattr(mod, name + "__entry"))))
    disp._fwdjit_user_dispatchers = (plain_disp, twin_disp)
    disp._fwdjit_key = key
    disp._fwdjit_path = str(path)
    disp._fwdjit_plain = plain
    return disp, text, path


def watch_float32(fn, disp):
    """``disp``, made to call ``fn.saw_float32()`` when it gets a float32 signature.

    Numba's ``add_overload`` runs for code compiled now and for code loaded
    from the disk cache (where no typer runs), so the Python entry points need
    no per-call look at ``disp.overloads``: ``fn._f32_seen`` (and the ``f32``
    flag of the ``f.jvp`` shim) is already right.
    """
    add = disp.add_overload

    def add_overload(cres):
        add(cres)
        if has_float32(*cres.signature.args):
            fn.saw_float32()

    disp.add_overload = add_overload
    if any(has_float32(*sig) for sig in disp.overloads):
        fn.saw_float32()
    return disp


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


def typing_error(fn, args, exc):
    """Numba's compile failure ``exc`` for a call of ``fn`` with ``args`` as a located fwdjit error
    (:func:`fwdjit.targets.numba_errors.compile_error`); raise it ``from exc``."""
    return compile_error(exc, fn.name, args, describe, fallback=(fn.info.filename, fn.info.tree.lineno))
