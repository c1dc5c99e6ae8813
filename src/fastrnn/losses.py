"""Losses, as ``keras.losses``: descriptions the compiled engine computes.

``compile(loss=...)`` takes a name (``"mse"``, ``"mean_squared_error"``), a
loss object (``MeanSquaredError()``) or one of this module's functions
(``fastrnn.losses.mse``).  The engine computes the loss and its gradient
inside the compiled training step.  Reduction is Keras's default
"sum_over_batch_size": the mean over every output element (samples, and time
steps for a per-step output).

Called directly, as in Keras: a loss object returns the reduced loss (a
float), a loss function returns the per-sample loss (the mean over the last
axis).
"""
import numpy as np

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "mse", "mae",
           "mean_squared_error", "mean_absolute_error", "get"]


def _pair(y_true, y_pred):
    y_pred = np.asarray(y_pred, dtype=float)
    y_true = np.asarray(y_true, dtype=float)
    if y_true.shape != y_pred.shape and y_true.shape + (1,) == y_pred.shape:
        y_true = y_true.reshape(y_pred.shape)      # (N,) against (N, 1), as Keras
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    return y_true, y_pred


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error over the last axis: ``mean((y_pred - y_true)**2, -1)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.mean((y_pred - y_true) ** 2, axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error over the last axis: ``mean(|y_pred - y_true|, -1)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.mean(np.abs(y_pred - y_true), axis=-1)


mse = mean_squared_error
mae = mean_absolute_error


class Loss:
    """Base class: a named loss the engine knows how to compute.

    Calling it gives the reduced loss (the mean over all elements).
    """

    name = "loss"
    _engine_name = None
    _function = None

    def __call__(self, y_true, y_pred):
        return float(np.mean(type(self)._function(y_true, y_pred)))

    def get_config(self):
        return {"name": self.name, "reduction": "sum_over_batch_size"}

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2)`` over all elements; the engine's gradient ``2 (y_pred - y_true) / n``."""

    name = "mean_squared_error"
    _engine_name = "mse"
    _function = staticmethod(mean_squared_error)


class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|)`` over all elements; the engine's gradient ``sign(y_pred - y_true) / n``."""

    name = "mean_absolute_error"
    _engine_name = "mae"
    _function = staticmethod(mean_absolute_error)


_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "MeanAbsoluteError": MeanAbsoluteError,
}
_BY_FUNCTION = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError}


def get(identifier):
    """A :class:`Loss` from a name, a loss function of this module, or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"loss: unknown loss {identifier!r}; known: "
                             f"{', '.join(sorted(_BY_NAME))}")
        return _BY_NAME[identifier]()
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    raise TypeError(f"loss must be a name ({', '.join(sorted(_BY_NAME))}), a "
                    f"fastrnn.losses function or a fastrnn.losses.Loss, got {identifier!r}")
