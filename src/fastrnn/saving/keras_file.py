"""Keras 3 ``.keras`` archives and ``.weights.h5`` files, both ways.

A ``.keras`` file is a zip archive of three members (stored uncompressed):

- ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``
- ``config.json``: the serialized model, ``{"module": "keras", "class_name":
  "Sequential", "config": {"name", "trainable", "dtype", "layers": [...],
  "build_input_shape"}, "registered_name": null, "build_config": {...}}``,
  where ``layers`` starts with an ``InputLayer`` and each layer is
  ``{"module": "keras.layers", "class_name", "config", "registered_name",
  "build_config": {"input_shape": [...]}}``
- ``model.weights.h5``: one HDF5 dataset per weight at
  ``layers/<group>/.../vars/<i>``, where ``<group>`` is the snake-case class
  name numbered within the model (``simple_rnn``, ``simple_rnn_1``,
  ``dense``), not the layer's own name, and the path inside it is the
  layer's (``cell/vars/0..2`` for SimpleRNN, ``vars/0..1`` for Dense); every
  ``vars`` group carries a ``name`` attribute, and the root ``vars`` group
  the model's name.

A ``.weights.h5`` file is that HDF5 file on its own.  A file saved by Keras
with its optimizer state also has an ``optimizer`` group; it is ignored.

The per-layer details live in :mod:`fastrnn.saving.keras_layers` (one table
entry per layer class); this module handles the model, the archive and the
checks.
"""
import datetime
import json
import zipfile

import numpy as np

from ._files import (FileFormatError, atomic_write_bytes, check_path, read_zip_member,
                     require_regular_file)
from ._h5 import H5WeightReader, require_h5py, write_h5_bytes
from .keras_layers import (ConfigReader, check_keras_class, format_for_class, format_for_layer,
                           keras_object, parse_dtype, parse_shape)

__all__ = ["save_model", "load_model", "save_weights_h5", "load_weights_h5",
           "KERAS_FORMAT_VERSION"]

# The keras_version written to metadata.json: the oldest Keras whose reading
# of fastrnn's files has been checked (see tools/keras_fixtures/).
KERAS_FORMAT_VERSION = "3.3.3"

_CONFIG = "config.json"
_METADATA = "metadata.json"
_WEIGHTS = "model.weights.h5"
_CONFIG_LIMIT = 16 << 20      # bytes; a config for thousands of layers is far smaller
_MAX_LAYERS = 10_000
_INTEGER_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


class _LayerPlan:
    """One layer's place in a file: its format entry, arguments and weights."""

    def __init__(self, fmt, kwargs, keras_config, group, input_shape, weights, output_shape):
        self.fmt = fmt
        self.kwargs = kwargs
        self.keras_config = keras_config
        self.group = group                  # "layers/simple_rnn_1"
        self.input_shape = input_shape
        self.weights = weights              # [(absolute h5 path, shape)] in get_weights order
        self.output_shape = output_shape

    @property
    def where(self):
        return f"layer {self.kwargs.get('name')!r} ({self.fmt.class_name})"


def _read_layer(fmt, cfg, where):
    reader = ConfigReader(cfg, where)
    kwargs = fmt.from_keras(reader)
    reader.finish()
    return kwargs


def _plan_layers(formats_and_kwargs, configs, input_shape):
    """Shapes and weight paths of a chain of layers, from their arguments alone."""
    plans, counts, shape = [], {}, input_shape
    for i, ((fmt, kwargs), cfg) in enumerate(zip(formats_and_kwargs, configs)):
        where = f"layer {kwargs.get('name')!r} ({fmt.class_name})"
        base = fmt.h5_name
        k = counts.get(base, 0)
        counts[base] = k + 1
        group = "layers/" + (base if k == 0 else f"{base}_{k}")
        weights, out = None, None
        if shape is not None:
            if isinstance(shape, list):
                raise FileFormatError(f"{where}: the layer before it returns its state "
                                      f"(return_state=True), so it must be the last layer")
            rel, out = fmt.weights(kwargs, shape, where)
            weights = [(f"{group}/{path}", tuple(s)) for path, s in rel]
        plans.append(_LayerPlan(fmt, kwargs, cfg, group, shape, weights, out))
        shape = out
    return plans


def _elements(plans):
    return sum(int(np.prod(s, dtype=object)) for p in plans for _, s in (p.weights or []))


# -- the model as a Keras config ------------------------------------------------------
def _dtype_name(model):
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        weights = model.get_weights()
        dtype = weights[0].dtype if weights else "float32"
    return str(np.dtype(dtype))


def _plan_model(model):
    """(input batch shape, dtype name, layer plans) of a fastrnn model, via Keras configs."""
    input_shape = tuple(model.input_shape)   # raises a clear error on an unbuilt model
    dtype = _dtype_name(model)
    formats, configs = [], []
    for layer in model.layers:
        fmt = format_for_layer(layer)
        cfg = fmt.to_keras(layer, dtype)
        # Read our own config back: the same checks as for a file, and the
        # arguments the weight table is computed from.
        formats.append((fmt, _read_layer(fmt, cfg, f"layer {layer.name!r}")))
        configs.append(cfg)
    plans = _plan_layers(formats, configs, input_shape)
    for layer, plan in zip(model.layers, plans):
        got = [tuple(w.shape) for w in layer.weights]
        want = [s for _, s in plan.weights]
        if got != want:
            raise ValueError(f"{plan.where}: weights of shapes {got}, but the Keras "
                             f"format expects {want}")
    return input_shape, dtype, plans


def _layer_values(model, plans):
    """One consistent copy of every weight (model.get_weights), split per layer."""
    values = model.get_weights()
    per_layer, start = [], 0
    for plan in plans:
        per_layer.append(values[start:start + len(plan.weights)])
        start += len(plan.weights)
    return per_layer


def _model_config(model, input_shape, dtype, plans):
    shape_list = list(input_shape)
    layers = [keras_object("keras.layers", "InputLayer", {
        "batch_shape": shape_list, "dtype": dtype, "sparse": False, "name": "input_layer"})]
    for plan in plans:
        entry = keras_object(plan.fmt.module, plan.fmt.class_name, plan.keras_config)
        entry["build_config"] = {"input_shape": list(plan.input_shape)}
        layers.append(entry)
    name = getattr(model, "name", None) or "sequential"
    config = keras_object("keras", "Sequential", {
        "name": name, "trainable": bool(getattr(model, "trainable", True)), "dtype": dtype,
        "layers": layers,
        "build_input_shape": shape_list})
    config["build_config"] = {"input_shape": shape_list}
    return config


def _weights_h5(model, plans, caller):
    datasets, groups = {}, {"vars": getattr(model, "name", None) or "sequential"}
    for layer, plan, values in zip(model.layers, plans, _layer_values(model, plans)):
        for rel, name in plan.fmt.vars_names(plan.kwargs, layer.name).items():
            groups[f"{plan.group}/{rel}"] = name
        for (path, _), value in zip(plan.weights, values):
            datasets[path] = value
    return write_h5_bytes(datasets, groups, caller)


def save_model(model, filepath):
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.models.load_model`` reads.

    Parameters
    ----------
    model : fastrnn.Sequential
        Built (its input shape known), of layers with a Keras format
        (InputLayer, SimpleRNN, Dense).
    filepath : str or os.PathLike
        Must end in ``.keras``.  Written to a temporary file in the same
        directory, then moved over ``filepath``: a failed save leaves any old
        file as it was.

    Notes
    -----
    The optimizer and its state are not saved (Keras loads the model
    uncompiled); weights keep the model's dtype.  Needs h5py
    (``pip install "fastrnn[keras-io]"``).
    """
    require_h5py("save_model")
    path = check_path(filepath, ".keras")
    input_shape, dtype, plans = _plan_model(model)
    config = _model_config(model, input_shape, dtype, plans)
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _weights_h5(model, plans, "save_model")
    import io
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_METADATA, json.dumps(metadata))
        zf.writestr(_CONFIG, json.dumps(config))
        zf.writestr(_WEIGHTS, weights)
    atomic_write_bytes(path, buffer.getvalue())


# -- reading a Keras config ------------------------------------------------------------
def _parse_input_layer(entry, where):
    check_keras_class(entry, where)
    reader = ConfigReader(entry.get("config"), where)
    shape = reader.raw("batch_shape", None)
    legacy = reader.raw("batch_input_shape", None)
    if shape is None:
        shape = legacy
    if shape is None:
        raise FileFormatError(f"{where}: InputLayer has no batch_shape")
    shape = parse_shape(shape, where, "batch_shape")
    raw_dtype = reader.raw("dtype", None)
    # integer inputs (token ids for an Embedding) say nothing of the model's dtype
    dtype = None if raw_dtype in _INTEGER_DTYPES else parse_dtype(raw_dtype, where)
    name = reader.name()
    reader.require("sparse", (False,), "fastrnn takes dense arrays")
    reader.require("ragged", (False,), "fastrnn takes dense arrays")
    reader.ignore("optional")
    reader.finish()
    return shape, dtype, name


def _parse_config(config):
    """Read config.json's model.

    Returns
    -------
    (model name, input shape or None, InputLayer (shape, dtype, name) or None,
    model dtype, layer plans)
    """
    where = "the model"
    if not isinstance(config, dict):
        raise FileFormatError("config.json does not hold a serialized model")
    class_name = config.get("class_name")
    check_keras_class(config, where)
    if class_name != "Sequential":
        raise FileFormatError(f"the file holds a {class_name!r} model; fastrnn loads "
                              f"Sequential models")
    inner = config.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise FileFormatError("config.json: the Sequential has no list of layers")
    entries = inner["layers"]
    if len(entries) > _MAX_LAYERS:
        raise FileFormatError(f"config.json lists {len(entries)} layers")
    name = inner.get("name")
    if not isinstance(name, str):
        name = None
    parse_dtype(inner.get("dtype"), where)
    trainable = inner.get("trainable", True)
    if not isinstance(trainable, bool):
        raise FileFormatError(f"config.json: the model's trainable must be true or false, "
                              f"got {trainable!r}")
    if not trainable and any(isinstance(e, dict) and isinstance(e.get("config"), dict)
                             and e["config"].get("trainable", True) is True
                             and e.get("class_name") != "InputLayer" for e in entries):
        # every layer of a frozen model is frozen too, unless one was set trainable
        # again afterwards (Keras then trains nothing): not representable per layer
        raise FileFormatError("the model is marked non-trainable but a layer is trainable; "
                              "fastrnn reads frozen layers, not this mix")

    input_info = None
    formats, configs, dtypes = [], [], []
    for i, entry in enumerate(entries):
        where = f"layer {i}"
        if not isinstance(entry, dict):
            raise FileFormatError(f"config.json: {where} is not an object")
        cls = entry.get("class_name")
        if cls == "InputLayer":
            if i != 0:
                raise FileFormatError(f"config.json: an InputLayer at position {i}; "
                                      f"it can only come first")
            input_info = _parse_input_layer(entry, f"{where} (InputLayer)")
            continue
        check_keras_class(entry, f"{where} ({cls!r})")
        fmt = format_for_class(cls, where)
        cfg = entry.get("config")
        lname = cfg.get("name") if isinstance(cfg, dict) else None
        lwhere = f"layer {lname!r} ({cls})"
        kwargs = _read_layer(fmt, cfg, lwhere)
        dtypes.append((lname, parse_dtype(cfg.get("dtype"), lwhere)))
        formats.append((fmt, kwargs))
        configs.append(cfg)
    if not formats:
        raise FileFormatError("config.json: the model has no layers")

    if input_info is not None:
        input_shape = input_info[0]
    elif inner.get("build_input_shape") is not None:
        input_shape = parse_shape(inner["build_input_shape"], "the model", "build_input_shape")
    else:
        input_shape = None
    if input_shape is not None and len(input_shape) < 2:
        raise FileFormatError(f"the model's input shape {input_shape} has no feature axis")

    declared = {d for _, d in dtypes if d is not None}
    if len(declared) > 1:
        raise FileFormatError("the layers compute in different dtypes ("
                              + ", ".join(f"{n}: {d}" for n, d in dtypes) +
                              "); a fastrnn model has one dtype")
    if declared:
        dtype = declared.pop()
    elif input_info is not None and input_info[1] is not None:
        dtype = input_info[1]
    else:
        dtype = "float32"
    plans = _plan_layers(formats, configs, input_shape)
    return name, input_shape, input_info, dtype, plans


def _read_weights(reader, plans):
    """Check every weight's shape and dtype, then read them all (get_weights order)."""
    expected = [(path, shape) for plan in plans for path, shape in plan.weights]
    for path, shape in expected:
        reader.check(path, shape)
    wanted = {path for path, _ in expected}
    extra = [p for p in reader.dataset_paths("layers") if p not in wanted]
    if extra:
        shown = ", ".join(repr(p) for p in extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise FileFormatError(f"{reader.what} holds weights the model does not have: {shown}")
    return [reader.read(path, shape) for path, shape in expected]


def _build(name, input_shape, input_info, dtype, plans):
    import fastrnn
    layers = []
    for plan in plans:
        try:
            layers.append(plan.fmt.make(plan.kwargs))
        except (TypeError, ValueError) as e:
            raise FileFormatError(f"{plan.where}: {e}") from e
    try:
        if input_shape is not None:
            input_name = input_info[2] if input_info is not None else None
            layers.insert(0, fastrnn.Input(input_shape[1:], batch_size=input_shape[0],
                                           dtype=dtype, name=input_name))
        return fastrnn.Sequential(layers, name=name)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"the model cannot be built: {e}") from e


def load_model(filepath):
    """Read a ``.keras`` archive written by Keras 3 (or :func:`save_model`) into a fastrnn model.

    Parameters
    ----------
    filepath : str or os.PathLike
        A ``.keras`` file holding a ``Sequential`` of layers fastrnn has
        (InputLayer, SimpleRNN, Dense, ...).

    Returns
    -------
    fastrnn.Sequential
        Built, with the file's weights, uncompiled (the optimizer state in
        the file, if any, is not used).

    Raises
    ------
    ValueError
        The file is not a valid ``.keras`` archive, or holds a layer, class or
        argument fastrnn does not support (the message names it).  Files
        are untrusted: nothing in them is imported or evaluated, and every
        claimed size and shape is checked before memory is allocated for it.
    ImportError
        h5py is not installed (``pip install "fastrnn[keras-io]"``).
    """
    require_h5py("load_model")
    path = check_path(filepath, ".keras")
    what = repr(path)
    require_regular_file(path, "load_model")
    try:
        zf = zipfile.ZipFile(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise FileFormatError(f"{what} is not a .keras archive (a zip file): {e}") from e
    with zf:
        try:
            names = set(zf.namelist())
            if _WEIGHTS not in names:
                other = sorted(n for n in names if n.startswith("model.weights"))
                raise FileFormatError(f"{what} has no {_WEIGHTS!r}"
                                      + (f" (it has {other}: only HDF5 weights are read)"
                                         if other else ""))
            raw = read_zip_member(zf, _CONFIG, _CONFIG_LIMIT, what)
            try:
                config = json.loads(raw)
            except (ValueError, RecursionError) as e:
                raise FileFormatError(f"{what}: config.json is not valid JSON ({e})") from e
            name, input_shape, input_info, dtype, plans = _parse_config(config)
            n = _elements(plans)
            info = zf.getinfo(_WEIGHTS)
            if info.file_size < 2 * n:
                raise FileFormatError(f"{what}: {_WEIGHTS} has {info.file_size} bytes, too few "
                                      f"for the {n} weights its config describes")
            data = read_zip_member(zf, _WEIGHTS, 128 * n + (64 << 20), what)
        except FileFormatError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError,
                zipfile.LargeZipFile) as e:   # damaged archive, bad CRC, unknown compression
            raise FileFormatError(f"{what} is a damaged archive "
                                  f"({type(e).__name__}: {e})") from e
    if input_shape is None:
        with H5WeightReader(data, f"{what} ({_WEIGHTS})", "load_model") as reader:
            extra = reader.dataset_paths("layers")
        if extra:
            raise FileFormatError(f"{what} holds weights but its config gives no input shape")
        return _build(name, None, input_info, dtype, plans)
    with H5WeightReader(data, f"{what} ({_WEIGHTS})", "load_model") as reader:
        values = _read_weights(reader, plans)
    model = _build(name, input_shape, input_info, dtype, plans)
    try:
        model.set_weights(values)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{what}: {e}") from e
    return model


# -- weights only ------------------------------------------------------------------------
def save_weights_h5(model, filepath):
    """Write the weights in Keras 3's ``.weights.h5`` layout (Keras's ``load_weights`` reads it).

    Parameters
    ----------
    model : fastrnn.Sequential
        Built.
    filepath : str or os.PathLike
        Must end in ``.weights.h5`` (as Keras requires).  Replaced atomically.
    """
    require_h5py("save_weights")
    path = check_path(filepath, ".weights.h5")
    _, _, plans = _plan_model(model)
    atomic_write_bytes(path, _weights_h5(model, plans, "save_weights"))


def load_weights_h5(model, filepath):
    """Read a Keras 3 ``.weights.h5`` file (from Keras or :func:`save_weights_h5`) into ``model``.

    Weights are matched by position, as Keras matches them: the n-th layer of
    a class in the file (``dense``, ``dense_1``, ...) goes to the n-th layer
    of that class in the model; layer names do not matter.  Every shape and
    dtype is checked before data is read, and the model is changed only when
    all weights are good.

    Parameters
    ----------
    model : fastrnn.Sequential
        Built, with the architecture the file was saved from.
    filepath : str or os.PathLike
        Must end in ``.weights.h5``.

    Raises
    ------
    ValueError
        Malformed file, or weights that do not fit the model (missing,
        extra, wrong shape or dtype).
    """
    require_h5py("load_weights")
    path = check_path(filepath, ".weights.h5")
    _, _, plans = _plan_model(model)
    require_regular_file(path, "load_weights")
    with H5WeightReader(path, repr(path), "load_weights") as reader:
        values = _read_weights(reader, plans)
    model.set_weights(values)
