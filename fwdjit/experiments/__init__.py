"""What the examples, the demo and the paper's table use; not needed to use fwdjit.

* :mod:`~fwdjit.experiments.models`: small models (MLP losses) for the demo and benchmarks;
* :mod:`~fwdjit.experiments.backprop`: backpropagation references (JAX or PyTorch);
* :mod:`~fwdjit.experiments.data`: MNIST (a vendored 5,000-image subset, IDX reader);
* :mod:`~fwdjit.experiments.demo`: ``python -m fwdjit demo``.
"""
