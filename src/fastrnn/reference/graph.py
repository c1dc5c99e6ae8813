"""A whole functional model in NumPy: forward, losses, hand-written backward, training.

The oracle the compiled engine is tested against for graphs (several
inputs and outputs, merges, shared tensors).  A model is a dict::

    {"nodes": [{"kind": "input", "index": 0},
               {"kind": "simple_rnn", "inputs": [0], "units": 4},
               {"kind": "dense", "inputs": [1], "units": 1}, ...],
     "outputs": [2]}

Nodes come in topological order; ``inputs`` are indices of earlier nodes;
a model input is a node of kind ``input`` whose ``index`` is its position
in the list of arrays.  Weights are the flat list of every node's weights
in node order (per node in Keras's order, as in :mod:`.model`).  Kinds and
their keys (defaults as Keras's):

- ``simple_rnn``: units, activation="tanh", use_bias=True,
  return_sequences=False, go_backwards=False, dropout=0, recurrent_dropout=0,
  seed (training only: one mask per sequence, see :func:`_rnn_dropout_masks`),
  input_order=False (a backwards returned sequence in input order, as inside
  Keras's Bidirectional), zero_output_for_mask=False (a returned sequence is 0
  at masked steps); a second input is the initial state (B, H)
- ``dense``: units, activation="linear", use_bias=True (acts on every step)
- ``activation``: activation
- ``dropout``: rate, seed (training only; see :func:`.layers.dropout_mask`)
- ``flatten``; ``reshape``: target_shape (no batch axis, one -1 allowed)
- ``repeat_vector``: n
- ``global_pool``: mode="max" or "average": (B, T, F) -> (B, F) over the steps
  (the maximum's gradient shared equally among the steps that reach it, as JAX)
- ``scale``: factor=1, offset=0: ``factor * x + offset`` elementwise (a Lambda)
- ``concatenate``: axis=-1; ``add``; ``subtract``; ``multiply``; ``average``
- ``embedding``: input_dim, output_dim, mask_zero=False (its input is integers,
  (B, L); with mask_zero index 0 masks the step)
- ``last_step``: (B, T, F) -> (B, F), a recurrent layer's final state
- ``masking``: mask_value=0 (Keras's Masking)

Masks flow as Keras 3's ``compute_mask`` passes them (see :func:`_out_mask`):
``masking`` and ``embedding`` with mask_zero make a (B, T) step mask, the
layers that support masking pass it on, a ``simple_rnn`` skips the masked
steps of its input (the recurrence oracle: the state carried) and passes the
mask on with return_sequences; every trace record keeps ``out_mask``.

The training loss is ``sum_o loss_weights[o] * loss_o`` (Keras's total);
each loss is the mean over its output's elements ("mse" or "mae"), over the
kept steps only when the output has a mask (Keras's ``apply_mask``).
"""
import numpy as np

from . import layers as L
from . import losses as reference_losses
from . import recurrence as R
from .activations import activate, activation_grad, canonical_activation
from .kernels import dense_backward, dense_forward, mae, mse
from .model import simple_rnn_backward, simple_rnn_forward
from .optimizers import apply_gradients, init_state

__all__ = ["GRAPH_KINDS", "forward", "loss_and_gradients", "train"]

GRAPH_KINDS = ("input", "simple_rnn", "dense", "activation", "dropout", "flatten", "reshape",
               "repeat_vector", "concatenate", "add", "subtract", "multiply", "average",
               "embedding", "last_step", "masking", "global_pool", "scale")
_LOSSES = {"mse": mse, "mae": mae}
_LOSS_NAMES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}
_MERGES = ("add", "subtract", "multiply", "average")


def _reshape_target(input_shape, target):
    """Keras's reshape of a sample of ``input_shape`` to ``target`` (one -1 allowed)."""
    size = int(np.prod(input_shape))
    target = list(target)
    if -1 in target:
        known = int(np.prod([t for t in target if t != -1]))
        target[target.index(-1)] = size // known
    if int(np.prod(target)) != size:
        raise ValueError(f"cannot reshape {input_shape} into {tuple(target)}")
    return tuple(target)


def _weights_of(node, input_shape):
    """Shapes of a node's weights for an input of ``input_shape`` (with the batch axis)."""
    kind = node["kind"]
    if kind == "simple_rnn":
        D, H = input_shape[-1], node["units"]
        return [(D, H), (H, H)] + ([(H,)] if node.get("use_bias", True) else [])
    if kind == "dense":
        D, U = input_shape[-1], node["units"]
        return [(D, U)] + ([(U,)] if node.get("use_bias", True) else [])
    if kind == "embedding":
        return [(node["input_dim"], node["output_dim"])]
    return []


def forward(graph, weights, xs, training=False, counters=None):
    """Run the model.

    Parameters
    ----------
    graph : dict
    weights : list of ndarray
        Every node's weights, in node order.
    xs : list of ndarray
        One array per model input.
    training : bool
        Apply dropout.
    counters : dict, optional
        Node index -> how many numbers that dropout node drew before (default 0).

    Returns
    -------
    outputs : list of ndarray
    trace : list of dict
        Per node: ``"out"``, the ``"inputs"`` it read, and what its backward
        needs (``z``/``h`` for recurrent and Dense nodes, ``mask`` for dropout,
        ``weights``).
    """
    counters = counters or {}
    nodes = graph["nodes"]
    weights = [np.asarray(w) for w in weights]
    position = 0
    trace = []
    for i, node in enumerate(nodes):
        kind = node["kind"]
        if kind not in GRAPH_KINDS:
            raise ValueError(f"node {i}: unknown kind {kind!r}")
        if kind == "input":
            trace.append({"out": np.asarray(xs[node["index"]]), "inputs": [],
                          "out_mask": None})
            continue
        ins = [trace[j]["out"] for j in node["inputs"]]
        x = ins[0]
        shapes = _weights_of(node, x.shape)
        own = weights[position:position + len(shapes)]
        if [w.shape for w in own] != shapes:
            raise ValueError(f"node {i} ({kind}): weights of shapes {shapes} expected, got "
                             f"{[w.shape for w in own]}")
        position += len(shapes)
        rec = {"inputs": ins, "weights": own}
        if kind == "simple_rnn":
            act = canonical_activation(node.get("activation", "tanh"))
            bias = own[2] if len(own) == 3 else None
            backwards = node.get("go_backwards", False)
            masks = _rnn_dropout_masks(node, x.shape, own[1].shape[0], counters.get(i, 0),
                                       x.dtype) if training else None
            h0 = ins[1] if len(ins) > 1 else None       # initial_state
            # its input's mask: the masked steps are skipped
            step_mask = trace[node["inputs"][0]]["out_mask"]
            if masks is None and h0 is None and step_mask is None:
                z, h = simple_rnn_forward(x, own[0], own[1], bias, act, backwards)
                rec.update(z=z, h=h)
            else:   # Keras's dropout masks, one per sequence, h0 (the recurrence oracle)
                masks = masks or (None, None)
                h = R.recurrence_forward(x, own[0], own[1], bias, h0, act, step_mask,
                                         backwards, *masks)
                h = h[:, ::-1] if backwards else h
                rec.update(h=h, masks=masks, step_mask=step_mask)
            if not node.get("return_sequences", False):
                rec["out"] = h[:, -1]
            else:   # input_order: a backwards sequence back in input order (Bidirectional)
                if step_mask is not None and node.get("zero_output_for_mask"):
                    # processing order, as h: 0 where the step processed is masked
                    rec["zero"] = (step_mask[:, ::-1] if backwards else step_mask)[..., None]
                    h = h * rec["zero"]
                rec["out"] = h[:, ::-1] if backwards and node.get("input_order") else h
        elif kind == "dense":
            act = canonical_activation(node.get("activation", "linear"))
            z = dense_forward(x, own[0], own[1] if len(own) == 2 else 0)
            rec.update(z=z, h=activate(act, z), out=activate(act, z))
        elif kind == "activation":
            rec["out"] = L.activation_forward(x, canonical_activation(node["activation"]))
        elif kind == "dropout":
            if training and node["rate"] > 0:
                rec["mask"] = L.dropout_mask(x.shape, node["rate"], node["seed"],
                                             counters.get(i, 0), x.dtype)
                rec["out"] = x * rec["mask"]
            else:
                rec["out"] = x
        elif kind == "flatten":
            rec["out"] = L.reshape_forward(x, (int(np.prod(x.shape[1:])),))
        elif kind == "reshape":
            rec["out"] = L.reshape_forward(x, _reshape_target(x.shape[1:], node["target_shape"]))
        elif kind == "repeat_vector":
            rec["out"] = L.repeat_vector_forward(x, node["n"])
        elif kind == "concatenate":
            rec["out"] = L.concatenate_forward(ins, node.get("axis", -1))
        elif kind in _MERGES:
            rec["out"] = L.merge_forward(kind, ins)
        elif kind == "last_step":
            rec["out"] = x[:, -1]
        elif kind == "global_pool":
            in_mask = trace[node["inputs"][0]]["out_mask"]
            if node.get("mode", "max") == "max":        # Keras's max ignores the mask
                rec["out"] = x.max(axis=1)
            elif in_mask is None:
                rec["out"] = x.mean(axis=1)
            else:               # Keras: the mean over the kept steps only
                rec["pool_keep"] = np.asarray(in_mask, dtype=x.dtype)[..., None]
                rec["out"] = (x * rec["pool_keep"]).sum(axis=1) / rec["pool_keep"].sum(axis=1)
        elif kind == "scale":
            rec["out"] = x * node.get("factor", 1.0) + node.get("offset", 0.0)
        elif kind == "masking":     # Keras's Masking: steps whose features all equal the value
            rec["keep"] = np.any(x != node.get("mask_value", 0.0), axis=-1)
            rec["out"] = x * rec["keep"][..., None]
        else:   # embedding (mask_zero: index 0 is a masked step for a masked simple_rnn)
            rec["out"] = L.embedding_forward(x, own[0])
            rec["keep"] = np.asarray(x).astype(np.int64) != 0
        rec["out_mask"] = _out_mask(node, rec, [trace[j] for j in node["inputs"]])
        trace.append(rec)
    if position != len(weights):
        raise ValueError(f"the graph has {position} weight arrays, got {len(weights)}")
    return [trace[o]["out"] for o in graph["outputs"]], trace


def _out_mask(node, rec, ins):
    """The (B, T) step mask of a node's output (None: none), by Keras 3's rules.

    Masking and Embedding(mask_zero) make it; Dense, Activation, Dropout
    (TimeDistributed of them) pass it on; a SimpleRNN passes it on with
    return_sequences (unchanged, even going backwards), else drops it; Add,
    Subtract, Multiply, Average (``base_merge.compute_mask``) give the OR of
    the masks, none when one is missing; Concatenate ORs the masks with
    all-true ones for inputs without (so one missing gives all steps kept)
    on the feature axis, and joins them on the time axis; Flatten, Reshape,
    RepeatVector (no ``supports_masking``) and a final state drop it.
    """
    kind = node["kind"]
    masks = [r["out_mask"] for r in ins]
    if kind == "masking" or (kind == "embedding" and node.get("mask_zero")):
        return rec["keep"]
    if kind in ("dense", "activation", "dropout"):
        return masks[0]
    if kind == "simple_rnn":
        return masks[0] if node.get("return_sequences", False) else None
    if kind in _MERGES or kind == "concatenate":
        if all(m is None for m in masks):
            return None
        if kind == "concatenate" and node.get("axis", -1) in (1, -2):
            return np.concatenate([np.ones(r["out"].shape[:2], bool) if m is None else m
                                   for m, r in zip(masks, ins)], axis=1)
        if any(m is None for m in masks):
            return None if kind in _MERGES else np.ones(ins[0]["out"].shape[:2], bool)
        return np.logical_or.reduce(masks)
    return None


def _rnn_dropout_masks(node, x_shape, units, counter, dtype):
    """A simple_rnn node's dropout masks for a training batch, or None without dropout.

    The engine draws them from the node's seed: the input mask (B, D) from
    position ``counter`` of its stream, then the recurrent mask (B, H);
    a rate of 0 draws nothing (its mask is None).
    """
    rate, rec_rate = node.get("dropout", 0.0), node.get("recurrent_dropout", 0.0)
    if rate <= 0 and rec_rate <= 0:
        return None
    B, _, D = x_shape
    in_mask = rec_mask = None
    if rate > 0:
        in_mask = L.dropout_mask((B, D), rate, node["seed"], counter, dtype)
        counter += B * D
    if rec_rate > 0:
        rec_mask = L.dropout_mask((B, units), rec_rate, node["seed"], counter, dtype)
    return in_mask, rec_mask


def _rnn_draws(node, x_shape, units):
    """How many numbers a simple_rnn node draws per training batch."""
    B, _, D = x_shape
    return (B * D if node.get("dropout", 0.0) > 0 else 0) + \
        (B * units if node.get("recurrent_dropout", 0.0) > 0 else 0)


def _backward(graph, trace, douts):
    """Weight gradients (node order) given d(out) per node (a dict, accumulated into)."""
    nodes = graph["nodes"]
    grads = []
    for i in range(len(nodes) - 1, -1, -1):
        node, rec = nodes[i], trace[i]
        kind = node["kind"]
        if kind == "input":
            continue
        d = douts.get(i)
        if d is None:
            d = np.zeros_like(rec["out"])
        ins = rec["inputs"]
        own = rec["weights"]
        dins = []
        if kind == "simple_rnn":
            h = rec["h"]
            if node.get("return_sequences", False):
                dh = d[:, ::-1] if node.get("go_backwards") and node.get("input_order") else d
                dh = dh * rec["zero"] if "zero" in rec else dh
            else:
                dh = np.zeros_like(h)
                dh[:, -1] = d
            act = canonical_activation(node.get("activation", "tanh"))
            backwards = node.get("go_backwards", False)
            if "masks" in rec:      # the recurrence oracle works in input order
                flip = (lambda a: a[:, ::-1]) if backwards else (lambda a: a)
                dx, dk, drk, db, dh0 = R.recurrence_backward(
                    ins[0], flip(h), own[0], own[1], flip(dh),
                    own[2] if len(own) == 3 else None, ins[1] if len(ins) > 1 else None, act,
                    rec["step_mask"], backwards, *rec["masks"])
                dins = [dx, dh0] if len(ins) > 1 else [dx]
            else:
                dx, dk, drk, db = simple_rnn_backward(ins[0], rec["z"], h, own[0], own[1], dh,
                                                      act, backwards)
                dins = [dx]
            layer_grads = [dk, drk] + ([db] if len(own) == 3 else [])
        elif kind == "dense":
            act = canonical_activation(node.get("activation", "linear"))
            dz = activation_grad(act, rec["z"], rec["h"], d)
            dx, dk, db = dense_backward(ins[0], own[0], dz)
            dins = [dx]
            layer_grads = [dk] + ([db] if len(own) == 2 else [])
        else:
            layer_grads = []
            if kind == "activation":
                dins = [L.activation_backward(ins[0], rec["out"], d,
                                              canonical_activation(node["activation"]))]
            elif kind == "dropout":
                dins = [d * rec["mask"] if "mask" in rec else d]
            elif kind in ("flatten", "reshape"):
                dins = [L.reshape_backward(d, ins[0].shape[1:])]
            elif kind == "repeat_vector":
                dins = [L.repeat_vector_backward(d)]
            elif kind == "concatenate":
                dins = L.concatenate_backward(d, ins, node.get("axis", -1))
            elif kind in _MERGES:
                dins = L.merge_backward(kind, d, ins)
            elif kind == "masking":
                dins = [d * rec["keep"][..., None]]
            elif kind == "last_step":
                dx = np.zeros_like(ins[0])
                dx[:, -1] = d
                dins = [dx]
            elif kind == "scale":
                dins = [d * node.get("factor", 1.0)]
            elif kind == "global_pool":
                x = ins[0]
                if node.get("mode", "max") == "max":
                    hit = (x == rec["out"][:, None, :]).astype(x.dtype)
                    dins = [hit * (d / hit.sum(axis=1))[:, None, :]]
                elif "pool_keep" in rec:
                    keep = rec["pool_keep"]
                    dins = [keep * (d / keep.sum(axis=1))[:, None, :]]
                else:
                    dins = [np.broadcast_to(d[:, None, :] / x.shape[1], x.shape).copy()]
            else:   # embedding: indices have no gradient
                layer_grads = [L.embedding_backward(ins[0], d, own[0].shape)]
                dins = [None]
        for j, dx in zip(node["inputs"], dins):
            if dx is not None:
                douts[j] = dx if j not in douts else douts[j] + dx
        grads[:0] = layer_grads
    return grads


def loss_and_gradients(graph, weights, xs, ys, loss="mse", loss_weights=None,
                       training=True, counters=None):
    """The total loss on one batch and its gradient with respect to every weight.

    Parameters
    ----------
    graph : dict
    weights : list of ndarray
    xs : list of ndarray
        One per model input.
    ys : list of ndarray
        One target per output, its shape (or (B,) against (B, 1)).
    loss : str or list of str
        "mse" or "mae", one for all outputs or one per output.
    loss_weights : list of float, optional
        Default 1 for every output.
    training : bool
        Dropout on (as in a training step).
    counters : dict, optional
        As :func:`forward`.

    Returns
    -------
    total : float
        ``sum_o loss_weights[o] * loss_o``.
    per_output : list of float
    grads : list of ndarray
        In the order and shapes of ``weights``.
    """
    outputs, trace = forward(graph, weights, xs, training, counters)
    n = len(outputs)
    losses = [loss] * n if isinstance(loss, str) else list(loss)
    loss_weights = [1.0] * n if loss_weights is None else list(loss_weights)
    douts = {}
    total, per_output = 0.0, []
    for o, (node, y_pred, y, name, w) in enumerate(zip(graph["outputs"], outputs, ys, losses,
                                                       loss_weights)):
        mask = trace[node]["out_mask"]
        if mask is None:
            value, dy = _LOSSES[name](y, y_pred)
        else:   # Keras's apply_mask: the mean over the kept steps
            full = _LOSS_NAMES[name]
            value = float(reference_losses.loss_value(full, y, y_pred, mask=mask))
            dy = reference_losses.loss_grad(full, y, y_pred, mask=mask)
        per_output.append(value)
        total += w * value
        dy = w * dy
        douts[node] = dy if node not in douts else douts[node] + dy
    return total, per_output, _backward(graph, trace, douts)


def train(graph, weights, optimizer_name, optimizer_config, batches, loss="mse",
          loss_weights=None):
    """Train step by step on each ``(xs, ys)`` batch in turn, as Keras's ``train_on_batch``.

    Dropout counters advance by each dropout node's batch size, as in the
    engine.  Returns ``(weights, losses)`` as :func:`.model.train`.
    """
    weights = [np.array(w, copy=True) for w in weights]
    shapes = [w.shape for w in weights]
    sizes = [w.size for w in weights]
    params = np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0)
    state = init_state(optimizer_name, params, **(optimizer_config or {}))
    iteration = 0
    losses = []
    counters = {}
    for xs, ys in batches:
        value, _, grads = loss_and_gradients(graph, weights, xs, ys, loss, loss_weights,
                                             True, counters)
        _, trace = forward(graph, weights, xs, False)
        for i, node in enumerate(graph["nodes"]):
            if node["kind"] == "dropout" and node["rate"] > 0:
                counters[i] = counters.get(i, 0) + trace[node["inputs"][0]]["out"].size
            elif node["kind"] == "simple_rnn":
                counters[i] = counters.get(i, 0) + _rnn_draws(
                    node, trace[node["inputs"][0]]["out"].shape, node["units"])
        losses.append(value)
        flat = np.concatenate([g.ravel() for g in grads])
        params, state, iteration = apply_gradients(optimizer_name, params, flat, state,
                                                   iteration, optimizer_config, sizes)
        weights = [part.reshape(shape) for part, shape in
                   zip(np.split(params, np.cumsum(sizes)[:-1]), shapes)]
    return weights, losses
