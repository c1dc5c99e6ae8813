"""Models, as ``keras.models``: :class:`Model` (a graph of layer calls, as
``keras.Model(inputs, outputs)``), :class:`Sequential` (a chain), :func:`load_model`,
:func:`save_model`, :func:`clone_model`."""
from ..saving import load_model
from .cloning import clone_model
from .functional import Functional
from .model import Model, WeightFileError
from .sequential import Sequential

__all__ = ["Model", "Functional", "Sequential", "WeightFileError", "load_model", "clone_model",
           "save_model"]


def save_model(model, filepath, overwrite=True, **kwargs):
    """``keras.models.save_model``: the same as ``model.save(filepath)``."""
    if kwargs:
        raise TypeError(f"save_model got unexpected keyword arguments: "
                        f"{', '.join(sorted(kwargs))}")
    if not overwrite:
        import os
        if os.path.exists(os.fspath(filepath)):
            raise FileExistsError(f"{filepath!r} exists and overwrite=False")
    model.save(filepath)
