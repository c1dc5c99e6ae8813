"""Metrics, as ``keras.metrics``: objects and functions ``compile(metrics=[...])`` takes.

The metrics below are computed inside the compiled training step (and
``evaluate``), batch by batch, with no Python per batch; their running state
is read after each compiled call.  Anything else callable -- a function
``f(y_true, y_pred)`` returning per-sample values (or a scalar), or a
:class:`Metric` subclass of your own -- runs in NumPy on every batch's
targets and outputs: it works the same way, but ``fit`` then needs one
compiled call per batch and Python per batch (slower; fine for monitoring).

Computed in the engine (Keras 3's names, arguments and defaults)
----------------------------------------------------------------
Accuracy, BinaryAccuracy(threshold=0.5), CategoricalAccuracy,
SparseCategoricalAccuracy, TopKCategoricalAccuracy(k=5),
SparseTopKCategoricalAccuracy(k=5), MeanSquaredError, MeanAbsoluteError,
MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
RootMeanSquaredError, CosineSimilarity, LogCoshError,
BinaryCrossentropy(from_logits=False, label_smoothing=0), CategoricalCrossentropy(...),
SparseCategoricalCrossentropy(from_logits=False), KLDivergence, Poisson, Hinge,
SquaredHinge, CategoricalHinge; the functions binary_accuracy,
categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
sparse_top_k_categorical_accuracy and every loss function of
:mod:`fastrnn.losses` (``mean_squared_error``, ``mse``, ...); the strings
Keras knows: class names, their snake_case, ``"mse"``, ``"mae"``, ``"mape"``,
``"msle"``, ``"bce"`` (and upper case), and ``"accuracy"``/``"acc"``, which
become binary, sparse categorical or categorical accuracy from the shapes of
the targets and the output, as Keras decides.

How they accumulate (as ``keras.metrics.Mean``)
-----------------------------------------------
Every metric is a running mean of per-sample values over an epoch: each
batch adds ``sum(w * value)`` to a total and ``sum(w)`` (without weights:
the number of samples) to a count; per-step values (a sequence output) are
averaged over the time axis per sample first.  As in Keras, ``metrics=``
are unweighted and ``weighted_metrics=`` see ``sample_weight`` and
``class_weight``.  The accuracies compare as Keras does: ``y_pred >
threshold`` strictly; argmax ties go to the first index; a top-k label
counts as found when fewer than k classes score strictly higher.
"""
import inspect

import numpy as np

from . import _engine
from . import losses as _losses
from .reference import metrics as _ref

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "RootMeanSquaredError",
    "CosineSimilarity", "LogCoshError", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "KLDivergence", "Poisson", "Hinge", "SquaredHinge",
    "CategoricalHinge",
    "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "mse", "mae", "mape", "msle", "huber", "log_cosh",
    "poisson", "kl_divergence", "hinge", "squared_hinge", "categorical_hinge",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "get", "serialize", "deserialize",
]


# ---------------------------------------------------------------- functions

def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``(y_pred > threshold) == y_true``, element-wise."""
    return _ref.binary_accuracy(y_true, y_pred, threshold=threshold)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` over the last axis."""
    return _ref.categorical_accuracy(y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label ``y_true`` equals ``argmax(y_pred)``."""
    return _ref.sparse_categorical_accuracy(y_true, y_pred)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where ``argmax(y_true)`` is among the k highest scores of ``y_pred``."""
    return _ref.top_k_categorical_accuracy(y_true, y_pred, k=k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label ``y_true`` is among the k highest scores of ``y_pred``."""
    return _ref.sparse_top_k_categorical_accuracy(y_true, y_pred, k=k)


def _accuracy(y_true, y_pred):
    """1.0 where ``y_true == y_pred`` (``keras.metrics.Accuracy``)."""
    return _ref.accuracy(y_true, y_pred)


def _cosine_similarity(y_true, y_pred, axis=-1):
    """+ cosine similarity (``keras.metrics.CosineSimilarity``; the loss is its negative)."""
    return -_losses.cosine_similarity(y_true, y_pred, axis=axis)


# the loss functions are metric functions too (keras.metrics re-exports them)
mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error
huber = _losses.huber
log_cosh = _losses.log_cosh
poisson = _losses.poisson
kl_divergence = _losses.kl_divergence
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
categorical_hinge = _losses.categorical_hinge
binary_crossentropy = _losses.binary_crossentropy
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error

# function -> (engine code, the option that goes in the engine's ``param``)
_ENGINE_FUNCTIONS = {
    _accuracy: ("accuracy", None),
    binary_accuracy: ("binary_accuracy", "threshold"),
    categorical_accuracy: ("categorical_accuracy", None),
    sparse_categorical_accuracy: ("sparse_categorical_accuracy", None),
    top_k_categorical_accuracy: ("top_k_categorical_accuracy", "k"),
    sparse_top_k_categorical_accuracy: ("sparse_top_k_categorical_accuracy", "k"),
    _cosine_similarity: ("cosine_similarity_metric", None),
    huber: ("huber", "delta"),
}
for _fn in (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
            mean_squared_logarithmic_error, log_cosh, poisson, kl_divergence, hinge,
            squared_hinge, categorical_hinge, binary_crossentropy, categorical_crossentropy,
            sparse_categorical_crossentropy):
    _ENGINE_FUNCTIONS[_fn] = (_fn.__name__, None)
del _fn


def to_snake_case(name):
    """Keras's ``to_snake_case`` (the name a function's metric gets)."""
    return _ref.to_snake_case(name)


# ---------------------------------------------------------------- objects

class Metric:
    """Base class of metrics (``keras.metrics.Metric``).

    A subclass implements ``update_state(y_true, y_pred, sample_weight=None)``,
    ``result()`` and ``reset_state()``; ``fit`` calls them in NumPy on every
    batch (one compiled call per batch).
    """

    #: "up" if higher is better (callbacks' mode="auto"), else "down"
    _direction = "down"

    def __init__(self, name=None, dtype=None):
        self.name = name if name is not None else to_snake_case(type(self).__name__)
        self.dtype = dtype

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Update with one batch and return the result (as Keras's ``Metric.__call__``)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"

    #: the engine computes this metric when not None (see MeanMetricWrapper)
    def _engine_spec(self):
        return None


class Mean(Metric):
    """Weighted running mean (``keras.metrics.Mean``): ``total / count``.

    ``update_state(values, sample_weight=None)`` adds ``sum(w * values)`` to
    ``total`` and ``sum(w)`` (or the number of samples) to ``count``; values
    with more axes than the weights are averaged over the extra axes first.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None):
        ref = _ref.Mean(dtype=np.float64)
        ref.update_state(np.asarray(values, dtype=np.float64),
                         None if sample_weight is None
                         else np.asarray(sample_weight, dtype=np.float64))
        self.total += float(ref.total)
        self.count += float(ref.count)

    def result(self):
        return float(self.total / self.count) if self.count else 0.0


class MeanMetricWrapper(Mean):
    """A running mean of ``fn(y_true, y_pred, **kwargs)`` (``keras.metrics.MeanMetricWrapper``).

    With one of this module's functions the engine computes it; any other
    function runs in NumPy on every batch.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be callable, got {fn!r}")
        super().__init__(name=name if name is not None else _function_name(fn), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(self._fn_kwargs)
        return config

    def _engine_spec(self):
        entry = _ENGINE_FUNCTIONS.get(self._fn)
        if entry is None:
            return None
        engine_name, option = entry
        kw = self._fn_kwargs
        if set(kw) - {"threshold", "k", "delta", "from_logits", "label_smoothing", "axis"}:
            return None
        if kw.get("axis", -1) != -1:
            return None
        if option is None and (set(kw) & {"threshold", "k", "delta"}):
            return None
        param = kw.get(option, {"threshold": 0.5, "k": 5, "delta": 1.0}.get(option, 0.0))
        return {"code": _engine.METRICS[engine_name], "param": float(param),
                "from_logits": bool(kw.get("from_logits", False)),
                "label_smoothing": float(kw.get("label_smoothing", 0.0)),
                "sparse": engine_name.startswith("sparse")}


def _function_name(fn):
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return to_snake_case(name) if name != "<lambda>" else "lambda"


def _wrapper(class_name, fn, default_name, doc, direction="down", positional=None, **options):
    # positional: Keras's order of the constructor's arguments ("name", "dtype", options)
    order = positional or ("name", "dtype") + tuple(options)

    def __init__(self, *args, **kwargs):
        if len(args) > len(order):
            raise TypeError(f"{class_name} takes at most {len(order)} positional arguments")
        for key, value in zip(order, args):
            if key in kwargs:
                raise TypeError(f"{class_name}: {key} given twice")
            kwargs[key] = value
        name = kwargs.pop("name", default_name)
        dtype = kwargs.pop("dtype", None)
        unknown = set(kwargs) - set(options)
        if unknown:
            raise TypeError(f"{class_name}: unexpected argument(s) {sorted(unknown)}")
        values = dict(options, **kwargs)
        _check_metric_options(class_name, values)
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **values)
        for key, value in values.items():
            setattr(self, key, value)

    return type(class_name, (MeanMetricWrapper,), {
        "__init__": __init__, "__doc__": doc, "_direction": direction,
        "__module__": __name__})


def _check_metric_options(owner, values):
    if "threshold" in values:
        t = values["threshold"]
        if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) \
                or not np.isfinite(t):
            raise ValueError(f"{owner}: threshold must be a finite number, got {t!r}")
    if "k" in values:
        k = values["k"]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{owner}: k must be an int >= 1, got {k!r}")
    if "label_smoothing" in values:
        s = values["label_smoothing"]
        if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not 0 <= s <= 1:
            raise ValueError(f"{owner}: label_smoothing must be in [0, 1], got {s!r}")
    if "from_logits" in values and not isinstance(values["from_logits"], (bool, np.bool_)):
        raise TypeError(f"{owner}: from_logits must be a bool, got {values['from_logits']!r}")
    if values.get("axis", -1) != -1:
        raise ValueError(f"{owner}: fastrnn computes metrics over the last axis only (axis=-1)")


Accuracy = _wrapper("Accuracy", _accuracy, "accuracy",
                    "``keras.metrics.Accuracy``: how often ``y_pred == y_true``.", "up")
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, "binary_accuracy",
                          "``keras.metrics.BinaryAccuracy(threshold=0.5)``.", "up",
                          threshold=0.5)
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy,
                               "categorical_accuracy",
                               "``keras.metrics.CategoricalAccuracy`` (one-hot targets).", "up")
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                     "sparse_categorical_accuracy",
                                     "``keras.metrics.SparseCategoricalAccuracy`` (integer "
                                     "labels).", "up")
TopKCategoricalAccuracy = _wrapper("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                   "top_k_categorical_accuracy",
                                   "``keras.metrics.TopKCategoricalAccuracy(k=5)``.", "up",
                                   positional=("k", "name", "dtype"), k=5)
SparseTopKCategoricalAccuracy = _wrapper("SparseTopKCategoricalAccuracy",
                                         sparse_top_k_categorical_accuracy,
                                         "sparse_top_k_categorical_accuracy",
                                         "``keras.metrics.SparseTopKCategoricalAccuracy(k=5)``.",
                                         "up", positional=("k", "name", "dtype"), k=5)
MeanSquaredError = _wrapper("MeanSquaredError", mean_squared_error, "mean_squared_error",
                            "``keras.metrics.MeanSquaredError``.")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error",
                             "``keras.metrics.MeanAbsoluteError``.")
MeanAbsolutePercentageError = _wrapper("MeanAbsolutePercentageError",
                                       mean_absolute_percentage_error,
                                       "mean_absolute_percentage_error",
                                       "``keras.metrics.MeanAbsolutePercentageError``.")
MeanSquaredLogarithmicError = _wrapper("MeanSquaredLogarithmicError",
                                       mean_squared_logarithmic_error,
                                       "mean_squared_logarithmic_error",
                                       "``keras.metrics.MeanSquaredLogarithmicError``.")
CosineSimilarity = _wrapper("CosineSimilarity", _cosine_similarity, "cosine_similarity",
                            "``keras.metrics.CosineSimilarity(axis=-1)``.", "up", axis=-1)
LogCoshError = _wrapper("LogCoshError", log_cosh, "logcosh",
                        "``keras.metrics.LogCoshError``.")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
                              "``keras.metrics.BinaryCrossentropy(from_logits=False, "
                              "label_smoothing=0)``.", from_logits=False, label_smoothing=0.0)
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", categorical_crossentropy,
                                   "categorical_crossentropy",
                                   "``keras.metrics.CategoricalCrossentropy(from_logits=False, "
                                   "label_smoothing=0)``.", from_logits=False,
                                   label_smoothing=0.0)
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy",
                                         sparse_categorical_crossentropy,
                                         "sparse_categorical_crossentropy",
                                         "``keras.metrics.SparseCategoricalCrossentropy("
                                         "from_logits=False)``.", from_logits=False)
KLDivergence = _wrapper("KLDivergence", kl_divergence, "kl_divergence",
                        "``keras.metrics.KLDivergence``.")
Poisson = _wrapper("Poisson", poisson, "poisson", "``keras.metrics.Poisson``.")
Hinge = _wrapper("Hinge", hinge, "hinge", "``keras.metrics.Hinge``.")
SquaredHinge = _wrapper("SquaredHinge", squared_hinge, "squared_hinge",
                        "``keras.metrics.SquaredHinge``.")
CategoricalHinge = _wrapper("CategoricalHinge", categorical_hinge, "categorical_hinge",
                            "``keras.metrics.CategoricalHinge``.")


class RootMeanSquaredError(Mean):
    """``keras.metrics.RootMeanSquaredError``: sqrt of the running mean squared error."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        yt, yp = _ref.align_ranks(np.asarray(y_true, dtype=np.float64),
                                  np.asarray(y_pred, dtype=np.float64))
        super().update_state(np.square(yp - yt), sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))

    def _engine_spec(self):
        return {"code": _engine.METRICS["mean_squared_error"], "param": 0.0,
                "from_logits": False, "label_smoothing": 0.0, "sparse": False}


_CLASSES = (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
            TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
            MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
            RootMeanSquaredError, CosineSimilarity, LogCoshError, BinaryCrossentropy,
            CategoricalCrossentropy, SparseCategoricalCrossentropy, KLDivergence, Poisson,
            Hinge, SquaredHinge, CategoricalHinge, Mean)
_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({to_snake_case(cls.__name__): cls for cls in _CLASSES})
_BY_NAME.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
                 "mse": MeanSquaredError, "MSE": MeanSquaredError,
                 "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                 "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
                 "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError})
#: Keras metrics fastrnn does not have (their names are an error that says so)
_NOT_IMPLEMENTED = ("AUC", "F1Score", "FBetaScore", "R2Score",
                    "TruePositives", "TrueNegatives", "FalsePositives", "FalseNegatives",
                    "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
                    "SpecificityAtSensitivity", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU",
                    "OneHotMeanIoU", "PearsonCorrelation", "ConcordanceCorrelation", "Sum")

#: Strings ``compile`` resolves from the shapes of the targets and the output.
SHAPE_RESOLVED = ("accuracy", "acc")


def get(identifier):
    """A metric object or function from a name, a class, a config dict or itself
    (``keras.metrics.get``).  ``"accuracy"``/``"acc"`` need shapes (``compile``
    resolves them: see :func:`resolve`)."""
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is not None:
            return cls()
        base = {to_snake_case(n): n for n in _NOT_IMPLEMENTED}.get(identifier, identifier)
        if base in _NOT_IMPLEMENTED:
            raise ValueError(f"metric {identifier!r}: keras.metrics.{base} is not available in "
                             f"fastrnn (pass a function f(y_true, y_pred) to compute it in "
                             f"NumPy)")
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}")
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def resolve(identifier, y_true_shape, y_pred_shape):
    """The metric object ``compile(metrics=[identifier])`` uses, named as in ``history``.

    Keras's rules (``keras/src/trainers/compile_utils.py``): a string keeps
    its spelling as the name (``"acc"``, ``"mse"``); ``"accuracy"``/``"acc"``
    (any case) become binary accuracy when the output has one unit, sparse
    categorical accuracy when the targets have lower rank than the output (or
    a trailing 1 against several units), else categorical accuracy; an object
    keeps its ``name``; a function is wrapped in :class:`MeanMetricWrapper`
    named after it.
    """
    if identifier is None:
        raise ValueError("Expected metric, received None")
    if isinstance(identifier, str) and identifier.lower() in SHAPE_RESOLVED:
        kind = _losses.output_kind(y_true_shape, y_pred_shape)
        cls = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy,
               "categorical": CategoricalAccuracy}[kind]
        return cls(name=identifier)
    obj = get(identifier)
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj)
    if isinstance(identifier, str):
        obj.name = identifier
    return obj


def serialize(metric):
    if isinstance(metric, Metric):
        return {"class_name": type(metric).__name__, "config": metric.get_config()}
    if callable(metric) and metric in _ENGINE_FUNCTIONS:
        return metric.__name__
    raise TypeError(f"cannot serialize {metric!r}")


def deserialize(config):
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a metric config is a dict with 'class_name' and 'config', "
                         f"got {config!r}")
    cls = _BY_NAME.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Could not interpret metric identifier: {config['class_name']!r}")
    return cls.from_config(dict(config.get("config") or {}))


# Precision and Recall live in their own module (they count, they do not average)
from ._confusion_metrics import Precision, Recall  # noqa: E402

__all__ += ["Precision", "Recall"]
_BY_NAME.update({"Precision": Precision, "Recall": Recall, "precision": Precision,
                 "recall": Recall})
