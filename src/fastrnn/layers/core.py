"""Core layers: :class:`Dense`, :class:`Activation`, :class:`Dropout`, :class:`Flatten`,
:class:`Reshape`, :class:`RepeatVector` (Keras 3's names, arguments and shapes).

fastrnn computes on tensors of rank 2, (batch, features), and 3, (batch,
steps, features); these layers take and give those.
"""
import math

import numpy as np

from .. import activations, initializers
from .layer import Layer, _check_units, _shape_str, _tensor_layout

__all__ = ["Dense", "Activation", "Dropout", "Flatten", "Reshape", "RepeatVector"]


class Dense(Layer):
    """Fully connected layer on the last axis, as ``keras.layers.Dense``.

    ``y = activation(x @ kernel + bias)``; on 3-D input (B, T, D) it is
    applied at every time step, giving (B, T, U), so
    ``SimpleRNN(return_sequences=True)`` + ``Dense`` is many-to-many.

    Parameters
    ----------
    units : int
        U, the number of outputs.
    activation : str, callable or None, default None
        Any of :data:`fastrnn.activations.SUPPORTED` (None: linear).
    use_bias : bool, default True
    kernel_initializer : str or callable, default "glorot_uniform"
    bias_initializer : str or callable, default "zeros"
    input_shape : tuple of int, optional
    dtype : {"float32", "float64"}, optional
    name : str, optional

    Notes
    -----
    Input (..., D); weights ``kernel`` (D, U), ``bias`` (U,).
    """

    _default_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", input_shape=None, dtype=None, name=None, **kwargs):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype, **kwargs)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Dense {self.name!r} expects input of rank >= 2 "
                             f"(batch, ..., features), got shape {_shape_str(input_shape)}")
        if input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: the number of features (last axis) "
                             f"must be known, got shape {_shape_str(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def _weight_specs(self, input_shape):
        specs = [("kernel", (input_shape[-1], self.units), self.kernel_initializer)]
        if self.use_bias:
            specs.append(("bias", (self.units,), self.bias_initializer))
        return specs

    def _node(self, input_shape):
        seq, _, _ = _tensor_layout(input_shape, f"Dense {self.name!r}")
        return {"kind": "dense", "width": self.units, "activation": self.activation,
                "seq": seq, "p0": "kernel", "p2": "bias"}


class Activation(Layer):
    """Applies an activation function, as ``keras.layers.Activation``.

    Parameters
    ----------
    activation : str, callable or None
        Any of :data:`fastrnn.activations.SUPPORTED` (softmax and
        log_softmax act on the last axis).
    """

    _default_name = "activation"

    def __init__(self, activation, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.activation = activations.get(activation)

    def _node(self, input_shape):
        seq, _, width = _tensor_layout(input_shape, f"Activation {self.name!r}")
        return {"kind": "activation", "width": width, "seq": seq,
                "activation": self.activation}


class Dropout(Layer):
    """Sets a fraction ``rate`` of its inputs to 0 in training, as ``keras.layers.Dropout``.

    Keras's inverted dropout: while training (``fit``, ``train_on_batch``)
    each element is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``, else set to 0; ``predict`` and ``evaluate`` pass the
    input through.  The masks come from a counter-based random stream of
    ``seed``, drawn in the engine (no allocation per step): a seeded layer
    gives the same masks every run (not Keras's masks: its random numbers
    are not fastrnn's).

    Parameters
    ----------
    rate : float in [0, 1]
    noise_shape : None
        Only None (a mask element for every input element) is supported.
    seed : int, optional
        Default: drawn from fastrnn's global generator
        (:func:`fastrnn.set_random_seed` makes it reproducible).
    """

    _default_name = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0 <= rate <= 1:
            raise ValueError(f"rate must be a float in [0, 1], got {rate!r}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout noise_shape is not supported yet (only None)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.rate = float(rate)
        self.noise_shape = None
        self.seed = seed
        self._seed = (int(seed) if seed is not None
                      else int(initializers._next_generator().integers(0, 2**63)))

    def _node(self, input_shape):
        seq, _, width = _tensor_layout(input_shape, f"Dropout {self.name!r}")
        # the seed's low 64 bits, as the engine's int64 field holds them
        seed = (self._seed + 2**63) % 2**64 - 2**63
        return {"kind": "dropout", "width": width, "seq": seq, "arg": seed, "real": self.rate}


class Flatten(Layer):
    """Flattens each sample, as ``keras.layers.Flatten``: (B, T, F) -> (B, T*F).

    The number of steps must be known (``Input(shape=(T, F))`` with T set).
    """

    _default_name = "flatten"

    def __init__(self, data_format=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if data_format not in (None, "channels_last"):
            raise NotImplementedError("Flatten: only data_format='channels_last' is supported")
        self.data_format = "channels_last"

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if not rest:
            return (input_shape[0], 1)
        return (input_shape[0], None if any(d is None for d in rest) else math.prod(rest))

    def _node(self, input_shape):
        seq, steps, width = _tensor_layout(input_shape, f"Flatten {self.name!r}")
        if steps is None:
            raise ValueError(f"Flatten {self.name!r}: the number of steps must be known to "
                             f"flatten, got input shape {_shape_str(input_shape)} (give the "
                             f"Input a fixed length)")
        return {"kind": "relayout", "width": steps * width, "seq": False, "steps": 1}


def _resolve_reshape(input_shape, target, name):
    """Keras's target shape with its -1 filled in from ``input_shape`` (no batch axis)."""
    size = None if any(d is None for d in input_shape) else math.prod(input_shape)
    if target.count(-1) > 1:
        raise ValueError(f"Reshape {name!r}: target_shape may hold one -1, got {target}")
    if -1 in target:
        known = math.prod(t for t in target if t != -1)
        if size is None:
            return tuple(None if t == -1 else t for t in target)
        if size % known:
            raise ValueError(f"Reshape {name!r}: cannot reshape input of shape "
                             f"{_shape_str(input_shape)} ({size} values) into {target}")
        return tuple(size // known if t == -1 else t for t in target)
    if size is not None and math.prod(target) != size:
        raise ValueError(f"Reshape {name!r}: cannot reshape input of shape "
                         f"{_shape_str(input_shape)} ({size} values) into target_shape "
                         f"{target} ({math.prod(target)} values)")
    return tuple(target)


class Reshape(Layer):
    """Reshapes each sample, as ``keras.layers.Reshape``.

    Parameters
    ----------
    target_shape : tuple of int
        Without the batch axis; one entry may be -1 (inferred).  fastrnn
        takes targets of rank 1, (F,), or 2, (T, F).
    """

    _default_name = "reshape"

    def __init__(self, target_shape, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        try:
            target = tuple(target_shape)
        except TypeError:
            raise TypeError(f"target_shape must be a tuple of ints, got "
                            f"{target_shape!r}") from None
        if not target or any(isinstance(t, bool) or not isinstance(t, (int, np.integer))
                             or (t < 1 and t != -1) for t in target):
            raise ValueError(f"target_shape must hold positive ints (one may be -1), "
                             f"got {target_shape!r}")
        self.target_shape = tuple(int(t) for t in target)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + _resolve_reshape(tuple(input_shape[1:]), self.target_shape,
                                                    self.name)

    def _node(self, input_shape):
        _, steps, _ = _tensor_layout(input_shape, f"Reshape {self.name!r}")
        out = self.compute_output_shape(input_shape)
        if steps is None or any(d is None for d in out[1:]):
            raise ValueError(f"Reshape {self.name!r}: the input's shape must be known, got "
                             f"{_shape_str(input_shape)}")
        seq, out_steps, width = _tensor_layout(out, f"Reshape {self.name!r} (its output)")
        return {"kind": "relayout", "width": width, "seq": seq, "steps": out_steps}


class RepeatVector(Layer):
    """Repeats its input n times, as ``keras.layers.RepeatVector``: (B, F) -> (B, n, F).

    The encoder-decoder pattern: an encoder's last state repeated as the
    decoder's input sequence.
    """

    _default_name = "repeat_vector"

    def __init__(self, n, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.n = _check_units(n, "n")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector {self.name!r} expects input of rank 2 (batch, "
                             f"features), got shape {_shape_str(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def _node(self, input_shape):
        _, _, width = _tensor_layout(input_shape, f"RepeatVector {self.name!r}")
        return {"kind": "repeat", "width": width, "seq": True, "steps": self.n}
