"""BLAS threads around fwdjit's compiled calls (threadpoolctl).

Numba's ``@``, ``np.dot`` and ``np.linalg`` call SciPy's OpenBLAS.  Its
default thread pool uses every core, and its worker threads spin while they
wait: on a busy machine a pool wider than the idle cores collapses.  Measured
on a shared 2-core machine (one other job running): ``forward_grad`` of the
MNIST MLP took 160 ms per call with 2 BLAS threads and 13.5 ms with one.  So
fwdjit sets the number of BLAS threads itself while its compiled code runs
(``forward_grad`` and ``train`` called from Python) and restores the previous
numbers afterwards.

How many threads (first that applies):

1. inside ``with fwdjit.blas_threads(n):`` -- ``n``;
2. ``train(..., blas_threads_n=n)`` for that call;
3. ``fwdjit.set_blas_threads(n)``;
4. the environment variable ``FWDJIT_BLAS_THREADS`` (read at each call);
5. the default: half the CPUs this process may run on, at least 1, at most
   8 (``default_blas_threads()``; 1 on a 2-core machine).

``n`` is an int >= 1, ``"auto"`` (the default), or ``0`` / ``"keep"``:
leave the BLAS pools as they are (fwdjit does not touch them).  A count
larger than the CPUs available to the process (``sched_getaffinity`` and the
cgroup CPU quota) is lowered to that number: more threads than CPUs only
spin.  ``get_blas_threads()`` says what the next compiled call will use.

The BLAS pools are process-wide: calls from several Python threads at once
share one setting (the most recent one while any call runs; the numbers from
before the first are restored when the last ends).  Setting and restoring
costs about 10 microseconds per call (a ``threadpoolctl`` controller is built
once and reused; ``threadpoolctl.threadpool_limits`` itself costs ~1 ms).
"""
from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager

from ..errors import FwdjitError

__all__ = ["ENV_VAR", "DEFAULT_CAP", "available_cpus", "default_blas_threads", "set_blas_threads",
           "get_blas_threads", "blas_threads", "compiled_call", "blas_info", "current_blas_threads"]

ENV_VAR = "FWDJIT_BLAS_THREADS"
DEFAULT_CAP = 8
KEEP = 0                       # "leave the pools alone"

_LOCK = threading.RLock()
_setting = None                # from set_blas_threads: None (not set), "auto", KEEP or an int
_override = threading.local()  # stack of blas_threads(n) blocks, per Python thread
_libs = None                   # threadpoolctl LibControllers of the loaded BLAS libraries
_held = {"depth": 0, "saved": None, "n": None, "changed": False}


# ------------------------------------------------------------------ CPUs
def _cgroup_cpus():
    """CPUs granted by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        return max(1, math.ceil(quota / period)) if quota > 0 else None
    except (OSError, ValueError):
        return None


_CGROUP = _cgroup_cpus()


def available_cpus():
    """CPUs this process may run on now: its affinity mask, bounded by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    if _CGROUP is not None:
        n = min(n, _CGROUP)
    return max(1, n)


def default_blas_threads():
    """Half the available CPUs, at least 1, at most ``DEFAULT_CAP``: room for the rest of the machine."""
    return max(1, min(DEFAULT_CAP, available_cpus() // 2))


# --------------------------------------------------------------- setting
def _parse(n, where):
    """``None``/"auto" -> "auto"; 0/"keep"/"none" -> KEEP; an int >= 1 -> the int."""
    if n is None:
        return "auto"
    if isinstance(n, str):
        s = n.strip().lower()
        if s in ("", "auto", "default"):
            return "auto"
        if s in ("keep", "none", "0"):
            return KEEP
        try:
            n = int(s)
        except ValueError:
            raise FwdjitError(f"{where}: BLAS threads must be a positive int, 'auto' or 'keep' (0), "
                              f"given {n!r}") from None
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise FwdjitError(f"{where}: BLAS threads must be a positive int, 'auto' or 'keep' (0), given {n!r}")
    n = int(n)
    if n < 0:
        raise FwdjitError(f"{where}: BLAS threads must be >= 0 (0 = leave the BLAS pools alone), given {n}")
    return n


def _resolve(s):
    """A parsed setting as a thread count (None for KEEP), clamped to the available CPUs."""
    if s == KEEP:
        return None
    if s == "auto":
        return default_blas_threads()
    return min(s, available_cpus())


def set_blas_threads(n):
    """Set the BLAS threads fwdjit uses around its compiled calls; returns the previous setting.

    ``n``: an int >= 1, ``"auto"`` or ``None`` (back to ``FWDJIT_BLAS_THREADS`` or the default),
    or ``0`` / ``"keep"`` (leave the BLAS pools as they are).
    """
    global _setting
    new = None if n is None else _parse(n, "set_blas_threads")
    with _LOCK:
        old, _setting = _setting, new
    return "auto" if old is None else ("keep" if old == KEEP else old)


def _current_setting(n=None):
    stack = getattr(_override, "stack", None)
    if stack:
        return stack[-1]
    if n is not None:
        return _parse(n, "blas_threads_n")
    if _setting is not None:
        return _setting
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return _parse(env, ENV_VAR)
    return "auto"


def get_blas_threads(n=None):
    """The BLAS threads the next compiled call will run with (None: the pools are left alone).

    ``n``: a per-call choice (as ``train``'s ``blas_threads_n``), used unless a
    ``blas_threads`` block is active.
    """
    return _resolve(_current_setting(n))


# ------------------------------------------------------------- the pools
def _blas_libs():
    """threadpoolctl controllers of the BLAS libraries loaded now (SciPy's, which Numba calls, first imported)."""
    global _libs
    if _libs is None:
        with _LOCK:
            if _libs is None:
                try:
                    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, the one Numba calls)
                except ImportError:
                    pass
                from threadpoolctl import ThreadpoolController
                _libs = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _libs


def refresh():
    """Look again for loaded BLAS libraries (after one was loaded later, e.g. by another package)."""
    global _libs
    with _LOCK:
        _libs = None
    return _blas_libs()


def current_blas_threads():
    """``{filepath: num_threads}`` of the loaded BLAS libraries, read now."""
    return {lib.filepath: lib.get_num_threads() for lib in _blas_libs()}


def blas_info():
    """``threadpoolctl.threadpool_info()`` entries of the BLAS libraries (kernel in ``architecture``)."""
    _blas_libs()
    from threadpoolctl import threadpool_info
    return [d for d in threadpool_info() if d.get("user_api") == "blas"]


def _enter(n):
    libs = _blas_libs()
    with _LOCK:
        h = _held
        if h["depth"] == 0:
            h["saved"] = [lib.get_num_threads() for lib in libs]
            h["changed"] = False
            for lib, old in zip(libs, h["saved"]):
                if old != n:
                    lib.set_num_threads(n)
        elif h["n"] != n:
            h["changed"] = True
            for lib in libs:
                lib.set_num_threads(n)
        h["depth"] += 1
        prev, h["n"] = h["n"], n
    return prev


def _exit(prev):
    libs = _blas_libs()
    with _LOCK:
        h = _held
        h["depth"] -= 1
        if h["depth"] == 0:
            for lib, old in zip(libs, h["saved"]):
                if old != h["n"] or h["changed"]:
                    lib.set_num_threads(old)
            h["saved"] = None
            h["n"] = None
        elif prev is not None and prev != h["n"]:    # back to the enclosing call's number
            for lib in libs:
                lib.set_num_threads(prev)
            h["n"] = prev


@contextmanager
def compiled_call(n=None):
    """Around a compiled call: BLAS threads as ``get_blas_threads(n)`` says, restored afterwards."""
    k = get_blas_threads(n)
    if k is None:
        yield None
        return
    prev = _enter(k)
    try:
        yield k
    finally:
        _exit(prev)


@contextmanager
def blas_threads(n):
    """``with fwdjit.blas_threads(n):`` BLAS pools limited to ``n`` in the block, fwdjit's calls included.

    ``n``: an int >= 1 (at most the available CPUs), ``"auto"``, or ``0`` / ``"keep"``
    (fwdjit leaves the pools alone in the block); ``None`` changes nothing.
    """
    if n is None:
        yield
        return
    s = _parse(n, "blas_threads")
    stack = getattr(_override, "stack", None)
    if stack is None:
        stack = _override.stack = []
    stack.append(s)
    try:
        with compiled_call() as k:
            yield k
    finally:
        stack.pop()
