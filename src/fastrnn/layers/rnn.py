"""Recurrent layers: :class:`SimpleRNN` (Keras 3's names, arguments, shapes and weights).

The recurrence runs in the compiled engine (``rnn_forward_k`` /
``rnn_backward_k``): one node, whose input is the sequence.  The node keeps
room for more inputs (a step mask or lengths, an initial state) in the
engine's input table.
"""
import numpy as np

from .. import activations, initializers
from .layer import Layer, _check_units, _shape_str

__all__ = ["SimpleRNN"]


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
                 seed=None, dtype=None, name=None, **kwargs):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, **kwargs)
        self.units = _check_units(units)
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
