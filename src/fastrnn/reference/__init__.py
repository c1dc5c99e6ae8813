"""Pure-NumPy reference of everything fastrnn computes: the oracle.

The compiled kernels (:mod:`fastrnn.ops`) and the compiled engine are tested
against these functions; they favour clarity over speed.  One module a family:

- :mod:`.kernels`: the recurrence and Dense forward/backward, mse/mae, Adam.
- :mod:`.recurrence`: the recurrence with Keras's step mask, initial state and
  dropout masks (any activation), and Keras's outputs from its states.
- :mod:`.activations`: every Keras 3 activation and its vector-Jacobian product.
- :mod:`.optimizers`: every optimizer's step (clipping, weight decay, the
  rule) in Keras 3's formulation.
- :mod:`.model`: the whole Sequential model: forward, loss, backward, training.
"""
from .kernels import *  # noqa: F401,F403
from .kernels import __all__ as _kernel_names
from .recurrence import *  # noqa: F401,F403
from .recurrence import __all__ as _recurrence_names
from .activations import *  # noqa: F401,F403
from .activations import __all__ as _activation_names
from .optimizers import *  # noqa: F401,F403
from .optimizers import __all__ as _optimizer_names
from .model import *  # noqa: F401,F403
from .model import __all__ as _model_names

__all__ = list(_kernel_names) + list(_recurrence_names) + list(_activation_names) + list(_optimizer_names) + list(_model_names)
