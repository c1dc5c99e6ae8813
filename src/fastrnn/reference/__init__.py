"""Pure-NumPy reference of everything fastrnn computes: the oracle.

The compiled kernels (:mod:`fastrnn.ops`) and the compiled engine are tested
against these functions; they favour clarity over speed.  One module a family:

- :mod:`.kernels`: the recurrence and Dense forward/backward, mse/mae, Adam.
"""
from .kernels import *  # noqa: F401,F403
from .kernels import __all__ as _kernel_names

__all__ = list(_kernel_names)
