"""``train_on_batch``, ``test_on_batch``, ``predict_on_batch``: one batch, one call; and
the weight regularizers' part of training (their segments on the engine, the penalty
``evaluate`` adds, ``model.losses``).

Keras programs with their own training loop call these.  As in Keras 3,
each call reports the loss and metrics of its batch alone (the metrics are
reset at every call), and the loss of ``train_on_batch`` is the one computed
before the weights are updated.
"""
import numpy as np

from ..layers.layer import TRAINABLE_CHANGES

__all__ = ["BatchMethods"]


def _results(logs, return_dict):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


class BatchMethods:
    """Mixed into :class:`fastrnn.trainers.Trainer`."""

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One training step (forward, loss, backward, update) on one batch.

        Parameters
        ----------
        x : array_like of shape (B, ...), or a list/dict for several inputs
        y : array_like, the targets of the batch
        sample_weight : array_like of shape (B,) or (B, T), optional
        class_weight : dict, optional
        return_dict : bool, default False

        Returns
        -------
        float, list or dict
            The batch's loss (before the update) alone when there are no
            metrics, else ``[loss, *metrics]``; ``{name: value}`` with
            ``return_dict=True``.
        """
        self._require_compiled("train on a batch")
        xa, ya, wa = self._prepare(x, y, sample_weight, class_weight)
        engine = self._trainer()
        state = self._compile_state
        if state.engine_specs:
            engine.reset_metrics()
        python = bool(state.python_entries)
        if python:
            self._reset_python_metrics()
        out = ([np.empty(s, self.dtype) for s in self._concrete_output_shapes(
            [a.shape for a in xa])] if python else None)
        loss = self._train_batch(xa, ya, wa, out)
        if python:
            self._update_python_metrics(ya[0], out[0], None if wa is None else wa[0])
        logs = self._loss_logs(loss, list(np.atleast_1d(self._last_output_losses)))
        if state.engine_specs or python:
            self._metric_logs(engine, logs)
        return _results(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss and metrics of one batch (no update), as ``evaluate`` on it alone.

        Returns
        -------
        float, list or dict
            As :meth:`train_on_batch`.
        """
        self._require_compiled("test on a batch")
        n = len(next(iter(x.values()))) if isinstance(x, dict) else (
            len(x[0]) if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape")
            else len(x))
        return self.evaluate(x, y, batch_size=max(1, n), sample_weight=sample_weight,
                             verbose=0, return_dict=return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch (NumPy arrays), as ``predict`` on it alone."""
        n = len(next(iter(x.values()))) if isinstance(x, dict) else (
            len(x[0]) if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape")
            else len(x))
        return self.predict(x, batch_size=max(1, n), verbose=0)

    # -- weight regularizers (fastrnn.regularizers) -------------------------------------
    def _regularizer_segments(self):
        """(offsets, lengths, l1, l2) of the regularized trainable weights, cached per
        runner and per set of frozen weights (a frozen weight adds no penalty, as Keras)."""
        runner = self._engine_runner
        frozen = self._frozen_key()
        cached = getattr(runner, "_regularizer_segments", None)
        if cached is None or cached[0] != frozen:
            from ..regularizers import model_segments
            cached = (frozen, _without(model_segments(self), frozen))
            if runner is not None:
                runner._regularizer_segments = cached
        return cached[1]

    def _configure_regularizers(self, engine, runner=None):
        """The regularizers' segments on the training engine of ``runner`` (default:
        the model's own; set when they change)."""
        segments = self._regularizer_segments()
        runner = self._engine_runner if runner is None else runner
        if getattr(runner, "_regularizers_engine", None) != (engine, segments):
            engine.set_regularizers(*segments)
            runner._regularizers_engine = (engine, segments)

    # -- frozen weights (trainable = False) ---------------------------------------------
    def _frozen_key(self):
        """(offsets, lengths) of the frozen weights in params, as tuples (hashable)."""
        if not self.built:
            return ((), ())
        stamp = (TRAINABLE_CHANGES[0], self._claimed_at, id(self.params))
        cached = getattr(self, "_frozen_cache", None)
        if cached is None or cached[0] != stamp:
            offsets, lengths = self._frozen_segments()
            cached = (stamp, (tuple(offsets), tuple(lengths)))
            self._frozen_cache = cached
        return cached[1]

    def _configure_frozen(self, engine, runner=None):
        """The frozen segments on the training engine of ``runner`` (default: the
        model's own), read at every training call (a change of ``trainable`` takes
        effect at the next ``fit``/``train_on_batch``)."""
        frozen = self._frozen_key()
        runner = self._engine_runner if runner is None else runner
        if getattr(runner, "_frozen_engine", None) != (engine, frozen):
            engine.set_frozen(*frozen)
            runner._frozen_engine = (engine, frozen)

    def _penalty(self):
        """The regularizers' penalty at the current weights (0.0 without regularizers)."""
        offsets, lengths, l1, l2 = self._regularizer_segments()
        total = 0.0
        for off, n, a, q in zip(offsets, lengths, l1, l2):
            w = self.params[off:off + n].astype(np.float64)
            total += a * float(np.abs(w).sum()) + q * float(np.square(w).sum())
        return total

    @property
    def losses(self):
        """The penalty of each regularized weight, as Keras's ``model.losses`` (a list)."""
        from ..regularizers import model_losses
        return model_losses(self) if self.built else []

    def reset_metrics(self):
        """Reset the compiled metrics' running totals (each ``*_on_batch`` call does it too)."""
        runner = getattr(self, "_engine_runner", None)
        state = getattr(self, "_compile_state", None)
        if state is not None and state.python_entries:
            self._reset_python_metrics()
        engine = getattr(runner, "_metrics_key", (None,))[0] if runner is not None else None
        if engine is not None:
            engine.reset_metrics()


def _without(segments, frozen):
    """The regularizer ``segments`` (offsets, lengths, l1, l2) outside the ``frozen``
    (offsets, lengths) ranges (a regularized weight is frozen whole or not at all)."""
    offsets, lengths, l1, l2 = segments
    if not frozen[0]:
        return segments
    ranges = list(zip(*frozen))
    keep = [k for k, off in enumerate(offsets)
            if not any(a <= off < a + n for a, n in ranges)]
    return ([offsets[k] for k in keep], [lengths[k] for k in keep], [l1[k] for k in keep],
            [l2[k] for k in keep])
