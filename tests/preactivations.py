"""Pre-activations, recomputed with the NumPy reference, for kink-aware gradient checks.

Each function reads the weights where they live at the moment it is called,
so ``regions=lambda: ...`` passed to :func:`finite_diff.check_gradient` sees
the perturbed coordinate.
"""
import numpy as np

import fastrnn
from fastrnn import reference as ref

from finite_diff import kink_regions


def rnn_preactivations(x, kernel, recurrent_kernel, bias, h0=None, activation="tanh"):
    """``z_t = x_t W_x + h_{t-1} W_h + b`` of :func:`fastrnn.reference.rnn_forward`.

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
    kernel : ndarray of shape (D, H)
    recurrent_kernel : ndarray of shape (H, H)
    bias : ndarray of shape (H,)
    h0 : ndarray of shape (B, H), optional
    activation : str

    Returns
    -------
    z : ndarray of shape (B, T, H)
        The pre-activation of every state.
    """
    h = ref.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation)
    first = np.zeros_like(h[:, :1]) if h0 is None else h0[:, None]
    h_prev = np.concatenate([first, h[:, :-1]], axis=1)
    return x @ kernel + h_prev @ recurrent_kernel + bias


def _activate(activation, z):
    if activation in (None, "linear"):
        return z
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if activation == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(f"preactivations: no reference for activation {activation!r}")


def sequential_preactivations(model, x):
    """``[(activation, z), ...]`` of every layer of a Sequential of SimpleRNN and Dense.

    Parameters
    ----------
    model : fastrnn.Sequential
        Read through its public API (``layers``, ``get_weights``, layer
        attributes) only.
    x : ndarray of shape (B, T, D)

    Returns
    -------
    list of (str, ndarray)
        One pair per layer, in order: its activation and its pre-activations.
    """
    pairs = []
    out = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        weights = [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]
        if isinstance(layer, fastrnn.layers.SimpleRNN):
            kernel, recurrent_kernel = weights[:2]
            bias = weights[2] if layer.use_bias else np.zeros(layer.units)
            seq = out[:, ::-1] if layer.go_backwards else out
            z = rnn_preactivations(seq, kernel, recurrent_kernel, bias, None, layer.activation)
            h = _activate(layer.activation, z)
            out = h if layer.return_sequences else h[:, -1]
        elif isinstance(layer, fastrnn.layers.Dense):
            bias = weights[1] if layer.use_bias else np.zeros(layer.units)
            z = ref.dense_forward(out, weights[0], bias)
            out = _activate(layer.activation, z)
        else:
            raise TypeError(f"sequential_preactivations: no reference for {type(layer).__name__}")
        pairs.append((layer.activation, z))
    return pairs


def sequential_regions(model, x):
    """A ``regions`` function for :func:`finite_diff.check_gradient` over a whole model."""
    return lambda: [kink_regions(activation, z)
                    for activation, z in sequential_preactivations(model, x)]
