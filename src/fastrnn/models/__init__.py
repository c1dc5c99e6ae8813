"""Models, as ``keras.models``: :class:`Model` (a graph of layer calls, as
``keras.Model(inputs, outputs)``) and :class:`Sequential` (a chain)."""
from .functional import Functional
from .model import Model, WeightFileError
from .sequential import Sequential

__all__ = ["Model", "Functional", "Sequential", "WeightFileError"]
