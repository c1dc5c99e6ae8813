"""Models, as ``keras.models``: :class:`Sequential` (a stack of layers)."""
from .sequential import Sequential, WeightFileError

__all__ = ["Sequential", "WeightFileError"]
