"""Export a fastrnn model to a standard ONNX graph built from ONNX's own ``RNN`` operator.

The graph (float32, dynamic batch and time axes) for ``SimpleRNN -> Dense``::

    input (batch, time, D)
      -> Transpose [1, 0, 2]                       time-major, as ONNX's RNN wants (layout 0)
      -> RNN(W, R, B, hidden_size=H, activations=[Tanh], direction=forward)
            Y (time, 1, batch, H), Y_h (1, batch, H)
      -> Squeeze(Y_h, axes=[0])                    the last state, (batch, H)
      -> MatMul(kernel) -> Add(bias) -> activation
    output (batch, U)

How Keras's SimpleRNN weights map onto ONNX's ``RNN`` (``H_t = f(X_t W^T +
H_{t-1} R^T + Wb + Rb)``): ``W = kernel^T`` (1, H, D), ``R =
recurrent_kernel^T`` (1, H, H), ``B = [bias, 0]`` (1, 2H): Keras has one
bias, ONNX two, so the bias goes in ``Wb`` and ``Rb`` is zero.

``go_backwards=True`` runs the RNN with ``direction="reverse"``.  ONNX then
returns ``Y`` aligned with the input (``Y[t]`` is the state computed at input
step ``t``), while Keras returns a backwards layer's sequence in processing
order (its first output is the state after the last input step), so with
``return_sequences=True`` ``Y`` is reversed along time with a ``Slice`` of
step -1.  The last state ``Y_h`` is the same in both.

Consecutive recurrent layers pass time-major tensors to each other; Dense
works on the last axis whatever the layout; one Transpose restores batch-major
order at the output.  Each layer class has one converter in
:data:`CONVERTERS`; a layer added to fastrnn is one more entry.  The model's
graph (a Sequential's chain or a functional model's DAG) is walked in order,
one converter call per layer call; masks, Bidirectional and initial states
are described in :func:`to_onnx`.
"""
import numpy as np

from ..saving.keras_layers import masks_flow

__all__ = ["to_onnx", "CONVERTERS", "DEFAULT_OPSET", "MIN_OPSET", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "fastrnn[onnx]"'
DEFAULT_OPSET = 17
MIN_OPSET = 13   # Squeeze takes its axes as an input from opset 13 on

# fastrnn activation -> ONNX RNN activation name
RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
# fastrnn activation of Dense, Activation, TimeDistributed -> (ONNX op, attributes), or
# None for nothing; relu6 is a Clip to [0, 6].  Keras 3's constants.
DENSE_ACTIVATIONS = {
    "linear": None, None: None, "relu": ("Relu", {}), "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}), "softmax": ("Softmax", {"axis": -1}),
    "log_softmax": ("LogSoftmax", {"axis": -1}), "softplus": ("Softplus", {}),
    "softsign": ("Softsign", {}), "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {"alpha": 1.6732632423543772, "gamma": 1.0507009873554805}),
    "exponential": ("Exp", {}), "hard_sigmoid": ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.2}), "relu6": ("Clip", {}),
}


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(f"to_onnx needs the onnx package, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return onnx


class _Graph:
    """Nodes and initializers of an ONNX graph under construction, with fresh names."""

    def __init__(self, onnx, reserved=(), opset=None):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._count = {}
        self._reserved = set(reserved)      # the graph's input and output names

    def name(self, base):
        while True:
            k = self._count.get(base, 0)
            self._count[base] = k + 1
            if f"{base}_{k}" not in self._reserved:
                return f"{base}_{k}"

    def const(self, base, value):
        name = self.name(base)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op, inputs, outputs=1, **attrs):
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names,
                                                     name=self.name(f"{op}_node"), **attrs))
        return names[0] if outputs == 1 else names


class _Tensor:
    """A value flowing through the graph: its name, rank, whether time is axis 0, and,
    for the output of a Masking or masking Embedding layer, its step mask ``keep``
    ((batch, time) bool, batch-major)."""

    def __init__(self, name, rank, time_major=False, keep=None):
        self.name, self.rank, self.time_major, self.keep = name, rank, time_major, keep


def _batch_major(g, t):
    if t.time_major:
        return _Tensor(g.add("Transpose", [t.name], perm=[1, 0, 2]), 3)
    return t


def _time_major(g, t):
    if not t.time_major:
        return _Tensor(g.add("Transpose", [t.name], perm=[1, 0, 2]), 3, time_major=True)
    return t


def _float32(w):
    return np.ascontiguousarray(w, dtype=np.float32)


def _ints(*values):
    return np.array(values, np.int64)


def _activate(g, name, activation, where):
    """``activation`` applied to the tensor ``name`` (elementwise, softmax on the last axis)."""
    if activation not in DENSE_ACTIVATIONS:
        raise ValueError(f"{where}: activation {activation!r} has no ONNX export yet "
                         f"(supported: {', '.join(str(a) for a in DENSE_ACTIVATIONS if a)})")
    act = DENSE_ACTIVATIONS[activation]
    if act is None:
        return name
    op, attrs = act
    if op == "Clip":
        return g.add("Clip", [name, g.const("zero", np.float32(0)),
                              g.const("six", np.float32(6))])
    return g.add(op, [name], **attrs)


def _rnn_activation(layer):
    activation = RNN_ACTIVATIONS.get(layer.activation)
    if activation is None:
        raise ValueError(f"layer {layer.name!r}: activation {layer.activation!r} has no "
                         f"ONNX RNN equivalent (supported: {', '.join(RNN_ACTIVATIONS)})")
    return activation


def _rnn_weights(g, ws):
    """W, R, B of ONNX's RNN from one layer's weights (forward) or two (bidirectional)."""
    H = ws[0][0].shape[1]
    inputs = [g.const("W", _float32(np.stack([w[0].T for w in ws]))),
              g.const("R", _float32(np.stack([w[1].T for w in ws])))]
    if len(ws[0]) == 3:
        inputs.append(g.const("B", _float32(np.stack(
            [np.concatenate([w[2], np.zeros(H)]) for w in ws]))))
    return inputs, H


def _reverse_time(g, name, axis):
    return g.add("Slice", [name, g.const("starts", _ints(-1)),
                           g.const("ends", _ints(np.iinfo(np.int64).min)),
                           g.const("axes", _ints(axis)), g.const("steps", _ints(-1))])


def _along_time(g, index, like):
    """``index`` (batch, time) int64 broadcast to the shape of ``like`` (batch, time, n)."""
    return g.add("Expand", [g.add("Unsqueeze", [index, g.const("axes", _ints(2))]),
                            g.add("Shape", [like])])


def _masked_rnn(g, layer, x, keep, h0, H, weights, activation):
    """A SimpleRNN that skips the steps where ``keep`` is False, exactly as fastrnn does.

    ONNX's RNN skips only steps past each sequence's length, so the kept steps
    are first moved to the front of each sequence (a stable per-sample
    permutation, ScatterElements), the RNN runs with ``sequence_lens`` = the
    number of kept steps, and a returned sequence is read back at every input
    step (GatherElements): the state after the last kept step so far, or the
    initial state where none was kept yet (Keras's rule for masked steps,
    fastrnn's).  Any mask works: padding after, before or in between.

    Returns (sequence in processing order, batch-major (B, T, H); last state (B, H)).
    """
    xb = _batch_major(g, x).name
    m = g.add("Cast", [keep], to=7)                                    # int64 (B, T)
    one = g.const("one", _ints(1))
    cs = g.add("CumSum", [m, g.const("axis", np.array(1, np.int64))])  # kept steps so far
    lengths = g.add("ReduceSum", [m, g.const("axes", _ints(1))], keepdims=0)     # (B,)
    steps = g.add("Sub", [g.add("CumSum", [g.add("Add", [g.add("Mul", [
        m, g.const("zero", _ints(0))]), one]), g.const("axis", np.array(1, np.int64))]), one])
    length_col = g.add("Unsqueeze", [lengths, g.const("axes", _ints(1))])
    # kept step t -> cs[t] - 1; dropped step t -> length + (dropped steps before it)
    pos = g.add("Where", [keep, g.add("Sub", [cs, one]),
                          g.add("Add", [length_col, g.add("Sub", [steps, cs])])])
    compact = g.add("ScatterElements", [xb, _along_time(g, pos, xb), xb], axis=1)
    run_lengths = g.add("Cast", [g.add("Max", [lengths, one])], to=6)   # int32, >= 1
    inputs = [g.add("Transpose", [compact], perm=[1, 0, 2])] + weights
    while len(inputs) < 4:
        inputs.append("")
    inputs.append(run_lengths)
    h0_name = g.const("h0", np.zeros(1, np.float32)) if h0 is None else h0.name
    if h0 is not None:
        inputs.append(g.add("Unsqueeze", [h0.name, g.const("axes", _ints(0))]))
    y, y_h = g.add("RNN", inputs, outputs=2, hidden_size=H, activations=[activation],
                   direction="reverse" if layer.go_backwards else "forward")
    any_kept = g.add("Greater", [lengths, g.const("zero", _ints(0))])
    last = g.add("Where", [g.add("Unsqueeze", [any_kept, g.const("axes", _ints(1))]),
                           g.add("Squeeze", [y_h, g.const("axes", _ints(0))]), h0_name])
    if not layer.return_sequences:
        return None, last
    yb = g.add("Transpose", [g.add("Squeeze", [y, g.const("axes", _ints(1))])],
               perm=[1, 0, 2])                                         # (B, T, H), compact
    if layer.go_backwards:
        # after input step t (going backwards) the kept steps in [t, T) have been seen;
        # with k of them, the state is compact row length - k (ONNX runs it backwards)
        seen = g.add("Add", [g.add("Sub", [length_col, cs]), m])
        src = g.add("Sub", [cs, m])
    else:
        seen = cs
        src = g.add("Max", [g.add("Sub", [cs, one]), g.const("zero", _ints(0))])
    gathered = g.add("GatherElements", [yb, _along_time(g, src, yb)], axis=1)
    valid = g.add("Unsqueeze", [g.add("Greater", [seen, g.const("zero", _ints(0))]),
                                g.const("axes", _ints(2))])
    start = h0_name if h0 is None else g.add("Unsqueeze", [h0.name, g.const("axes", _ints(1))])
    seq = g.add("Where", [valid, gathered, start])                    # input order
    if layer.go_backwards:                                             # Keras: processing order
        seq = _reverse_time(g, seq, 1)
    return seq, last


def _refuse_stateful(layer):
    if getattr(layer, "stateful", False):
        raise ValueError(f"layer {layer.name!r} is stateful: an ONNX graph keeps no state "
                         f"between runs (export a copy with stateful=False and feed the "
                         f"state as an initial_state input)")


def _convert_simple_rnn(g, layer, inputs):
    _refuse_stateful(layer)
    x, h0 = inputs[0], (inputs[1] if len(inputs) > 1 else None)
    activation = _rnn_activation(layer)
    if x.rank != 3:
        raise ValueError(f"layer {layer.name!r} expects (batch, time, features) input")
    weights, H = _rnn_weights(g, [layer.get_weights()])
    masked = x.keep is not None if masks_flow() else getattr(layer, "_masked", False)
    if masked:
        if x.keep is None:
            raise ValueError(f"layer {layer.name!r} is masked, but its input carries no mask")
        seq, last = _masked_rnn(g, layer, x, x.keep, h0, H, weights, activation)
        last = _Tensor(last, 2)
        if layer.return_sequences and getattr(layer, "zero_output_for_mask", False):
            keep = x.keep if not layer.go_backwards else _reverse_time(g, x.keep, 1)
            seq = g.add("Where", [g.add("Unsqueeze", [keep, g.const("axes", _ints(2))]), seq,
                                  g.const("zero", np.zeros(1, np.float32))])
        out = _Tensor(seq, 3, keep=x.keep) if layer.return_sequences else last
        return [out, last] if layer.return_state else out
    x = _time_major(g, x)
    rnn_inputs = [x.name] + weights
    if h0 is not None:
        while len(rnn_inputs) < 5:
            rnn_inputs.append("")
        rnn_inputs.append(g.add("Unsqueeze", [h0.name, g.const("axes", _ints(0))]))
    y, y_h = g.add("RNN", rnn_inputs, outputs=2, hidden_size=H, activations=[activation],
                   direction="reverse" if layer.go_backwards else "forward")
    last = _Tensor(g.add("Squeeze", [y_h, g.const("axes", _ints(0))]), 2)
    if layer.return_sequences:
        seq = g.add("Squeeze", [y, g.const("axes", _ints(1))])
        if layer.go_backwards:   # ONNX: input order; Keras: processing order
            seq = _reverse_time(g, seq, 0)
        out = _Tensor(seq, 3, time_major=True)
    else:
        out = last
    if layer.return_state:
        return [out, last]
    return out


def _merge_directions(g, layer, outs, keep=None):
    """Keras's merge of a Bidirectional's two outputs (None: both, as a list)."""
    if layer.merge_mode is None:
        return outs
    a, b = outs[0].name, outs[1].name
    if layer.merge_mode == "concat":
        merged = g.add("Concat", [a, b], axis=-1)
    elif layer.merge_mode == "sum":
        merged = g.add("Add", [a, b])
    elif layer.merge_mode == "mul":
        merged = g.add("Mul", [a, b])
    else:
        merged = g.add("Div", [g.add("Add", [a, b]), g.const("two", np.float32(2))])
    return _Tensor(merged, outs[0].rank, outs[0].time_major, keep)


def _masked_bidirectional(g, layer, x, activation):
    """A Bidirectional on a masked input: two masked recurrences (see :func:`_masked_rnn`),
    the backward sequence put back in input order and, as Keras makes its inner layers
    do, zeros at the masked steps of returned sequences."""
    both = layer.get_weights()
    half = len(both) // 2
    outs = []
    for direction, weights in ((layer.forward_layer, both[:half]),
                               (layer.backward_layer, both[half:])):
        w, H = _rnn_weights(g, [weights])
        seq, last = _masked_rnn(g, direction, x, x.keep, None, H, w, activation)
        if not direction.return_sequences:
            outs.append(_Tensor(last, 2))
            continue
        if direction.go_backwards:
            seq = _reverse_time(g, seq, 1)
        seq = g.add("Where", [g.add("Unsqueeze", [x.keep, g.const("axes", _ints(2))]), seq,
                              g.const("zero", np.zeros(1, np.float32))])
        outs.append(_Tensor(seq, 3, keep=x.keep))
    return _merge_directions(g, layer, outs, outs[0].keep)


def _convert_bidirectional(g, layer, inputs):
    """One RNN with direction="bidirectional": Y (T, 2, B, H), Y_h (2, B, H); ONNX gives the
    backward sequence in input order, as Keras's Bidirectional does.  On a masked input:
    :func:`_masked_bidirectional`."""
    forward = layer.forward_layer
    _refuse_stateful(forward)
    activation = _rnn_activation(forward)
    if inputs[0].keep is not None and masks_flow():
        return _masked_bidirectional(g, layer, inputs[0], activation)
    x = _time_major(g, inputs[0])
    both = layer.get_weights()          # forward's, then backward's
    weights, H = _rnn_weights(g, [both[:len(both) // 2], both[len(both) // 2:]])
    y, y_h = g.add("RNN", [x.name] + weights, outputs=2, hidden_size=H,
                   activations=[activation, activation], direction="bidirectional")
    outs = []
    for d in range(2):
        if forward.return_sequences:
            part = g.add("Gather", [y, g.const("direction", np.array(d, np.int64))], axis=1)
            outs.append(_Tensor(part, 3, time_major=True))
        else:
            part = g.add("Gather", [y_h, g.const("direction", np.array(d, np.int64))], axis=0)
            outs.append(_Tensor(part, 2))
    return _merge_directions(g, layer, outs)


def _convert_dense(g, layer, inputs):
    x = inputs[0]
    where = f"layer {layer.name!r}"
    if layer.activation not in DENSE_ACTIVATIONS:
        _activate(g, x.name, layer.activation, where)        # raises, naming it
    weights = layer.get_weights()
    y = g.add("MatMul", [x.name, g.const("kernel", _float32(weights[0]))])
    if layer.use_bias:
        y = g.add("Add", [y, g.const("bias", _float32(weights[1]))])
    return _Tensor(_activate(g, y, layer.activation, where), x.rank, x.time_major, x.keep)


def _convert_activation(g, layer, inputs):
    x = inputs[0]
    return _Tensor(_activate(g, x.name, layer.activation, f"layer {layer.name!r}"),
                   x.rank, x.time_major, x.keep)


def _convert_dropout(g, layer, inputs):
    x = inputs[0]
    return _Tensor(x.name, x.rank, x.time_major, x.keep)      # predict: the identity


def _convert_time_distributed(g, layer, inputs):
    inner = layer.layer
    return CONVERTERS[type(inner).__name__](g, inner, inputs)


def _convert_flatten(g, layer, inputs):
    x = _batch_major(g, inputs[0])
    return _Tensor(g.add("Flatten", [x.name], axis=1), 2)


def _convert_reshape(g, layer, inputs):
    x = _batch_major(g, inputs[0])
    target = layer.compute_output_shape((None,) + tuple(layer.input_shape[1:]))[1:]
    shape = g.const("shape", _ints(0, *[-1 if d is None else d for d in target]))
    return _Tensor(g.add("Reshape", [x.name, shape]), len(target) + 1)


def _convert_repeat_vector(g, layer, inputs):
    x = g.add("Unsqueeze", [inputs[0].name, g.const("axes", _ints(1))])
    return _Tensor(g.add("Tile", [x, g.const("repeats", _ints(1, layer.n, 1))]), 3)


def _same_layout(g, inputs):
    if len({t.time_major for t in inputs}) > 1:
        inputs = [_batch_major(g, t) for t in inputs]
    return inputs


def _all_kept(g, t):
    """An all-True (batch, time) mask for the sequence ``t``."""
    shape = g.add("Slice", [g.add("Shape", [_batch_major(g, t).name]),
                            g.const("starts", _ints(0)), g.const("ends", _ints(2))])
    true = g.onnx.helper.make_tensor("true", g.onnx.TensorProto.BOOL, [1], [True])
    return g.add("ConstantOfShape", [shape], value=true)


def _convert_concatenate(g, layer, inputs):
    inputs = _same_layout(g, inputs)
    rank = inputs[0].rank
    axis = layer.axis + rank if layer.axis < 0 else layer.axis
    if axis == rank - 1:
        onnx_axis = -1
    else:                       # time (axis 1 of a sequence)
        onnx_axis = 0 if inputs[0].time_major else 1
    keep = None
    if masks_flow() and rank == 3 and any(t.keep is not None for t in inputs):
        # Keras: the masks joined as the values are (all-True for an unmasked input),
        # then any() over the features: along them a step is kept where any input keeps it
        keeps = [t.keep if t.keep is not None else _all_kept(g, t) for t in inputs]
        if axis == 1:
            keep = g.add("Concat", keeps, axis=1)
        else:
            keep = keeps[0]
            for k in keeps[1:]:
                keep = g.add("Or", [keep, k])
    return _Tensor(g.add("Concat", [t.name for t in inputs], axis=onnx_axis), rank,
                   inputs[0].time_major, keep)


def _elementwise(op, average=False):
    def convert(g, layer, inputs):
        inputs = _same_layout(g, inputs)
        y = inputs[0].name
        for t in inputs[1:]:
            y = g.add(op, [y, t.name])
        if average:
            y = g.add("Div", [y, g.const("count", np.float32(len(inputs)))])
        keep = None
        if masks_flow() and all(t.keep is not None for t in inputs):
            keep = inputs[0].keep               # Keras: the masks OR'ed when all have one
            for t in inputs[1:]:
                keep = g.add("Or", [keep, t.keep])
        return _Tensor(y, inputs[0].rank, inputs[0].time_major, keep)
    return convert


def _convert_masking(g, layer, inputs):
    x = _batch_major(g, inputs[0])
    differs = g.add("Cast", [g.add("Not", [g.add("Equal", [
        x.name, g.const("mask_value", np.float32(layer.mask_value))])])], to=1)
    keep = g.add("Greater", [g.add("ReduceSum", [differs, g.const("axes", _ints(-1))],
                                   keepdims=0), g.const("zero", np.float32(0))])
    y = g.add("Mul", [x.name, g.add("Unsqueeze", [g.add("Cast", [keep], to=1),
                                                  g.const("axes", _ints(2))])])
    return _Tensor(y, 3, keep=keep)


def _convert_embedding(g, layer, inputs):
    ids = inputs[0].name          # int64 (batch, length)
    y = g.add("Gather", [g.const("embeddings", _float32(layer.get_weights()[0])), ids], axis=0)
    keep = g.add("Not", [g.add("Equal", [ids, g.const("zero", _ints(0))])]) \
        if layer.mask_zero else None
    return _Tensor(y, 3, keep=keep)


def _convert_global_max(g, layer, inputs):
    """The maximum over time (Keras's max pooling ignores a mask)."""
    x = inputs[0]
    return _Tensor(g.add("ReduceMax", [x.name], axes=[0 if x.time_major else 1], keepdims=0)
                   if g.opset < 18 else
                   g.add("ReduceMax", [x.name, g.const("axes", _ints(0 if x.time_major else 1))],
                         keepdims=0), 2)


def _convert_global_average(g, layer, inputs):
    """The mean over time; with a mask, over the kept steps only (as Keras)."""
    x = _batch_major(g, inputs[0])
    if x.keep is None or not masks_flow():
        return _Tensor(g.add("ReduceMean", [x.name], axes=[1], keepdims=0) if g.opset < 18
                       else g.add("ReduceMean", [x.name, g.const("axes", _ints(1))],
                                  keepdims=0), 2)
    keep = g.add("Unsqueeze", [g.add("Cast", [x.keep], to=1), g.const("axes", _ints(2))])
    total = g.add("ReduceSum", [g.add("Mul", [x.name, keep]), g.const("axes", _ints(1))],
                  keepdims=0)
    count = g.add("ReduceSum", [keep, g.const("axes", _ints(1))], keepdims=0)
    return _Tensor(g.add("Div", [total, count]), 2)


# fastrnn layer class name -> converter(graph, layer, [input _Tensor]) -> _Tensor or [_Tensor]
CONVERTERS = {
    "SimpleRNN": _convert_simple_rnn, "RNN": _convert_simple_rnn,   # RNN(SimpleRNNCell)
    "Bidirectional": _convert_bidirectional,
    "Dense": _convert_dense, "Activation": _convert_activation, "Dropout": _convert_dropout,
    "TimeDistributed": _convert_time_distributed, "Flatten": _convert_flatten,
    "Reshape": _convert_reshape, "RepeatVector": _convert_repeat_vector,
    "Concatenate": _convert_concatenate, "Add": _elementwise("Add"),
    "Subtract": _elementwise("Sub"), "Multiply": _elementwise("Mul"),
    "Average": _elementwise("Add", average=True), "Masking": _convert_masking,
    "Embedding": _convert_embedding, "GlobalMaxPooling1D": _convert_global_max,
    "GlobalAveragePooling1D": _convert_global_average,
}


def _check_opset(onnx, opset):
    latest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, latest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int or None, got {type(opset).__name__}")
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset must be between {MIN_OPSET} and {latest} (the newest this "
                         f"onnx package knows), got {opset}")
    return int(opset)


def _unique_names(names, default, taken=()):
    """ONNX value names for model inputs/outputs: the model's names, made distinct."""
    out, seen = [], set(taken)
    for k, name in enumerate(names):
        base = "".join(c if c.isalnum() or c in "_-." else "_" for c in str(name)) or default
        candidate, i = base, 1
        while candidate in seen:
            candidate, i = f"{base}_{i}", i + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def to_onnx(model, path=None, opset=None):
    """Write ``model`` as an ONNX graph that ONNX Runtime (or any ONNX runtime) runs.

    Parameters
    ----------
    model : fastrnn.Sequential or fastrnn.Model
        Built; every layer has a converter (:data:`CONVERTERS`: SimpleRNN and
        Bidirectional with a tanh, relu or sigmoid recurrence, Dense,
        Embedding, Masking, Activation, Dropout, Flatten, Reshape,
        RepeatVector, TimeDistributed, the merges).
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (replaced atomically).  None: only
        return the model.
    opset : int, optional
        ONNX operator set, from 13 to the newest the installed ``onnx``
        knows; default 17.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.  Inputs: one ``"input"``
        (a model with several: the model's input names), float32 of shape
        (batch, time, D) or (batch, D), int64 (batch, time) for token ids
        read by an Embedding; the batch axis and unknown time axes are
        dynamic.  Outputs: ``"output"`` (plus ``"state"``, the last state,
        for a Sequential ending in ``return_state=True``); a functional
        model with several outputs names them as ``model.output_names``.

    Notes
    -----
    - A mask (from Masking or ``Embedding(mask_zero=True)``) travels as
      fastrnn's does (through Dense, Activation, Dropout, TimeDistributed,
      returned sequences and merges, as Keras 3), and a SimpleRNN it reaches
      skips masked steps exactly, for padding anywhere (after, before, in
      between): the kept steps of each sequence are moved to its front
      (``ScatterElements``), the ``RNN`` runs with ``sequence_lens``, and a
      returned sequence is read back step by step (``GatherElements``),
      holding the last state through masked steps (or 0 with
      ``zero_output_for_mask``).
    - A Bidirectional is one ``RNN`` with ``direction="bidirectional"``; on a
      masked input, two masked recurrences.
    - An initial state input is the RNN's ``initial_h``; Dropout is the
      identity (the graph is for inference).
    - The graph computes in float32 whatever the model's dtype (ONNX Runtime's
    RNN kernel is float32); a float64 model's weights are rounded to float32.

    Raises
    ------
    ValueError
        A layer or activation with no ONNX equivalent (the message names it),
        an unbuilt model, or a bad ``opset``.
    ImportError
        The ``onnx`` package is not installed (``pip install "fastrnn[onnx]"``).
    """
    onnx = _require_onnx()
    helper = onnx.helper
    opset = _check_opset(onnx, opset)
    model._require_built("be exported")
    from ..models.sequential import Sequential
    nodes = model._graph_nodes
    for node in nodes:
        layer = node.layer
        kind = type(layer).__name__
        inner = type(layer.layer).__name__ if kind == "TimeDistributed" else kind
        if kind not in CONVERTERS or inner not in CONVERTERS:
            raise ValueError(f"layer {layer.name!r} ({inner}) has no ONNX converter "
                             f"(supported: {', '.join(CONVERTERS)})")
    values, graph_inputs = {}, []
    n_in = len(model.inputs)
    input_names = ["input"] if n_in == 1 else _unique_names(model.input_names, "input")
    if isinstance(model, Sequential) or len(model.outputs) == 1:
        output_names = ["output", "state"][:len(model.outputs)]
    else:
        output_names = _unique_names(model.output_names, "output", taken=set(input_names))
    g = _Graph(onnx, reserved=input_names + output_names, opset=opset)
    for k, (t, name) in enumerate(zip(model.inputs, input_names)):
        ids = model._input_ids[k] is not None
        time = "time" if n_in == 1 else f"{name}_time"
        dims = ["batch"] + [int(d) if d is not None else time for d in t.shape[1:]]
        graph_inputs.append(helper.make_tensor_value_info(
            name, onnx.TensorProto.INT64 if ids else onnx.TensorProto.FLOAT, dims))
        values[id(t)] = _Tensor(name, len(t.shape))
    for node in nodes:
        layer = node.layer
        out = CONVERTERS[type(layer).__name__](g, layer, [values[id(t)]
                                                        for t in node.input_tensors])
        outs = out if isinstance(out, list) else [out]
        for t, v in zip(node.output_tensors, outs):
            values[id(t)] = v
    outputs = [values[id(t)] for t in model.outputs]
    value_infos = []
    for t, name, tensor in zip(outputs, output_names, model.outputs):
        t = _batch_major(g, t)
        g.nodes.append(helper.make_node("Identity", [t.name], [name], name=f"{name}_node"))
        dims = ["batch"] + [int(d) if d is not None else ("time" if n_in == 1 else None)
                            for d in tensor.shape[1:]]
        value_infos.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims))
    graph = helper.make_graph(
        g.nodes, "fastrnn_" + "".join(c if c.isalnum() else "_" for c in str(model.name)),
        graph_inputs, value_infos, initializer=g.initializers)
    from .. import __version__
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="fastrnn",
                              producer_version=__version__)
    # the oldest IR version that carries this opset, so older runtimes load the file
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        import os
        from ..saving._files import atomic_write_bytes
        try:
            filepath = os.fspath(path)
        except TypeError:
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") \
                from None
        atomic_write_bytes(filepath, proto.SerializeToString())
    return proto
