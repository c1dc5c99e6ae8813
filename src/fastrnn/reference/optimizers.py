"""Every optimizer's step in Keras 3's exact formulation, as pure functions.

Read from Keras 3's source (``keras/src/optimizers/{adam,adamw,sgd,rmsprop,
adagrad,base_optimizer}.py`` and ``keras/src/backend/jax/optimizer.py``) and
pinned by ``tests/fixtures/keras/optimizers.npz``, recorded from real Keras.

One Keras step (``optimizer.apply(grads)``) does, in this order:

1. ``lr = learning_rate`` or, for a schedule, ``schedule(iterations)`` where
   ``iterations`` counts the steps already taken (0 at the first step);
2. clip the gradients (:func:`clip_gradients`; Keras allows at most one of
   clipnorm, global_clipnorm, clipvalue and its constructor raises
   ``ValueError`` when more than one is given; were two set afterwards as
   attributes, only the first of clipnorm, global_clipnorm, clipvalue would
   act);
3. decoupled weight decay, when ``weight_decay`` is set, on every trainable
   variable unless excluded (:func:`apply_weight_decay`), with the same ``lr``
   and the parameters as they were before this step: ``p <- p - p * wd * lr``;
4. the optimizer's own rule (``update_step``: :func:`adam_step`, ...) with
   the clipped gradients, starting from the decayed parameters;
5. ``iterations += 1``.

:func:`apply_gradients` is that whole step.  The rules themselves are pure
functions of ``(params, grads, state, iteration, hyper-parameters)`` that
return the new ``(params, state)`` and never modify their arguments; they are
element-wise, so ``params`` may be one flat vector of all variables (as the
engine keeps them) or one variable.  Only clipnorm needs the variable
boundaries, given as ``sizes``.

Keras is stricter about types than these functions: its constructors refuse
a ``learning_rate`` that is an int (``learning_rate=1`` raises; it must be a
Python float, a schedule or a callable) and an SGD ``momentum`` that is not a
float in [0, 1]; AdamW refuses ``weight_decay=None``.

Arrays keep their dtype; Python-float hyper-parameters do not promote float32
arrays.  (Keras casts lr and the hyper-parameters to the variable's dtype, so a
float32 Keras step rounds a little differently from a float64 reference.)
"""
import math
import numbers

import numpy as np

__all__ = [
    "OPTIMIZER_NAMES",
    "OPTIMIZER_DEFAULTS",
    "CLIP_OPTIONS",
    "learning_rate_at",
    "clip_gradients",
    "apply_weight_decay",
    "init_state",
    "adam_step",
    "adamw_step",
    "sgd_step",
    "rmsprop_step",
    "adagrad_step",
    "apply_gradients",
]

OPTIMIZER_DEFAULTS = {
    "adam": dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    "adamw": dict(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                  epsilon=1e-7, amsgrad=False),
    "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    "rmsprop": dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    "adagrad": dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
}
"""Keras 3's defaults, per optimizer, for the options of its own rule."""

OPTIMIZER_NAMES = tuple(OPTIMIZER_DEFAULTS)

CLIP_OPTIONS = ("clipnorm", "clipvalue", "global_clipnorm")
"""Options every optimizer takes besides its own (and ``weight_decay``)."""


# ---------------------------------------------------------------- the steps around the rule

def learning_rate_at(learning_rate, iteration):
    """The learning rate Keras uses for the step after ``iteration`` steps.

    Parameters
    ----------
    learning_rate : float or callable
        A constant, or a schedule: a callable of the iteration count (as a
        ``keras.optimizers.schedules.LearningRateSchedule`` is called).
    iteration : int
        Keras's ``optimizer.iterations`` before the step: 0 for the first.

    Returns
    -------
    float

    Notes
    -----
    Keras evaluates ``schedule(iterations)`` before incrementing, so the first
    step uses ``schedule(0)``; the same value scales the weight decay and the
    update.  (A plain Python callable that is not a ``LearningRateSchedule``
    is called by Keras with no argument at all.)
    """
    if callable(learning_rate):
        return float(learning_rate(iteration))
    return float(learning_rate)


def _check_sizes(sizes, total):
    if sizes is None:
        return [total]
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes) or sum(sizes) != total:
        raise ValueError(f"sizes must be non-negative and add up to the {total} gradient "
                         f"elements, got {sizes}")
    return sizes


def clip_gradients(grads, sizes=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """Keras's gradient clipping, applied before weight decay and the rule.

    Parameters
    ----------
    grads : ndarray of shape (P,)
        The flat gradient of all variables, in order.
    sizes : sequence of int, optional
        The number of elements of each variable, in order (summing to P);
        None means one variable.  Only clipnorm uses it.
    clipnorm, clipvalue, global_clipnorm : float or None
        At most one may be set (Keras raises ``ValueError`` otherwise); None
        or 0 means off.

    Returns
    -------
    ndarray of shape (P,)
        A new array::

            clipnorm c, per variable g:  g * c / max(||g||_2, c)
            global_clipnorm c, N = sqrt(sum over all variables of ||g||^2):
                                         g * c * min(1/N, 1/c)  (NaN when N is inf or NaN)
            clipvalue v:                 clip(g, -v, v)
    """
    grads = np.array(grads, copy=True)
    given = [k for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                            ("global_clipnorm", global_clipnorm)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set "
                         f"(as in Keras), got {', '.join(given)}")
    if clipnorm:
        start = 0
        for size in _check_sizes(sizes, grads.size):
            g = grads[start:start + size]
            norm = math.sqrt(float(np.sum(g.astype(np.float64) ** 2)))
            g *= clipnorm / max(norm, clipnorm)
            start += size
    elif global_clipnorm:
        norm = math.sqrt(float(np.sum(grads.astype(np.float64) ** 2)))
        if not math.isfinite(norm):
            grads[...] = np.nan  # Keras: scale + (N - N) is NaN
        else:
            grads *= global_clipnorm / max(norm, global_clipnorm)
    elif clipvalue:
        np.clip(grads, -clipvalue, clipvalue, out=grads)
    return grads


def apply_weight_decay(params, learning_rate, weight_decay, decay_mask=None):
    """Keras's decoupled weight decay, applied before the optimizer's rule.

    Parameters
    ----------
    params : ndarray of shape (P,)
    learning_rate : float
        This step's learning rate (the schedule's value, see
        :func:`learning_rate_at`).
    weight_decay : float or None
        None means no decay.
    decay_mask : ndarray of shape (P,) of bool, optional
        Which elements decay.  Keras decays every trainable variable, biases
        included, unless ``optimizer.exclude_from_weight_decay`` names some;
        None means all.

    Returns
    -------
    ndarray of shape (P,)
        ``p - p * weight_decay * lr`` where decayed, ``p`` elsewhere.
    """
    params = np.array(params, copy=True)
    if weight_decay is None:
        return params
    decayed = params - params * weight_decay * learning_rate
    if decay_mask is None:
        return decayed
    return np.where(decay_mask, decayed, params).astype(params.dtype)


# ---------------------------------------------------------------- the rules

def init_state(name, params, **config):
    """The optimizer's slot variables before the first step.

    Parameters
    ----------
    name : {"adam", "adamw", "sgd", "rmsprop", "adagrad"}
    params : ndarray of shape (P,)
    **config
        The optimizer's options (only those that decide which slots exist:
        amsgrad, momentum, centered, initial_accumulator_value).

    Returns
    -------
    dict of str to ndarray of shape (P,)
        adam/adamw: ``m``, ``v`` (and ``v_hat`` with amsgrad), zeros;
        sgd: ``momentum`` (zeros) when momentum != 0, else nothing;
        rmsprop: ``velocity``, plus ``momentum`` when momentum > 0 and
        ``average_gradient`` when centered, zeros;
        adagrad: ``accumulator`` filled with initial_accumulator_value (0.1).
    """
    config = _config(name, config)
    params = np.asarray(params)
    zeros = lambda: np.zeros_like(params)  # noqa: E731
    if name in ("adam", "adamw"):
        state = {"m": zeros(), "v": zeros()}
        if config["amsgrad"]:
            state["v_hat"] = zeros()
        return state
    if name == "sgd":
        return {"momentum": zeros()} if config["momentum"] != 0 else {}
    if name == "rmsprop":
        state = {"velocity": zeros()}
        if config["momentum"] > 0:
            state["momentum"] = zeros()
        if config["centered"]:
            state["average_gradient"] = zeros()
        return state
    return {"accumulator": np.full_like(params, config["initial_accumulator_value"])}


def _copy_state(state):
    return {k: np.array(v, copy=True) for k, v in state.items()}


def adam_step(params, grads, state, iteration, learning_rate=0.001, beta_1=0.9,
              beta_2=0.999, epsilon=1e-7, amsgrad=False):
    """One Adam update (Keras 3's ``Adam.update_step``).

    Parameters
    ----------
    params, grads : ndarray of shape (P,)
        Gradients already clipped (and params already decayed, for AdamW).
    state : dict
        ``m``, ``v`` (and ``v_hat`` with amsgrad), from :func:`init_state`.
    iteration : int
        Steps already taken (Keras's ``iterations``): 0 for the first.
    learning_rate : float
        This step's value.
    beta_1, beta_2, epsilon : float
    amsgrad : bool

    Returns
    -------
    params, state
        New arrays.

    Notes
    -----
    With ``t = iteration + 1``, Keras folds both bias corrections into the
    step size and adds epsilon to the *uncorrected* sqrt(v)::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m     = m + (g - m) * (1 - beta_1)
        v     = v + (g^2 - v) * (1 - beta_2)
        v_hat = max(v_hat, v);  v <- v_hat               (amsgrad only)
        p     = p - m * alpha / (sqrt(v) + epsilon)

    (So epsilon is effectively ``epsilon * sqrt(1 - beta_2**t)`` in the
    textbook form with corrected moments.)
    """
    state = _copy_state(state)
    t = iteration + 1
    alpha = learning_rate * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    m, v = state["m"], state["v"]
    m += (grads - m) * (1 - beta_1)
    v += (grads * grads - v) * (1 - beta_2)
    if amsgrad:
        np.maximum(state["v_hat"], v, out=state["v_hat"])
        v = state["v_hat"]
    params = params - m * alpha / (np.sqrt(v) + epsilon)
    return params, state


def adamw_step(params, grads, state, iteration, learning_rate=0.001, weight_decay=0.004,
               beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, decay_mask=None):
    """One AdamW step: decoupled weight decay, then the Adam rule.

    Parameters
    ----------
    params, grads, state, iteration, learning_rate, beta_1, beta_2, epsilon, amsgrad
        As :func:`adam_step`.
    weight_decay : float
        Keras's default is 0.004 (and None is refused by Keras's AdamW).
    decay_mask : ndarray of bool, optional
        See :func:`apply_weight_decay`; None (Keras's default) decays all.

    Returns
    -------
    params, state

    Notes
    -----
    Keras's AdamW is Adam with the base optimizer's weight decay::

        p = p - p * weight_decay * lr          (lr of this step, unscaled by alpha)
        then adam_step on the decayed p

    Any Keras optimizer given ``weight_decay`` decays the same way
    (:func:`apply_gradients` does it for all of them).
    """
    params = apply_weight_decay(params, learning_rate, weight_decay, decay_mask)
    return adam_step(params, grads, state, iteration, learning_rate, beta_1, beta_2,
                     epsilon, amsgrad)


def sgd_step(params, grads, state, iteration, learning_rate=0.01, momentum=0.0,
             nesterov=False):
    """One SGD update (Keras 3's ``SGD.update_step``).

    Parameters
    ----------
    params, grads : ndarray of shape (P,)
    state : dict
        ``momentum`` when momentum != 0 (from :func:`init_state`).
    iteration : int
        Unused (SGD has no step count); kept for one signature.
    learning_rate, momentum : float
    nesterov : bool

    Returns
    -------
    params, state

    Notes
    -----
    Keras keeps the velocity with the learning rate inside it::

        momentum 0:  p = p - lr g                 (nesterov has no effect)
        otherwise:   b = momentum * b - lr g
                     p = p + b                     (plain)
                     p = p + momentum * b - lr g   (nesterov, with the new b)
    """
    del iteration
    state = _copy_state(state)
    if momentum == 0:
        return params - grads * learning_rate, state
    b = state["momentum"]
    b[...] = b * momentum - grads * learning_rate
    if nesterov:
        return params + (b * momentum - grads * learning_rate), state
    return params + b, state


def rmsprop_step(params, grads, state, iteration, learning_rate=0.001, rho=0.9,
                 momentum=0.0, epsilon=1e-7, centered=False):
    """One RMSprop update (Keras 3's ``RMSprop.update_step``).

    Parameters
    ----------
    params, grads : ndarray of shape (P,)
    state : dict
        ``velocity``; ``momentum`` when momentum > 0; ``average_gradient``
        when centered.
    iteration : int
        Unused; kept for one signature.
    learning_rate, rho, momentum, epsilon : float
    centered : bool

    Returns
    -------
    params, state

    Notes
    -----
    Epsilon sits *inside* the square root, and the learning rate inside the
    momentum buffer::

        v    = rho v + (1 - rho) g^2
        mg   = rho mg + (1 - rho) g                   (centered only)
        den  = v - mg^2 + epsilon   (centered)  or  v + epsilon
        inc  = lr g / sqrt(den)
        momentum > 0:  b = momentum b + inc;  p = p - b
        otherwise:     p = p - inc
    """
    del iteration
    state = _copy_state(state)
    v = state["velocity"]
    v[...] = rho * v + (1 - rho) * (grads * grads)
    if centered:
        mg = state["average_gradient"]
        mg[...] = rho * mg + (1 - rho) * grads
        denominator = v - mg * mg + epsilon
    else:
        denominator = v + epsilon
    increment = learning_rate * grads / np.sqrt(denominator)
    if momentum > 0:
        b = state["momentum"]
        b[...] = momentum * b + increment
        return params - b, state
    return params - increment, state


def adagrad_step(params, grads, state, iteration, learning_rate=0.001,
                 initial_accumulator_value=0.1, epsilon=1e-7):
    """One Adagrad update (Keras 3's ``Adagrad.update_step``).

    Parameters
    ----------
    params, grads : ndarray of shape (P,)
    state : dict
        ``accumulator``, which starts at initial_accumulator_value (0.1), not 0.
    iteration : int
        Unused; kept for one signature.
    learning_rate, epsilon : float
    initial_accumulator_value : float
        Used only by :func:`init_state`; accepted here for one config dict.

    Returns
    -------
    params, state

    Notes
    -----
    Epsilon inside the square root::

        acc = acc + g^2
        p   = p - lr g / sqrt(acc + epsilon)
    """
    del iteration, initial_accumulator_value
    state = _copy_state(state)
    acc = state["accumulator"]
    acc += grads * grads
    return params - learning_rate * grads / np.sqrt(acc + epsilon), state


_RULES = {"adam": adam_step, "adamw": adam_step, "sgd": sgd_step,
          "rmsprop": rmsprop_step, "adagrad": adagrad_step}


def _config(name, config):
    """Defaults filled in, unknown options refused, Keras's own checks made."""
    if name not in OPTIMIZER_DEFAULTS:
        raise ValueError(f"optimizer name must be one of {', '.join(OPTIMIZER_NAMES)}, "
                         f"got {name!r}")
    allowed = set(OPTIMIZER_DEFAULTS[name]) | set(CLIP_OPTIONS) | {"weight_decay"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise TypeError(f"unknown option(s) for optimizer {name!r}: {', '.join(unknown)}; "
                        f"accepted: {', '.join(sorted(allowed))}")
    full = dict(weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None)
    full.update(OPTIMIZER_DEFAULTS[name])
    full.update(config)
    if name == "adamw" and full["weight_decay"] is None:
        raise ValueError("weight_decay must be a float for adamw, got None")
    if name == "sgd" and not 0 <= full["momentum"] <= 1:
        raise ValueError(f"momentum must be in [0, 1] for sgd, got {full['momentum']}")
    lr = full["learning_rate"]
    if not callable(lr) and not isinstance(lr, numbers.Real):
        raise TypeError(f"learning_rate must be a number or a schedule, got {lr!r}")
    return full


def apply_gradients(name, params, grads, state, iteration, config=None, sizes=None,
                    decay_mask=None):
    """One whole Keras optimizer step: clip, decay, rule, count.

    Parameters
    ----------
    name : {"adam", "adamw", "sgd", "rmsprop", "adagrad"}
    params, grads : ndarray of shape (P,)
        All variables, flat and in order, and the loss gradient (unclipped).
    state : dict
        From :func:`init_state` or the previous call.
    iteration : int
        Steps already taken (0 for the first).
    config : dict, optional
        The optimizer's options (see ``OPTIMIZER_DEFAULTS``) plus
        ``weight_decay`` and one of ``CLIP_OPTIONS``; ``learning_rate`` may
        be a schedule (a callable of the iteration).
    sizes : sequence of int, optional
        Elements of each variable, for clipnorm; None means one variable.
    decay_mask : ndarray of bool, optional
        Elements that weight decay applies to; None means all (Keras).

    Returns
    -------
    params, state, iteration
        The new parameters and slots, and ``iteration + 1``.
    """
    config = _config(name, dict(config or {}))
    params = np.asarray(params)
    grads = np.asarray(grads, dtype=params.dtype)
    if grads.shape != params.shape:
        raise ValueError(f"grads must have the shape of params {params.shape}, got {grads.shape}")
    lr = learning_rate_at(config["learning_rate"], iteration)
    grads = clip_gradients(grads, sizes, config["clipnorm"], config["clipvalue"],
                           config["global_clipnorm"])
    params = apply_weight_decay(params, lr, config["weight_decay"], decay_mask)
    rule_options = {k: config[k] for k in OPTIMIZER_DEFAULTS[name]
                    if k not in ("learning_rate", "weight_decay")}
    params, state = _RULES[name](params, grads, state, iteration, learning_rate=lr,
                                 **rule_options)
    return params, state, iteration + 1
