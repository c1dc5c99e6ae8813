"""Losses: mean squared and mean absolute error, each giving its value and gradient.

Both are means over **all** elements of the batch, as in Keras: for a batch of
B samples with output shape (B, U) the loss is ``sum(...) / (B * U)``.  A loss
object is called as ``loss(y_true, y_pred) -> (value, dloss_dy_pred)``; the
arithmetic is :func:`fastrnn.ops.mse` / :func:`fastrnn.ops.mae`.
"""
from . import ops

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "mse", "mae", "get"]


class Loss:
    """Base class: ``__call__(y_true, y_pred) -> (float, ndarray like y_pred)``."""

    name = "loss"

    def __call__(self, y_true, y_pred):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2)`` over all elements; gradient ``2 (y_pred - y_true) / n``."""

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        """Value and gradient.

        Parameters
        ----------
        y_true : ndarray, shape of y_pred (or (N,) against (N, 1))
        y_pred : ndarray of shape (N, ...)

        Returns
        -------
        loss : float
        dy_pred : ndarray, shape of y_pred
        """
        return ops.mse(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)`` over all elements; gradient ``sign(y_pred - y_true) / n``."""

    name = "mean_absolute_error"

    def __call__(self, y_true, y_pred):
        """Value and (sub)gradient; see :class:`MeanSquaredError`."""
        return ops.mae(y_true, y_pred)


mse = MeanSquaredError()
mae = MeanAbsoluteError()

_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "MeanAbsoluteError": MeanAbsoluteError,
}


def get(identifier):
    """A :class:`Loss` from ``"mse"``/``"mae"`` (or their long names) or an instance.

    Plain callables are refused: fastrnn needs the gradient as well as the value.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"loss: unknown loss {identifier!r}; known: "
                             f"{', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[identifier]()
    raise TypeError(f"loss must be 'mse', 'mae' or a fastrnn.losses.Loss, "
                    f"got {type(identifier).__name__}")
