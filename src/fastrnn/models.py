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

Training
--------
Building a model lowers it once to a plan for the compiled engine
(:mod:`fastrnn.engine`); ``fit``, ``evaluate`` and ``predict`` all run on
it.  :meth:`Sequential.fit` checks and casts its inputs once, then runs one
compiled call per epoch (forward, loss, backward, clipping and the optimizer
step for every batch, no allocation per step) -- or, when a callback needs
per-batch hooks or the progress bar is shown, one compiled call per batch
(:meth:`Sequential._train_batch`).  Every model fastrnn can build takes
this one path.

Non-finite training
-------------------
The engine checks every batch's loss and gradient before the optimizer
runs, and the updated weights after it; the first inf or NaN stops ``fit``
with :class:`fastrnn.errors.NonFiniteTrainingError` (a
``FloatingPointError``) naming the epoch and batch, leaving the weights and
optimizer state of the last good step.  A ``KeyboardInterrupt`` or a
callback's exception likewise leaves the weights of the last completed step.

Threads
-------
One lock per model: a compiled call (a training batch or epoch, a
prediction chunk) runs with it held, so ``predict`` while another thread
runs ``fit`` sees the weights of some completed step (or epoch), never a
half-written update.  Prediction engines are per thread, so threads predict
with one model in parallel when nothing trains it.
"""
import struct
import sys
import threading
import time
import zipfile
import zlib

import numpy as np

from . import _engine, initializers, losses, optimizers
from .callbacks import Callback, CallbackList, History
from .engine import Runner, lower
from .errors import NonFiniteTrainingError
from .layers import (Dense, InputLayer, Layer, SimpleRNN, _check_shape, _last_state,
                     _shape_str, _unique_name)

__all__ = ["Sequential"]


def _readable_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _format_value(v):
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _resolve_verbose(verbose, argument="verbose"):
    if isinstance(verbose, str) and verbose == "auto":
        isatty = getattr(sys.stdout, "isatty", None)
        return 1 if (isatty is not None and isatty()) else 2
    if isinstance(verbose, (bool, int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{argument} must be 0, 1, 2 or 'auto', got {verbose!r}")


def _positive_int(value, argument, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{argument} must be {'>= 0' if allow_zero else '>= 1'}, got {value}")
    return int(value)


def _real_array(value, argument):
    """``value`` as an ndarray of real numbers (float, int or uint)."""
    if value is None:
        raise ValueError(f"{argument} is required (got None)")
    try:
        arr = np.asarray(value)
    except ValueError as e:
        raise ValueError(f"{argument} cannot be made into an array: {e}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{argument} must hold real numbers (float or int), "
                        f"got dtype {arr.dtype}")
    return arr


def _finite_cast(arr, dtype, argument):
    """``arr`` as a contiguous array of ``dtype``; NaN, inf or overflow is a ValueError."""
    with np.errstate(over="ignore"):  # overflow is reported below, as non-finite
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(out)):
        extra = "" if not np.all(np.isfinite(arr)) else f" after casting to {dtype}"
        raise ValueError(f"{argument} contains NaN or infinity{extra}")
    return out


def _progress_bar(total, desc):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", file=sys.stdout, leave=True,
                dynamic_ncols=True, mininterval=0.1)


# What a malformed (truncated, corrupted, hostile) weights file can raise
# from zipfile and numpy's .npy reader; load_weights turns these into ValueError.
_MALFORMED_FILE_ERRORS = (ValueError, zipfile.BadZipFile, zipfile.LargeZipFile,
                          NotImplementedError, EOFError, OSError, KeyError, SyntaxError,
                          UnicodeDecodeError, struct.error, zlib.error, RuntimeError,
                          TypeError, OverflowError)


class WeightFileError(ValueError):
    """A weights file that is malformed or does not fit the model."""


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


class Sequential:
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
        path = self._npz_path(filepath)
        arrays = {name: w for (name, _, _), w in zip(self.param_layout, self._views())}
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @staticmethod
    def _npz_path(filepath):
        import os
        path = os.fspath(filepath)
        if not isinstance(path, str) or not path.endswith(".npz"):
            raise ValueError(f"filepath must end in '.npz', got {filepath!r}")
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
        path = self._npz_path(filepath)
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

    # -- compile ---------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Choose the optimizer and the loss.

        Parameters
        ----------
        optimizer : str or fastrnn.optimizers.Optimizer, default "adam"
            "adam", "adamw", "sgd", "rmsprop", "adagrad" (Keras's defaults) or an instance.
        loss : {"mse", "mae"}, a fastrnn.losses function or a fastrnn.losses.Loss
        metrics : None
            Not supported yet (only the loss is reported); anything else raises.
        """
        if loss is None:
            raise ValueError("compile: loss is required ('mse' or 'mae')")
        if metrics:
            raise ValueError("compile: metrics are not supported yet; the loss is reported "
                             "as 'loss' (and 'val_loss')")
        optimizer = optimizers.get(optimizer)
        loss_fn = losses.get(loss)
        self.optimizer, self._loss_fn, self.loss = optimizer, loss_fn, loss
        if self.built:
            self.optimizer.build(self.params, [off for _, _, off in self.param_layout])

    def _require_compiled(self, what):
        if self._loss_fn is None:
            raise ValueError(f"call compile(optimizer=..., loss=...) before {what}")

    # -- checking inputs (once, at the boundary) ---------------------------------
    def _check_x(self, x, argument="x"):
        """x as a contiguous array of the model's dtype with the input's shape, finite."""
        arr = _real_array(x, argument)
        if arr.ndim == 0:
            raise ValueError(f"{argument} must be an array of samples, got a scalar")
        if arr.shape[0] == 0:
            raise ValueError(f"{argument} is empty: it has 0 samples")
        if self.built:
            want = self._input_shape
            if arr.ndim != len(want):
                raise ValueError(f"{argument} must have rank {len(want)}, shape "
                                 f"{_shape_str(('N',) + want[1:]).replace(chr(39), '')} "
                                 f"(samples, {'time steps, ' if len(want) == 3 else ''}"
                                 f"features); got shape {arr.shape}")
            for axis, (w, g) in enumerate(zip(want[1:], arr.shape[1:]), start=1):
                if w is not None and w != g:
                    what = "features" if axis == len(want) - 1 else "time steps"
                    raise ValueError(f"{argument} has {g} {what} (axis {axis}) but the model "
                                     f"expects {w}: shape {arr.shape}, expected "
                                     f"{_shape_str(('N',) + want[1:]).replace(chr(39), '')}")
        if 0 in arr.shape:
            raise ValueError(f"{argument} is empty: shape {arr.shape}")
        return _finite_cast(arr, self.dtype, argument)

    def _concrete_output_shape(self, x_shape):
        shape = (x_shape[0],) + tuple(x_shape[1:])
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def _check_y(self, y, x, argument="y", x_argument="x"):
        """y as a contiguous array shaped exactly like the model's output for x."""
        if y is None:
            raise ValueError(f"{argument} is required (got None)")
        out_shape = self._concrete_output_shape(x.shape)
        if isinstance(out_shape, list):
            raise ValueError("this model's last layer has return_state=True (two outputs); "
                             "fit and evaluate need a single output")
        arr = _real_array(y, argument)
        if arr.ndim == 0:
            raise ValueError(f"{argument} must be an array of targets, got a scalar")
        if arr.shape[0] != x.shape[0]:
            raise ValueError(f"{x_argument} has {x.shape[0]} samples but {argument} has "
                             f"{arr.shape[0]}; they must match")
        if arr.shape != out_shape:
            if arr.shape + (1,) == out_shape:
                arr = arr.reshape(out_shape)
            else:
                alt = f" or {out_shape[:-1]}" if out_shape[-1] == 1 else ""
                raise ValueError(f"{argument} has shape {arr.shape}, but the model's output "
                                 f"for {x_argument} has shape {out_shape}; expected "
                                 f"{out_shape}{alt}")
        return _finite_cast(arr, self.dtype, argument)

    def _check_batch_size(self, batch_size):
        return 32 if batch_size is None else _positive_int(batch_size, "batch_size")

    # -- the engine ----------------------------------------------------------------
    def _runner(self):
        """The compiled engine runner of the current structure (lowered once per build)."""
        runner = self._engine_runner
        if runner is None or runner.params is not self.params:
            plan, signature = lower(self._layers, self._input_shape, self._layer_offsets)
            runner = Runner(plan, signature, self.params, self.grads)
            self._engine_runner = runner
        return runner

    def _trainer(self):
        """The training engine, configured for the current loss and optimizer."""
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        return self._runner().trainer(self._loss_fn, self.optimizer)

    def _output_arrays(self, x_shape):
        out_shape = self._concrete_output_shape(x_shape)
        first = out_shape[0] if isinstance(out_shape, list) else out_shape
        return out_shape, np.empty(first, dtype=self.dtype)

    #: prediction runs this many samples per compiled forward pass at most
    #: (fewer for long sequences: see _predict_chunk)
    _PREDICT_CHUNK = 32
    #: work-buffer budget of one prediction call, in bytes
    _PREDICT_BUDGET = 64 * 2**20

    def _predict_chunk(self, T, cap=None):
        """Samples per forward pass: ``cap`` (default 32), fewer when long sequences
        would need work buffers beyond ``_PREDICT_BUDGET``.

        For predict it depends on the sequence length alone, so results do not
        depend on ``batch_size`` or on the thread.
        """
        widths = sum(4 * layer.units for layer in self._layers) + self._input_shape[-1] + 1
        per_sample = max(1, T) * widths * self.dtype.itemsize
        cap = self._PREDICT_CHUNK if cap is None else cap
        return int(max(1, min(cap, self._PREDICT_BUDGET // per_sample)))

    def _forward(self, x):
        """The model's output for checked ``x`` (contiguous, the model's dtype)."""
        out_shape, out = self._output_arrays(x.shape)
        T = x.shape[1] if x.ndim == 3 else 1
        engine = self._runner().predictor()
        with self._lock:
            engine.predict(x, out, self._predict_chunk(T))
        if isinstance(out_shape, list):     # return_state: [output, final state]
            return [out, _last_state(out, self._layers[-1].return_sequences)]
        return out

    def _loss_and_gradients(self, x, y):
        """Loss of one batch and its gradient in ``self.grads``, without an update.

        Parameters
        ----------
        x : ndarray of shape (B, ...)
            Contiguous, the model's dtype, already checked.
        y : ndarray, shape of the model's output for x
            Contiguous, the model's dtype, already checked.

        Returns
        -------
        float
        """
        engine = self._trainer()
        with self._lock:
            return engine.gradients(x, y)

    def _raise_bad_step(self, status, loss, batch=None):
        kind = {1: "loss", 2: "gradient", 3: "update"}[status]
        what = {1: f"the loss is {loss}", 2: "the gradient is not finite (inf or NaN)",
                3: "the update would make a weight or the optimizer state inf or NaN "
                   "(is the learning rate too large?)"}[status]
        raise NonFiniteTrainingError(f"training diverged: {what}; the parameters and the "
                                     f"optimizer state were left as before this batch",
                                     batch=batch, kind=kind)

    def _train_batch(self, x, y):
        """One compiled training step on one batch (forward, loss, backward, clip, update).

        ``fit`` calls this once per batch when something needs per-batch
        control (callbacks with batch hooks, the progress bar), with arrays
        it has already checked and cast; otherwise one compiled call trains
        the whole epoch.

        Returns
        -------
        float
            The batch loss, before the update.

        Raises
        ------
        fastrnn.errors.NonFiniteTrainingError
            When the loss, the gradient or the update is not finite; nothing is updated.
        """
        engine = self._trainer()
        opt = self.optimizer
        lr = opt.current_learning_rate()
        with self._lock:
            engine.iterations = opt.iterations
            loss = engine.train_step(x, y, lr)
            opt.iterations = engine.iterations
        if engine.last_status:
            self._raise_bad_step(engine.last_status, loss)
        return loss

    def _train_epoch(self, engine, order, batch_size, lrs, losses):
        """One compiled call over every batch of the bound training set; the mean loss."""
        opt = self.optimizer
        lrs[...] = opt.learning_rates(len(lrs))
        with self._lock:
            engine.iterations = opt.iterations
            mean = engine.run_epoch(order, batch_size, lrs, losses)
            opt.iterations = engine.iterations
        if engine.last_status:
            self._raise_bad_step(engine.last_status, losses[engine.bad_batch], engine.bad_batch)
        return mean

    def _diverged(self, err, epoch, batch, epochs, n_batches):
        """``err`` again, naming the epoch and batch (0-based in the attributes)."""
        return NonFiniteTrainingError(
            f"fit: non-finite {err.kind} at epoch {epoch + 1}/{epochs}, batch {batch + 1}/"
            f"{n_batches}; training stopped and the weights are those of the last good "
            f"step ({err})", epoch=epoch, batch=batch, kind=err.kind)

    def _evaluate_arrays(self, x, y, batch_size, verbose=0):
        T = x.shape[1] if x.ndim == 3 else 1
        engine = self._runner().predictor()
        engine.set_loss(_engine.LOSSES[self._loss_fn._engine_name])
        bar = _progress_bar(-(-x.shape[0] // batch_size), "evaluate") if verbose == 1 else None
        with self._lock:
            loss = engine.evaluate(x, y, self._predict_chunk(T, cap=batch_size))
        if bar is not None:
            bar.update(bar.total)
            bar.set_postfix(loss=_format_value(loss))
            bar.close()
        return loss

    # -- fit / evaluate / predict --------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train with mini-batches, as ``keras.Model.fit``.

        Parameters
        ----------
        x : array_like of shape (N, T, D)
            (or (N, D) for a Dense-only model).  float64/int are cast to the model's dtype.
        y : array_like of shape (N, ...) matching the output
            (N,) is accepted for an output of shape (N, 1).
        batch_size : int, default 32
            The last batch may be smaller; it is a batch.
        epochs : int, default 1
            Index of the last epoch (training runs ``initial_epoch .. epochs-1``).
        verbose : {0, 1, 2, "auto"}, default "auto"
            0 silent; 1 a progress bar per epoch with the running loss; 2 one
            line per epoch; "auto" is 1 in a terminal, else 2.
        callbacks : list of fastrnn.callbacks.Callback, optional
        validation_split : float in [0, 1), default 0
            Fraction of the samples, taken from the end before shuffling, to
            hold out and evaluate on after every epoch (``"val_loss"``).
        validation_data : tuple (x_val, y_val), optional
            Evaluated after every epoch; takes precedence over ``validation_split``.
        shuffle : bool, default True
            Shuffle the training samples before every epoch.
        initial_epoch : int, default 0

        Returns
        -------
        fastrnn.callbacks.History
            ``history.history["loss"]`` (and ``["val_loss"]``): per epoch, the
            sample-weighted mean of the batch losses.
        """
        self._require_compiled("fit")
        batch_size = self._check_batch_size(batch_size)
        epochs = _positive_int(epochs, "epochs", allow_zero=True)
        initial_epoch = _positive_int(initial_epoch, "initial_epoch", allow_zero=True)
        verbose = _resolve_verbose(verbose)
        if not isinstance(validation_split, (int, float, np.floating)) or isinstance(
                validation_split, bool) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
        if not self.built:  # build from the data, as Keras does, once it passed its checks
            x = self._check_x(x)
            if x.ndim < 2:
                raise ValueError(f"x must have a batch axis and at least one more; "
                                 f"got shape {x.shape}")
            self.build((None,) + x.shape[1:])
        x = self._check_x(x)
        y = self._check_y(y, x)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            xv = self._check_x(validation_data[0], "validation_data[0]")
            val = (xv, self._check_y(validation_data[1], xv, "validation_data[1]",
                                     "validation_data[0]"))
        elif validation_split:
            split = int(x.shape[0] * (1.0 - validation_split))
            if split == 0 or split == x.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves "
                                 f"{split} training and {x.shape[0] - split} validation "
                                 f"samples out of {x.shape[0]}; both must be non-empty")
            val = (x[split:], y[split:])
            x, y = x[:split], y[:split]
        if callbacks is not None and isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        n = x.shape[0]
        n_batches = -(-n // batch_size)
        history = History()
        cbs = CallbackList([history] + list(callbacks or []), self,
                           {"epochs": epochs, "steps": n_batches, "verbose": verbose,
                            "batch_size": batch_size, "samples": n})
        self.history = history
        rng = initializers._next_generator()
        wants_batches = cbs.wants_batches
        # One compiled call per epoch when nothing needs per-batch control,
        # else one per batch (callbacks with batch hooks, the progress bar).
        whole_epochs = verbose != 1 and not wants_batches
        engine = self._trainer()
        if whole_epochs:
            engine.bind_data(x, y)
            identity = np.arange(n, dtype=np.int64)
            order = identity.copy()
            batch_losses = np.empty(n_batches, np.float64)
            batch_rates = np.empty(n_batches, np.float64)
        elif shuffle:
            xs, ys = np.empty_like(x), np.empty_like(y)
        else:
            xs, ys = x, y
        self.stop_training = False
        logs = {}
        try:
            cbs.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                started = time.perf_counter()
                bar = None
                if whole_epochs:
                    if shuffle:
                        # rng.permutation(n) without allocating: the same order
                        order[...] = identity
                        rng.shuffle(order)
                    # the current loss and optimizer (a callback may have re-compiled)
                    epoch_engine = self._trainer()
                    if epoch_engine is not engine:
                        engine.unbind_data()
                        engine = epoch_engine
                        engine.bind_data(x, y)
                    try:
                        logs = {"loss": self._train_epoch(engine, order, batch_size,
                                                          batch_rates, batch_losses)}
                    except NonFiniteTrainingError as err:
                        if not cbs.on_nonfinite_loss(err.batch, {"loss": float("nan")}):
                            raise self._diverged(err, epoch, err.batch, epochs,
                                                 n_batches) from None
                        logs = {"loss": float("nan")}      # TerminateOnNaN: stop here
                        self.stop_training = True
                else:
                    if shuffle:
                        perm = rng.permutation(n)
                        np.take(x, perm, axis=0, out=xs)
                        np.take(y, perm, axis=0, out=ys)
                    bar = (_progress_bar(n_batches, f"Epoch {epoch + 1}/{epochs}")
                           if verbose == 1 else None)
                    total = 0.0
                    for b in range(n_batches):
                        start = b * batch_size
                        stop = min(start + batch_size, n)
                        if wants_batches:
                            cbs.on_train_batch_begin(b)
                        try:
                            loss = self._train_batch(xs[start:stop], ys[start:stop])
                        except NonFiniteTrainingError as err:
                            if not cbs.on_nonfinite_loss(b, {"loss": float("nan")}):
                                if bar is not None:
                                    bar.close()
                                raise self._diverged(err, epoch, b, epochs, n_batches) from None
                            total, stop = float("nan"), max(stop, 1)
                            self.stop_training = True      # TerminateOnNaN: stop here
                            break
                        total += loss * (stop - start)
                        if wants_batches:
                            cbs.on_train_batch_end(b, {"loss": total / stop})
                        if bar is not None:
                            bar.set_postfix(loss=_format_value(total / stop), refresh=False)
                            bar.update(1)
                    logs = {"loss": total / n}
                if val is not None and np.isfinite(logs["loss"]):   # not after TerminateOnNaN
                    logs["val_loss"] = self._evaluate_arrays(val[0], val[1], batch_size)
                if bar is not None:
                    bar.set_postfix({k: _format_value(v) for k, v in logs.items()})
                    bar.close()
                elif verbose == 2:
                    elapsed = time.perf_counter() - started
                    print(f"Epoch {epoch + 1}/{epochs} - {elapsed:.2f}s - "
                          + " - ".join(f"{k}: {_format_value(v)}" for k, v in logs.items()))
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            cbs.on_train_end(logs)
        finally:
            if whole_epochs:
                engine.unbind_data()
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto"):
        """The loss on (x, y): the sample-weighted mean over batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D)
        y : array_like, shape of the output (or (N,) for output (N, 1))
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}

        Returns
        -------
        float
        """
        self._require_compiled("evaluate")
        self._require_built("evaluate")
        batch_size = self._check_batch_size(batch_size)
        verbose = _resolve_verbose(verbose)
        x = self._check_x(x)
        y = self._check_y(y, x)
        loss = self._evaluate_arrays(x, y, batch_size, verbose)
        if verbose == 2:
            print(f"loss: {_format_value(loss)}")
        return loss

    def predict(self, x, batch_size=None, verbose="auto"):
        """Outputs for ``x``, computed in batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D)
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}
            1 shows a progress bar.

        Returns
        -------
        ndarray of shape (N, ...) in the model's dtype
            The last layer's output; ``[output, state]`` if it has ``return_state=True``.
        """
        self._require_built("predict")
        batch_size = self._check_batch_size(batch_size)
        verbose = _resolve_verbose(verbose)
        x = self._check_x(x)
        n = x.shape[0]
        if verbose != 1:
            return self._forward(x)
        out_shape = self._concrete_output_shape(x.shape)
        shapes = out_shape if isinstance(out_shape, list) else [out_shape]
        results = [np.empty(s, dtype=self.dtype) for s in shapes]
        bar = _progress_bar(-(-n // batch_size), "predict")
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            out = self._forward(x[start:stop])
            for r, o in zip(results, out if isinstance(out, list) else [out]):
                r[start:stop] = o
            bar.update(1)
        bar.close()
        return results if isinstance(out_shape, list) else results[0]

    def __call__(self, x):
        """The model's output for ``x`` in one batch (a new array)."""
        self._require_built("be called")
        out = self._forward(self._check_x(x))
        return [o.copy() for o in out] if isinstance(out, list) else out.copy()

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self._layers]}>"
