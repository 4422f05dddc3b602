"""The CUDA target's public object: :class:`CudaFwdjitFunction` and :func:`cuda_fwdjit`.

Input: a user function; output: an object whose calls launch kernels (host
side): ``f(x, y)``, ``f.jvp_map``, ``f.jacobian_map``, ``f.forward_gradient``
for scalar functions, ``f[blocks, threads](...)`` and ``.jvp`` for kernels.
The device code itself comes from its unit (:mod:`~fwdjit.targets.cuda.device`),
the elementwise kernels from :mod:`~fwdjit.targets.cuda.kernels`.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...errors import FwdjitError, TangentError
from ..base import cached, describe, mismatch, user_python_function
from .device import get_unit
from .host import Prepared, cast_like, dtype_of, given_outputs, is_float, tangent_dtype, variant_of
from .intrinsics import LOCK, cuda_module
from .kernels import build_map_kernel, launch_map, result_types

__all__ = ["CudaFwdjitFunction", "cuda_fwdjit"]


class CudaFwdjitFunction:
    """A Python function compiled by fwdjit for NVIDIA GPUs (Numba's CUDA target).

    Scalar functions: ``f(*arrays)``, ``f.jvp_map``, ``f.jacobian_map``,
    ``f.forward_gradient``, ``f.device_function``,
    ``f.tangent_device_function(active)``.
    Kernels: ``f[blocks, threads](*args)`` and
    ``f[blocks, threads].jvp(primals, tangents)``; ``f.tangent_kernel(active)``.
    """

    fwdjit_target = "cuda"

    def __init__(self, func, *, fastmath=False, cache=True):
        py = user_python_function(func, device=True) or func
        self.py_func = py
        try:
            self.__doc__ = py.__doc__
            self.__name__ = py.__name__
            self.__qualname__ = py.__qualname__
            self.__module__ = py.__module__
            self.__wrapped__ = py
        except AttributeError:   # pragma: no cover
            pass
        self.name = getattr(py, "__name__", "f")
        self.options = {"fastmath": fastmath, "cache": cache}
        self.unit = get_unit(py, self.options)
        self.params = self.unit.params
        self._nparams = len(self.params)
        self._kernels = {}
        self._states = {}

    def __repr__(self):
        kind = "kernel" if self.is_kernel else "device function"
        return f"<fwdjit CUDA {kind} {self.unit.info.qualname} ({self.unit.info.filename}:{self.unit.info.tree.lineno})>"

    @property
    def is_kernel(self):
        return self.unit.is_kernel

    # -------------------------------------------------------- sources
    def _mask(self, active):
        if active is None:
            return (True,) * self._nparams
        mask = tuple(bool(a) for a in active)
        if len(mask) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}); "
                               f"active has {len(mask)} entries")
        return mask

    @property
    def tangent_source(self):
        """The generated tangent code for all arguments active, as compiled for the GPU."""
        return self.tangent_source_for(None)

    def tangent_source_for(self, active, float32=False):
        return self.unit.source("jvp", self._mask(active), "f32" if float32 else "plain")

    @property
    def primal_source(self):
        return self.unit.source("primal", None, "plain")

    # ------------------------------------------------- device functions
    @property
    def device_function(self):
        """The primal as a CUDA device function (kernels: the primal kernel)."""
        return self.unit.device("primal", None, "plain")

    def tangent_device_function(self, active=None, float32=False):
        """The JVP as a CUDA device function ``(primals..., active tangents...) -> (out, dout)``.

        ``float32=True`` gives the variant that keeps float32 values float32
        (NumPy 2 rules), for float32 arguments.  For kernels this is the
        tangent kernel (see :meth:`tangent_kernel`).
        """
        return self.unit.device("jvp", self._mask(active), "f32" if float32 else "plain")

    # ----------------------------------------------------------- kernels
    def tangent_kernel(self, active=None):
        """The tangent kernel of a kernel: ``tk[blocks, threads](*primals, *tangents_of_active)``."""
        if not self.is_kernel:
            raise FwdjitError(f"{self.name} returns a value: it is a device function, not a kernel "
                              "(use jvp_map, or tangent_device_function in your own kernel)")
        return _KernelHandle(self, "jvp", self._mask(active))

    def __getitem__(self, config):
        if not self.is_kernel:
            raise FwdjitError(f"{self.name} returns a value: it is a device function, not a kernel; "
                              "call it on arrays (f(x, y)) or use jvp_map")
        return _Launch(self, config)

    def _launch(self, kind, mask, config, args):
        variant = variant_of([a for a in args if a is not None])
        kern = self.unit.device(kind, mask, variant)
        kern[config](*args)

    def _kernel_jvp(self, config, primals, tangents):
        primals, tangents = self._check_pt(primals, tangents)
        mask = tuple(t is not None for t in tangents)
        for p, x, t in zip(self.params, primals, tangents):
            if t is None:
                continue
            msg = mismatch(x, t, device=True)
            if msg:
                raise TangentError(f"{self.name}: tangent for argument '{p}': {msg}")
        self._launch("jvp", mask, config, list(primals) + [t for t in tangents if t is not None])

    def _check_pt(self, primals, tangents):
        try:
            primals, tangents = tuple(primals), tuple(tangents)
        except TypeError:
            raise TangentError(f"{self.name}: primals and tangents must be tuples") from None
        if len(primals) != self._nparams or len(tangents) != self._nparams:
            raise TangentError(f"{self.name}({', '.join(self.params)}): expected {self._nparams} primals and "
                               f"{self._nparams} tangents (None for no tangent), given {len(primals)} and "
                               f"{len(tangents)}")
        return primals, tangents

    # ------------------------------------------------------ elementwise
    def _need_device_function(self, what):
        if self.is_kernel:
            raise FwdjitError(f"{self.name} is a kernel (it returns nothing); {what} is for scalar functions: "
                              f"launch it with {self.name}[blocks, threads](...) or "
                              f"{self.name}[blocks, threads].jvp(primals, tangents)")

    def __call__(self, *args):
        """Values of the function, elementwise over array arguments (scalars broadcast)."""
        self._need_device_function("calling it on arrays")
        if len(args) != self._nparams:
            raise TangentError(f"{self.name} takes {self._nparams} arguments ({', '.join(self.params)}), "
                               f"given {len(args)}")
        prep = Prepared(self.name, self.params, list(args), "arguments")
        variant = variant_of(args)
        dev = self.unit.device("primal", None, variant)
        out_types = self._out_types(dev, prep, list(range(self._nparams)), [], variant)
        kernel = self._map_kernel("primal", variant, tuple(prep.kinds), None, len(out_types))
        outs = [cuda_module().device_array(prep.n, dt) for dt in out_types]
        launch_map(kernel, prep.n, [a for a in prep.args] + outs)
        res = self._finish(prep, outs)
        return res[0] if len(res) == 1 and not self._tuple_out else tuple(res)

    map = __call__

    def jvp_map(self, primals, tangents, out=None):
        """``(out, dout)`` elementwise: one JVP per element of the broadcast inputs.

        ``tangents`` has one entry per primal (None: zero tangent; int
        arguments take None); arrays and scalars broadcast together.  Host
        inputs give host outputs; with any device array among the inputs the
        outputs stay on the device.  Tuple outputs give tuples of arrays.
        ``out=(out, dout)``: C-contiguous device arrays of the broadcast shape
        (tuples of them for tuple outputs) to write into instead of
        allocating; they are returned.
        """
        self._need_device_function("jvp_map")
        primals, tangents = self._check_pt(primals, tangents)
        for p, x, t in zip(self.params, primals, tangents):
            if t is None:
                continue
            if not is_float(x):
                raise TangentError(f"jvp_map of {self.name}: argument '{p}' is {dtype_of(x)}, which carries no "
                                   "derivative; pass None as its tangent")
            if not is_float(t):
                raise TangentError(f"jvp_map of {self.name}: tangent for argument '{p}' must be floating point, "
                                   f"given {describe(t)}")
        mask = tuple(t is not None for t in tangents)
        variant = variant_of(list(primals) + [t for t in tangents if t is not None])
        tangents = tuple(None if t is None else cast_like(t, x) for x, t in zip(primals, tangents))
        prep = Prepared(self.name, self.params + ["d" + p for p in self.params],
                         list(primals) + list(tangents), "primals and tangents")
        n = self._nparams
        dev = self.unit.device("jvp", mask, variant)
        idx_p = list(range(n))
        idx_t = [n + j for j in range(n) if mask[j]]
        out_types = self._out_types(dev, prep, idx_p, idx_t, variant, jvp=True)
        nout = len(out_types) // 2
        kinds = tuple(prep.kinds)
        kernel = self._map_kernel("jvp", variant, kinds, mask, nout)
        if out is not None:
            outs = given_outputs(self.name, out, nout, prep, out_types)
        else:
            outs = [cuda_module().device_array(prep.n, dt) for dt in out_types]
        args = [prep.args[j] for j in idx_p] + [prep.args[j] for j in idx_t] + outs
        launch_map(kernel, prep.n, args)
        res = self._finish(prep, outs)
        if nout == 1 and not self._tuple_out:
            return res[0], res[1]
        return tuple(res[:nout]), tuple(res[nout:])

    def jacobian_map(self, primals, argnums=None):
        """``(out, jac)``: derivatives w.r.t. each argument in ``argnums``, elementwise, in one launch.

        ``jac[k]`` is d out / d primals[argnums[k]] (a tuple over outputs for
        tuple outputs).  ``argnums`` defaults to every floating-point argument.
        Each thread runs one JVP per argument (one-hot tangents).
        """
        self._need_device_function("jacobian_map")
        primals, _ = self._check_pt(primals, (None,) * self._nparams)
        argnums = self._argnums(primals, argnums, "jacobian_map")
        variant = variant_of(primals)
        prep = Prepared(self.name, self.params, list(primals), "arguments")
        out_types = self._out_types(self.unit.device("primal", None, variant), prep,
                                    list(range(self._nparams)), [], variant)
        nout = len(out_types)
        kernel = self._map_kernel("jac", variant, tuple(prep.kinds), tuple(argnums), nout)
        cuda = cuda_module()
        outs = [cuda.device_array(prep.n, dt) for dt in out_types]
        jacs = [cuda.device_array(prep.n, tangent_dtype(dt)) for _ in argnums for dt in out_types]
        launch_map(kernel, prep.n, list(prep.args) + outs + jacs)
        res = self._finish(prep, outs + jacs)
        vals, jr = res[:nout], res[nout:]
        per = [tuple(jr[k * nout:(k + 1) * nout]) for k in range(len(argnums))]
        if nout == 1 and not self._tuple_out:
            return vals[0], tuple(p[0] for p in per)
        return tuple(vals), tuple(per)

    def forward_gradient(self, primals, num_directions=1, seed=0, argnums=None, states=None):
        """Forward-gradient estimates, elementwise, with random directions drawn on the GPU.

        For each element (sample) ``i``, draws ``num_directions`` directions
        ``v ~ N(0, I)`` over the arguments in ``argnums`` (xoroshiro128+
        generators, one per sample), and returns ``(out, grads)`` with
        ``grads[k][i] = mean_j (grad f . v_j) v_j[k]``, an unbiased estimate of
        d f / d primals[argnums[k]].  One kernel launch for the whole batch.
        ``states``: reuse ``numba.cuda.random.create_xoroshiro128p_states(n, seed)``
        (at least one per sample) across calls.
        """
        self._need_device_function("forward_gradient")
        if int(num_directions) < 1:
            raise FwdjitError("forward_gradient needs num_directions >= 1")
        primals, _ = self._check_pt(primals, (None,) * self._nparams)
        argnums = self._argnums(primals, argnums, "forward_gradient")
        variant = variant_of(primals)
        prep = Prepared(self.name, self.params, list(primals), "arguments")
        out_types = self._out_types(self.unit.device("primal", None, variant), prep,
                                    list(range(self._nparams)), [], variant)
        if len(out_types) != 1 or self._tuple_out or np.dtype(out_types[0]).kind != "f":
            raise FwdjitError(f"forward_gradient of {self.name}: the function must return one float "
                              f"(it returns {len(out_types)} value(s) of dtype "
                              f"{', '.join(str(np.dtype(t)) for t in out_types)})")
        mask = tuple(j in argnums for j in range(self._nparams))
        self.unit.device("jvp", mask, variant)
        kernel = self._map_kernel("fgrad", variant, tuple(prep.kinds), tuple(argnums), 1)
        cuda = cuda_module()
        if states is None:
            states = self._rng_states(prep.n, seed)
        elif len(states) < prep.n:
            raise FwdjitError(f"forward_gradient: {len(states)} random states for {prep.n} samples")
        out = cuda.device_array(prep.n, out_types[0])
        grads = [cuda.device_array(prep.n, out_types[0]) for _ in argnums]
        launch_map(kernel, prep.n, list(prep.args) + [states, int(num_directions), out] + grads)
        res = self._finish(prep, [out] + grads)
        return res[0], tuple(res[1:])

    def _rng_states(self, n, seed):
        """Generator states for ``n`` samples, as ``create_xoroshiro128p_states(n, seed)`` makes them.

        Drawing advances the states, so a pristine copy is kept on the device
        and copied (device to device) before each use: the same seed gives the
        same directions on every call without initializing states again.
        """
        key = (n, seed)
        got = self._states.get(key)
        if got is None:
            from numba.cuda.random import create_xoroshiro128p_states
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pristine = create_xoroshiro128p_states(n, seed=seed)
            work = cuda_module().device_array_like(pristine)
            got = (pristine, work)
            self._states = {key: got}          # keep one set alive
        pristine, work = got
        try:
            work.copy_to_device(pristine)
        except TypeError:    # the simulator cannot copy record arrays device to device
            from numba.cuda.random import create_xoroshiro128p_states
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                work = create_xoroshiro128p_states(n, seed=seed)
        return work

    def _argnums(self, primals, argnums, what):
        if argnums is None:
            argnums = [j for j, x in enumerate(primals) if is_float(x)]
        elif isinstance(argnums, int):
            argnums = [argnums]
        argnums = [int(a) for a in argnums]
        for a in argnums:
            if not 0 <= a < self._nparams:
                raise TangentError(f"{what} of {self.name}: argnum {a} out of range for {self._nparams} arguments")
            if not is_float(primals[a]):
                raise TangentError(f"{what} of {self.name}: argument '{self.params[a]}' is "
                                   f"{dtype_of(primals[a])}, which carries no derivative")
        if not argnums:
            raise TangentError(f"{what} of {self.name}: no floating-point argument to differentiate")
        return argnums

    # ------------------------------------------------- kernel plumbing
    @property
    def _tuple_out(self):
        v = getattr(self, "_tuple_out_v", None)
        return bool(v)

    def _out_types(self, dev, prep, idx_p, idx_t, variant, jvp=False):
        """Output dtypes (outs, then douts for jvp), cached per device function and argument types."""
        key = (id(dev), jvp, tuple(str(prep.numba_type(j)) for j in idx_p + idx_t))
        cache = self.__dict__.setdefault("_types_cache", {})
        got = cache.get(key)
        if got is None:
            got = cache[key] = result_types(dev, prep, idx_p, idx_t, jvp)
        self._tuple_out_v = got[1]
        return got[0]

    def _finish(self, prep, outs):
        """Kernel outputs as results: reshaped to the broadcast shape, copied to the host unless inputs were on the device."""
        res = []
        for o in outs:
            if prep.on_device:
                res.append(o.reshape(prep.shape) if prep.shape else o)
            else:
                h = o.copy_to_host()
                res.append(h.reshape(prep.shape) if prep.shape else h.reshape(())[()])
        return res

    def _map_kernel(self, mode, variant, kinds, extra, nout):
        """The elementwise kernel for one mode, variant and input layout (built once)."""
        key = (mode, variant, kinds, extra, nout)
        return cached(self._kernels, key, lambda: build_map_kernel(self.unit, self.name, self.options, *key,
                                                                    self._tuple_out), LOCK)


class _KernelHandle:
    """``tk[blocks, threads](*primals, *tangents_of_active)``."""

    def __init__(self, cf, kind, mask):
        self.cf, self.kind, self.mask = cf, kind, mask

    def __getitem__(self, config):
        cf, kind, mask = self.cf, self.kind, self.mask

        def launch(*args):
            cf._launch(kind, mask, config, list(args))
        return launch

    @property
    def source(self):
        return self.cf.unit.source(self.kind, self.mask)


class _Launch:
    """``f[blocks, threads]``: call it for the primal kernel, ``.jvp(primals, tangents)`` for the tangent."""

    def __init__(self, cf, config):
        self.cf, self.config = cf, config

    def __call__(self, *args):
        self.cf._launch("primal", None, self.config, list(args))

    def jvp(self, primals, tangents):
        self.cf._kernel_jvp(self.config, primals, tangents)


def cuda_fwdjit(func=None, *, fastmath=False, cache=True):
    """Decorator: ``@cuda_fwdjit`` (same as ``@fwdjit(target="cuda")``)."""
    if func is None:
        return lambda f: cuda_fwdjit(f, fastmath=fastmath, cache=cache)
    if isinstance(func, CudaFwdjitFunction):
        return func
    return CudaFwdjitFunction(func, fastmath=fastmath, cache=cache)
