"""Host-side values of the elementwise launches: inputs laid out for a kernel, outputs checked.

Input: the arguments of ``f(x, y)``, ``f.jvp_map``... (NumPy arrays, device
arrays, scalars); output: a :class:`Prepared` (flat device arrays or scalars
of one broadcast shape, their kinds ``"a"``/``"s"``) and the dtypes of the
results.

>>> import numpy as np
>>> variant_of([np.float32(1.0), 2.0]), variant_of([np.ones(2)])
('f32', 'plain')
>>> dtype_of(1), tangent_dtype(np.int32), float_result([np.dtype(np.int64), None])
(dtype('int64'), dtype('float64'), dtype('float64'))
"""
from __future__ import annotations

import numpy as np

from ...errors import TangentError
from ..base import describe, is_device_array
from .intrinsics import cuda_module

__all__ = ["Prepared", "variant_of", "dtype_of", "is_float", "is_scalar", "scalar_value", "given_outputs",
           "tangent_dtype", "float_result", "host_result_dtype", "cast_like"]


def is_scalar(a):
    """A Python or NumPy scalar, or a 0-d array (broadcast to every element)."""
    if isinstance(a, (bool, int, float, np.generic)):
        return True
    return isinstance(a, np.ndarray) and a.ndim == 0


def scalar_value(a):
    """The scalar inside a 0-d array (other scalars as they are)."""
    if isinstance(a, np.ndarray):
        return a[()]
    return a


def dtype_of(a):
    """The NumPy dtype of a value (Python bool/int/float as bool/int64/float64)."""
    if isinstance(a, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(a, int):
        return np.dtype(np.int64)
    if isinstance(a, float):
        return np.dtype(np.float64)
    return np.dtype(a.dtype)


def is_float(a):
    """A floating-point value (it can carry a derivative)."""
    return dtype_of(a).kind == "f"


def variant_of(values):
    """``"f32"`` when a float32 (or float16) value is among ``values`` (NumPy 2 keeps float32)."""
    for v in values:
        if v is None or isinstance(v, (bool, int, float)):
            continue
        dt = dtype_of(v)
        if dt.kind == "f" and dt.itemsize < 8:
            return "f32"
    return "plain"


class Prepared:
    """Inputs laid out for an elementwise kernel: flat device arrays or scalars."""

    def __init__(self, fn_name, params, values, what):
        cuda = cuda_module()
        shapes = [tuple(v.shape) for v in values if v is not None and not is_scalar(v)]
        try:
            self.shape = np.broadcast_shapes(*shapes) if shapes else ()
        except ValueError:
            raise TangentError(f"{fn_name}: the {what} do not broadcast together: "
                               + ", ".join(f"{p}: {describe(v)}" for p, v in zip(params, values)
                                           if v is not None)) from None
        self.n = int(np.prod(self.shape)) if self.shape else 1
        self.on_device = any(is_device_array(v) for v in values if v is not None)
        self.args = []
        self.kinds = []
        self.elems = []
        for p, v in zip(params, values):
            if v is None:
                self.args.append(None)
                self.kinds.append(None)
                self.elems.append(None)
                continue
            if is_scalar(v):
                s = scalar_value(v)
                self.args.append(s)
                self.kinds.append("s")
                self.elems.append(s)
                continue
            if is_device_array(v):
                if tuple(v.shape) != self.shape:
                    if v.size == 1:
                        s = v.copy_to_host().reshape(())[()]
                        self.args.append(s)
                        self.kinds.append("s")
                        self.elems.append(s)
                        continue
                    raise TangentError(f"{fn_name}: argument '{p}' is a {describe(v)}; device arrays must have "
                                       f"the broadcast shape {self.shape} (broadcast on the host, or pass a "
                                       "scalar)")
                if not v.is_c_contiguous():
                    raise TangentError(f"{fn_name}: argument '{p}': device arrays must be C-contiguous")
                flat = v.reshape(self.n) if v.ndim != 1 else v
                self.args.append(flat)
                self.kinds.append("a")
                self.elems.append(None)
                continue
            arr = np.asarray(v)
            if arr.shape != self.shape:
                arr = np.broadcast_to(arr, self.shape)
            arr = np.ascontiguousarray(arr).reshape(self.n)
            self.args.append(cuda.to_device(arr))
            self.kinds.append("a")
            self.elems.append(None)
        self._host = values

    def element(self, j):
        """A sample element of input j (for typing under the simulator)."""
        v = self._host[j]
        if self.kinds[j] == "s":
            return self.elems[j]
        if is_device_array(v):
            return v.copy_to_host().reshape(-1)[0] if self.n else np.zeros((), v.dtype)[()]
        arr = np.asarray(v)
        return arr.reshape(-1)[0] if arr.size else np.zeros((), arr.dtype)[()]

    def numba_type(self, j):
        import numba
        v = self._host[j]
        if self.kinds[j] == "s":
            return numba.typeof(self.elems[j])
        return numba.from_dtype(np.dtype(v.dtype))

    def dtypes(self):
        return [None if v is None else dtype_of(v) for v in self._host]



def given_outputs(name, out, nout, prep, out_types):
    """Flat views of user-given device output arrays ``(out, dout)``, checked."""
    try:
        o, d = out
    except (TypeError, ValueError):
        raise TangentError(f"jvp_map of {name}: out must be a pair (out, dout)") from None
    os_ = list(o) if isinstance(o, (tuple, list)) else [o]
    ds = list(d) if isinstance(d, (tuple, list)) else [d]
    arrs = os_ + ds
    if len(arrs) != 2 * nout:
        raise TangentError(f"jvp_map of {name}: out needs {nout} output array(s) and {nout} tangent array(s)")
    flat = []
    for a, dt in zip(arrs, out_types):
        if not is_device_array(a) or tuple(a.shape) != tuple(prep.shape) or np.dtype(a.dtype) != np.dtype(dt) \
                or not a.is_c_contiguous():
            raise TangentError(f"jvp_map of {name}: out arrays must be C-contiguous device arrays of shape "
                               f"{prep.shape} and dtype {np.dtype(dt)}, given {describe(a)}")
        flat.append(a.reshape(prep.n) if a.ndim != 1 else a)
    prep.on_device = True
    return flat


def tangent_dtype(dt):
    """The dtype of the tangent of a result of dtype ``dt`` (float64 for non-float results)."""
    dt = np.dtype(dt)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def float_result(dtypes):
    """The float dtype NumPy would give a result computed from inputs of ``dtypes``."""
    ds = [d for d in dtypes if d is not None and d.kind in "fiub"]
    if not ds:
        return np.dtype(np.float64)
    r = np.result_type(*ds)
    return r if r.kind == "f" else np.dtype(np.float64)


def host_result_dtype(v, float_dt):
    """The dtype of a result sampled under the simulator (bool, int64 or ``float_dt``)."""
    if isinstance(v, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(v, (int, np.integer)):
        return np.dtype(np.int64)
    return float_dt


def cast_like(t, x):
    """A host tangent in the primal's float dtype (device tangents are taken as they are)."""
    if is_device_array(t) or not is_float(x):
        return t
    dt = dtype_of(x)
    if isinstance(t, np.ndarray) and t.dtype != dt:
        return t.astype(dt)
    if isinstance(t, (float, np.floating)) and not isinstance(x, float):
        return dt.type(t)
    return t
