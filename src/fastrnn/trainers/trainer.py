"""The training loop of every model: compile, fit, evaluate, predict (as Keras's Trainer).

A model class mixes :class:`Trainer` in; the trainer checks and casts the
data once, at the boundary, and runs it on the model's compiled engine
(:mod:`fastrnn.engine`): one compiled call per epoch (forward, loss and
metrics, backward, clipping and the optimizer step for every batch, no
allocation per step) -- or one compiled call per batch
(:meth:`Trainer._train_batch`) when something needs Python between batches:
a callback's batch hooks, the progress bar, a metric computed in NumPy, or
batches that come from a generator or dataset.

Data
----
Arrays, lists, generators and iterables of batches, ``PyDataset`` and
``tf.data.Dataset`` all go through :mod:`fastrnn.trainers.data_adapters`;
every batch is checked (shapes, dtype, finiteness, labels, weights) before
it reaches the engine, and an error names the batch.

Losses, weights and metrics
---------------------------
The loss (:mod:`fastrnn.losses`) and the metrics (:mod:`fastrnn.metrics`)
are computed by the engine with Keras's reduction: per-sample (or, for a
per-step output, per-step) weights from ``sample_weight`` or
``class_weight``; the loss is ``sum(w * loss) / count``; metrics are
running means over the epoch (``metrics=`` unweighted, ``weighted_metrics=``
weighted), read after each compiled call.

Non-finite training
-------------------
The engine checks every batch's loss and gradient before the optimizer
runs, and the updated weights after it; the first inf or NaN stops ``fit``
with :class:`fastrnn.errors.NonFiniteTrainingError` (a
``FloatingPointError``) naming the epoch and batch, leaving the weights and
optimizer state of the last good step (:class:`fastrnn.callbacks.TerminateOnNaN`
makes it a graceful stop).  A ``KeyboardInterrupt`` or a callback's
exception likewise leaves the weights of the last completed step.

Threads
-------
One lock per model: a compiled call (a training batch or epoch, a
prediction chunk) runs with it held, so ``predict`` while another thread
runs ``fit`` sees the weights of some completed step (or epoch), never a
half-written update.  Prediction engines are per thread, so threads predict
with one model in parallel when nothing trains it.

Several inputs and outputs
--------------------------
Data is checked into one array per model input and one target (and row
weights) per output -- lists in the model's order -- and the engine takes
the lists as they are.  Each output has its loss; the training loss is
their weighted sum (``loss_weights``), and the logs hold each output's loss
as ``<output name>_loss`` too, as Keras's.  (Metrics and class weights are
for models with one output so far.)

What a model provides: ``params``, ``grads``, ``param_layout``, ``_lock``,
``built``, ``dtype``, ``build``, ``_require_built``, ``_lower`` (its engine
plan), ``_split_inputs``/``_split_outputs`` (data structures to lists),
``_input_spec``, ``output_names``, ``_concrete_output_shapes`` and
``_structure_outputs``.
"""
import sys
import time
import warnings

import numpy as np

from .. import _engine, initializers, optimizers
from .. import metrics as metrics_module
from ..callbacks import Callback, CallbackList, History
from ..engine import Runner
from ..errors import NonFiniteTrainingError
from ..layers import _shape_str
from . import data_adapters
from .batch_methods import BatchMethods
from .compile_utils import CompileState

__all__ = ["Trainer"]


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


def _real_array(value, argument, allow_bool=False):
    """``value`` as an ndarray of real numbers (float, int or uint; bool if allowed)."""
    if value is None:
        raise ValueError(f"{argument} is required (got None)")
    try:
        arr = np.asarray(value)
    except ValueError as e:
        raise ValueError(f"{argument} cannot be made into an array: {e}") from None
    if arr.dtype.kind not in ("fiub" if allow_bool else "fiu"):
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


class Trainer(BatchMethods):
    """compile / fit / evaluate / predict on the compiled engine (mixed into models)."""

    # -- compile ---------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Choose the optimizer, the loss and the metrics (``keras.Model.compile``).

        Parameters
        ----------
        optimizer : str or fastrnn.optimizers.Optimizer, default "rmsprop"
            "adam", "adamw", "sgd", "rmsprop", "adagrad" (Keras's defaults) or an instance.
        loss : str, fastrnn.losses.Loss (instance or class) or fastrnn.losses function
            See :mod:`fastrnn.losses`; ``"crossentropy"``/``"ce"`` pick binary,
            sparse or categorical cross-entropy from the shapes, as Keras does.
            For a model with several outputs: one loss for every output, a
            list (one per output) or a dict keyed by output name.
        loss_weights : list or dict of float, optional
            The weight of each loss in the total (one per loss given; a single
            loss takes one weight, used for every output), as Keras.
        metrics : list, optional
            Names, :mod:`fastrnn.metrics` objects or functions, or any callable
            ``f(y_true, y_pred)`` (run in NumPy per batch: slower).  Updated
            without sample weights, as in Keras.  (Models with one output.)
        weighted_metrics : list, optional
            Likewise, updated with ``sample_weight``/``class_weight``.
        run_eagerly, steps_per_execution, jit_compile, auto_scale_loss
            Accepted for Keras compatibility; they change nothing (fastrnn
            always runs its compiled engine).
        """
        if isinstance(steps_per_execution, bool) or not isinstance(
                steps_per_execution, (int, np.integer)) or steps_per_execution < 1:
            raise ValueError(f"compile: steps_per_execution must be an int >= 1, got "
                             f"{steps_per_execution!r}")
        if isinstance(loss, (list, tuple, dict)):
            items = list(loss.values()) if isinstance(loss, dict) else list(loss)
            if not items:
                raise ValueError("compile: loss is an empty list")
            for item in items:          # every identifier checked now, as early as possible
                CompileState(item)
            first = items[0]
        else:
            first = loss
        if loss_weights is not None:
            values = (list(loss_weights.values()) if isinstance(loss_weights, dict)
                      else list(loss_weights) if isinstance(loss_weights, (list, tuple))
                      else None)
            if values is None or not all(
                    isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool)
                    and np.isfinite(w) and w >= 0 for w in values):
                raise ValueError(f"compile: loss_weights must be a list or dict of finite "
                                 f"numbers >= 0, got {loss_weights!r}")
        state = CompileState(first, metrics, weighted_metrics)
        optimizer = optimizers.get(optimizer)
        self.optimizer, self.loss, self._compile_state = optimizer, loss, state
        self.loss_weights = loss_weights
        self._compile_args = (loss, loss_weights, metrics, weighted_metrics)
        self._output_states_cache = None
        self._loss_fn = state.loss
        self.metrics = []
        if self.built:
            self.optimizer.build(self.params, [off for _, _, off in self.param_layout])

    def _require_compiled(self, what):
        if getattr(self, "_compile_state", None) is None:
            raise ValueError(f"call compile(optimizer=..., loss=...) before {what}")

    def _output_states(self):
        """(CompileState per output, loss weight per output), from compile's arguments.

        One output: the compile state itself.  Several: a loss per output (one
        for all, a list, or a dict keyed by output name), no metrics yet.
        """
        names = list(self.output_names)
        cached = self._output_states_cache
        if cached is not None and cached[0] is self._compile_state and cached[1] == names:
            return cached[2], cached[3]
        loss, weights, metrics, weighted = self._compile_args
        n = len(names)
        if isinstance(loss, dict):
            missing = [name for name in names if name not in loss]
            unknown = [key for key in loss if key not in names]
            if missing or unknown:
                raise ValueError(f"compile: the loss dict must have one loss per output "
                                 f"{names}; missing {missing}, unknown {unknown}")
            ids = [loss[name] for name in names]
        elif isinstance(loss, (list, tuple)):
            if len(loss) != n:
                raise ValueError(f"compile: the model has {n} outputs {names}, but loss is a "
                                 f"list of {len(loss)}")
            ids = list(loss)
        else:
            ids = [loss] * n
        n_losses = n if isinstance(loss, (list, tuple, dict)) else 1
        if weights is None:
            ws = [1.0] * n
        elif isinstance(weights, dict):
            missing = [name for name in names if name not in weights]
            if missing or len(weights) != n:
                raise ValueError(f"compile: loss_weights must have one weight per output "
                                 f"{names}; got keys {sorted(weights)}")
            ws = [float(weights[name]) for name in names]
        else:
            if len(weights) != n_losses:
                raise ValueError(f"compile: loss_weights must match the number of losses, "
                                 f"got {n_losses} losses and {len(weights)} weights")
            ws = [float(w) for w in weights] if n_losses == n else [float(weights[0])] * n
        if n == 1:
            states = [self._compile_state]
        else:
            if metrics or weighted:
                raise NotImplementedError("compile: metrics on a model with several outputs "
                                          "are not supported yet; the loss of each output is "
                                          "logged as <output name>_loss")
            states = [CompileState(item) for item in ids]
        self._output_states_cache = (self._compile_state, names, states, ws)
        return states, ws

    def _build_compile(self, y_shapes, x_shapes):
        """Resolve each output's loss (and the metrics) for targets of ``y_shapes``
        (as the user gave them) against the outputs for inputs of ``x_shapes``."""
        states, _ = self._output_states()
        if all(state.built for state in states):
            return
        out_shapes = self._concrete_output_shapes(x_shapes)
        for state, y_shape, out_shape in zip(states, y_shapes, out_shapes):
            if len(y_shape) == 0:
                raise ValueError("y must be an array of targets, got a scalar")
            state.build(tuple(y_shape), tuple(out_shape))
        self._data_shapes = ([tuple(s) for s in y_shapes], [tuple(s) for s in x_shapes])
        self._loss_fn = states[0].loss
        tracker = metrics_module.Mean(name="loss")
        self.metrics = [tracker] + [e.metric for e in states[0].entries]

    def _compile_built(self):
        return all(state.built for state in self._output_states()[0])

    @property
    def metrics_names(self):
        """``["loss", *metric names]`` (the order of ``evaluate``'s list)."""
        state = getattr(self, "_compile_state", None)
        if state is None:
            return []
        names = list(self.output_names) if self.built else []
        if len(names) > 1:
            return ["loss"] + [f"{name}_loss" for name in names]
        return ["loss"] + (state.names if state.built else [])

    # -- checking inputs (once, at the boundary) ---------------------------------
    def _check_x(self, x, argument="x"):
        """One checked array per model input (a list): contiguous, the model's dtype,
        finite, of the input's shape (indices for an Embedding as (N, L, 1))."""
        if not self.built:
            return [self._check_input_array(x, argument, None, None)]
        items = self._split_inputs(x, argument)
        xs = [self._check_input_array(value, name, *self._input_spec(k))
              for k, (value, name) in enumerate(items)]
        for (_, name), arr in zip(items[1:], xs[1:]):
            if arr.shape[0] != xs[0].shape[0]:
                raise ValueError(f"{items[0][1]} has {xs[0].shape[0]} samples but {name} has "
                                 f"{arr.shape[0]}; they must match")
        return xs

    def _check_input_array(self, x, argument, want, embedding):
        """One input: ``want`` its shape with the batch axis (None: not built yet),
        ``embedding`` the Embedding reading it as indices (or None)."""
        arr = _real_array(x, argument, allow_bool=True)
        if arr.ndim == 0:
            raise ValueError(f"{argument} must be an array of samples, got a scalar")
        if arr.shape[0] == 0:
            raise ValueError(f"{argument} is empty: it has 0 samples")
        if want is not None:
            # Keras's rank adjustment: (N, T) for inputs of shape (T, 1), and back
            if arr.ndim == len(want) - 1 and want[-1] == 1:
                arr = arr[..., None]
            elif arr.ndim == len(want) + 1 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim != len(want):
                raise ValueError(f"{argument} must have rank {len(want)}, shape "
                                 f"{_shape_str(('N',) + want[1:]).replace(chr(39), '')} "
                                 f"(samples, {'time steps, ' if len(want) == 3 else ''}"
                                 f"features); got shape {arr.shape}")
            for axis, (w, g) in enumerate(zip(want[1:], arr.shape[1:]), start=1):
                if w is not None and w != g:
                    what = ("steps" if embedding is not None else
                            "features" if axis == len(want) - 1 else "time steps")
                    raise ValueError(f"{argument} has {g} {what} (axis {axis}) but the model "
                                     f"expects {w}: shape {arr.shape}, expected "
                                     f"{_shape_str(('N',) + want[1:]).replace(chr(39), '')}")
        if 0 in arr.shape:
            raise ValueError(f"{argument} is empty: shape {arr.shape}")
        if embedding is not None:
            # Keras casts indices to int32 (toward zero): they must be rows of the table
            with np.errstate(invalid="ignore"):
                bad = ~((arr > -1) & (arr < embedding.input_dim))
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{argument} holds {float(arr[where])!r} at {where}, which is "
                                 f"not an index of Embedding {embedding.name!r} with input_dim="
                                 f"{embedding.input_dim}: indices must be in "
                                 f"[0, {embedding.input_dim})")
            return np.ascontiguousarray(arr, dtype=self.dtype)[..., None]
        return _finite_cast(arr, self.dtype, argument)

    def _sparse_targets(self, output=0):
        states = self._output_states()[0] if self.built else [self._compile_state]
        loss = states[output].loss if getattr(self, "_compile_state", None) else None
        return loss is not None and loss._sparse

    def _check_y(self, y, x, argument="y", x_argument="x"):
        """One target per model output (a list), as the engine takes it: shaped like
        that output for x, or one integer label per sample/step for a sparse loss."""
        if y is None:
            raise ValueError(f"{argument} is required (got None)")
        if not isinstance(x, list):     # one unchecked input array
            x = [np.asarray(x)]
        out_shapes = self._concrete_output_shapes([a.shape for a in x])
        return [self._check_target_array(value, name, shape, x[0].shape[0], x_argument, k)
                for k, ((value, name), shape) in
                enumerate(zip(self._split_outputs(y, argument), out_shapes))]

    def _check_target_array(self, y, argument, out_shape, n, x_argument, output=0):
        arr = _real_array(y, argument, allow_bool=True)
        if arr.ndim == 0:
            raise ValueError(f"{argument} must be an array of targets, got a scalar")
        if arr.shape[0] != n:
            raise ValueError(f"{x_argument} has {n} samples but {argument} has "
                             f"{arr.shape[0]}; they must match")
        if getattr(self, "_compile_state", None) is not None and self._sparse_targets(output):
            return self._check_labels(arr, out_shape, argument, x_argument, output)
        if arr.shape != out_shape:
            if arr.shape + (1,) == out_shape:
                arr = arr.reshape(out_shape)
            else:
                alt = f" or {out_shape[:-1]}" if out_shape[-1] == 1 else ""
                raise ValueError(f"{argument} has shape {arr.shape}, but the model's output "
                                 f"for {x_argument} has shape {out_shape}; expected "
                                 f"{out_shape}{alt}")
        return _finite_cast(arr, self.dtype, argument)

    def _check_labels(self, arr, out_shape, argument, x_argument, output=0):
        """Integer class labels for sparse cross-entropy, shape ``out_shape[:-1] + (1,)``."""
        want = out_shape[:-1] + (1,)
        loss = self._output_states()[0][output].loss
        if arr.shape == out_shape[:-1]:
            arr = arr.reshape(want)
        elif arr.shape != want:
            raise ValueError(f"{argument} has shape {arr.shape}, but {loss.name} takes one "
                             f"integer label per {'step' if len(out_shape) == 3 else 'sample'}: "
                             f"shape {out_shape[:-1]} or {want} for the output shape "
                             f"{out_shape} of {x_argument}")
        arr = _finite_cast(arr, np.float64, argument)
        classes = out_shape[-1]
        ignore = getattr(loss, "ignore_class", None)
        bad = (arr != np.floor(arr)) | (arr < 0) | (arr >= classes)
        if ignore is not None:
            bad &= arr != ignore
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0][:-1])
            raise ValueError(f"{argument} holds labels {loss.name} cannot use: "
                             f"{argument}[{', '.join(map(str, where))}] = {arr[bad][0]:g}; "
                             f"labels must be whole numbers in [0, {classes}) (the output "
                             f"has {classes} units)"
                             + (f" or ignore_class={ignore}" if ignore is not None else ""))
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def _check_weights(self, sample_weight, class_weight, y, x, argument="sample_weight"):
        """Row weights for the engine, one per output (a list): (N,) or, for a per-step
        output, (N, T); or None.  ``y`` is the checked targets (for ``class_weight``).

        With several outputs ``sample_weight`` is one array for every output, a
        list (one per output, None for none) or a dict keyed by output name.
        """
        if sample_weight is not None and class_weight is not None:
            raise ValueError("You cannot pass class_weight and sample_weight at the same time")
        out_shapes = self._concrete_output_shapes([a.shape for a in x])
        n = x[0].shape[0]
        if class_weight is not None:
            if len(out_shapes) > 1:
                raise NotImplementedError("class_weight on a model with several outputs is "
                                          "not supported yet; pass sample_weight")
            return [self._class_weights(class_weight, y[0], len(out_shapes[0]) == 3)]
        if sample_weight is None:
            return None
        names = list(self.output_names)
        if len(names) > 1 and isinstance(sample_weight, dict):
            unknown = [key for key in sample_weight if key not in names]
            if unknown:
                raise ValueError(f"{argument} has keys {unknown} that are not outputs "
                                 f"({names})")
            items = [(sample_weight.get(name), f"{argument}[{name!r}]") for name in names]
        elif (len(names) > 1 and isinstance(sample_weight, (list, tuple))
              and len(sample_weight) == len(names)
              and all(w is None or np.ndim(w) >= 1 for w in sample_weight)):
            items = [(w, f"{argument}[{k}]") for k, w in enumerate(sample_weight)]
        else:
            items = [(sample_weight, argument)] * len(names)
        return [None if w is None else self._check_weight_array(w, name, shape, n)
                for (w, name), shape in zip(items, out_shapes)]

    def _check_weight_array(self, sample_weight, argument, out_shape, n):
        w = _real_array(sample_weight, argument)
        per_step = len(out_shape) == 3
        if per_step:
            T = out_shape[1]
            if w.ndim == 3 and w.shape[2] == 1:
                w = w[..., 0]
            if w.shape == (n, T):
                pass
            elif w.shape == (n, 1):
                w = np.broadcast_to(w, (n, T))
            else:
                raise ValueError(f"{argument} has shape {w.shape}; for the per-step output "
                                 f"{out_shape} it must be ({n}, {T}) (a weight per step: "
                                 f"temporal weights) or ({n}, 1) (one per sample; (N,) is an "
                                 f"error in Keras 3 too)")
        else:
            if w.shape == (n, 1):
                w = w[:, 0]
            if w.shape != (n,):
                raise ValueError(f"{argument} has shape {w.shape}; it must be ({n},) or "
                                 f"({n}, 1): one weight per sample")
        w = _finite_cast(w, self.dtype, argument)
        if (w < 0).any():
            raise ValueError(f"{argument} must not be negative (found {w[w < 0][0]:g})")
        return w

    def _class_weights(self, class_weight, y, per_step):
        """Keras's class_weight -> sample_weight: a weight per sample from its class."""
        if not isinstance(class_weight, dict):
            raise ValueError(f"class_weight must be a dict mapping class indices to weights, "
                             f"got {type(class_weight).__name__}")
        if per_step:
            raise ValueError("class_weight is not supported for per-step (3-D) targets; pass "
                             "sample_weight of shape (N, T) instead")
        table = {}
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer, str)):
                raise ValueError(f"class_weight keys must be class indices (ints), got {key!r}")
            try:
                index = int(key)
            except ValueError:
                raise ValueError(f"class_weight keys must be class indices (ints), "
                                 f"got {key!r}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise ValueError(f"class_weight[{key!r}] must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"class_weight[{key!r}] = {value} is negative; class weights "
                                 f"must be >= 0")
            table[index] = float(value)
        classes = np.argmax(y, axis=-1) if y.shape[-1] > 1 else np.round(y[:, 0])
        classes = classes.astype(np.int64)
        w = np.array([table.get(int(c), 1.0) for c in classes], dtype=self.dtype)
        return w

    def _check_batch_size(self, batch_size):
        return 32 if batch_size is None else _positive_int(batch_size, "batch_size")

    def _fixed_batch_size(self):
        """The batch size a model with stateful layers takes (None: any)."""
        return self._runner().plan.state_batch_size if self.built else None

    def _stateful_batch_size(self, given, batch_size, n, what="x"):
        """``batch_size`` -- or, for a model with stateful layers, its fixed batch
        size, once ``given`` (the caller's batch_size, or None) agrees and ``n``
        samples make whole batches of it (every sample keeps its state row)."""
        fixed = self._fixed_batch_size()
        if fixed is None:
            return batch_size
        if given is not None and _positive_int(given, "batch_size") != fixed:
            raise ValueError(f"batch_size={given}, but the model has stateful layers built "
                             f"for batches of exactly {fixed} samples: pass batch_size={fixed}")
        if n % fixed:
            raise ValueError(f"batch_size: the model has stateful layers built for batches of "
                             f"exactly {fixed} samples, and {what} has {n} samples, not a "
                             f"multiple of {fixed} (its last batch would have {n % fixed})")
        return fixed

    def _prepare(self, x, y, sample_weight, class_weight, names=("x", "y", "sample_weight")):
        """Checked, cast (x, y, w) lists for the engine; builds the model and resolves the
        losses and metrics from the first data they see, as Keras does."""
        xa = self._check_x(x, names[0]) if self.built else None
        if not self.built:  # build from the data, as Keras does, once it passed its checks
            first = self._check_x(x, names[0])[0]
            if first.ndim < 2:
                raise ValueError(f"{names[0]} must have a batch axis and at least one more; "
                                 f"got shape {first.shape}")
            self.build((None,) + first.shape[1:])
            xa = self._check_x(x, names[0])
        if y is None:
            raise ValueError(f"{names[1]} is required (got None)")
        if not self._compile_built():
            self._build_compile([np.shape(v) for v, _ in self._split_outputs(y, names[1])],
                                [a.shape for a in xa])
        ya = self._check_y(y, xa, names[1], names[0])
        wa = self._check_weights(sample_weight, class_weight, ya, xa, names[2])
        return xa, ya, wa

    def _prepare_batch(self, batch, step, source, class_weight=None, need_y=True):
        x, y, w = data_adapters.unpack_batch(batch, f"{source}, batch {step}")
        if need_y and y is None:
            raise ValueError(f"{source}, batch {step}: a training or evaluation batch must be "
                             f"(x, y) or (x, y, sample_weight); got x alone")
        where = f"{source}, batch {step}"
        return self._prepare(x, y, w, class_weight,
                             (f"{where}: x", f"{where}: y", f"{where}: sample_weight"))

    # -- the engine ----------------------------------------------------------------
    def _runner(self):
        """The compiled engine runner of the current structure (lowered once per build)."""
        runner = self._engine_runner
        if runner is None or runner.params is not self.params:
            runner = Runner(self._lower(), self.params, self.grads)
            self._engine_runner = runner
        return runner

    def _trainer(self):
        """The training engine, configured for the current loss, metrics and optimizer."""
        if self._loss_fn is None:
            raise ValueError("the loss is not resolved yet: fit or evaluate with data first")
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        return self._configured_trainer(self._runner(), self.optimizer)

    def _configured_trainer(self, runner, optimizer):
        """``runner``'s training engine, set up for this model's losses, metrics,
        frozen weights and regularizers and for ``optimizer`` (built)."""
        losses, weights = self._resolved_losses()
        engine = runner.trainer(losses, optimizer, weights)
        self._configure_metrics(engine, runner)
        self._configure_frozen(engine, runner)
        self._configure_regularizers(engine, runner)
        return engine

    def _resolved_losses(self):
        """(each output's resolved loss, weights) -- the same objects while unchanged."""
        states, weights = self._output_states()
        key = getattr(self, "_resolved_key", None)
        if key is None or key[0] is not states or any(
                a is not b.loss for a, b in zip(key[1], states)) or key[2] != weights:
            self._resolved_key = (states, [state.loss for state in states], weights,
                                  (states[0].loss if len(states) == 1
                                   else [state.loss for state in states]),
                                  None if weights == [1.0] * len(weights) else list(weights))
        return self._resolved_key[3], self._resolved_key[4]

    def _configure_metrics(self, engine, runner=None):
        """The compiled metrics on ``engine`` of ``runner`` (default: the model's own)
        (their totals reset when they change)."""
        state = self._compile_state
        width = engine.target_width
        # remembered on the runner, which owns the training engine (and is not pickled)
        runner = self._engine_runner if runner is None else runner
        old = getattr(runner, "_metrics_key", None)
        if old is None or old[0] is not engine or old[1] is not state or old[2] != width:
            engine.set_metrics(state.engine_specs if state is not None and state.built else [])
            runner._metrics_key = (engine, state, width)

    def _prediction_engine(self, with_loss=False):
        """This thread's prediction engine; with the losses and metrics set for evaluation."""
        engine = self._runner().predictor()
        if with_loss:
            states, weights = self._output_states()
            engine.set_loss_weights(weights)
            for k, state in enumerate(states):
                engine.set_loss(**state.loss._engine_config(), output=k)
            engine.set_metrics(self._compile_state.engine_specs if len(states) == 1 else [])
        return engine

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
        plan = self._runner().plan
        if plan.states:         # stateful layers: their batch size, always
            return plan.state_batch_size
        per_sample = plan.floats_per_sample(T) * self.dtype.itemsize
        cap = self._PREDICT_CHUNK if cap is None else cap
        return int(max(1, min(cap, self._PREDICT_BUDGET // per_sample)))

    def _forward(self, x, training=False):
        """The model's outputs (a list) for checked ``x`` (a list, as _check_x gives)."""
        outs = [np.empty(s, dtype=self.dtype)
                for s in self._concrete_output_shapes([a.shape for a in x])]
        T = max(a.shape[1] if a.ndim == 3 else 1 for a in x)
        engine = self._runner().predictor()
        with self._lock:
            engine.predict(x, outs, self._predict_chunk(T), training)
        return outs

    def _loss_and_gradients(self, x, y, sample_weight=None):
        """Loss of one batch and its gradient in ``self.grads``, without an update.

        Parameters
        ----------
        x : list of ndarray of shape (B, ...)
            One per input, as :meth:`_check_x` gives them.
        y : list of ndarray
            One per output, what the engine takes (:meth:`_check_y`).
        sample_weight : list of ndarray of shape (B,) or (B, T), optional

        Returns
        -------
        float
        """
        self._require_compiled("computing a loss")
        x, y = _as_lists(x, y)
        if not self._compile_built():
            self._build_compile([a.shape for a in y], [a.shape for a in x])
        engine = self._trainer()
        with self._lock:
            return engine.gradients(x, y, sample_weight)

    def _raise_bad_step(self, status, loss, batch=None):
        kind = {1: "loss", 2: "gradient", 3: "update"}[status]
        what = {1: f"the loss is {loss}", 2: "the gradient is not finite (inf or NaN)",
                3: "the update would make a weight or the optimizer state inf or NaN "
                   "(is the learning rate too large?)"}[status]
        raise NonFiniteTrainingError(f"training diverged: {what}; the parameters and the "
                                     f"optimizer state were left as before this batch",
                                     batch=batch, kind=kind)

    def _train_batch(self, x, y, sample_weight=None, out=None):
        """One compiled training step on one batch (forward, loss, metrics, backward,
        clip, update).

        ``fit`` calls this once per batch when something needs per-batch
        control (callbacks with batch hooks, the progress bar, metrics run in
        NumPy, batches from an iterable), with arrays it has already checked
        and cast; otherwise one compiled call trains the whole epoch.

        Returns
        -------
        float
            The batch loss, before the update.

        Raises
        ------
        fastrnn.errors.NonFiniteTrainingError
            When the loss, the gradient or the update is not finite; nothing is updated.
        """
        x, y = _as_lists(x, y)
        if not self._compile_built():
            self._build_compile([a.shape for a in y], [a.shape for a in x])
        engine = self._trainer()
        opt = self.optimizer
        lr = opt.current_learning_rate()
        with self._lock:
            loss = engine.train_step(x, y, lr, sample_weight, out)
            self._last_output_losses = engine.output_losses
        if engine.last_status:
            self._raise_bad_step(engine.last_status, loss)
        return loss

    def _train_epoch(self, engine, order, batch_size, lrs, losses):
        """One compiled call over every batch of the bound training set; the mean loss."""
        opt = self.optimizer
        lrs[...] = opt.learning_rates(len(lrs))
        with self._lock:
            mean = engine.run_epoch(order, batch_size, lrs, losses)
        if engine.last_status:
            self._raise_bad_step(engine.last_status, losses[engine.bad_batch], engine.bad_batch)
        return mean

    #: fit's several-epoch calls hold at most this many row indices (8 MiB) ...
    _ORDER_BUDGET = 2**20
    #: ... and last about this long, so a KeyboardInterrupt is seen promptly
    _CALL_SECONDS = 0.2

    def _fit_epochs_compiled(self, engine, cbs, rng, shuffle, initial_epoch, epochs,
                             batch_size, n, n_batches):
        """fit's epochs, several per compiled call (as many as last ~``_CALL_SECONDS``).

        The row orders are drawn exactly as one epoch at a time draws them
        (the same generator, the same calls), so the results are bitwise
        those of one call per epoch.  The History gets every epoch's loss.
        """
        most = max(1, min(epochs - initial_epoch, self._ORDER_BUDGET // max(n, 1)))
        orders = np.empty((most, n), np.int64)
        losses = np.empty(most * n_batches, np.float64)
        rates = np.empty(most * n_batches, np.float64)
        means = np.empty(most, np.float64)
        n_metrics = len(self._compile_state.engine_specs)
        totals = np.empty(most * 2 * n_metrics + 1, np.float64)
        opt = self.optimizer
        logs = {}
        epoch, per_call = initial_epoch, 1          # the first call times one epoch
        # (models with one output: several outputs log each one's loss per epoch)
        while epoch < epochs:
            E = min(per_call, epochs - epoch)
            # each row np.arange(n) then rng.shuffle(row), in one compiled call
            _engine.shuffled_orders(rng, orders[:E], shuffle)
            engine = self._trainer()
            rates[:E * n_batches] = opt.learning_rates(E * n_batches)
            started = time.perf_counter()
            with self._lock:
                engine.run_epoch(orders[:E].reshape(-1), batch_size, rates, losses, epochs=E,
                                 means=means, metric_totals=totals if n_metrics else None)
            seconds = time.perf_counter() - started
            done = engine.bad_epoch if engine.last_status else E
            if not n_metrics and [type(cb) for cb in cbs.callbacks] == [History]:
                # fit's own History alone: what its epoch hooks would record, at once
                if done:
                    history = cbs.callbacks[0]
                    history.epoch.extend(range(epoch, epoch + done))
                    history.history.setdefault("loss", []).extend(means[:done].tolist())
                    logs = {"loss": float(means[done - 1])}
            else:
                for e in range(done):
                    logs = {"loss": float(means[e])}
                    if n_metrics:
                        pairs = totals[2 * n_metrics * e:2 * n_metrics * (e + 1)].reshape(-1, 2)
                        self._metric_logs(engine, logs, totals=pairs)
                    cbs.on_epoch_begin(epoch + e)
                    cbs.on_epoch_end(epoch + e, logs)
            if engine.last_status:
                k = engine.bad_epoch * n_batches + engine.bad_batch
                try:
                    self._raise_bad_step(engine.last_status, losses[k], engine.bad_batch)
                except NonFiniteTrainingError as err:
                    raise self._diverged(err, epoch + engine.bad_epoch, engine.bad_batch,
                                         epochs, n_batches) from None
            epoch += E
            per_call = int(min(most, max(1, self._CALL_SECONDS * E / max(seconds, 1e-9))))
        return logs

    # -- fit in two halves around the compiled call, for fastrnn.fit_many ---------------
    def _fit_compiled_begin(self, x, y, epochs, batch_size, shuffle):
        """``fit(x, y, batch_size, epochs, shuffle=shuffle, verbose=0)`` up to its compiled call.

        For :func:`fastrnn.fit_many`, which runs the compiled epochs of many
        models in one GIL-free call (:func:`fastrnn._engine.run_epochs_many`),
        then :meth:`_fit_compiled_end` for each: the three steps are that
        ``fit``, bitwise (the same checks, the same draws from the same
        generator, the same engine computation).  Only for array data trained
        with nothing in Python between the epochs: no callbacks, no
        validation, ``epochs >= 1``.

        Returns
        -------
        dict or None
            ``engine`` (the training engine, with ``x``, ``y`` bound),
            ``orders`` (int64 (epochs, n): every epoch's row order),
            ``rates`` (float64 (epochs * n_batches,): every batch's learning
            rate), ``n_batches``; or None when this model's ``fit`` needs
            more than compiled epochs (metrics computed in Python, compiled
            metrics, several outputs, stateful layers; after a draw from its
            generator: train it by ``fit`` from a fresh build), or for
            non-array data or ``epochs=0`` (nothing drawn).
        """
        self._require_compiled("fit")
        epochs = _positive_int(epochs, "epochs")
        if epochs == 0 or not data_adapters.is_array_like(x):
            return None     # nothing drawn yet: fit it
        rng = initializers._next_generator()
        batch_size = self._check_batch_size(batch_size)
        xa, ya, wa = self._prepare(x, y, None, None)
        adapter = data_adapters.ArrayDataAdapter(xa, ya, wa, batch_size, shuffle)
        state = self._compile_state
        if (state.python_entries or state.engine_specs or len(self.output_names) != 1
                or self._runner().plan.states):
            return None
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        self.history = History()
        self.stop_training = False
        return self._compiled_epochs(self._trainer(), self.optimizer, rng, adapter, epochs,
                                     shuffle)

    def _compiled_epochs(self, engine, optimizer, rng, adapter, epochs, shuffle):
        """What :meth:`_fit_compiled_begin` returns: every epoch's row order drawn from
        ``rng``, every batch's learning rate, the data bound to ``engine``."""
        n, n_batches = adapter.num_samples, adapter.num_batches
        orders = np.empty((epochs, n), np.int64)
        _engine.shuffled_orders(rng, orders, shuffle)
        rates = optimizer.learning_rates(epochs * n_batches)
        engine.bind_data(adapter.x, adapter.y, adapter.sample_weight)
        return {"engine": engine, "orders": orders, "rates": rates, "n_batches": n_batches,
                "batch_size": adapter.batch_size}

    def _replica_begin(self, params, x, y, epochs, batch_size, shuffle, prepared=None):
        """:meth:`_fit_compiled_begin` for a copy of this model: the same structure,
        compile settings and data layout, ``params`` as its initial weights, and
        its own gradients, optimizer state and training engine.

        For :func:`fastrnn.fit_many`, which thus trains many copies of one
        built model instead of building each (``params`` from
        :meth:`_replayed_params` under the copy's seed).  This model must have
        been through :meth:`_fit_compiled_begin` (built, compiled, its losses
        resolved, eligible); it is only read, so several threads may make
        copies at once.  Draws the shuffling generator first, as ``fit`` does.

        Parameters
        ----------
        params : ndarray of shape (P,)
            The copy's weights (trained in place), this model's dtype.
        x, y, epochs, batch_size, shuffle
            As ``fit``.
        prepared : tuple, optional
            ``(xa, ya, wa)`` from :meth:`_prepare` on the same ``x`` and ``y``
            (their checks are then not repeated).

        Returns
        -------
        dict
            As :meth:`_fit_compiled_begin`, plus ``params`` and ``optimizer``
            (the copy's).
        """
        rng = initializers._next_generator()
        batch_size = self._check_batch_size(batch_size)
        xa, ya, wa = self._prepare(x, y, None, None) if prepared is None else prepared
        adapter = data_adapters.ArrayDataAdapter(xa, ya, wa, batch_size, shuffle)
        optimizer = self.optimizer._fresh_copy()
        optimizer.build(params, [off for _, _, off in self.param_layout])
        runner = Runner(self._engine_runner.plan, params, np.zeros_like(params))
        engine = self._configured_trainer(runner, optimizer)
        info = self._compiled_epochs(engine, optimizer, rng, adapter, epochs, shuffle)
        info.update(params=params, optimizer=optimizer)
        return info

    def _fit_compiled_end(self, begun, means, losses):
        """Finish what :meth:`_fit_compiled_begin` began, after the engine ran its epochs.

        Parameters
        ----------
        begun : dict
            What :meth:`_fit_compiled_begin` returned.
        means : ndarray of float64, shape (epochs,)
            Each epoch's mean loss (``run_epoch``'s ``means``).
        losses : ndarray of float64, shape (epochs * n_batches,)
            Each batch's loss.

        Returns
        -------
        fastrnn.callbacks.History
            As ``fit`` returns it.

        Raises
        ------
        fastrnn.errors.NonFiniteTrainingError
            As ``fit`` raises it, when a batch went bad (the History then has
            the epochs before it).
        """
        engine, n_batches = begun["engine"], begun["n_batches"]
        engine.unbind_data()
        epochs = len(means)
        done = engine.bad_epoch if engine.last_status else epochs
        history = self.history
        cbs = CallbackList([history], self, {"epochs": epochs, "steps": n_batches,
                                             "verbose": 0, "batch_size": begun["batch_size"],
                                             "samples": begun["orders"].shape[1]})
        history.on_train_begin()
        history.epoch = list(range(done))
        history.history = {"loss": means[:done].tolist()} if done else {}
        if engine.last_status:
            k = engine.bad_epoch * n_batches + engine.bad_batch
            try:
                self._raise_bad_step(engine.last_status, losses[k], engine.bad_batch)
            except NonFiniteTrainingError as err:
                raise self._diverged(err, engine.bad_epoch, engine.bad_batch, epochs,
                                     n_batches) from None
        cbs.on_train_end({"loss": float(means[epochs - 1])})
        return history

    def _diverged(self, err, epoch, batch, epochs, n_batches):
        """``err`` again, naming the epoch and batch (0-based in the attributes)."""
        total = "?" if n_batches is None else n_batches
        return NonFiniteTrainingError(
            f"fit: non-finite {err.kind} at epoch {epoch + 1}/{epochs}, batch {batch + 1}/"
            f"{total}; training stopped and the weights are those of the last good "
            f"step ({err})", epoch=epoch, batch=batch, kind=err.kind)

    # -- metrics ------------------------------------------------------------------
    def _reset_python_metrics(self):
        for entry in self._compile_state.python_entries:
            entry.metric.reset_state()

    def _update_python_metrics(self, y, out, w, x):
        """Metrics that run in NumPy, on one batch's targets and outputs (``x``: the
        batch's inputs, for the output's mask)."""
        mask = self._output_mask(x)
        for entry in self._compile_state.python_entries:
            weight = w if entry.weighted else None
            if mask is not None:    # Keras's MeanMetricWrapper: the mask multiplies the weights
                weight = mask if weight is None else weight * mask
            entry.metric.update_state(y, out, sample_weight=weight)

    def _output_mask(self, x):
        """The (N, T) step mask of the (first) output for inputs ``x`` (a list), as
        floats, or None when the output carries no mask (one inference pass)."""
        engine = self._runner().predictor()
        if not engine.masked_outputs[0]:
            return None
        outs = [np.empty(s, dtype=self.dtype)
                for s in self._concrete_output_shapes([a.shape for a in x])]
        masks = [np.zeros(outs[0].shape[:2], np.uint8)] + [None] * (len(outs) - 1)
        T = max(a.shape[1] if a.ndim == 3 else 1 for a in x)
        with self._lock:
            engine.predict(x, outs, self._predict_chunk(T), False, masks)
        return masks[0].astype(self.dtype)

    def _loss_logs(self, loss, each, prefix=""):
        """{"loss": total} and, with several outputs, {"<output>_loss": ...} as Keras logs them."""
        logs = {prefix + "loss": loss}
        if len(each) > 1:
            for name, value in zip(self.output_names, each):
                logs[f"{prefix}{name}_loss"] = value
        return logs

    def _metric_logs(self, engine, logs, prefix="", totals=None):
        """Add every metric's value (engine totals -- or the given (total, count)
        pairs -- or NumPy state) to ``logs``."""
        state = self._compile_state
        if len(self._output_states()[0]) > 1:
            return logs
        if totals is None:
            totals = engine.metric_totals() if state.engine_specs else ()
        totals = iter(totals)
        for entry in state.entries:
            if entry.spec is not None:
                total, count = next(totals)
                logs[prefix + entry.name] = entry.result_from(total, count)
            else:
                logs[prefix + entry.name] = float(entry.metric.result())
        return logs

    # -- evaluation of checked data -------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, verbose=0, sample_weight=None, prefix=""):
        """Loss and metrics of checked arrays (lists per input and output):
        ``{"loss": ..., names: ...}`` (with ``prefix``)."""
        T = max(a.shape[1] if a.ndim == 3 else 1 for a in x)
        n = x[0].shape[0]
        engine = self._prediction_engine(with_loss=True)
        chunk = self._predict_chunk(T, cap=batch_size)
        python = self._compile_state.python_entries if len(y) == 1 else []
        out = ([np.empty(s, self.dtype) for s in self._concrete_output_shapes(
            [a.shape for a in x])] if python else None)
        bar = _progress_bar(-(-n // batch_size), "evaluate") if verbose == 1 else None
        with self._lock:
            loss = engine.evaluate(x, y, chunk, sample_weight, out) + self._penalty()
            each = engine.output_losses
        if python:
            self._reset_python_metrics()
            w = None if sample_weight is None else sample_weight[0]
            for start in range(0, n, chunk):
                stop = start + chunk
                self._update_python_metrics(y[0][start:stop], out[0][start:stop],
                                            None if w is None else w[start:stop],
                                            [a[start:stop] for a in x])
        logs = self._metric_logs(engine, self._loss_logs(loss, each, prefix), prefix)
        if bar is not None:
            bar.update(bar.total)
            bar.set_postfix({k: _format_value(v) for k, v in logs.items()})
            bar.close()
        return logs

    def _evaluate_batches(self, iterator, source, verbose=0, prefix=""):
        """Loss and metrics over the batches of an EpochIterator (one compiled call each)."""
        engine = None
        total = 0.0
        each = None
        seen = 0
        python = bool(self._compile_state.python_entries)
        bar = _progress_bar(iterator.num_batches, "evaluate") if verbose == 1 else None
        for step, batch in iterator.epoch():
            x, y, w = self._prepare_batch(batch, step, source)
            if engine is None:
                engine = self._prediction_engine(with_loss=True)
                self._reset_python_metrics()
            python = python and len(y) == 1
            out = ([np.empty(s, self.dtype) for s in self._concrete_output_shapes(
                [a.shape for a in x])] if python else None)
            with self._lock:
                loss = engine.evaluate(x, y, x[0].shape[0], w, out)
                batch_each = np.multiply(engine.output_losses, x[0].shape[0])
            if python:
                self._update_python_metrics(y[0], out[0], None if w is None else w[0], x)
            total += loss * x[0].shape[0]
            each = batch_each if each is None else each + batch_each
            seen += x[0].shape[0]
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if engine is None:
            raise ValueError(f"{source} yielded no batches to evaluate (a generator that is "
                             f"used up? pass a re-iterable, or validation_steps/steps)")
        return self._metric_logs(engine, self._loss_logs(total / seen + self._penalty(),
                                                         list(each / seen), prefix), prefix)

    # -- fit / evaluate / predict --------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train with mini-batches, as ``keras.Model.fit``.

        Parameters
        ----------
        x : array_like of shape (N, T, D), or an iterable of batches
            (or (N, D) for a Dense-only model).  float64/int are cast to the
            model's dtype.  Or a generator / iterable yielding ``(x, y)`` or
            ``(x, y, sample_weight)`` batches, a :class:`fastrnn.utils.PyDataset`,
            the dataset ``timeseries_dataset_from_array`` returns, or a
            ``tf.data.Dataset`` (see :mod:`fastrnn.trainers.data_adapters`).
        y : array_like of shape (N, ...) matching the output
            (N,) is accepted for an output of shape (N, 1); integer labels
            (N,) or (N, 1) (per step: (N, T)) for sparse cross-entropy.  Not
            with an iterable ``x``.
        batch_size : int, default 32
            Arrays only.  The last batch may be smaller; it is a batch.
        epochs : int, default 1
            Index of the last epoch (training runs ``initial_epoch .. epochs-1``).
        verbose : {0, 1, 2, "auto"}, default "auto"
            0 silent; 1 a progress bar per epoch with the running loss and
            metrics; 2 one line per epoch; "auto" is 1 in a terminal, else 2.
        callbacks : list of fastrnn.callbacks.Callback, optional
        validation_split : float in [0, 1), default 0
            Fraction of the samples (and sample weights), taken from the end
            before shuffling, to hold out and evaluate on after every epoch.
        validation_data : tuple or iterable, optional
            ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)`` arrays,
            or an iterable of batches; takes precedence over ``validation_split``.
        shuffle : bool, default True
            Shuffle the training samples before every epoch (arrays only).
        class_weight : dict, optional
            ``{class index: weight}``: each sample's loss (and weighted
            metrics) weighted by its class (argmax of one-hot targets, or the
            label); training data only.  Not with ``sample_weight``.
        sample_weight : array_like, optional
            (N,) per sample, or for a per-step output (N, T) per step
            (temporal weights) or (N, 1); >= 0.  The loss is Keras's
            ``sum(w * loss) / count``.
        initial_epoch : int, default 0
        steps_per_epoch : int, optional
            Batches per epoch; with a generator, the next ones from the same
            generator every epoch.
        validation_steps : int, optional
            Batches per validation with iterable ``validation_data``.
        validation_batch_size : int, optional
            Default ``batch_size``.
        validation_freq : int, default 1
            Validate after every ``validation_freq``-th epoch.

        Returns
        -------
        fastrnn.callbacks.History
            ``history.history["loss"]``, every metric and their ``"val_"``
            versions, per epoch: the sample-weighted means of the batch values.
        """
        self._require_compiled("fit")
        epochs = _positive_int(epochs, "epochs", allow_zero=True)
        initial_epoch = _positive_int(initial_epoch, "initial_epoch", allow_zero=True)
        verbose = _resolve_verbose(verbose)
        steps_per_epoch = _optional_steps(steps_per_epoch, "steps_per_epoch")
        validation_steps = _optional_steps(validation_steps, "validation_steps")
        validation_freq = _positive_int(validation_freq, "validation_freq")
        if not isinstance(validation_split, (int, float, np.floating)) or isinstance(
                validation_split, bool) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be a bool, got {shuffle!r}")
        if class_weight is not None and sample_weight is not None:
            raise ValueError("You cannot pass class_weight and sample_weight at the same time")
        rng = initializers._next_generator()

        # -- the training data, through one adapter
        adapter = data_adapters.get_data_adapter(x, y, sample_weight, "x")
        val = None
        if adapter is None:       # arrays
            given_batch_size = batch_size
            if batch_size is None and steps_per_epoch:
                n = len(x) if hasattr(x, "__len__") else np.shape(x)[0]
                batch_size = max(1, -(-n // steps_per_epoch))
            batch_size = self._check_batch_size(batch_size)
            xa, ya, wa = self._prepare(x, y, sample_weight, None)
            if validation_data is None and validation_split:
                n = xa[0].shape[0]
                split = int(n * (1.0 - validation_split))
                if split == 0 or split == n:
                    raise ValueError(f"validation_split={validation_split} leaves {split} "
                                     f"training and {n - split} validation samples out of {n}; "
                                     f"both must be non-empty")
                val = ("arrays", [a[split:] for a in xa], [a[split:] for a in ya],
                       _cut(wa, split, None),
                       self._check_batch_size(validation_batch_size or batch_size))
                xa, ya, wa = [a[:split] for a in xa], [a[:split] for a in ya], _cut(wa, None, split)
            if class_weight is not None:
                wa = self._check_weights(None, class_weight, ya, xa)
            batch_size = self._stateful_batch_size(given_batch_size, batch_size, xa[0].shape[0])
            adapter = data_adapters.ArrayDataAdapter(xa, ya, wa, batch_size, shuffle)
        else:
            if batch_size is not None:
                raise ValueError("batch_size must not be passed when x is a generator or "
                                 "dataset: its batches already have a size")
            if validation_split:
                raise ValueError("validation_split is only supported for arrays; pass "
                                 "validation_data for a generator or dataset")
        iterator = data_adapters.EpochIterator(adapter, steps_per_epoch, rng)
        first = None
        if not adapter.is_arrays and (not self.built or not self._compile_state.built):
            # build the model and resolve the loss from the first batch
            first = self._first_batch(iterator)
        if validation_data is not None:
            val = self._validation_source(validation_data, validation_batch_size or batch_size,
                                          validation_steps)
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        state = self._compile_state

        history = History()
        n_batches = iterator.num_batches
        if callbacks is not None and isinstance(callbacks, Callback):
            callbacks = [callbacks]
        samples = adapter.num_samples if adapter.is_arrays else None
        cbs = CallbackList([history] + list(callbacks or []), self,
                           {"epochs": epochs, "steps": n_batches, "verbose": verbose,
                            "batch_size": batch_size, "samples": samples})
        self.history = history
        wants_batches = cbs.wants_batches
        # One compiled call per epoch when nothing needs per-batch control,
        # else one per batch.
        whole_epochs = (adapter.is_arrays and steps_per_epoch is None and verbose != 1
                        and not wants_batches and not state.python_entries)
        # Several epochs in one compiled call when nothing runs between epochs:
        # no callbacks (but the History), no validation, nothing printed.
        n_outputs = len(self.output_names)
        several_epochs = (whole_epochs and verbose == 0 and val is None and not callbacks
                          and epochs - initial_epoch > 1 and n_outputs == 1)
        engine = self._trainer()
        if whole_epochs:
            engine.bind_data(adapter.x, adapter.y, adapter.sample_weight)
            n = adapter.num_samples
            identity = np.arange(n, dtype=np.int64)
            order = identity.copy()
            batch_losses = np.empty(n_batches, np.float64)
            batch_rates = np.empty(n_batches, np.float64)
        self.stop_training = False
        logs = {}
        try:
            cbs.on_train_begin()
            if several_epochs:
                logs = self._fit_epochs_compiled(engine, cbs, rng, shuffle, initial_epoch,
                                                 epochs, adapter.batch_size, n, n_batches)
            else:
                for epoch in range(initial_epoch, epochs):
                    cbs.on_epoch_begin(epoch)
                    started = time.perf_counter()
                    bar = None
                    if self._compile_state is not state:      # re-compiled by a callback
                        state = self._compile_state
                        self._build_compile(*self._data_shapes)
                    epoch_engine = self._trainer()   # the current loss and optimizer
                    has_metrics = bool(state.engine_specs)
                    if has_metrics:
                        epoch_engine.reset_metrics()
                    self._reset_python_metrics()
                    if whole_epochs:
                        if shuffle:
                            # rng.permutation(n) without allocating: the same order
                            order[...] = identity
                            rng.shuffle(order)
                        if epoch_engine is not engine:
                            engine.unbind_data()
                            engine = epoch_engine
                            engine.bind_data(adapter.x, adapter.y, adapter.sample_weight)
                        try:
                            mean = self._train_epoch(engine, order, adapter.batch_size,
                                                     batch_rates, batch_losses)
                            logs = ({"loss": mean} if n_outputs == 1 else
                                    self._loss_logs(mean, engine.output_losses))
                        except NonFiniteTrainingError as err:
                            if not cbs.on_nonfinite_loss(err.batch, {"loss": float("nan")}):
                                raise self._diverged(err, epoch, err.batch, epochs,
                                                     n_batches) from None
                            logs = {"loss": float("nan")}      # TerminateOnNaN: stop here
                            self.stop_training = True
                        if has_metrics and np.isfinite(logs["loss"]):
                            self._metric_logs(engine, logs)
                    else:
                        engine = epoch_engine
                        bar = (_progress_bar(n_batches, f"Epoch {epoch + 1}/{epochs}")
                               if verbose == 1 else None)
                        outcome = self._train_batches(iterator, engine, cbs, bar, epoch, epochs,
                                                      class_weight, first)
                        first = None
                        if outcome is None:         # the data ran out before this epoch began
                            if bar is not None:
                                bar.close()
                            if epoch == initial_epoch:
                                raise ValueError("x yielded no batches: nothing to train on (an "
                                                 "empty or used-up generator?)")
                            warnings.warn(data_adapters.RAN_OUT, stacklevel=2)
                            self.stop_training = True
                            break
                        logs = outcome
                        if iterator.exhausted:
                            warnings.warn(data_adapters.RAN_OUT, stacklevel=2)
                            self.stop_training = True
                    if (val is not None and np.isfinite(logs["loss"])     # not after TerminateOnNaN
                            and (epoch + 1 - initial_epoch) % validation_freq == 0):
                        logs.update(self._validate(val))
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

    def _first_batch(self, iterator):
        """Peek the first batch (prepared) so the model and loss are built; it is then
        trained on first."""
        gen = iterator.epoch()
        try:
            step, batch = next(gen)
        except StopIteration:
            raise ValueError("x yielded no batches: nothing to train on (an empty or "
                             "used-up generator?)") from None
        self._prepare_batch(batch, step, "x")
        return gen, batch

    def _train_batches(self, iterator, engine, cbs, bar, epoch, epochs, class_weight, first):
        """One epoch of batches, one compiled call each; the epoch's logs (None: no data)."""
        python = bool(self._compile_state.python_entries)
        has_metrics = bool(self._compile_state.engine_specs)
        wants = cbs.wants_batches
        total = 0.0
        each = 0.0
        seen = 0
        n_batches = iterator.num_batches
        batches = iterator.epoch() if first is None else _chain_first(*first)
        arrays = iterator.adapter.is_arrays
        logs = None
        for step, batch in batches:
            if arrays:
                xb, yb, wb = batch
            else:
                xb, yb, wb = self._prepare_batch(batch, step, "x", class_weight)
            if wants:
                cbs.on_train_batch_begin(step)
            out = ([np.empty(s, self.dtype) for s in self._concrete_output_shapes(
                [a.shape for a in xb])] if python else None)
            try:
                loss = self._train_batch(xb, yb, wb, out)
            except NonFiniteTrainingError as err:
                if not cbs.on_nonfinite_loss(step, {"loss": float("nan")}):
                    if bar is not None:
                        bar.close()
                    raise self._diverged(err, epoch, step, epochs, n_batches) from None
                total, seen = float("nan"), max(seen, 1)
                self.stop_training = True      # TerminateOnNaN: stop here
                logs = {"loss": float("nan")}
                break
            if python:
                self._update_python_metrics(yb[0], out[0], None if wb is None else wb[0], xb)
            total += loss * xb[0].shape[0]
            each = each + np.multiply(self._last_output_losses, xb[0].shape[0])
            seen += xb[0].shape[0]
            if wants or bar is not None:
                logs = {"loss": total / seen}
                if has_metrics or python:
                    self._metric_logs(engine, logs)
                if wants:
                    cbs.on_train_batch_end(step, logs)
                if bar is not None:
                    bar.set_postfix({k: _format_value(v) for k, v in logs.items()},
                                    refresh=False)
                    bar.update(1)
        if seen == 0:
            return None
        if logs is not None and not np.isfinite(logs["loss"]):
            return logs
        logs = self._loss_logs(total / seen, list(np.atleast_1d(each / seen)))
        if has_metrics or python:
            self._metric_logs(engine, logs)
        return logs

    def _validation_source(self, validation_data, batch_size, steps):
        """("arrays", x, y, w) or an EpochIterator over validation batches."""
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                                 "(x_val, y_val, sample_weight_val), or an iterable of batches")
            xv, yv = validation_data[0], validation_data[1]
            wv = validation_data[2] if len(validation_data) == 3 else None
            adapter = data_adapters.get_data_adapter(xv, None, None, "validation_data[0]")
            if adapter is not None:
                raise ValueError("validation_data: a tuple holds arrays (x_val, y_val[, "
                                 "sample_weight_val]); pass a generator or dataset itself")
            names = ("validation_data[0]", "validation_data[1]", "validation_data[2]")
            xv, yv, wv = self._prepare(xv, yv, wv, None, names)
            return ("arrays", xv, yv, wv, self._check_batch_size(batch_size))
        adapter = data_adapters.get_data_adapter(validation_data, None, None, "validation_data")
        if adapter is None:
            raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                             "sample_weight_val), or an iterable of batches; got an array")
        return data_adapters.EpochIterator(adapter, steps)

    def _validate(self, val):
        if isinstance(val, tuple):
            _, xv, yv, wv, batch_size = val
            return self._evaluate_arrays(xv, yv, batch_size, 0, wv, prefix="val_")
        return self._evaluate_batches(val, "validation_data", 0, prefix="val_")

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss and metrics on (x, y): sample-weighted means over batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D), or an iterable of batches (see :meth:`fit`)
        y : array_like, shape of the output (or (N,) for output (N, 1); labels for
            sparse cross-entropy)
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}
        sample_weight : array_like, optional
            As in :meth:`fit`.
        steps : int, optional
            Batches to evaluate (iterables: stop after that many).
        callbacks : list of Callback, optional
            ``on_test_begin``/``on_test_end`` are called.
        return_dict : bool, default False

        Returns
        -------
        float, list or dict
            The loss alone when there are no metrics, else ``[loss, *metrics]``
            (the order of :attr:`metrics_names`); ``{name: value}`` with
            ``return_dict=True``.
        """
        self._require_compiled("evaluate")
        verbose = _resolve_verbose(verbose)
        steps = _optional_steps(steps, "steps")
        cbs = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastrnn.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
            cb.set_model(self)
        adapter = data_adapters.get_data_adapter(x, y, sample_weight, "x")
        for cb in cbs:
            cb.on_test_begin({})
        if adapter is None:
            self._require_built("evaluate")
            given_batch_size = batch_size
            batch_size = self._check_batch_size(batch_size)
            xa, ya, wa = self._prepare(x, y, sample_weight, None)
            batch_size = self._stateful_batch_size(given_batch_size, batch_size, xa[0].shape[0])
            if steps is not None:
                keep = steps * batch_size
                xa, ya, wa = [a[:keep] for a in xa], [a[:keep] for a in ya], _cut(wa, None, keep)
            logs = self._evaluate_arrays(xa, ya, batch_size, verbose, wa)
        else:
            if batch_size is not None:
                raise ValueError("batch_size must not be passed when x is a generator or "
                                 "dataset: its batches already have a size")
            logs = self._evaluate_batches(data_adapters.EpochIterator(adapter, steps), "x",
                                          verbose)
        for cb in cbs:
            cb.on_test_end(dict(logs))
        if verbose == 2:
            print(" - ".join(f"{k}: {_format_value(v)}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x``, computed in batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D), or an iterable of batches
            Batches may be ``x``, ``(x,)`` or ``(x, y[, w])`` (only ``x`` is used).
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}
            1 shows a progress bar.
        steps : int, optional
            Batches to predict from an iterable.
        callbacks : list of Callback, optional
            ``on_predict_begin``/``on_predict_end`` are called.

        Returns
        -------
        ndarray of shape (N, ...) in the model's dtype
            The output; a list (or dict, as the model's outputs were given)
            for several, e.g. ``[output, state]`` after ``return_state=True``.
        """
        verbose = _resolve_verbose(verbose)
        steps = _optional_steps(steps, "steps")
        cbs = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastrnn.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
            cb.set_model(self)
            cb.on_predict_begin({})
        adapter = data_adapters.get_data_adapter(x, None, None, "x")
        if adapter is not None:
            if batch_size is not None:
                raise ValueError("batch_size must not be passed when x is a generator or "
                                 "dataset: its batches already have a size")
            result = self._predict_batches(data_adapters.EpochIterator(adapter, steps), verbose)
        else:
            self._require_built("predict")
            given_batch_size = batch_size
            batch_size = self._check_batch_size(batch_size)
            xa = self._check_x(x)
            batch_size = self._stateful_batch_size(given_batch_size, batch_size, xa[0].shape[0])
            result = self._predict_arrays(xa, batch_size, verbose)
        for cb in cbs:
            cb.on_predict_end({})
        return result

    def _predict_arrays(self, x, batch_size, verbose):
        n = x[0].shape[0]
        if verbose != 1:
            return self._structure_outputs(self._forward(x))
        results = [np.empty(s, dtype=self.dtype)
                   for s in self._concrete_output_shapes([a.shape for a in x])]
        bar = _progress_bar(-(-n // batch_size), "predict")
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            for r, o in zip(results, self._forward([a[start:stop] for a in x])):
                r[start:stop] = o
            bar.update(1)
        bar.close()
        return self._structure_outputs(results)

    def _predict_batches(self, iterator, verbose):
        parts = []
        bar = _progress_bar(iterator.num_batches, "predict") if verbose == 1 else None
        for step, batch in iterator.epoch():
            xb, _, _ = data_adapters.unpack_batch(batch, f"x, batch {step}")
            if not self.built:
                first = self._check_x(xb, f"x, batch {step}")[0]
                self.build((None,) + first.shape[1:])
            parts.append(self._forward(self._check_x(xb, f"x, batch {step}")))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if not parts:
            raise ValueError("x yielded no batches to predict")
        return self._structure_outputs([np.concatenate(p, axis=0) for p in zip(*parts)])


def _as_lists(x, y):
    """x and y as lists of arrays (a bare array is one input or output)."""
    return (x if isinstance(x, list) else [x]), (y if isinstance(y, list) else [y])


def _cut(weights, start, stop):
    """Rows [start:stop] of every output's weights (None entries, or None, kept)."""
    if weights is None:
        return None
    return [None if w is None else w[start:stop] for w in weights]


def _chain_first(gen, batch):
    """The epoch's (step, batch) pairs, the first one already taken from ``gen``."""
    yield 0, batch
    yield from gen


def _optional_steps(value, argument):
    return None if value is None else _positive_int(value, argument)
