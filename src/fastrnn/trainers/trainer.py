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

What a model provides: ``_layers``, ``_input_shape``, ``params``, ``grads``,
``param_layout``, ``_layer_offsets``, ``_lock``, ``built``, ``dtype``,
``build``, ``_require_built`` and ``_concrete_output_shape``.
"""
import sys
import time

import numpy as np

from .. import _engine, initializers, losses, optimizers
from ..callbacks import Callback, CallbackList, History
from ..engine import Runner, lower
from ..errors import NonFiniteTrainingError
from ..layers import _last_state, _shape_str

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


class Trainer:
    """compile / fit / evaluate / predict on the compiled engine (mixed into models)."""

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
            loss = engine.train_step(x, y, lr)
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
        # Several epochs in one compiled call when nothing runs between epochs:
        # no callbacks (but the History), no validation, nothing printed.
        several_epochs = (whole_epochs and verbose == 0 and val is None and not callbacks
                          and epochs - initial_epoch > 1)
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
