"""Small helpers that generated code calls (imported there as ``fj``).

Each helper works on scalars and arrays inside Numba-compiled code and keeps
the dtype of its inputs, so float32 code stays float32.  They are written as
``numba.extending.overload`` implementations: the choice between the scalar and
the array version is made once, when Numba types the call.  Generated code
reads them as attributes of this package (``fj.select``); they live in

* :mod:`~fwdjit.runtime.core`: ``define``, ``zero``, ``lit``, ``like``, ``select``, power and
  reduction helpers, ``has_float32``;
* :mod:`~fwdjit.runtime.checks`: input checks of entry points (``check_tangent``...), ``kstack``;
* :mod:`~fwdjit.runtime.arrays`: ``bcast``, ``fresh``, ``matmul_stacked``, dtype matching,
  ``fuse_size``/``flat`` of fused loops;
* :mod:`fwdjit.npimpl`: NumPy functions Numba lacks and the helpers of their rules.

>>> from fwdjit import runtime as fj
>>> fj.zero(2.5), fj.define.__module__
(0.0, 'fwdjit.runtime.core')
"""
from __future__ import annotations

from numba.core.errors import TypingError  # noqa: F401  (re-exported, as before the split)

from .arrays import (BLOCK, array_like_common, bcast, blas_strides, buffer, flat, fresh, fuse_size, like_common, match_dtype,  # noqa: F401
                     match_dtype_each, matmul_stacked, promote)
from ..npimpl import *  # noqa: F401,F403  (NumPy forms Numba lacks, called as fj.*)
from ..npimpl.rules_support import cumprod_jvp, int_cast, like_each, permuted_like  # noqa: F401  (fj.* of rules)
from .checks import check_lowrank, check_tangent, check_tangents_k, kstack  # noqa: F401
from .core import (argmax, argmin, define, has_float32, like, lit, lit_args, pick_flat, pow_dexp,  # noqa: F401
                   prod_jvp, prod_jvp2, select, zero)

__all__ = ["zero", "lit", "like", "select", "pow_dexp", "prod_jvp", "pick_flat", "argmax", "argmin",
           "check_tangent", "has_float32", "TypingError"]
