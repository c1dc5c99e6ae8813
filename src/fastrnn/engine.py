"""Lowering a model to the compiled engine, and running it.

``lower(layers, input_shape, offsets)`` turns a chain of built layers into
the engine's plan (see :mod:`fastrnn._engine`): one int64 row per layer with
its kind, activation code, flags, sizes and the offsets of its weights in the
model's flat ``params``.  :class:`Runner` keeps, for one model, the plan and
the engines made from it: one for training (used by one ``fit`` at a time,
under the model's lock) and one per thread for prediction, each re-lowered
only when the structure, dtype or buffers change.  Every model fastrnn can
build trains and predicts through this one path.

BLAS threads and floating-point flags are left alone: the engine changes no
process-wide or thread-wide state.  (OpenBLAS's ``openblas_set_num_threads_local``
looked like a per-thread setting, but in the pthreads builds NumPy and SciPy
ship it changes the count for every thread: measured, a worker thread's call
changed what the main thread saw.)  OpenBLAS already runs small products on
one thread by itself.
"""
import threading

import numpy as np

from . import _engine, _kernels

__all__ = ["lower", "Runner"]


def lower(layers, input_shape, offsets):
    """The engine plan of a chain of built layers.

    Parameters
    ----------
    layers : list of fastrnn.layers.Layer
        Built, in order; each describes its node with ``_node()``.
    input_shape : tuple
        The model's input shape with the batch axis, e.g. ``(None, T, D)``.
    offsets : list of int
        Offset of each layer's first weight in the flat ``params``.

    Returns
    -------
    plan : ndarray of int64, shape (len(layers), PLAN_FIELDS)
    signature : tuple
        ``(input_dim, output_units, seq_in, seq_out)`` of the whole model.
    """
    seq = len(input_shape) == 3
    plan = np.full((len(layers), _engine.PLAN_FIELDS), -1, dtype=np.int64)
    din = input_shape[-1]
    for i, (layer, base) in enumerate(zip(layers, offsets)):
        node = layer._node()
        kind = _engine.KINDS[node["kind"]]
        seq_out = node.get("seq_out", seq)
        flags = ((_engine.FLAGS["seq_in"] if seq else 0)
                 | (_engine.FLAGS["seq_out"] if seq_out else 0)
                 | (_engine.FLAGS["backwards"] if node.get("backwards") else 0))
        weights = {name: base + off for name, off in layer._weight_offsets().items()}
        plan[i] = (kind, i - 1, _kernels.ACTIVATION_CODES[node["activation"]], flags, din,
                   node["units"], weights["kernel"], weights.get("recurrent_kernel", -1),
                   weights.get("bias", -1))
        din, seq = node["units"], seq_out
    return plan, (int(input_shape[-1]), int(din), len(input_shape) == 3, seq)


class Runner:
    """The engines of one model: training (one at a time) and prediction (one per thread).

    Parameters
    ----------
    plan, signature
        From :func:`lower`.
    params, grads : ndarray of shape (P,)
        The model's flat buffers.
    """

    def __init__(self, plan, signature, params, grads):
        self.plan = plan
        self.signature = signature
        self.params = params
        self.grads = grads
        self._trainer = None
        self._trainer_key = None
        self._predictors = {}

    def _new_engine(self, grads=None, inference=False):
        return _engine.Engine(self.plan, self.params, self.grads if grads is None else grads,
                              *self.signature, inference=inference)

    def trainer(self, loss, optimizer):
        """The training engine, configured for ``loss`` and ``optimizer`` (built).

        Re-configured only when the loss, the optimizer object, its settings
        or its state buffer changed (e.g. ``compile`` from a callback).
        """
        hyper = {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 1e-7, "momentum": 0.0, "rho": 0.0,
                 "weight_decay": optimizer.weight_decay or 0.0, "flag": 0.0}
        hyper.update(optimizer._hyper())
        clip, clip_value = optimizer._clip()
        key = (loss._engine_key(), id(optimizer), tuple(sorted(hyper.items())), clip, clip_value,
               id(optimizer.state), id(optimizer._counter), optimizer._layout)
        if self._trainer is None:
            self._trainer = self._new_engine()
        if key != self._trainer_key:
            values = [0.0] * _engine.N_HYPERPARAMETERS
            for name, value in hyper.items():
                values[_engine.HYPER[name]] = value
            self._trainer.set_loss(**loss._engine_config())
            self._trainer.set_optimizer(_engine.OPTIMIZERS[optimizer._engine_name], values,
                                        optimizer.state, len(optimizer._slots()),
                                        _engine.CLIPS[clip], clip_value,
                                        list(optimizer._layout[2]), optimizer._counter)
            self._trainer_key = key
        return self._trainer

    def predictor(self):
        """This thread's prediction engine (its own work buffers; never writes params)."""
        tid = threading.get_ident()
        engine = self._predictors.get(tid)
        if engine is None:
            if len(self._predictors) >= 64:     # threads come and go: forget old ones
                self._predictors = {}
            # no gradient buffers (half the memory for long sequences); a private
            # grads buffer: prediction never touches the model's
            engine = self._new_engine(grads=np.zeros(self.params.size, self.params.dtype),
                                      inference=True)
            self._predictors[tid] = engine
        return engine
