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

A functional model (``fastrnn.Model(inputs, outputs)``) is written as Keras's
``Functional``: ``layers`` (InputLayers included), each with ``name`` and
``inbound_nodes`` (``[{"args": [tensor or [tensors]], "kwargs": {...}}]``, a
tensor being ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype",
"keras_history": [layer, node, index]}}``, a SimpleRNN's initial state under
``kwargs["initial_state"]``), and ``input_layers``/``output_layers`` (one
reference, a list or a dict).  Its weight groups are numbered over
``model.layers`` in order, InputLayers included (``layers/input_layer``,
``layers/simple_rnn``, ``layers/simple_rnn_1``, ...).  Reading, the mask
computations Keras records as extra graph nodes (``keras.src.ops.*``) are
skipped; the meaning of masks is checked from the layers themselves.

A ``.weights.h5`` file is that HDF5 file on its own.  A file saved by Keras
with its optimizer state also has an ``optimizer`` group; it is ignored.

The per-layer details live in :mod:`fastrnn.saving.keras_layers` (one table
entry per layer class); this module handles the model, the archive and the
checks.
"""
import datetime
import json
import re
import zipfile

import numpy as np

from ._files import (FileFormatError, atomic_write_bytes, check_path, read_zip_member,
                     require_regular_file)
from ._h5 import H5WeightReader, require_h5py, write_h5_bytes
from .keras_layers import (ConfigReader, check_keras_class, check_masks, format_for_class,
                           format_for_layer, keras_object, parse_dtype, parse_shape)

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

    def vars_names(self, name):
        """The ``vars`` groups of the layer (relative to its group) and their names."""
        if self.fmt.vars_names is None:
            return {"vars": name}
        return self.fmt.vars_names(self.kwargs, name)


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
            rel, out = fmt.layer_weights(kwargs, shape, where)
            weights = [(f"{group}/{path}", tuple(s)) for path, s in rel]
        plans.append(_LayerPlan(fmt, kwargs, cfg, group, shape, weights, out))
        shape = out
    return plans


def _elements(plans):
    return sum(int(np.prod(s, dtype=object)) for p in plans for _, s in (p.weights or []))


# -- the model as a Keras config ------------------------------------------------------
def _is_sequential(model):
    from ..models.sequential import Sequential
    return isinstance(model, Sequential)


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
    check_masks([(i, p.fmt.class_name, p.kwargs, p.keras_config,
                  [(i - 1, 0)] if i else [("input", 0)]) for i, p in enumerate(plans)])
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
    # indices for an Embedding are integers, as Keras's own files say
    input_dtype = "int32" if model.layers[0]._takes_indices() else dtype
    layers = [keras_object("keras.layers", "InputLayer", {
        "batch_shape": shape_list, "dtype": input_dtype, "sparse": False,
        "name": "input_layer"})]
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
        for rel, name in plan.vars_names(layer.name).items():
            groups[f"{plan.group}/{rel}"] = name
        for (path, _), value in zip(plan.weights, values):
            datasets[path] = value
    return write_h5_bytes(datasets, groups, caller)


def save_model(model, filepath):
    """Write ``model`` as a Keras 3 ``.keras`` archive that ``keras.models.load_model`` reads.

    Parameters
    ----------
    model : fastrnn.Sequential or fastrnn.Model
        Built (its input shape known), of layers with a Keras format (every
        fastrnn layer: see :data:`fastrnn.saving.keras_layers.LAYER_FORMATS`).
        A model whose mask Keras would apply where fastrnn does not (see
        :func:`fastrnn.saving.keras_layers.check_masks`) is refused.
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
    if _is_sequential(model):
        input_shape, dtype, plans = _plan_model(model)
        config = _model_config(model, input_shape, dtype, plans)
        weights = _weights_h5(model, plans, "save_model")
    else:
        config, graph = _plan_functional(model)
        weights = _functional_weights_h5(model, graph, "save_model")
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
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
                              f"Sequential and Functional models")
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
    check_masks([(i, p.fmt.class_name, p.kwargs, p.keras_config,
                  [(i - 1, 0)] if i else [("input", 0)]) for i, p in enumerate(plans)])
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
    except RecursionError as e:     # fastrnn walks graphs recursively
        raise FileFormatError(f"the model is too deep for fastrnn ({len(layers)} "
                              f"layers)") from e


def load_model(filepath):
    """Read a ``.keras`` archive written by Keras 3 (or :func:`save_model`) into a fastrnn model.

    Parameters
    ----------
    filepath : str or os.PathLike
        A ``.keras`` file holding a ``Sequential`` or a functional model of
        layers fastrnn has (each layer called once).

    Returns
    -------
    fastrnn.Sequential or fastrnn.Model
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
            if isinstance(config, dict) and config.get("class_name") == "Functional":
                check_keras_class(config, "the model")
                graph = _parse_functional(config)
                plans = graph.plans
            else:
                graph = None
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
    if graph is not None:
        with H5WeightReader(data, f"{what} ({_WEIGHTS})", "load_model") as reader:
            values = _read_weights(reader, plans)
        model = _build_functional(graph)
        try:
            model.set_weights(_functional_values(model, graph, values))
        except (TypeError, ValueError) as e:
            raise FileFormatError(f"{what}: {e}") from e
        return model
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
    model : fastrnn.Sequential or fastrnn.Model
        Built.
    filepath : str or os.PathLike
        Must end in ``.weights.h5`` (as Keras requires).  Replaced atomically.
    """
    require_h5py("save_weights")
    path = check_path(filepath, ".weights.h5")
    if _is_sequential(model):
        _, _, plans = _plan_model(model)
        data = _weights_h5(model, plans, "save_weights")
    else:
        _, graph = _plan_functional(model)
        data = _functional_weights_h5(model, graph, "save_weights")
    atomic_write_bytes(path, data)


def load_weights_h5(model, filepath):
    """Read a Keras 3 ``.weights.h5`` file (from Keras or :func:`save_weights_h5`) into ``model``.

    Weights are matched by position, as Keras matches them: the n-th layer of
    a class in the file (``dense``, ``dense_1``, ...) goes to the n-th layer
    of that class in the model; layer names do not matter.  Every shape and
    dtype is checked before data is read, and the model is changed only when
    all weights are good.

    Parameters
    ----------
    model : fastrnn.Sequential or fastrnn.Model
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
    graph = None
    if _is_sequential(model):
        _, _, plans = _plan_model(model)
    else:
        _, graph = _plan_functional(model)
        plans = graph.plans
    require_regular_file(path, "load_weights")
    with H5WeightReader(path, repr(path), "load_weights") as reader:
        values = _read_weights(reader, plans)
    if graph is not None:
        values = _functional_values(model, graph, values)
    model.set_weights(values)


# -- functional models ----------------------------------------------------------------
# Keras 3 writes a functional model as class "Functional": its "layers" (InputLayers
# included) each with "inbound_nodes" [{"args": [tensor or [tensors]], "kwargs": {...}}],
# where a tensor is {"class_name": "__keras_tensor__", "config": {"shape", "dtype",
# "keras_history": [layer name, node index, tensor index]}}, and "input_layers" /
# "output_layers" as one [name, node, index] triple, a list or a dict of them.  The
# mask computations Keras records beside the layers (NotEqual, Any, LogicalOr, ... of
# module keras.src.ops.*) feed only "mask" arguments: fastrnn reads the masks' meaning
# from the layers themselves (check_masks) and skips them.
_FUNCTIONAL_MODULE = "keras.src.models.functional"
_KERAS_TENSOR = "__keras_tensor__"
# Keras layers that write no build_config (they have no build of their own)
_NO_BUILD_CONFIG = {"Masking", "Activation", "Dropout", "Reshape"}


def _is_op(entry):
    module = entry.get("module")
    return isinstance(module, str) and (module.startswith("keras.src.ops.")
                                         or module.startswith("keras.ops"))


def _ref(t, names):
    """[layer name, 0, tensor index] of a fastrnn symbolic tensor (a layer is called once)."""
    layer, _, k = t._keras_history
    return [names[id(layer)], 0, k]


def _tensor_config(t, names):
    return {"class_name": _KERAS_TENSOR, "config": {
        "shape": list(t.shape), "dtype": t.dtype, "keras_history": _ref(t, names)}}


# Names Keras gives the operations it records while computing masks (a fresh Keras
# process names the first "concatenate", the next "concatenate_1", ...).
_MASK_OP_NAMES = re.compile(r"^(concatenate|not_equal|any|all|expand_dims|zeros_like|ones_like|"
                            r"logical_or|logical_and|broadcast_to|cast|squeeze)(_\d+)?$")


def _keras_names(model):
    """{id(layer): the name written for it}: the layer's own, except in a model with masks,
    where a name Keras would also give one of its mask operations when it rebuilds the
    model (a Concatenate called "concatenate") gets "_layer" appended -- Keras refuses a
    model with one name twice."""
    layers = model.layers
    masked = any(type(la).__name__ == "Masking" or getattr(la, "mask_zero", False)
                 for la in layers)
    taken = {la.name for la in layers}
    names = {}
    for layer in layers:
        name = layer.name
        if masked and _MASK_OP_NAMES.match(name):
            base, k = name + "_layer", 1
            name = base
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
        names[id(layer)] = name
    return names


def _is_ref(value):
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def _structure(struct, convert):
    """``convert`` applied to each tensor (or reference) of a model's inputs/outputs."""
    if isinstance(struct, dict):
        return {k: convert(struct[k]) for k in sorted(struct)}
    if isinstance(struct, (list, tuple)) and not _is_ref(struct):
        return [convert(t) for t in struct]
    return convert(struct)


def _listed(struct):
    """A single tensor as a list of one: Keras 3.0-3.3 read only lists (or dicts) of
    references, and every Keras 3 reads a list of one back as the tensor itself."""
    return [struct] if not isinstance(struct, (list, tuple, dict)) else struct


def _functional_config(model, dtype, names):
    """The Keras 3 config of a fastrnn functional model (layers in its ``layers`` order),
    with the layer names ``names`` (see :func:`_keras_names`)."""
    entries = []
    ref = lambda t: _ref(t, names)   # noqa: E731
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            in_dtype = str(layer.input_dtype) if layer.input_dtype.kind != "f" else dtype
            entry = keras_object("keras.layers", "InputLayer", {
                "batch_shape": list(layer.batch_shape), "dtype": in_dtype, "sparse": False,
                "name": names[id(layer)]})
            entry["name"] = names[id(layer)]
            entry["inbound_nodes"] = []
            entries.append(entry)
            continue
        fmt = format_for_layer(layer)
        node = model._node_of[id(layer)]
        entry = keras_object(fmt.module, fmt.class_name, fmt.to_keras(layer, dtype))
        entry["config"]["name"] = names[id(layer)]
        ins = node.input_tensors
        args = [[_tensor_config(t, names) for t in ins]] if layer._multi_input else \
            [_tensor_config(ins[0], names)]
        kwargs = {}
        if len(ins) > 1 and not layer._multi_input:          # SimpleRNN's initial_state
            kwargs["initial_state"] = _tensor_config(ins[1], names)
        if fmt.class_name not in _NO_BUILD_CONFIG:
            if kwargs:
                entry["build_config"] = {"shapes_dict": {
                    "sequences_shape": list(ins[0].shape),
                    "initial_state_shape": list(ins[1].shape)}}
            else:
                entry["build_config"] = {"input_shape": [list(t.shape) for t in ins]
                                         if layer._multi_input else list(ins[0].shape)}
        entry["name"] = names[id(layer)]
        entry["inbound_nodes"] = [{"args": args, "kwargs": kwargs}]
        entries.append(entry)
    config = {"module": _FUNCTIONAL_MODULE, "class_name": "Functional", "config": {
        "name": model.name, "trainable": True, "layers": entries,
        "input_layers": _structure(_listed(model._inputs_struct), ref),
        "output_layers": _structure(_listed(model._outputs_struct), ref)},
        "registered_name": "Functional", "build_config": {"input_shape": None}}
    return config


class _GraphPlan:
    """A functional model read from a config: its layers, calls, shapes and weights."""

    def __init__(self, name, dtype, inputs, plans, calls, inputs_struct, outputs_struct):
        self.name = name
        self.dtype = dtype
        self.inputs = inputs            # {name: (batch shape, dtype or None)}
        self.plans = plans              # [_LayerPlan] of every layer called, in order
        self.calls = calls              # [(layer name, [arg refs], state ref or None)] in order
        self.inputs_struct = inputs_struct
        self.outputs_struct = outputs_struct
        self.names = None               # {id(layer): written name} when made from a model


def _parse_ref(value, where, names):
    """(layer name, tensor index) of a [name, node index, tensor index] triple."""
    if not isinstance(value, (list, tuple)) or len(value) != 3 or \
            not isinstance(value[0], str) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in value[1:]):
        raise FileFormatError(f"config.json: {where} is not a [layer, node, index] "
                              f"reference: {value!r}")
    name, node, index = value
    if name not in names:
        raise FileFormatError(f"config.json: {where} refers to an unknown layer {name!r}")
    if node != 0:
        raise FileFormatError(f"config.json: {where} refers to call {node} of layer {name!r}; "
                              f"fastrnn calls each layer once (shared layers are not "
                              f"supported)")
    if not 0 <= index < 16:
        raise FileFormatError(f"config.json: {where}: tensor index {index} out of range")
    return name, index


def _parse_tensor(value, where, names):
    if not isinstance(value, dict) or value.get("class_name") != _KERAS_TENSOR or \
            not isinstance(value.get("config"), dict):
        raise FileFormatError(f"config.json: {where} is not a symbolic tensor: "
                              f"{str(value)[:200]}")
    return _parse_ref(value["config"].get("keras_history"), where, names)


def _parse_struct(value, where, names):
    """(structure of refs, flat list of refs) of "input_layers"/"output_layers"."""
    if isinstance(value, dict):
        if not value or len(value) > _MAX_LAYERS or \
                not all(isinstance(k, str) for k in value):
            raise FileFormatError(f"config.json: {where} is not a dict of references")
        refs = {k: _parse_ref(value[k], f"{where}[{k!r}]", names) for k in sorted(value)}
        return refs, list(refs.values())
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        if len(value) > _MAX_LAYERS:
            raise FileFormatError(f"config.json: {where} lists {len(value)} tensors")
        refs = [_parse_ref(v, f"{where}[{k}]", names) for k, v in enumerate(value)]
        # a list of one is the tensor itself, as Keras reads it
        return (refs[0] if len(refs) == 1 else refs), refs
    ref = _parse_ref(value, where, names)
    return ref, [ref]


def _parse_inbound(entry, where, names, multi):
    """(argument refs, initial-state ref or None, mask given) of a layer's one call."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        n = len(nodes) if isinstance(nodes, list) else nodes
        raise FileFormatError(f"{where}: called {n!r} times; fastrnn calls each layer once "
                              f"(shared layers are not supported)")
    node = nodes[0]
    if not isinstance(node, dict) or set(node) - {"args", "kwargs"}:
        raise FileFormatError(f"{where}: its call is not in Keras 3's format "
                              f"({{'args', 'kwargs'}}): {str(node)[:200]}")
    args, kwargs = node.get("args"), node.get("kwargs") or {}
    if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
        raise FileFormatError(f"{where}: its call takes {str(args)[:200]}; fastrnn layers "
                              f"take one input (a list for a merge)")
    first = args[0]
    if multi:
        if not isinstance(first, list) or not 1 <= len(first) <= _MAX_LAYERS:
            raise FileFormatError(f"{where}: a merge takes a list of tensors")
        refs = [_parse_tensor(t, f"{where}, input {k}", names) for k, t in enumerate(first)]
    else:
        refs = [_parse_tensor(first, f"{where}, input", names)]
    state = None
    for key, value in kwargs.items():
        if key == "training" and value in (None, True, False):
            continue
        if key == "mask":       # Keras's mask plumbing: check_masks decides
            continue
        if key == "initial_state" and entry.get("class_name") == "SimpleRNN":
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            state = _parse_tensor(value, f"{where}, initial_state", names)
            continue
        raise FileFormatError(f"{where}: call argument {key}={str(value)[:100]} is not "
                              f"supported by fastrnn")
    return refs, state


def _parse_functional(config):
    """A :class:`_GraphPlan` of a Keras 3 functional config (checked, nothing allocated)."""
    inner = config.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        raise FileFormatError("config.json: the functional model has no list of layers")
    entries = inner["layers"]
    if not entries or len(entries) > _MAX_LAYERS:
        raise FileFormatError(f"config.json lists {len(entries)} layers")
    name = inner.get("name") if isinstance(inner.get("name"), str) else None
    if inner.get("trainable", True) is not True:
        raise FileFormatError("the model is marked non-trainable; fastrnn trains every layer")
    names = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise FileFormatError(f"config.json: layer {i} is not an object")
        cfg = entry.get("config")
        lname = entry.get("name", cfg.get("name") if isinstance(cfg, dict) else None)
        if not isinstance(lname, str) or not 0 < len(lname) <= 1000:
            raise FileFormatError(f"config.json: layer {i} has no valid name")
        if lname in names:
            raise FileFormatError(f"config.json: two layers are named {lname!r}")
        names[lname] = i
    inputs, layers, ops, counts = {}, {}, {}, {}
    for i, entry in enumerate(entries):
        cfg = entry.get("config")
        lname = entry.get("name", cfg.get("name") if isinstance(cfg, dict) else None)
        cls = entry.get("class_name")
        where = f"layer {lname!r} ({cls})"
        if _is_op(entry):
            ops[lname] = cls        # used only if an output needs it: refused below
            continue
        if cls == "InputLayer":
            check_keras_class(entry, where)
            if entry.get("inbound_nodes") not in (None, []):
                raise FileFormatError(f"{where}: an InputLayer takes no input")
            shape, in_dtype, _ = _parse_input_layer(entry, where)
            if cfg.get("name") not in (None, lname):
                raise FileFormatError(f"{where}: its config names it {cfg.get('name')!r}")
            raw = cfg.get("dtype")
            inputs[lname] = (shape, in_dtype, raw if raw in _INTEGER_DTYPES else None)
            group_base = "input_layer"
        else:
            check_keras_class(entry, where)
            fmt = format_for_class(cls, f"config.json: {where}")
            kwargs = _read_layer(fmt, cfg, where)
            if kwargs.get("name") != lname:
                raise FileFormatError(f"{where}: its config names it {kwargs.get('name')!r}")
            refs, state = _parse_inbound(entry, where, names, cls in _MERGE_CLASSES)
            layers[lname] = (fmt, kwargs, cfg, refs, state)
            group_base = fmt.h5_name
        k = counts.get(group_base, 0)
        counts[group_base] = k + 1
        table = inputs if cls == "InputLayer" else layers
        table[lname] = table[lname] + ("layers/" + (group_base if k == 0 else
                                                    f"{group_base}_{k}"),)
    in_struct, in_refs = _parse_struct(inner.get("input_layers"), "input_layers", names)
    out_struct, out_refs = _parse_struct(inner.get("output_layers"), "output_layers", names)
    for lname, _ in in_refs:
        if lname not in inputs:
            raise FileFormatError(f"config.json: input_layers names {lname!r}, which is not "
                                  f"an InputLayer")
    if len({r for r in in_refs}) != len(in_refs):
        raise FileFormatError("config.json: input_layers lists one input twice")

    # the layers the outputs need, in an order where each comes after its inputs
    order, state_of, done = [], {}, set(inputs)
    for ref in out_refs:
        stack = [(ref[0], False)]
        while stack:
            lname, expanded = stack.pop()
            if lname in done:
                continue
            if lname in ops:
                raise FileFormatError(f"config.json: the outputs need operation {lname!r} "
                                      f"({ops[lname]}); fastrnn loads models of layers only")
            if lname not in layers:
                raise FileFormatError(f"config.json: the outputs need {lname!r}, which is "
                                      f"neither a layer nor an input")
            if expanded:
                done.add(lname)
                order.append(lname)
                continue
            if state_of.get(lname) == "open":
                raise FileFormatError(f"config.json: layer {lname!r} is part of a cycle")
            state_of[lname] = "open"
            stack.append((lname, True))
            _, _, _, refs, state = layers[lname][:5]
            for r in refs + ([state] if state else []):
                if r[0] not in done:
                    stack.append((r[0], False))
    unused = [n for n in inputs if n not in {r[0] for r in in_refs}]
    if unused:
        raise FileFormatError(f"config.json: InputLayer {unused[0]!r} is not a model input")

    # dtypes: every layer computes in one float type
    dtypes = [(n, parse_dtype(layers[n][2].get("dtype"), f"layer {n!r}")) for n in order]
    declared = {d for _, d in dtypes if d is not None}
    if len(declared) > 1:
        raise FileFormatError("the layers compute in different dtypes (" + ", ".join(
            f"{n}: {d}" for n, d in dtypes) + "); a fastrnn model has one dtype")
    floats = {d for _, d, *_ in inputs.values() if d is not None}
    dtype = declared.pop() if declared else (floats.pop() if len(floats) == 1 else "float32")

    # shapes and weights, from the arguments alone
    shapes = {}
    for lname, (shape, _, _, _) in inputs.items():
        if shape is not None and len(shape) < 2:
            raise FileFormatError(f"InputLayer {lname!r}: shape {shape} has no feature axis")
        shapes[(lname, 0)] = shape
    plans, calls = [], []
    for lname in order:
        fmt, kwargs, cfg, refs, state, group = layers[lname]
        where = f"layer {lname!r} ({fmt.class_name})"
        ins = []
        for r in refs:
            if r not in shapes:
                raise FileFormatError(f"{where}: its input {list(r)} does not exist")
            ins.append(shapes[r])
        in_shape = ins if fmt.class_name in _MERGE_CLASSES else ins[0]
        if state is not None:
            if state not in shapes:
                raise FileFormatError(f"{where}: its initial_state {list(state)} does not exist")
            want = (shapes[state][0], kwargs["units"])
            if len(shapes[state]) != 2 or shapes[state][1] != kwargs["units"]:
                raise FileFormatError(f"{where}: initial_state of shape {shapes[state]}, "
                                      f"expected {want}")
        rel, out = fmt.layer_weights(kwargs, in_shape, where)
        for k, s in enumerate(out if isinstance(out, list) else [out]):
            shapes[(lname, k)] = tuple(s)
        plans.append(_LayerPlan(fmt, kwargs, cfg, group, in_shape,
                                [(f"{group}/{p}", tuple(s)) for p, s in rel], out))
        calls.append((lname, refs, state))
    for r in out_refs:
        if r not in shapes:
            raise FileFormatError(f"config.json: output {list(r)} does not exist")
    check_masks([(n, layers[n][0].class_name, layers[n][1], layers[n][2], refs,
                   state is not None) for n, refs, state in calls])
    return _GraphPlan(name, dtype, inputs, plans, calls, in_struct, out_struct)


_MERGE_CLASSES = {"Add", "Subtract", "Multiply", "Average", "Concatenate"}


def _build_functional(graph):
    """The fastrnn model of a :class:`_GraphPlan` (the layers' weights initialised)."""
    import fastrnn
    tensors, objects = {}, {}
    try:
        for lname, (shape, _, int_dtype, _) in graph.inputs.items():
            tensors[(lname, 0)] = fastrnn.Input(shape[1:], batch_size=shape[0],
                                                dtype=int_dtype or graph.dtype, name=lname)
        for plan, (lname, refs, state) in zip(graph.plans, graph.calls):
            layer = plan.fmt.make(plan.kwargs)
            objects[lname] = layer
            ins = [tensors[r] for r in refs]
            arg = ins if plan.fmt.class_name in _MERGE_CLASSES else ins[0]
            if state is not None:
                out = layer(arg, initial_state=tensors[state])
            else:
                out = layer(arg)
            for k, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(lname, k)] = t
        model = fastrnn.Model(_structure(graph.inputs_struct, lambda r: tensors[r]),
                              _structure(graph.outputs_struct, lambda r: tensors[r]),
                              name=graph.name)
    except (TypeError, ValueError, NotImplementedError, KeyError) as e:
        raise FileFormatError(f"the model cannot be built in fastrnn: {e}") from e
    except RecursionError as e:     # fastrnn walks graphs recursively
        raise FileFormatError(f"the model's graph is too deep for fastrnn "
                              f"({len(graph.plans)} layers in a chain)") from e
    return model


def _functional_values(model, graph, values):
    """The weights read for ``graph``'s layers (plan order), in ``model.get_weights()`` order."""
    by_name, start = {}, 0
    for plan in graph.plans:
        by_name[plan.kwargs["name"]] = values[start:start + len(plan.weights)]
        start += len(plan.weights)
    out = []
    names = getattr(graph, "names", None) or {}
    for layer in model._weighted_layers():
        got = by_name.get(names.get(id(layer), layer.name), [])
        if [tuple(w.shape) for w in layer.weights] != [tuple(v.shape) for v in got]:
            raise FileFormatError(f"layer {layer.name!r}: the file's weights do not fit it")
        out.extend(got)
    return out


def _plan_functional(model):
    """(config, graph plan) of a fastrnn functional model, checked by reading it back."""
    dtype = _dtype_name(model)
    names = _keras_names(model)
    config = _functional_config(model, dtype, names)
    graph = _parse_functional(config)
    graph.names = names
    by_name = {names[id(layer)]: layer for layer in model.layers}
    for plan in graph.plans:
        layer = by_name[plan.kwargs["name"]]
        got = [tuple(w.shape) for w in layer.weights]
        want = [s for _, s in plan.weights]
        if got != want:
            raise ValueError(f"{plan.where}: weights of shapes {got}, but the Keras format "
                             f"expects {want}")
    return config, graph


def _functional_weights_h5(model, graph, caller):
    datasets = {}
    groups = {"vars": model.name}
    values = model.get_weights()
    per_layer, start = {}, 0
    for layer in model._weighted_layers():
        n = len(layer.weights)
        per_layer[graph.names[id(layer)]] = values[start:start + n]
        start += n
    for lname, (_, _, _, group) in graph.inputs.items():
        groups[f"{group}/vars"] = lname
    for plan in graph.plans:
        lname = plan.kwargs["name"]
        for rel, vname in plan.vars_names(lname).items():
            groups[f"{plan.group}/{rel}"] = vname
        for (path, _), value in zip(plan.weights, per_layer[lname]):
            datasets[path] = value
    return write_h5_bytes(datasets, groups, caller)
