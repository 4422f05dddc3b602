"""Targets: what turns the compiler's output into something that runs.

* :mod:`~fwdjit.targets.base`: what the CPU and CUDA targets share (cache
  keys, effective activity masks, input checks);
* :mod:`~fwdjit.targets.cache`: generated files in the cache folder, their
  hashed names, the source fingerprint, Numba's cache guard;
* :mod:`~fwdjit.targets.cuda`: the CUDA target (device functions and kernels).

The CPU target (Numba dispatchers) is :mod:`fwdjit.api` for now.  Nothing
here is imported by the compiler.
"""
