"""Learning-rate schedules with Keras 3's names, arguments and formulas.

A schedule is a callable ``schedule(step) -> learning rate``, where ``step``
is the optimizer's iteration count (0 before the first update).  An
optimizer given one as ``learning_rate`` evaluates it before every update.
They are exposed as ``fastrnn.optimizers.schedules``, as Keras has them::

    lr = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1000, decay_rate=0.9)
    optimizer = keras.optimizers.Adam(learning_rate=lr)

Calling a schedule on a scalar step gives a Python float; on an array of
steps, an array (handy for plotting a schedule).  Values are computed in
float64: Keras computes them in float32 (its default float type), so the
two agree to float32 rounding.

Unlike Keras, the arguments are checked when the schedule is made: a rate
that is NaN, infinite or negative, or a non-positive ``decay_steps``, is a
``ValueError`` that names the argument.
"""
import math
import numbers

import numpy as np

__all__ = [
    "LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay",
    "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize",
]


def _number(value, name, owner, minimum=0.0, strict=False):
    """``value`` checked finite and ``>= minimum`` (``> minimum`` if ``strict``).

    Integers stay Python ints (so ``get_config`` gives back what was passed),
    other reals become Python floats.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{owner}: {name} must be {'>' if strict else '>='} {minimum:g}, "
                         f"got {value}")
    return value


def _bool(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _steps(step, owner):
    """The step(s) as float64 (scalar or array), checked: numbers >= 0."""
    arr = np.asarray(step)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{owner}: step must be a number or an array of numbers, got "
                        f"{type(step).__name__}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{owner}: step must be finite and >= 0, got {step!r}")
    return arr


def _result(value):
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value


class LearningRateSchedule:
    """Base class: a schedule is called with the optimizer's step and returns a rate.

    Subclasses implement ``__call__(self, step)`` and, to be serialisable,
    ``get_config(self)`` returning the constructor's keyword arguments
    (:meth:`from_config` then rebuilds the schedule).

    Examples
    --------
    >>> class InverseStep(LearningRateSchedule):
    ...     def __init__(self, initial_learning_rate):
    ...         self.initial_learning_rate = initial_learning_rate
    ...     def __call__(self, step):
    ...         return self.initial_learning_rate / (step + 1)
    >>> InverseStep(0.1)(4)
    0.02
    """

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override __call__(self, step).")

    def get_config(self):
        """The constructor's arguments, as a dict."""
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override get_config() in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        """A schedule made from :meth:`get_config`'s output."""
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class _StepwiseDecay(LearningRateSchedule):
    """The arguments, checks and config ExponentialDecay and InverseTimeDecay share.

    A subclass gives ``_decayed(p)``, the rate at ``p = step / decay_steps``
    (floored when ``staircase``).
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate",
                                             owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, strict=True)
        self.decay_rate = _number(decay_rate, "decay_rate", owner)
        self.staircase = _bool(staircase, "staircase", owner)
        self.name = name

    def __call__(self, step):
        p = _steps(step, self.name) / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return _result(self._decayed(p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepwiseDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Parameters
    ----------
    initial_learning_rate : float
        >= 0.
    decay_steps : float
        > 0.
    decay_rate : float
        >= 0 (above 1 the rate grows).
    staircase : bool, default False
        Use ``floor(step / decay_steps)``: the rate changes in steps.
    name : str, default "ExponentialDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _decayed(self, p):
        return self.initial_learning_rate * np.power(self.decay_rate, p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """A constant rate on each interval between boundaries.

    ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the
    last boundary.

    Parameters
    ----------
    boundaries : list of numbers
        Strictly increasing.
    values : list of float
        One more than ``boundaries``; each finite and >= 0.
    name : str, default "PiecewiseConstant"
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: the length of boundaries should be 1 less than the "
                             f"length of values; got boundaries={boundaries} of length "
                             f"{len(boundaries)} and values={values} of length {len(values)}")
        checked = [_number(b, f"boundaries[{i}]", owner, minimum=None)
                   for i, b in enumerate(boundaries)]
        if any(b >= c for b, c in zip(checked, checked[1:])):
            raise ValueError(f"{owner}: boundaries must be strictly increasing, got "
                             f"{boundaries}")
        for i, v in enumerate(values):
            _number(v, f"values[{i}]", owner)
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        s = _steps(step, self.name)
        # how many boundaries lie strictly below the step = the interval's index
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), s, side="left")
        return _result(np.asarray(self.values, dtype=np.float64)[index])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` along ``(1 - t)**power``.

    ``(initial - end) * (1 - s / decay_steps) ** power + end`` with ``s =
    min(step, decay_steps)``; with ``cycle``, ``decay_steps`` is instead
    multiplied by ``ceil(step / decay_steps)`` (1 at step 0), so the decay
    restarts every ``decay_steps``.

    Parameters
    ----------
    initial_learning_rate : float
        >= 0.
    decay_steps : float
        > 0.
    end_learning_rate : float, default 0.0001
        >= 0.
    power : float, default 1.0
        >= 0.
    cycle : bool, default False
    name : str, default "PolynomialDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate",
                                             owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, strict=True)
        self.end_learning_rate = _number(end_learning_rate, "end_learning_rate", owner)
        self.power = _number(power, "power", owner)
        self.cycle = _bool(cycle, "cycle", owner)
        self.name = name

    def __call__(self, step):
        s = _steps(step, self.name)
        if self.cycle:
            multiplier = np.where(s == 0, 1.0, np.ceil(s / self.decay_steps))
            decay_steps = self.decay_steps * multiplier
        else:
            decay_steps = self.decay_steps
            s = np.minimum(s, decay_steps)
        p = s / decay_steps
        return _result((self.initial_learning_rate - self.end_learning_rate)
                       * np.power(1.0 - p, self.power) + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(_StepwiseDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Parameters
    ----------
    initial_learning_rate : float
        >= 0.
    decay_steps : float
        > 0.
    decay_rate : float
        >= 0.
    staircase : bool, default False
        Use ``floor(step / decay_steps)``.
    name : str, default "InverseTimeDecay"
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _decayed(self, p):
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)


class CosineDecay(LearningRateSchedule):
    """Cosine decay, after an optional linear warmup.

    Without ``warmup_target``: ``initial_learning_rate * ((1 - alpha) * c +
    alpha)`` with ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) /
    decay_steps))``.  With it: for ``step < warmup_steps`` the rate rises
    linearly from ``initial_learning_rate`` to ``warmup_target``; then it
    decays as above from ``warmup_target`` over ``decay_steps`` more steps
    (the step counted from the end of the warmup).

    Parameters
    ----------
    initial_learning_rate : float
        >= 0.
    decay_steps : float
        > 0.
    alpha : float, default 0.0
        >= 0: the final rate as a fraction of the decay's starting rate.
    name : str, default "CosineDecay"
    warmup_target : float, optional
        >= 0: the rate reached at the end of the warmup.
    warmup_steps : float, default 0
        >= 0.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate",
                                             owner)
        self.decay_steps = _number(decay_steps, "decay_steps", owner, strict=True)
        self.alpha = _number(alpha, "alpha", owner)
        self.name = name
        self.warmup_target = (None if warmup_target is None
                              else _number(warmup_target, "warmup_target", owner))
        self.warmup_steps = _number(warmup_steps, "warmup_steps", owner)

    def _decay(self, s, decay_from):
        cosine = 0.5 * (1.0 + np.cos(math.pi * s / self.decay_steps))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        s = _steps(step, self.name)
        if self.warmup_target is None:
            return _result(self._decay(np.minimum(s, self.decay_steps),
                                       self.initial_learning_rate))
        s = np.minimum(s, self.decay_steps + self.warmup_steps)
        in_warmup = s < self.warmup_steps
        # the warmup branch is only taken where warmup_steps > s >= 0, so it never divides by 0
        fraction = np.where(in_warmup, s / max(self.warmup_steps, 1.0), 0.0)
        warm = (self.warmup_target - self.initial_learning_rate) * fraction \
            + self.initial_learning_rate
        decayed = self._decay(s - self.warmup_steps, self.warmup_target)
        return _result(np.where(in_warmup, warm, decayed))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR).

    The multiplier decays from 1 to ``alpha`` over ``first_decay_steps``
    steps; then it restarts, each period ``t_mul`` times longer than the one
    before and starting from ``m_mul`` times the previous start.

    Parameters
    ----------
    initial_learning_rate : float
        >= 0.
    first_decay_steps : float
        > 0.
    t_mul : float, default 2.0
        > 0.
    m_mul : float, default 1.0
        >= 0.
    alpha : float, default 0.0
        >= 0.
    name : str, default "SGDRDecay"
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(initial_learning_rate, "initial_learning_rate",
                                             owner)
        self.first_decay_steps = _number(first_decay_steps, "first_decay_steps", owner,
                                         strict=True)
        self._t_mul = _number(t_mul, "t_mul", owner, strict=True)
        self._m_mul = _number(m_mul, "m_mul", owner)
        self.alpha = _number(alpha, "alpha", owner)
        self.name = name

    def __call__(self, step):
        fraction = _steps(step, self.name) / self.first_decay_steps
        t_mul = self._t_mul
        if t_mul == 1.0:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            # period i lasts t_mul**i: restart i begins where the geometric sum reaches it
            restart = np.floor(np.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - np.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / np.power(t_mul, restart)
        cosine = 0.5 * np.power(self._m_mul, restart) * (1.0 + np.cos(math.pi * fraction))
        return _result(self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_SCHEDULES = {cls.__name__: cls for cls in (
    ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay,
    CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """A JSON-ready dict for a schedule, in Keras's layout.

    Returns
    -------
    dict
        ``{"module": "keras.optimizers.schedules", "class_name": ...,
        "config": ..., "registered_name": None}``.
    """
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, got "
                        f"{type(learning_rate_schedule).__name__}")
    return {"module": "keras.optimizers.schedules",
            "class_name": type(learning_rate_schedule).__name__,
            "config": learning_rate_schedule.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """The schedule a :func:`serialize` dict (or Keras's) describes.

    Parameters
    ----------
    config : dict
        With ``"class_name"`` and ``"config"``.
    custom_objects : dict, optional
        Extra ``{class name: class}`` for user schedules.
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError("deserialize: config must be a dict with 'class_name' and 'config'")
    known = dict(_SCHEDULES)
    known.update(custom_objects or {})
    name = config["class_name"]
    if name not in known:
        raise ValueError(f"deserialize: unknown learning rate schedule {name!r}; known: "
                         f"{', '.join(sorted(known))} (pass custom_objects for your own)")
    return known[name].from_config(config["config"])
