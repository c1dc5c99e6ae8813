"""Public functional API (checked): validates, allocates, calls the kernels.

INTERIM: until the compiled recurrence lands (kernels issue), the recurrence
functions delegate to :mod:`fastrnn.reference`; the signatures are final.
"""
import numpy as np

from . import _kernels, reference

__all__ = ["rnn_forward", "rnn_backward", "dense_forward", "dense_backward",
           "mse", "mae", "adam_update"]

rnn_forward = reference.rnn_forward
rnn_backward = reference.rnn_backward
dense_forward = reference.dense_forward
dense_backward = reference.dense_backward
mse = reference.mse
mae = reference.mae


def adam_update(param, grad, m, v, step, learning_rate=0.001, beta_1=0.9,
                beta_2=0.999, epsilon=1e-7):
    """One Keras-style Adam step on flat contiguous buffers, in place (compiled)."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if param.size == 0:
        return
    lr_t = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    _kernels.adam_update(param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
                         lr_t, beta_1, beta_2, epsilon)
