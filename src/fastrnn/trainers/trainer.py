"""The training loop of every model: compile, fit, evaluate, predict (as Keras's Trainer).

A model class mixes :class:`Trainer` in; the trainer checks and casts the
data once, at the boundary, and runs it on the model's compiled engine
(:mod:`fastrnn.engine`): one compiled call per epoch (forward, loss,
backward, clipping and the optimizer step for every batch, no allocation per
step) -- or, when a callback needs per-batch hooks or the progress bar is
shown, one compiled call per batch (:meth:`Trainer._train_batch`).

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
Data is checked into one array per model input and one target per output
(lists, in the model's order); the engine takes the lists as they are.  The
training loss is the weighted sum of the outputs' losses, and ``fit``'s logs
hold each output's loss as ``<output name>_loss`` too, as Keras's.

What a model provides: ``params``, ``grads``, ``param_layout``, ``_lock``,
``built``, ``dtype``, ``build``, ``_require_built``, ``_lower`` (its engine
plan), ``_split_inputs``/``_split_outputs`` (data structures to lists),
``_input_spec``, ``output_names``, ``_concrete_output_shapes`` and
``_structure_outputs``.
"""
import sys
import time

import numpy as np

from .. import _engine, initializers, losses, optimizers
from ..callbacks import Callback, CallbackList, History
from ..engine import Runner
from ..errors import NonFiniteTrainingError
from ..layers import _shape_str

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


class Trainer:
    """compile / fit / evaluate / predict on the compiled engine (mixed into models)."""

    # -- compile ---------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None):
        """Choose the optimizer and the loss.

        Parameters
        ----------
        optimizer : str or fastrnn.optimizers.Optimizer, default "adam"
            "adam", "adamw", "sgd", "rmsprop", "adagrad" (Keras's defaults) or an instance.
        loss : {"mse", "mae"}, a fastrnn.losses function or a fastrnn.losses.Loss
            For a model with several outputs: one loss for every output, a
            list (one per output) or a dict keyed by output name.
        metrics : None
            Not supported yet (only the loss is reported); anything else raises.
        loss_weights : list or dict of float, optional
            The weight of each loss in the total (one per loss given; a
            single loss takes one weight, used for every output).
        """
        if loss is None:
            raise ValueError("compile: loss is required ('mse' or 'mae')")
        if metrics:
            raise ValueError("compile: metrics are not supported yet; the loss is reported "
                             "as 'loss' (and 'val_loss')")
        optimizer = optimizers.get(optimizer)
        if isinstance(loss, (list, tuple, dict)):
            items = loss.values() if isinstance(loss, dict) else loss
            if not items:
                raise ValueError("compile: loss is an empty list")
            for item in items:
                losses.get(item)
            loss_fn = losses.get(next(iter(items)))
        else:
            loss_fn = losses.get(loss)
        if loss_weights is not None:
            values = (list(loss_weights.values()) if isinstance(loss_weights, dict)
                      else list(loss_weights) if isinstance(loss_weights, (list, tuple))
                      else None)
            if values is None or not all(
                    isinstance(w, (int, float, np.integer, np.floating)) and not isinstance(w, bool)
                    and np.isfinite(w) and w >= 0 for w in values):
                raise ValueError(f"compile: loss_weights must be a list or dict of finite "
                                 f"numbers >= 0, got {loss_weights!r}")
        self.optimizer, self._loss_fn, self.loss = optimizer, loss_fn, loss
        self.loss_weights = loss_weights
        self._output_losses_cache = None
        if self.built:
            self.optimizer.build(self.params, [off for _, _, off in self.param_layout])

    def _require_compiled(self, what):
        if self._loss_fn is None:
            raise ValueError(f"call compile(optimizer=..., loss=...) before {what}")

    def _output_losses(self):
        """(loss function per output, weight per output) from compile's arguments
        (resolved once per compile)."""
        cached = getattr(self, "_output_losses_cache", None)
        if (cached is not None and cached[0] is self.loss and cached[1] is self.loss_weights
                and cached[2] == self.output_names):
            return cached[3]
        result = self._resolve_output_losses()
        self._output_losses_cache = (self.loss, self.loss_weights, list(self.output_names),
                                     result)
        return result

    def _resolve_output_losses(self):
        names = self.output_names
        n = len(names)
        loss, weights = self.loss, getattr(self, "loss_weights", None)
        if isinstance(loss, dict):
            missing = [name for name in names if name not in loss]
            unknown = [key for key in loss if key not in names]
            if missing or unknown:
                raise ValueError(f"compile: the loss dict must have one loss per output "
                                 f"{names}; missing {missing}, unknown {unknown}")
            fns = [losses.get(loss[name]) for name in names]
        elif isinstance(loss, (list, tuple)):
            if len(loss) != n:
                raise ValueError(f"compile: the model has {n} outputs {names}, but loss is a "
                                 f"list of {len(loss)}")
            fns = [losses.get(item) for item in loss]
        else:
            fns = [self._loss_fn] * n
        n_losses = 1 if not isinstance(loss, (list, tuple, dict)) else n
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
        return fns, ws

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

    def _check_y(self, y, x, argument="y", x_argument="x"):
        """One target per model output (a list), shaped exactly like that output for x."""
        if y is None:
            raise ValueError(f"{argument} is required (got None)")
        if not isinstance(x, list):     # one unchecked input array
            x = [np.asarray(x)]
        out_shapes = self._concrete_output_shapes([a.shape for a in x])
        return [self._check_target_array(value, name, shape, x[0].shape[0], x_argument)
                for (value, name), shape in zip(self._split_outputs(y, argument), out_shapes)]

    def _check_target_array(self, y, argument, out_shape, n, x_argument):
        arr = _real_array(y, argument, allow_bool=True)
        if arr.ndim == 0:
            raise ValueError(f"{argument} must be an array of targets, got a scalar")
        if arr.shape[0] != n:
            raise ValueError(f"{x_argument} has {n} samples but {argument} has "
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
            runner = Runner(self._lower(), self.params, self.grads)
            self._engine_runner = runner
        return runner

    def _trainer(self):
        """The training engine, configured for the current loss and optimizer."""
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        fns, weights = self._output_losses()
        return self._runner().trainer(fns, self.optimizer, weights)

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
        per_sample = self._runner().plan.floats_per_sample(T) * self.dtype.itemsize
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

    def _loss_and_gradients(self, x, y):
        """Loss of one batch and its gradient in ``self.grads``, without an update.

        Parameters
        ----------
        x : list of ndarray of shape (B, ...)
            One per input, as :meth:`_check_x` gives them.
        y : list of ndarray, shapes of the model's outputs for x
            One per output, as :meth:`_check_y` gives them.

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
            loss = engine.train_step(x, y, lr)
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
        opt = self.optimizer
        logs = {}
        epoch, per_call = initial_epoch, 1          # the first call times one epoch
        while epoch < epochs:
            E = min(per_call, epochs - epoch)
            for e in range(E):
                orders[e] = np.arange(n)
                if shuffle:
                    rng.shuffle(orders[e])
            engine = self._trainer()
            rates[:E * n_batches] = opt.learning_rates(E * n_batches)
            started = time.perf_counter()
            with self._lock:
                engine.run_epoch(orders[:E].reshape(-1), batch_size, rates, losses, epochs=E,
                                 means=means)
            seconds = time.perf_counter() - started
            done = engine.bad_epoch if engine.last_status else E
            for e in range(done):
                logs = {"loss": float(means[e])}
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

    def _diverged(self, err, epoch, batch, epochs, n_batches):
        """``err`` again, naming the epoch and batch (0-based in the attributes)."""
        return NonFiniteTrainingError(
            f"fit: non-finite {err.kind} at epoch {epoch + 1}/{epochs}, batch {batch + 1}/"
            f"{n_batches}; training stopped and the weights are those of the last good "
            f"step ({err})", epoch=epoch, batch=batch, kind=err.kind)

    def _evaluate_arrays(self, x, y, batch_size, verbose=0):
        """The loss on checked (x, y) lists, and each output's (a list)."""
        T = max(a.shape[1] if a.ndim == 3 else 1 for a in x)
        engine = self._runner().predictor()
        fns, weights = self._output_losses()
        engine.set_losses([_engine.LOSSES[f._engine_name] for f in fns], weights)
        bar = _progress_bar(-(-x[0].shape[0] // batch_size), "evaluate") if verbose == 1 else None
        with self._lock:
            loss = engine.evaluate(x, y, self._predict_chunk(T, cap=batch_size))
            each = engine.output_losses
        if bar is not None:
            bar.update(bar.total)
            bar.set_postfix(loss=_format_value(loss))
            bar.close()
        return loss, each

    def _loss_logs(self, loss, each, prefix=""):
        """{"loss": total} and, with several outputs, {"<output>_loss": ...} as Keras logs them."""
        logs = {prefix + "loss": loss}
        if len(each) > 1:
            for name, value in zip(self.output_names, each):
                logs[f"{prefix}{name}_loss"] = value
        return logs

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
            first = self._check_x(x)[0]
            if first.ndim < 2:
                raise ValueError(f"x must have a batch axis and at least one more; "
                                 f"got shape {first.shape}")
            self.build((None,) + first.shape[1:])
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
            split = int(x[0].shape[0] * (1.0 - validation_split))
            if split == 0 or split == x[0].shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves "
                                 f"{split} training and {x[0].shape[0] - split} validation "
                                 f"samples out of {x[0].shape[0]}; both must be non-empty")
            val = ([a[split:] for a in x], [a[split:] for a in y])
            x, y = [a[:split] for a in x], [a[:split] for a in y]
        if callbacks is not None and isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.optimizer.build(self.params, [off for _, _, off in self.param_layout])
        n = x[0].shape[0]
        n_outputs = len(y)
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
        # Several epochs in one compiled call when nothing runs between epochs:
        # no callbacks (but the History), no validation, nothing printed.
        several_epochs = (whole_epochs and verbose == 0 and val is None and not callbacks
                          and epochs - initial_epoch > 1 and n_outputs == 1)
        engine = self._trainer()
        if whole_epochs:
            engine.bind_data(x, y)
            identity = np.arange(n, dtype=np.int64)
            order = identity.copy()
            batch_losses = np.empty(n_batches, np.float64)
            batch_rates = np.empty(n_batches, np.float64)
        elif shuffle:
            xs, ys = [np.empty_like(a) for a in x], [np.empty_like(a) for a in y]
        else:
            xs, ys = x, y
        self.stop_training = False
        logs = {}
        try:
            cbs.on_train_begin()
            if several_epochs:
                logs = self._fit_epochs_compiled(engine, cbs, rng, shuffle, initial_epoch,
                                                 epochs, batch_size, n, n_batches)
            else:
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
                            mean = self._train_epoch(engine, order, batch_size, batch_rates,
                                                     batch_losses)
                            logs = ({"loss": mean} if n_outputs == 1 else
                                    self._loss_logs(mean, engine.output_losses))
                        except NonFiniteTrainingError as err:
                            if not cbs.on_nonfinite_loss(err.batch, {"loss": float("nan")}):
                                raise self._diverged(err, epoch, err.batch, epochs,
                                                     n_batches) from None
                            logs = {"loss": float("nan")}      # TerminateOnNaN: stop here
                            self.stop_training = True
                    else:
                        if shuffle:
                            perm = rng.permutation(n)
                            for a, out in zip(x + y, xs + ys):
                                np.take(a, perm, axis=0, out=out)
                        bar = (_progress_bar(n_batches, f"Epoch {epoch + 1}/{epochs}")
                               if verbose == 1 else None)
                        total = 0.0
                        each = np.zeros(n_outputs)
                        for b in range(n_batches):
                            start = b * batch_size
                            stop = min(start + batch_size, n)
                            if wants_batches:
                                cbs.on_train_batch_begin(b)
                            try:
                                loss = self._train_batch([a[start:stop] for a in xs],
                                                         [a[start:stop] for a in ys])
                            except NonFiniteTrainingError as err:
                                if not cbs.on_nonfinite_loss(b, {"loss": float("nan")}):
                                    if bar is not None:
                                        bar.close()
                                    raise self._diverged(err, epoch, b, epochs, n_batches) from None
                                total, stop = float("nan"), max(stop, 1)
                                self.stop_training = True      # TerminateOnNaN: stop here
                                break
                            total += loss * (stop - start)
                            each += np.multiply(self._last_output_losses, stop - start)
                            if wants_batches:
                                cbs.on_train_batch_end(b, {"loss": total / stop})
                            if bar is not None:
                                bar.set_postfix(loss=_format_value(total / stop), refresh=False)
                                bar.update(1)
                        logs = self._loss_logs(total / n, list(each / n))
                    if val is not None and np.isfinite(logs["loss"]):   # not after TerminateOnNaN
                        logs.update(self._loss_logs(*self._evaluate_arrays(val[0], val[1],
                                                                           batch_size), "val_"))
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

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """The loss on (x, y): the sample-weighted mean over batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D)
            A list or dict of arrays for a model with several inputs.
        y : array_like, shape of the output (or (N,) for output (N, 1))
            A list or dict of arrays for a model with several outputs.
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}
        return_dict : bool, default False

        Returns
        -------
        float, list or dict
            The loss; with several outputs, as Keras, ``[loss, <output>_loss,
            ...]`` (a dict with ``return_dict``).
        """
        self._require_compiled("evaluate")
        self._require_built("evaluate")
        batch_size = self._check_batch_size(batch_size)
        verbose = _resolve_verbose(verbose)
        x = self._check_x(x)
        y = self._check_y(y, x)
        logs = self._loss_logs(*self._evaluate_arrays(x, y, batch_size, verbose))
        if verbose == 2:
            print(" - ".join(f"{k}: {_format_value(v)}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else list(logs.values())

    def predict(self, x, batch_size=None, verbose="auto"):
        """Outputs for ``x``, computed in batches.

        Parameters
        ----------
        x : array_like of shape (N, T, D)
            A list or dict of arrays for a model with several inputs.
        batch_size : int, default 32
        verbose : {0, 1, 2, "auto"}
            1 shows a progress bar.

        Returns
        -------
        ndarray of shape (N, ...) in the model's dtype
            The output; a list (or dict, as the model's outputs were given)
            for several, e.g. ``[output, state]`` after ``return_state=True``.
        """
        self._require_built("predict")
        batch_size = self._check_batch_size(batch_size)
        verbose = _resolve_verbose(verbose)
        x = self._check_x(x)
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
