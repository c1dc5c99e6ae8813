"""Layer wrappers: :class:`TimeDistributed`, as Keras 3's."""
from .core import Activation, Dense, Dropout
from .layer import Layer, _shape_str

__all__ = ["TimeDistributed"]


class TimeDistributed(Layer):
    """Applies a layer to every time step, as ``keras.layers.TimeDistributed``.

    ``TimeDistributed(Dense(U))`` on (B, T, F) gives (B, T, U) with one
    kernel (F, U) and bias (U,) shared by all steps -- the same node as a
    Dense on a sequence.  The wrapped layer may be a Dense, an Activation or
    a Dropout; its weights are the wrapper's (same names, same order).

    Parameters
    ----------
    layer : Dense, Activation or Dropout
    """

    _default_name = "time_distributed"
    _SUPPORTED = (Dense, Activation, Dropout)

    def __init__(self, layer, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a fastrnn layer, got {type(layer).__name__}")
        if not isinstance(layer, self._SUPPORTED):
            raise NotImplementedError(f"TimeDistributed({type(layer).__name__}) is not supported "
                                      f"yet; it wraps Dense, Activation or Dropout")
        self.layer = layer
        self.dtype = self.dtype or layer.dtype

    def _inner_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects input of rank 3 (batch, "
                             f"time steps, features), got shape {_shape_str(input_shape)}")
        return (input_shape[0],) + tuple(input_shape[2:])

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._inner_shape(input_shape))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def _weight_specs(self, input_shape):
        return self.layer._weight_specs(self._inner_shape(input_shape))

    def build(self, input_shape, dtype=None):
        super().build(input_shape, dtype)
        inner = self.layer
        inner.dtype = self.dtype
        inner._specs = list(self._specs)
        inner.input_shape = self._inner_shape(input_shape)
        inner.output_shape = inner.compute_output_shape(inner.input_shape)
        inner.built = True
        inner._bind(self._flat, self._grad_flat)

    def _bind(self, params, grads):
        super()._bind(params, grads)
        self._grad_flat = grads
        if self.layer.built:
            self.layer._bind(params, grads)

    def _node(self, input_shape):
        return self.layer._node(input_shape)
