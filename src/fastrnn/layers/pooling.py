"""Pooling over time: :class:`GlobalMaxPooling1D`, :class:`GlobalAveragePooling1D`
(Keras 3's names, arguments and shapes; aliases ``GlobalMaxPool1D``, ``GlobalAvgPool1D``).

(B, T, F) -> (B, F): the maximum or the mean of every feature over the steps,
one engine node (``pool_time``).  The gradient of the maximum goes to the steps
that reach it, shared equally among ties (JAX's rule: ``relu`` sequences tie at
0 often).  Masks as in Keras: the average is over the kept steps only (the step
mask of the input, in the engine); the maximum ignores the mask (every step's
value, masked ones as the layer below gave them); no mask goes further.
"""
from .layer import Layer, _shape_str

__all__ = ["GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPool1D",
           "GlobalAvgPool1D"]


class _GlobalPooling1D(Layer):
    _mean = 0

    def __init__(self, data_format=None, keepdims=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(f"data_format={data_format!r}: only channels_last "
                                      f"(batch, steps, features) is supported")
        if keepdims:
            raise NotImplementedError("keepdims=True is not supported yet")
        self.data_format = "channels_last"
        self.keepdims = False

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[2] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank 3 "
                             f"(batch, steps, features), got shape {_shape_str(input_shape)}")
        return (input_shape[0], input_shape[2])

    def _node(self, input_shape):
        self.compute_output_shape(input_shape)
        return {"kind": "pool_time", "width": input_shape[2], "seq": False, "arg": self._mean}


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum of every feature over the steps, as ``keras.layers.GlobalMaxPooling1D``."""

    _default_name = "global_max_pooling1d"
    _mean = 0


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean of every feature over the steps, as ``keras.layers.GlobalAveragePooling1D``."""

    _default_name = "global_average_pooling1d"
    _mean = 1


GlobalMaxPool1D = GlobalMaxPooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
