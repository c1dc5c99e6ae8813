"""Callbacks: hooks that ``fit`` calls between its compiled training calls.

Subclass :class:`Callback` and override any of ``on_train_begin/end``,
``on_epoch_begin/end`` and ``on_train_batch_begin/end`` (older names
``on_batch_begin/end``).  The ``logs`` are what Keras 3 passes:

- ``on_train_begin``, ``on_epoch_begin``, ``on_train_batch_begin``: ``{}``;
- ``on_train_batch_end``: ``{"loss": ...}``, the running mean over the
  epoch so far (and the metrics, likewise);
- ``on_epoch_end``: ``{"loss": ..., <metrics>, "val_loss": ..., ...}`` for
  the epoch (the loss is the sample-weighted mean of the batch losses).
  Callbacks may add to this dict (:class:`ReduceLROnPlateau` and
  :class:`LearningRateScheduler` add ``"learning_rate"``) and
  :class:`History`, which runs after every other callback, records it;
- ``on_train_end``: the last epoch's logs.

Setting ``self.model.stop_training = True`` ends training after the current
epoch.

Per-batch hooks cost a Python call per batch, and a model whose callbacks
want them trains one compiled call per batch instead of one per epoch; so
only callbacks that override a batch hook (or :class:`LambdaCallback` given
one, or :class:`ModelCheckpoint` with an integer ``save_freq``) ask for them:
see :attr:`CallbackList.wants_batches`.
"""
import collections.abc
import csv
import inspect
import math
import numbers
import os
import uuid
import warnings

import numpy as np

__all__ = [
    "Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
    "ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "LambdaCallback",
    "TerminateOnNaN", "ProgbarLogger",
]

class Callback:
    """Base class; every hook does nothing.  ``self.model`` is set by ``fit``.

    Attributes
    ----------
    model : fastrnn.Sequential
        The model being trained.
    params : dict
        ``fit``'s settings: ``epochs``, ``steps`` (batches per epoch),
        ``verbose`` (and, in fastrnn, ``batch_size`` and ``samples``).
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    # Keras's evaluate/predict hooks: present so that callbacks written for
    # Keras that define them work; fit does not call them.
    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass


def _overrides(callback, *names):
    """Whether ``callback`` replaces any of the hooks ``names``.

    A hook counts when the callback's class defines it differently from
    :class:`Callback` or the instance holds its own (as :class:`LambdaCallback`
    does).  A callback may narrow this with ``_wants_batch_hooks = False``.
    """
    if getattr(callback, "_wants_batch_hooks", True) is False:
        return False
    own = vars(callback)
    return any(n in own or getattr(type(callback), n) is not getattr(Callback, n)
               for n in names)


class CallbackList:
    """Fans each hook out to a list of callbacks (used by ``fit``).

    Parameters
    ----------
    callbacks : list of Callback
    model : the model being trained
    params : dict
        Passed to every callback's ``set_params``.

    Attributes
    ----------
    wants_batches : bool
        Whether any callback needs the per-batch hooks; when False, ``fit``
        may run a whole epoch in one compiled call and call neither.

    Notes
    -----
    :class:`History` callbacks are called after all others (Keras appends
    its own History last), so they record what other callbacks added to
    the epoch logs.  A hook's ``logs=None`` reaches the callbacks as ``{}``.
    """

    def __init__(self, callbacks, model, params):
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastrnn.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
        self.callbacks = ([cb for cb in callbacks if not isinstance(cb, History)]
                          + [cb for cb in callbacks if isinstance(cb, History)])
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self._batch_begin = [cb for cb in self.callbacks if _overrides(
            cb, "on_batch_begin", "on_train_batch_begin")]
        self._batch_end = [cb for cb in self.callbacks if _overrides(
            cb, "on_batch_end", "on_train_batch_end")]
        self.wants_batches = bool(self._batch_begin or self._batch_end)

    def on_train_begin(self, logs=None):
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        logs = {} if logs is None else logs
        for cb in self._batch_begin:
            cb.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        logs = {} if logs is None else logs
        for cb in self._batch_end:
            cb.on_train_batch_end(batch, logs=logs)

    def on_nonfinite_loss(self, batch, logs=None):
        """Ask the callbacks what to do about a loss that is NaN or infinite.

        ``fit`` calls this when a training step reports a non-finite loss or
        gradient (the compiled step then leaves the weights as they were).

        Returns
        -------
        bool
            True when a callback (:class:`TerminateOnNaN`) asked to stop
            training gracefully: ``fit`` should then end the epoch with
            these logs, call ``on_epoch_end`` and ``on_train_end`` and return.
            False: nothing handles it, and ``fit`` raises its error.
        """
        logs = {} if logs is None else logs
        handled = False
        for cb in self.callbacks:
            hook = getattr(cb, "on_nonfinite_loss", None)
            if hook is not None and hook(batch, logs):
                handled = True
        return handled


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]``, ``["val_loss"]``, ``history.epoch``.

    ``fit`` creates one and returns it.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


# -- monitoring a quantity -------------------------------------------------------------------

# Directions of Keras's built-in metric names (Keras reads them from the
# metric objects' ``_direction``; these cover the names its strings produce).
_HIGHER_IS_BETTER = frozenset({
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "prc", "precision", "recall",
    "cosine_similarity", "r2_score", "f1_score", "fbeta_score", "pearson_correlation",
    "concordance_correlation", "iou", "mean_iou", "binary_iou", "one_hot_iou",
    "one_hot_mean_iou", "precision_at_recall", "recall_at_precision",
    "sensitivity_at_specificity", "specificity_at_sensitivity",
})
_LOWER_IS_BETTER = frozenset({
    "loss", "mse", "mae", "mape", "msle", "mean_squared_error", "mean_absolute_error",
    "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
    "root_mean_squared_error", "rmse", "logcosh", "log_cosh", "huber",
    "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
    "binary_focal_crossentropy", "categorical_focal_crossentropy", "hinge", "squared_hinge",
    "categorical_hinge", "kl_divergence", "kld", "kullback_leibler_divergence", "poisson",
})


def _check_mode(mode, owner):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _direction_from_name(monitor):
    """"min"/"max" for a monitored name Keras knows the direction of, else None."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in _LOWER_IS_BETTER:
        return "min"
    if name in _HIGHER_IS_BETTER:
        return "max"
    return None


def _direction_from_model(monitor, model):
    """The direction a metric object of the model declares (Keras's ``_direction``)."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    pending = list(getattr(model, "metrics", None) or [])
    while pending:
        metric = pending.pop()
        inner = getattr(metric, "metrics", None)
        if isinstance(inner, (list, tuple)):
            pending.extend(inner)
        if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
            return "max" if metric._direction == "up" else "min"
    return None


def _resolve_direction(owner, monitor, mode, model):
    """Keras's MonitorCallback rule: "min"/"max" as given, else from the name or the metric."""
    if mode != "auto":
        return mode
    direction = _direction_from_model(monitor, model) or _direction_from_name(monitor)
    if direction is None:
        raise ValueError(f"{owner} callback received monitor={monitor}, but the direction of "
                         f"that metric cannot be determined automatically. Pass mode='max' "
                         f"to monitor the highest value or mode='min' for the lowest.")
    return direction


def _check_monitor(monitor, owner):
    if not isinstance(monitor, str):
        raise TypeError(f"{owner}: monitor must be a str, got {type(monitor).__name__}")
    return monitor


def _non_negative_int(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{owner}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def _finite_float(value, name, owner, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" and >= {minimum:g}" if minimum is not None else ""
        raise ValueError(f"{owner}: {name} must be finite{bound}, got {value}")
    return value


def _scalar(value):
    """A monitored value as a float, or None for an array with more than one element."""
    arr = np.asarray(value)
    return float(arr) if arr.ndim == 0 else None


class _Monitor:
    """Best-value bookkeeping shared by the callbacks that watch a quantity.

    ``_is_improvement(current, reference)`` is Keras's: ``current`` beats
    ``reference`` by more than ``min_delta`` in the monitored direction; a
    ``None`` reference is always beaten.
    """

    def __init__(self, owner, monitor, mode, min_delta):
        self.owner = owner
        self.monitor = _check_monitor(monitor, owner)
        mode = _check_mode(mode, owner)
        self.min_delta = abs(_finite_float(min_delta, "min_delta", owner))
        self.direction = mode if mode != "auto" else _direction_from_name(monitor)
        self.mode = mode

    def resolve(self, model):
        if self.direction is None:
            self.direction = _resolve_direction(self.owner, self.monitor, self.mode, model)
        return self.direction

    def is_improvement(self, current, reference):
        if reference is None:
            return True
        if self.direction == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference


class EarlyStopping(Callback):
    """Stop training when a monitored quantity has stopped improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        Key of the epoch logs to watch.
    min_delta : float, default 0
        A change smaller than this does not count as an improvement.
    patience : int, default 0
        Epochs without improvement after which training stops.
    verbose : int, default 0
        1 prints a message when training is stopped.
    mode : {"auto", "min", "max"}, default "auto"
        Whether lower or higher is better; "auto" decides from the name as
        Keras does (loss and error metrics: "min"; accuracy-like metrics:
        "max"; otherwise a ``ValueError`` at the first epoch's end).
    baseline : float, optional
        Training stops if the monitored value does not beat this within
        ``patience`` epochs.
    restore_best_weights : bool, default False
        At the end of training, put back the weights of the best epoch.
    start_from_epoch : int, default 0
        Epochs to wait before watching at all.

    Attributes
    ----------
    stopped_epoch : int
        The epoch training stopped after (0 if it ran to the end).
    best : float
    best_epoch : int

    Notes
    -----
    ``best`` starts afresh in every ``fit`` (Keras keeps it from an earlier
    ``fit`` of the same instance).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self._watch = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor = monitor
        self.min_delta = self._watch.min_delta
        self.patience = _non_negative_int(patience, "patience", "EarlyStopping")
        self.verbose = verbose
        self.baseline = (None if baseline is None
                         else _finite_float(baseline, "baseline", "EarlyStopping"))
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _non_negative_int(start_from_epoch, "start_from_epoch",
                                                  "EarlyStopping")
        self.mode = self._watch.direction or "auto"
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        self.mode = self._watch.resolve(self.model)
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs or {})}",
                          stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # the weights before any improvement are the best seen so far
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._watch.is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # only a value that also beats the baseline restarts the wait
            if self.baseline is None or self._watch.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the weights (or the model) during training, optionally only the best.

    Parameters
    ----------
    filepath : str or os.PathLike
        May hold ``str.format`` fields filled from ``epoch`` (1-based), the
        epoch logs (``"{epoch:02d}-{val_loss:.2f}.npz"``) and, with an int
        ``save_freq``, ``batch`` (1-based).  Missing folders are created.
        The suffix must be one the model's ``save_weights`` (or ``save``)
        accepts, e.g. ``.npz``.
    monitor : str, default "val_loss"
        What ``save_best_only`` compares.
    verbose : int, default 0
        1 prints a line for every decision, with Keras's wording.
    save_best_only : bool, default False
        Save only when the monitored value improves on the best so far (if
        it is missing from the logs, save anyway, with a warning, as Keras).
    save_weights_only : bool, default False
        True: ``model.save_weights(path)``.  False: ``model.save(path)``,
        which needs a model with a ``save`` method (checked when training
        begins).
    mode : {"auto", "min", "max"}, default "auto"
    save_freq : "epoch" or int, default "epoch"
        Save after every epoch, or after every ``save_freq`` batches (which
        makes ``fit`` call the batch hooks).
    initial_value_threshold : float, optional
        The best value to beat at the start.

    Notes
    -----
    A checkpoint is written to a temporary file in the same folder and then
    moved over ``filepath`` in one ``os.replace``, so an interrupted or
    failed save never leaves a half-written file and never destroys the
    previous checkpoint.  Keras requires ``.weights.h5``/``.keras``
    suffixes; here the model's save methods decide what they accept.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        try:
            self.filepath = os.fspath(filepath)
        except TypeError:
            raise TypeError(f"ModelCheckpoint: filepath must be a str or os.PathLike, got "
                            f"{type(filepath).__name__}") from None
        if not isinstance(self.filepath, str) or not self.filepath:
            raise ValueError(f"ModelCheckpoint: filepath must be a non-empty str path, got "
                             f"{filepath!r}")
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, numbers.Integral)
                                     or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: unrecognized save_freq: {save_freq!r}; expected "
                             f"'epoch' or an int >= 1")
        self._watch = _Monitor("ModelCheckpoint", monitor, mode, 0)
        self.monitor = monitor
        self.mode = mode
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.best = (None if initial_value_threshold is None else _finite_float(
            initial_value_threshold, "initial_value_threshold", "ModelCheckpoint"))
        self._wants_batch_hooks = self.save_freq != "epoch"
        self._current_epoch = 0
        self._batches_since_save = 0

    def on_train_begin(self, logs=None):
        method = "save_weights" if self.save_weights_only else "save"
        if not callable(getattr(self.model, method, None)):
            hint = ("" if self.save_weights_only else
                    "; pass save_weights_only=True to save the weights with save_weights()")
            raise TypeError(f"ModelCheckpoint(save_weights_only={self.save_weights_only}) saves "
                            f"with model.{method}(filepath), which "
                            f"{type(self.model).__name__} does not have{hint}")
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _file_path(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f'Reason: {e}') from None

    def _should_save(self, epoch, logs, path):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        self._watch.resolve(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        value = _scalar(current)
        if value is None:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=3)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._watch.is_improvement(value, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                      f"{value:.5f}, saving model to {path}")
            self.best = value
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save(self, epoch, batch, logs):
        path = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, path):
            return
        if os.path.isdir(path):
            raise IsADirectoryError(f"Please specify a non-directory filepath for "
                                    f"ModelCheckpoint. Filepath used is an existing "
                                    f"directory: {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        # Write next to the target under a unique name with the same suffix
        # (save methods check it), then swap it in atomically.
        tmp = os.path.join(folder, f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}-"
                                   f"{os.path.basename(path)}")
        try:
            if self.save_weights_only:
                self.model.save_weights(tmp)
            else:
                self.model.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {path}")


# -- the learning rate -----------------------------------------------------------------------

def _current_learning_rate(optimizer):
    """The optimizer's learning rate now, as a float (a schedule is evaluated at its step)."""
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    lr = optimizer.learning_rate
    if callable(lr):
        lr = lr(getattr(optimizer, "iterations", 0))
    return float(np.asarray(lr))


def _set_learning_rate(optimizer, value, owner):
    if callable(getattr(optimizer, "learning_rate", None)):
        raise TypeError(f"{owner}: this optimizer was created with a LearningRateSchedule as "
                        f"its learning_rate, hence its learning rate is not settable")
    optimizer.learning_rate = value


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a monitored quantity has stopped improving.

    After ``patience`` epochs without an improvement larger than
    ``min_delta``, ``lr = max(lr * factor, min_lr)``; then ``cooldown``
    epochs pass before counting again.  Adds ``"learning_rate"`` (the rate
    used in the epoch, before any reduction) to the epoch logs.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        In [0, 1).
    patience : int, default 10
    verbose : int, default 0
        1 prints a line when the rate is reduced.
    mode : {"auto", "min", "max"}, default "auto"
    min_delta : float, default 1e-4
    cooldown : int, default 0
    min_lr : float, default 0.0
        The rate is never reduced below this (and not at all once at or below
        it).
    **kwargs
        Accepted and ignored with a warning (Keras accepts and ignores them).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        owner = "ReduceLROnPlateau"
        if kwargs:
            warnings.warn(f"{owner}: ignoring unknown arguments {sorted(kwargs)}", stacklevel=2)
        self._watch = _Monitor(owner, monitor, mode, min_delta)
        self.monitor = monitor
        self.mode = mode
        self.min_delta = self._watch.min_delta
        self.factor = _finite_float(factor, "factor", owner, minimum=0.0)
        if self.factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received "
                             f"factor={factor}")
        self.patience = _non_negative_int(patience, "patience", owner)
        self.cooldown = _non_negative_int(cooldown, "cooldown", owner)
        self.min_lr = _finite_float(min_lr, "min_lr", owner, minimum=0.0)
        self.verbose = verbose
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        self._watch.resolve(self.model)
        logs = {} if logs is None else logs
        optimizer = self.model.optimizer
        logs["learning_rate"] = _current_learning_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._watch.is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _current_learning_rate(optimizer)
                # Keras compares with min_lr rounded to float32, its variables' type
                if old_lr > float(np.float32(self.min_lr)):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    _set_learning_rate(optimizer, new_lr, "ReduceLROnPlateau")
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def _takes_two_arguments(fn):
    """Whether ``fn(epoch, lr)`` is a valid call (else Keras's old form ``fn(epoch)``)."""
    try:
        inspect.signature(fn).bind(0, 0.0)
        return True
    except TypeError:
        return False
    except ValueError:   # no signature available (some builtins): try the new form
        return True


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule(epoch, lr)``.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new lr`` (epoch counted from 0, ``lr`` the
        current rate as a float); a one-argument ``schedule(epoch)`` is
        accepted too, as Keras does.  It must return a float (Python or
        NumPy), finite and >= 0.
    verbose : int, default 0
        1 prints the rate set at every epoch.

    Notes
    -----
    Adds ``"learning_rate"`` to the epoch logs.  Keras tells the two forms
    apart by retrying after any ``TypeError``; here the schedule's signature
    decides, so a ``TypeError`` raised inside it is not masked.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose
        self._two_arguments = _takes_two_arguments(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        current = _current_learning_rate(optimizer)
        lr = self.schedule(epoch, current) if self._two_arguments else self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr[()]
        if isinstance(lr, bool) or not isinstance(lr, (float, np.floating)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {lr!r}")
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr} at epoch "
                             f"{epoch}; a learning rate must be finite and >= 0")
        _set_learning_rate(optimizer, float(lr), "LearningRateScheduler")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_learning_rate(self.model.optimizer)


# -- logging and plumbing --------------------------------------------------------------------

class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` and the epoch logs) to a CSV file.

    Parameters
    ----------
    filename : str or os.PathLike
    separator : str, default ","
    append : bool, default False
        Append to an existing file (no second header if it has one) rather
        than overwrite it.

    Notes
    -----
    As in Keras: the columns are ``epoch`` and the first epoch's log keys,
    sorted; if none of those starts with ``val_``, a ``val_`` column is
    added for each (``NA`` where missing); array values are written as
    ``"[a, b]"``; lines end in ``\\r\\n``.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            raise TypeError(f"CSVLogger: filename must be a str or os.PathLike, got "
                            f"{type(filename).__name__}") from None
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be a one-character str, got "
                             f"{separator!r}")
        self.sep = separator
        self.append = bool(append)
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    @staticmethod
    def _cell(value):
        if isinstance(value, str):
            return value
        if isinstance(value, collections.abc.Iterable) and not (
                isinstance(value, np.ndarray) and value.ndim == 0):
            return f'"[{", ".join(map(str, value))}]"'
        return value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self.writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, self._cell(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class LambdaCallback(Callback):
    """A callback made of plain functions.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end : callable, optional
        ``f(epoch, logs)``.
    on_train_begin, on_train_end : callable, optional
        ``f(logs)``.
    on_train_batch_begin, on_train_batch_end : callable, optional
        ``f(batch, logs)`` (``logs`` is passed by keyword).  Giving either
        makes ``fit`` call the batch hooks (one compiled call per batch).
    **kwargs
        Any other hook, e.g. ``on_batch_end=f``, set as given (as Keras).
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if name.startswith("on_") and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got "
                                f"{type(fn).__name__}")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Parameters
    ----------
    raise_error : bool, default False
        Raise a ``RuntimeError`` instead of stopping gracefully (then
        ``on_train_end`` is not called), as Keras's option.

    Notes
    -----
    Keras checks every batch's loss.  fastrnn's compiled training step
    already refuses a non-finite loss or gradient (leaving the weights as
    they were before that batch); ``fit`` then asks the callbacks through
    :meth:`CallbackList.on_nonfinite_loss`, and this callback answers
    "stop", printing Keras's ``Batch N: Invalid loss, terminating
    training`` (without it, ``fit`` raises
    :class:`fastrnn.errors.NonFiniteTrainingError`).  It also checks the
    epoch's loss at its end.  It does not ask for the per-batch hooks, so
    the fast path is kept.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_nonfinite_loss(self, batch, logs=None):
        loss = (logs or {}).get("loss", float("nan"))
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
        return True

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and _scalar(loss) is not None and not math.isfinite(_scalar(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered in epoch {epoch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            print(f"Epoch {epoch}: Invalid loss, terminating training")
            self.model.stop_training = True


class ProgbarLogger(Callback):
    """Accepted for Keras compatibility; ``fit``'s ``verbose`` already draws the progress.

    In Keras this callback is the progress bar; fastrnn's ``fit`` shows its
    own (``verbose=1``: a bar per epoch, ``2``: a line per epoch), so this
    one does nothing and does not slow training down.
    """
