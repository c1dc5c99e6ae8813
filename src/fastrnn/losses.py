"""Losses, as ``keras.losses``: descriptions the compiled engine computes.

``compile(loss=...)`` takes a name (``"mse"``, ``"mean_squared_error"``,
``"MeanSquaredError"``, ``"binary_crossentropy"``, ``"crossentropy"``, ...),
a loss object (``BinaryCrossentropy(from_logits=True)``), a loss class, or
one of this module's functions (``fastrnn.losses.huber``).  The engine
computes the loss and its gradient inside the compiled training step.

Supported (Keras 3's names, arguments and defaults)
---------------------------------------------------
=================================  =========================================
class                              function / strings
=================================  =========================================
MeanSquaredError                   mean_squared_error, "mse", "MSE"
MeanAbsoluteError                  mean_absolute_error, "mae", "MAE"
MeanAbsolutePercentageError        mean_absolute_percentage_error, "mape"
MeanSquaredLogarithmicError        mean_squared_logarithmic_error, "msle"
Huber(delta=1.0)                   huber
LogCosh                            log_cosh
Poisson                            poisson
KLDivergence                       kl_divergence, "kld", "KLD"
CosineSimilarity(axis=-1)          cosine_similarity
Hinge, SquaredHinge                hinge, squared_hinge
CategoricalHinge                   categorical_hinge
BinaryCrossentropy                 binary_crossentropy, "bce", "BCE"
CategoricalCrossentropy            categorical_crossentropy
SparseCategoricalCrossentropy      sparse_categorical_crossentropy
=================================  =========================================

``"crossentropy"`` / ``"ce"`` choose binary, sparse or categorical
cross-entropy from the shapes of the targets and the output, as Keras does.

Numbers
-------
Reduction is Keras's ``"sum_over_batch_size"``: the (sample-weighted) sum of
the per-sample losses divided by their *number* (samples, times time steps
for a per-step output), not by the sum of the weights.  The numbers follow
:mod:`fastrnn.reference.losses`, the NumPy oracle checked against Keras 3:

- Cross-entropy on probabilities (``from_logits=False``) clips them to
  ``[1e-7, 1 - 1e-7]`` as Keras does (categorical cross-entropy first divides
  by their sum), so a probability outside [0, 1], 0 or 1 gives a bounded
  loss, and no gradient beyond the bounds.
- A Dense output layer with a sigmoid (softmax) activation followed by binary
  (categorical or sparse categorical) cross-entropy is computed from the
  logits, stably (fused): Keras's value inside the clip bounds exactly, and
  the gradient ``p - y``.
- Sparse labels must be whole numbers in ``[0, classes)`` (or
  ``ignore_class``): anything else is a ``ValueError`` before training.
- Hinge losses turn 0/1 labels into -1/+1 when every label of the batch is 0
  or 1 (a batch-wide test, as Keras).
- The gradient of ``cosine_similarity`` at an all-zero output is taken as 0
  (Keras on JAX gives NaN).

Called directly, as in Keras: a loss object returns the reduced loss (a
float), a loss function returns the per-sample losses (an array); both are
computed in NumPy by :mod:`fastrnn.reference.losses`.
"""
import inspect

import numpy as np

from . import _engine
from .reference import losses as _ref

__all__ = [
    "Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Huber", "LogCosh",
    "Poisson", "KLDivergence", "CosineSimilarity", "Hinge", "SquaredHinge",
    "CategoricalHinge", "BinaryCrossentropy", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "huber", "log_cosh", "poisson", "kl_divergence",
    "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "mse", "mae", "mape", "msle", "kld", "get", "serialize", "deserialize",
]

#: the clip bound of probabilities (``keras.backend.epsilon()``)
EPSILON = _ref.EPSILON


# ---------------------------------------------------------------- functions (per sample)

def _per_sample(name, y_true, y_pred, **options):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind not in "fiu" or np.asarray(y_true).dtype.kind not in "fiub":
        raise TypeError("y_true and y_pred must be arrays of real numbers")
    with np.errstate(divide="ignore", invalid="ignore"):
        return getattr(_ref, name)(y_true, y_pred, **options)


def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred)**2, axis=-1)``: per-sample losses, shape ``y_pred.shape[:-1]``."""
    return _per_sample("mean_squared_error", y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|, axis=-1)``: per-sample losses."""
    return _per_sample("mean_absolute_error", y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(|(y_true - y_pred) / max(|y_true|, 1e-7)|, axis=-1)``: per-sample losses."""
    return _per_sample("mean_absolute_percentage_error", y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))**2, axis=-1)``."""
    return _per_sample("mean_squared_logarithmic_error", y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """``mean(0.5 e**2 if |e| <= delta else delta (|e| - 0.5 delta), axis=-1)``, ``e = y_pred - y_true``."""
    return _per_sample("huber", y_true, y_pred, delta=delta)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)`` (computed without overflow)."""
    return _per_sample("log_cosh", y_true, y_pred)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)``."""
    return _per_sample("poisson", y_true, y_pred)


def kl_divergence(y_true, y_pred):
    """``sum(t * log(t / p), axis=-1)`` with ``t``, ``p`` clipped to ``[1e-7, 1]``."""
    return _per_sample("kl_divergence", y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis=-1):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``."""
    return _per_sample("cosine_similarity", y_true, y_pred, axis=axis)


def hinge(y_true, y_pred):
    """``mean(max(1 - y * y_pred, 0), axis=-1)``; 0/1 labels become -1/+1."""
    return _per_sample("hinge", y_true, y_pred)


def squared_hinge(y_true, y_pred):
    """``mean(max(1 - y * y_pred, 0)**2, axis=-1)``; 0/1 labels become -1/+1."""
    return _per_sample("squared_hinge", y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis."""
    return _per_sample("categorical_hinge", y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Mean over ``axis`` of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to
    ``[1e-7, 1 - 1e-7]`` (``log sigmoid`` of the logits with ``from_logits``)."""
    return _per_sample("binary_crossentropy", y_true, y_pred, from_logits=from_logits,
                       label_smoothing=label_smoothing, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """``-sum(y * log p)`` over the class axis, ``p = y_pred / sum(y_pred)`` clipped
    (``log_softmax`` of the logits with ``from_logits``)."""
    return _per_sample("categorical_crossentropy", y_true, y_pred, from_logits=from_logits,
                       label_smoothing=label_smoothing, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """:func:`categorical_crossentropy` against ``one_hot(y_true)``: ``y_true`` integer labels."""
    return _per_sample("sparse_categorical_crossentropy", y_true, y_pred,
                       from_logits=from_logits, ignore_class=ignore_class, axis=axis)


# Short names (Keras's string aliases; also functions here, as in Keras 2)
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence


# ---------------------------------------------------------------- classes

_REDUCTIONS = ("sum_over_batch_size",)


class Loss:
    """Base class of the losses the engine computes (``keras.losses.Loss``).

    Parameters
    ----------
    name : str, optional
    reduction : {"sum_over_batch_size"}
        The only reduction the engine trains with (Keras's default).
    dtype : None
        Accepted for Keras compatibility; the model's dtype is used.

    Calling a loss gives the reduced loss of a batch (a float), computed in
    NumPy: ``loss(y_true, y_pred, sample_weight=None)``.
    """

    #: the function of this module the loss wraps (its name is the engine's)
    _fn = None
    _defaults = {}

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None, **options):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be "
                             f"'sum_over_batch_size' (the only one fastrnn trains with), got "
                             f"{reduction!r}")
        if self._fn is None:
            raise TypeError(f"{type(self).__name__}: fastrnn computes losses in its compiled "
                            f"engine and cannot run a custom Loss subclass; use one of "
                            f"fastrnn.losses' classes")
        self.name = name if name is not None else self._default_name
        self.reduction = reduction
        self.dtype = dtype
        self._options = dict(self._defaults)
        for key, value in options.items():
            if key not in self._defaults:
                raise TypeError(f"{type(self).__name__}: unexpected argument {key!r}")
            self._options[key] = value
        self._check_options()

    _default_name = "loss"

    def _check_options(self):
        o = self._options
        cls = type(self).__name__
        if "from_logits" in o and not isinstance(o["from_logits"], (bool, np.bool_)):
            raise TypeError(f"{cls}: from_logits must be a bool, got {o['from_logits']!r}")
        if "label_smoothing" in o:
            s = o["label_smoothing"]
            if isinstance(s, bool) or not isinstance(s, (int, float, np.floating, np.integer)) \
                    or not 0 <= s <= 1:
                raise ValueError(f"{cls}: label_smoothing must be a number in [0, 1], got {s!r}")
            o["label_smoothing"] = float(s)
        if "delta" in o:
            d = o["delta"]
            if isinstance(d, bool) or not isinstance(d, (int, float, np.floating, np.integer)) \
                    or not (np.isfinite(d) and d > 0):
                raise ValueError(f"{cls}: delta must be a finite number > 0, got {d!r}")
            o["delta"] = float(d)
        if "axis" in o:
            if o["axis"] != -1:
                raise ValueError(f"{cls}: fastrnn computes losses over the last axis only "
                                 f"(axis=-1), got axis={o['axis']!r}")
        if o.get("ignore_class") is not None:
            ic = o["ignore_class"]
            if isinstance(ic, bool) or not isinstance(ic, (int, np.integer)):
                raise TypeError(f"{cls}: ignore_class must be an int or None, got {ic!r}")
            o["ignore_class"] = int(ic)

    def __getattr__(self, key):
        options = self.__dict__.get("_options", {})
        if key in options:
            return options[key]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def call(self, y_true, y_pred):
        """Per-sample losses (the wrapped function)."""
        return type(self)._fn(y_true, y_pred, **self._options)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss ("sum_over_batch_size") of a batch, as a float."""
        y_pred = np.asarray(y_pred)
        dtype = y_pred.dtype if y_pred.dtype in (np.float32, np.float64) else np.float64
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(_ref.loss_value(self._fn.__name__, y_true, y_pred.astype(dtype), w,
                                         **self._options))

    def get_config(self):
        config = {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}
        config.update(self._options)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items()
                         if v != self._defaults[k])
        return f"{type(self).__name__}({opts})"

    # -- the engine's view ------------------------------------------------------
    @property
    def _engine_name(self):
        return self._fn.__name__

    @property
    def _sparse(self):
        """Targets are integer labels (one per sample or step)."""
        return self._fn is sparse_categorical_crossentropy

    def _engine_config(self):
        """Keyword arguments of ``Engine.set_loss`` (computed once: options are fixed)."""
        config = self.__dict__.get("_engine_config_cache")
        if config is None:
            o = self._options
            config = {"code": _engine.LOSSES[self._fn.__name__],
                      "from_logits": bool(o.get("from_logits", False)),
                      "label_smoothing": float(o.get("label_smoothing", 0.0)),
                      "param": float(o.get("delta", 0.0)),
                      "ignore_class": o.get("ignore_class")}
            self._engine_config_cache = config
            self._engine_key_cache = tuple(sorted(config.items()))
        return config

    def _engine_key(self):
        """The engine configuration as a hashable value."""
        key = self.__dict__.get("_engine_key_cache")
        if key is None:
            self._engine_config()
            key = self._engine_key_cache
        return key


def _loss_class(class_name, fn, default_name, doc, **defaults):
    def __init__(self, *args, reduction="sum_over_batch_size", name=default_name, dtype=None,
                 **kwargs):
        names = list(defaults)
        if len(args) > len(names):
            raise TypeError(f"{class_name} takes at most {len(names)} positional arguments")
        for key, value in zip(names, args):
            if key in kwargs:
                raise TypeError(f"{class_name}: {key} given twice")
            kwargs[key] = value
        Loss.__init__(self, name=name, reduction=reduction, dtype=dtype, **kwargs)

    return type(class_name, (Loss,), {
        "__init__": __init__, "__doc__": doc, "_fn": staticmethod(fn),
        "_defaults": defaults, "_default_name": default_name, "__module__": __name__})


MeanSquaredError = _loss_class(
    "MeanSquaredError", mean_squared_error, "mean_squared_error",
    "``keras.losses.MeanSquaredError``: ``mean((y_true - y_pred)**2)``.")
MeanAbsoluteError = _loss_class(
    "MeanAbsoluteError", mean_absolute_error, "mean_absolute_error",
    "``keras.losses.MeanAbsoluteError``: ``mean(|y_true - y_pred|)``.")
MeanAbsolutePercentageError = _loss_class(
    "MeanAbsolutePercentageError", mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "``keras.losses.MeanAbsolutePercentageError``.")
MeanSquaredLogarithmicError = _loss_class(
    "MeanSquaredLogarithmicError", mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error", "``keras.losses.MeanSquaredLogarithmicError``.")
Huber = _loss_class(
    "Huber", huber, "huber_loss",
    "``keras.losses.Huber(delta=1.0)``: quadratic within ``delta``, linear beyond.",
    delta=1.0)
LogCosh = _loss_class("LogCosh", log_cosh, "log_cosh", "``keras.losses.LogCosh``.")
Poisson = _loss_class("Poisson", poisson, "poisson", "``keras.losses.Poisson``.")
KLDivergence = _loss_class("KLDivergence", kl_divergence, "kl_divergence",
                           "``keras.losses.KLDivergence``.")
CosineSimilarity = _loss_class(
    "CosineSimilarity", cosine_similarity, "cosine_similarity",
    "``keras.losses.CosineSimilarity(axis=-1)``: minus the cosine similarity "
    "(only axis=-1).", axis=-1)
Hinge = _loss_class("Hinge", hinge, "hinge", "``keras.losses.Hinge``.")
SquaredHinge = _loss_class("SquaredHinge", squared_hinge, "squared_hinge",
                           "``keras.losses.SquaredHinge``.")
CategoricalHinge = _loss_class("CategoricalHinge", categorical_hinge, "categorical_hinge",
                               "``keras.losses.CategoricalHinge``.")
BinaryCrossentropy = _loss_class(
    "BinaryCrossentropy", binary_crossentropy, "binary_crossentropy",
    "``keras.losses.BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)``.",
    from_logits=False, label_smoothing=0.0, axis=-1)
CategoricalCrossentropy = _loss_class(
    "CategoricalCrossentropy", categorical_crossentropy, "categorical_crossentropy",
    "``keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, "
    "axis=-1)``: targets one-hot (or probabilities) over the last axis.",
    from_logits=False, label_smoothing=0.0, axis=-1)
SparseCategoricalCrossentropy = _loss_class(
    "SparseCategoricalCrossentropy", sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy",
    "``keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)``: "
    "targets are integer labels, shape (N,) or (N, 1) (or (N, T) / (N, T, 1) per step).",
    from_logits=False, ignore_class=None, axis=-1)


class LossFunctionWrapper(Loss):
    """``keras.losses.LossFunctionWrapper(fn, name=None, **kwargs)`` for a function of this
    module (the engine cannot differentiate other callables)."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        cls = _BY_FUNCTION.get(fn)
        if cls is None:
            raise TypeError(_custom_message(fn))
        self._fn = fn
        self._defaults = cls._defaults
        self._default_name = fn.__name__
        Loss.__init__(self, name=name, reduction=reduction, dtype=dtype, **kwargs)

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._options)


_CLASSES = (MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
            MeanSquaredLogarithmicError, Huber, LogCosh, Poisson, KLDivergence,
            CosineSimilarity, Hinge, SquaredHinge, CategoricalHinge, BinaryCrossentropy,
            CategoricalCrossentropy, SparseCategoricalCrossentropy)
_BY_FUNCTION = {cls._fn: cls for cls in _CLASSES}
_CLASS_BY_NAME = {cls.__name__: cls for cls in _CLASSES}
# Keras's string names of the functions (a string names a function, wrapped; or a class)
_FUNCTION_BY_NAME = {cls._fn.__name__: cls._fn for cls in _CLASSES}
_FUNCTION_BY_NAME.update({"bce": binary_crossentropy, "BCE": binary_crossentropy,
                          "kld": kl_divergence, "KLD": kl_divergence,
                          "mae": mean_absolute_error, "MAE": mean_absolute_error,
                          "mse": mean_squared_error, "MSE": mean_squared_error,
                          "mape": mean_absolute_percentage_error,
                          "MAPE": mean_absolute_percentage_error,
                          "msle": mean_squared_logarithmic_error,
                          "MSLE": mean_squared_logarithmic_error})
_BY_NAME = dict(_CLASS_BY_NAME, **_FUNCTION_BY_NAME)

#: Strings ``compile`` resolves from the shapes of the targets and the output.
SHAPE_RESOLVED = ("crossentropy", "ce")


def _custom_message(identifier):
    return (f"loss {identifier!r} is not one fastrnn's compiled engine can compute (it needs "
            f"the gradient in compiled code, so custom loss functions are not supported); use "
            f"a name ({', '.join(sorted(k for k in _BY_NAME if k[0].islower()))}), a "
            f"fastrnn.losses class or function")


def get(identifier):
    """A :class:`Loss` from a name, a class, a function of this module, a config dict or
    an instance (``keras.losses.get``).

    Raises
    ------
    ValueError
        For an unknown name (``"crossentropy"``/``"ce"`` need shapes: ``compile``
        resolves them).
    TypeError
        For anything the engine cannot compute (a custom function or Loss subclass).
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _CLASS_BY_NAME:
            return _CLASS_BY_NAME[identifier]()
        fn = _FUNCTION_BY_NAME.get(identifier)
        if fn is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}; known: "
                             f"{', '.join(sorted(_BY_NAME))}")
        return LossFunctionWrapper(fn, name=identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and identifier in _BY_FUNCTION:
        return LossFunctionWrapper(identifier, name=identifier.__name__)
    raise TypeError(_custom_message(identifier))


def resolve(identifier, y_true_shape, y_pred_shape):
    """What ``compile(loss=identifier)`` trains with, for targets/outputs of these shapes.

    ``"crossentropy"``/``"ce"`` (any letter case) become binary, sparse or
    categorical cross-entropy as Keras decides from the shapes; anything
    else is :func:`get`.
    """
    if isinstance(identifier, str) and identifier.lower() in SHAPE_RESOLVED:
        kind = output_kind(y_true_shape, y_pred_shape)
        fn = {"binary": binary_crossentropy, "sparse": sparse_categorical_crossentropy,
              "categorical": categorical_crossentropy}[kind]
        return LossFunctionWrapper(fn, name=identifier)
    return get(identifier)


def output_kind(y_true_shape, y_pred_shape):
    """Keras's rule: "binary" (one output unit), "sparse" (targets of lower rank, or a
    trailing 1 against several units) or "categorical"."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    if y_pred_shape[-1] == 1:
        return "binary"
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
        return "sparse"
    return "categorical"


def serialize(loss):
    """``{"class_name": ..., "config": ...}`` of a loss object (or a function's name)."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    if callable(loss) and loss in _BY_FUNCTION:
        return loss.__name__
    raise TypeError(f"cannot serialize {loss!r}")


def deserialize(config):
    """The loss :func:`serialize` described."""
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a loss config is a dict with 'class_name' and 'config', got {config!r}")
    cls = _CLASS_BY_NAME.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Could not interpret loss identifier: {config['class_name']!r}")
    return cls.from_config(dict(config.get("config") or {}))
