"""Masking: :class:`Masking`, as Keras 3's."""
import numpy as np

from .layer import Layer, _shape_str

__all__ = ["Masking"]


class Masking(Layer):
    """Masks the steps whose features all equal ``mask_value``, as ``keras.layers.Masking``.

    The output is the input with masked steps set to zero, and carries a step
    mask that flows as in Keras 3 (Dense, Activation, Dropout, TimeDistributed
    and returned sequences pass it on; merges OR it): a SimpleRNN it reaches
    skips the masked steps (it carries its state through them, and a returned
    sequence holds the carried state there, Keras's JAX rule), in the
    compiled recurrence, and masked steps of an output count in no loss or
    metric.

    Parameters
    ----------
    mask_value : float, default 0.0

    Notes
    -----
    Input (B, T, F).
    """

    _default_name = "masking"

    def __init__(self, mask_value=0.0, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer,
                                                                       np.floating)):
            raise ValueError(f"mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Masking {self.name!r} expects input of rank 3 (batch, time "
                             f"steps, features), got shape {_shape_str(input_shape)}")
        return tuple(input_shape)

    def _node(self, input_shape):
        return {"kind": "masking", "width": input_shape[2], "seq": True,
                "real": self.mask_value}
