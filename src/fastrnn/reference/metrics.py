"""Pure-NumPy reference of Keras 3's metrics and how ``compile`` names them.

The oracle for the compiled metrics, checked against values recorded from
Keras 3.15 with JAX (``tests/fixtures/keras/losses_metrics.npz``).

Conventions
-----------
Metric functions.
    ``<name>(y_true, y_pred, **options)`` returns per-sample values as
    ``keras.metrics.<name>`` does (1.0/0.0 for the accuracies; the error
    metrics are the loss functions of :mod:`.losses`).  Accuracy details, as
    Keras: :func:`binary_accuracy` is ``(y_pred > threshold) == y_true``
    (strictly greater; a soft label such as 0.3 never matches);
    :func:`categorical_accuracy` compares ``argmax`` of both (ties: the first
    index); :func:`sparse_categorical_accuracy` compares the float label with
    ``argmax(y_pred)`` (out-of-range or non-integer labels never match); the
    top-k accuracies count a label as found when fewer than k classes score
    strictly higher (ties count in the label's favour), and an out-of-range
    sparse label is never found -- except that JAX reads a negative label
    ``-C <= l < 0`` from the end of the row (``take_along_axis`` wraps).
Streaming (an epoch).
    :class:`Mean` keeps ``total`` and ``count`` like ``keras.metrics.Mean``:
    each update adds ``sum(w_i * v_i)`` and ``sum(w_i)`` (without weights, the
    number of samples), per-step values and weights being averaged over the
    time axis first; ``result() = total / count`` and 0 when ``count`` is 0.
    :class:`MeanMetricWrapper` applies a metric function first (a mask, as on
    ``y_pred``, multiplies into the weights as 0/1, with no renormalisation).
    :class:`RootMeanSquaredError` is ``sqrt`` of the running mean of squared
    errors.  Accumulation happens in the metric's dtype (Keras: float32).
What ``compile`` does with them (``keras/src/trainers/compile_utils.py``).
    ``metrics=[...]`` are updated **without** sample weights; only
    ``weighted_metrics=[...]`` see ``sample_weight``.  The epoch's ``loss`` is a
    :class:`Mean` of the batch losses weighted by the batch sizes.
    ``"accuracy"``/``"acc"`` (any letter case: ``"ACC"``, ``"Accuracy"``)
    become BinaryAccuracy when ``y_pred.shape[-1] == 1``, else
    SparseCategoricalAccuracy when ``y_true`` has lower rank than ``y_pred`` or
    ``y_true.shape[-1] == 1``, else CategoricalAccuracy -- from the shapes only:
    unlike Keras 2 the loss plays no part (so a multi-label sigmoid output
    with binary cross-entropy gets *categorical* accuracy).  The same shape
    test turns the loss strings ``"crossentropy"``/``"ce"`` into binary,
    sparse or categorical cross-entropy; as *metrics* those strings are an
    error.  Other strings go through ``keras.metrics.get``: class names, their
    snake_case forms, and the aliases mse/MSE, mae/MAE, mape/MAPE, msle/MSLE,
    bce/BCE.  ``"rmse"``, ``"kld"``, ``"logcosh"`` and ``"log_cosh"`` are *not*
    metric names (ValueError; ``"root_mean_squared_error"`` is), while ``"auc"``
    and ``"AUC"`` are.
Names in ``history`` and ``evaluate(return_dict=True)``.
    A string keeps the string as given (``"acc"``, ``"mse"``, ``"MSE"``); an
    object its ``name``; a function the snake_case of its ``__name__`` (a lambda
    is ``"lambda"``).  A repeated name gets ``_1``, ``_2``, ...; a weighted
    metric whose name is taken becomes ``weighted_<name>``.  Validation
    entries are ``val_`` + name.  Keras sorts the keys alphabetically.
"""
import re

import numpy as np

from . import losses as _losses
from .losses import align_ranks

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "Mean",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "RootMeanSquaredError",
    "METRIC_CLASSES",
    "resolve_metric",
    "resolve_loss",
    "history_names",
    "metric_result_names",
    "to_snake_case",
]


def _dtype(y_pred):
    dt = np.asarray(y_pred).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


# ---------------------------------------------------------------------------
# Metric functions: per-sample values
# ---------------------------------------------------------------------------

def accuracy(y_true, y_pred):
    """``y_true == y_pred`` element-wise (ranks aligned), as 1.0/0.0.

    Returns
    -------
    ndarray, shape of the aligned inputs
    """
    dt = _dtype(y_pred)
    yt, yp = align_ranks(np.asarray(y_true, dtype=dt), np.asarray(y_pred, dtype=dt))
    return (yt == yp).astype(dt)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """``(y_pred > threshold) == y_true`` element-wise (ranks aligned), as 1.0/0.0.

    Parameters
    ----------
    y_true : ndarray of shape (N, ...)
    y_pred : ndarray of shape (N, ...) (or with a trailing 1)
    threshold : float
        Compared in y_pred's dtype, strictly.

    Returns
    -------
    ndarray, shape of the aligned inputs (per element, not averaged)
    """
    dt = _dtype(y_pred)
    yt, yp = align_ranks(np.asarray(y_true), np.asarray(y_pred, dtype=dt))
    predicted = yp > dt.type(threshold)
    return (yt == predicted.astype(yt.dtype)).astype(dt)


def categorical_accuracy(y_true, y_pred):
    """``argmax(y_true) == argmax(y_pred)`` over the last axis, as 1.0/0.0.

    Returns
    -------
    ndarray of shape y_pred.shape[:-1]
    """
    dt = _dtype(y_pred)
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(dt)


def sparse_categorical_accuracy(y_true, y_pred):
    """``y_true == argmax(y_pred)`` with y_true of shape y_pred.shape[:-1] (or a trailing 1).

    Returns
    -------
    ndarray of shape y_pred.shape[:-1]
    """
    dt = _dtype(y_pred)
    yt = np.asarray(y_true, dtype=dt)
    yp = np.asarray(y_pred, dtype=dt)
    if yt.ndim == yp.ndim and yt.shape[-1] == 1:
        yt = yt[..., 0]
    matches = (yt == np.argmax(yp, axis=-1).astype(dt)).astype(dt)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


def _in_top_k(labels, y_pred, k):
    """JAX's ``in_top_k``: 1 + #(scores > score of the label) <= k.

    ``labels`` are integers of shape (M,), ``y_pred`` (M, C).  A label outside
    [-C, C) reads NaN (JAX's fill), a negative one wraps; a NaN score at the
    label counts as -inf.
    """
    n_classes = y_pred.shape[-1]
    inside = (labels >= -n_classes) & (labels < n_classes)
    picked = np.take_along_axis(y_pred, np.where(inside, labels, 0)[:, None], axis=-1)
    picked = np.where(inside[:, None], picked, np.nan)
    picked = np.where(np.isnan(picked), -np.inf, picked)
    rank = 1 + np.sum(y_pred > picked, axis=-1)
    return rank <= k


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where ``argmax(y_true)`` is among the k highest scores of y_pred.

    Returns
    -------
    ndarray of shape y_pred.shape[:-1]
    """
    dt = _dtype(y_pred)
    yp = np.asarray(y_pred, dtype=dt)
    labels = np.argmax(np.asarray(y_true, dtype=dt), axis=-1)
    shape = labels.shape
    found = _in_top_k(labels.reshape(-1), yp.reshape(-1, yp.shape[-1]), k)
    return found.astype(dt).reshape(shape)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label ``y_true`` is among the k highest scores of y_pred.

    Returns
    -------
    ndarray, shape of y_true
    """
    dt = _dtype(y_pred)
    yp = np.asarray(y_pred, dtype=dt)
    labels = np.trunc(np.asarray(y_true, dtype=np.float64)).astype(np.int64)
    shape = labels.shape
    found = _in_top_k(labels.reshape(-1), yp.reshape(-1, yp.shape[-1]), k)
    return found.astype(dt).reshape(shape)


mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error


# ---------------------------------------------------------------------------
# Streaming metrics
# ---------------------------------------------------------------------------

class Mean:
    """Weighted running mean, as ``keras.metrics.Mean``.

    Parameters
    ----------
    name : str
    dtype : float32 or float64
        Accumulator and result dtype (Keras: float32).
    """

    def __init__(self, name="mean", dtype=np.float64):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.reset_state()

    def reset_state(self):
        self.total = self.dtype.type(0)
        self.count = self.dtype.type(0)

    def update_state(self, values, sample_weight=None):
        """Add a batch.

        Parameters
        ----------
        values : ndarray of shape (N,) or (N, T, ...), or a scalar
        sample_weight : ndarray of shape (N,), (N, 1) or (N, T), optional
            Values beyond the weight's rank are averaged first; (N, T) weights
            count as their mean over T in ``count``.
        """
        dt = self.dtype
        values = np.asarray(values, dtype=dt)
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=dt)
            values, weight = align_ranks(values, weight)
            if values.ndim > weight.ndim:
                values = np.mean(values, axis=tuple(range(weight.ndim, values.ndim)))
            weight = np.broadcast_to(weight, values.shape)
            values = values * weight
            if weight.ndim > 1:
                weight = np.mean(weight, axis=tuple(range(1, weight.ndim)))
        if values.ndim > 1:
            values = np.mean(values, axis=tuple(range(1, values.ndim)))
        self.total = dt.type(self.total + np.sum(values, dtype=dt))
        if sample_weight is not None:
            n = np.sum(weight, dtype=dt)
        elif values.ndim >= 1:
            n = values.shape[0]
        else:
            n = 1
        self.count = dt.type(self.count + dt.type(n))

    def result(self):
        """``total / count``, 0 when count is 0."""
        if self.count == 0:
            return self.dtype.type(0)
        return self.dtype.type(self.total / self.count)


class MeanMetricWrapper(Mean):
    """A :class:`Mean` of ``fn(y_true, y_pred, **fn_kwargs)``, as Keras's wrapper.

    Parameters
    ----------
    fn : callable
        Per-sample metric function.
    name : str, optional
        Defaults to ``fn``'s snake_case name.
    dtype : float32 or float64
    **fn_kwargs
        Passed on to ``fn`` (``threshold``, ``k``).
    """

    def __init__(self, fn, name=None, dtype=np.float64, **fn_kwargs):
        super().__init__(name=name or to_snake_case(fn.__name__), dtype=dtype)
        self.fn = fn
        self.fn_kwargs = fn_kwargs

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        """Add a batch; ``mask`` (Keras's mask of y_pred) multiplies the weights as 0/1."""
        values = self.fn(y_true, y_pred, **self.fn_kwargs)
        if mask is not None:
            float_mask = np.asarray(mask).astype(self.dtype)
            if sample_weight is None:
                sample_weight = float_mask
            else:
                float_mask, sample_weight = align_ranks(
                    float_mask, np.asarray(sample_weight, dtype=self.dtype))
                sample_weight = sample_weight * float_mask
        super().update_state(values, sample_weight=sample_weight)


def _wrapper_class(class_name, fn, default_name, option=None, default=None):
    def __init__(self, *args, name=default_name, dtype=np.float64, **kwargs):
        if option is not None:
            value = args[0] if args else kwargs.pop(option, default)
            kwargs = {option: value}
            setattr(self, option, value)
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **kwargs)

    doc = f"``keras.metrics.{class_name}``: a running mean of :func:`{fn.__name__}`."
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc})


Accuracy = _wrapper_class("Accuracy", accuracy, "accuracy")
BinaryAccuracy = _wrapper_class("BinaryAccuracy", binary_accuracy, "binary_accuracy",
                                "threshold", 0.5)
CategoricalAccuracy = _wrapper_class("CategoricalAccuracy", categorical_accuracy,
                                     "categorical_accuracy")
SparseCategoricalAccuracy = _wrapper_class("SparseCategoricalAccuracy",
                                           sparse_categorical_accuracy,
                                           "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _wrapper_class("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                         "top_k_categorical_accuracy", "k", 5)
SparseTopKCategoricalAccuracy = _wrapper_class("SparseTopKCategoricalAccuracy",
                                               sparse_top_k_categorical_accuracy,
                                               "sparse_top_k_categorical_accuracy", "k", 5)
MeanSquaredError = _wrapper_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper_class("MeanAbsoluteError", mean_absolute_error,
                                   "mean_absolute_error")
MeanAbsolutePercentageError = _wrapper_class("MeanAbsolutePercentageError",
                                             mean_absolute_percentage_error,
                                             "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _wrapper_class("MeanSquaredLogarithmicError",
                                             mean_squared_logarithmic_error,
                                             "mean_squared_logarithmic_error")


class RootMeanSquaredError(Mean):
    """``keras.metrics.RootMeanSquaredError``: sqrt of the running mean squared error.

    The squared errors are averaged per sample over the non-batch axes (as
    :class:`Mean` does), so with uniform weights the result is the root of the
    mean over all elements.
    """

    def __init__(self, name="root_mean_squared_error", dtype=np.float64):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        dt = self.dtype
        yt, yp = align_ranks(np.asarray(y_true, dtype=dt), np.asarray(y_pred, dtype=dt))
        super().update_state(np.square(yp - yt), sample_weight=sample_weight)

    def result(self):
        return self.dtype.type(np.sqrt(super().result()))


# ---------------------------------------------------------------------------
# Resolution of compile() strings, and history names
# ---------------------------------------------------------------------------

METRIC_CLASSES = {cls.__name__: cls for cls in (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
    MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    RootMeanSquaredError)}
"""The metric classes of this module by Keras class name."""

# Keras's metric aliases (keras/src/metrics/__init__.py).
_METRIC_ALIASES = {"mse": "MeanSquaredError", "MSE": "MeanSquaredError",
                   "mae": "MeanAbsoluteError", "MAE": "MeanAbsoluteError",
                   "mape": "MeanAbsolutePercentageError", "MAPE": "MeanAbsolutePercentageError",
                   "msle": "MeanSquaredLogarithmicError", "MSLE": "MeanSquaredLogarithmicError",
                   "bce": "BinaryCrossentropy", "BCE": "BinaryCrossentropy"}

# Keras metric classes this reference does not implement (resolve_metric
# names them but raises NotImplementedError).
_KERAS_ONLY_METRICS = (
    "Sum", "CosineSimilarity", "LogCoshError", "R2Score", "AUC", "FalseNegatives",
    "FalsePositives", "Precision", "PrecisionAtRecall", "Recall", "RecallAtPrecision",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "TrueNegatives", "TruePositives",
    "ConcordanceCorrelation", "PearsonCorrelation", "Hinge", "SquaredHinge",
    "CategoricalHinge", "KLDivergence", "Poisson", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "F1Score", "FBetaScore",
    "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU")


def to_snake_case(name):
    """Keras's ``to_snake_case``: drop non-word characters, then CamelCase -> snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _metric_class_names():
    names = {}
    for cls_name in list(METRIC_CLASSES) + ["Mean"] + list(_KERAS_ONLY_METRICS):
        names[cls_name] = cls_name
        names[to_snake_case(cls_name)] = cls_name
    names.update(_METRIC_ALIASES)
    return names


def _output_kind(y_true_shape, y_pred_shape):
    """Keras's ``is_binary_or_sparse_categorical``: "binary", "sparse" or "categorical"."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    if y_pred_shape[-1] == 1:
        return "binary"
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
        return "sparse"
    return "categorical"


def resolve_metric(identifier, loss=None, y_true_shape=None, y_pred_shape=None, dtype=np.float64):
    """The metric ``compile(metrics=[identifier])`` builds, named as in history.

    Parameters
    ----------
    identifier : str, metric object or callable
    loss : object, optional
        Accepted for symmetry with Keras 2, which used it; Keras 3 (and this
        function) resolve "accuracy" from the shapes alone.
    y_true_shape, y_pred_shape : tuple of int
        Shapes of a batch's targets and outputs (needed for "accuracy"/"acc").
    dtype : float32 or float64

    Returns
    -------
    metric : Mean
        With ``metric.name`` the key in ``history``/``evaluate``.

    Raises
    ------
    ValueError
        For a string Keras does not know as a metric (as Keras: "rmse", "auc",
        "crossentropy", "ce", ...).
    NotImplementedError
        For a Keras metric this reference does not implement (e.g. "AUC").
    """
    del loss  # Keras 3 ignores it
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            if y_true_shape is None or y_pred_shape is None:
                raise ValueError("resolving 'accuracy' needs y_true_shape and y_pred_shape")
            cls = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy,
                   "categorical": CategoricalAccuracy}[_output_kind(y_true_shape, y_pred_shape)]
            return cls(name=identifier, dtype=dtype)
        cls_name = _metric_class_names().get(identifier)
        if cls_name is None:
            # keras.metrics.get also finds the functions by name (e.g. "binary_accuracy"
            # is both); anything else is Keras's error.
            raise ValueError(f"Could not interpret metric identifier: {identifier}")
        if cls_name not in METRIC_CLASSES:
            raise NotImplementedError(f"metric {identifier!r} ({cls_name}) has no reference")
        return METRIC_CLASSES[cls_name](name=identifier, dtype=dtype)
    if isinstance(identifier, Mean):
        return identifier
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=to_snake_case(identifier.__name__), dtype=dtype)
    raise ValueError(f"Could not interpret metric identifier: {identifier}")


# Keras's loss aliases (keras/src/losses/__init__.py) and loss function names.
_LOSS_ALIASES = {"bce": "binary_crossentropy", "BCE": "binary_crossentropy",
                 "kld": "kl_divergence", "KLD": "kl_divergence",
                 "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
                 "mse": "mean_squared_error", "MSE": "mean_squared_error",
                 "mape": "mean_absolute_percentage_error",
                 "MAPE": "mean_absolute_percentage_error",
                 "msle": "mean_squared_logarithmic_error",
                 "MSLE": "mean_squared_logarithmic_error"}
_LOSS_CLASSES = {"MeanSquaredError": "mean_squared_error",
                 "MeanAbsoluteError": "mean_absolute_error",
                 "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
                 "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
                 "Huber": "huber", "LogCosh": "log_cosh", "Poisson": "poisson",
                 "KLDivergence": "kl_divergence", "CosineSimilarity": "cosine_similarity",
                 "Hinge": "hinge", "SquaredHinge": "squared_hinge",
                 "CategoricalHinge": "categorical_hinge",
                 "BinaryCrossentropy": "binary_crossentropy",
                 "CategoricalCrossentropy": "categorical_crossentropy",
                 "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy"}


def resolve_loss(identifier, y_true_shape=None, y_pred_shape=None):
    """The loss function ``compile(loss=identifier)`` uses, by :mod:`.losses` name.

    ``"crossentropy"``/``"ce"`` (any letter case) become binary, sparse or
    categorical cross-entropy from the shapes (as "accuracy" does for metrics).
    Strings name a function (its default options) or a class (also its
    defaults).

    Returns
    -------
    name : str
        A key of :data:`fastrnn.reference.losses.LOSSES`.

    Raises
    ------
    ValueError
        For a string Keras does not know (e.g. "rmse", "logcosh", "huber_loss").
    """
    if identifier.lower() in ("crossentropy", "ce"):
        if y_true_shape is None or y_pred_shape is None:
            raise ValueError("resolving 'crossentropy' needs y_true_shape and y_pred_shape")
        kind = _output_kind(y_true_shape, y_pred_shape)
        return {"binary": "binary_crossentropy", "sparse": "sparse_categorical_crossentropy",
                "categorical": "categorical_crossentropy"}[kind]
    if identifier in _LOSS_ALIASES:
        return _LOSS_ALIASES[identifier]
    if identifier in _LOSS_CLASSES:
        return _LOSS_CLASSES[identifier]
    if identifier in _losses.LOSSES and not identifier.startswith(("sigmoid_", "softmax_")):
        return identifier
    raise ValueError(f"Could not interpret loss identifier: {identifier}")


def metric_result_names(metric_names, weighted_metric_names=()):
    """The name each compiled metric reports under, in compile order (Keras's rule).

    Parameters
    ----------
    metric_names : sequence of str
        ``resolve_metric(...).name`` of each entry of ``compile(metrics=...)``.
    weighted_metric_names : sequence of str
        Likewise for ``weighted_metrics``.

    Returns
    -------
    list of str
        A repeated metric name gets ``_1``, ``_2``, ...; a weighted metric whose
        name is taken becomes ``weighted_<name>`` (then ``_1``, ...).
    """
    taken = {}
    names = []

    def claim(name):
        if name not in taken:
            taken[name] = 1
            return name
        index = taken[name]
        taken[name] += 1
        return f"{name}_{index}"

    for name in metric_names:
        names.append(claim(name))
    for name in weighted_metric_names:
        names.append(claim(name if name not in taken else f"weighted_{name}"))
    return names


def history_names(metric_names, weighted_metric_names=(), validation=False):
    """The keys of ``history.history`` (or ``evaluate(return_dict=True)``), in Keras's order.

    Parameters
    ----------
    metric_names, weighted_metric_names : sequence of str
        As for :func:`metric_result_names`.
    validation : bool
        Add the ``val_`` keys (``fit`` with validation data).

    Returns
    -------
    list of str
        "loss" and :func:`metric_result_names`, with their ``val_`` twins, sorted
        (Keras sorts the logs).
    """
    keys = ["loss"] + metric_result_names(metric_names, weighted_metric_names)
    if validation:
        keys += ["val_" + k for k in keys]
    return sorted(keys)
