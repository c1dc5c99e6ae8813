"""Every Keras 3 activation, by name, and its vector-Jacobian product.

The definitions follow Keras 3 (``keras/src/activations/activations.py``, the
functions a layer gets from ``keras.activations.get(name)``, with their default
arguments) as the JAX backend computes them (``keras/src/backend/jax/nn.py``);
``tests/fixtures/keras/activations.npz`` pins values and gradients recorded
from real Keras.  Each is written here in a numerically sound NumPy form.

================  =========================================================  ==========
name              h = act(z)                                                 from h?
================  =========================================================  ==========
linear            z                                                          yes
tanh              tanh(z)                                                    yes
relu              max(z, 0)                                                  yes
sigmoid           1 / (1 + exp(-z))                                          yes
softmax           exp(z) / sum(exp(z)) over the last axis                    yes
softplus          log(1 + exp(z))                                            yes
softsign          z / (1 + |z|)                                              yes
elu               z if z > 0 else exp(z) - 1            (alpha = 1)          yes
selu              scale * (z if z > 0 else alpha (exp(z) - 1))               yes
exponential       exp(z)                                                     yes
hard_sigmoid      relu6(z + 3) / 6 = clip(z / 6 + 1/2, 0, 1)                 yes
silu (swish)      z sigmoid(z)                                               no
gelu              z Phi(z) = z (1 + erf(z / sqrt 2)) / 2   (exact erf form)  no
relu6             min(max(z, 0), 6)                                          yes
leaky_relu        z if z >= 0 else 0.2 z                                     yes
mish              z tanh(softplus(z))                                        no
log_softmax       z - logsumexp(z) over the last axis                        yes
hard_silu         z hard_sigmoid(z)                    (alias hard_swish)    no
celu              max(z, 0) + exp(min(z, 0)) - 1        (alpha = 1)          yes
squareplus        (z + sqrt(z^2 + 4)) / 2               (b = 4)              yes
sparse_plus       0 (z <= -1), (z + 1)^2 / 4 (|z| < 1), z (z >= 1)           yes
soft_shrink       z - 1/2 (z > 1/2), z + 1/2 (z < -1/2), else 0              yes
tanh_shrink       z - tanh(z)                                                no
hard_tanh         clip(z, -1, 1)                                             yes
hard_shrink       z where |z| > 1/2, else 0                                  yes
log_sigmoid       -softplus(-z)                                              yes
sparse_sigmoid    clip((z + 1) / 2, 0, 1)                                    yes
sparsemax         max(z - tau(z), 0) over the last axis                      yes
================  =========================================================  ==========

"from h?" is :func:`derivative_from_output`: whether dL/dz can be computed from
the output h alone, so that a backward pass need not keep z.  The formulas
(act' in terms of h, or the row-wise product for softmax, log_softmax and
sparsemax) are in :func:`activation_grad`.

Keras 3 facts worth knowing (all checked against the recorded fixtures):

- ``hard_sigmoid`` is Keras 3's ``relu6(z + 3) / 6`` (slope 1/6 on (-3, 3)),
  not Keras 2's ``clip(0.2 z + 0.5, 0, 1)``.
- ``gelu`` by name is ``keras.activations.gelu(approximate=False)``: the exact
  erf form (``keras.ops.gelu`` defaults to the tanh approximation instead).
- ``leaky_relu`` by name has ``negative_slope = 0.2`` (Keras 3's default).
- ``glu`` (halves the last axis) and ``threshold`` (needs arguments) are not
  usable by name in a layer and are not here.
- ``sparsemax`` here is the definition (the projection onto the simplex,
  Martins & Astudillo 2016).  Keras up to 3.15 computes tau from the sum of
  the cumulative sums over the support instead of the k-th one, on every
  backend, so its rows do not sum to 1 whenever the support has more than one
  element (keras-team/keras#23425, fixed upstream by #23469); the two agree
  when the support has one element, and the tests compare only there.

Kinks.  At the points where an activation is not differentiable the reference
takes the slope the JAX backend's gradient gives -- relu 0 at z = 0, relu6 0 at
0 and 6, hard_sigmoid 0 at +-3, leaky_relu 1 at 0, selu ``scale alpha`` at 0,
soft/hard_shrink 0 at +-1/2, sparse_plus 0 at -1 and 1 at 1 -- with two
exceptions, where JAX's value cannot be told from h and the reference takes the
one-sided value of the flat side: ``hard_tanh`` at z = +-1 (JAX 1, here 0) and
``sparse_sigmoid`` at z = +-1 (JAX 1/4 from ``jnp.clip``'s tie rule, here 0).
Kinks are single points; only inputs built to hit them exactly see these.
"""
import math

import numpy as np
from scipy import special

__all__ = [
    "ACTIVATION_NAMES",
    "ACTIVATION_KINKS",
    "canonical_activation",
    "activate",
    "activation_grad",
    "activation_slope",
    "derivative_from_output",
]

# Keras 3's constants for selu (those of jax.nn.selu, to float64 precision).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_RELU_SLOPE = 0.2
SQUAREPLUS_B = 4.0
SHRINK_THRESHOLD = 0.5

_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
_ROW_WISE = ("softmax", "log_softmax", "sparsemax")


# ---------------------------------------------------------------- forward

def _sigmoid(z):
    return special.expit(z)


def _softplus(z):
    return np.logaddexp(z, 0)  # log(1 + e^z) without overflow


def _hard_sigmoid(z):
    return np.minimum(np.maximum(z + 3, 0), 6) / 6


def _softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(z):
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _sparsemax(z):
    """Euclidean projection of each row onto the probability simplex.

    With the row sorted descending, ``z_(1) >= z_(2) >= ...``, the support size
    is ``k = max{j : 1 + j z_(j) > sum_{i<=j} z_(i)}`` and
    ``tau = (sum_{i<=k} z_(i) - 1) / k``; the output is ``max(z - tau, 0)``.
    """
    ordered = -np.sort(-z, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1)
    j = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support = ordered - (cumulative - 1) / j > 0
    k = np.sum(support, axis=-1, keepdims=True)
    tau = (np.take_along_axis(cumulative, k - 1, axis=-1) - 1) / k.astype(z.dtype)
    return np.maximum(z - tau, 0)


def _gelu(z):
    # z Phi(z); Phi through ndtr (erfc for z < 0) keeps the left tail accurate,
    # where z (1 + erf(z / sqrt 2)) / 2 cancels.
    return z * special.ndtr(z)


_FORWARD = {
    "linear": lambda z: z.copy(),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "softplus": _softplus,
    "softsign": lambda z: z / (1 + np.abs(z)),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "selu": lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "exponential": np.exp,
    "hard_sigmoid": _hard_sigmoid,
    "silu": lambda z: z * _sigmoid(z),
    "gelu": _gelu,
    "relu6": lambda z: np.minimum(np.maximum(z, 0), 6),
    "leaky_relu": lambda z: np.where(z >= 0, z, LEAKY_RELU_SLOPE * z),
    "mish": lambda z: z * np.tanh(_softplus(z)),
    "log_softmax": _log_softmax,
    "hard_silu": lambda z: z * _hard_sigmoid(z),
    "celu": lambda z: np.maximum(z, 0) + np.expm1(np.minimum(z, 0)),
    "squareplus": lambda z: (z + np.sqrt(z * z + SQUAREPLUS_B)) / 2,
    "sparse_plus": lambda z: np.where(z <= -1, 0, np.where(z >= 1, z, (z + 1) ** 2 / 4)),
    "soft_shrink": lambda z: np.where(z > SHRINK_THRESHOLD, z - SHRINK_THRESHOLD,
                                      np.where(z < -SHRINK_THRESHOLD, z + SHRINK_THRESHOLD, 0)),
    "tanh_shrink": lambda z: z - np.tanh(z),
    "hard_tanh": lambda z: np.minimum(np.maximum(z, -1), 1),
    "hard_shrink": lambda z: np.where(np.abs(z) > SHRINK_THRESHOLD, z, 0),
    "log_sigmoid": lambda z: -_softplus(-z),
    "sparse_sigmoid": lambda z: np.minimum(np.maximum((z + 1) / 2, 0), 1),
    "sparsemax": _sparsemax,
}

ACTIVATION_NAMES = tuple(_FORWARD) + tuple(_ALIASES)
"""Every accepted name: Keras's canonical names, then the aliases swish and hard_swish."""

ACTIVATION_KINKS = {
    "relu": (0.0,), "relu6": (0.0, 6.0), "hard_sigmoid": (-3.0, 3.0), "hard_silu": (-3.0, 3.0),
    "leaky_relu": (0.0,), "selu": (0.0,), "sparse_plus": (-1.0, 1.0),
    "soft_shrink": (-SHRINK_THRESHOLD, SHRINK_THRESHOLD),
    "hard_shrink": (-SHRINK_THRESHOLD, SHRINK_THRESHOLD), "hard_tanh": (-1.0, 1.0),
    "sparse_sigmoid": (-1.0, 1.0),
}
"""The inputs z where an element-wise activation's derivative jumps (canonical
names; elu and celu with alpha 1 are continuously differentiable).  sparsemax's
derivative jumps where an element enters or leaves the support (z = tau)."""


# ---------------------------------------------------------------- slopes

def _one(h):
    return np.ones_like(h)


def _mask(condition, like):
    return condition.astype(like.dtype)


# act'(z) written in terms of h = act(z), for the element-wise activations
# whose derivative the output determines.  Each line says why.
_SLOPE_FROM_OUTPUT = {
    "linear": _one,
    "tanh": lambda h: (1 - h) * (1 + h),              # 1 - tanh^2, exact 1 - h near |h| = 1
    "relu": lambda h: _mask(h > 0, h),                # h > 0 exactly where z > 0
    "sigmoid": lambda h: h * (1 - h),
    "softplus": lambda h: -np.expm1(-h),              # sigmoid(z) = 1 - e^-h, as e^h = 1 + e^z
    "softsign": lambda h: (1 - np.abs(h)) ** 2,       # 1 - |h| = 1 / (1 + |z|)
    "elu": lambda h: np.where(h > 0, 1, h + 1),       # e^z = h + 1 for z <= 0
    "selu": lambda h: np.where(h > 0, SELU_SCALE, h + SELU_SCALE * SELU_ALPHA),
    "exponential": lambda h: h.copy(),
    "hard_sigmoid": lambda h: _mask((h > 0) & (h < 1), h) / 6,
    "relu6": lambda h: _mask((h > 0) & (h < 6), h),
    "leaky_relu": lambda h: np.where(h >= 0, 1, LEAKY_RELU_SLOPE).astype(h.dtype),
    "celu": lambda h: np.where(h > 0, 1, h + 1),      # = elu for alpha 1
    "squareplus": lambda h: h * h / (h * h + SQUAREPLUS_B / 4),  # z = h - b / (4h)
    "sparse_plus": lambda h: np.sqrt(np.minimum(h, 1)),          # (z + 1) / 2 = sqrt(h)
    "soft_shrink": lambda h: _mask(h != 0, h),
    "hard_tanh": lambda h: _mask(np.abs(h) < 1, h),
    "hard_shrink": lambda h: _mask(h != 0, h),
    "log_sigmoid": lambda h: -np.expm1(h),            # sigmoid(-z) = 1 - e^h
    "sparse_sigmoid": lambda h: _mask((h > 0) & (h < 1), h) / 2,
}


def _hard_silu_slope(z):
    inside = _mask((z > -3) & (z < 3), z)
    return _hard_sigmoid(z) + z * inside / 6


def _mish_slope(z):
    t = np.tanh(_softplus(z))
    return t + z * (1 - t * t) * _sigmoid(z)


def _silu_slope(z):
    s = _sigmoid(z)
    return s * (1 + z * (1 - s))


# act'(z) for the element-wise activations that need z.
_SLOPE_FROM_INPUT = {
    "silu": _silu_slope,
    "gelu": lambda z: special.ndtr(z) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi),
    "mish": _mish_slope,
    "hard_silu": _hard_silu_slope,
    "tanh_shrink": lambda z: np.tanh(z) ** 2,
}


# ---------------------------------------------------------------- public

def canonical_activation(name):
    """Keras's canonical name for an activation name.

    Parameters
    ----------
    name : str or None
        An activation name, an alias (``"swish"``, ``"hard_swish"``), or None
        (Keras's "no activation", i.e. ``"linear"``).

    Returns
    -------
    str
        One of the keys of the table in this module's docstring.

    Raises
    ------
    ValueError
        If the name is not a known activation.
    """
    if name is None:
        return "linear"
    if isinstance(name, str):
        name = _ALIASES.get(name, name)
        if name in _FORWARD:
            return name
    raise ValueError(f"activation must be None or one of {', '.join(ACTIVATION_NAMES)}; "
                     f"got {name!r}")


def derivative_from_output(name):
    """Whether dL/dz can be computed from the output h alone.

    Parameters
    ----------
    name : str or None

    Returns
    -------
    bool
        True when :func:`activation_grad` needs only ``h`` (and ``dh``), so a
        backward pass may keep h and drop z; False for silu, gelu, mish,
        hard_silu and tanh_shrink, whose derivative needs z.
    """
    name = canonical_activation(name)
    return name in _SLOPE_FROM_OUTPUT or name in _ROW_WISE


def activate(name, z):
    """Apply an activation.

    Parameters
    ----------
    name : str or None
        Keras activation name (see the module docstring).
    z : ndarray of shape (..., U)
        Pre-activation; softmax, log_softmax and sparsemax act on each row
        (the last axis), the others element-wise.

    Returns
    -------
    h : ndarray, shape and dtype of z
    """
    name = canonical_activation(name)
    z = np.asarray(z)
    if z.dtype.kind != "f":
        z = z.astype(np.float64)
    return np.asarray(_FORWARD[name](z), dtype=z.dtype)


def activation_slope(name, z=None, h=None):
    """The element-wise derivative act'(z), from h when possible.

    Parameters
    ----------
    name : str or None
        An element-wise activation (not softmax, log_softmax, sparsemax).
    z : ndarray, optional
        Pre-activation; required when ``not derivative_from_output(name)``.
    h : ndarray, optional
        ``activate(name, z)``; used (and required) when
        ``derivative_from_output(name)``.

    Returns
    -------
    ndarray, shape and dtype of z (or h)
    """
    name = canonical_activation(name)
    if name in _ROW_WISE:
        raise ValueError(f"activation {name!r} acts on rows: its Jacobian is not diagonal; "
                         "use activation_grad")
    if name in _SLOPE_FROM_OUTPUT:
        if h is None:
            raise ValueError(f"h is required for activation {name!r}")
        h = np.asarray(h)
        return np.asarray(_SLOPE_FROM_OUTPUT[name](h), dtype=h.dtype)
    if z is None:
        raise ValueError(f"z is required for activation {name!r} (its derivative needs the input)")
    z = np.asarray(z)
    return np.asarray(_SLOPE_FROM_INPUT[name](z), dtype=z.dtype)


def activation_grad(name, z, h, dh):
    """Vector-Jacobian product: dL/dz given dL/dh, for h = act(z).

    Parameters
    ----------
    name : str or None
        Keras activation name.
    z : ndarray of shape (..., U) or None
        Pre-activation.  May be None when ``derivative_from_output(name)``.
    h : ndarray of shape (..., U) or None
        Output ``activate(name, z)``.  May be None when the derivative needs z
        (then only z is used).
    dh : ndarray of shape (..., U)
        dL/dh.

    Returns
    -------
    dz : ndarray of shape (..., U)
        Element-wise activations: ``dh * act'(z)`` (see
        :func:`activation_slope`).  Row-wise ones, per row (last axis)::

            softmax:      dz = h * (dh - sum(dh * h))
            log_softmax:  dz = dh - exp(h) * sum(dh)
            sparsemax:    dz = [h > 0] * (dh - mean of dh over {h > 0})

    Notes
    -----
    When ``derivative_from_output(name)`` the result is computed from h only,
    so this function is also the reference for a backward pass that stores h.
    """
    name = canonical_activation(name)
    dh = np.asarray(dh)
    if name in _ROW_WISE:
        if h is None:
            raise ValueError(f"h is required for activation {name!r}")
        h = np.asarray(h)
        if name == "softmax":
            return h * (dh - np.sum(dh * h, axis=-1, keepdims=True))
        if name == "log_softmax":
            return dh - np.exp(h) * np.sum(dh, axis=-1, keepdims=True)
        support = _mask(h > 0, h)
        mean = np.sum(dh * support, axis=-1, keepdims=True) / np.sum(support, axis=-1, keepdims=True)
        return support * (dh - mean)
    return dh * activation_slope(name, z=z, h=h)
