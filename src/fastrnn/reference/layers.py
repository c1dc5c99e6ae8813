"""The layers without recurrence, in NumPy: forward and backward of each (the oracle).

Arrays are batch-major, as Keras's: (B, F), (B, T, F).  Each backward takes
dLoss/d(output) and returns dLoss/d(input) (and the weight gradients);
Keras 3 defines every forward computed here:

- ``Activation(name)``: ``act(x)`` (softmax over the last axis).
- ``Dropout(rate)``: inverted dropout in training, ``x * mask`` where the
  mask is ``1 / (1 - rate)`` for kept and 0 for dropped elements (all 0 for
  rate 1); the identity otherwise.  fastrnn's masks come from a
  counter-based stream (:func:`dropout_mask`), so the engine's are known here.
- ``Flatten`` / ``Reshape(target_shape)``: each sample's values in row-major
  order, re-cut.
- ``RepeatVector(n)``: (B, F) -> (B, n, F).
- ``Concatenate(axis)``, ``Add``, ``Subtract``, ``Multiply``, ``Average``.
- ``Embedding(input_dim, output_dim)``: ``table[int(x)]`` (indices truncated
  toward zero, as Keras's cast to int32); its gradient scatter-adds rows.
"""
import numpy as np

from .activations import activate, activation_grad

__all__ = [
    "activation_forward", "activation_backward", "dropout_mask", "reshape_forward",
    "reshape_backward", "repeat_vector_forward", "repeat_vector_backward",
    "concatenate_forward", "concatenate_backward", "merge_forward", "merge_backward",
    "embedding_forward", "embedding_backward",
]


def activation_forward(x, activation):
    """``act(x)``; any Keras activation name."""
    return activate(activation, x)


def activation_backward(x, y, dy, activation):
    """dLoss/dx for ``y = act(x)`` given dLoss/dy."""
    return activation_grad(activation, x, y, dy)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    # splitmix64's finaliser, on uint64 arrays (which wrap around silently)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(shape, rate, seed, counter=0, dtype=np.float64):
    """The dropout mask the engine draws for a batch of ``shape``.

    Parameters
    ----------
    shape : tuple
        The batch's shape, (B, F) or (B, T, F).
    rate : float in [0, 1]
    seed : int
        The layer's seed (any int64).
    counter : int
        How many numbers the layer drew before (the engine counts every
        element of every training batch).
    dtype : dtype
        Of the returned mask.

    Returns
    -------
    ndarray of ``shape``
        ``1 / (1 - rate)`` where kept, 0 where dropped.

    Notes
    -----
    Element i (batch-major) is kept when
    ``u_i = mix64(mix64(seed) + (counter + i + 1) * 0x9E3779B97F4A7C15) / 2**64``
    (the top 53 bits) is below ``1 - rate``: splitmix64 from position ``counter``.
    """
    n = int(np.prod(shape, dtype=np.int64))
    key = _mix64(np.array([seed], dtype=np.int64).view(np.uint64))
    i = np.arange(n, dtype=np.uint64)
    z = _mix64(key + (np.uint64(counter) + i + np.uint64(1)) * _GOLDEN)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)
    keep = 1.0 - rate
    scale = np.asarray(1.0 / keep if keep > 0 else 0.0, dtype=dtype)
    return np.where(u < keep, scale, np.zeros((), dtype)).reshape(shape).astype(dtype)


def reshape_forward(x, shape):
    """Each sample's values re-cut to ``shape`` (no batch axis): Flatten, Reshape."""
    return x.reshape((x.shape[0],) + tuple(shape))


def reshape_backward(dy, input_shape):
    """dLoss/dx for :func:`reshape_forward`; ``input_shape`` without the batch axis."""
    return dy.reshape((dy.shape[0],) + tuple(input_shape))


def repeat_vector_forward(x, n):
    """(B, F) -> (B, n, F): the vector at every step."""
    return np.repeat(x[:, None, :], n, axis=1)


def repeat_vector_backward(dy):
    """dLoss/dx: the sum over the steps."""
    return dy.sum(axis=1)


def concatenate_forward(xs, axis=-1):
    return np.concatenate(xs, axis=axis)


def concatenate_backward(dy, xs, axis=-1):
    """One slice of dy per input."""
    cuts = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return np.split(dy, cuts, axis=axis)


def merge_forward(kind, xs):
    """``add``, ``subtract`` (two inputs), ``multiply`` or ``average`` of same-shaped arrays."""
    if kind == "add":
        return sum(xs[1:], xs[0].copy())
    if kind == "subtract":
        return xs[0] - xs[1]
    if kind == "multiply":
        out = xs[0].copy()
        for x in xs[1:]:
            out = out * x
        return out
    if kind == "average":
        return sum(xs[1:], xs[0].copy()) / len(xs)
    raise ValueError(f"unknown merge {kind!r}")


def merge_backward(kind, dy, xs):
    """dLoss/d(each input) of :func:`merge_forward`."""
    if kind == "add":
        return [dy.copy() for _ in xs]
    if kind == "subtract":
        return [dy.copy(), -dy]
    if kind == "average":
        return [dy / len(xs) for _ in xs]
    if kind == "multiply":
        grads = []
        for j in range(len(xs)):
            g = dy.copy()
            for k, x in enumerate(xs):
                if k != j:
                    g = g * x
            grads.append(g)
        return grads
    raise ValueError(f"unknown merge {kind!r}")


def embedding_forward(indices, table):
    """``table[int(indices)]``: (B, L) -> (B, L, E); indices truncated toward zero."""
    return table[np.asarray(indices).astype(np.int64)]


def embedding_backward(indices, dy, table_shape):
    """dLoss/dtable: the rows of dy added at their indices (a scatter-add)."""
    dtable = np.zeros(table_shape, dtype=dy.dtype)
    np.add.at(dtable, np.asarray(indices).astype(np.int64).reshape(-1),
              dy.reshape(-1, table_shape[1]))
    return dtable
