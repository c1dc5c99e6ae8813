"""Weight regularizers with ``keras.regularizers``'s names, arguments and numbers.

``SimpleRNN(kernel_regularizer=..., recurrent_regularizer=..., bias_regularizer=...)``,
``Dense(kernel_regularizer=..., bias_regularizer=...)`` and
``Embedding(embeddings_regularizer=...)`` take one of these (or ``"l1"``/``"l2"``,
or a config dict).  As in Keras 3, the penalty of every regularized weight,
``l1 * sum(|w|) + l2 * sum(w**2)``, is added to the loss the model trains on
and reports (``fit``'s history, ``train_on_batch``, ``evaluate``, the
``val_`` loss), computed on the weights before each update; its gradient
``l1 * sign(w) + 2 * l2 * w`` joins the loss's gradient inside the compiled
step, before clipping.  ``model.losses`` lists the current penalties.

Not supported: ``activity_regularizer`` (a penalty on a layer's output),
``OrthogonalRegularizer`` and regularizers written as Python functions
(the compiled step computes the penalty itself); each is a clear error.
"""
import numbers

import numpy as np

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative "
                         f"float. Received: {name}={value}")
    return value


class Regularizer:
    """Base class: ``l1 * sum(|w|) + l2 * sum(w**2)`` with factors ``l1``, ``l2``."""

    l1 = 0.0
    l2 = 0.0

    def __call__(self, x):
        """The penalty of the weights ``x`` (computed in float64)."""
        x = np.asarray(x, dtype=np.float64)
        return self.l1 * float(np.abs(x).sum()) + self.l2 * float(np.square(x).sum())

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``, as ``keras.regularizers.L1L2`` (defaults 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|w|)``, as ``keras.regularizers.L1`` (default 0.01)."""

    def __init__(self, l1=0.01):
        self.l1 = _factor(l1, "l1")

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w**2)``, as ``keras.regularizers.L2`` (default 0.01)."""

    def __init__(self, l2=0.01):
        self.l2 = _factor(l2, "l2")

    def get_config(self):
        return {"l2": self.l2}


# Keras's lower-case aliases
l1 = L1
l2 = L2
l1_l2 = L1L2

_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": L1L2}


def serialize(regularizer):
    """The Keras config entry of a regularizer (None for None)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config):
    """A regularizer from :func:`serialize`'s dict (or a ``{"class_name", "config"}`` dict)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret regularizer config: {config!r}")
    cls = _BY_NAME.get(config["class_name"])
    if cls is None:
        raise NotImplementedError(f"regularizer {config['class_name']!r} is not supported "
                                  f"(fastrnn has L1, L2 and L1L2)")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier, argument="regularizer"):
    """A regularizer from None, an instance, ``"l1"``/``"l2"`` or a config dict.

    Raises
    ------
    ValueError
        An identifier Keras does not interpret either (such as ``"l1_l2"``).
    NotImplementedError
        Keras's OrthogonalRegularizer, or a function: the compiled step
        computes only L1/L2 penalties.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("l1", "l2"):
            return _BY_NAME[identifier]()
        if identifier in ("orthogonal_regularizer", "OrthogonalRegularizer"):
            raise NotImplementedError(f"{argument}: OrthogonalRegularizer is not supported")
        raise ValueError(f"Could not interpret regularizer identifier for {argument}: "
                         f"{identifier!r}")
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        raise NotImplementedError(f"{argument}: a regularizer function is not supported "
                                  f"(the compiled training step computes L1/L2 penalties); "
                                  f"use fastrnn.regularizers.L1, L2 or L1L2")
    raise ValueError(f"Could not interpret regularizer identifier for {argument}: "
                     f"{identifier!r}")


# -- how layers and models use them ------------------------------------------------------

#: per layer class: regularizer argument prefix -> the weight it regularizes
_WEIGHTS = {
    "SimpleRNN": {"kernel": "kernel", "recurrent": "recurrent_kernel", "bias": "bias"},
    "Dense": {"kernel": "kernel", "bias": "bias"},
    "Embedding": {"embeddings": "embeddings"},
}
_CONSTRAINTS = ("kernel_constraint", "recurrent_constraint", "bias_constraint",
                "embeddings_constraint")


def _take_layer_arguments(layer, kwargs):
    """Pop the regularizer and constraint arguments of ``layer`` from ``kwargs`` and
    keep the regularizers on the layer (``layer.kernel_regularizer``, ...)."""
    weights = next((_WEIGHTS[k.__name__] for k in type(layer).__mro__ if k.__name__ in _WEIGHTS),
                   {})        # subclasses too (RNN of a SimpleRNNCell is a SimpleRNN)
    regularized = {}
    for prefix, weight in weights.items():
        key = f"{prefix}_regularizer"
        value = get(kwargs.pop(key, None), key)
        setattr(layer, key, value)
        if value is not None:
            regularized[weight] = value
    activity = kwargs.pop("activity_regularizer", None)
    if activity is not None:
        raise NotImplementedError("activity_regularizer is not supported yet (a penalty on "
                                  "the layer's output); weight regularizers are")
    layer.activity_regularizer = None
    for key in _CONSTRAINTS:
        if key in kwargs and key[:-len("_constraint")] in weights:
            if kwargs.pop(key) is not None:
                raise NotImplementedError(f"{key}: weight constraints are not supported yet")
    layer._regularized = regularized


def layer_regularizers(layer):
    """``{weight name in layer._specs: regularizer}`` of a built layer (wrappers included)."""
    inner = getattr(layer, "forward_layer", None)        # Bidirectional: both directions
    if inner is not None:
        own = getattr(inner, "_regularized", {})
        return {f"{side}_{name}": reg for name, reg in own.items()
                for side in ("forward", "backward")}
    wrapped = getattr(layer, "layer", None)              # TimeDistributed
    if wrapped is not None and hasattr(wrapped, "_regularized"):
        return dict(wrapped._regularized)
    return dict(getattr(layer, "_regularized", {}))


def model_segments(model):
    """(offsets, lengths, l1, l2) of every regularized weight of a built model, in params."""
    offsets, lengths, a, q = [], [], [], []
    for layer, base in zip(model._weighted_layers(), model._layer_offsets):
        regs = layer_regularizers(layer)
        if not regs:
            continue
        within = layer._weight_offsets()
        for name, shape in layer._specs:
            reg = regs.get(name)
            if reg is None or (reg.l1 == 0 and reg.l2 == 0):
                continue
            offsets.append(base + within[name])
            lengths.append(int(np.prod(shape, dtype=np.int64)))
            a.append(reg.l1)
            q.append(reg.l2)
    return offsets, lengths, a, q


def model_losses(model):
    """The penalty of each regularized weight at its current value (``model.losses``)."""
    losses = []
    for layer in model._weighted_layers():
        regs = layer_regularizers(layer)
        for (name, _), w in zip(layer._specs, layer._weights):
            if name in regs:
                losses.append(np.asarray(regs[name](w), dtype=model.dtype)[()])
    return losses
