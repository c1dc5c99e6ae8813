"""Optimizers, as ``keras.optimizers``: descriptions the compiled engine runs.

An optimizer object holds hyperparameters, the step counter ``iterations``
and its state (Adam's moments, SGD's momentum, ...) in one flat buffer laid
out like the model's ``params``; the update itself runs inside the engine's
compiled training step (:mod:`fastrnn._engine`), one pass over all weights.
The formulas are Keras 3's; :mod:`fastrnn.reference` writes each one out and
is what the engine is tested against.

Gradient clipping, when asked for, is applied first, as Keras does:
``clipvalue`` elementwise, ``clipnorm`` on each variable's own norm,
``global_clipnorm`` on the norm of all gradients together (at most one of
them).  ``weight_decay`` (AdamW's, or any optimizer's) is decoupled:
``p -= p * weight_decay * learning_rate`` before the update.

Every hyperparameter is checked when it is set -- in the constructor and
later, e.g. ``optimizer.learning_rate = x`` from a callback: NaN, infinite
or out-of-range values are a ``ValueError`` and never reach the weights.
``learning_rate`` may also be a schedule (:mod:`fastrnn.optimizers.schedules`),
evaluated at every step with the number of steps taken before it, or a
callable of no argument (as Keras).
"""
import numbers

import numpy as np

from . import schedules

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "get", "schedules"]


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _in_range(value, name, low, high, low_open=False, high_open=False):
    """``value`` as a float in the interval, else a ValueError naming ``name``."""
    value = _number(value, name)
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low}, {high}{hi}, got {value}")
    return value


def _optional_positive(value, name):
    return None if value is None else _in_range(value, name, 0.0, np.inf, low_open=True,
                                                high_open=True)


def _checked_rate(value, name="learning_rate"):
    """A finite rate >= 0, or a schedule (a callable of the step)."""
    if callable(value) and not isinstance(value, numbers.Real):
        return value
    return _in_range(value, name, 0.0, np.inf, high_open=True)


class Optimizer:
    """Base class: learning rate, clipping, weight decay, step counter, state.

    Parameters
    ----------
    learning_rate : float or callable
        A finite rate >= 0, a schedule (a
        :class:`~fastrnn.optimizers.schedules.LearningRateSchedule`, called
        with the number of steps taken so far) or a callable of no argument,
        as Keras takes them.
    weight_decay : float, optional
        Decoupled weight decay (``p -= p * weight_decay * lr`` each step).
    clipnorm, clipvalue, global_clipnorm : float, optional
        At most one; see the module notes.
    name : str, optional

    Attributes
    ----------
    iterations : int
        Steps taken so far.
    """

    #: the engine's optimizer name (fastrnn._engine.OPTIMIZERS)
    _engine_name = None

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, val in clips.items() if val is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of clipnorm, clipvalue, global_clipnorm; got "
                             f"{', '.join(given)}")
        self.clipnorm = _optional_positive(clipnorm, "clipnorm")
        self.clipvalue = _optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = _optional_positive(global_clipnorm, "global_clipnorm")
        self.name = name or type(self).__name__.lower()
        self._counter = np.zeros(1, np.int64)   # the engine counts steps in it directly
        self.state = None
        self._layout = None  # (size, dtype, variable start offsets)

    # -- checked hyperparameters -------------------------------------------------
    @property
    def iterations(self):
        """Steps taken so far (counted by the engine as it updates)."""
        return int(self._counter[0])

    @iterations.setter
    def iterations(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"iterations must be an int >= 0, got {value!r}")
        self._counter[0] = value

    @property
    def learning_rate(self):
        """The learning rate (a float) or the schedule it was given as."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = _checked_rate(value)

    @property
    def weight_decay(self):
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value):
        self._weight_decay = (None if value is None else
                              _in_range(value, "weight_decay", 0.0, np.inf, high_open=True))

    def learning_rates(self, steps):
        """The rates of ``steps`` consecutive steps from the next one (float64 array).

        A :class:`fastrnn.optimizers.schedules.LearningRateSchedule` is
        evaluated on all of them in one call; every value is checked.
        """
        lr = self._learning_rate
        if not callable(lr) or isinstance(lr, numbers.Real):
            return np.full(steps, lr)
        if isinstance(lr, schedules.LearningRateSchedule):
            values = np.asarray(lr(np.arange(self.iterations, self.iterations + steps)),
                                dtype=np.float64).reshape(-1)
            if values.size == steps:
                if not (np.all(np.isfinite(values)) and np.all(values >= 0)):
                    bad = values[~(np.isfinite(values) & (values >= 0))][0]
                    raise ValueError(f"the learning-rate schedule's value must be finite and "
                                     f">= 0, got {bad}")
                return values
        return np.array([self.current_learning_rate(self.iterations + k) for k in range(steps)])

    def current_learning_rate(self, step=None):
        """The rate used by step ``step`` (default: the next one), as a float.

        As in Keras, a :class:`~fastrnn.optimizers.schedules.LearningRateSchedule`
        is called with the number of steps taken before it (``iterations``)
        and any other callable with no argument; the result is checked like a
        set rate.
        """
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            value = lr(self.iterations if step is None else step)
        elif callable(lr) and not isinstance(lr, numbers.Real):
            value = lr()
        else:
            return lr
        return _checked_rate(float(np.asarray(value)), "the learning-rate schedule's value")

    # -- state ------------------------------------------------------------------
    def _slots(self):
        """Names of the state slots, each one flat buffer like params."""
        return ()

    def build(self, params, starts):
        """Allocate the state for a flat parameter buffer (kept if the layout is unchanged).

        Parameters
        ----------
        params : ndarray of shape (P,)
            The model's flat parameter buffer.
        starts : sequence of int
            Offset of each variable in ``params`` (for per-variable ``clipnorm``).
        """
        layout = (params.size, params.dtype, tuple(int(s) for s in starts), self._slots())
        if self._layout == layout:
            return
        self._layout = layout
        self.iterations = 0
        self.state = np.zeros(len(self._slots()) * params.size, dtype=params.dtype)
        self._initialise_state(params.size)

    def _initialise_state(self, n):
        pass

    def _fresh_copy(self):
        """A new optimizer with these settings (shared schedule objects) and no
        state: what constructing it again gives (``iterations`` 0, not built)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._counter = np.zeros(1, np.int64)
        copy.state = None
        copy._layout = None
        return copy

    def slot(self, name):
        """The state buffer ``name`` (a view of shape (P,)), e.g. Adam's ``"m"``."""
        if self._layout is None:
            raise ValueError("the optimizer has no state yet (it is built by fit)")
        k = self._slots().index(name)
        n = self._layout[0]
        return self.state[k * n:(k + 1) * n]

    def _hyper(self):
        """The engine's hyperparameters (names of fastrnn._engine.HYPER) beyond the rate."""
        return {}

    def _clip(self):
        for kind in ("clipnorm", "global_clipnorm", "clipvalue"):
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        return None, 0.0

    def get_config(self):
        lr = self._learning_rate
        return {"name": self.name,
                "learning_rate": lr if not callable(lr) else getattr(lr, "get_config", lambda: lr)(),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "name" and v is not None)
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam in Keras's formulation (optionally AMSGrad).

    With ``t`` the step number (1, 2, ...) and g the (clipped) gradient::

        lr_t = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m    = m + (1 - beta_1) (g - m)
        v    = v + (1 - beta_2) (g**2 - v)
        v_hat = max(v_hat, v)                                  (amsgrad)
        p    = p - lr_t m / (sqrt(v or v_hat) + epsilon)

    Parameters
    ----------
    learning_rate : float or schedule, default 0.001
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-7
    amsgrad : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm : float, optional
    name : str, optional
    """

    _engine_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.beta_1 = _in_range(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = _in_range(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = _in_range(epsilon, "epsilon", 0.0, np.inf, low_open=True, high_open=True)
        self.amsgrad = bool(amsgrad)

    def _slots(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    @property
    def m(self):
        return self.slot("m")

    @property
    def v(self):
        return self.slot("v")

    def _hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "flag": float(self.amsgrad)}

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``keras.optimizers.AdamW``.

    Each step first shrinks every weight, ``p -= p * weight_decay * lr``,
    then takes the :class:`Adam` step.

    Parameters
    ----------
    learning_rate : float or schedule, default 0.001
    weight_decay : float >= 0, default 0.004
    beta_1, beta_2, epsilon, amsgrad, clipnorm, clipvalue, global_clipnorm, name
        As :class:`Adam`.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (a float >= 0), got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name)


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as Keras.

    Without momentum ``p -= lr g``.  With momentum ``mu``::

        m = mu m - lr g
        p = p + m                      (plain)
        p = p + mu m - lr g            (nesterov=True)

    Parameters
    ----------
    learning_rate : float or schedule, default 0.01
    momentum : float in [0, 1], default 0.0
    nesterov : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm : float, optional
    name : str, optional
    """

    _engine_name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = _in_range(momentum, "momentum", 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def _slots(self):
        return ("momentum",) if self.momentum else ()

    def _hyper(self):
        return {"momentum": self.momentum, "flag": float(self.nesterov)}

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop in Keras's formulation.

    ::

        v = rho v + (1 - rho) g**2
        a = rho a + (1 - rho) g                 (centered)
        d = v - a**2 + epsilon   (centered)  or  v + epsilon
        inc = lr g / sqrt(d)
        mom = momentum mom + inc;  p -= mom     (momentum > 0)
        p -= inc                                 (otherwise)

    Parameters
    ----------
    learning_rate : float or schedule, default 0.001
    rho : float in [0, 1), default 0.9
    momentum : float in [0, 1], default 0.0
    epsilon : float > 0, default 1e-7
    centered : bool, default False
    weight_decay, clipnorm, clipvalue, global_clipnorm : float, optional
    name : str, optional
    """

    _engine_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.rho = _in_range(rho, "rho", 0.0, 1.0, high_open=True)
        self.momentum = _in_range(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _in_range(epsilon, "epsilon", 0.0, np.inf, low_open=True, high_open=True)
        self.centered = bool(centered)

    def _slots(self):
        return (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                + (("average_gradient",) if self.centered else ()))

    def _hyper(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "flag": float(self.centered)}

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad in Keras's formulation: ``acc += g**2;  p -= lr g / sqrt(acc + epsilon)``.

    Parameters
    ----------
    learning_rate : float or schedule, default 0.001
    initial_accumulator_value : float >= 0, default 0.1
    epsilon : float > 0, default 1e-7
    weight_decay, clipnorm, clipvalue, global_clipnorm : float, optional
    name : str, optional
    """

    _engine_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm, name)
        self.initial_accumulator_value = _in_range(initial_accumulator_value,
                                                   "initial_accumulator_value", 0.0, np.inf,
                                                   high_open=True)
        self.epsilon = _in_range(epsilon, "epsilon", 0.0, np.inf, low_open=True, high_open=True)

    def _slots(self):
        return ("accumulator",)

    def _initialise_state(self, n):
        self.state[:] = self.initial_accumulator_value

    def _hyper(self):
        return {"epsilon": self.epsilon}

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value":
                self.initial_accumulator_value, "epsilon": self.epsilon}


_BY_NAME = {"adam": Adam, "adamw": AdamW, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name (Keras's defaults) or an :class:`Optimizer` instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(f"optimizer: unknown optimizer {identifier!r}; known: "
                             f"{', '.join(_BY_NAME)}")
        return _BY_NAME[key]()
    raise TypeError(f"optimizer must be a name ({', '.join(_BY_NAME)}) or a "
                    f"fastrnn.optimizers.Optimizer, got {type(identifier).__name__}")
