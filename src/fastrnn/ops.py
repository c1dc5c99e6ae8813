"""Public functional API (checked): validates, allocates, calls the kernels.

Same signatures and semantics as :mod:`fastrnn.reference`, which is the
oracle these functions are tested against.  Every argument is checked here,
before any compiled loop runs:

- array arguments are converted with :func:`numpy.asarray` (lists are fine)
  and must all share one dtype, float32 or float64; anything else is a
  ``TypeError`` naming the argument;
- wrong numbers of dimensions or shapes are a ``ValueError`` naming the
  argument, the expected and the received shape;
- non-contiguous, Fortran-ordered, negative-stride and read-only inputs are
  accepted, copied only when the kernels need C order, and never modified;
  results are fresh arrays that share no memory with the inputs.

The compiled work (:mod:`fastrnn._kernels`) runs with the GIL released, so
calls from several threads run in parallel.

The recurrence follows Keras 3's SimpleRNN (the rules, and how they were
checked, are in :mod:`fastrnn.reference.recurrence`):

- ``mask`` (B, T), bool or uint8: at a masked step the state is carried
  unchanged, ``h_t = h_{t-1}``, and the step's input gets no gradient; the
  returned states are then Keras's outputs as the JAX backend gives them (the
  TensorFlow backend outputs zeros instead at the steps before a sequence's
  first unmasked step when ``h0`` is not zero);
- ``go_backwards``: steps from the last to the first, the mask read at the
  position processed; ``h`` stays indexed by input position (Keras's
  returned sequence is ``h[:, ::-1]``, its last output ``h[:, 0]``);
- ``dropout_mask`` (B, D) and ``recurrent_dropout_mask`` (B, H): one mask
  per sequence for every step, ``z_t = (x_t dm) W + (h_{t-1} rm) U + b``;
  the state carried on is ``h_t``, never ``h_t rm``; Keras's masks hold 0
  and ``1 / (1 - rate)`` (:func:`fastrnn.reference.dropout_mask`);
- ``h0``: ``initial_state=`` / ``stateful=True``; ``rnn_backward`` returns its
  gradient.
"""
import numbers

import numpy as np

from . import _kernels

__all__ = ["rnn_forward", "rnn_backward", "dense_forward", "dense_backward",
           "mse", "mae", "adam_update"]

ACTIVATIONS = ("tanh", "relu")
_ACTIVATION_CODES = {name: _kernels.ACTIVATION_CODES[name] for name in ACTIVATIONS}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT_MAX = 2**31 - 1  # BLAS takes sizes and leading dimensions as C int


# ---------------------------------------------------------------- checking

def _float_array(name, value, dtype=None, like="x"):
    """``value`` as an ndarray of float32/float64 (and of ``dtype``, the dtype
    of the argument named ``like``, if given)."""
    array = np.asarray(value)
    if array.dtype.kind == "f" and not array.dtype.isnative:  # e.g. big-endian data from a file
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype}, but {like} has {dtype}: "
                        "all arrays must share one dtype")
    return array


def _check_shape(name, array, expected, meaning, source=""):
    """ValueError unless ``array.shape == expected``; ``meaning`` spells it,
    e.g. "(B, T, D)", and ``source`` says where its sizes come from."""
    if array.shape != tuple(expected):
        origin = f" ({source})" if source else ""
        raise ValueError(f"{name} must have shape {meaning} = {tuple(expected)}{origin}, "
                         f"got {array.shape}")


def _check_ndim(name, array, ndim, meaning):
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional with shape {meaning}, "
                         f"got {array.shape}")


def _activation_code(activation):
    if not isinstance(activation, str) or activation not in _ACTIVATION_CODES:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return _ACTIVATION_CODES[activation]


def _check_blas_sizes(*sizes):
    """BLAS counts rows and strides in C int: refuse what would overflow it."""
    if max(sizes) > _INT_MAX:
        raise ValueError(f"array too large for the BLAS kernels (a dimension or row "
                         f"stride of {max(sizes)} exceeds {_INT_MAX})")


def _c(array):
    """C-contiguous view, copying only when the layout requires it."""
    return np.ascontiguousarray(array)


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _rnn_arguments(x, kernel, recurrent_kernel, bias, h0, time_major=False):
    """Check the arguments shared by forward and backward; returns them as arrays."""
    x = _float_array("x", x)
    dtype = x.dtype
    kernel = _float_array("kernel", kernel, dtype)
    recurrent_kernel = _float_array("recurrent_kernel", recurrent_kernel, dtype)
    if bias is not None:
        bias = _float_array("bias", bias, dtype)
    if h0 is not None:
        h0 = _float_array("h0", h0, dtype)
    layout = "(T, B, D)" if time_major else "(B, T, D)"
    _check_ndim("x", x, 3, layout)
    _check_ndim("kernel", kernel, 2, "(D, H)")
    if time_major:
        T, B, D = x.shape
    else:
        B, T, D = x.shape
    H = kernel.shape[1]
    _check_shape("kernel", kernel, (D, H), "(D, H)", "D: the features of x")
    _check_shape("recurrent_kernel", recurrent_kernel, (H, H), "(H, H)",
                 "H: the units of kernel")
    if bias is not None:
        _check_shape("bias", bias, (H,), "(H,)", "H: the units of kernel")
    if h0 is not None:
        _check_shape("h0", h0, (B, H), "(B, H)", "B: the batch of x, H: the units of kernel")
    if T == 0:
        raise ValueError(f"x must have at least one time step, got shape {x.shape} (T = 0)")
    _check_blas_sizes(B * T, T * H, D, H)
    return x, kernel, recurrent_kernel, bias, h0, (B, T, D, H)


def _mask_arguments(mask, dropout_mask, recurrent_dropout_mask, dtype, B, T, D, H, time_major):
    """The step mask as C-contiguous uint8 (or None) and the dropout masks as arrays."""
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype not in (np.dtype(np.bool_), np.dtype(np.uint8)):
            raise TypeError(f"mask must be a bool or uint8 array (True/1: the step is "
                            f"processed), got dtype {mask.dtype}; use mask.astype(bool)")
        expected, meaning = ((T, B), "(T, B)") if time_major else ((B, T), "(B, T)")
        _check_ndim("mask", mask, 2, meaning)
        _check_shape("mask", mask, expected, meaning, "B, T from x")
        mask = np.ascontiguousarray(mask).view(np.uint8)
    if dropout_mask is not None:
        dropout_mask = _float_array("dropout_mask", dropout_mask, dtype)
        _check_shape("dropout_mask", dropout_mask, (B, D), "(B, D)",
                     "B: the batch of x, D: its features")
        dropout_mask = _c(dropout_mask)
    if recurrent_dropout_mask is not None:
        recurrent_dropout_mask = _float_array("recurrent_dropout_mask", recurrent_dropout_mask,
                                              dtype)
        _check_shape("recurrent_dropout_mask", recurrent_dropout_mask, (B, H), "(B, H)",
                     "B: the batch of x, H: the units of kernel")
        recurrent_dropout_mask = _c(recurrent_dropout_mask)
    return mask, dropout_mask, recurrent_dropout_mask


# ---------------------------------------------------------------- recurrence

def rnn_forward(x, kernel, recurrent_kernel, bias, h0=None, activation="tanh", *, mask=None,
                go_backwards=False, dropout_mask=None, recurrent_dropout_mask=None,
                time_major=False):
    """Run the simple recurrence over every time step (compiled).

    ``z_t = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias``,
    ``h_t = act(z_t)``, with ``h_{-1} = h0``; with Keras's step mask and
    dropout masks as described in :mod:`fastrnn.reference.recurrence`.

    Parameters
    ----------
    x : array_like of shape (B, T, D)
        Input sequences, float32 or float64; every array shares this dtype.
        (T, B, D) when ``time_major``.
    kernel : array_like of shape (D, H)
        Input weights W_x.
    recurrent_kernel : array_like of shape (H, H)
        Recurrent weights W_h.
    bias : array_like of shape (H,)
        Bias b.
    h0 : array_like of shape (B, H), optional
        Initial state; zeros when None.
    activation : {"tanh", "relu"}
    mask : array_like of bool or uint8, shape (B, T), optional
        Keras's step mask ((T, B) when ``time_major``): where it is False (0)
        the step is skipped and the state carried unchanged.  None: every
        step is processed.
    go_backwards : bool, default False
        Take the steps from the last to the first (Keras's go_backwards).
        ``h`` stays indexed by input position: the last state is ``h[:, 0]``
        and Keras's returned sequence is ``h[:, ::-1]``.
    dropout_mask : array_like of shape (B, D), optional
        Keras's input dropout mask (training with ``dropout``): multiplies
        ``x_t`` at every step.
    recurrent_dropout_mask : array_like of shape (B, H), optional
        Keras's recurrent dropout mask (training with ``recurrent_dropout``):
        multiplies the previous state where it enters ``recurrent_kernel``.
    time_major : bool, default False
        x, h (and the mask) are laid out (T, B, ...) instead of (B, T, ...).

    Returns
    -------
    h : ndarray of shape (B, T, H), or (T, B, H) when ``time_major``
        ``h[:, t]`` is the hidden state after the step that reads ``x[:, t]``
        (at a masked step, the state carried through it); a new array.

    Raises
    ------
    TypeError
        An argument is not float32/float64 or the dtypes differ; a mask that
        is not bool or uint8; a flag that is not a bool.
    ValueError
        Wrong shapes (each naming the argument), T = 0, or an unknown
        activation.
    """
    code = _activation_code(activation)
    go_backwards = _check_flag("go_backwards", go_backwards)
    time_major = _check_flag("time_major", time_major)
    x, kernel, recurrent_kernel, bias, h0, (B, T, D, H) = _rnn_arguments(
        x, kernel, recurrent_kernel, _required("bias", bias), h0, time_major)
    mask, dropout_mask, recurrent_dropout_mask = _mask_arguments(
        mask, dropout_mask, recurrent_dropout_mask, x.dtype, B, T, D, H, time_major)
    h = np.empty(x.shape[:2] + (H,), dtype=x.dtype)
    if B == 0:
        return h
    # work space for a transposed W_h, which makes the step products faster at large H
    recurrent_kernel_t = (np.empty((H, H), dtype=x.dtype)
                          if H >= _kernels.TRANSPOSED_STEP_MIN_UNITS else None)
    x_work = np.empty(B * T * D, dtype=x.dtype) if dropout_mask is not None else None
    h_work = np.empty(B * H, dtype=x.dtype) if recurrent_dropout_mask is not None else None
    _kernels.rnn_forward(_c(x), _c(kernel), _c(recurrent_kernel), _c(bias),
                         None if h0 is None else _c(h0), h, recurrent_kernel_t, code,
                         mask, dropout_mask, recurrent_dropout_mask, x_work, h_work,
                         time_major, go_backwards)
    return h


def rnn_backward(x, h, kernel, recurrent_kernel, dh, h0=None, activation="tanh",
                 input_grad=True, *, mask=None, go_backwards=False, dropout_mask=None,
                 recurrent_dropout_mask=None, time_major=False):
    """Gradients of a scalar loss through the recurrence (BPTT, compiled).

    Parameters
    ----------
    x : array_like of shape (B, T, D)
        The inputs given to :func:`rnn_forward` ((T, B, D) when ``time_major``).
    h : array_like of shape (B, T, H)
        The states :func:`rnn_forward` returned.
    kernel : array_like of shape (D, H)
    recurrent_kernel : array_like of shape (H, H)
    dh : array_like of shape (B, T, H)
        dLoss/dh_t for every step, as seen from outside the recurrence (zeros
        except the last step when only the last state feeds the loss), by
        input position like ``h``.
    h0 : array_like of shape (B, H), optional
        The initial state used in the forward pass; zeros when None.
    activation : {"tanh", "relu"}
    input_grad : bool, default True
        False skips ``dx`` (returned as None): one (B*T, H) x (H, D) product
        less, for a layer whose input needs no gradient (the first layer).
    mask, go_backwards, dropout_mask, recurrent_dropout_mask, time_major
        As given to :func:`rnn_forward`.

    Returns
    -------
    dx : ndarray of shape (B, T, D), or None when ``input_grad`` is False
        Zero at masked steps.
    dkernel : ndarray of shape (D, H)
    drecurrent_kernel : ndarray of shape (H, H)
    dbias : ndarray of shape (H,)
    dh0 : ndarray of shape (B, H)
        Returned also when ``h0`` is None (the gradient at a zero state).

    Raises
    ------
    TypeError
        As :func:`rnn_forward`; ``input_grad`` not a bool.
    ValueError
        Wrong shapes, T = 0, or an unknown activation.

    Notes
    -----
    See :func:`fastrnn.reference.rnn_backward` for the recurrence.  The
    kernel stores ``dz_t`` for every step while walking time backwards, then
    forms each weight gradient with one GEMM over all B*T rows.
    """
    code = _activation_code(activation)
    if not isinstance(input_grad, (bool, np.bool_)):
        raise TypeError(f"input_grad must be a bool, got {type(input_grad).__name__}")
    go_backwards = _check_flag("go_backwards", go_backwards)
    time_major = _check_flag("time_major", time_major)
    x, kernel, recurrent_kernel, _, h0, (B, T, D, H) = _rnn_arguments(
        x, kernel, recurrent_kernel, None, h0, time_major)
    h = _float_array("h", h, x.dtype)
    dh = _float_array("dh", dh, x.dtype)
    states, meaning = (((T, B, H), "(T, B, H)") if time_major else ((B, T, H), "(B, T, H)"))
    _check_shape("h", h, states, meaning, "B, T from x, H: the units of kernel")
    _check_shape("dh", dh, states, meaning, "B, T from x, H: the units of kernel")
    mask, dropout_mask, recurrent_dropout_mask = _mask_arguments(
        mask, dropout_mask, recurrent_dropout_mask, x.dtype, B, T, D, H, time_major)
    dtype = x.dtype
    dx = np.empty(x.shape, dtype=dtype) if input_grad else None
    dkernel = np.zeros((D, H), dtype=dtype)
    drecurrent_kernel = np.zeros((H, H), dtype=dtype)
    dbias = np.zeros(H, dtype=dtype)
    dh0 = np.zeros((B, H), dtype=dtype)
    if B == 0:
        return dx, dkernel, drecurrent_kernel, dbias, dh0
    dz = np.empty(states, dtype=dtype)     # work space: dLoss/dz_t for every step
    carry = np.empty((B, H), dtype=dtype)  # work space: dz_{t+1} W_h^T
    recurrent_kernel_t = np.empty((H, H), dtype=dtype)
    x_work = np.empty(B * T * D, dtype=dtype) if dropout_mask is not None else None
    h_work = np.empty(B * T * H, dtype=dtype) if recurrent_dropout_mask is not None else None
    _kernels.rnn_backward(_c(x), _c(h), _c(kernel), _c(recurrent_kernel), _c(dh),
                          None if h0 is None else _c(h0), dz, dx, dkernel,
                          drecurrent_kernel, dbias, dh0, carry, recurrent_kernel_t, code,
                          mask, dropout_mask, recurrent_dropout_mask, x_work, h_work,
                          time_major, go_backwards)
    return dx, dkernel, drecurrent_kernel, dbias, dh0


def _required(name, value):
    if value is None:
        raise TypeError(f"{name} must be a float32 or float64 array, got None")
    return value


# ---------------------------------------------------------------- dense

def _dense_arguments(x, kernel):
    x = _float_array("x", x)
    kernel = _float_array("kernel", kernel, x.dtype)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension, shape (..., D), got {x.shape}")
    _check_ndim("kernel", kernel, 2, "(D, U)")
    if kernel.shape[0] != x.shape[-1]:
        raise ValueError(f"kernel must have shape (D, U) with D = {x.shape[-1]} "
                         f"(the last axis of x), got {kernel.shape}")
    return x, kernel


def dense_forward(x, kernel, bias):
    """Affine map on the last axis: ``y = x @ kernel + bias`` (compiled).

    Parameters
    ----------
    x : array_like of shape (..., D)
    kernel : array_like of shape (D, U)
    bias : array_like of shape (U,)

    Returns
    -------
    y : ndarray of shape (..., U)
    """
    x, kernel = _dense_arguments(x, kernel)
    D, U = kernel.shape
    bias = _float_array("bias", _required("bias", bias), x.dtype)
    _check_shape("bias", bias, (U,), "(U,)", "U: the units of kernel")
    lead = x.shape[:-1]
    N = int(np.prod(lead, dtype=np.int64))
    _check_blas_sizes(N, D, U)
    y = np.empty(lead + (U,), dtype=x.dtype)
    _kernels.dense_forward(_c(x).reshape(N, D), _c(kernel), _c(bias), y.reshape(N, U))
    return y


def dense_backward(x, kernel, dy):
    """Gradients of :func:`dense_forward` (compiled).

    Parameters
    ----------
    x : array_like of shape (..., D)
    kernel : array_like of shape (D, U)
    dy : array_like of shape (..., U)
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
    x, kernel = _dense_arguments(x, kernel)
    D, U = kernel.shape
    dy = _float_array("dy", dy, x.dtype)
    _check_shape("dy", dy, x.shape[:-1] + (U,), "(..., U)",
                 "the leading axes of x, U: the units of kernel")
    N = int(np.prod(x.shape[:-1], dtype=np.int64))
    _check_blas_sizes(N, D, U)
    dx = np.empty(x.shape, dtype=x.dtype)
    dkernel = np.empty((D, U), dtype=x.dtype)
    dbias = np.empty(U, dtype=x.dtype)
    dz = np.array(dy, dtype=x.dtype, order="C").reshape(N, U)  # the kernel works in place
    _kernels.dense_backward(_c(x).reshape(N, D), _c(kernel), dz, dx.reshape(N, D),
                            dkernel, dbias)
    return dx, dkernel, dbias


# ---------------------------------------------------------------- losses

def _loss_arguments(y_true, y_pred):
    y_pred = _float_array("y_pred", y_pred)
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "fiub":
        raise TypeError(f"y_true must be a real numeric array, got dtype {y_true.dtype}")
    y_true = y_true.astype(y_pred.dtype, copy=False)
    # a target of shape (N,) stands against an output of shape (N, 1), as in Keras
    if y_true.shape != y_pred.shape and y_true.shape + (1,) == y_pred.shape:
        y_true = y_true[..., None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true must have shape {y_pred.shape} (that of y_pred), "
                         f"got {y_true.shape}")
    if y_pred.size == 0:
        raise ValueError("y_pred is empty: the mean of no elements is undefined")
    return y_true, y_pred


def mse(y_true, y_pred):
    """Mean squared error over all elements, and its gradient.

    Parameters
    ----------
    y_true : array_like of shape (N, ...) or, against (N, 1), (N,)
    y_pred : array_like of shape (N, ...), float32 or float64

    Returns
    -------
    loss : float
        ``mean((y_pred - y_true)**2)``
    dy_pred : ndarray, shape and dtype of y_pred
        ``2 (y_pred - y_true) / n`` with n the number of elements.
    """
    y_true, y_pred = _loss_arguments(y_true, y_pred)
    diff = y_pred - y_true
    return float(np.mean(diff * diff)), 2 * diff / diff.size


def mae(y_true, y_pred):
    """Mean absolute error over all elements, and its (sub)gradient.

    Parameters
    ----------
    y_true : array_like of shape (N, ...) or, against (N, 1), (N,)
    y_pred : array_like of shape (N, ...), float32 or float64

    Returns
    -------
    loss : float
        ``mean(|y_pred - y_true|)``
    dy_pred : ndarray, shape and dtype of y_pred
        ``sign(y_pred - y_true) / n`` (0 where they are equal).
    """
    y_true, y_pred = _loss_arguments(y_true, y_pred)
    diff = y_pred - y_true
    return float(np.mean(np.abs(diff))), np.sign(diff) / diff.size


# ---------------------------------------------------------------- Adam

def _check_hyperparameter(name, value, low, high, open_low=False):
    """A finite real number in [low, high) (or (low, high) with open_low)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_low = value <= low if open_low else value < low
    if not np.isfinite(value) or too_low or (high is not None and value >= high):
        bounds = f"{'(' if open_low else '['}{low:g}, {'inf' if high is None else f'{high:g}'})"
        raise ValueError(f"{name} must be finite and in {bounds}, got {value}")


def adam_update(param, grad, m, v, step, learning_rate=0.001, beta_1=0.9,
                beta_2=0.999, epsilon=1e-7):
    """One Keras-style Adam step, in place, in one compiled pass.

    Parameters
    ----------
    param : ndarray, C-contiguous and writeable, float32 or float64
        Updated in place (typically a model's flat parameter buffer).
    grad : array_like, shape and dtype of param
    m, v : ndarray, shape and dtype of param, C-contiguous and writeable
        First and second moment estimates, updated in place (zeros at first).
    step : int
        1 for the first update, 2 for the second, ...
    learning_rate, beta_1, beta_2, epsilon : float

    Notes
    -----
    As :func:`fastrnn.reference.adam_update`::

        lr_t  = lr * sqrt(1 - beta_2**step) / (1 - beta_1**step)
        m     = beta_1 m + (1 - beta_1) g
        v     = beta_2 v + (1 - beta_2) g^2
        param = param - lr_t m / (sqrt(v) + epsilon)
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer, got {step!r}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    for name, value in (("param", param), ("m", m), ("v", v)):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array (it is updated in place), "
                            f"got {type(value).__name__}")
    _float_array("param", param)
    for name, value in (("grad", grad), ("m", m), ("v", v)):
        _float_array(name, value, param.dtype, like="param")
    grad = np.asarray(grad)
    for name, value in (("grad", grad), ("m", m), ("v", v)):
        _check_shape(name, value, param.shape, "(the shape of param)")
    for name, value in (("param", param), ("m", m), ("v", v)):
        if not value.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (it is updated in place)")
        if not value.flags.writeable:
            raise ValueError(f"{name} is read-only, but it is updated in place")
    if np.shares_memory(m, v) or np.shares_memory(param, m) or np.shares_memory(param, v):
        raise ValueError("param, m and v must be separate buffers")
    _check_hyperparameter("learning_rate", learning_rate, 0.0, None)
    _check_hyperparameter("beta_1", beta_1, 0.0, 1.0)
    _check_hyperparameter("beta_2", beta_2, 0.0, 1.0)
    # epsilon > 0: a zero gradient at the first step would otherwise give 0/0
    _check_hyperparameter("epsilon", epsilon, 0.0, None, open_low=True)
    if param.size == 0:
        return
    lr_t = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    _kernels.adam_update(param.reshape(-1), _c(grad).reshape(-1), m.reshape(-1),
                         v.reshape(-1), float(lr_t), float(beta_1), float(beta_2),
                         float(epsilon))


# -- keras.ops's conversions (so ``keras.ops.convert_to_numpy(...)`` runs unchanged) -------
def convert_to_numpy(x):
    """``keras.ops.convert_to_numpy``: ``x`` (a weight, a prediction, a number) as a NumPy
    array (a copy)."""
    return np.array(x)


def convert_to_tensor(x, dtype=None):
    """``keras.ops.convert_to_tensor``: fastrnn's tensors are NumPy arrays."""
    return np.asarray(x, dtype=dtype)


def expand_dims(x, axis):
    """``keras.ops.expand_dims`` on arrays (inside a ``Lambda``, fastrnn reads it as a reshape)."""
    return np.expand_dims(np.asarray(x), axis)


def squeeze(x, axis=None):
    """``keras.ops.squeeze`` on arrays (inside a ``Lambda``: a reshape)."""
    return np.squeeze(np.asarray(x), axis)


__all__ += ["convert_to_numpy", "convert_to_tensor", "expand_dims", "squeeze"]
