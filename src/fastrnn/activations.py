"""Activations by Keras's names, as ``keras.activations``.

A layer's ``activation`` argument is a name (``"tanh"``), ``None`` (linear)
or one of the functions of this module; :func:`get` turns any of these into
the canonical name, which the engine maps to a compiled kernel code.  The
functions compute with the same compiled kernels on NumPy arrays (a new
array; the last axis is the "row" for softmax and log_softmax).

Supported: linear, tanh, relu, sigmoid, softmax, softplus, softsign, elu,
selu, exponential, hard_sigmoid, relu6, leaky_relu (negative slope 0.2),
log_softmax -- each with Keras 3's default parameters.  Every one of them
has a derivative that can be written in terms of its output, which is what
lets the engine keep only the outputs for the backward pass.  Activations
whose derivative needs the input (swish/silu, gelu, mish, hard_silu) are
not supported yet: naming one is a ``ValueError`` that says so.
"""
import numpy as np

from . import _kernels

__all__ = ["get", "serialize", "SUPPORTED", "linear", "tanh", "relu", "sigmoid", "softmax",
           "softplus", "softsign", "elu", "selu", "exponential", "hard_sigmoid", "relu6",
           "leaky_relu", "log_softmax"]

SUPPORTED = tuple(_kernels.ACTIVATION_CODES)
_NOT_YET = ("swish", "silu", "gelu", "mish", "hard_silu", "hard_swish", "tanh_shrink",
            "soft_shrink", "hard_shrink", "squareplus", "celu", "glu", "sparsemax",
            "hard_tanh", "sparse_plus", "sparse_sigmoid", "threshold")


def _apply(name, x):
    x = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32), order="C")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    flat = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    _kernels.activate(flat, _kernels.ACTIVATION_CODES[name])
    return x


def _make(name):
    def activation(x):
        return _apply(name, x)
    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = f"``{name}`` of ``x`` (a new float array), as ``keras.activations.{name}``."
    return activation


linear = _make("linear")
tanh = _make("tanh")
relu = _make("relu")
sigmoid = _make("sigmoid")
softmax = _make("softmax")
softplus = _make("softplus")
softsign = _make("softsign")
elu = _make("elu")
selu = _make("selu")
exponential = _make("exponential")
hard_sigmoid = _make("hard_sigmoid")
relu6 = _make("relu6")
leaky_relu = _make("leaky_relu")
log_softmax = _make("log_softmax")


def get(identifier, argument="activation"):
    """The canonical name of an activation given as a name, None or a function.

    Parameters
    ----------
    identifier : str, None or callable
        ``None`` and ``"linear"`` are the identity.  A function is accepted
        when it is one of this module's (or Keras's, by its name).
    argument : str
        The argument name used in error messages.

    Returns
    -------
    str
        One of :data:`SUPPORTED`.

    Raises
    ------
    ValueError
        An unknown or unsupported activation.
    """
    if identifier is None:
        return "linear"
    name = identifier
    if callable(identifier) and not isinstance(identifier, str):
        name = getattr(identifier, "__name__", None)
        if name not in SUPPORTED:
            raise ValueError(f"{argument}: only the built-in activations are supported "
                             f"({', '.join(SUPPORTED)}), got the function {identifier!r}")
    if not isinstance(name, str):
        raise ValueError(f"{argument} must be a str, None or an activation function, "
                         f"got {identifier!r}")
    if name in SUPPORTED:
        return name
    if name in _NOT_YET:
        raise ValueError(f"{argument} {name!r} is a Keras activation that fastrnn does not "
                         f"support yet (its derivative needs the layer's input); supported: "
                         f"{', '.join(SUPPORTED)}")
    raise ValueError(f"{argument} must be one of {', '.join(SUPPORTED)} (or None), "
                     f"got {identifier!r}")


def serialize(name):
    """The name Keras writes in a layer config for this activation."""
    return name
