"""The :class:`Embedding` layer: integer indices to dense vectors, as Keras 3's."""
import numpy as np

from .. import initializers
from .layer import Layer, _check_units, _shape_str

__all__ = ["Embedding"]


class Embedding(Layer):
    """Turns indices into rows of a trained table, as ``keras.layers.Embedding``.

    ``out[b, t] = embeddings[int(x[b, t])]``: (B, L) -> (B, L, output_dim).
    Indices may come as integers or floats (truncated toward zero, as
    Keras's cast to int32); every index must be in ``[0, input_dim)`` --
    anything else is a ``ValueError`` before any computation (the compiled
    kernel never reads outside the table).  The gradient of the table is the
    scatter-add of the output gradient's rows at their indices.

    Parameters
    ----------
    input_dim : int
        The vocabulary size: the largest index + 1.
    output_dim : int
        The size of each vector.
    embeddings_initializer : str or callable, default "uniform"
        Keras's default: uniform on [-0.05, 0.05).
    mask_zero : bool, default False
        Index 0 is padding: the output carries a step mask (``inputs != 0``)
        that flows as in Keras 3 -- a SimpleRNN it reaches skips those steps,
        and they count in no loss or metric of an output that carries it.
    weights : ndarray of shape (input_dim, output_dim), optional
        Initial table (e.g. pretrained vectors).
    input_length : int, optional
        Deprecated in Keras 3 and ignored there; accepted here for old code.

    Notes
    -----
    Input (B, L) of indices; weight ``embeddings`` (input_dim, output_dim).
    With float32 models the indices travel as float32, exact up to 2**24.
    """

    _default_name = "embedding"

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, input_length=None, name=None, **kwargs):
        super().__init__(name=name, embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, **kwargs)
        self.input_dim = _check_units(input_dim, "input_dim")
        self.output_dim = _check_units(output_dim, "output_dim")
        if embeddings_initializer == "uniform":    # Keras's alias
            embeddings_initializer = initializers.RandomUniform(-0.05, 0.05)
        self.embeddings_initializer = initializers.get(embeddings_initializer,
                                                       "embeddings_initializer")
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self._initial = None
        if weights is not None:
            if isinstance(weights, (list, tuple)) and len(weights) == 1:
                weights = weights[0]
            table = np.asarray(weights)
            if table.shape != (self.input_dim, self.output_dim):
                raise ValueError(f"weights must have shape ({self.input_dim}, "
                                 f"{self.output_dim}), got {table.shape}")
            if table.dtype.kind not in "fiu" or not np.all(np.isfinite(table)):
                raise ValueError("weights must hold finite real numbers")
            self._initial = table

    def _takes_indices(self):
        return True

    def _check_call_inputs(self, shapes):
        if len(shapes[0]) != 2:
            raise ValueError(f"Embedding {self.name!r} takes indices of shape (batch, "
                             f"length), got shape {_shape_str(shapes[0])}")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _weight_specs(self, input_shape):
        return [("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer)]

    def _after_build(self, values):
        if self._initial is not None:
            self.embeddings[...] = self._initial
            self._initial = None

    def _output_dtype(self, input_dtypes):
        return self.dtype.name

    def compute_mask(self, inputs, mask=None):
        """``inputs != 0`` with ``mask_zero``, else None (as Keras)."""
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def _node(self, input_shape):
        if self.dtype == np.float32 and self.input_dim > 2**24:
            raise ValueError(f"Embedding {self.name!r}: input_dim={self.input_dim} is more "
                             f"than float32 indices hold exactly (2**24); use dtype='float64'")
        return {"kind": "embedding", "width": self.output_dim, "seq": True,
                "arg": self.input_dim, "p0": "embeddings", "masked": self.mask_zero}
