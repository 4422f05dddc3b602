"""Training with forward gradients: no backward pass.

* :mod:`~fwdjit.training.rng`: the counter-based generator of the directions;
* :mod:`~fwdjit.training.estimator`: ``forward_grad`` / ``forward_grad_function``
  (the forward-gradient estimator, compiled);
* :mod:`~fwdjit.training.loop`: ``train()`` and its optimizers (one compiled
  function runs many steps).

The public names are re-exported by :mod:`fwdjit` (``fwdjit.train``,
``fwdjit.forward_grad``...).
"""
