"""The optimizers of :func:`fwdjit.train`: SGD, momentum and Adam, as the compiled loop applies them.

An :class:`Optimizer` is a description (its hyperparameters and its ``key()``
in the loop's cache key); the update itself is generated into the chunk
(:mod:`fwdjit.training.chunk`).  :func:`make_optimizer` turns ``train``'s
``optimizer=`` argument (a name or an instance) into one.
"""
from __future__ import annotations

import numpy as np

from ..errors import FwdjitError

__all__ = ["Optimizer", "SGD", "Momentum", "Adam", "make_optimizer"]


class Optimizer:
    """An elementwise update rule compiled into the training loop.

    ``elem`` is Python source for one element ``i`` given the gradient
    estimate ``g``; it may use ``p`` (parameter), ``m`` and ``s`` (state
    arrays), ``lr`` and hyper-parameters ``h1..h5`` computed per step by
    ``hyper`` (a source expression tuple in terms of ``t`` = step + 1, the
    float64 ``lr`` and the attributes stored in ``values``).
    """
    name = "optimizer"
    n_state = 0
    elem = ""
    values: dict = {}

    def hyper_source(self):
        """Source lines computing (lr, h1..h5) in float64 from lr and t."""
        return ["h1 = 0.0", "h2 = 0.0", "h3 = 0.0", "h4 = 0.0", "h5 = 0.0"]

    def key(self):
        return (self.name, self.elem, tuple(self.hyper_source()))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """``p -= lr_t * g`` (the paper's forward gradient descent)."""
    name = "sgd"
    n_state = 0
    elem = "p[i] -= lr * g"

    def __init__(self):
        self.values = {}


class Momentum(Optimizer):
    """Heavy-ball momentum (PyTorch's form): ``m = mu m + g; p -= lr_t m`` (or Nesterov)."""
    name = "momentum"
    n_state = 1

    def __init__(self, mu=0.9, nesterov=False):
        self.values = {"mu": float(mu), "nesterov": bool(nesterov)}
        self.elem = ("m[i] = h1 * m[i] + g\n"
                     + ("p[i] -= lr * (g + h1 * m[i])" if nesterov else "p[i] -= lr * m[i]"))

    def hyper_source(self):
        return [f"h1 = {self.values['mu']!r}", "h2 = 0.0", "h3 = 0.0", "h4 = 0.0", "h5 = 0.0"]


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias correction folded into the step size and epsilon."""
    name = "adam"
    n_state = 2
    elem = ("m[i] = h1 * m[i] + h2 * g\n"
            "s[i] = h3 * s[i] + h4 * (g * g)\n"
            "p[i] -= lr * m[i] / (np.sqrt(s[i]) + h5)")

    def __init__(self, b1=0.9, b2=0.999, eps=1e-8):
        self.values = {"b1": float(b1), "b2": float(b2), "eps": float(eps)}

    def hyper_source(self):
        b1, b2, eps = self.values["b1"], self.values["b2"], self.values["eps"]
        return [f"c2 = math.sqrt(1.0 - {b2!r} ** t)",
                f"lr = lr * c2 / (1.0 - {b1!r} ** t)",
                f"h1 = {b1!r}", f"h2 = {1.0 - b1!r}", f"h3 = {b2!r}", f"h4 = {1.0 - b2!r}",
                f"h5 = {eps!r} * c2"]


def make_optimizer(optimizer, momentum=0.9, betas=(0.9, 0.999), eps=1e-8):
    """An Optimizer from a name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adam"``) or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    name = str(optimizer).lower()
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    if name == "nesterov":
        return Momentum(momentum, nesterov=True)
    if name == "adam":
        return Adam(betas[0], betas[1], eps)
    raise FwdjitError(f"unknown optimizer {optimizer!r}: use 'sgd', 'momentum', 'nesterov', 'adam' "
                      "or an instance of fwdjit.train.SGD/Momentum/Adam")
