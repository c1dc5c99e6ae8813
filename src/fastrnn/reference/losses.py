"""Pure-NumPy reference of Keras 3's losses, their reduction and gradients.

The oracle the compiled losses are tested against.  Every number here is the
one Keras 3 computes (``keras/src/losses/losses.py``, ``loss.py`` and the JAX
backend's ``nn.py``), checked against values recorded from Keras 3.15 with JAX
(``tests/fixtures/keras/losses_metrics.npz``, made by
``tools/keras_fixtures/losses_metrics.py``).

Conventions
-----------
Per-sample losses.
    ``<name>(y_true, y_pred, **options)`` returns what ``keras.losses.<name>``
    returns: the loss reduced over the last axis (the mean for the element-wise
    losses, the sum for ``kl_divergence`` and the cross-entropies over the class
    axis), shape ``y_pred.shape[:-1]``.  Each first aligns the ranks of
    ``y_true`` and ``y_pred`` as Keras's ``LossFunctionWrapper`` (what
    ``compile(loss=...)`` and the ``keras.losses`` classes use) does: a
    trailing axis of size 1 is squeezed from, or added to, the one of rank one
    higher (:func:`align_ranks`).  (The bare Keras functions ``hinge``,
    ``poisson``, ``kl_divergence`` and the cross-entropies skip that step, so
    ``keras.losses.hinge`` on (N,) against (N, 1) broadcasts to (N, N); the
    reference always aligns.)
dtype.
    Everything is computed in ``y_pred``'s floating dtype (float64 for integer
    input), as Keras computes in its ``floatx``; the constant ``EPSILON = 1e-7``
    and the clip bound ``1 - EPSILON`` are rounded to that dtype.  In float32
    ``1 - 1e-7`` is ``0.99999988 = 1 - 2**-23``, so Keras's float32 loss of a
    probability 1 against a target 0 is ``-log(2**-23) = 15.942``, not
    ``-log(1e-7) = 16.118`` as in float64.
Reduction.
    :func:`reduce_loss` is Keras 3's ``"sum_over_batch_size"``: the weighted
    sum divided by the number of per-sample loss *elements* (never by the sum of
    the weights), 0 when there are none.  A mask (e.g. from ``Masking`` with
    ``return_sequences``, or ``ignore_class``) enters as extra weights
    ``size / n_valid`` on the valid entries, so the loss is
    ``sum(loss * weight * mask) / n_valid``: masked steps neither count nor
    dilute; an all-masked batch gives 0.
Sample weights.
    Shape (N,) or (N, 1) for per-sample losses of shape (N,); (N, T) ("temporal"
    weights) or (N, 1) for per-step losses of shape (N, T).  Keras 3 aligns the
    ranks as above and then broadcasts: (N,) weights against (N, T) losses are a
    ``ValueError`` in Keras 3 (also in ``fit``/``evaluate``), except that when
    N == T they silently broadcast along the time axis; the reference does the
    same (NumPy raises ``ValueError`` where JAX does).  Weights of zero give
    loss 0 (not NaN), as the divisor is the element count.
Gradients.
    ``<name>_grad(y_true, y_pred, sample_weight=None, mask=None, **options)``
    is d(reduced loss)/d(y_pred), shape of ``y_pred``, equal to ``jax.grad`` of
    the Keras loss object.  At kinks the reference takes JAX's choice:
    ``abs'(0) = +1`` (so d mae/d y_pred = -1/C where y_pred == y_true),
    ``maximum``/``minimum``/``clip`` split a tie 1/2 : 1/2 (a probability exactly
    on a clip bound gets half the gradient; outside the bounds none), ``max``
    over an axis shares the gradient equally among tied maxima.
Cross-entropy and clipping (``EPSILON = 1e-7``).
    With ``from_logits=False`` Keras (every backend) clips probabilities to
    ``[EPSILON, 1 - EPSILON]`` before the log; categorical cross-entropy first
    divides by the sum over the class axis (so outputs that do not sum to one,
    or lie outside [0, 1], are renormalised, then clipped).  The loss of a
    saturated probability is therefore bounded (16.118 at most in float64) and
    its gradient is **zero**: JAX differentiates the clip, which is flat
    outside the bounds.  Labels outside [0, 1] are used as given.
Fused sigmoid/softmax + cross-entropy.
    Keras on TensorFlow recognises a sigmoid/softmax output (``_keras_logits``)
    and computes from the logits (unbounded loss, gradient ``p - y`` always);
    on JAX it cannot attach the logits to the array and computes
    ``clip(sigmoid(z))`` in floating point, which in float32 also loses
    accuracy near saturation (``1 - p`` cancels: Keras's float32 loss of a
    wrong prediction is off by ~0.005 at |z| = 12 and ~0.2 at |z| = 15.7,
    before the clip caps it near |z| = 15.9).  The ``sigmoid_*``/``softmax_*`` functions here compute the
    same quantity stably from the logits.  With ``clip=True`` (the default)
    they reproduce Keras-on-JAX exactly: the clip decisions are taken on the
    probabilities as Keras takes them, the loss inside the bounds is
    ``softplus``/``log_softmax`` of the logits, the loss at a saturated
    probability is the clipped value, and the gradient is ``p - y`` inside the
    bounds and 0 outside (what ``jax.grad`` gives).  ``clip=False`` is the
    ``from_logits=True`` value and gradient (TensorFlow's behaviour).  The
    default follows Keras on JAX because that is the backend whose numbers
    were recorded and ``jax.grad`` is the gradient oracle; the price is Keras's
    own: a saturated wrong prediction gets no gradient.
Sparse labels.
    Labels are truncated to integers (as ``jnp.array(y, dtype="int32")``).  A
    label outside ``[0, C)`` (including negative ones) is one-hot encoded by
    JAX as a row of zeros: loss 0 and gradient 0, silently.  (Keras on
    TensorFlow goes through ``tf.nn.sparse_softmax_cross_entropy_with_logits``,
    which by TensorFlow's documentation raises for them on the CPU; not
    recorded here.)  ``ignore_class`` zeroes the loss of those entries and
    masks them out of the reduction.
Hinge labels.
    ``hinge``/``squared_hinge`` convert labels to -1/+1 (``2 y - 1``) only when
    *every* label in the array is 0 or 1 (a batch-wide test, as Keras does);
    otherwise they are used as given.

The reference does no argument checking beyond what NumPy does; the public,
checked API is :mod:`fastrnn.losses`.
"""
import numpy as np

__all__ = [
    "EPSILON",
    "LOSSES",
    "align_ranks",
    "reduce_loss",
    "reduce_loss_grad",
    "loss_value",
    "loss_grad",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "poisson",
    "kl_divergence",
    "cosine_similarity",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "sigmoid_binary_crossentropy",
    "softmax_categorical_crossentropy",
    "softmax_sparse_categorical_crossentropy",
    "mse", "mae", "mape", "msle", "kld",
] + [name + "_grad" for name in (
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "poisson", "kl_divergence",
    "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "sigmoid_binary_crossentropy", "softmax_categorical_crossentropy",
    "softmax_sparse_categorical_crossentropy")]

EPSILON = 1e-7  # keras.backend.epsilon()


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _dtype(y_pred):
    dt = np.asarray(y_pred).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _bounds(dt):
    """Keras's clip bounds [eps, 1 - eps] rounded to dtype dt."""
    return dt.type(EPSILON), dt.type(1.0 - EPSILON)


def _clip_slope(x, lo, hi):
    """d clip(x, lo, hi)/dx as JAX takes it: 1 inside, 1/2 on a bound, 0 outside."""
    inside = (x > lo) & (x < hi)
    tie = (x == lo) | (x == hi)
    return np.where(inside, 1.0, np.where(tie, 0.5, 0.0)).astype(x.dtype)


def _abs_slope(x):
    """JAX's derivative of abs: +1 at 0."""
    return np.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def _max0_slope(x):
    """d max(x, 0)/dx as JAX takes it: 1/2 at the tie."""
    return np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0)).astype(x.dtype)


def _softplus(x):
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(x.dtype.type(0), x)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _log_softmax(z, axis=-1):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _sigmoid_minus(z, y):
    """sigmoid(z) - y as (1 - y) sigmoid(z) - y sigmoid(-z): no cancellation at y = 0/1."""
    return (1 - y) * _sigmoid(z) - y * _sigmoid(-z)


def _softmax(z, axis=-1):
    """As jax.nn.softmax: exp(z - max) / sum."""
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def align_ranks(x1, x2, expand_rank_1=True):
    """Keras's ``squeeze_or_expand_to_same_rank``.

    When the ranks differ by exactly one and the longer array's last axis has
    size 1, that axis is squeezed -- or, if the shorter array has rank 1, the
    shorter one is expanded instead (``expand_rank_1``).  Otherwise both are
    returned unchanged.

    Parameters
    ----------
    x1, x2 : ndarray

    Returns
    -------
    x1, x2 : ndarray
    """
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _smooth_binary(y, label_smoothing):
    if label_smoothing:
        y = y * y.dtype.type(1.0 - label_smoothing) + y.dtype.type(0.5 * label_smoothing)
    return y


def _smooth_categorical(y, label_smoothing):
    if label_smoothing:
        # Keras divides by y_true.shape[-1], whatever the class axis is.
        n = y.dtype.type(y.shape[-1])
        y = y * y.dtype.type(1.0 - label_smoothing) + y.dtype.type(label_smoothing) / n
    return y


# ---------------------------------------------------------------------------
# Reduction ("sum_over_batch_size")
# ---------------------------------------------------------------------------

def _merge_mask(sample_weight, mask, dtype):
    """Keras's ``apply_mask`` for "sum_over_batch_size": weights total/valid."""
    if mask is None:
        return sample_weight
    mask = np.asarray(mask).astype(bool)
    total = dtype.type(mask.size)
    valid = dtype.type(np.count_nonzero(mask))
    mask_weight = total / valid if valid != 0 else dtype.type(0)
    float_mask = np.where(mask, mask_weight, dtype.type(0)).astype(dtype)
    if sample_weight is None:
        return float_mask
    float_mask, sample_weight = align_ranks(float_mask, np.asarray(sample_weight, dtype=dtype))
    return sample_weight * float_mask


def _weights_and_values(per_sample, sample_weight, mask):
    values = np.asarray(per_sample)
    dt = _dtype(values)
    values = values.astype(dt)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=dt)
    weight = _merge_mask(sample_weight, mask, dt)
    if weight is not None:
        values, weight = align_ranks(values, weight)
    return values, weight, dt


def reduce_loss(per_sample, sample_weight=None, mask=None):
    """Keras 3's "sum_over_batch_size" reduction of per-sample losses.

    Parameters
    ----------
    per_sample : ndarray of shape (N,) or (N, T) (any shape)
        Per-sample (or per-step) losses, e.g. from :func:`mean_squared_error`.
    sample_weight : ndarray, optional
        (N,) or (N, 1) for (N,) losses; (N, T) or (N, 1) for (N, T) losses.
    mask : ndarray of bool, shape of per_sample, optional
        Valid entries (Keras's mask of ``y_pred``, or ``y_true != ignore_class``).

    Returns
    -------
    loss : ndarray of shape ()
        ``sum(per_sample * weight) / n`` with ``n`` the number of elements of
        the (rank-aligned) weighted losses; with a mask, ``weight`` includes
        ``size / n_valid`` on valid entries and 0 elsewhere.  0 when ``n`` is 0.
        As in Keras, a 0-d input or an input of shape (0,) is returned
        (weighted) without reduction.
    """
    values, weight, dt = _weights_and_values(per_sample, sample_weight, mask)
    if weight is not None:
        values = values * weight
    if values.shape in ((), (0,)):
        return values
    total = np.sum(values, dtype=dt)
    n = dt.type(values.size)
    return np.asarray(total / n if n != 0 else dt.type(0), dtype=dt)


def reduce_loss_grad(per_sample_shape, sample_weight=None, mask=None, dtype=np.float64):
    """d reduce_loss / d per_sample: the weight each per-sample loss gets.

    Parameters
    ----------
    per_sample_shape : tuple of int
    sample_weight, mask : as for :func:`reduce_loss`
    dtype : float32 or float64

    Returns
    -------
    coefficients : ndarray of shape per_sample_shape
    """
    dt = np.dtype(dtype)
    ones = np.ones(per_sample_shape, dtype=dt)
    values, weight, _ = _weights_and_values(ones, sample_weight, mask)
    if weight is None:
        weight = np.ones((), dtype=dt)
    if values.shape == ():
        return np.asarray(weight * np.ones_like(values), dtype=dt).reshape(per_sample_shape)
    full = np.broadcast(values, weight).shape
    coeff = np.broadcast_to(weight, full).astype(dt)
    # Undo broadcasting of the losses themselves (sum over the added axes).
    extra = len(full) - values.ndim
    coeff = coeff.sum(axis=tuple(range(extra))) if extra else coeff
    for axis, size in enumerate(values.shape):
        if size == 1 and coeff.shape[axis] != 1:
            coeff = coeff.sum(axis=axis, keepdims=True)
    n = np.prod(full, dtype=np.int64)
    coeff = coeff / dt.type(n) if n else np.zeros_like(coeff)
    return coeff.reshape(per_sample_shape).astype(dt)


# ---------------------------------------------------------------------------
# Element-wise losses.  Each _parts function returns (per_sample, local) where
# local[..., j] = d per_sample[...] / d y_pred[..., j] (shape of y_pred), and
# the ranks of y_true/y_pred already aligned.
# ---------------------------------------------------------------------------

def _mse_parts(yt, yp):
    diff = yp - yt
    c = yp.dtype.type(yp.shape[-1])
    return np.mean(np.square(yt - yp), axis=-1), 2 * diff / c


def _mae_parts(yt, yp):
    c = yp.dtype.type(yp.shape[-1])
    return np.mean(np.abs(yt - yp), axis=-1), -_abs_slope(yt - yp) / c


def _mape_parts(yt, yp):
    eps = yp.dtype.type(EPSILON)
    denom = np.maximum(np.abs(yt), eps)
    ratio = (yt - yp) / denom
    c = yp.dtype.type(yp.shape[-1])
    hundred = yp.dtype.type(100)
    return hundred * np.mean(np.abs(ratio), axis=-1), -hundred * _abs_slope(ratio) / denom / c


def _msle_parts(yt, yp):
    eps = yp.dtype.type(EPSILON)
    one = yp.dtype.type(1)
    first = np.log(np.maximum(yp, eps) + one)
    second = np.log(np.maximum(yt, eps) + one)
    diff = first - second
    c = yp.dtype.type(yp.shape[-1])
    slope = np.where(yp > eps, 1.0, np.where(yp == eps, 0.5, 0.0)).astype(yp.dtype)
    return np.mean(np.square(diff), axis=-1), 2 * diff * slope / (np.maximum(yp, eps) + one) / c


def _huber_parts(yt, yp, delta=1.0):
    dt = yp.dtype.type
    delta = dt(delta)
    half = dt(0.5)
    error = yp - yt
    abs_error = np.abs(error)
    quadratic = abs_error <= delta
    per = np.where(quadratic, half * np.square(error), delta * abs_error - half * np.square(delta))
    slope = np.where(quadratic, error, delta * _abs_slope(error))
    c = dt(yp.shape[-1])
    return np.mean(per, axis=-1), slope / c


def _log_cosh_parts(yt, yp):
    x = yp - yt
    dt = yp.dtype.type
    log2 = dt(np.log(2.0))
    per = x + _softplus(x * dt(-2.0)) - log2
    c = dt(yp.shape[-1])
    return np.mean(per, axis=-1), (1 - 2 * _sigmoid(dt(-2.0) * x)) / c


def _poisson_parts(yt, yp):
    eps = yp.dtype.type(EPSILON)
    c = yp.dtype.type(yp.shape[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.mean(yp - yt * np.log(yp + eps), axis=-1)
        local = (1 - yt / (yp + eps)) / c
    return per, local


def _kld_parts(yt, yp):
    lo = yp.dtype.type(EPSILON)
    one = yp.dtype.type(1)
    t = np.clip(yt, lo, one)
    p = np.clip(yp, lo, one)
    per = np.sum(t * np.log(t / p), axis=-1)
    return per, -t / p * _clip_slope(yp, lo, one)


def _l2_normalize(x, axis):
    """Keras's ``ops.normalize`` (order 2): x * min(rsqrt(sum x^2), 1/eps)."""
    dt = x.dtype.type
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        inv_norm = 1 / np.sqrt(square_sum)
    cap = dt(1.0) / dt(EPSILON)
    return x * np.minimum(inv_norm, cap), inv_norm, square_sum, cap


def _cosine_parts(yt, yp, axis=-1):
    nt = _l2_normalize(yt, axis)[0]
    npred, inv_norm, square_sum, cap = _l2_normalize(yp, axis)
    per = -np.sum(nt * npred, axis=axis)
    # d/dyp of -sum(nt * yp * m), m = min(inv_norm, cap): the cap branch has no
    # slope; below it, dm/dyp = -yp / |yp|^3.
    scale = np.minimum(inv_norm, cap)
    slope = np.where(inv_norm < cap, 1.0, np.where(inv_norm == cap, 0.5, 0.0)).astype(yp.dtype)
    with np.errstate(invalid="ignore"):
        dm = np.where(slope > 0, -slope * inv_norm ** 3, 0).astype(yp.dtype)
    inner = np.sum(nt * yp, axis=axis, keepdims=True)
    local = -(nt * scale + inner * dm * yp)
    # jax.grad gives NaN for a zero y_pred vector: rsqrt's infinite slope at 0
    # times the zero cotangent of min's unused branch.
    local = np.where(square_sum == 0, np.nan, local).astype(yp.dtype)
    return per, local


def _to_hinge_labels(y):
    if np.all((y == 0) | (y == 1)):
        return 2 * y - 1
    return y


def _hinge_parts(yt, yp):
    y = _to_hinge_labels(yt)
    margin = 1 - y * yp
    c = yp.dtype.type(yp.shape[-1])
    return np.mean(np.maximum(margin, 0), axis=-1), -y * _max0_slope(margin) / c


def _squared_hinge_parts(yt, yp):
    y = _to_hinge_labels(yt)
    margin = np.maximum(1 - y * yp, 0)
    c = yp.dtype.type(yp.shape[-1])
    return np.mean(np.square(margin), axis=-1), -2 * margin * y / c


def _categorical_hinge_parts(yt, yp):
    pos = np.sum(yt * yp, axis=-1)
    others = (1 - yt) * yp
    neg = np.max(others, axis=-1)
    value = neg - pos + 1
    per = np.maximum(value, 0)
    ties = (others == neg[..., None]).astype(yp.dtype)
    dneg = ties / np.sum(ties, axis=-1, keepdims=True) * (1 - yt)
    return per, _max0_slope(value)[..., None] * (dneg - yt)


# ---------------------------------------------------------------------------
# Cross-entropies
# ---------------------------------------------------------------------------

def _bce_parts(yt, yp, from_logits=False, label_smoothing=0.0, axis=-1):
    y = _smooth_binary(yt, label_smoothing)
    n = yp.dtype.type(yp.shape[axis])
    if from_logits:
        # -y log sigmoid(z) - (1 - y) log sigmoid(-z), d/dz = sigmoid(z) - y
        per = y * _softplus(-yp) + (1 - y) * _softplus(yp)
        local = _sigmoid_minus(yp, y)
    else:
        lo, hi = _bounds(yp.dtype)
        c = np.clip(yp, lo, hi)
        per = -(y * np.log(c) + (1 - y) * np.log(1 - c))
        local = (-(y / c) + (1 - y) / (1 - c)) * _clip_slope(yp, lo, hi)
    return np.mean(per, axis=axis), local / n


def _class_axis_last(fn):
    """Run a last-axis cross-entropy on arrays whose class axis is ``axis``."""
    def wrapped(yt, yp, *args, axis=-1, **kw):
        if axis in (-1, yp.ndim - 1):
            return fn(yt, yp, *args, **kw)
        per, local = fn(np.moveaxis(yt, axis, -1), np.moveaxis(yp, axis, -1), *args, **kw)
        return per, np.moveaxis(local, -1, axis)
    return wrapped


@_class_axis_last
def _cce_parts(yt, yp, from_logits=False, label_smoothing=0.0):
    y = _smooth_categorical(yt, label_smoothing)
    if from_logits:
        per = -np.sum(y * _log_softmax(yp), axis=-1)
        local = np.sum(y, axis=-1, keepdims=True) * _softmax(yp) - y
        return per, local
    lo, hi = _bounds(yp.dtype)
    total = np.sum(yp, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = yp / total
    c = np.clip(q, lo, hi)
    per = -np.sum(y * np.log(c), axis=-1)
    g = -y / c * _clip_slope(q, lo, hi)                      # d loss / d q
    with np.errstate(divide="ignore", invalid="ignore"):
        local = (g - np.sum(g * q, axis=-1, keepdims=True)) / total
    return per, local


def _sparse_labels(yt, yp, axis):
    """Keras's squeeze of a size-1 class axis, then JAX's one_hot (int32 cast)."""
    if yt.ndim == yp.ndim and yt.shape[axis] == 1:
        yt = np.squeeze(yt, axis=axis)
    labels = np.trunc(yt).astype(np.int64)
    n = yp.shape[axis]
    hot = (labels[..., None] == np.arange(n)).astype(yp.dtype)   # out of range: zeros
    return yt, np.moveaxis(hot, -1, axis)


def _scce_parts(yt, yp, from_logits=False, ignore_class=None, axis=-1):
    yt_sq, _ = _sparse_labels(yt, yp, axis)
    valid = None
    if ignore_class is not None:
        valid = yt_sq != yp.dtype.type(ignore_class)
        yt_sq = np.where(valid, yt_sq, 0)
        yp = np.where(np.expand_dims(valid, axis), yp, 0).astype(yp.dtype)
    _, hot = _sparse_labels(yt_sq, yp, axis)
    per, local = _cce_parts(hot, yp, from_logits=from_logits, axis=axis)
    if valid is not None:
        per = np.where(valid, per, 0).astype(per.dtype)
        local = np.where(np.expand_dims(valid, axis), local, 0).astype(local.dtype)
    return per, local


# ---- fused: sigmoid / softmax output layer -------------------------------

def _sigmoid_bce_parts(yt, z, label_smoothing=0.0, axis=-1, clip=True):
    y = _smooth_binary(yt, label_smoothing)
    n = z.dtype.type(z.shape[axis])
    per = y * _softplus(-z) + (1 - y) * _softplus(z)        # -log-likelihood, stably
    p = _sigmoid(z)
    local = _sigmoid_minus(z, y)
    if clip:
        lo, hi = _bounds(z.dtype)
        c = np.clip(p, lo, hi)
        saturated = (p <= lo) | (p >= hi)
        with np.errstate(divide="ignore"):
            clipped = -(y * np.log(c) + (1 - y) * np.log(1 - c))
        per = np.where(saturated, clipped, per)
        local = local * _clip_slope(p, lo, hi)
    return np.mean(per, axis=axis), local / n


@_class_axis_last
def _softmax_cce_parts(yt, z, label_smoothing=0.0, clip=True):
    y = _smooth_categorical(yt, label_smoothing)
    log_p = _log_softmax(z)
    p = _softmax(z)
    if not clip:
        return -np.sum(y * log_p, axis=-1), np.sum(y, axis=-1, keepdims=True) * p - y
    lo, hi = _bounds(z.dtype)
    q = p / np.sum(p, axis=-1, keepdims=True)               # Keras renormalises
    slope = _clip_slope(q, lo, hi)
    saturated = (q <= lo) | (q >= hi)
    log_c = np.where(saturated, np.log(np.clip(q, lo, hi)), log_p)
    per = -np.sum(y * log_c, axis=-1)
    weight = y * slope                                       # y_k m_k
    return per, np.sum(weight, axis=-1, keepdims=True) * p - weight


def _softmax_scce_parts(yt, z, ignore_class=None, axis=-1, clip=True):
    yt_sq, _ = _sparse_labels(yt, z, axis)
    valid = None
    if ignore_class is not None:
        valid = yt_sq != z.dtype.type(ignore_class)
        yt_sq = np.where(valid, yt_sq, 0)
        z = np.where(np.expand_dims(valid, axis), z, 0).astype(z.dtype)
    _, hot = _sparse_labels(yt_sq, z, axis)
    per, local = _softmax_cce_parts(hot, z, clip=clip, axis=axis)
    if valid is not None:
        per = np.where(valid, per, 0).astype(per.dtype)
        local = np.where(np.expand_dims(valid, axis), local, 0).astype(local.dtype)
    return per, local


# ---------------------------------------------------------------------------
# Registry and the public per-sample / gradient functions
# ---------------------------------------------------------------------------

LOSSES = {
    "mean_squared_error": _mse_parts,
    "mean_absolute_error": _mae_parts,
    "mean_absolute_percentage_error": _mape_parts,
    "mean_squared_logarithmic_error": _msle_parts,
    "huber": _huber_parts,
    "log_cosh": _log_cosh_parts,
    "poisson": _poisson_parts,
    "kl_divergence": _kld_parts,
    "cosine_similarity": _cosine_parts,
    "hinge": _hinge_parts,
    "squared_hinge": _squared_hinge_parts,
    "categorical_hinge": _categorical_hinge_parts,
    "binary_crossentropy": _bce_parts,
    "categorical_crossentropy": _cce_parts,
    "sparse_categorical_crossentropy": _scce_parts,
    "sigmoid_binary_crossentropy": _sigmoid_bce_parts,
    "softmax_categorical_crossentropy": _softmax_cce_parts,
    "softmax_sparse_categorical_crossentropy": _softmax_scce_parts,
}
"""name -> parts function ``(y_true, y_pred, **options) -> (per_sample, local)``.

``local[..., j]`` is d per_sample / d y_pred[..., j]; ranks already aligned.
Fused forms are named ``sigmoid_``/``softmax_`` + the Keras loss name.
"""

_SPARSE = ("sparse_categorical_crossentropy", "softmax_sparse_categorical_crossentropy")


def _parts(name, y_true, y_pred, options):
    dt = _dtype(y_pred)
    yp = np.asarray(y_pred, dtype=dt)
    yt = np.asarray(y_true, dtype=dt)
    if name not in _SPARSE:
        yt, yp = align_ranks(yt, yp)
    return LOSSES[name](yt, yp, **options)


def _reduced_axis(name, y_pred_ndim, options):
    axis = options.get("axis", -1)
    return axis % y_pred_ndim


def loss_value(name, y_true, y_pred, sample_weight=None, mask=None, **options):
    """The reduced loss, as ``keras.losses.<Class>(**options)(y_true, y_pred, sample_weight)``.

    Parameters
    ----------
    name : str
        A key of :data:`LOSSES`.
    y_true, y_pred : ndarray
    sample_weight, mask : see :func:`reduce_loss`
        ``mask`` is the mask Keras carries on ``y_pred``; ``ignore_class``
        adds ``y_true != ignore_class`` to it, as Keras does.
    **options
        The loss's options (``from_logits``, ``label_smoothing``, ``axis``,
        ``delta``, ``ignore_class``, ``clip``).

    Returns
    -------
    loss : ndarray of shape ()
    """
    per, _ = _parts(name, y_true, y_pred, options)
    return reduce_loss(per, sample_weight, _loss_mask(name, y_true, y_pred, mask, options))


def loss_grad(name, y_true, y_pred, sample_weight=None, mask=None, **options):
    """d loss_value / d y_pred (the logits for the fused forms), shape of y_pred."""
    y_pred_arr = np.asarray(y_pred)
    dt = _dtype(y_pred_arr)
    per, local = _parts(name, y_true, y_pred, options)
    coeff = reduce_loss_grad(per.shape, sample_weight,
                             _loss_mask(name, y_true, y_pred, mask, options), dtype=dt)
    axis = _reduced_axis(name, local.ndim, options)
    grad = np.expand_dims(coeff, axis) * local
    return grad.reshape(y_pred_arr.shape).astype(dt)


def _loss_mask(name, y_true, y_pred, mask, options):
    ignore_class = options.get("ignore_class")
    if name not in _SPARSE or ignore_class is None:
        return mask
    dt = _dtype(y_pred)
    yt = np.asarray(y_true, dtype=dt)
    axis = options.get("axis", -1)
    if yt.ndim == np.ndim(y_pred) and yt.shape[axis] == 1:
        yt = np.squeeze(yt, axis=axis)
    valid = yt != dt.type(ignore_class)
    return valid if mask is None else valid & np.asarray(mask).astype(bool)


def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred)**2, axis=-1)``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("mean_squared_error", y_true, y_pred, dict())[0]


def mean_squared_error_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(mean_squared_error(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("mean_squared_error", y_true, y_pred, sample_weight, mask)


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|, axis=-1)``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("mean_absolute_error", y_true, y_pred, dict())[0]


def mean_absolute_error_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(mean_absolute_error(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("mean_absolute_error", y_true, y_pred, sample_weight, mask)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(|(y_true - y_pred) / max(|y_true|, 1e-7)|, axis=-1)``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("mean_absolute_percentage_error", y_true, y_pred, dict())[0]


def mean_absolute_percentage_error_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(mean_absolute_percentage_error(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("mean_absolute_percentage_error", y_true, y_pred, sample_weight, mask)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))**2, axis=-1)``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("mean_squared_logarithmic_error", y_true, y_pred, dict())[0]


def mean_squared_logarithmic_error_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(mean_squared_logarithmic_error(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("mean_squared_logarithmic_error", y_true, y_pred, sample_weight, mask)


def huber(y_true, y_pred, delta=1.0):
    """``mean(0.5 e**2 if |e| <= delta else delta |e| - 0.5 delta**2, axis=-1)``,
    ``e = y_pred - y_true``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("huber", y_true, y_pred, dict(delta=delta))[0]


def huber_grad(y_true, y_pred, sample_weight=None, mask=None, delta=1.0):
    """d/d ``y_pred`` of ``reduce_loss(huber(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("huber", y_true, y_pred, sample_weight, mask, delta=delta)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed as ``x + softplus(-2x) - log 2``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("log_cosh", y_true, y_pred, dict())[0]


def log_cosh_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(log_cosh(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("log_cosh", y_true, y_pred, sample_weight, mask)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``.

    NaN for ``y_pred < -1e-7``, as in Keras.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("poisson", y_true, y_pred, dict())[0]


def poisson_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(poisson(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("poisson", y_true, y_pred, sample_weight, mask)


def kl_divergence(y_true, y_pred):
    """``sum(t * log(t / p), axis=-1)``, ``t, p`` = y_true, y_pred clipped to ``[1e-7, 1]``.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("kl_divergence", y_true, y_pred, dict())[0]


def kl_divergence_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(kl_divergence(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("kl_divergence", y_true, y_pred, sample_weight, mask)


def cosine_similarity(y_true, y_pred, axis=-1):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``; Keras's normalisation
    ``x * min(1/|x|, 1e7)`` maps a zero vector to zero (loss 0).  The gradient at a
    zero ``y_pred`` vector is NaN, as ``jax.grad`` of Keras's gives.

    Returns the per-sample loss: ``y_pred``'s shape without the ``axis``.
    """
    return _parts("cosine_similarity", y_true, y_pred, dict(axis=axis))[0]


def cosine_similarity_grad(y_true, y_pred, sample_weight=None, mask=None, axis=-1):
    """d/d ``y_pred`` of ``reduce_loss(cosine_similarity(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("cosine_similarity", y_true, y_pred, sample_weight, mask, axis=axis)


def hinge(y_true, y_pred):
    """``mean(max(1 - y * y_pred, 0), axis=-1)``, ``y = 2 y_true - 1`` if every label is 0 or 1.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("hinge", y_true, y_pred, dict())[0]


def hinge_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(hinge(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("hinge", y_true, y_pred, sample_weight, mask)


def squared_hinge(y_true, y_pred):
    """``mean(max(1 - y * y_pred, 0)**2, axis=-1)``, labels as for :func:`hinge`.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("squared_hinge", y_true, y_pred, dict())[0]


def squared_hinge_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(squared_hinge(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("squared_hinge", y_true, y_pred, sample_weight, mask)


def categorical_hinge(y_true, y_pred):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis.

    Returns the per-sample loss: ``y_pred``'s shape without the last axis.
    """
    return _parts("categorical_hinge", y_true, y_pred, dict())[0]


def categorical_hinge_grad(y_true, y_pred, sample_weight=None, mask=None):
    """d/d ``y_pred`` of ``reduce_loss(categorical_hinge(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("categorical_hinge", y_true, y_pred, sample_weight, mask)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Mean over ``axis`` of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to
    ``[1e-7, 1 - 1e-7]`` (or ``log sigmoid`` of the logits); ``label_smoothing`` s
    maps ``y -> y (1 - s) + s / 2``.

    Returns the per-sample loss: ``y_pred``'s shape without the ``axis``.
    """
    options = dict(from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
    return _parts("binary_crossentropy", y_true, y_pred, options)[0]


def binary_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None, from_logits=False,
                             label_smoothing=0.0, axis=-1):
    """d/d ``y_pred`` of ``reduce_loss(binary_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("binary_crossentropy", y_true, y_pred, sample_weight, mask,
                     from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """``-sum(y * log p)`` over the class ``axis``; ``p = y_pred / sum(y_pred)`` clipped to
    ``[1e-7, 1 - 1e-7]`` (or ``log_softmax(y_pred)`` with ``from_logits``);
    ``label_smoothing`` s maps ``y -> y (1 - s) + s / C``, ``C = y_true.shape[-1]``.

    Returns the per-sample loss: ``y_pred``'s shape without the class axis.
    """
    options = dict(from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
    return _parts("categorical_crossentropy", y_true, y_pred, options)[0]


def categorical_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None,
                                  from_logits=False, label_smoothing=0.0, axis=-1):
    """d/d ``y_pred`` of ``reduce_loss(categorical_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("categorical_crossentropy", y_true, y_pred, sample_weight, mask,
                     from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """:func:`categorical_crossentropy` against ``one_hot(int(y_true))``; ``y_true`` of shape
    ``y_pred.shape[:-1]`` (or with a trailing 1).  Labels outside ``[0, C)`` give 0;
    entries equal to ``ignore_class`` give 0 and are masked out of the reduction.

    Returns the per-sample loss: ``y_pred``'s shape without the class axis.
    """
    options = dict(from_logits=from_logits, ignore_class=ignore_class, axis=axis)
    return _parts("sparse_categorical_crossentropy", y_true, y_pred, options)[0]


def sparse_categorical_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None,
                                         from_logits=False, ignore_class=None, axis=-1):
    """d/d ``y_pred`` of ``reduce_loss(sparse_categorical_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("sparse_categorical_crossentropy", y_true, y_pred, sample_weight, mask,
                     from_logits=from_logits, ignore_class=ignore_class, axis=axis)


def sigmoid_binary_crossentropy(y_true, y_pred, label_smoothing=0.0, axis=-1, clip=True):
    """``binary_crossentropy(y_true, sigmoid(logits))`` computed stably from the logits.

    ``clip=True``: Keras-on-JAX's value (clipped probabilities); ``clip=False``: the
    ``from_logits=True`` value.  ``y_pred`` is the logits.

    Returns the per-sample loss: ``y_pred``'s shape without the ``axis``.
    """
    options = dict(label_smoothing=label_smoothing, axis=axis, clip=clip)
    return _parts("sigmoid_binary_crossentropy", y_true, y_pred, options)[0]


def sigmoid_binary_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None,
                                     label_smoothing=0.0, axis=-1, clip=True):
    """d/d the logits ``y_pred`` of
    ``reduce_loss(sigmoid_binary_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("sigmoid_binary_crossentropy", y_true, y_pred, sample_weight, mask,
                     label_smoothing=label_smoothing, axis=axis, clip=clip)


def softmax_categorical_crossentropy(y_true, y_pred, label_smoothing=0.0, axis=-1, clip=True):
    """``categorical_crossentropy(y_true, softmax(logits))`` computed stably from the logits
    (``clip`` as for :func:`sigmoid_binary_crossentropy`).  ``y_pred`` is the logits.

    Returns the per-sample loss: ``y_pred``'s shape without the class axis.
    """
    options = dict(label_smoothing=label_smoothing, axis=axis, clip=clip)
    return _parts("softmax_categorical_crossentropy", y_true, y_pred, options)[0]


def softmax_categorical_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None,
                                          label_smoothing=0.0, axis=-1, clip=True):
    """d/d the logits ``y_pred`` of
    ``reduce_loss(softmax_categorical_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("softmax_categorical_crossentropy", y_true, y_pred, sample_weight, mask,
                     label_smoothing=label_smoothing, axis=axis, clip=clip)


def softmax_sparse_categorical_crossentropy(y_true, y_pred, ignore_class=None, axis=-1, clip=True):
    """``sparse_categorical_crossentropy(y_true, softmax(logits))`` computed stably from the
    logits (``clip`` as for :func:`sigmoid_binary_crossentropy`).

    Returns the per-sample loss: ``y_pred``'s shape without the class axis.
    """
    options = dict(ignore_class=ignore_class, axis=axis, clip=clip)
    return _parts("softmax_sparse_categorical_crossentropy", y_true, y_pred, options)[0]


def softmax_sparse_categorical_crossentropy_grad(y_true, y_pred, sample_weight=None, mask=None,
                                                 ignore_class=None, axis=-1, clip=True):
    """d/d the logits ``y_pred`` of
    ``reduce_loss(softmax_sparse_categorical_crossentropy(...), sample_weight, mask)``.

    Shape and dtype of ``y_pred``.
    """
    return loss_grad("softmax_sparse_categorical_crossentropy", y_true, y_pred, sample_weight,
                     mask, ignore_class=ignore_class, axis=axis, clip=clip)


# Keras's short names (``keras.losses.get``: "mse", "mae", "mape", "msle", "kld").
mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error
kld = kl_divergence
