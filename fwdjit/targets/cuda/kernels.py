r"""Elementwise kernels: one thread per element, calling a unit's device function.

Input: a mode (``primal``, ``jvp``, ``jac``: one JVP per argument with one-hot
tangents, ``fgrad``: forward gradients with directions drawn on the GPU), the
kinds of the inputs (``"a"`` a flat array read at ``[i]``, ``"s"`` a scalar)
and the number of outputs; output: the compiled kernel, from a generated module
in the cache folder like every other generated function.  The body of the
kernel for ``f(x, y)`` over an array ``x`` and a scalar ``y``:

>>> print("\n".join(kernel_lines("primal", 2, ("a", "s"), None, 1, False)[1]))
r = F(p0[i], p1)
o0[i] = r
"""
from __future__ import annotations

import numpy as np
from numba import types as nbtypes

from ..._version import __version__
from ...compiler.emit import Source
from ..cache import HEADER, load_module
from .device import located_compiles
from .host import float_result, host_result_dtype, tangent_dtype
from .intrinsics import cuda_module, simulator_enabled

__all__ = ["kernel_lines", "build_map_kernel", "launch_map", "result_types"]


def kernel_lines(mode, n, kinds, extra, nout, tuple_out):
    """``(parameters, body lines)`` of the elementwise kernel (``F``, ``F0``... are the device functions)."""
    elem = [f"p{j}[i]" if kinds[j] == "a" else f"p{j}" for j in range(n)]
    emit = {"primal": _primal_body, "jvp": _jvp_body, "jac": _jac_body, "fgrad": _fgrad_body}.get(mode)
    if emit is None:  # pragma: no cover
        raise ValueError(mode)
    src = Source()
    params = emit(src, n, elem, kinds, extra, nout, tuple_out)
    return [f"p{j}" for j in range(n)] + params, src.lines


def _primal_body(src, n, elem, kinds, extra, nout, tuple_out):
    outs = [f"o{m}" for m in range(nout)]
    src(f"r = F({', '.join(elem)})")
    _store(src, outs, "r", nout, tuple_out)
    return outs


def _jvp_body(src, n, elem, kinds, mask, nout, tuple_out):
    ts = [f"t{j}" for j in range(n) if mask[j]]
    telem = [f"t{j}[i]" if kinds[n + j] == "a" else f"t{j}" for j in range(n) if mask[j]]
    outs = [f"o{m}" for m in range(nout)]
    douts = [f"do{m}" for m in range(nout)]
    src(f"r, dr = F({', '.join(elem + telem)})")
    _store(src, outs, "r", nout, tuple_out)
    _store(src, douts, "dr", nout, tuple_out)
    return ts + outs + douts


def _jac_body(src, n, elem, kinds, argnums, nout, tuple_out):
    """One JVP per argument in ``argnums`` with a one-hot tangent: a column of the Jacobian each."""
    outs = [f"o{m}" for m in range(nout)]
    jac = [f"j{k}_{m}" for k in range(len(argnums)) for m in range(nout)]
    src(*[f"a{j} = {elem[j]}" for j in range(n)])
    args = [f"a{j}" for j in range(n)]
    for k, a in enumerate(argnums):
        src(f"r, dr = F{k}({', '.join(args)}, fj.lit(1.0, a{a}))")
        _store(src, [f"j{k}_{m}" for m in range(nout)], "dr", nout, tuple_out)
    _store(src, outs, "r", nout, tuple_out)
    return outs + jac


def _fgrad_body(src, n, elem, kinds, argnums, nout, tuple_out):
    """Forward gradients: ``ndir`` directions drawn per element on the GPU, ``(dr v)`` averaged."""
    gs = [f"g{k}" for k in range(len(argnums))]
    src(*[f"a{j} = {elem[j]}" for j in range(n)])
    call = f"r, dr = F({', '.join([f'a{j}' for j in range(n)] + [f'v{k}' for k in range(len(argnums))])})"
    draws = [f"v{k} = fj.like(normal(states, i), a{a})" for k, a in enumerate(argnums)]
    src(*draws, call, *[f"s{k} = dr * v{k}" for k in range(len(argnums))])
    with src.block("for _k in range(1, ndir):"):
        src(*draws, call, *[f"s{k} += dr * v{k}" for k in range(len(argnums))])
    src("o0[i] = r", *[f"g{k}[i] = s{k} / ndir" for k in range(len(argnums))])
    return ["states", "ndir", "o0"] + gs


def _kernel_namespace(unit, mode, variant, extra):
    """The device functions (and the generator, for ``fgrad``) the kernel's body calls."""
    n = len(unit.params)
    ns = {}
    if mode == "primal":
        ns["F"] = unit.device("primal", None, variant)
    elif mode == "jvp":
        ns["F"] = unit.device("jvp", extra, variant)
    elif mode == "jac":
        for k, a in enumerate(extra):
            ns[f"F{k}"] = unit.device("jvp", tuple(j == a for j in range(n)), variant)
    elif mode == "fgrad":
        ns["F"] = unit.device("jvp", tuple(j in extra for j in range(n)), variant)
        from numba.cuda import random as cr
        ns["normal"] = cr.xoroshiro128p_normal_float32 if variant == "f32" else cr.xoroshiro128p_normal_float64
    return ns


def build_map_kernel(unit, name, options, mode, variant, kinds, extra, nout, tuple_out):
    """Generate, write and compile the elementwise kernel of ``unit`` for one mode and input layout."""
    ns = _kernel_namespace(unit, mode, variant, extra)
    params, lines = kernel_lines(mode, len(unit.params), kinds, extra, nout, tuple_out)
    fname = f"{name}_{mode}_map"
    src = Source()
    with src.block(f"def {fname}({', '.join(params)}):"):
        src("i = cuda.grid(1)")
        with src.block("if i < o0.shape[0]:"):
            src(*lines)
    text = (HEADER.format(version=__version__, qualname=unit.info.qualname,
                          where=f"{unit.info.filename}:{unit.info.tree.lineno}")
            + f"# CUDA elementwise kernel: mode={mode}, variant={variant}, kinds={kinds}, "
              f"extra={extra}, outputs={nout}\nfrom numba import cuda\n\n\n" + src.text())
    keys = ";".join(f"{k}->{_dev_key(v)}" for k, v in sorted(ns.items()))
    mod, _, path = load_module(f"{name}_cuda_{mode}_map", text, ns, "cudamap" + unit.deep_key() + keys)
    opts = {} if simulator_enabled() else {"cache": options.get("cache", True)}
    k = cuda_module().jit(getattr(mod, fname), fastmath=options.get("fastmath", False), **opts)
    k._fwdjit_path = str(path)
    return located_compiles(k, unit, f"CUDA elementwise kernel ({mode}) of {name}")


def launch_map(kernel, n, args):
    """Launch an elementwise kernel over ``n`` elements (nothing for ``n == 0``)."""
    if n == 0:
        return
    threads = 64 if simulator_enabled() else 256
    blocks = (n + threads - 1) // threads
    kernel[blocks, threads](*args)


def result_types(dev, prep, idx_p, idx_t, jvp=False):
    """``(output dtypes, tuple output?)``: Numba's CUDA typing of ``dev``, or a sample run under the simulator.

    The dtypes are the outputs', then (``jvp``) their tangents'.
    """
    if simulator_enabled():
        args = [prep.element(j) for j in idx_p + idx_t]
        with np.errstate(all="ignore"):
            res = dev(*args)
        outs = res[0] if jvp else res
        tup = isinstance(outs, tuple)
        outs = list(outs) if tup else [outs]
        fl = float_result(prep.dtypes())
        types_ = [host_result_dtype(v, fl) for v in outs]
        if jvp:
            return types_ + [tangent_dtype(t) for t in types_], tup
        return types_, tup
    from numba.np.numpy_support import as_dtype
    argtypes = tuple(prep.numba_type(j) for j in idx_p + idx_t)
    cres = dev.compile_device(argtypes)
    rt = cres.signature.return_type
    if jvp:
        rt_out, rt_d = rt.types if isinstance(rt, nbtypes.BaseTuple) else (rt, None)
    else:
        rt_out, rt_d = rt, None
    tup = isinstance(rt_out, nbtypes.BaseTuple)
    outs = list(rt_out.types) if tup else [rt_out]
    out_dt = [as_dtype(t) for t in outs]
    if not jvp:
        return out_dt, tup
    ds = list(rt_d.types) if isinstance(rt_d, nbtypes.BaseTuple) else [rt_d] * len(outs)
    d_dt = [as_dtype(t) if isinstance(t, (nbtypes.Float, nbtypes.Integer)) else tangent_dtype(o)
            for t, o in zip(ds, out_dt)]
    return out_dt + d_dt, tup


def _dev_key(v):
    """What a bound device function contributes to the kernel's cache key (its generated file's name)."""
    fn = getattr(v, "py_func", None) or getattr(v, "fn", None)
    path = getattr(v, "_fwdjit_path", None)
    if path:
        return path.rsplit("/", 1)[-1]
    if fn is not None:
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    return repr(v)


def _store(src, names, var, nout, tuple_out):
    """Store result ``var`` (one value or a tuple) at ``[i]`` of the output arrays ``names``."""
    if nout == 1 and not tuple_out:
        src(f"{names[0]}[i] = {var}")
    else:
        src(*[f"{nm}[i] = {var}[{m}]" for m, nm in enumerate(names)])
