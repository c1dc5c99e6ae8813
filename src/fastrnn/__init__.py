"""fastrnn: fast simple recurrent networks on the CPU, with a Keras-shaped API.

Compiled Cython kernels run the recurrence forward and backward (BPTT) over
whole batches; :mod:`fastrnn.reference` is their pure-NumPy oracle.  The
model API mirrors Keras, so ``import fastrnn as keras`` runs the usual
tutorial code::

    import fastrnn as keras
    model = keras.Sequential([keras.layers.SimpleRNN(20, input_shape=[3, 1]),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
"""
from . import _kernels  # noqa: F401  (the compiled core must import)
from . import callbacks, data, errors, initializers, layers, losses, metrics, optimizers, reference
from . import export, interop, models, preprocessing, saving, utils
from ._kernels import get_num_threads, set_num_threads
from ._version import __version__
from .initializers import set_random_seed
from .layers import Input, KerasTensor, clear_session
from .many import fit_many
from .models import Model, Sequential
from . import backend, config, ops, regularizers  # keras.backend, .config, .ops, ...

__all__ = [
    "__version__", "Model", "Sequential", "Input", "KerasTensor", "set_random_seed",
    "clear_session", "fit_many", "models", "set_num_threads", "get_num_threads",
    "layers", "optimizers", "losses", "metrics", "callbacks", "initializers", "data", "reference",
    "errors", "utils", "preprocessing", "models", "saving", "export", "interop", "backend", "regularizers", "config", "ops",
]
