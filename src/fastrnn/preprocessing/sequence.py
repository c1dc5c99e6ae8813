"""``keras.preprocessing.sequence``: :func:`pad_sequences` (the same as ``fastrnn.utils``'s)."""
from ..utils.sequence_utils import pad_sequences

__all__ = ["pad_sequences"]
