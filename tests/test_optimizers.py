"""Optimizers in the engine: Keras 3's formulas step by step, clipping, checked settings.

Each test trains a small linear model one compiled step at a time and replays
the optimizer's formula by hand, in float64, on the gradient the engine
computed for that step (``_loss_and_gradients`` at the same weights).
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn import optimizers
from fastrnn.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop


def linear_model(optimizer, seed=0, dtype="float64"):
    keras.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,), dtype=dtype), keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype(dtype)
    y = rng.standard_normal((8, 3)).astype(dtype)
    return model, x, y


def trajectory(optimizer, steps=5, seed=0):
    """[(params before, gradient, params after)] for ``steps`` engine steps."""
    model, x, y = linear_model(optimizer, seed)
    out = []
    for t in range(steps):
        # a different batch each step, so gradients vary
        xt, yt = x * (1 + 0.3 * t), y - 0.2 * t
        before = model.params.copy()
        model._loss_and_gradients(xt, yt)
        g = model.grads.copy()
        model._train_batch(xt, yt)
        out.append((before, g, model.params.copy()))
    assert model.optimizer.iterations == steps
    return out


def assert_steps(steps, update):
    """``update(t, p, g) -> new p`` (t from 1) replays every step."""
    p = steps[0][0].copy()
    for t, (before, g, after) in enumerate(steps, start=1):
        np.testing.assert_allclose(before, p, rtol=1e-12, atol=1e-14)
        p = update(t, p, g)
        np.testing.assert_allclose(after, p, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_keras_formula(amsgrad):
    m = v = vhat = 0

    def update(t, p, g):
        nonlocal m, v, vhat
        m = m + (1 - 0.9) * (g - m)
        v = v + (1 - 0.999) * (g * g - v)
        vhat = np.maximum(vhat, v)
        lr_t = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        return p - lr_t * m / (np.sqrt(vhat if amsgrad else v) + 1e-7)

    assert_steps(trajectory(Adam(learning_rate=0.01, amsgrad=amsgrad)), update)


def test_adamw_decays_weights_before_the_adam_step():
    m = v = 0

    def update(t, p, g):
        nonlocal m, v
        p = p - p * 0.1 * 0.01
        m = m + 0.1 * (g - m)
        v = v + 0.001 * (g * g - v)
        lr_t = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        return p - lr_t * m / (np.sqrt(v) + 1e-7)

    assert_steps(trajectory(AdamW(learning_rate=0.01, weight_decay=0.1)), update)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_keras_formula(momentum, nesterov):
    u = 0

    def update(t, p, g):
        nonlocal u
        if not momentum:
            return p - 0.1 * g
        u = momentum * u - 0.1 * g
        return p + (momentum * u - 0.1 * g if nesterov else u)

    assert_steps(trajectory(SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov)), update)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_matches_keras_formula(momentum, centered):
    v = a = mom = 0

    def update(t, p, g):
        nonlocal v, a, mom
        v = 0.8 * v + (1 - 0.8) * g * g
        if centered:
            a = 0.8 * a + (1 - 0.8) * g
            den = v - a * a + 1e-7
        else:
            den = v + 1e-7
        inc = 0.01 * g / np.sqrt(den)
        if momentum:
            mom = momentum * mom + inc
            return p - mom
        return p - inc

    opt = RMSprop(learning_rate=0.01, rho=0.8, momentum=momentum, centered=centered)
    assert_steps(trajectory(opt), update)


def test_adagrad_matches_keras_formula():
    acc = 0.2

    def update(t, p, g):
        nonlocal acc
        acc = acc + g * g
        return p - 0.05 * g / np.sqrt(acc + 1e-7)

    assert_steps(trajectory(Adagrad(learning_rate=0.05, initial_accumulator_value=0.2)), update)


def test_clipvalue_is_elementwise():
    def update(t, p, g):
        return p - 1.0 * np.clip(g, -0.05, 0.05)

    steps = trajectory(SGD(1.0, clipvalue=0.05), steps=2)
    assert np.max(np.abs(steps[0][1])) > 0.05        # the clip did bite
    assert_steps(steps, update)


@pytest.mark.parametrize("kind", ["clipnorm", "global_clipnorm"])
def test_clipnorm_is_per_variable_and_global_clipnorm_is_joint(kind):
    c = 0.1
    cut = 4 * 3                                       # kernel (4, 3), then bias (3,)

    def clipped(g):
        if kind == "global_clipnorm":
            n = np.linalg.norm(g)
            return g * (c / n if n > c else 1)
        parts = [g[:cut], g[cut:]]
        return np.concatenate([q * (c / np.linalg.norm(q) if np.linalg.norm(q) > c else 1)
                               for q in parts])

    steps = trajectory(SGD(1.0, **{kind: c}), steps=2)
    assert np.linalg.norm(steps[0][1]) > c
    assert_steps(steps, lambda t, p, g: p - clipped(g))


def test_schedule_learning_rate_is_evaluated_at_every_step():
    rates = [0.1, 0.05, 0.025, 0.0125]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0, 1, 2], rates)

    def update(t, p, g):
        return p - rates[t - 1] * g

    assert_steps(trajectory(SGD(schedule), steps=4), update)


def test_a_callable_learning_rate_is_called_without_arguments_as_in_keras():
    calls = []

    def rate():
        calls.append(1)
        return 0.1

    assert_steps(trajectory(SGD(rate), steps=2), lambda t, p, g: p - 0.1 * g)
    assert len(calls) == 2


def test_state_survives_rebuild_with_same_layout_only():
    model, x, y = linear_model(Adam())
    model.fit(x, y, epochs=1, verbose=0)
    opt = model.optimizer
    opt.build(model.params, [off for _, _, off in model.param_layout])
    assert opt.iterations == 1
    opt.build(np.zeros(3), [0])
    assert opt.iterations == 0 and opt.m.size == 3


@pytest.mark.parametrize("make, error, match", [
    (lambda: Adam(learning_rate=-1), ValueError, "learning_rate"),
    (lambda: Adam(learning_rate=float("nan")), ValueError, "learning_rate"),
    (lambda: Adam(learning_rate=float("inf")), ValueError, "learning_rate"),
    (lambda: Adam(learning_rate="fast"), TypeError, "learning_rate"),
    (lambda: Adam(beta_1=1.0), ValueError, "beta_1"),
    (lambda: Adam(epsilon=float("nan")), ValueError, "epsilon"),
    (lambda: Adam(epsilon=0.0), ValueError, "epsilon"),
    (lambda: Adam(clipnorm=1.0, clipvalue=1.0), ValueError, "at most one"),
    (lambda: SGD(momentum=1.5), ValueError, "momentum"),
    (lambda: RMSprop(rho=1.0), ValueError, "rho"),
    (lambda: RMSprop(epsilon=0), ValueError, "epsilon"),
    (lambda: Adagrad(initial_accumulator_value=-1), ValueError, "initial_accumulator_value"),
    (lambda: AdamW(weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda: optimizers.get("adamax"), ValueError, "unknown optimizer"),
    (lambda: optimizers.get(3), TypeError, "optimizer"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1])
def test_a_bad_learning_rate_set_later_is_refused(value):
    opt = Adam()
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = value
    assert opt.learning_rate == 0.001


def test_get_by_name():
    for name, cls in [("adam", Adam), ("SGD", SGD), ("rmsprop", RMSprop), ("adagrad", Adagrad),
                      ("adamw", AdamW)]:
        assert type(optimizers.get(name)) is cls
    opt = Adam()
    assert optimizers.get(opt) is opt
