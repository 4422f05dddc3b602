"""What the CPU target (:mod:`fwdjit.targets.cpu`) and the CUDA target (:mod:`fwdjit.targets.cuda`) share.

Both targets import this module; it imports neither of them.

* :func:`~fwdjit.compiler.callees.user_python_function` (re-exported here for
  the targets): a callee object in, the Python function fwdjit transforms for
  it out (``None`` for library functions and black boxes);
* :class:`TargetFunction`: the part of a compiled function both targets
  compute the same way: :meth:`~TargetFunction.effective_mask` (an activity
  pattern in, the pattern once in-place writes are accounted for out) and
  :meth:`~TargetFunction.deep_key` (the function in, a hash of its source,
  options, callees and derivative rules out: part of every cache key);
* :func:`mismatch` and :func:`describe`: a primal and its tangent in, the
  reason the tangent does not fit (or ``None``) out.

>>> import numpy as np
>>> mismatch(np.ones(3), np.ones(2))
'expected shape (3,) and dtype float64 (like the primal), given array of shape (2,) and dtype float64'
>>> mismatch(1.0, 2.0) is None
True
"""
from __future__ import annotations

import hashlib

import numpy as np

from .. import compiler
from .. import rules as R
from ..compiler.callees import user_python_function
from .cache import namespace_key

__all__ = ["user_python_function", "TargetFunction", "mismatch", "describe", "is_device_array", "cached"]

def cached(table, key, make, lock):
    """``table[key]``, made by ``make()`` the first time, once even when threads race.

    Double-checked: a hit takes no lock; a miss takes ``lock`` (re-entrant
    where ``make`` builds callees through ``cached`` too) and looks again.

    >>> import threading
    >>> table, calls = {}, []
    >>> cached(table, "k", lambda: calls.append(1) or "v", threading.RLock())
    'v'
    >>> cached(table, "k", lambda: calls.append(1) or "w", threading.RLock()), len(calls)
    ('v', 1)
    """
    got = table.get(key)
    if got is not None:
        return got
    with lock:
        got = table.get(key)
        if got is None:
            got = table[key] = make()
        return got


class TargetFunction:
    """Mixin for one user function compiled for a target.

    Needs ``name``, ``info`` (a :class:`fwdjit.compiler.resolve.FunctionInfo`), ``params``,
    ``options``, ``resolver``, the dicts/sets ``_effective`` and ``_analyzing``, and:

    * ``key_prefix``: the target's prefix to the hashed source (it keeps
      the targets' cache keys apart);
    * ``key_entry(value)``: what a namespace value contributes to the key
      (a callee's own deep key in place of the callee).
    """

    key_prefix = ""

    def key_entry(self, value):  # pragma: no cover - each target defines it
        raise NotImplementedError

    def effective_mask(self, mask):
        """Which parameters carry tangents once in-place writes are accounted for."""
        mask = tuple(bool(m) for m in mask)
        eff = self._effective.get(mask)
        if eff is not None:
            return eff
        if mask in self._analyzing:
            raise RecursionError(self.name)
        self._analyzing.add(mask)
        try:
            _, _, act = compiler.analyze(self.info, mask, self.resolver)
            eff = tuple(p in act for p in self.params)
        finally:
            self._analyzing.discard(mask)
        self._effective[mask] = eff
        return eff

    def deep_key(self):
        """Hash of this function's source and, recursively, of everything it calls."""
        key = getattr(self, "_deep_key", None)
        if key is None:
            self._deep_key = "pending"   # recursion guard
            h = hashlib.sha256()
            h.update((self.key_prefix + self.info.filename + self.info.source).encode())
            h.update(repr(sorted(self.options.items())).encode())
            ns = {}
            for k, v in self.info.namespace.items():
                ns[k] = self.key_entry(v)
                rule = R.USER_RULES.get(v) if R.hashable(v) else None
                if rule is not None:      # a black box with a derivative rule: the rule counts too
                    ns[k + "#rule"] = getattr(rule, "key", "")
            h.update(namespace_key(ns).encode())
            self._deep_key = key = h.hexdigest()[:20]
        return key


def is_device_array(a):
    """A CUDA device array (real or the simulator's)."""
    if hasattr(a, "__cuda_array_interface__"):
        return True
    return type(a).__name__ in ("FakeCUDAArray", "DeviceNDArray", "MappedNDArray")


def describe(v):
    """A value in words, for error messages.

    >>> describe(np.zeros((2, 3), np.float32)), describe(np.float32(1)), describe(1.0)
    ('array of shape (2, 3) and dtype float32', 'float32 scalar', 'float')
    """
    if is_device_array(v):
        return f"device array of shape {tuple(v.shape)} and dtype {v.dtype}"
    if isinstance(v, np.ndarray):
        return f"array of shape {v.shape} and dtype {v.dtype}"
    if isinstance(v, np.generic):
        return f"{type(v).__name__} scalar"
    return type(v).__name__


def mismatch(p, t, device=False):
    """Why tangent ``t`` does not fit primal ``p`` (``None`` when it does).

    ``device=True``: device arrays count as arrays (the CUDA target takes both).

    >>> print(mismatch(np.arange(3), np.zeros(3)))  # doctest: +ELLIPSIS
    the primal is an integer array (...), which carries no float derivative: pass None as its tangent, ...
    >>> mismatch((1.0, 2.0), (1.0,))
    'expected a tuple of 2 tangents, given tuple'
    """
    def is_array(v):
        return isinstance(v, np.ndarray) or (device and is_device_array(v))

    if is_array(p):
        shape, dtype = tuple(p.shape), np.dtype(p.dtype)
        if not is_array(t):
            return f"expected an array of shape {shape} and dtype {dtype}, given {describe(t)}"
        same = np.dtype(t.dtype) == dtype and tuple(t.shape) == shape
        if dtype.kind in "biu" and not same:
            return (f"the primal is an integer array ({describe(p)}), which carries no float derivative: "
                    f"pass None as its tangent, or pass the argument as floats (x.astype(np.float64)) "
                    f"to differentiate through it; given {describe(t)}")
        if not same:
            return f"expected shape {shape} and dtype {dtype} (like the primal), given {describe(t)}"
        return None
    if isinstance(p, (bool, np.bool_)) or isinstance(p, (int, np.integer)):
        return f"the primal is {describe(p)}, which carries no derivative; pass None as its tangent"
    if isinstance(p, (float, np.floating)):
        if not isinstance(t, (float, np.floating)) or isinstance(t, bool):
            return f"expected a float (like the primal, {describe(p)}), given {describe(t)}"
        return None
    if isinstance(p, tuple):
        if not isinstance(t, tuple) or len(t) != len(p):
            return f"expected a tuple of {len(p)} tangents, given {describe(t)}"
        for i, (pi, ti) in enumerate(zip(p, t)):
            m = mismatch(pi, ti, device)
            if m:
                return f"element {i}: {m}"
    return None
