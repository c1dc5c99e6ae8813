"""Models, as ``keras.models``: :class:`Sequential` (a stack of layers), :func:`load_model`."""
from ..saving import load_model
from .sequential import Sequential, WeightFileError

__all__ = ["Sequential", "WeightFileError", "load_model"]
