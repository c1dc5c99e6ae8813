"""Layers, as ``keras.layers``: one module per family.

- :mod:`.core`: :class:`Dense`, :class:`Activation`, :class:`Dropout`,
  :class:`Flatten`, :class:`Reshape`, :class:`RepeatVector`
- :mod:`.rnn`: :class:`SimpleRNN`, :class:`Bidirectional`
- :mod:`.embedding`: :class:`Embedding`
- :mod:`.masking`: :class:`Masking`
- :mod:`.merging`: :class:`Concatenate`, :class:`Add`, :class:`Subtract`,
  :class:`Multiply`, :class:`Average` (and ``concatenate``, ``add``, ...)
- :mod:`.wrappers`: :class:`TimeDistributed`
- :mod:`.pooling`: :class:`GlobalMaxPooling1D`, :class:`GlobalAveragePooling1D`
- :mod:`.cells`: :class:`RNN` of a :class:`SimpleRNNCell` (a SimpleRNN)
- :mod:`.lambda_layer`: :class:`Lambda` (scale/shift and reshape functions)
- :mod:`.input_layer`: :func:`Input`, :class:`InputLayer`
- :mod:`.layer`: the base :class:`Layer` and the functional API's
  :class:`KerasTensor`

A layer's weights are C-contiguous views into a flat buffer, in Keras's
names, shapes and order:

- ``SimpleRNN``: ``kernel`` (D, H), ``recurrent_kernel`` (H, H), ``bias`` (H,)
- ``Dense`` (and ``TimeDistributed(Dense)``): ``kernel`` (D, U), ``bias`` (U,)
- ``Embedding``: ``embeddings`` (input_dim, output_dim)

(without ``bias`` when ``use_bias=False``).  Layers describe; the compiled
engine (:mod:`fastrnn.engine`) computes.
"""
from .core import Activation, Dense, Dropout, Flatten, Reshape, RepeatVector
from .embedding import Embedding
from .input_layer import Input, InputLayer
from .layer import (KerasTensor, Layer, Node, clear_session)
# helpers other modules import from fastrnn.layers
from .layer import _check_dtype, _check_shape, _check_units, _shape_str, _unique_name  # noqa: F401
from .merging import (Add, Average, Concatenate, Multiply, Subtract, add, average, concatenate,
                      multiply, subtract)
from .masking import Masking
from .pooling import GlobalAveragePooling1D, GlobalAvgPool1D, GlobalMaxPool1D, GlobalMaxPooling1D
from .cells import RNN, SimpleRNNCell
from .lambda_layer import Lambda
from .rnn import Bidirectional, SimpleRNN
from .wrappers import TimeDistributed

__all__ = [
    "Layer", "InputLayer", "Input", "KerasTensor", "SimpleRNN", "Dense", "Activation",
    "Dropout", "Flatten", "Reshape", "RepeatVector", "Embedding", "TimeDistributed",
    "Concatenate", "Add", "Subtract", "Multiply", "Average", "concatenate", "add", "subtract",
    "multiply", "average", "clear_session", "Bidirectional", "Masking",
    "GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPool1D", "GlobalAvgPool1D",
    "RNN", "SimpleRNNCell", "Lambda",
]
