"""The clock the compiled training loop reads: ``now()`` in nanoseconds, callable from ``@njit`` code.

``clock_gettime(CLOCK_MONOTONIC)`` through an intrinsic where the C library has it
(``HAVE_CLOCK``); step times are then measured inside the compiled chunk.
"""
from __future__ import annotations

import ctypes
import sys
import time

import numba
from llvmlite import binding as llb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["now", "HAVE_CLOCK"]


def _setup_clock():
    """Make ``clock_gettime`` resolvable by name in JIT-ed code (so cached code can call it)."""
    if sys.platform.startswith("win"):
        return None
    try:
        libc = ctypes.CDLL(None)
        fn = libc.clock_gettime
    except (OSError, AttributeError):
        return None
    llb.add_symbol("clock_gettime", ctypes.cast(fn, ctypes.c_void_p).value)
    return 1 if sys.platform.startswith("linux") else 6        # CLOCK_MONOTONIC (Linux, macOS)


_CLOCK_ID = _setup_clock()
HAVE_CLOCK = _CLOCK_ID is not None


@intrinsic
def _clock_ns(typingctx):
    """Monotonic clock in nanoseconds (0 where clock_gettime is unavailable)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if _CLOCK_ID is None:
            return ir.Constant(i64, 0)
        ts_ty = ir.LiteralStructType([i64, i64])
        ts = cgutils.alloca_once(builder, ts_ty)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), ts_ty.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(fn, [ir.Constant(ir.IntType(32), _CLOCK_ID), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)
    return sig, codegen


@numba.njit(cache=True, nogil=True)
def now():
    """Seconds of a monotonic clock, callable from Numba code (as time.monotonic)."""
    return _clock_ns() * 1e-9
