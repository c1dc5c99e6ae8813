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

Adding a layer is one :func:`register` call: nothing else in
:mod:`fastrnn.saving` changes.  A layer whose shapes and weights follow from
its fastrnn class gives only its weight ``paths``; the shapes come from an
unbuilt layer (``compute_output_shape``, ``_weight_specs``: nothing
allocated).

Nothing read from a config is ever imported, evaluated or called: ``module``
and ``registered_name`` only decide whether a class is Keras's own, class
names are looked up in this table, and activations and initializers are
names looked up in fixed tables.

Layouts (as Keras 3.15 writes them; see tools/keras_fixtures/graph_files.py)
---------------------------------------------------------------------------
- ``Embedding``: ``input_dim``, ``output_dim``, ``embeddings_initializer``,
  ``mask_zero`` (+ regularizer/constraint None); weight ``vars/0``
  (input_dim, output_dim).  Its model's InputLayer has an integer dtype.
- ``Bidirectional``: ``merge_mode`` ("concat", "sum", "mul", "ave", None),
  ``layer`` (the forward SimpleRNN, named ``forward_<name>``) and
  ``backward_layer`` (its copy going backwards); weights
  ``forward_layer/cell/vars/0..2`` then ``backward_layer/cell/vars/0..2``.
- ``TimeDistributed``: ``layer`` (a serialized Dense, Activation or
  Dropout); a Dense's weights at ``layer/vars/0..1``.
- ``Dropout`` (``rate``, ``seed``, ``noise_shape``), ``Masking``
  (``mask_value``), ``Activation``, ``Flatten`` (``data_format``),
  ``Reshape`` (``target_shape``), ``RepeatVector`` (``n``), ``Concatenate``
  (``axis``), ``Add``/``Subtract``/``Multiply``/``Average``: no weights, an
  empty ``vars`` group.

Masks: :func:`check_masks` refuses models where Keras would apply a mask
that fastrnn does not apply (or the reverse), so a file computes the same
thing in both.

What is written
---------------
The configs are the subset of Keras 3's that every Keras 3 release reads:
arguments added in later releases (``ragged``/``optional`` on ``InputLayer``,
``quantization_config`` on ``Dense``, ``input_axes``/``output_axes`` on
``GlorotUniform``) are left out, since they are at their defaults and older
Keras refuses unknown arguments.  Checked with Keras 3.3 and 3.15.
"""
import copy
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
    weights: Callable = None
    vars_names: Callable = None
    module: str = "keras.layers"
    paths: Callable = None      # kwargs -> weight paths, when ``weights`` is None
    maker: Callable = None      # kwargs -> layer, when the class's constructor is not enough

    @property
    def h5_name(self):
        return snake_case(self.class_name)

    def make(self, kwargs):
        """A new fastrnn layer from ``from_keras``'s arguments (no weights allocated yet)."""
        if self.maker is not None:
            return self.maker(kwargs)
        from .. import layers
        return getattr(layers, self.class_name)(**kwargs)

    def layer_weights(self, kwargs, input_shape, where, layer=None):
        """``([(weight path, shape)], output shape)`` for input of ``input_shape``.

        Computed from the arguments alone (an unbuilt layer's
        ``compute_output_shape`` and ``_weight_specs``: nothing is allocated),
        so a file's claims are checked before any weight exists.
        """
        if self.weights is not None:
            return self.weights(kwargs, input_shape, where)
        try:
            layer = layer if layer is not None else self.make(kwargs)
            layer._check_call_inputs(list(input_shape) if layer._multi_input
                                     else [input_shape])
            out = layer.compute_output_shape(input_shape)
            specs = layer._weight_specs(input_shape)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise FileFormatError(f"{where}: {e}") from e
        paths = self.paths(kwargs) if self.paths is not None else []
        if len(paths) != len(specs):
            raise FileFormatError(f"{where}: {len(specs)} weights, but the Keras layout "
                                  f"names {len(paths)}")
        return [(p, tuple(s)) for p, (_, s, _) in zip(paths, specs)], out


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
    return {"name": layer.name, "trainable": bool(layer.trainable), "dtype": dtype}


def _base_kwargs(reader):
    """name, and the base-layer arguments fastrnn has no use for."""
    kwargs = {"name": reader.name()}
    if not reader.bool("trainable", True):      # a frozen layer stays frozen
        kwargs["trainable"] = False
    reader.dtype()   # checked; the model's dtype is decided for all layers at once
    return kwargs


def _regularizers_and_constraints(reader, *weights):
    """The weights' regularizers (L1, L2, L1L2 by name, from a fixed table) as constructor
    arguments; constraints and activity regularizers are refused."""
    from .. import regularizers
    kwargs = {}
    for w in weights:
        key = f"{w}_regularizer"
        value = reader.raw(key, None)
        if value is not None:
            if isinstance(value, dict):
                check_keras_class(value, f"{reader.where}, {key}")
            try:
                kwargs[key] = regularizers.get(value, key)
            except (TypeError, ValueError, NotImplementedError) as e:
                raise FileFormatError(f"{reader.where}: {key} is not supported ({e})") from e
        reader.require(f"{w}_constraint", (None,), "fastrnn has no constraints")
    reader.require("activity_regularizer", (None,), "fastrnn has no activity regularizers")
    return kwargs


def _regularizers_to_keras(layer, *weights):
    from ..regularizers import serialize
    return {f"{w}_regularizer": serialize(getattr(layer, f"{w}_regularizer", None))
            for w in weights}


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
        "zero_output_for_mask": bool(getattr(layer, "zero_output_for_mask", False)),
        "units": int(layer.units), "activation": layer.activation,
        "use_bias": bool(layer.use_bias),
        "kernel_initializer": initializer_to_keras(
            getattr(layer, "kernel_initializer", None), "GlorotUniform"),
        "recurrent_initializer": initializer_to_keras(
            getattr(layer, "recurrent_initializer", None), "Orthogonal"),
        "bias_initializer": initializer_to_keras(getattr(layer, "bias_initializer", None), "Zeros"),
        **_regularizers_to_keras(layer, "kernel", "recurrent", "bias"),
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
    if reader.bool("stateful", False):
        if not takes_argument("SimpleRNN", "stateful"):
            raise FileFormatError(f"{reader.where}: stateful=True is not supported (this "
                                  f"fastrnn keeps no state between batches)")
        kwargs["stateful"] = True
    if reader.bool("zero_output_for_mask", False) and \
            takes_argument("SimpleRNN", "zero_output_for_mask"):
        kwargs["zero_output_for_mask"] = True
    kwargs.update(dropout=reader.raw("dropout", 0.0),
                  recurrent_dropout=reader.raw("recurrent_dropout", 0.0))
    kwargs.update(_regularizers_and_constraints(reader, "kernel", "recurrent", "bias"))
    # unroll changes only how Keras schedules the loop; zero_output_for_mask
    # only matters with a mask; seed only seeds Keras's dropout.
    reader.ignore("unroll", "seed")
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
        **_regularizers_to_keras(layer, "kernel", "bias"),
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
    kwargs.update(_regularizers_and_constraints(reader, "kernel", "bias"))
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


# -- layers without weights and wrappers (the functional API's layers) -------------------
def _vars_only(kwargs, name):
    return {"vars": name}


def _number(reader, key, default, minimum=None, maximum=None):
    value = reader.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value or (
            minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise FileFormatError(f"{reader.where}: {key} must be a number"
                              + (f" in [{minimum}, {maximum}]" if minimum is not None else "")
                              + f", got {value!r}")
    return float(value)


def _seed(reader, key="seed"):
    value = reader.raw(key, None)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise FileFormatError(f"{reader.where}: {key} must be an int or null, got {value!r}")
    return value


def _simple(class_name, to_keras, from_keras):
    """The entry of a layer without weights."""
    def write(layer, dtype):
        cfg = _base_config(layer, dtype)
        cfg.update(to_keras(layer))
        return cfg

    def read(reader):
        kwargs = _base_kwargs(reader)
        kwargs.update(from_keras(reader))
        return kwargs
    return register(KerasLayerFormat(class_name=class_name, to_keras=write, from_keras=read,
                                     vars_names=_vars_only))


def _activation_name(layer):
    return layer.activation or "linear"


_simple("Activation", lambda layer: {"activation": _activation_name(layer)},
        lambda reader: {"activation": reader.activation(default="linear")})
_simple("Masking", lambda layer: {"mask_value": float(layer.mask_value)},
        lambda reader: {"mask_value": _number(reader, "mask_value", 0.0)})
_simple("Dropout",
        lambda layer: {"rate": float(layer.rate), "seed": layer.seed, "noise_shape": None},
        lambda reader: {"rate": _number(reader, "rate", None, 0.0, 1.0), "seed": _seed(reader),
                        "noise_shape": reader.require("noise_shape", (None,),
                                                      "only one mask element per value")})
_simple("Flatten", lambda layer: {"data_format": "channels_last"},
        lambda reader: {"data_format": reader.require("data_format", ("channels_last", None),
                                                      "fastrnn is channels_last")})
_simple("RepeatVector", lambda layer: {"n": int(layer.n)}, lambda reader: {"n": reader.int("n")})


def _target_shape(reader):
    value = reader.raw("target_shape", None)
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 8 or any(
            isinstance(d, bool) or not isinstance(d, int) or not (d == -1 or 1 <= d <= MAX_DIM)
            for d in value):
        raise FileFormatError(f"{reader.where}: target_shape must be a list of positive ints "
                              f"(one may be -1), got {value!r}")
    return tuple(value)


_simple("Reshape", lambda layer: {"target_shape": list(layer.target_shape)},
        lambda reader: {"target_shape": _target_shape(reader)})
for _merge in ("Add", "Subtract", "Multiply", "Average"):
    _simple(_merge, lambda layer: {}, lambda reader: {})


def _axis(reader):
    value = reader.raw("axis", -1)
    if isinstance(value, bool) or not isinstance(value, int) or not -8 <= value <= 8:
        raise FileFormatError(f"{reader.where}: axis must be a small int, got {value!r}")
    return value


_simple("Concatenate", lambda layer: {"axis": int(layer.axis)},
        lambda reader: {"axis": _axis(reader)})


# Embedding -----------------------------------------------------------------------
def _embedding_to_keras(layer, dtype):
    cfg = _base_config(layer, dtype)
    cfg.update({
        "input_dim": int(layer.input_dim), "output_dim": int(layer.output_dim),
        "embeddings_initializer": initializer_to_keras(
            getattr(layer, "embeddings_initializer", None), "RandomUniform"),
        **_regularizers_to_keras(layer, "embeddings"), "activity_regularizer": None,
        "embeddings_constraint": None, "mask_zero": bool(layer.mask_zero),
    })
    return cfg


def _embedding_from_keras(reader):
    kwargs = _base_kwargs(reader)
    kwargs.update(input_dim=reader.int("input_dim"), output_dim=reader.int("output_dim"),
                  mask_zero=reader.bool("mask_zero", False),
                  embeddings_initializer=reader.initializer("embeddings_initializer",
                                                            "RandomUniform"))
    kwargs.update(_regularizers_and_constraints(reader, "embeddings"))
    reader.require("sparse", (False,), "fastrnn's embeddings are dense")
    reader.require("lora_rank", (None,), "fastrnn has no LoRA")
    reader.require("quantization_config", (None,), "fastrnn has no quantized layers")
    reader.ignore("input_length")      # Keras 2's, ignored by Keras 3
    return kwargs


register(KerasLayerFormat(
    class_name="Embedding", to_keras=_embedding_to_keras, from_keras=_embedding_from_keras,
    paths=lambda kwargs: ["vars/0"], vars_names=_vars_only))


# Wrappers ------------------------------------------------------------------------
def _inner(reader, key, allowed):
    """(format, kwargs) of the serialized layer a wrapper holds under ``key``."""
    value = reader.raw(key, None)
    where = f"{reader.where}, its {key}"
    if not isinstance(value, dict):
        raise FileFormatError(f"{where} must be a serialized layer, got {value!r}")
    check_keras_class(value, where)
    cls = value.get("class_name")
    if cls not in allowed:
        raise FileFormatError(f"{reader.where}: it wraps layer class {cls!r}, which is not "
                              f"supported there by fastrnn (supported: {', '.join(allowed)})")
    fmt = LAYER_FORMATS[cls]
    inner = ConfigReader(value.get("config"), f"{where} ({cls})")
    kwargs = fmt.from_keras(inner)
    inner.finish()
    return fmt, kwargs


def _inner_config(fmt, layer, dtype, input_shape=None):
    entry = keras_object(fmt.module, fmt.class_name, fmt.to_keras(layer, dtype))
    if input_shape is not None:
        entry["build_config"] = {"input_shape": list(input_shape)}
    return entry


def _time_distributed_to_keras(layer, dtype):
    cfg = _base_config(layer, dtype)
    inner = layer.layer
    shape = getattr(inner, "input_shape", None)
    cfg["layer"] = _inner_config(format_for_layer(inner), inner, dtype,
                                 shape if LAYER_FORMATS.get(type(inner).__name__) is
                                 LAYER_FORMATS.get("Dense") else None)
    return cfg


def _time_distributed_from_keras(reader):
    kwargs = _base_kwargs(reader)
    kwargs["layer"] = _inner(reader, "layer", ("Dense", "Activation", "Dropout"))
    return kwargs


def _frozen(kwargs):
    """``trainable=False`` for a wrapper read frozen (nothing otherwise)."""
    return {"trainable": False} if kwargs.get("trainable") is False else {}


def _make_time_distributed(kwargs):
    from .. import layers
    fmt, inner = kwargs["layer"]
    return layers.TimeDistributed(fmt.make(inner), name=kwargs["name"], **_frozen(kwargs))


def _time_distributed_paths(kwargs):
    fmt, inner = kwargs["layer"]
    if fmt.class_name != "Dense":
        return []
    return ["layer/vars/0", "layer/vars/1"][:2 if inner["use_bias"] else 1]


register(KerasLayerFormat(
    class_name="TimeDistributed", to_keras=_time_distributed_to_keras,
    from_keras=_time_distributed_from_keras, maker=_make_time_distributed,
    paths=_time_distributed_paths,
    vars_names=lambda kwargs, name: {"vars": name, "layer/vars": kwargs["layer"][1]["name"]}))


def _strip(name, prefix):
    return name[len(prefix):] if isinstance(name, str) and name.startswith(prefix) and \
        len(name) > len(prefix) else name


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)
# the arguments in which Keras's forward and backward layers may differ
_DIRECTION_ARGUMENTS = ("name", "go_backwards", "kernel_initializer", "recurrent_initializer",
                        "bias_initializer")


def _bidirectional_to_keras(layer, dtype):
    cfg = _base_config(layer, dtype)
    fmt = LAYER_FORMATS["SimpleRNN"]
    forward = layer.forward_layer
    cfg["merge_mode"] = layer.merge_mode
    cfg["layer"] = _inner_config(fmt, forward, dtype)
    cfg["layer"]["config"]["name"] = "forward_" + _strip(forward.name, "forward_")
    # the forward layer's copy going backwards (its regularizers too), as fastrnn runs it
    cfg["backward_layer"] = copy.deepcopy(cfg["layer"])
    cfg["backward_layer"]["config"].update(
        name="backward_" + _strip(forward.name, "forward_"), go_backwards=True)
    return cfg


def _bidirectional_from_keras(reader):
    kwargs = _base_kwargs(reader)
    merge_mode = reader.raw("merge_mode", "concat")
    if merge_mode not in _MERGE_MODES:
        raise FileFormatError(f"{reader.where}: merge_mode {merge_mode!r} is not supported "
                              f"(one of {_MERGE_MODES})")
    _, forward = _inner(reader, "layer", ("SimpleRNN",))
    if forward["go_backwards"] or forward["return_state"]:
        raise FileFormatError(f"{reader.where}: a Bidirectional of a SimpleRNN with "
                              f"go_backwards or return_state is not supported")
    if reader.cfg.get("backward_layer") is not None:
        _, backward = _inner(reader, "backward_layer", ("SimpleRNN",))
        differ = [k for k in forward if k not in _DIRECTION_ARGUMENTS and
                  forward[k] != backward.get(k) and repr(forward[k]) != repr(backward.get(k))]
        if not backward["go_backwards"] or differ:
            raise FileFormatError(f"{reader.where}: its backward_layer is not the forward "
                                  f"layer's copy going backwards (differs in "
                                  f"{differ or ['go_backwards']}); fastrnn's Bidirectional "
                                  f"runs one configuration both ways")
    else:
        reader.raw("backward_layer")
    forward["name"] = _strip(forward["name"], "forward_")
    kwargs.update(merge_mode=merge_mode, layer=forward)
    return kwargs


def _make_bidirectional(kwargs):
    from .. import layers
    return layers.Bidirectional(layers.SimpleRNN(**kwargs["layer"]),
                                merge_mode=kwargs["merge_mode"], name=kwargs["name"],
                                **_frozen(kwargs))


def _bidirectional_paths(kwargs):
    n = 3 if kwargs["layer"]["use_bias"] else 2
    return [f"{d}_layer/cell/vars/{i}" for d in ("forward", "backward") for i in range(n)]


def _bidirectional_vars(kwargs, name):
    inner = kwargs["layer"]["name"]
    return {"vars": name, "forward_layer/vars": "forward_" + inner,
            "forward_layer/cell/vars": "simple_rnn_cell",
            "backward_layer/vars": "backward_" + inner,
            "backward_layer/cell/vars": "simple_rnn_cell"}


register(KerasLayerFormat(
    class_name="Bidirectional", to_keras=_bidirectional_to_keras,
    from_keras=_bidirectional_from_keras, maker=_make_bidirectional,
    paths=_bidirectional_paths, vars_names=_bidirectional_vars))


def takes_argument(class_name, argument):
    """Whether fastrnn's layer class takes ``argument`` (arguments other work adds)."""
    import inspect
    from .. import layers
    return argument in inspect.signature(getattr(layers, class_name).__init__).parameters


def masks_flow():
    """Whether this fastrnn carries masks through layers as Keras 3 does (else a mask
    reaches only a SimpleRNN reading its Masking or Embedding directly)."""
    from ..layers.rnn import SimpleRNN
    return not hasattr(SimpleRNN, "_note_mask")


# -- masks ---------------------------------------------------------------------------
# How Keras 3 carries a mask (from Masking, or Embedding(mask_zero=True)) through a layer.
_MASK_PASSES = {"Dense", "Activation", "Dropout", "TimeDistributed"}
_MASK_DROPS = {"Flatten", "Reshape", "RepeatVector", "GlobalMaxPooling1D",
               "GlobalAveragePooling1D"}
_MASK_ALL = {"Add", "Subtract", "Multiply", "Average"}     # masked if every input is


def check_masks(nodes):
    """Refuse a graph where Keras would apply a mask that fastrnn does not (or differently).

    Keras carries a mask from its source (Masking, Embedding with
    ``mask_zero``) through Dense, Activation, Dropout, TimeDistributed, a
    SimpleRNN's returned sequence and merges, to every SimpleRNN and
    Bidirectional downstream; fastrnn applies it only in a SimpleRNN reading
    the source directly.  A model whose mask reaches a recurrent layer any
    other way would compute different things in the two, so it is neither
    written nor read (a mask reaching only the outputs changes no value).

    Parameters
    ----------
    nodes : list of (id, class name, kwargs, keras config, input refs[, has initial state])
        In topological order; an input ref is ``(id of the node, output
        index)``; refs to ids not in ``nodes`` (model inputs) carry no mask.

    Notes
    -----
    Keras 3 (3.15) drops the mask of a SimpleRNN called with
    ``initial_state=`` (fastrnn applies it), so that pair is refused too.
    Once fastrnn carries masks as Keras does (:func:`masks_flow`), that is
    the only refusal left.
    """
    flowing = masks_flow()
    masks = {}      # (id, output index) -> id of the mask's source, or absent
    for node_id, cls, kwargs, cfg, refs, *state in nodes:
        ins = [masks.get(tuple(r)) for r in refs]
        first = ins[0] if ins else None
        where = f"layer {kwargs.get('name')!r} ({cls})"
        if cls in ("SimpleRNN", "Bidirectional"):
            inner = kwargs["layer"] if cls == "Bidirectional" else kwargs
            if first is not None:
                direct = cls == "SimpleRNN" and refs and refs[0][0] == first
                if state and state[0]:
                    raise FileFormatError(
                        f"{where}: it is called with an initial_state on a masked input "
                        f"(layer {first!r}): Keras 3 then ignores the mask and fastrnn "
                        f"applies it, so the two would compute different things")
                if flowing:
                    pass        # this fastrnn applies the mask wherever Keras does
                elif not direct:
                    raise FileFormatError(
                        f"{where}: the mask of layer {first!r} reaches it through other layers "
                        f"(Keras applies it there; fastrnn applies a mask only in a SimpleRNN "
                        f"reading the Masking or Embedding layer directly)")
                elif inner["return_sequences"] and isinstance(cfg, dict) and \
                        cfg.get("zero_output_for_mask") is True:
                    raise FileFormatError(f"{where}: zero_output_for_mask=True with a mask is "
                                          f"not supported (fastrnn carries the state through "
                                          f"masked steps)")
            out = first if inner["return_sequences"] else None
            if cls == "Bidirectional" and kwargs.get("merge_mode", "concat") is None:
                outs = [out, out]
            else:
                outs = [out, None]      # with return_state, the state has no mask
        elif cls == "Masking":
            outs = [node_id]
        elif cls == "Embedding":
            outs = [node_id if kwargs.get("mask_zero") else None]
        elif cls in _MASK_PASSES:
            outs = [first]
        elif cls in _MASK_DROPS:
            outs = [None]
        elif cls == "Concatenate":
            outs = [next((m for m in ins if m is not None), None)]
        elif cls in _MASK_ALL:
            outs = [first if all(m is not None for m in ins) else None]
        else:
            outs = [None]
        for k, m in enumerate(outs):
            if m is not None:
                masks[(node_id, k)] = m


# Pooling over time ---------------------------------------------------------------------
for _pool in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
    _simple(_pool, lambda layer: {"data_format": "channels_last", "keepdims": False},
            lambda reader: {"data_format": reader.require(
                "data_format", ("channels_last", None), "fastrnn is channels_last"),
                "keepdims": reader.require("keepdims", (False,), "fastrnn drops the axis")})
