"""The models of the paper's MNIST experiments, as plain NumPy functions fwdjit differentiates.

* logistic regression (softmax regression) 784 -> 10: ``logreg_loss(W, b, X, Y)``;
* the MLP 784-1024-1024-10 with ReLU: ``mlp_loss(W1, b1, W2, b2, W3, b3, X, Y)``;
* the CNN: four 3x3 convolutions with 64 channels and ReLU ("same" padding), 2x2
  max-pooling after the second and the fourth, dense 1024 (ReLU) and 10:
  ``cnn_loss(K1, c1, K2, c2, K3, c3, K4, c4, W5, b5, W6, b6, X, Y)``; images in NHWC
  layout ``(n, 28, 28, 1)``; the convolutions and the pooling are plain loops.

Losses are the mean softmax cross-entropy against one-hot labels ``Y``.
``init(model, seed, dtype)`` gives PyTorch's default initialisation
(uniform in +-1/sqrt(fan_in) for weights and biases).  ``accuracy(model,
params, X, labels)`` evaluates with the compiled primal.  ``jax_loss(model)``
gives the same loss written with jax.numpy for the backprop references.
"""
from __future__ import annotations

import numpy as np

__all__ = ["logreg_loss", "mlp_loss", "cnn_loss", "cnn_logits", "mlp_logits", "logreg_logits", "init",
           "accuracy", "MODELS", "jax_loss", "n_params", "layer_shapes"]


def _xent(logits, Y):
    m = np.zeros(logits.shape[0], dtype=logits.dtype)
    for i in range(logits.shape[0]):
        m[i] = np.max(logits[i])
    z = logits - m.reshape((-1, 1))
    lse = np.log(np.sum(np.exp(z), axis=1))
    logp = z - lse.reshape((-1, 1))
    return -np.sum(Y * logp) / logits.shape[0]


def logreg_logits(W, b, X):
    return X @ W + b


def logreg_loss(W, b, X, Y):
    return _xent(X @ W + b, Y)


def mlp_logits(W1, b1, W2, b2, W3, b3, X):
    h1 = np.maximum(X @ W1 + b1, 0.0)
    h2 = np.maximum(h1 @ W2 + b2, 0.0)
    return h2 @ W3 + b3


def mlp_loss(W1, b1, W2, b2, W3, b3, X, Y):
    h1 = np.maximum(X @ W1 + b1, 0.0)
    h2 = np.maximum(h1 @ W2 + b2, 0.0)
    return _xent(h2 @ W3 + b3, Y)


def conv3x3_relu(x, K, c):
    """relu(conv(x, K) + c), 3x3 kernel, stride 1, zero padding 1; x (n, H, W, Ci), K (3, 3, Ci, Co)."""
    n = x.shape[0]
    H = x.shape[1]
    W = x.shape[2]
    Ci = x.shape[3]
    Co = K.shape[3]
    xp = np.zeros((n, H + 2, W + 2, Ci), dtype=x.dtype)
    xp[:, 1:H + 1, 1:W + 1, :] = x
    out = np.zeros((n, H, W, Co), dtype=x.dtype)
    for b in range(n):
        for i in range(H):
            for j in range(W):
                for di in range(3):
                    for dj in range(3):
                        for ci in range(Ci):
                            xv = xp[b, i + di, j + dj, ci]
                            for co in range(Co):
                                out[b, i, j, co] += xv * K[di, dj, ci, co]
    return np.maximum(out + c, 0.0)


def maxpool2x2(x):
    """2x2 max-pooling with stride 2 of x (n, H, W, C), H and W even."""
    n = x.shape[0]
    H = x.shape[1] // 2
    W = x.shape[2] // 2
    C = x.shape[3]
    out = np.zeros((n, H, W, C), dtype=x.dtype)
    for b in range(n):
        for i in range(H):
            for j in range(W):
                for c in range(C):
                    out[b, i, j, c] = max(max(x[b, 2 * i, 2 * j, c], x[b, 2 * i, 2 * j + 1, c]),
                                          max(x[b, 2 * i + 1, 2 * j, c], x[b, 2 * i + 1, 2 * j + 1, c]))
    return out


def cnn_logits(K1, c1, K2, c2, K3, c3, K4, c4, W5, b5, W6, b6, X):
    h = conv3x3_relu(X, K1, c1)
    h = maxpool2x2(conv3x3_relu(h, K2, c2))
    h = conv3x3_relu(h, K3, c3)
    h = maxpool2x2(conv3x3_relu(h, K4, c4))
    f = h.reshape((h.shape[0], h.shape[1] * h.shape[2] * h.shape[3]))
    h5 = np.maximum(f @ W5 + b5, 0.0)
    return h5 @ W6 + b6


def cnn_loss(K1, c1, K2, c2, K3, c3, K4, c4, W5, b5, W6, b6, X, Y):
    return _xent(cnn_logits(K1, c1, K2, c2, K3, c3, K4, c4, W5, b5, W6, b6, X), Y)


def layer_shapes(model, channels=64, hidden=1024):
    """Parameter shapes of ``model`` ('logreg', 'mlp', 'cnn')."""
    if model == "logreg":
        return [(784, 10), (10,)]
    if model == "mlp":
        return [(784, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, 10), (10,)]
    if model == "cnn":
        c = channels
        return [(3, 3, 1, c), (c,), (3, 3, c, c), (c,), (3, 3, c, c), (c,), (3, 3, c, c), (c,),
                (7 * 7 * c, hidden), (hidden,), (hidden, 10), (10,)]
    raise ValueError(f"unknown model {model!r} (logreg, mlp, cnn)")


def init(model, seed=0, dtype=np.float32, channels=64, hidden=1024):
    """PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    r = np.random.default_rng(seed)
    shapes = layer_shapes(model, channels, hidden)
    out = []
    for k in range(0, len(shapes), 2):
        ws, bs = shapes[k], shapes[k + 1]
        fan_in = int(np.prod(ws[:-1]))
        bound = 1.0 / np.sqrt(fan_in)
        out.append(r.uniform(-bound, bound, ws).astype(dtype))
        out.append(r.uniform(-bound, bound, bs).astype(dtype))
    if model == "logreg":      # the usual start for logistic regression
        out = [np.zeros(s, dtype) for s in shapes]
    return out


def n_params(params):
    return int(sum(p.size for p in params))


MODELS = {"logreg": (logreg_loss, logreg_logits), "mlp": (mlp_loss, mlp_logits), "cnn": (cnn_loss, cnn_logits)}


def accuracy(model, params, X, labels, batch=500):
    """Fraction of ``labels`` predicted by ``model`` at ``params`` (compiled primal of the logits)."""
    from ..api import get_fwdjit
    logits_fn = get_fwdjit(MODELS[model][1]).primal_function
    correct = 0
    for s in range(0, X.shape[0], batch):
        lg = np.asarray(logits_fn(*params, X[s:s + batch]))
        correct += int(np.sum(np.argmax(lg, axis=1) == np.asarray(labels[s:s + batch])))
    return correct / X.shape[0]


def jax_loss(model):
    """The same loss in jax.numpy: ``loss(params_tuple, X, Y)`` (imports jax)."""
    import jax
    import jax.numpy as jnp

    def xent(logits, Y):
        z = logits - jnp.max(logits, axis=1, keepdims=True)
        logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
        return -jnp.sum(Y * logp) / logits.shape[0]

    if model == "logreg":
        def loss(p, X, Y):
            W, b = p
            return xent(X @ W + b, Y)
    elif model == "mlp":
        def loss(p, X, Y):
            W1, b1, W2, b2, W3, b3 = p
            h1 = jnp.maximum(X @ W1 + b1, 0.0)
            h2 = jnp.maximum(h1 @ W2 + b2, 0.0)
            return xent(h2 @ W3 + b3, Y)
    elif model == "cnn":
        def conv(x, K, c):
            y = jax.lax.conv_general_dilated(x, K, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return jnp.maximum(y + c, 0.0)

        def pool(x):
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def loss(p, X, Y):
            K1, c1, K2, c2, K3, c3, K4, c4, W5, b5, W6, b6 = p
            h = pool(conv(conv(X, K1, c1), K2, c2))
            h = pool(conv(conv(h, K3, c3), K4, c4))
            h = h.reshape((h.shape[0], -1))
            h5 = jnp.maximum(h @ W5 + b5, 0.0)
            return xent(h5 @ W6 + b6, Y)
    else:
        raise ValueError(model)
    return loss
