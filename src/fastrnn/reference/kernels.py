"""Pure-NumPy reference of every fastrnn kernel.

This module is the oracle the compiled kernels in :mod:`fastrnn.ops` are tested
against, and the readable explanation of backpropagation through time (BPTT).
It favours clarity over speed: one loop over time steps, no in-place tricks.

Conventions (shared with :mod:`fastrnn.ops`)
--------------------------------------------
Arrays are batch-major: ``B`` batch, ``T`` time steps, ``D`` input features,
``H`` units.  Weights use Keras's layout: ``kernel`` (D, H),
``recurrent_kernel`` (H, H) and one ``bias`` (H,).  The recurrence is::

    z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias
    h_t = act(z_t)                      act is tanh or relu

The reference does no argument checking beyond what NumPy itself does; the
public, checked API is :mod:`fastrnn.ops`.
"""
import numpy as np

from .optimizers import adam_step
from .recurrence import recurrence_backward, recurrence_forward

__all__ = [
    "ACTIVATIONS",
    "rnn_forward",
    "rnn_backward",
    "dense_forward",
    "dense_backward",
    "mse",
    "mae",
    "adam_update",
]

ACTIVATIONS = ("tanh", "relu")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, activation="tanh", *, mask=None,
                go_backwards=False, dropout_mask=None, recurrent_dropout_mask=None):
    """Run the simple recurrence over every time step.

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
        Input sequences.
    kernel : ndarray of shape (D, H)
        Input weights W_x.
    recurrent_kernel : ndarray of shape (H, H)
        Recurrent weights W_h.
    bias : ndarray of shape (H,)
        Bias b.
    h0 : ndarray of shape (B, H), optional
        Initial state; zeros when None.
    activation : {"tanh", "relu"}
    mask : ndarray of shape (B, T), optional
        Keras's step mask: a masked step carries the state unchanged.
    go_backwards : bool
        Take the steps from the last to the first (``h`` stays indexed by
        input position).
    dropout_mask : ndarray of shape (B, D), optional
        Keras's input dropout mask, applied at every step.
    recurrent_dropout_mask : ndarray of shape (B, H), optional
        Keras's recurrent dropout mask, applied to the previous state.

    Returns
    -------
    h : ndarray of shape (B, T, H)
        ``h[:, t]`` is the hidden state after step ``t``.

    Notes
    -----
    Without masks, step by step: ``z_t = x_t W_x + h_{t-1} W_h + b``,
    ``h_t = act(z_t)``.  The masks' rules (Keras's) are those of
    :func:`fastrnn.reference.recurrence.recurrence_forward`, which this calls.
    """
    _check_activation(activation)
    return recurrence_forward(x, kernel, recurrent_kernel, bias, h0, activation, mask=mask,
                              go_backwards=go_backwards, dropout_mask=dropout_mask,
                              recurrent_dropout_mask=recurrent_dropout_mask)


def rnn_backward(x, h, kernel, recurrent_kernel, dh, h0=None, activation="tanh", *, mask=None,
                 go_backwards=False, dropout_mask=None, recurrent_dropout_mask=None):
    """Gradients of a scalar loss through the recurrence (BPTT).

    Parameters
    ----------
    x : ndarray of shape (B, T, D)
        The inputs given to :func:`rnn_forward`.
    h : ndarray of shape (B, T, H)
        The states :func:`rnn_forward` returned.
    kernel : ndarray of shape (D, H)
    recurrent_kernel : ndarray of shape (H, H)
    dh : ndarray of shape (B, T, H)
        dLoss/dh_t for every step, as seen from outside the recurrence (zeros
        except the last step when only the last state feeds the loss).
    h0 : ndarray of shape (B, H), optional
        The initial state used in the forward pass; zeros when None.
    activation : {"tanh", "relu"}
    mask, go_backwards, dropout_mask, recurrent_dropout_mask
        As given to :func:`rnn_forward`.

    Returns
    -------
    dx : ndarray of shape (B, T, D)
    dkernel : ndarray of shape (D, H)
    drecurrent_kernel : ndarray of shape (H, H)
    dbias : ndarray of shape (H,)
    dh0 : ndarray of shape (B, H)

    Notes
    -----
    h_t influences the loss directly (``dh[:, t]``) and through z_{t+1}, so
    walking time backwards::

        g_t  = dh_t + dz_{t+1} @ W_h.T      (g_T = dh_T)
        dz_t = g_t * act'(z_t)

    and every weight gradient is a sum over steps of an outer product with
    dz_t: ``dW_x = sum_t x_t.T dz_t``, ``dW_h = sum_t h_{t-1}.T dz_t``,
    ``db = sum_t dz_t``; ``dx_t = dz_t W_x.T`` and ``dh0 = dz_1 W_h.T``.
    With masks see :func:`fastrnn.reference.recurrence.recurrence_backward`
    (which this calls; tanh' and relu' come from h, so no bias is needed).
    """
    _check_activation(activation)
    return recurrence_backward(x, h, kernel, recurrent_kernel, dh, None, h0, activation,
                               mask=mask, go_backwards=go_backwards, dropout_mask=dropout_mask,
                               recurrent_dropout_mask=recurrent_dropout_mask)


def dense_forward(x, kernel, bias):
    """Affine map on the last axis: ``y = x @ kernel + bias``.

    Parameters
    ----------
    x : ndarray of shape (..., D)
    kernel : ndarray of shape (D, U)
    bias : ndarray of shape (U,)

    Returns
    -------
    y : ndarray of shape (..., U)
    """
    return x @ kernel + bias


def dense_backward(x, kernel, dy):
    """Gradients of :func:`dense_forward`.

    Parameters
    ----------
    x : ndarray of shape (..., D)
    kernel : ndarray of shape (D, U)
    dy : ndarray of shape (..., U)
        dLoss/dy.

    Returns
    -------
    dx : ndarray of shape (..., D)
        ``dy @ kernel.T``
    dkernel : ndarray of shape (D, U)
        ``x.T @ dy`` summed over all leading axes.
    dbias : ndarray of shape (U,)
        ``dy`` summed over all leading axes.
    """
    D, U = kernel.shape
    x2 = x.reshape(-1, D)
    dy2 = dy.reshape(-1, U)
    return dy @ kernel.T, x2.T @ dy2, dy2.sum(axis=0)


def _align_target(y_true, y_pred):
    """Let a target of shape (N,) stand against an output of shape (N, 1)."""
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    if y_true.shape != y_pred.shape and y_true.shape + (1,) == y_pred.shape:
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true has shape {y_true.shape}, expected {y_pred.shape} to match y_pred"
        )
    return y_true


def mse(y_true, y_pred):
    """Mean squared error over all elements, and its gradient.

    Parameters
    ----------
    y_true : ndarray of shape (N, ...) or, against (N, 1), (N,)
    y_pred : ndarray of shape (N, ...)

    Returns
    -------
    loss : float
        ``mean((y_pred - y_true)**2)``
    dy_pred : ndarray, shape of y_pred
        ``2 (y_pred - y_true) / n`` with n the number of elements.
    """
    diff = y_pred - _align_target(y_true, y_pred)
    return float(np.mean(diff * diff)), 2 * diff / diff.size


def mae(y_true, y_pred):
    """Mean absolute error over all elements, and its (sub)gradient.

    Parameters
    ----------
    y_true : ndarray of shape (N, ...) or, against (N, 1), (N,)
    y_pred : ndarray of shape (N, ...)

    Returns
    -------
    loss : float
        ``mean(|y_pred - y_true|)``
    dy_pred : ndarray, shape of y_pred
        ``sign(y_pred - y_true) / n`` (0 where they are equal).
    """
    diff = y_pred - _align_target(y_true, y_pred)
    return float(np.mean(np.abs(diff))), np.sign(diff) / diff.size


def adam_update(param, grad, m, v, step, learning_rate=0.001, beta_1=0.9,
                beta_2=0.999, epsilon=1e-7):
    """One Adam step in Keras's formulation, in place.

    Parameters
    ----------
    param : ndarray
        Updated in place.
    grad : ndarray, shape of param
    m, v : ndarray, shape of param
        First and second moment estimates, updated in place (zeros at first).
    step : int
        1 for the first update, 2 for the second, ...
    learning_rate, beta_1, beta_2, epsilon : float

    Notes
    -----
    Keras folds the bias corrections into the step size and adds epsilon to
    the uncorrected sqrt(v)::

        lr_t  = lr * sqrt(1 - beta_2**step) / (1 - beta_1**step)
        m     = beta_1 m + (1 - beta_1) g
        v     = beta_2 v + (1 - beta_2) g^2
        param = param - lr_t m / (sqrt(v) + epsilon)
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    # One formula for Adam: the optimizer reference's (Keras's iterations = step - 1).
    new_param, state = adam_step(param, grad, {"m": m, "v": v}, step - 1, learning_rate,
                                 beta_1, beta_2, epsilon)
    m[...] = state["m"]
    v[...] = state["v"]
    param[...] = new_param
