"""``keras.backend``'s everyday names, so programs written for Keras run unchanged.

Tutorials call ``keras.backend.clear_session()`` between experiments and
read ``floatx()``/``epsilon()``; fastrnn has one backend (its compiled
engine), so these are small:

- :func:`clear_session` restarts the automatic layer and model names (as
  Keras does; ``free_memory`` is accepted).
- :func:`floatx` is ``"float32"`` (fastrnn's default dtype; a float64 model
  is asked for with ``dtype="float64"`` on its Input or layers).
- :func:`epsilon` is ``1e-7``, the constant Keras's losses clip with.
- :func:`backend` names the backend: ``"fastrnn"``.
"""
from .layers.layer import clear_session as _clear_names
from .layers.layer import KerasTensor

__all__ = ["backend", "clear_session", "epsilon", "floatx", "is_keras_tensor"]


def clear_session(free_memory=True):
    """Restart automatic names (``dense``, ``dense_1``, ...), as ``keras.backend.clear_session``.

    Parameters
    ----------
    free_memory : bool, default True
        Accepted for Keras compatibility (fastrnn holds no global graph or
        device memory to free).
    """
    _clear_names()


def backend():
    """The name of the backend: ``"fastrnn"`` (its compiled engine)."""
    return "fastrnn"


def floatx():
    """The default float dtype, ``"float32"``, as Keras's default ``floatx()``."""
    return "float32"


def epsilon():
    """The fuzz factor Keras's losses and metrics use, ``1e-7``."""
    return 1e-7


def is_keras_tensor(x):
    """True for a symbolic tensor of the functional API (from ``Input`` or a layer call)."""
    return isinstance(x, KerasTensor)
