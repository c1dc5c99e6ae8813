"""Optimizers that update a model's flat parameter buffer in one pass.

A model keeps all its weights in one contiguous 1-D ``params`` array and all
its gradients in one ``grads`` array of the same layout (see
:class:`fastrnn.Sequential`).  An optimizer keeps its state (Adam's ``m`` and
``v``, SGD's momentum) in flat buffers of that layout too, so a step is one
call over everything: :func:`fastrnn.ops.adam_update` for Adam, a few
vectorised NumPy operations for SGD and AMSGrad.  No per-variable loops.

Gradient clipping, when asked for, is applied to the flat gradient first, as
Keras does: ``clipvalue`` elementwise, ``clipnorm`` on each variable's own
norm, ``global_clipnorm`` on the norm of all gradients together.
"""
import numpy as np

from . import ops

__all__ = ["Optimizer", "Adam", "SGD", "get"]


def _positive_float(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


class Optimizer:
    """Base class: clipping, the step counter and the flat state buffers.

    Parameters
    ----------
    learning_rate : float
    clipnorm : float, optional
        Rescale each variable's gradient so its L2 norm is at most this.
    clipvalue : float, optional
        Clip every gradient element to [-clipvalue, clipvalue].
    global_clipnorm : float, optional
        Rescale all gradients together so their joint L2 norm is at most this.
    name : str, optional

    Notes
    -----
    At most one of the three clipping options may be set.  Subclasses
    implement ``_create_state(n, dtype)`` and ``_update(params, grads, step)``.
    """

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        self.learning_rate = _positive_float(learning_rate, "learning_rate")
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, val in clips.items() if val is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of clipnorm, clipvalue, global_clipnorm; got "
                             f"{', '.join(given)}")
        self.clipnorm = None if clipnorm is None else _positive_float(clipnorm, "clipnorm")
        self.clipvalue = None if clipvalue is None else _positive_float(clipvalue, "clipvalue")
        self.global_clipnorm = (None if global_clipnorm is None
                                else _positive_float(global_clipnorm, "global_clipnorm"))
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._layout = None  # (size, dtype, variable start offsets)

    def build(self, params, starts):
        """Allocate the state for a flat parameter buffer (kept if the layout is unchanged).

        Parameters
        ----------
        params : ndarray of shape (P,)
            The model's flat parameter buffer.
        starts : sequence of int
            Offset of each variable in ``params`` (for per-variable ``clipnorm``).
        """
        starts = np.asarray(starts, dtype=np.intp)
        layout = (params.size, params.dtype, tuple(starts))
        if self._layout == layout:
            return
        self._layout = layout
        self._starts = starts
        self._sizes = np.diff(np.append(starts, params.size))
        self.iterations = 0
        self._create_state(params.size, params.dtype)

    def _create_state(self, n, dtype):
        pass

    def _clip(self, grads):
        if self.clipvalue is not None:
            np.clip(grads, -self.clipvalue, self.clipvalue, out=grads)
        elif self.global_clipnorm is not None:
            norm = float(np.sqrt(np.dot(grads, grads)))
            if norm > self.global_clipnorm:
                grads *= grads.dtype.type(self.global_clipnorm / norm)
        elif self.clipnorm is not None and grads.size:
            norms = np.sqrt(np.add.reduceat(grads * grads, self._starts))
            scale = self.clipnorm / np.maximum(norms, self.clipnorm)
            grads *= np.repeat(scale, self._sizes).astype(grads.dtype, copy=False)

    def apply(self, params, grads):
        """One optimisation step: clip ``grads`` (in place) and update ``params`` in place.

        Parameters
        ----------
        params : ndarray of shape (P,)
            Flat, contiguous parameter buffer given to :meth:`build`.
        grads : ndarray of shape (P,)
            Its gradient, same layout and dtype.
        """
        if self._layout is None or self._layout[0] != params.size:
            raise ValueError("the optimizer was not built for these parameters; "
                             "call build(params, starts) first (Sequential.fit does)")
        if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm is not None:
            self._clip(grads)
        self.iterations += 1
        self._update(params, grads, self.iterations)

    def _update(self, params, grads, step):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "learning_rate": self.learning_rate,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "name" and v is not None)
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam in Keras's formulation.

    With ``t`` the step number (1, 2, ...)::

        lr_t = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m    = beta_1 m + (1 - beta_1) g
        v    = beta_2 v + (1 - beta_2) g**2
        θ    = θ - lr_t m / (sqrt(v) + epsilon)

    One compiled pass over the flat buffers per step
    (:func:`fastrnn.ops.adam_update`).  With ``amsgrad=True`` the running
    maximum ``v_hat = max(v_hat, v)`` replaces ``v`` in the denominator
    (vectorised NumPy, not compiled).

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta_1 : float, default 0.9
    beta_2 : float, default 0.999
    epsilon : float, default 1e-7
    amsgrad : bool, default False
    clipnorm, clipvalue, global_clipnorm : float, optional
        See :class:`Optimizer`.
    name : str, optional
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name=None):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        for value, arg in ((beta_1, "beta_1"), (beta_2, "beta_2")):
            if not 0.0 <= _positive_float(value, arg, allow_zero=True) < 1.0:
                raise ValueError(f"{arg} must be in [0, 1), got {value}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _positive_float(epsilon, "epsilon", allow_zero=True)
        self.amsgrad = bool(amsgrad)

    def _create_state(self, n, dtype):
        self.m = np.zeros(n, dtype=dtype)
        self.v = np.zeros(n, dtype=dtype)
        self.v_hat = np.zeros(n, dtype=dtype) if self.amsgrad else None

    def _update(self, params, grads, step):
        if not self.amsgrad:
            ops.adam_update(params, grads, self.m, self.v, step, self.learning_rate,
                            self.beta_1, self.beta_2, self.epsilon)
            return
        lr_t = self.learning_rate * np.sqrt(1 - self.beta_2**step) / (1 - self.beta_1**step)
        self.m += (1 - self.beta_1) * (grads - self.m)
        self.v += (1 - self.beta_2) * (grads * grads - self.v)
        np.maximum(self.v_hat, self.v, out=self.v_hat)
        params -= (lr_t * self.m / (np.sqrt(self.v_hat) + self.epsilon)).astype(params.dtype,
                                                                                copy=False)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as Keras.

    Without momentum ``θ -= lr g``.  With momentum ``μ``::

        u = μ u - lr g
        θ = θ + u                      (plain)
        θ = θ + μ u - lr g             (nesterov=True)

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float, default 0.0
    nesterov : bool, default False
    clipnorm, clipvalue, global_clipnorm : float, optional
    name : str, optional
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name=None):
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name)
        self.momentum = _positive_float(momentum, "momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.nesterov = bool(nesterov)

    def _create_state(self, n, dtype):
        self.velocity = np.zeros(n, dtype=dtype) if self.momentum else None

    def _update(self, params, grads, step):
        lr = params.dtype.type(self.learning_rate)
        if not self.momentum:
            params -= lr * grads
            return
        mu = params.dtype.type(self.momentum)
        self.velocity *= mu
        self.velocity -= lr * grads
        if self.nesterov:
            params += mu * self.velocity - lr * grads
        else:
            params += self.velocity

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


_BY_NAME = {"adam": Adam, "sgd": SGD}


def get(identifier):
    """An optimizer from ``"adam"`` / ``"sgd"`` (defaults) or an :class:`Optimizer` instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(f"optimizer: unknown optimizer {identifier!r}; known: adam, sgd")
        return _BY_NAME[key]()
    raise TypeError(f"optimizer must be 'adam', 'sgd' or a fastrnn.optimizers.Optimizer, "
                    f"got {type(identifier).__name__}")
