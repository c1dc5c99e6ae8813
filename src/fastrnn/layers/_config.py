"""``Layer.get_config`` / ``Layer.from_config``: a layer's arguments as Keras 3 writes them.

A layer class with a Keras file format (:mod:`fastrnn.saving.keras_layers`:
SimpleRNN, Dense, ...) gives exactly the config Keras's ``get_config()``
returns (the same table writes ``.keras`` files); any other layer gives the
base entries (``name``, ``trainable``, ``dtype``) and its constructor's
arguments read back from the attributes of the same name, as Keras's
layers do.  ``dtype`` is Keras 3's serialized ``DTypePolicy``.
"""
import inspect
import numbers

import numpy as np

__all__ = ["layer_config", "layer_from_config"]

#: constructor arguments that are not part of a layer's own config
_NOT_CONFIG = {"self", "name", "dtype", "input_shape", "batch_input_shape",
               "batch_size", "trainable", "kwargs", "weights"}

#: constructor arguments kept under another attribute name (Bidirectional's ``layer``)
_ATTRIBUTES = {"layer": "forward_layer"}


def _dtype_policy(dtype):
    name = np.dtype(dtype).name if dtype is not None else "float32"
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _plain(value):
    """``value`` if it is a plain config value (numbers, strings, None, lists of them)."""
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def layer_config(layer):
    """The ``get_config()`` dict of ``layer`` (see the module docstring)."""
    from ..initializers import Initializer
    from ..saving.keras_layers import LAYER_FORMATS, initializer_to_keras
    dtype = _dtype_policy(layer.dtype)
    fmt = LAYER_FORMATS.get(type(layer).__name__)
    if fmt is not None:
        config = fmt.to_keras(layer, dtype)
        for value in config.values():       # the files keep Keras 3.3's name; 3.4+ says this
            if isinstance(value, dict) and value.get("class_name") == "OrthogonalInitializer":
                value["class_name"] = "Orthogonal"
        return _with_regularizers(layer, config)
    config = {"name": layer.name, "trainable": True, "dtype": dtype}
    for parameter in inspect.signature(type(layer).__init__).parameters.values():
        if parameter.name in _NOT_CONFIG or parameter.kind in (parameter.VAR_POSITIONAL,
                                                                parameter.VAR_KEYWORD):
            continue
        attribute = parameter.name
        if not hasattr(layer, attribute):
            attribute = _ATTRIBUTES.get(attribute, attribute)
            if not hasattr(layer, attribute):
                continue
        value = getattr(layer, attribute)
        if isinstance(value, np.generic):
            value = value.item()
        if _plain(value):
            config[parameter.name] = list(value) if isinstance(value, tuple) else value
        elif isinstance(value, Initializer):
            config[parameter.name] = initializer_to_keras(value, "GlorotUniform")
        elif hasattr(value, "get_config"):      # a wrapped layer (TimeDistributed, ...)
            config[parameter.name] = {"module": "keras.layers",
                                      "class_name": type(value).__name__,
                                      "config": value.get_config(), "registered_name": None}
    return _with_regularizers(layer, config)


def _with_regularizers(layer, config):
    """The layer's weight regularizers serialized into its config, as Keras writes them."""
    from ..regularizers import serialize
    for key in list(config):
        if key.endswith("_regularizer") and getattr(layer, key, None) is not None:
            config[key] = serialize(getattr(layer, key))
    return config


def layer_from_config(cls, config):
    """A new layer of class ``cls`` from a :func:`layer_config` dict (or Keras's)."""
    from ..saving._files import FileFormatError
    from ..saving.keras_layers import (LAYER_FORMATS, ConfigReader, initializer_from_keras,
                                       parse_dtype)
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict (from get_config()), got "
                        f"{type(config).__name__}")
    fmt = LAYER_FORMATS.get(cls.__name__)
    if fmt is not None:
        regularizers = {k: v for k, v in config.items()
                        if k.endswith("_regularizer") and k != "activity_regularizer"
                        and v is not None}
        reader = ConfigReader({k: (None if k in regularizers else v)
                               for k, v in config.items()}, f"{cls.__name__}.from_config")
        try:
            kwargs = fmt.from_keras(reader)
            reader.finish()
        except FileFormatError as e:
            raise ValueError(str(e)) from None
        return cls(**kwargs, **regularizers)
    kwargs = dict(config)
    kwargs.pop("trainable", None)
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        kwargs["dtype"] = parse_dtype(dtype, f"{cls.__name__}.from_config")
    for key, value in list(kwargs.items()):
        if isinstance(value, dict) and value.get("module") == "keras.initializers":
            try:
                kwargs[key] = initializer_from_keras(value, "GlorotUniform",
                                                     f"{cls.__name__}.from_config", key)
            except FileFormatError as e:
                raise ValueError(str(e)) from None
        elif isinstance(value, dict) and "class_name" in value and "config" in value:
            from .. import layers
            inner = getattr(layers, value["class_name"], None)
            if inner is None:
                raise ValueError(f"{cls.__name__}.from_config: {key} is a "
                                 f"{value['class_name']!r}, which fastrnn does not have")
            kwargs[key] = inner.from_config(value["config"])
    return cls(**kwargs)
