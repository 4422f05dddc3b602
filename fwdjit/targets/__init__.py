"""Targets: what turns the compiler's output into something that runs.

* :mod:`~fwdjit.targets.base`: what the CPU and CUDA targets share (cache
  keys, effective activity masks, input checks);
* :mod:`~fwdjit.targets.cache`: generated files in the cache folder, their
  hashed names, the source fingerprint, Numba's cache guard;
* :mod:`~fwdjit.targets.cpu`: the CPU target (Numba dispatchers; what
  ``@fwdjit`` returns);
* :mod:`~fwdjit.targets.cuda`: the CUDA target (device functions and kernels).

Both run the compiler's pipeline (:mod:`fwdjit.compiler`) and share
:mod:`~fwdjit.targets.base`; neither imports the other nor :mod:`fwdjit.api`.
Nothing here is imported by the compiler.
"""
