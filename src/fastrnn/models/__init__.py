"""Models, as ``keras.models``: :class:`Model` (a graph of layer calls, as
``keras.Model(inputs, outputs)``), :class:`Sequential` (a chain), :func:`load_model`,
:func:`save_model`, :func:`clone_model`."""
from ..saving import load_model as _load_archive
from .cloning import clone_model
from .functional import Functional
from .model import Model, WeightFileError
from .sequential import Sequential

__all__ = ["Model", "Functional", "Sequential", "WeightFileError", "load_model", "clone_model",
           "save_model"]


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """``keras.models.load_model``: the model of a ``.keras`` archive, compiled as the
    file's ``compile_config`` says (``compile=False``: uncompiled); see
    :func:`fastrnn.saving.load_model` and :mod:`fastrnn.trainers.compile_config`.

    ``custom_objects`` and ``safe_mode`` are accepted for Keras compatibility
    (fastrnn loads no code from files).
    """
    model = _load_archive(filepath)
    if compile:
        from ..trainers.compile_config import compile_from_config, read_compile_config
        config = read_compile_config(filepath)
        if config is not None:
            compile_from_config(model, config)
    return model


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
