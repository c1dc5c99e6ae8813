"""How each fastrnn layer appears in a Keras 3 file: one table entry per layer class.

An entry (:class:`KerasLayerFormat`) knows, for one class:

- its Keras ``class_name`` (also fastrnn's class name) and the group name
  Keras gives it in the weights file (the snake-case class name, numbered
  within the model: ``simple_rnn``, ``simple_rnn_1``, ...);
- ``to_keras(layer, dtype)``: the ``config`` dict Keras's ``get_config()``
  would write for the same layer;
- ``from_keras(cfg)``: the constructor arguments of the fastrnn layer, read
  from a Keras config through a :class:`ConfigReader` (which refuses any
  argument fastrnn cannot honour, naming the layer and the argument);
- ``weights(kwargs, input_shape)``: where each weight lives in the weights
  file (relative to the layer's group), its shape (in ``get_weights()``
  order) and the layer's output shape, computed from the config alone, so a
  file's claims are checked before anything is allocated;
- ``vars_names(kwargs, name)``: the ``vars`` groups Keras writes for the layer
  with their ``name`` attributes.

Adding a layer (Embedding, Bidirectional, Dropout, Masking, ...) is one
:func:`register` call: nothing else in :mod:`fastrnn.saving` changes.

Nothing read from a config is ever imported, evaluated or called: ``module``
and ``registered_name`` only decide whether a class is Keras's own, class
names are looked up in this table, and activations and initializers are
names looked up in fixed tables.

Layouts of layers fastrnn may add (as Keras 3.15 writes them)
-------------------------------------------------------------
- ``Embedding``: config ``input_dim``, ``output_dim``, ``embeddings_initializer``
  (RandomUniform -0.05..0.05), ``embeddings_regularizer``, ``embeddings_constraint``,
  ``activity_regularizer``, ``mask_zero``; weight ``layers/embedding/vars/0``
  (input_dim, output_dim).  Its model's InputLayer has an integer dtype.
- ``Bidirectional``: config ``merge_mode`` ("concat", "sum", "mul", "ave", None),
  ``layer`` (the serialized inner SimpleRNN) and optionally ``backward_layer``;
  weights ``layers/bidirectional/forward_layer/cell/vars/0..2`` then
  ``.../backward_layer/cell/vars/0..2`` (get_weights order), with ``vars``
  groups named ``bidirectional``, ``forward_<inner name>``,
  ``backward_<inner name>`` and ``simple_rnn_cell``.
- ``Dropout``: ``rate``, ``seed``, ``noise_shape``; ``Masking``: ``mask_value``;
  no weights, but an empty ``layers/<name>/vars`` group (with its ``name``).

What is written
---------------
The configs are the subset of Keras 3's that every Keras 3 release reads:
arguments added in later releases (``ragged``/``optional`` on ``InputLayer``,
``quantization_config`` on ``Dense``, ``input_axes``/``output_axes`` on
``GlorotUniform``) are left out, since they are at their defaults and older
Keras refuses unknown arguments.  Checked with Keras 3.3 and 3.15.
"""
import numbers
import re
from dataclasses import dataclass
from typing import Callable

from ._files import FileFormatError

__all__ = ["KerasLayerFormat", "ConfigReader", "register", "LAYER_FORMATS", "format_for_layer",
           "format_for_class", "keras_object", "parse_dtype", "parse_shape", "snake_case"]

# Upper bound on any dimension read from a file (units, features, steps).
MAX_DIM = 2 ** 31 - 1


def snake_case(name):
    """``SimpleRNN`` -> ``simple_rnn``, ``Dense`` -> ``dense`` (Keras's rule for weight groups).

    An underscore goes before a capital that starts a lowercase run and
    between a lowercase letter and a capital.
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_object(module, class_name, config):
    """A serialized Keras object as Keras 3 writes it (``registered_name`` None)."""
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


def _is_keras_module(module):
    return module is None or (isinstance(module, str) and
                              (module == "keras" or module.startswith("keras.")))


def check_keras_class(obj, where):
    """Refuse serialized objects that are not Keras's own classes (custom or registered ones)."""
    module = obj.get("module")
    registered = obj.get("registered_name")
    class_name = obj.get("class_name")
    builtin_registration = registered in (None, class_name) or (
        isinstance(registered, str) and registered.startswith("keras"))
    if not _is_keras_module(module) or not builtin_registration:
        raise FileFormatError(f"{where}: {class_name!r} is a custom class "
                              f"(module {module!r}, registered as {registered!r}); "
                              f"fastrnn loads only Keras's own classes")


# -- dtypes --------------------------------------------------------------------
# Keras dtype policy name -> the dtype of a fastrnn model holding that layer.
# Mixed and half precision keep float32 variables (or lose nothing when widened).
_POLICY_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float32",
                  "bfloat16": "float32", "mixed_float16": "float32",
                  "mixed_bfloat16": "float32"}


def parse_dtype(value, where):
    """The fastrnn dtype (``"float32"``/``"float64"``, or None) of a Keras dtype entry.

    Keras writes a plain name (Keras < 3.4) or a serialized ``DTypePolicy``.
    """
    if value is None:
        return None
    name = value
    if isinstance(value, dict):
        if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", "Policy"):
            raise FileFormatError(f"{where}: unsupported dtype policy "
                                  f"{value.get('class_name')!r}")
        inner = value.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
    if not isinstance(name, str) or name not in _POLICY_DTYPES:
        raise FileFormatError(f"{where}: dtype {name!r} is not supported; fastrnn "
                              f"computes in float32 or float64")
    return _POLICY_DTYPES[name]


def parse_shape(value, where, argument):
    """A Keras shape list (``[null, 3, 1]``) as a tuple of int/None, each dimension bounded."""
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 8:
        raise FileFormatError(f"{where}: {argument} must be a list of dimensions, "
                              f"got {value!r}")
    out = []
    for d in value:
        if d is None:
            out.append(None)
        elif isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_DIM:
            raise FileFormatError(f"{where}: {argument} has an invalid dimension {d!r}")
        else:
            out.append(d)
    return tuple(out)


# -- initializers --------------------------------------------------------------
# Keras class name -> (fastrnn.initializers class name, Keras config keys it takes)
_INITIALIZERS = {
    "Zeros": ("Zeros", ()), "Ones": ("Ones", ()), "Constant": ("Constant", ("value",)),
    "RandomUniform": ("RandomUniform", ("minval", "maxval", "seed")),
    "RandomNormal": ("RandomNormal", ("mean", "stddev", "seed")),
    "GlorotUniform": ("GlorotUniform", ("seed",)),
    "GlorotNormal": ("GlorotNormal", ("seed",)),
    "Orthogonal": ("Orthogonal", ("gain", "seed")),
    "OrthogonalInitializer": ("Orthogonal", ("gain", "seed")),
}
_SNAKE_INITIALIZERS = {snake_case(k): k for k in _INITIALIZERS if k != "OrthogonalInitializer"}


def _default_initializer(name):
    from .. import initializers
    return getattr(initializers, name)()


def initializer_from_keras(value, default, where, argument):
    """A fastrnn initializer for a Keras initializer entry.

    Weights are read from the file, so the initializer matters only if the
    model is re-initialised; an initializer fastrnn does not have
    (``HeNormal``, ``VarianceScaling``, ...) falls back to ``default``.
    """
    from .. import initializers
    if value is None:
        return _default_initializer(default)
    if isinstance(value, str):
        class_name = _SNAKE_INITIALIZERS.get(value, value)
        cfg = {}
    elif isinstance(value, dict):
        check_keras_class(value, f"{where}, {argument}")
        class_name = value.get("class_name")
        cfg = value.get("config") if isinstance(value.get("config"), dict) else {}
    else:
        raise FileFormatError(f"{where}: {argument} must be an initializer, got {value!r}")
    if class_name not in _INITIALIZERS:
        return _default_initializer(default)
    fastrnn_name, keys = _INITIALIZERS[class_name]
    kwargs = {}
    for key in keys:
        v = cfg.get(key)
        if key == "seed":
            if isinstance(v, int) and not isinstance(v, bool):
                kwargs["seed"] = v
        elif isinstance(v, numbers.Real) and not isinstance(v, bool):
            kwargs[key] = float(v)
    try:
        return getattr(initializers, fastrnn_name)(**kwargs)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{where}: invalid {argument} ({e})") from e


# fastrnn initializer class -> (Keras class name, attributes written to its config).
# Orthogonal is written under its Keras 3.0-3.3 name, which later releases
# still read (Keras < 3.4 does not know the short name).
_INITIALIZER_CONFIGS = {
    "Zeros": ("Zeros", ()), "Ones": ("Ones", ()), "Constant": ("Constant", ("value",)),
    "RandomUniform": ("RandomUniform", ("seed", "minval", "maxval")),
    "RandomNormal": ("RandomNormal", ("seed", "mean", "stddev")),
    "GlorotUniform": ("GlorotUniform", ("seed",)),
    "GlorotNormal": ("GlorotNormal", ("seed",)),
    "Orthogonal": ("OrthogonalInitializer", ("seed", "gain")),
}


def initializer_to_keras(initializer, default):
    """The Keras serialization of a fastrnn initializer (``default``'s for other callables)."""
    name = type(initializer).__name__
    if name not in _INITIALIZER_CONFIGS:
        initializer, name = None, default
    keras_name, attrs = _INITIALIZER_CONFIGS[name]
    cfg = {}
    for attr in attrs:
        value = getattr(initializer, attr, None)
        if value is None and attr != "seed":
            value = {"gain": 1.0, "value": 0.0, "minval": -0.05, "maxval": 0.05,
                     "mean": 0.0, "stddev": 0.05}[attr]
        cfg[attr] = value
    return keras_object("keras.initializers", keras_name, cfg)


# -- reading configs ---------------------------------------------------------------
def _is_inert(value):
    """A value Keras writes for an argument left at its default (None, False, 0, empty)."""
    return value is None or value is False or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, (dict, list, str)) and len(value) == 0)


class ConfigReader:
    """Reads one layer's Keras config, argument by argument, refusing what fastrnn cannot honour.

    Parameters
    ----------
    cfg : dict
        The ``config`` of a serialized layer.
    where : str
        Names the layer in error messages (``"layer 2 ('dense', Dense)"``).

    Every key must be consumed by one of the methods; :meth:`finish` then
    refuses leftovers unless they are at a default value (None, False, 0,
    empty), so arguments a newer Keras adds at their defaults load, and
    anything that would change the computation does not.
    """

    def __init__(self, cfg, where):
        if not isinstance(cfg, dict):
            raise FileFormatError(f"{where}: config must be an object, got {type(cfg).__name__}")
        self.cfg = cfg
        self.where = where
        self._seen = set()

    def raw(self, key, default=None):
        """The value of ``key`` as it is in the file (marked as read; no check)."""
        self._seen.add(key)
        return self.cfg.get(key, default)

    def int(self, key, default=None, minimum=1):
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_DIM:
            raise FileFormatError(f"{self.where}: {key} must be an int in "
                                  f"[{minimum}, {MAX_DIM}], got {value!r}")
        return value

    def bool(self, key, default):
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise FileFormatError(f"{self.where}: {key} must be true or false, got {value!r}")
        return value

    def name(self, key="name"):
        value = self.raw(key, None)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 1000):
            raise FileFormatError(f"{self.where}: {key} must be a non-empty string, "
                                  f"got {value!r}")
        return value

    def activation(self, key="activation", default="linear"):
        value = self.raw(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise FileFormatError(f"{self.where}: {key} {value!r} is not a built-in activation "
                                  f"name; fastrnn loads no custom or serialized functions")
        return value

    def dtype(self, key="dtype"):
        return parse_dtype(self.raw(key, None), self.where)

    def initializer(self, key, default):
        return initializer_from_keras(self.raw(key, None), default, self.where, key)

    def require(self, key, allowed, reason):
        """Accept ``key`` only with a value in ``allowed`` (absent counts as allowed[0])."""
        value = self.raw(key, allowed[0])
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise FileFormatError(f"{self.where}: {key}={value!r} is not supported ({reason})")
        return value

    def ignore(self, *keys):
        """Arguments that do not change what fastrnn computes (``unroll``, ...)."""
        self._seen.update(keys)

    def finish(self):
        for key in sorted(set(self.cfg) - self._seen):
            if not _is_inert(self.cfg[key]):
                raise FileFormatError(f"{self.where}: argument {key}={self.cfg[key]!r} "
                                      f"is not supported by fastrnn")


# -- the table -----------------------------------------------------------------
@dataclass(frozen=True)
class KerasLayerFormat:
    """How one layer class is written to and read from Keras files (see the module docstring)."""

    class_name: str
    to_keras: Callable
    from_keras: Callable
    weights: Callable
    vars_names: Callable
    module: str = "keras.layers"

    @property
    def h5_name(self):
        return snake_case(self.class_name)

    def make(self, kwargs):
        """A new fastrnn layer from ``from_keras``'s arguments."""
        from .. import layers
        return getattr(layers, self.class_name)(**kwargs)


LAYER_FORMATS = {}


def register(fmt):
    """Add (or replace) the entry for ``fmt.class_name``."""
    LAYER_FORMATS[fmt.class_name] = fmt
    return fmt


def format_for_class(class_name, where):
    """The entry for a Keras class name, or a FileFormatError naming the unsupported class."""
    fmt = LAYER_FORMATS.get(class_name) if isinstance(class_name, str) else None
    if fmt is None:
        raise FileFormatError(f"{where}: layer class {class_name!r} is not supported by "
                              f"fastrnn (supported: {', '.join(sorted(LAYER_FORMATS))})")
    return fmt


def format_for_layer(layer):
    """The entry for a fastrnn layer object, or a ValueError naming its class."""
    class_name = type(layer).__name__
    fmt = LAYER_FORMATS.get(class_name)
    if fmt is None:
        raise ValueError(f"layer {getattr(layer, 'name', '?')!r} ({class_name}) has no Keras "
                         f"file format yet (supported: {', '.join(sorted(LAYER_FORMATS))})")
    return fmt


def _base_config(layer, dtype):
    return {"name": layer.name, "trainable": True, "dtype": dtype}


def _base_kwargs(reader):
    """name, and the base-layer arguments fastrnn has no use for."""
    kwargs = {"name": reader.name()}
    reader.require("trainable", (True,), "fastrnn trains every layer")
    reader.dtype()   # checked; the model's dtype is decided for all layers at once
    return kwargs


def _regularizers_and_constraints(reader, *weights):
    for w in weights:
        reader.require(f"{w}_regularizer", (None,), "fastrnn has no regularizers")
        reader.require(f"{w}_constraint", (None,), "fastrnn has no constraints")
    reader.require("activity_regularizer", (None,), "fastrnn has no regularizers")


def _features(input_shape, rank, where):
    if rank is not None and len(input_shape) != rank or len(input_shape) < 2:
        raise FileFormatError(f"{where}: expects input of rank {rank or '>= 2'}, "
                              f"got shape {input_shape}")
    if input_shape[-1] is None:
        raise FileFormatError(f"{where}: the number of input features must be known, "
                              f"got shape {input_shape}")
    return input_shape[-1]


# SimpleRNN -----------------------------------------------------------------------
def _simple_rnn_to_keras(layer, dtype):
    cfg = _base_config(layer, dtype)
    cfg.update({
        "return_sequences": bool(layer.return_sequences),
        "return_state": bool(layer.return_state),
        "go_backwards": bool(layer.go_backwards),
        "stateful": bool(getattr(layer, "stateful", False)), "unroll": False,
        "zero_output_for_mask": False,
        "units": int(layer.units), "activation": layer.activation,
        "use_bias": bool(layer.use_bias),
        "kernel_initializer": initializer_to_keras(
            getattr(layer, "kernel_initializer", None), "GlorotUniform"),
        "recurrent_initializer": initializer_to_keras(
            getattr(layer, "recurrent_initializer", None), "Orthogonal"),
        "bias_initializer": initializer_to_keras(getattr(layer, "bias_initializer", None), "Zeros"),
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "activity_regularizer": None, "kernel_constraint": None,
        "recurrent_constraint": None, "bias_constraint": None,
        "dropout": float(getattr(layer, "dropout", 0.0)),
        "recurrent_dropout": float(getattr(layer, "recurrent_dropout", 0.0)),
    })
    return cfg


def _simple_rnn_from_keras(reader):
    kwargs = _base_kwargs(reader)
    kwargs.update(
        units=reader.int("units"),
        activation=reader.activation(default="tanh"),
        use_bias=reader.bool("use_bias", True),
        return_sequences=reader.bool("return_sequences", False),
        return_state=reader.bool("return_state", False),
        go_backwards=reader.bool("go_backwards", False),
        kernel_initializer=reader.initializer("kernel_initializer", "GlorotUniform"),
        recurrent_initializer=reader.initializer("recurrent_initializer", "Orthogonal"),
        bias_initializer=reader.initializer("bias_initializer", "Zeros"),
    )
    kwargs.update(stateful=reader.bool("stateful", False))
    kwargs.update(dropout=reader.raw("dropout", 0.0),
                  recurrent_dropout=reader.raw("recurrent_dropout", 0.0))
    _regularizers_and_constraints(reader, "kernel", "recurrent", "bias")
    # unroll changes only how Keras schedules the loop; zero_output_for_mask
    # only matters with a mask; seed only seeds Keras's dropout.
    reader.ignore("unroll", "zero_output_for_mask", "seed")
    return kwargs


def _simple_rnn_weights(kwargs, input_shape, where):
    D = _features(input_shape, 3, where)
    H = kwargs["units"]
    shapes = [("cell/vars/0", (D, H)), ("cell/vars/1", (H, H))]
    if kwargs["use_bias"]:
        shapes.append(("cell/vars/2", (H,)))
    B, T = input_shape[0], input_shape[1]
    out = (B, T, H) if kwargs["return_sequences"] else (B, H)
    if kwargs["return_state"]:
        out = [out, (B, H)]
    return shapes, out


register(KerasLayerFormat(
    class_name="SimpleRNN",
    to_keras=_simple_rnn_to_keras,
    from_keras=_simple_rnn_from_keras,
    weights=_simple_rnn_weights,
    vars_names=lambda kwargs, name: {"vars": name, "cell/vars": "simple_rnn_cell"},
))


# Dense ---------------------------------------------------------------------------
def _dense_to_keras(layer, dtype):
    cfg = _base_config(layer, dtype)
    cfg.update({
        "units": int(layer.units),
        "activation": layer.activation or "linear",
        "use_bias": bool(layer.use_bias),
        "kernel_initializer": initializer_to_keras(
            getattr(layer, "kernel_initializer", None), "GlorotUniform"),
        "bias_initializer": initializer_to_keras(getattr(layer, "bias_initializer", None), "Zeros"),
        "kernel_regularizer": None, "bias_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None,
    })
    return cfg


def _dense_from_keras(reader):
    kwargs = _base_kwargs(reader)
    activation = reader.activation(default="linear")
    kwargs.update(
        units=reader.int("units"),
        activation=None if activation == "linear" else activation,
        use_bias=reader.bool("use_bias", True),
        kernel_initializer=reader.initializer("kernel_initializer", "GlorotUniform"),
        bias_initializer=reader.initializer("bias_initializer", "Zeros"),
    )
    _regularizers_and_constraints(reader, "kernel", "bias")
    reader.require("lora_rank", (None,), "fastrnn has no LoRA")
    reader.require("quantization_config", (None,), "fastrnn has no quantized layers")
    return kwargs


def _dense_weights(kwargs, input_shape, where):
    D = _features(input_shape, None, where)
    U = kwargs["units"]
    shapes = [("vars/0", (D, U))]
    if kwargs["use_bias"]:
        shapes.append(("vars/1", (U,)))
    return shapes, tuple(input_shape[:-1]) + (U,)


register(KerasLayerFormat(
    class_name="Dense",
    to_keras=_dense_to_keras,
    from_keras=_dense_from_keras,
    weights=_dense_weights,
    vars_names=lambda kwargs, name: {"vars": name},
))
