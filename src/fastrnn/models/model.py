"""The model base class: :class:`Model`, shared by functional models and Sequential.

Memory layout
-------------
A built model owns one contiguous 1-D array ``params`` (the model's dtype)
holding every weight, and one ``grads`` array of the same layout.  Each
layer's weights are C-contiguous views into ``params`` in Keras
``get_weights()`` order (layer by layer in ``model.layers`` order; per layer
Keras's weight order: SimpleRNN kernel, recurrent_kernel, bias; Dense kernel,
bias; Embedding embeddings).  ``param_layout`` lists ``(name, shape,
offset)`` for every weight.  An optimizer keeps its state in flat buffers of
the same layout and updates everything with one call per step.

``fastrnn.Model(inputs, outputs)`` makes a :class:`~.functional.Functional`
model, as ``keras.Model`` does; :class:`~.sequential.Sequential` is a
functional model that is a chain.  Training, evaluation and prediction come
from :class:`fastrnn.trainers.Trainer` (one compiled engine for every model).
"""
import io
import math
import struct
import threading
import zipfile
import zlib

import numpy as np

from ..layers.layer import _unique_name
from ..saving._files import atomic_write_bytes, require_regular_file
from ..trainers.trainer import Trainer

__all__ = ["Model", "WeightFileError"]


def _readable_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


# What a malformed (truncated, corrupted, hostile) weights file can raise
# from zipfile and numpy's .npy reader; load_weights turns these into ValueError.
_MALFORMED_FILE_ERRORS = (ValueError, zipfile.BadZipFile, zipfile.LargeZipFile,
                          NotImplementedError, EOFError, OSError, KeyError, SyntaxError,
                          UnicodeDecodeError, struct.error, zlib.error, RuntimeError,
                          TypeError, OverflowError)


class WeightFileError(ValueError):
    """A weights file that is malformed or does not fit the model."""


def _is_weights_h5(filepath):
    import os
    try:
        return os.fspath(filepath).endswith(".weights.h5")
    except TypeError:
        return False


def _read_npy_header(f, name):
    """(shape, dtype) from an .npy stream's header; nothing else is read."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise WeightFileError(f"load_weights: weight {name!r} has unsupported "
                         f".npy format version {version}")
    return tuple(shape), dtype


def _defined_below(cls, base):
    """Names defined by the classes between ``cls`` and ``base`` (user subclasses)."""
    from .functional import Functional
    names = set()
    for klass in cls.__mro__:
        if klass is base or klass is Functional or klass.__module__.startswith("fastrnn."):
            continue
        names.update(vars(klass))
    return names


class Model(Trainer):
    """A model: layers with their weights in one flat buffer, trained by the engine.

    ``Model(inputs, outputs, name=None)`` builds a functional model (a graph
    of layer calls from :func:`fastrnn.Input` tensors), as ``keras.Model``;
    see :class:`~.functional.Functional`.  Subclassing Model with a ``call``
    method is not supported.

    Attributes
    ----------
    params : ndarray of shape (P,)
        Every weight, in one contiguous buffer (None until built).
    grads : ndarray of shape (P,)
        The gradients of the last training batch, same layout.
    param_layout : list of (str, tuple, int)
        ``(name, shape, offset)`` of each weight in ``params``.
    optimizer, loss
        Set by :meth:`compile`.
    stop_training : bool
        A callback may set it to end ``fit`` after the current epoch.
    """

    #: counts every (re)binding of layers to a model's buffer, in any model
    _bindings = 0

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            from .functional import Functional
            if not (args or "inputs" in kwargs or "outputs" in kwargs):
                raise NotImplementedError(
                    "Model() without inputs and outputs (a subclass with a call method) is "
                    "not supported; build Model(inputs, outputs) from fastrnn.Input tensors, "
                    "or a Sequential")
            return super().__new__(Functional)
        if "call" in _defined_below(cls, Model):     # class MyModel(Model) with a call()
            from .subclassed import Subclassed, subclassed_class
            if not issubclass(cls, Subclassed):
                cls = subclassed_class(cls)
        return super().__new__(cls)

    def _init_model(self, name, default_name):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name if name is not None else _unique_name(default_name)
        self.built = False
        self.params = None
        self.grads = None
        self.param_layout = []
        self.optimizer = None
        self.loss = None
        self._loss_fn = None
        self.stop_training = False
        self.history = None
        self._engine_runner = None  # the lowered plan and its engines (see _runner)
        self._layer_offsets = []        # of each layer of _weighted_layers(), in params
        self._claimed_at = -1
        self._lock = threading.RLock()

    # -- structure -----------------------------------------------------------
    @property
    def layers(self):
        raise NotImplementedError

    def _weighted_layers(self):
        """The layers that own weights (InputLayers excluded), in weight order."""
        from ..layers.input_layer import InputLayer
        return [layer for layer in self.layers if not isinstance(layer, InputLayer)]

    def get_layer(self, name=None, index=None):
        """A layer by name or by index in :attr:`layers`, as ``keras.Model.get_layer``."""
        if index is not None and name is not None:
            raise ValueError(f"give a layer name or an index, not both (got name={name!r}, "
                             f"index={index})")
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"index must be an int, got {type(index).__name__}")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"index {index} is out of range: the model has "
                                 f"{len(layers)} layers")
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"no layer named {name!r}; the layers are "
                             f"{[layer.name for layer in layers]}")
        raise ValueError("get_layer needs a name or an index")

    def _gather_params(self, layers, dtype):
        """One flat buffer for the weights of ``layers`` (built), values copied in."""
        values = [w for layer in layers for w in layer.get_weights()]
        total = sum(layer.count_params() for layer in layers)
        params = np.empty(total, dtype=dtype)
        grads = np.zeros(total, dtype=dtype)
        layout, offset, layer_offsets = [], 0, []
        for prefix, layer in zip(self._weight_prefixes(layers), layers):
            n = layer.count_params()
            layer._bind(params[offset:offset + n], grads[offset:offset + n])
            layer._set_owner(self)
            layer.dtype = np.dtype(dtype)
            layer_offsets.append(offset)
            for (wname, wshape), w in zip(layer._specs, layer._weights):
                layout.append((f"{prefix}/{wname}", wshape, offset))
                offset += w.size
        views = [w for layer in layers for w in layer._weights]
        for view, value in zip(views, values):
            view[...] = value
        self.params, self.grads, self.param_layout = params, grads, layout
        self._layer_offsets = layer_offsets
        self._engine_runner = None
        Model._bindings += 1
        self._claimed_at = Model._bindings

    def _replayed_params(self, records):
        """A new flat weight buffer drawn as this model's build drew its weights.

        ``records`` is what :class:`fastrnn.layers.layer.recording_builds`
        saw while this model was built.  Each recorded initializer is called
        again, in the same order, with the same shape, dtype and generator
        (the layer's own ``seed`` or the current stream), so under the seed
        the build ran under the buffer equals the build's initial weights,
        and under another seed it is what a build under that seed gives --
        provided the build drew nothing else, which :func:`fastrnn.fit_many`
        checks by training one copy both ways.

        Parameters
        ----------
        records : list
            ``(layer, dtype, [(shape, initializer), ...])`` per layer build.

        Returns
        -------
        ndarray of shape (P,), or None
            None when a recorded layer is not one of this model's (e.g. the
            inner layers a wrapper builds itself) or the sizes disagree.
        """
        offsets = {id(layer): off
                   for layer, off in zip(self._weighted_layers(), self._layer_offsets)}
        params = np.empty_like(self.params)
        filled = 0
        for layer, dtype, draws in records:
            offset = offsets.get(id(layer))
            if offset is None:
                return None
            rng = layer._rng()
            for shape, init in draws:
                value = init(shape, dtype, rng)
                params[offset:offset + value.size] = value.reshape(-1)
                offset += value.size
                filled += value.size
        return params if filled == params.size else None

    def _claim_layers(self):
        """Point the layers' weights back at this model's buffer if another model
        built from the same layers took them, bringing their current values.

        A layer's weights live in one buffer at a time: that of the model built
        (or run) last.  Models that share layers (a model and a sub-model made
        from the same tensors) thus see each other's training, as in Keras.
        """
        if self._claimed_at == Model._bindings:
            return      # no model has bound any layer since this one did
        layers = self._weighted_layers()
        if all(layer._owner() is self for layer in layers):
            self._claimed_at = Model._bindings
            return
        owners = {id(o): o for o in (layer._owner() for layer in layers)
                  if o is not None and o is not self}
        locks = [o._lock for o in owners.values() if o._lock is not None]
        for lock in locks:      # the other models' weights, never half an update
            lock.acquire()
        try:
            values = [layer.get_weights() for layer in layers]
        finally:
            for lock in locks:
                lock.release()
        for layer, current, off in zip(layers, values, self._layer_offsets):
            n = layer.count_params()
            layer._bind(self.params[off:off + n], self.grads[off:off + n])
            layer._set_owner(self)
            for view, value in zip(layer._weights, current):
                view[...] = value
        Model._bindings += 1
        self._claimed_at = Model._bindings

    def _runner(self):
        self._claim_layers()
        return super()._runner()

    @staticmethod
    def _weight_prefixes(layers):
        """Structural names: the default layer name, numbered within this model (stable across models)."""
        counts, names = {}, []
        for layer in layers:
            base = layer._default_name
            k = counts.get(base, 0)
            counts[base] = k + 1
            names.append(base if k == 0 else f"{base}_{k}")
        return names

    def _views(self):
        return [w for layer in self._weighted_layers() for w in layer._weights]

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"model {self.name!r} has no input shape yet, so it cannot {what}: "
                             f"start it with fastrnn.Input(shape), give the first layer "
                             f"input_shape=..., call build((None, T, D)) or fit it first")

    @property
    def weights(self):
        """Live views of every weight, in Keras order."""
        return self._views()

    @property
    def trainable(self):
        """Whether ``fit`` updates the model's weights (Keras's ``model.trainable``).

        Setting it sets every layer's ``trainable`` too, as Keras does; a
        non-trainable model trains nothing even if a layer is set trainable
        again afterwards.  Takes effect at the next ``fit``/``train_on_batch``
        (Keras asks for ``compile`` again; it raises when the optimizer was
        already built for another set of trainable weights).
        """
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value):
        from ..layers.layer import _check_trainable
        value = _check_trainable(value, f"model {getattr(self, 'name', '?')!r}.trainable")
        self._trainable = value
        for layer in self._weighted_layers():
            layer.trainable = value
        from ..layers.layer import TRAINABLE_CHANGES
        TRAINABLE_CHANGES[0] += 1

    def _frozen_segments(self):
        """(offsets, lengths) in ``params`` of the weights that do not train, merged
        where adjacent; empty when every weight trains (a built model)."""
        offsets, lengths = [], []
        every = not self.trainable
        for layer, base in zip(self._weighted_layers(), self._layer_offsets):
            frozen = (set(name for name, _ in layer._specs) if every
                      else layer._frozen_weight_names())
            if not frozen:
                continue
            within = layer._weight_offsets()
            for name, shape in layer._specs:
                if name not in frozen:
                    continue
                off, n = base + within[name], math.prod(shape)
                if offsets and offsets[-1] + lengths[-1] == off:
                    lengths[-1] += n
                else:
                    offsets.append(off)
                    lengths.append(n)
        return offsets, lengths

    @property
    def trainable_weights(self):
        """The weights ``fit`` updates (live views, Keras order)."""
        if not self.trainable:
            return []
        return [w for layer in self._weighted_layers() for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        """The frozen weights (live views, Keras order)."""
        if not self.trainable:
            return self.weights
        return [w for layer in self._weighted_layers() for w in layer.non_trainable_weights]

    def count_params(self):
        """Total number of scalar weights."""
        self._require_built("count its parameters")
        return int(self.params.size)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print a table of layers (name and type), output shapes and parameter counts.

        A functional model that is not a chain adds Keras's "Connected to"
        column.  An unbuilt Sequential lists its layers with "?" shapes and
        "0 (unbuilt)", as Keras does.

        Parameters
        ----------
        print_fn : callable, optional
            Called with each line; default :func:`print`.
        line_length, positions, expand_nested, show_trainable, layer_range
            Accepted for Keras compatibility; only the defaults are supported.
        """
        from .summary import print_summary
        print_summary(self, print_fn or print)

    # -- weights -------------------------------------------------------------
    def get_weights(self):
        """Copies of every weight, in Keras ``get_weights()`` order.

        Returns
        -------
        list of ndarray
            Per layer: SimpleRNN kernel (D, H), recurrent_kernel (H, H), bias (H,);
            Dense kernel (D, U), bias (U,).
        """
        self._require_built("give its weights")
        return [w.copy() for w in self._views()]

    def _check_weight_list(self, weights, source):
        """Validate a list of weights against the layout; returns arrays in the model's dtype."""
        views = self._views()
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"{source}: weights must be a list of arrays (as get_weights() "
                            f"returns), got {type(weights).__name__}")
        weights = list(weights)
        if len(weights) != len(views):
            raise ValueError(f"{source}: the model has {len(views)} weight arrays "
                             f"({', '.join(n for n, _, _ in self.param_layout)}), got {len(weights)}")
        checked = []
        for (name, shape, _), value in zip(self.param_layout, weights):
            value = np.asarray(value)
            if value.dtype.kind not in "fiu":
                raise TypeError(f"{source}: weight {name!r} must hold real numbers, "
                                f"got dtype {value.dtype}")
            if value.shape != shape:
                raise ValueError(f"{source}: weight {name!r} must have shape {shape}, "
                                 f"got {value.shape}")
            with np.errstate(over="ignore"):   # overflow shows as inf, refused below
                value = value.astype(self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{source}: weight {name!r} contains NaN or infinity")
            checked.append(value)
        return checked

    def set_weights(self, weights):
        """Overwrite every weight (all are checked before any is written).

        Parameters
        ----------
        weights : list of array_like
            In :meth:`get_weights` order and shapes (e.g. a Keras model's
            ``get_weights()``); cast to the model's dtype.
        """
        self._require_built("take weights")
        checked = self._check_weight_list(weights, "set_weights")
        with self._lock:        # predict in another thread sees old or new, never a mix
            for view, value in zip(self._views(), checked):
                view[...] = value

    def save_weights(self, filepath):
        """Write the weights to an ``.npz`` file (one array per weight, no pickles).

        Keys are structural, ``"<layer type>[_k]/<weight>"`` (``simple_rnn/kernel``,
        ``dense_1/bias``, ...), so a file loads into any model of the same architecture.

        Parameters
        ----------
        filepath : str or os.PathLike
            Must end in ``.npz``.
        """
        self._require_built("save weights")
        if _is_weights_h5(filepath):
            from ..saving import save_weights_h5
            return save_weights_h5(self, filepath)
        path = self._npz_path(filepath)
        with self._lock:        # a consistent set of weights, never half an update
            arrays = {name: w.copy() for (name, _, _), w in zip(self.param_layout, self._views())}
        data = io.BytesIO()
        np.savez(data, **arrays)
        atomic_write_bytes(path, data.getbuffer())   # the old file survives a failed save

    @staticmethod
    def _npz_path(filepath):
        import os
        path = os.fspath(filepath)
        if not isinstance(path, str) or not path.endswith(".npz"):
            raise ValueError(f"filepath must end in '.npz' (fastrnn's format) or "
                             f"'.weights.h5' (Keras's), got {filepath!r}")
        return path

    def load_weights(self, filepath):
        """Read weights written by :meth:`save_weights`.

        The file is untrusted input: every array's name, shape and dtype is
        checked from the ``.npy`` headers before any data is read (so a header
        claiming billions of elements costs nothing), data is read with
        ``allow_pickle=False``, and any malformed file is a ``ValueError``.
        On any error the model is left unchanged.

        Parameters
        ----------
        filepath : str or os.PathLike
            An ``.npz`` file.

        Raises
        ------
        ValueError
            The file is not a valid weights file for this model (and says why).
        FileNotFoundError, IsADirectoryError, PermissionError
            The path cannot be opened.
        """
        self._require_built("load weights")
        if _is_weights_h5(filepath):
            from ..saving import load_weights_h5
            return load_weights_h5(self, filepath)
        path = self._npz_path(filepath)
        require_regular_file(path, "load_weights")
        try:
            arrays = self._read_weight_file(path)
        except (FileNotFoundError, IsADirectoryError, PermissionError, WeightFileError):
            raise
        except _MALFORMED_FILE_ERRORS as e:
            raise ValueError(f"load_weights: {path!r} is not a valid weights file "
                             f"({type(e).__name__}: {e})") from e
        self.set_weights(arrays)

    def _read_weight_file(self, path):
        """The arrays of an .npz in ``param_layout`` order, checked header-first."""
        expected = {name: shape for name, shape, _ in self.param_layout}
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise WeightFileError(f"load_weights: {path!r} is not an .npz file") from None
        with zf:
            members = zf.namelist()
            names = []
            for member in members:
                if not member.endswith(".npy"):
                    raise WeightFileError(f"load_weights: {path!r} holds {member!r}, "
                                     f"which is not an .npy array")
                names.append(member[:-4])
            if len(set(names)) != len(names):
                raise WeightFileError(f"load_weights: {path!r} holds an array name twice")
            missing = [n for n in expected if n not in names]
            unexpected = [n for n in names if n not in expected]
            if missing or unexpected:
                raise WeightFileError(f"load_weights: {path!r} does not match the model's weights; "
                                 f"missing {missing}, unexpected {unexpected}")
            for name in names:
                try:
                    with zf.open(name + ".npy") as f:
                        shape, dtype = _read_npy_header(f, name)
                except _MALFORMED_FILE_ERRORS as e:
                    raise WeightFileError(f"load_weights: weight {name!r} in {path!r} has a "
                                          f"malformed .npy header ({type(e).__name__}: {e})") from e
                if dtype.hasobject or dtype.kind != "f":
                    raise WeightFileError(f"load_weights: weight {name!r} has dtype {dtype}; "
                                     f"expected floating point")
                if shape != expected[name]:
                    raise WeightFileError(f"load_weights: weight {name!r} has shape {shape}, "
                                     f"the model expects {expected[name]}")
            arrays = []
            for name, shape, _ in self.param_layout:
                with zf.open(name + ".npy") as f:
                    array = np.lib.format.read_array(f, allow_pickle=False)
                if array.shape != shape:  # read_array re-reads the header
                    raise WeightFileError(f"load_weights: weight {name!r} changed shape on reading")
                arrays.append(array)
        return arrays


    # -- files for other frameworks --------------------------------------------------
    def save(self, filepath):
        """Write a Keras 3 ``.keras`` archive that ``keras.models.load_model`` reads.

        Needs h5py (``pip install "fastrnn[keras-io]"``); see :mod:`fastrnn.saving`.
        """
        from ..saving import save_model
        save_model(self, filepath)
        from ..trainers.compile_config import write_compile_config
        write_compile_config(self, filepath)    # how it was compiled, as Keras writes it

    def export(self, filepath, format="onnx", opset=None):
        """Export for deployment: ``format="onnx"`` writes an ONNX graph (ONNX's RNN operator).

        Needs onnx (``pip install "fastrnn[onnx]"``); see :func:`fastrnn.export.to_onnx`.
        """
        if format != "onnx":
            raise ValueError(f"format must be 'onnx', got {format!r}")
        from ..export import to_onnx
        to_onnx(self, filepath, opset=opset)

    # -- copies and pickles ------------------------------------------------------------
    def __getstate__(self):
        """Everything but the compiled engines and the lock (rebuilt on demand)."""
        state = self.__dict__.copy()
        state["_engine_runner"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        """A whole, independent model: every layer's weights re-pointed into its own params.

        (Pickling and deep-copying copy ``params`` and each layer's weight views
        as separate arrays; this makes the views views again.)
        """
        self.__dict__.update(state)
        self._lock = threading.RLock()
        if self.built:
            for layer, offset in zip(self._weighted_layers(), self._layer_offsets):
                n = layer.count_params()
                layer._bind(self.params[offset:offset + n], self.grads[offset:offset + n])
                layer._set_owner(self)
            self._claimed_at = -1

    def __copy__(self):
        """``copy.copy`` gives an independent model too (a shallow one would share layers)."""
        import copy
        return copy.deepcopy(self)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"
