"""The model: :class:`Sequential`, a stack of layers trained as in Keras.

Memory layout
-------------
A built model owns one contiguous 1-D array ``params`` (the model's dtype)
holding every weight, and one ``grads`` array of the same layout.  Each
layer's weights are C-contiguous views into ``params`` in Keras
``get_weights()`` order (per layer: SimpleRNN kernel, recurrent_kernel, bias;
Dense kernel, bias).  ``param_layout`` lists ``(name, shape, offset)`` for
every weight.  An optimizer keeps its state in flat buffers of the same
layout and updates everything with one call per step.

Training, evaluation and prediction come from
:class:`fastrnn.trainers.Trainer` (one compiled engine for every model).
"""
import io
import struct
import threading
import zipfile
import zlib

import numpy as np

from ..layers import InputLayer, Layer, _check_shape, _shape_str, _unique_name
from ..saving._files import atomic_write_bytes, require_regular_file
from ..trainers.trainer import Trainer

__all__ = ["Sequential"]


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


class Sequential(Trainer):
    """A linear stack of layers, as ``keras.Sequential``.

    Parameters
    ----------
    layers : list, optional
        :class:`fastrnn.layers.Layer` instances, optionally preceded by a
        :func:`fastrnn.Input`.  With an input shape known (from ``Input`` or
        the first layer's ``input_shape``) the model is built at once;
        otherwise on the first ``fit`` or an explicit :meth:`build`.
    name : str, optional

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

    def __init__(self, layers=None, name=None):
        self.name = name if name is not None else _unique_name("sequential")
        self._layers = []
        self._input = None
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
        self._layer_offsets = []
        self._lock = threading.RLock()
        if layers is not None:
            if isinstance(layers, (Layer, InputLayer)):
                layers = [layers]
            for layer in layers:
                self.add(layer, _rebuild=False)
        self._build_if_shape_known()

    # -- structure -----------------------------------------------------------
    @property
    def layers(self):
        """The layers, in order (the ``Input`` is not one)."""
        return list(self._layers)

    def add(self, layer, _rebuild=True):
        """Append a layer (or, first, an :func:`fastrnn.Input`)."""
        if isinstance(layer, InputLayer):
            if self._layers or self._input is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            self._input = layer
        else:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes fastrnn layers, got {type(layer).__name__}")
            if any(layer is other for other in self._layers):
                raise ValueError(f"layer {layer.name!r} is already in this model")
            owner = layer._owner()
            if owner is not None and owner is not self and owner.built:
                raise ValueError(
                    f"layer {layer.name!r} already belongs to model {owner.name!r}, whose weights "
                    f"live in that model's buffer; fastrnn does not share a layer between two "
                    f"models (Keras would share its weights). Use a new layer, and copy weights "
                    f"with get_weights()/set_weights() if they should start equal")
            if any(layer.name == other.name for other in self._layers):
                raise ValueError(f"two layers are named {layer.name!r}; layer names must be unique")
            if self._layers and getattr(self._layers[-1], "return_state", False):
                raise ValueError(f"layer {self._layers[-1].name!r} has return_state=True and "
                                 f"returns two outputs; it can only be the last layer")
            self._layers.append(layer)
        self.built = False
        if _rebuild:
            self._build_if_shape_known()

    def _declared_input_shape(self):
        if self._input is not None:
            return self._input.shape
        if self._layers and self._layers[0]._input_shape_arg is not None:
            return self._layers[0]._input_shape_arg
        return None

    def _build_if_shape_known(self):
        shape = self._declared_input_shape()
        if shape is not None and self._layers:
            self.build(shape)

    def _model_dtype(self):
        declared = [(self._input.name, self._input.dtype)] if self._input is not None else []
        declared += [(layer.name, layer.dtype) for layer in self._layers if not layer.built]
        declared = [(n, d) for n, d in declared if d is not None]
        dtypes = {d for _, d in declared}
        if len(dtypes) > 1:
            raise ValueError("layers ask for different dtypes: "
                             + ", ".join(f"{n}: {d}" for n, d in declared))
        if dtypes:
            return dtypes.pop()
        built = {layer.dtype for layer in self._layers if layer.built}
        return built.pop() if len(built) == 1 else np.dtype(np.float32)

    def build(self, input_shape):
        """Create (or re-use) every layer's weights and gather them into ``params``.

        Parameters
        ----------
        input_shape : tuple
            Including the batch axis, e.g. ``(None, 3, 1)``; the time axis may be None.
        """
        if not self._layers:
            raise ValueError("the model has no layers; add some before building it")
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") \
                or len(input_shape) < 2:
            raise ValueError(f"input_shape must be a tuple with the batch axis first, such as "
                             f"(None, 3, 1); got {input_shape!r}")
        input_shape = (input_shape[0],) + _check_shape(input_shape[1:], "input_shape")
        dtype = self._model_dtype()
        # Check the whole chain of shapes before touching any layer.
        shape = input_shape
        for i, layer in enumerate(self._layers):
            if isinstance(shape, list):
                raise ValueError(f"layer {self._layers[i - 1].name!r} returns two outputs "
                                 f"(return_state=True); it must be the last layer")
            shape = layer.compute_output_shape(shape)  # a clear error for a wrong rank
        shape = input_shape
        for layer in self._layers:
            specs = [tuple(s) for _, s, _ in layer._weight_specs(shape)]
            if layer.built and specs == [s for _, s in layer._specs]:
                # keep its values (cast below when copied into params)
                layer.input_shape = shape
                layer.output_shape = layer.compute_output_shape(shape)
            else:
                layer.build(shape, dtype)
            layer.dtype = dtype
            shape = layer.output_shape
        values = [w for layer in self._layers for w in layer.get_weights()]
        total = sum(layer.count_params() for layer in self._layers)
        params = np.empty(total, dtype=dtype)
        grads = np.zeros(total, dtype=dtype)
        layout, offset, layer_offsets = [], 0, []
        for prefix, layer in zip(self._weight_prefixes(), self._layers):
            n = layer.count_params()
            layer._bind(params[offset:offset + n], grads[offset:offset + n])
            layer._set_owner(self)
            layer_offsets.append(offset)
            for (wname, wshape), w in zip(layer._specs, layer._weights):
                layout.append((f"{prefix}/{wname}", wshape, offset))
                offset += w.size
        for view, value in zip(self._views(), values):
            view[...] = value
        self.params, self.grads, self.param_layout = params, grads, layout
        self._layer_offsets = layer_offsets
        self._engine_runner = None
        self._input_shape, self._output_shape = input_shape, shape
        self.built = True

    def _weight_prefixes(self):
        """Structural names: the default layer name, numbered within this model (stable across models)."""
        counts, names = {}, []
        for layer in self._layers:
            base = layer._default_name
            k = counts.get(base, 0)
            counts[base] = k + 1
            names.append(base if k == 0 else f"{base}_{k}")
        return names

    def _views(self):
        return [w for layer in self._layers for w in layer._weights]

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"model {self.name!r} has no input shape yet, so it cannot {what}: "
                             f"start it with fastrnn.Input(shape), give the first layer "
                             f"input_shape=..., call build((None, T, D)) or fit it first")

    @property
    def dtype(self):
        """The dtype of the weights and of all computation (float32 by default)."""
        return self.params.dtype if self.built else self._model_dtype()

    @property
    def input_shape(self):
        self._require_built("report its input shape")
        return self._input_shape

    @property
    def output_shape(self):
        self._require_built("report its output shape")
        return self._output_shape

    @property
    def weights(self):
        """Live views of every weight, in Keras order."""
        return self._views()

    def count_params(self):
        """Total number of scalar weights."""
        self._require_built("count its parameters")
        return int(self.params.size)

    def summary(self, print_fn=None):
        """Print a table of layers (name and type), output shapes and parameter counts.

        Parameters
        ----------
        print_fn : callable, optional
            Called with each line; default :func:`print`.
        """
        self._require_built("print a summary")
        print_fn = print_fn or print
        rows = []
        for layer in self._layers:
            out = layer.output_shape
            shape = ("[" + ", ".join(_shape_str(s) for s in out) + "]"
                     if isinstance(out, list) else _shape_str(out))
            rows.append((f"{layer.name} ({type(layer).__name__})", shape,
                         f"{layer.count_params():,}"))
        w1 = max([33] + [len(r[0]) + 2 for r in rows])
        w2 = max([26] + [len(r[1]) + 2 for r in rows])
        w3 = 12
        width = w1 + w2 + w3
        nbytes = self.params.nbytes
        total = self.count_params()
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(f" {'Layer (type)':<{w1 - 1}}{'Output Shape':<{w2}}{'Param #':>{w3 - 1}}")
        print_fn("=" * width)
        for i, (a, b, c) in enumerate(rows):
            print_fn(f" {a:<{w1 - 1}}{b:<{w2}}{c:>{w3 - 1}}")
            if i < len(rows) - 1:
                print_fn("-" * width)
        print_fn("=" * width)
        print_fn(f" Total params: {total:,} ({_readable_bytes(nbytes)})")
        print_fn(f" Trainable params: {total:,} ({_readable_bytes(nbytes)})")
        print_fn(f" Non-trainable params: 0 ({_readable_bytes(0)})")
        print_fn("_" * width)

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

    def _concrete_output_shape(self, x_shape):
        shape = (x_shape[0],) + tuple(x_shape[1:])
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    # -- files for other frameworks --------------------------------------------------
    def save(self, filepath):
        """Write a Keras 3 ``.keras`` archive that ``keras.models.load_model`` reads.

        Needs h5py (``pip install "fastrnn[keras-io]"``); see :mod:`fastrnn.saving`.
        """
        from ..saving import save_model
        save_model(self, filepath)

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
            for layer, offset in zip(self._layers, self._layer_offsets):
                n = layer.count_params()
                layer._bind(self.params[offset:offset + n], self.grads[offset:offset + n])
                layer._set_owner(self)

    def __copy__(self):
        """``copy.copy`` gives an independent model too (a shallow one would share layers)."""
        import copy
        return copy.deepcopy(self)

    def __call__(self, x):
        """The model's output for ``x`` in one batch (a new array)."""
        self._require_built("be called")
        out = self._forward(self._check_x(x))
        return [o.copy() for o in out] if isinstance(out, list) else out.copy()

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self._layers]}>"
