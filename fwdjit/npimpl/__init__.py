"""NumPy functions and forms Numba lacks (or gets wrong), written once for primal and tangent.

The compiler's lower pass (:mod:`fwdjit.compiler.lower`) rewrites such calls
into calls of these functions (generated code reaches them as ``fj.name``,
re-exported by :mod:`fwdjit.runtime`); the rules table
(:mod:`fwdjit.rules.npimpl`) differentiates them.  One module per family:

* :mod:`~fwdjit.npimpl.reductions`: ``sum mean prod max min var std cumsum cumprod`` with axes;
* :mod:`~fwdjit.npimpl.products`: ``einsum tensordot matmul inner kron cross``, ``np.dot`` of
  scalars and N-d arrays;
* :mod:`~fwdjit.npimpl.shapes`: ``squeeze rollaxis repeat diff gradient`` with axes;
* :mod:`~fwdjit.npimpl.decompositions`: tangents of ``eigh eigvalsh svd``;
* :mod:`~fwdjit.npimpl.codegen`: what they are built from;
* :mod:`~fwdjit.npimpl.rules_support`: helpers of derivative rules (``cumprod_jvp``...) and forms
  Numba lacks that rules need (``a.swapaxes()``, ``atleast_Nd`` of a scalar).

>>> import numpy as np
>>> float(sum_axis(np.ones((2, 3)), (0, 1), False))
6.0
"""
from . import decompositions, products, reductions, shapes
from .decompositions import *  # noqa: F401,F403
from .products import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .shapes import *  # noqa: F401,F403

__all__ = list(decompositions.__all__) + list(reductions.__all__) + list(products.__all__) + list(shapes.__all__)
