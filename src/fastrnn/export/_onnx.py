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
:data:`CONVERTERS`; a layer added to fastrnn is one more entry.
"""
import numpy as np

__all__ = ["to_onnx", "CONVERTERS", "DEFAULT_OPSET", "MIN_OPSET", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "fastrnn[onnx]"'
DEFAULT_OPSET = 17
MIN_OPSET = 13   # Squeeze takes its axes as an input from opset 13 on

# fastrnn activation -> ONNX RNN activation name
RNN_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}
# fastrnn Dense activation -> ONNX op applied after MatMul/Add (None: nothing)
DENSE_ACTIVATIONS = {"linear": None, None: None, "relu": ("Relu", {}), "tanh": ("Tanh", {}),
                     "sigmoid": ("Sigmoid", {}), "softmax": ("Softmax", {"axis": -1})}


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(f"to_onnx needs the onnx package, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return onnx


class _Graph:
    """Nodes and initializers of an ONNX graph under construction, with fresh names."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes = []
        self.initializers = []
        self._count = {}

    def name(self, base):
        k = self._count.get(base, 0)
        self._count[base] = k + 1
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
    """A value flowing through the graph: its name, rank and whether time is axis 0."""

    def __init__(self, name, rank, time_major=False):
        self.name, self.rank, self.time_major = name, rank, time_major


def _batch_major(g, t):
    if t.time_major:
        return _Tensor(g.add("Transpose", [t.name], perm=[1, 0, 2]), 3)
    return t


def _float32(w):
    return np.ascontiguousarray(w, dtype=np.float32)


def _convert_simple_rnn(g, layer, x):
    activation = RNN_ACTIVATIONS.get(layer.activation)
    if activation is None:
        raise ValueError(f"layer {layer.name!r}: activation {layer.activation!r} has no "
                         f"ONNX RNN equivalent (supported: {', '.join(RNN_ACTIVATIONS)})")
    if x.rank != 3:
        raise ValueError(f"layer {layer.name!r} expects (batch, time, features) input")
    weights = layer.get_weights()
    kernel, recurrent = weights[0], weights[1]
    H = kernel.shape[1]
    if not x.time_major:
        x = _Tensor(g.add("Transpose", [x.name], perm=[1, 0, 2]), 3, time_major=True)
    inputs = [x.name, g.const("W", _float32(kernel.T[None])),
              g.const("R", _float32(recurrent.T[None]))]
    if layer.use_bias:
        inputs.append(g.const("B", _float32(np.concatenate([weights[2], np.zeros(H)])[None])))
    y, y_h = g.add("RNN", inputs, outputs=2, hidden_size=H, activations=[activation],
                   direction="reverse" if layer.go_backwards else "forward")
    last = _Tensor(g.add("Squeeze", [y_h, g.const("axes", np.array([0], np.int64))]), 2)
    if layer.return_sequences:
        seq = g.add("Squeeze", [y, g.const("axes", np.array([1], np.int64))])
        if layer.go_backwards:   # ONNX: input order; Keras: processing order
            seq = g.add("Slice", [seq, g.const("starts", np.array([-1], np.int64)),
                                  g.const("ends", np.array([np.iinfo(np.int64).min], np.int64)),
                                  g.const("axes", np.array([0], np.int64)),
                                  g.const("steps", np.array([-1], np.int64))])
        out = _Tensor(seq, 3, time_major=True)
    else:
        out = last
    if layer.return_state:
        return [out, last]
    return out


def _convert_dense(g, layer, x):
    if layer.activation not in DENSE_ACTIVATIONS:
        raise ValueError(f"layer {layer.name!r}: activation {layer.activation!r} has no ONNX "
                         f"export yet (supported: "
                         f"{', '.join(str(a) for a in DENSE_ACTIVATIONS if a)})")
    weights = layer.get_weights()
    y = g.add("MatMul", [x.name, g.const("kernel", _float32(weights[0]))])
    if layer.use_bias:
        y = g.add("Add", [y, g.const("bias", _float32(weights[1]))])
    act = DENSE_ACTIVATIONS[layer.activation]
    if act is not None:
        op, attrs = act
        y = g.add(op, [y], **attrs)
    return _Tensor(y, x.rank, x.time_major)


# fastrnn layer class name -> converter(graph, layer, input _Tensor) -> _Tensor or [_Tensor, ...]
CONVERTERS = {"SimpleRNN": _convert_simple_rnn, "Dense": _convert_dense}


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


def _dims(shape, names):
    """ONNX dims: a fixed size stays, a batch/time axis becomes a named dynamic one."""
    return [names[i] if i < len(names) else (None if d is None else int(d))
            for i, d in enumerate(shape)]


def to_onnx(model, path=None, opset=None):
    """Write ``model`` as an ONNX graph that ONNX Runtime (or any ONNX runtime) runs.

    Parameters
    ----------
    model : fastrnn.Sequential
        Built; layers with an ONNX converter (SimpleRNN with a tanh, relu or
        sigmoid activation, Dense).
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (replaced atomically).  None: only
        return the model.
    opset : int, optional
        ONNX operator set, from 13 to the newest the installed ``onnx``
        knows; default 17.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.  One float32 input
        ``"input"`` of shape (batch, time, D) (batch and time dynamic; for a
        Dense-only model (batch, D)), and one output ``"output"`` (plus
        ``"state"``, the last state (batch, H), when the last layer has
        ``return_state=True``).

    Notes
    -----
    The graph computes in float32 whatever the model's dtype (ONNX Runtime's
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
    input_shape = tuple(model.input_shape)
    layers = model.layers
    for layer in layers:
        if type(layer).__name__ not in CONVERTERS:
            raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no ONNX "
                             f"converter (supported: {', '.join(CONVERTERS)})")
    g = _Graph(onnx)
    x = _Tensor("input", len(input_shape))
    for i, layer in enumerate(layers):
        if isinstance(x, list):
            raise ValueError(f"layer {layers[i - 1].name!r} returns its state; "
                             f"it must be the last layer")
        x = CONVERTERS[type(layer).__name__](g, layer, x)
    outputs = x if isinstance(x, list) else [x]
    output_names = ["output", "state"][:len(outputs)]
    output_shapes = model.output_shape
    if not isinstance(output_shapes, list):
        output_shapes = [output_shapes]
    value_infos = []
    for t, name, shape in zip(outputs, output_names, output_shapes):
        t = _batch_major(g, t)
        g.nodes.append(helper.make_node("Identity", [t.name], [name], name=f"{name}_node"))
        value_infos.append(helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, _dims(shape, ["batch", "time"][:len(shape) - 1])))
    axes = ["batch", "time"][:len(input_shape) - 1]
    input_info = helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT,
                                               _dims(input_shape, axes))
    graph = helper.make_graph(
        g.nodes, "fastrnn_" + "".join(c if c.isalnum() else "_" for c in str(model.name)),
        [input_info], value_infos, initializer=g.initializers)
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
