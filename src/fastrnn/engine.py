"""Lowering a model to the compiled engine, and running it.

A model is a graph of layer calls; :func:`lower` turns it into the engine's
plan (see :mod:`fastrnn._engine`): one int64 row per node with its kind,
where its inputs are in the input table, activation code, flags, width,
fixed time steps, the offsets of its weights in the model's flat ``params``
and one int and one float argument of its kind, plus the input table and
the output nodes.  Layers describe their node with ``_node()``; the model
fills in the graph (which nodes feed which) and the weight offsets.

:class:`Runner` keeps, for one model, the plan and the engines made from
it: one for training (used by one ``fit`` at a time, under the model's lock)
and one per thread for prediction, each re-lowered only when the structure,
dtype or buffers change.  Every model fastrnn can build trains and predicts
through this one path.

BLAS threads and floating-point flags are left alone: the engine changes no
process-wide or thread-wide state.  (OpenBLAS's ``openblas_set_num_threads_local``
looked like a per-thread setting, but in the pthreads builds NumPy and SciPy
ship it changes the count for every thread: measured, a worker thread's call
changed what the main thread saw.)  OpenBLAS already runs small products on
one thread by itself.
"""
import threading
from dataclasses import dataclass

import numpy as np

from . import _engine, _kernels

__all__ = ["Plan", "lower", "Runner"]


@dataclass(frozen=True)
class Plan:
    """A lowered model: what :class:`fastrnn._engine.Engine` takes.

    Attributes
    ----------
    plan : ndarray of int64, shape (n_nodes, PLAN_FIELDS)
    inputs : ndarray of int64
        The input table: node by node, the nodes feeding it.
    outputs : ndarray of int64
        The model's output nodes, in order.
    widths : tuple of int
        Each node's output features (for work-size estimates).
    states : tuple of (object, int, int)
        For each stateful recurrent node, in node order: the layer that owns
        its state, the fixed batch size and the width (see :meth:`Runner.states`).
    """
    plan: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    widths: tuple
    states: tuple = ()

    @property
    def state_batch_size(self):
        """The batch size every batch must have (stateful nodes), or None."""
        return self.states[0][1] if self.states else None

    def floats_per_sample(self, steps):
        """A generous estimate of the work floats one sample of ``steps`` steps takes."""
        return max(1, steps) * (4 * sum(self.widths) + 1)


def lower(nodes, outputs):
    """The engine plan of a graph of nodes in topological order.

    Parameters
    ----------
    nodes : list of dict
        One per node.  Keys: ``kind`` (a key of ``_engine.KINDS``), ``inputs``
        (indices of earlier nodes, in the order the node takes them),
        ``width`` (output features), ``seq`` (the output has a time axis);
        optional: ``activation`` (a Keras name, default "linear"),
        ``backwards``, ``input_order`` (a backwards sequence output in input
        order), ``masked`` (an embedding: mask_zero; see ``_engine._mask_rule``
        for how masks flow), ``zero_masked`` (a recurrent node's returned
        sequence is 0 at masked steps), ``steps`` (fixed output steps, 0 = from
        the inputs),
        ``p0``/``p1``/``p2`` (absolute weight offsets in ``params``, -1 for
        none), ``arg`` (int), ``real`` and ``real2`` (float); ``stateful``
        (a recurrent node) with ``state_owner`` (the layer holding its state,
        ``_state_array(batch, dtype)``) and ``batch`` (the fixed batch size).
    outputs : list of int
        The output nodes.

    Returns
    -------
    Plan
    """
    plan = np.full((len(nodes), _engine.PLAN_FIELDS), -1, dtype=np.int64)
    table = []
    F = _engine.FIELDS
    for i, node in enumerate(nodes):
        row = plan[i]
        row[F["kind"]] = _engine.KINDS[node["kind"]]
        row[F["in"]] = len(table)
        row[F["n_in"]] = len(node["inputs"])
        table.extend(int(j) for j in node["inputs"])
        row[F["act"]] = _kernels.ACTIVATION_CODES[node.get("activation") or "linear"]
        row[F["flags"]] = ((_engine.FLAGS["seq"] if node["seq"] else 0)
                           | (_engine.FLAGS["backwards"] if node.get("backwards") else 0)
                           | (_engine.FLAGS["input_order"] if node.get("input_order") else 0)
                           | (_engine.FLAGS["masked"] if node.get("masked") else 0)
                           | (_engine.FLAGS["stateful"] if node.get("stateful") else 0)
                           | (_engine.FLAGS["zero_masked"] if node.get("zero_masked") else 0))
        row[F["width"]] = node["width"]
        row[F["steps"]] = node.get("steps", 0)
        for key in ("p0", "p1", "p2"):
            row[F[key]] = node.get(key, -1)
        row[F["arg"]] = node.get("arg", 0)
        for key in ("real", "real2"):
            row[F[key]] = np.array([node.get(key, 0.0)], np.float64).view(np.int64)[0]
    states = tuple((node["state_owner"], node["batch"], int(node["width"]))
                   for node in nodes if node.get("stateful"))
    if len({batch for _, batch, _ in states}) > 1:
        raise ValueError(f"the stateful layers are built for different batch sizes "
                         f"{sorted({batch for _, batch, _ in states})}; a model has one")
    return Plan(plan, np.array(table, dtype=np.int64), np.array(outputs, dtype=np.int64),
                tuple(int(node["width"]) for node in nodes), states)


class Runner:
    """The engines of one model: training (one at a time) and prediction (one per thread).

    Parameters
    ----------
    plan : Plan
        From :func:`lower`.
    params, grads : ndarray of shape (P,)
        The model's flat buffers.
    """

    def __init__(self, plan, params, grads):
        self.plan = plan
        self.params = params
        self.grads = grads
        self._trainer = None
        self._trainer_key = None
        self._last_losses = (None, None, (), (), [])
        self._predictors = {}

    def _new_engine(self, grads=None, inference=False):
        p = self.plan
        engine = _engine.Engine(p.plan, p.inputs, p.outputs, self.params,
                                self.grads if grads is None else grads, inference=inference)
        if p.states:
            engine.set_states(self.states())
        return engine

    def states(self):
        """The state buffers of the stateful recurrent nodes, (batch, width) each, in
        node order: owned by their layers (``reset_states`` zeroes them in place), shared
        by every engine of this runner (calls run under the model's lock)."""
        return [owner._state_array(batch, self.params.dtype)
                for owner, batch, _ in self.plan.states]

    def trainer(self, loss, optimizer, loss_weights=None):
        """The training engine, configured for ``loss`` and ``optimizer`` (built).

        ``loss`` is one loss for every output or a list of one per output;
        ``loss_weights`` a list of one weight per output (default 1).
        Re-configured only when the losses, the optimizer object, its settings
        or its state buffer changed (e.g. ``compile`` from a callback).
        """
        if loss is not self._last_losses[0] or loss_weights is not self._last_losses[1]:
            n_out = len(self.plan.outputs)
            losses = list(loss) if isinstance(loss, (list, tuple)) else [loss] * n_out
            weights = (tuple([1.0] * n_out) if loss_weights is None
                       else tuple(float(w) for w in loss_weights))
            names = tuple(item._engine_key() for item in losses)
            self._last_losses = (loss, loss_weights, names, weights, losses)
        names, weights = self._last_losses[2:4]
        hyper = {"beta_1": 0.0, "beta_2": 0.0, "epsilon": 1e-7, "momentum": 0.0, "rho": 0.0,
                 "weight_decay": optimizer.weight_decay or 0.0, "flag": 0.0}
        hyper.update(optimizer._hyper())
        clip, clip_value = optimizer._clip()
        key = (names, weights, id(optimizer), tuple(sorted(hyper.items())), clip,
               clip_value, id(optimizer.state), id(optimizer._counter), optimizer._layout)
        if self._trainer is None:
            self._trainer = self._new_engine()
        if key != self._trainer_key:
            values = [0.0] * _engine.N_HYPERPARAMETERS
            for name, value in hyper.items():
                values[_engine.HYPER[name]] = value
            self._trainer.set_loss_weights(weights)
            for k, item in enumerate(self._last_losses[4]):
                self._trainer.set_loss(**item._engine_config(), output=k)
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
