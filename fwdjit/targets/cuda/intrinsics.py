"""numba.cuda, imported lazily, and the derivative rules of its intrinsics.

Input: a call in device code (``cuda.grid(1)``, ``cuda.atomic.add(a, i, v)``...);
output: its path (``"grid"``, ``"atomic.add"``) and the rule for it: thread
indices, synchronization and random numbers carry no tangent, atomic updates
update the tangent array the same way, ``fma``/``cbrt``/``selp`` have partials.

>>> import ast, types
>>> from fwdjit.compiler.resolve import FunctionInfo
>>> numba = types.ModuleType("numba")
>>> info = FunctionInfo(func=None, name="k", qualname="k", filename="<demo>", tree=None, params=[],
...                     namespace={"numba": numba})
>>> cuda_path(info, ast.parse("numba.cuda.atomic.add", mode="eval").body)
'atomic.add'
>>> path_rule("grid").__class__.__name__, path_rule("no.such.intrinsic")
('Rule', None)
"""
from __future__ import annotations

import ast
import threading
import types as pytypes

from ... import rules as R
from ...compiler.callees import user_python_function
from ...errors import FwdjitError

__all__ = ["LOCK", "cuda_module", "simulator_enabled", "is_available", "cuda_path", "path_rule", "ALLOC_PATHS"]

# one lock for everything the CUDA target builds once (units, device functions, kernels)
LOCK = threading.RLock()
_CUDA = None


def cuda_module():
    """``numba.cuda``, imported on first use (rules registered then)."""
    global _CUDA
    if _CUDA is None:
        with LOCK:
            if _CUDA is None:
                try:
                    from numba import cuda
                except ImportError as exc:   # pragma: no cover - depends on the environment
                    raise FwdjitError("the CUDA target needs numba-cuda: pip install 'fwdjit[cuda]' "
                                      f"(importing numba.cuda failed: {exc})") from None
                _register_object_rules(cuda)
                _CUDA = cuda
    return _CUDA


def simulator_enabled():
    """True when Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before numba was imported)."""
    try:
        from numba.cuda.core import config as cconfig
        return bool(getattr(cconfig, "ENABLE_CUDASIM", 0))
    except ImportError:
        from numba.core import config
        return bool(getattr(config, "ENABLE_CUDASIM", 0))


def is_available():
    """True when CUDA kernels can run here: a GPU with its driver, or the simulator."""
    try:
        cuda = cuda_module()
    except FwdjitError:
        return False
    if simulator_enabled():
        return True
    try:
        return bool(cuda.is_available())
    except Exception:   # pragma: no cover - driver problems
        return False


def _register_object_rules(cuda):
    """Zero rules for the real intrinsic objects (the simulator has none at module level).

    The CUDA resolver below recognizes intrinsics by their ``cuda.<name>``
    path, which also works under the simulator; registering the objects keeps
    ``fwdjit.rules`` complete for code that resolves them directly.
    """
    for name in ("grid", "gridsize", "syncthreads", "syncthreads_count", "syncthreads_and",
                 "syncthreads_or", "threadfence", "threadfence_block", "threadfence_system", "popc",
                 "brev", "clz", "ffs", "activemask", "lanemask_lt", "ballot_sync", "all_sync",
                 "any_sync", "eq_sync"):
        obj = getattr(cuda, name, None)
        if obj is not None and not isinstance(obj, str) and R.hashable(obj) and obj not in R.RULES:
            R.RULES[obj] = R.zero_rule(f"cuda.{name}")


# -------------------------------------------------------- intrinsics by path
def _chain(func):
    """``a.b.c`` -> ``("a", ["b", "c"])``; ``(None, None)`` when the root is not a name."""
    parts = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None, None
    return node.id, parts[::-1]


def _is_cuda_module_name(modname):
    """A module of numba-cuda (``numba.cuda...`` or the ``numba_cuda`` distribution's own)."""
    return modname == "numba.cuda" or modname.startswith("numba.cuda.") or modname.startswith("numba_cuda")


def _strip(modname):
    """``numba.cuda.random`` -> ``random``; ``numba.cuda.intrinsics`` -> ``''``."""
    if modname.startswith("numba_cuda.numba.cuda"):
        modname = modname[len("numba_cuda."):]
    rest = modname[len("numba.cuda"):].lstrip(".")
    if rest in ("intrinsics", "stubs", "intrinsic_wrapper", "device_init", "api", "kernels.reduction"):
        return ""
    return rest


def cuda_path(info, func):
    """``"grid"``, ``"atomic.add"``, ``"random.xoroshiro128p_normal_float64"``... for a call to a
    CUDA intrinsic, else None.  Works from the source (the simulator has no intrinsic objects)."""
    root, parts = _chain(func)
    if root is None or root not in info.namespace:
        return None
    val = info.namespace[root]
    if isinstance(val, pytypes.ModuleType):
        name = val.__name__
        if name == "numba":
            return ".".join(parts[1:]) if parts[:1] == ["cuda"] and len(parts) > 1 else None
        if _is_cuda_module_name(name):
            sub = _strip(name)
            return ".".join(([sub] if sub else []) + parts) or None
        return None
    if parts:
        return None
    py = getattr(val, "py_func", val)
    mod = getattr(py, "__module__", None) or getattr(type(val), "__module__", "") or ""
    if _is_cuda_module_name(mod) and user_python_function(val, device=True) is None:
        sub = _strip(mod)
        name = getattr(py, "__name__", None) or getattr(val, "_name", None) or root
        return ".".join(([sub] if sub else []) + [name])
    return None


def _atomic_rule(sign):
    """``atomic.add``/``atomic.sub``: the same atomic update of the tangent array by the tangent."""
    def fn(c):
        arr, idx, val = c.args[0], c.args[1], c.args[2]
        if not val.active:
            return None
        if not arr.active:
            raise c.gen.unsupported(
                "an atomic update of an array without a tangent by a differentiable value",
                "give the array a tangent (pass a tangent array for it)")
        # d(atomic.add(a, i, v)) = atomic.add(da, i, dv); atomic.sub likewise subtracts dv
        c.gen.emit(ast.Expr(c.call(c.func_ast, [arr.t, idx.p(), val.t])))
        return None
    return R.Rule(fn, diff=(2,))


def _shfl_rule(c):
    """Warp shuffles move the tangent of the value like the value itself."""
    if not c.active(1):
        return None
    return c.same_call([a.t if i == 1 else a.p() for i, a in enumerate(c.args)])


_ZERO_PATHS = {
    "grid", "gridsize", "syncthreads", "syncthreads_count", "syncthreads_and", "syncthreads_or",
    "threadfence", "threadfence_block", "threadfence_system", "laneid", "warpsize", "popc", "brev",
    "clz", "ffs", "activemask", "lanemask_lt", "ballot_sync", "all_sync", "any_sync", "eq_sync",
    "match_any_sync", "match_all_sync", "nanosleep", "local.array", "shared.array",
    "const.array_like", "cg.this_grid",
}
ALLOC_PATHS = {"local.array", "shared.array"}


def path_rule(path):
    """The rule for the intrinsic at ``path`` (see :func:`cuda_path`), or ``None`` (a black box)."""
    if path in _ZERO_PATHS or path.startswith("random.") or path.startswith("cg."):
        return R.zero_rule("cuda." + path)
    if path in ("atomic.add", "atomic.sub"):
        return _atomic_rule(1 if path.endswith("add") else -1)
    if path in ("shfl_sync", "shfl_up_sync", "shfl_down_sync", "shfl_xor_sync"):
        return R.Rule(_shfl_rule, diff=(1,))
    if path == "fma":
        return R.partials("{g} * {1}", "{0} * {g}", "{g}")
    if path == "cbrt":
        return R.partials("{g} / (3.0 * {y} * {y})")
    if path == "selp":
        def sel(c):
            tb = c.args[1].t if c.active(1) else ast.Constant(0.0)
            tc = c.args[2].t if c.active(2) else ast.Constant(0.0)
            return c.gen.fj_call("select", [c.args[0].p(), tb, tc])
