"""fastrnn: fast simple recurrent networks on the CPU.

Compiled Cython kernels run the recurrence forward and backward (BPTT) over
whole batches; :mod:`fastrnn.reference` is their pure-NumPy oracle.
"""
from . import _kernels  # noqa: F401  (the compiled core must import)
from . import data, reference
from ._version import __version__

__all__ = ["__version__", "data", "reference"]
