"""Learning-rate schedules, as ``keras.optimizers.schedules`` (see :mod:`fastrnn.schedules`)."""
from ..schedules import *  # noqa: F401,F403
from ..schedules import __all__  # noqa: F401
