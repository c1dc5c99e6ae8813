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
    stateful : bool, default False
        Keras's stateful RNN: the last state of sample ``b`` of a batch is
        the initial state of sample ``b`` of the next batch, in ``fit``,
        ``evaluate`` and ``predict`` and across calls, until
        :meth:`reset_states`.  The model needs a fixed batch size
        (``Input(batch_shape=...)`` or ``batch_size=``, or
        ``batch_input_shape=`` on a Sequential's first layer) and every
        batch must have exactly that many samples.  No gradient flows into
        the previous batch (truncated BPTT).  The state is not saved.
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
                 go_backwards=False, stateful=False, dropout=0.0, recurrent_dropout=0.0,
                 input_shape=None, seed=None, dtype=None, name=None, zero_output_for_mask=False,
                 **kwargs):
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
        self.stateful = bool(stateful)
        self._state = None          # (batch, units) once known (see _state_array)
        self._batch = None          # the fixed batch size of the model it runs in
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
        self._require_static_batch(input_shape)
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
        if self.stateful:
            self._require_static_batch(input_shape)
            self._batch = int(input_shape[0])
            node.update(stateful=True, state_owner=self, batch=self._batch)
        return node

    def _eager_call(self, inputs, training):
        if self.stateful:
            raise NotImplementedError(
                f"calling the stateful SimpleRNN {self.name!r} on arrays is not supported yet: "
                f"run it in a model with a fixed batch size (model.predict(x, batch_size=...))")
        return super()._eager_call(inputs, training)

    # -- stateful=True: the state kept between batches --------------------------
    def _require_static_batch(self, input_shape):
        if self.stateful and input_shape[0] is None:
            raise ValueError(f"When using `stateful=True` in a RNN, the batch size must be "
                             f"static. Found dynamic batch size: sequence.shape="
                             f"{_shape_str(input_shape)} (layer {self.name!r}: give the model "
                             f"a batch size, e.g. fastrnn.Input(batch_shape=(batch, steps, "
                             f"features)))")

    def _state_array(self, batch, dtype):
        """The state buffer, (batch, units) of ``dtype``: the one kept, or zeros."""
        state = self._state
        if state is None or state.shape != (batch, self.units):
            state = np.zeros((batch, self.units), dtype)
        elif state.dtype != dtype:
            state = state.astype(dtype)
        self._state = state
        return state

    @property
    def states(self):
        """Keras's ``layer.states``: ``[state]``, the live (batch, units) array of a
        stateful layer whose batch size is known, else None."""
        if not self.stateful or (self._state is None and self._batch is None):
            return None
        if self._state is None:
            self._state_array(self._batch, self.dtype or np.float32)
        return [self._state]

    def reset_state(self, states=None):
        """Zero the state of a stateful layer (nothing to do for another one).

        Parameters
        ----------
        states : array_like of shape (batch, units), or a list of one, optional
            Set the state to these values instead (Keras 2's
            ``reset_states(states)``; Keras 3 only zeroes).
        """
        if states is None:
            if self._state is not None:
                self._state[...] = 0        # in place: the engines hold this buffer
            return
        if not self.stateful:
            raise AttributeError(f"layer {self.name!r} is not stateful: it keeps no state "
                                 f"to set (stateful=False)")
        if isinstance(states, (list, tuple)):
            if len(states) != 1:
                raise ValueError(f"states: SimpleRNN {self.name!r} has 1 state, got "
                                 f"{len(states)} values")
            states = states[0]
        value = np.asarray(states)
        if value.dtype.kind not in "fiu":
            raise TypeError(f"states must hold real numbers, got dtype {value.dtype}")
        batch = self._state.shape[0] if self._state is not None else self._batch
        if batch is None:
            raise ValueError(f"states: layer {self.name!r} has no batch size yet (build its "
                             f"model with a fixed batch size first)")
        if value.shape != (batch, self.units):
            raise ValueError(f"states must have shape ({batch}, {self.units}) (batch, units) "
                             f"for layer {self.name!r}, got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError("states contains NaN or infinity")
        if self._state is None:
            self._state_array(batch, self.dtype or np.float32)
        self._state[...] = value

    def reset_states(self, states=None):
        """Alias of :meth:`reset_state` (Keras keeps it for compatibility)."""
        self.reset_state(states)


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
            go_backwards=True, stateful=layer.stateful, dropout=layer.dropout,
            recurrent_dropout=layer.recurrent_dropout,
            seed=None if layer.seed is None else layer.seed + 1, dtype=layer._dtype_arg,
            name="backward_" + layer.name)
        self.return_sequences = layer.return_sequences
        # as Keras: a returned sequence is 0 at masked steps in both directions
        layer.zero_output_for_mask = self.backward_layer.zero_output_for_mask = \
            layer.return_sequences
        self.stateful = layer.stateful

    def _rng(self):
        return self.forward_layer._rng()

    @property
    def states(self):
        """The forward and the backward layer's states (stateful), else None."""
        if self.forward_layer.states and self.backward_layer.states:
            return tuple(self.forward_layer.states + self.backward_layer.states)
        return None

    def reset_state(self):
        """Zero both layers' states (as Keras: only for a stateful layer)."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def reset_states(self):
        """Alias of :meth:`reset_state`."""
        self.reset_state()

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
