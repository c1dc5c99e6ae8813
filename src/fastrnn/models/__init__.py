"""Models, as ``keras.models``: :class:`Model` (a graph of layer calls, as
``keras.Model(inputs, outputs)``), :class:`Sequential` (a chain), :func:`load_model`,
:func:`clone_model`."""
from ..saving import load_model
from .cloning import clone_model
from .functional import Functional
from .model import Model, WeightFileError
from .sequential import Sequential

__all__ = ["Model", "Functional", "Sequential", "WeightFileError", "load_model", "clone_model"]
