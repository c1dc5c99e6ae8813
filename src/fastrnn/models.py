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
:meth:`Sequential.fit` checks and casts its inputs once, then runs every
batch through one method, :meth:`Sequential._train_batch` (forward, loss,
backward into ``grads``, optimizer step), which returns the batch loss.  That
method is the seam for a fused compiled training step: replace it (per model
or per class) with anything that takes ``(x_batch, y_batch)`` — contiguous,
already in the model's dtype and the output's shape — updates ``params`` and
returns the loss as a float.

The fused path
--------------
For the model the tutorial builds -- one ``SimpleRNN`` and one linear
``Dense`` trained with Adam -- ``fit`` and ``predict`` run on one compiled
:class:`fastrnn.fused.FusedTrainer` over the model's own buffers instead of
the layer-by-layer ops (see :meth:`Sequential._fused_config` for exactly
which models).  The results equal the general path to float rounding.

Non-finite training
-------------------
Both paths check every batch's loss and gradient before the optimizer
touches the weights; the first inf or NaN stops ``fit`` with
:class:`fastrnn.errors.NonFiniteTrainingError` (a ``FloatingPointError``)
naming the epoch and batch, leaving the weights and optimizer state of the
last good step.
"""
import math
import struct
import sys
import threading
import time
import zipfile
import zlib

import numpy as np

from . import initializers, losses, optimizers
from .callbacks import Callback, CallbackList, History
from .errors import NonFiniteTrainingError
from .fused import FusedTrainer
from .layers import (Dense, InputLayer, Layer, SimpleRNN, _check_shape, _shape_str,
                     _unique_name)

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
    use_fused : bool
        True (default): ``fit``/``predict`` of a ``SimpleRNN -> Dense`` model
        run on the compiled fused trainer (see :meth:`_fused_config`); False
        forces the general layer-by-layer path (same results to rounding).
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
        self.use_fused = True
        self._fused = None          # (config, FusedTrainer) cached by _fused_trainer
        self._fit_trainer = None    # the trainer _train_batch uses while fit runs
        self._predictors = {}       # thread id -> (key, FusedTrainer) for predict
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
        layout, offset = [], 0
        for prefix, layer in zip(self._weight_prefixes(), self._layers):
            n = layer.count_params()
            layer._bind(params[offset:offset + n], grads[offset:offset + n])
            layer._reset_work()
            for (wname, wshape), w in zip(layer._specs, layer._weights):
                layout.append((f"{prefix}/{wname}", wshape, offset))
                offset += w.size
        for view, value in zip(self._views(), values):
            view[...] = value
        self.params, self.grads, self.param_layout = params, grads, layout
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
        optimizer : {"adam", "sgd"} or fastrnn.optimizers.Optimizer, default "adam"
        loss : {"mse", "mae"} or fastrnn.losses.Loss
        metrics : None
            Not supported yet (only the loss is reported); anything else raises.
        """
        if loss is None:
            raise ValueError("compile: loss is required ('mse' or 'mae')")
        if metrics:
            raise ValueError("compile: metrics are not supported yet; the loss is reported "
                             "as 'loss' (and 'val_loss')")
        self.optimizer = optimizers.get(optimizer)
        self._loss_fn = losses.get(loss)
        self.loss = loss
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

    # -- computation -------------------------------------------------------------
    def _forward(self, x):
        """Inference pass: touches no layer state, so threads may share a model."""
        for layer in self._layers:
            x = layer.forward(x, training=False)
        return x

    def _loss_and_gradients(self, x, y):
        """Forward, loss and backward for one batch; fills ``self.grads``.

        Parameters
        ----------
        x : ndarray of shape (B, ...)
            Contiguous, the model's dtype, already checked.
        y : ndarray, shape of the model's output for x
            Contiguous, the model's dtype, already checked.

        Returns
        -------
        float
            The batch loss.
        """
        out = x
        for layer in self._layers:
            out = layer.forward(out)
        loss, d = self._loss_fn(y, out)
        for layer in reversed(self._layers):
            d = layer.backward(d)
        return loss

    def _train_batch(self, x, y):
        """One training step on one batch: the seam for a fused compiled step.

        ``fit`` calls this, and only this, once per batch, with arrays it has
        already checked and cast (see :meth:`_loss_and_gradients`), unless the
        model is fused and nothing needs per-batch control (then one compiled
        call trains the whole epoch).  It computes the loss and the gradients
        into ``self.grads`` and applies one ``optimizer.apply(self.params,
        self.grads)`` -- or, while ``fit`` runs a fused model, one compiled
        :meth:`fastrnn.fused.FusedTrainer.step`.  A replacement must update
        ``self.params`` in place (and the optimizer's state) the same way and
        return the batch loss, taken before the update, as a float.

        Returns
        -------
        float

        Raises
        ------
        fastrnn.errors.NonFiniteTrainingError
            When the loss or the gradient is not finite; nothing is updated.
        """
        tr = self._fit_trainer
        if tr is not None:
            core, opt = tr._core, self.optimizer
            core.learning_rate = opt.learning_rate      # a callback may change it
            core.iterations = opt.iterations
            try:
                return core.step(x, y)
            finally:
                opt.iterations = core.iterations
        loss = self._loss_and_gradients(x, y)
        if not math.isfinite(loss):
            raise NonFiniteTrainingError(f"training diverged: the loss is {loss}; the "
                                         f"parameters were left as before this batch",
                                         kind="loss")
        if not np.isfinite(self.grads).all():
            raise NonFiniteTrainingError("training diverged: the gradient is not finite "
                                         "(inf or NaN); the parameters were left as before "
                                         "this batch", kind="gradient")
        self.optimizer.apply(self.params, self.grads)
        return loss

    # -- the fused path ------------------------------------------------------------
    def _fused_config(self, training):
        """The :class:`fastrnn.fused.FusedTrainer` arguments, or None if not fused.

        Fused (one compiled call per batch or per epoch) are exactly the
        models ``SimpleRNN -> Dense``: one :class:`fastrnn.layers.SimpleRNN`
        (tanh or relu, ``go_backwards=False``, ``return_state=False``, with or
        without ``return_sequences``/bias) followed by one
        :class:`fastrnn.layers.Dense` with linear activation, and -- for
        training -- loss mse or mae and optimizer :class:`fastrnn.optimizers.Adam`
        with ``amsgrad=False`` (any clipping).  Everything else (SGD, AMSGrad,
        stacked or other layers, other activations, subclasses of these
        classes, a replaced ``_train_batch``) runs on the general ops path.

        Parameters
        ----------
        training : bool
            Also require a fusable optimizer and loss (``fit``); False checks
            the layers only (``predict``).

        Returns
        -------
        dict or None
        """
        if (not self.use_fused or not self.built or len(self._layers) != 2
                or len(self._input_shape) != 3):
            return None
        rnn, dense = self._layers
        if type(rnn) is not SimpleRNN or type(dense) is not Dense:
            return None
        if (rnn.activation not in ("tanh", "relu") or rnn.go_backwards or rnn.return_state
                or dense.activation != "linear"):
            return None
        cfg = dict(input_dim=int(self._input_shape[-1]), units=rnn.units,
                   output_units=dense.units, activation=rnn.activation,
                   use_bias=rnn.use_bias, dense_use_bias=dense.use_bias,
                   return_sequences=rnn.return_sequences)
        if not training:
            return cfg
        opt = self.optimizer
        if type(opt) is not optimizers.Adam or opt.amsgrad:
            return None
        if type(self._loss_fn) is losses.MeanSquaredError:
            loss = "mse"
        elif type(self._loss_fn) is losses.MeanAbsoluteError:
            loss = "mae"
        else:
            return None
        if "_train_batch" in self.__dict__ or type(self)._train_batch is not Sequential._train_batch:
            return None
        cfg.update(loss=loss, beta_1=opt.beta_1, beta_2=opt.beta_2, epsilon=opt.epsilon,
                   clipnorm=opt.clipnorm, clipvalue=opt.clipvalue,
                   global_clipnorm=opt.global_clipnorm)
        return cfg

    def _fused_trainer(self, batch_size=32, timesteps=1):
        """The cached training FusedTrainer over ``params``, ``grads`` and the
        optimizer's ``m``/``v`` (new if anything changed), or None if not fused."""
        cfg = self._fused_config(True)
        opt = self.optimizer
        if cfg is None or not (isinstance(getattr(opt, "m", None), np.ndarray)
                               and opt.m.shape == self.params.shape):
            return None
        if self._fused is not None:
            key, tr = self._fused
            if (key == cfg and tr.params is self.params and tr.grads is self.grads
                    and tr.m is opt.m and tr.v is opt.v):
                return tr
        tr = FusedTrainer(self.params, self.grads, opt.m, opt.v, batch_size=batch_size,
                          timesteps=timesteps, learning_rate=opt.learning_rate,
                          iterations=opt.iterations, **cfg)
        self._fused = (cfg, tr)
        return tr

    #: samples per compiled forward pass in a fused predict (fixed, so results do
    #: not depend on batch_size or on which thread predicts)
    _PREDICT_CHUNK = 32

    def _predictor(self):
        """This thread's predict-only FusedTrainer over ``params``, or None if not fused.

        One per thread (a trainer's work buffers serve one call at a time), all
        chunking the samples alike, so concurrent predictions are bitwise the
        serial ones.  They leave BLAS threads alone (a process-wide setting) and
        their Adam moment buffers are untouched zero pages.
        """
        structure = self._fused_config(False)
        if structure is None:
            return None
        tid = threading.get_ident()
        cached = self._predictors.get(tid)
        if cached is not None and cached[0] == structure and cached[1].params is self.params:
            return cached[1]
        tr = FusedTrainer(self.params, self.grads, np.zeros_like(self.params),
                          np.zeros_like(self.params), batch_size=self._PREDICT_CHUNK,
                          timesteps=1, blas_threads=None, **structure)
        if len(self._predictors) >= 64:     # threads come and go: forget old ones
            self._predictors = {}
        self._predictors[tid] = (structure, tr)
        return tr

    def _diverged(self, err, epoch, batch, epochs, n_batches):
        """``err`` again, naming the epoch and batch (0-based in the attributes)."""
        what = "loss" if err.kind == "loss" else "gradient"
        return NonFiniteTrainingError(
            f"fit: non-finite {what} at epoch {epoch + 1}/{epochs}, batch {batch + 1}/"
            f"{n_batches}; training stopped and the weights are those of the last good "
            f"step ({err})", epoch=epoch, batch=batch, kind=err.kind)

    def _evaluate_arrays(self, x, y, batch_size, verbose=0):
        n = x.shape[0]
        total = 0.0
        bar = _progress_bar(-(-n // batch_size), "evaluate") if verbose == 1 else None
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            value, _ = self._loss_fn(y[start:stop], self._forward(x[start:stop]))
            total += value * (stop - start)
            if bar is not None:
                bar.update(1)
        loss = total / n
        if bar is not None:
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
        # The fused path (see _fused_config): one compiled run_epoch per epoch when
        # nothing needs per-batch control, else a compiled step per batch.
        trainer = self._fused_trainer(min(batch_size, n), x.shape[1])
        whole_epochs = trainer is not None and verbose != 1 and not wants_batches
        if whole_epochs:
            trainer.bind_data(x, y)
            identity = np.arange(n, dtype=np.int64)
            order = identity.copy()
            batch_losses = np.empty(n_batches, np.float64)
            core = trainer._core
        elif shuffle:
            xs, ys = np.empty_like(x), np.empty_like(y)
        else:
            xs, ys = x, y
        train_batch = self._train_batch
        self._fit_trainer = trainer
        self.stop_training = False
        try:
            cbs.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                started = time.perf_counter()
                if whole_epochs:
                    if shuffle:
                        # rng.permutation(n) without allocating: the same order
                        order[...] = identity
                        rng.shuffle(order)
                    core.learning_rate = self.optimizer.learning_rate
                    core.iterations = self.optimizer.iterations
                    try:
                        mean = core.run_epoch(order, batch_size, batch_losses)
                    except NonFiniteTrainingError as err:
                        raise self._diverged(err, epoch, err.batch, epochs, n_batches) from None
                    finally:
                        self.optimizer.iterations = core.iterations
                    logs = {"loss": mean}
                    bar = None
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
                            loss = train_batch(xs[start:stop], ys[start:stop])
                        except NonFiniteTrainingError as err:
                            if bar is not None:
                                bar.close()
                            raise self._diverged(err, epoch, b, epochs, n_batches) from None
                        total += loss * (stop - start)
                        if wants_batches:
                            cbs.on_train_batch_end(b, {"loss": total / stop})
                        if bar is not None:
                            bar.set_postfix(loss=_format_value(total / stop), refresh=False)
                            bar.update(1)
                    logs = {"loss": total / n}
                if val is not None:
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
            cbs.on_train_end()
        finally:
            self._fit_trainer = None
            if whole_epochs:
                trainer.unbind_data()
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
            trainer = self._predictor()
            if trainer is not None:     # SimpleRNN -> linear Dense: one compiled call
                return trainer.predict(x)
        out_shape = self._concrete_output_shape(x.shape)
        shapes = out_shape if isinstance(out_shape, list) else [out_shape]
        results = [np.empty(s, dtype=self.dtype) for s in shapes]
        bar = _progress_bar(-(-n // batch_size), "predict") if verbose == 1 else None
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            out = self._forward(x[start:stop])
            for r, o in zip(results, out if isinstance(out, list) else [out]):
                r[start:stop] = o
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return results if isinstance(out_shape, list) else results[0]

    def __call__(self, x):
        """The model's output for ``x`` in one batch (a new array)."""
        self._require_built("be called")
        out = self._forward(self._check_x(x))
        return [o.copy() for o in out] if isinstance(out, list) else out.copy()

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self._layers]}>"
