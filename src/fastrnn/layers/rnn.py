"""Recurrent layers: :class:`SimpleRNN` (Keras 3's names, arguments, shapes and weights).

The recurrence runs in the compiled engine (``rnn_forward_k`` /
``rnn_backward_k``): one node, whose input is the sequence.  The node keeps
room for more inputs (a step mask or lengths, an initial state) in the
engine's input table.
"""
import numpy as np

from .. import activations, initializers
from .layer import Layer, _check_units, _is_symbolic, _shape_str

__all__ = ["SimpleRNN", "Bidirectional"]


def _rate(value, name):
    """A dropout rate: a real number in [0, 1] (Keras clips; a typo should not pass)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


class SimpleRNN(Layer):
    """Fully connected recurrent layer (Elman RNN), as ``keras.layers.SimpleRNN``.

    ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``
    from ``h_0 = 0``; the recurrence runs in the compiled engine.

    Parameters
    ----------
    units : int
        H, the size of the state.
    activation : str, callable or None, default "tanh"
        Any of :data:`fastrnn.activations.SUPPORTED` (None: linear).
    use_bias : bool, default True
    kernel_initializer : str or callable, default "glorot_uniform"
    recurrent_initializer : str or callable, default "orthogonal"
    bias_initializer : str or callable, default "zeros"
    return_sequences : bool, default False
        Output every state, (B, T, H), instead of the last, (B, H).
    return_state : bool, default False
        Output ``[output, last_state]``; only as the last layer of a model,
        for prediction (``fit`` does not train through it).
    go_backwards : bool, default False
        Process the sequence in reverse; as in Keras, a returned sequence is
        then in processing (reversed) order.
    dropout : float in [0, 1], default 0
        Training only: the fraction of the input features dropped, with
        Keras's mask (one per sequence, the same at every step; kept values
        scaled by ``1 / (1 - rate)``), drawn in the engine.
    recurrent_dropout : float in [0, 1], default 0
        The same for the previous state where it enters ``recurrent_kernel``.
    input_shape : tuple of int, optional
        ``(T, D)``; T may be None.
    zero_output_for_mask : bool, default False
        With a mask on the input (Masking, Embedding(mask_zero=True)), a
        returned sequence is 0 at masked steps instead of the carried state
        (Keras's option; Bidirectional sets it with return_sequences).
    seed : int, optional
        Seeds this layer's initializers and its dropout masks' stream.
        Without it the global generator (:func:`fastrnn.set_random_seed`)
        is used.
    dtype : {"float32", "float64"}, optional
    name : str, optional

    Notes
    -----
    Input (B, T, D); weights ``kernel`` (D, H), ``recurrent_kernel`` (H, H),
    ``bias`` (H,).
    """

    _default_name = "simple_rnn"

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences=False, return_state=False,
                 go_backwards=False, dropout=0.0, recurrent_dropout=0.0, input_shape=None,
                 seed=None, dtype=None, name=None, zero_output_for_mask=False, **kwargs):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, **kwargs)
        self.units = _check_units(units)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = initializers.get(recurrent_initializer,
                                                      "recurrent_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        # the masks' stream: the seed, or one number of the global generator
        # (drawn only when there is dropout: other models' weights stay as they were),
        # its low 64 bits as the engine's int64 field holds them
        seed64 = (int(seed) if seed is not None
                  else int(initializers._next_generator().integers(0, 2**63))
                  if self.dropout > 0 or self.recurrent_dropout > 0 else 0)
        self._seed = (seed64 + 2**63) % 2**64 - 2**63

    def _rng(self):
        return None if self.seed is None else np.random.default_rng(self.seed)

    def __call__(self, inputs, training=None, mask=None, initial_state=None, **kwargs):
        """As :meth:`Layer.__call__`; ``initial_state``: a symbolic (B, H) tensor
        (or a list of one) the recurrence starts from instead of zeros, an
        input of the engine node (it gets a gradient)."""
        if initial_state is None:
            return super().__call__(inputs, training=training, mask=mask, **kwargs)
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
            else [initial_state]
        if len(states) != 1 or not _is_symbolic(inputs) or not _is_symbolic(states[0]):
            raise ValueError(f"initial_state of SimpleRNN {self.name!r} must be one symbolic "
                             f"tensor of shape (batch, {self.units}) (arrays: not yet)")
        h0 = states[0]
        if len(h0.shape) != 2 or h0.shape[1] != self.units:
            raise ValueError(f"initial_state of SimpleRNN {self.name!r} must have shape "
                             f"(batch, {self.units}), got {_shape_str(h0.shape)}")
        if mask is not None or kwargs:
            return super().__call__(inputs, training=training, mask=mask, **kwargs)
        out = self._symbolic_call(inputs, {"training": training} if training else {})
        # the call's node takes the state as its second input (graph edge and engine input)
        self._inbound_nodes[-1].input_tensors.append(h0)
        return out

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"SimpleRNN {self.name!r} expects input of rank 3 "
                             f"(batch, time steps, features), got shape {_shape_str(input_shape)}")
        if input_shape[2] is None:
            raise ValueError(f"SimpleRNN {self.name!r}: the number of features (last axis) "
                             f"must be known, got shape {_shape_str(input_shape)}")
        B, T, _ = input_shape
        out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out, (B, self.units)]
        return out

    def _weight_specs(self, input_shape):
        D, H = input_shape[2], self.units
        specs = [("kernel", (D, H), self.kernel_initializer),
                 ("recurrent_kernel", (H, H), self.recurrent_initializer)]
        if self.use_bias:
            specs.append(("bias", (H,), self.bias_initializer))
        return specs

    def _node(self, input_shape):
        node = {"kind": "simple_rnn", "width": self.units, "activation": self.activation,
                "seq": self.return_sequences, "backwards": self.go_backwards,
                "p0": "kernel", "p1": "recurrent_kernel", "p2": "bias"}
        if self.zero_output_for_mask:
            node["zero_masked"] = True
        if self.dropout > 0 or self.recurrent_dropout > 0:
            node.update(arg=self._seed, real=self.dropout,
                        real2=self.recurrent_dropout)
        return node


    def _lower_call(self, input_shape, inputs, base, first):
        rnn = self._lowered(input_shape, inputs, base)
        if not self.return_state:
            return [rnn], [0]
        if not self.return_sequences:       # the output is the final state
            return [rnn], [0, 0]
        # the final state is the returned sequence's last step (in processing order)
        last = {"kind": "last_step", "inputs": [first], "width": self.units, "seq": False}
        return [rnn, last], [0, 1]


_MERGE_NODES = {"concat": "concat", "sum": "add", "mul": "multiply", "ave": "average"}


class Bidirectional(Layer):
    """A SimpleRNN run forwards and backwards, outputs merged, as ``keras.layers.Bidirectional``.

    Two recurrent nodes of the engine (the second with ``go_backwards``, its
    returned sequence put back in input order, as Keras does) and a merge node.

    Parameters
    ----------
    layer : SimpleRNN
        The forward layer's configuration; the backward layer is its copy
        going backwards.  ``go_backwards`` and ``return_state`` on it are
        not supported yet.
    merge_mode : {"concat", "sum", "mul", "ave", None}, default "concat"
        How the two outputs combine; None returns ``[forward, backward]``.

    Notes
    -----
    Weights, in Keras's order: the forward layer's (``kernel``,
    ``recurrent_kernel``, ``bias``), then the backward layer's.  Output
    (B, [T,] 2H) for "concat", (B, [T,] H) otherwise.
    """

    _default_name = "bidirectional"

    def __init__(self, layer, merge_mode="concat", name=None, **kwargs):
        if not isinstance(layer, SimpleRNN):
            raise TypeError(f"Bidirectional wraps a SimpleRNN, got {type(layer).__name__}")
        if merge_mode is not None and merge_mode not in _MERGE_NODES:
            raise ValueError(f"merge_mode must be one of {sorted(_MERGE_NODES)} or None, "
                             f"got {merge_mode!r}")
        if layer.go_backwards or layer.return_state:
            raise NotImplementedError("Bidirectional of a SimpleRNN with go_backwards or "
                                      "return_state is not supported yet")
        if layer._input_shape_arg is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = layer._input_shape_arg[1:]
        super().__init__(name=name, dtype=kwargs.pop("dtype", layer._dtype_arg), **kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        self.backward_layer = SimpleRNN(
            layer.units, activation=layer.activation, use_bias=layer.use_bias,
            kernel_initializer=layer.kernel_initializer,
            recurrent_initializer=layer.recurrent_initializer,
            bias_initializer=layer.bias_initializer, return_sequences=layer.return_sequences,
            go_backwards=True, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout,
            seed=None if layer.seed is None else layer.seed + 1, dtype=layer._dtype_arg,
            name="backward_" + layer.name)
        self.return_sequences = layer.return_sequences
        # as Keras: a returned sequence is 0 at masked steps in both directions
        layer.zero_output_for_mask = self.backward_layer.zero_output_for_mask = \
            layer.return_sequences

    def _rng(self):
        return self.forward_layer._rng()

    def compute_output_shape(self, input_shape):
        one = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode is None:
            return [one, one]
        if self.merge_mode == "concat":
            return tuple(one[:-1]) + (2 * one[-1],)
        return one

    def _weight_specs(self, input_shape):
        return ([("forward_" + n, s, i) for n, s, i in
                 self.forward_layer._weight_specs(input_shape)]
                + [("backward_" + n, s, i) for n, s, i in
                   self.backward_layer._weight_specs(input_shape)])

    def _lower_call(self, input_shape, inputs, base, first):
        offsets = self._weight_offsets()
        nodes = []
        for prefix, layer in (("forward_", self.forward_layer),
                              ("backward_", self.backward_layer)):
            node = dict(layer._node(input_shape), inputs=list(inputs))
            for key in ("p0", "p1", "p2"):
                name = prefix + node[key]
                node[key] = base + offsets[name] if name in offsets else -1
            node["input_order"] = layer.go_backwards      # Keras flips it back
            nodes.append(node)
        if self.merge_mode is None:
            return nodes, [0, 1]
        H = self.forward_layer.units
        nodes.append({"kind": _MERGE_NODES[self.merge_mode], "inputs": [first, first + 1],
                      "width": 2 * H if self.merge_mode == "concat" else H,
                      "seq": self.return_sequences})
        return nodes, [2]
