"""``keras.config``'s everyday names: ``floatx``, ``epsilon``, ``backend``,
``set_floatx`` (float32 only: ask for float64 per model with ``dtype="float64"``
on its Input or layers), ``enable_unsafe_deserialization`` (accepted; fastrnn's
files never hold code)."""
from .backend import backend, epsilon, floatx

__all__ = ["backend", "epsilon", "floatx", "set_floatx", "enable_unsafe_deserialization"]


def set_floatx(value):
    """Keras's global default dtype: only ``"float32"`` (fastrnn's default) is accepted."""
    if value != "float32":
        raise NotImplementedError(f"set_floatx({value!r}): the default dtype stays float32; "
                                  f"make a float64 model with dtype='float64' on its Input "
                                  f"or layers")


def enable_unsafe_deserialization():
    """Accepted for Keras compatibility: fastrnn loads no code from files."""
