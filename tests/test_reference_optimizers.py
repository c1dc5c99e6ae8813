"""The optimizer reference against Keras 3 and against hand computation."""
import math

import numpy as np
import pytest

from fastrnn import reference as ref
from fastrnn.reference import optimizers as opt

from keras_fixture import json_entry, load, optimizer_config, text
from tolerances import tol

KERAS = tol("keras_fixture", np.float64)
FIXTURE = load("optimizers")
CASES = json_entry(FIXTURE["cases"])


@pytest.mark.parametrize("case", CASES)
def test_matches_keras(case):
    name = text(FIXTURE[f"{case}/optimizer"])
    config = optimizer_config(FIXTURE[f"{case}/config"])
    params = FIXTURE["init"].copy()
    state = opt.init_state(name, params, **config)
    iteration = 0
    for step, expected in enumerate(FIXTURE[f"{case}/params"]):
        params, state, iteration = opt.apply_gradients(
            name, params, FIXTURE["grads"][step], state, iteration, config,
            sizes=FIXTURE["sizes"])
        np.testing.assert_allclose(params, expected, **KERAS, err_msg=f"{case} step {step + 1}")
    assert iteration == len(FIXTURE[f"{case}/params"])


def test_fixture_covers_every_optimizer_and_option():
    seen = {}
    for case in CASES:
        options = seen.setdefault(text(FIXTURE[f"{case}/optimizer"]), set())
        options.update(json_entry(FIXTURE[f"{case}/config"]))
    own = dict(opt.OPTIMIZER_DEFAULTS, adamw={"weight_decay", "amsgrad", "learning_rate"})
    for name, options in own.items():
        assert set(options) <= seen[name], (name, set(options) - seen[name])
        assert seen[name] & set(opt.CLIP_OPTIONS), name
        assert "weight_decay" in seen[name], name
    for name in ("adam", "sgd"):
        assert set(opt.CLIP_OPTIONS) <= seen[name]
    # the clip cases bind in some steps and not others: the norms straddle the limits
    norms = np.linalg.norm(FIXTURE["grads"][:, :6], axis=1)
    assert norms.min() < 0.5 < norms.max()


# ---------------------------------------------------------------- by hand

P0, G1, G2 = 0.5, 0.2, -0.4


def two_steps(name, config, grads=(G1, G2), p0=P0):
    """The reference's parameter after each of two steps on a scalar."""
    params = np.array([p0])
    state = opt.init_state(name, params, **config)
    out, iteration = [], 0
    for g in grads:
        params, state, iteration = opt.apply_gradients(name, params, np.array([g]), state,
                                                       iteration, config)
        out.append(float(params[0]))
    return out


def test_adam_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    m1 = (1 - b1) * G1
    v1 = (1 - b2) * G1**2
    p1 = P0 - lr * math.sqrt(1 - b2) / (1 - b1) * m1 / (math.sqrt(v1) + eps)
    m2 = b1 * m1 + (1 - b1) * G2
    v2 = b2 * v1 + (1 - b2) * G2**2
    p2 = p1 - lr * math.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (math.sqrt(v2) + eps)
    np.testing.assert_allclose(two_steps("adam", {"learning_rate": lr}), [p1, p2], rtol=1e-14)


def test_adam_amsgrad_by_hand():
    # beta_2 = 0.5 and a small second gradient make v fall, so v_hat keeps v1.
    lr, b1, b2, eps, g1, g2 = 0.1, 0.9, 0.5, 1e-7, 1.0, 0.01
    m1, v1 = (1 - b1) * g1, (1 - b2) * g1**2
    p1 = P0 - lr * math.sqrt(1 - b2) / (1 - b1) * m1 / (math.sqrt(v1) + eps)
    m2, v2 = b1 * m1 + (1 - b1) * g2, b2 * v1 + (1 - b2) * g2**2
    assert v2 < v1
    p2 = p1 - lr * math.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (math.sqrt(v1) + eps)
    got = two_steps("adam", {"learning_rate": lr, "beta_2": b2, "amsgrad": True}, (g1, g2))
    np.testing.assert_allclose(got, [p1, p2], rtol=1e-14)


def test_adamw_by_hand():
    # decay with the plain lr first, then Adam from the decayed value
    lr, wd, b1, b2, eps = 0.1, 0.3, 0.9, 0.999, 1e-7
    d0 = P0 - P0 * wd * lr
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1**2
    p1 = d0 - lr * math.sqrt(1 - b2) / (1 - b1) * m1 / (math.sqrt(v1) + eps)
    d1 = p1 - p1 * wd * lr
    m2, v2 = b1 * m1 + (1 - b1) * G2, b2 * v1 + (1 - b2) * G2**2
    p2 = d1 - lr * math.sqrt(1 - b2**2) / (1 - b1**2) * m2 / (math.sqrt(v2) + eps)
    np.testing.assert_allclose(two_steps("adamw", {"learning_rate": lr, "weight_decay": wd}),
                               [p1, p2], rtol=1e-14)
    # the pure function agrees with the whole step
    state = opt.init_state("adamw", np.array([P0]))
    p, _ = opt.adamw_step(np.array([P0]), np.array([G1]), state, 0, lr, wd)
    np.testing.assert_allclose(p, [p1], rtol=1e-15)


def test_sgd_by_hand():
    lr, mu = 0.1, 0.9
    np.testing.assert_allclose(two_steps("sgd", {"learning_rate": lr}),
                               [P0 - lr * G1, P0 - lr * G1 - lr * G2], rtol=1e-15)
    b1 = -lr * G1
    p1 = P0 + b1
    b2 = mu * b1 - lr * G2
    np.testing.assert_allclose(two_steps("sgd", {"learning_rate": lr, "momentum": mu}),
                               [p1, p1 + b2], rtol=1e-15)
    # nesterov: the step is momentum * (new velocity) - lr g
    q1 = P0 + mu * b1 - lr * G1
    q2 = q1 + mu * b2 - lr * G2
    np.testing.assert_allclose(
        two_steps("sgd", {"learning_rate": lr, "momentum": mu, "nesterov": True}), [q1, q2],
        rtol=1e-15)


def test_rmsprop_by_hand():
    lr, rho, eps = 0.1, 0.9, 1e-7
    v1 = (1 - rho) * G1**2
    p1 = P0 - lr * G1 / math.sqrt(v1 + eps)  # epsilon inside the root
    v2 = rho * v1 + (1 - rho) * G2**2
    p2 = p1 - lr * G2 / math.sqrt(v2 + eps)
    np.testing.assert_allclose(two_steps("rmsprop", {"learning_rate": lr}), [p1, p2],
                               rtol=1e-14)


def test_rmsprop_centered_momentum_by_hand():
    lr, rho, mu, eps = 0.1, 0.8, 0.5, 1e-7
    v1, a1 = (1 - rho) * G1**2, (1 - rho) * G1
    b1 = lr * G1 / math.sqrt(v1 - a1**2 + eps)
    p1 = P0 - b1
    v2, a2 = rho * v1 + (1 - rho) * G2**2, rho * a1 + (1 - rho) * G2
    b2 = mu * b1 + lr * G2 / math.sqrt(v2 - a2**2 + eps)
    p2 = p1 - b2
    config = {"learning_rate": lr, "rho": rho, "momentum": mu, "centered": True}
    np.testing.assert_allclose(two_steps("rmsprop", config), [p1, p2], rtol=1e-14)


def test_adagrad_by_hand():
    lr, eps = 0.1, 1e-7
    acc1 = 0.1 + G1**2  # the accumulator starts at initial_accumulator_value = 0.1
    p1 = P0 - lr * G1 / math.sqrt(acc1 + eps)
    acc2 = acc1 + G2**2
    p2 = p1 - lr * G2 / math.sqrt(acc2 + eps)
    np.testing.assert_allclose(two_steps("adagrad", {"learning_rate": lr}), [p1, p2], rtol=1e-14)


def test_schedule_is_evaluated_at_the_steps_already_taken():
    # lr(0) for the first step, lr(1) for the second; weight decay uses the same value.
    schedule = lambda it: 0.1 * 0.5**it  # noqa: E731
    np.testing.assert_allclose(two_steps("sgd", {"learning_rate": schedule}),
                               [P0 - 0.1 * G1, P0 - 0.1 * G1 - 0.05 * G2], rtol=1e-15)
    wd = 0.2
    d0 = P0 * (1 - wd * 0.1)
    p1 = d0 - 0.1 * G1
    p2 = p1 * (1 - wd * 0.05) - 0.05 * G2
    np.testing.assert_allclose(
        two_steps("sgd", {"learning_rate": schedule, "weight_decay": wd}), [p1, p2], rtol=1e-14)
    assert opt.learning_rate_at(schedule, 3) == 0.1 * 0.5**3
    assert opt.learning_rate_at(0.25, 3) == 0.25


# ---------------------------------------------------------------- clipping

def test_clipnorm_clips_each_variable_on_its_own():
    grads = np.array([3.0, 4.0, 0.3, 0.4, 0.0, 0.0])
    clipped = opt.clip_gradients(grads, sizes=[2, 2, 2], clipnorm=1.0)
    # norms 5 (clipped to 1), 0.5 (kept), 0 (kept, no division by zero)
    np.testing.assert_allclose(clipped, [0.6, 0.8, 0.3, 0.4, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(opt.clip_gradients(grads, clipnorm=1.0),
                               grads / np.linalg.norm(grads), rtol=1e-15)


def test_global_clipnorm_and_clipvalue():
    grads = np.array([3.0, 4.0, 0.0, 12.0])
    np.testing.assert_allclose(opt.clip_gradients(grads, [2, 2], global_clipnorm=6.5),
                               grads * 0.5, rtol=1e-15)
    np.testing.assert_array_equal(opt.clip_gradients(grads, [2, 2], global_clipnorm=20.0), grads)
    np.testing.assert_array_equal(opt.clip_gradients(np.zeros(3), global_clipnorm=1.0), 0)
    assert np.all(np.isnan(opt.clip_gradients(np.array([np.inf, 1.0]), global_clipnorm=1.0)))
    np.testing.assert_array_equal(opt.clip_gradients(np.array([-2.0, 0.5, 7.0]), clipvalue=1.0),
                                  [-1.0, 0.5, 1.0])
    # 0 or None means off, as in Keras
    np.testing.assert_array_equal(opt.clip_gradients(grads, clipnorm=0), grads)


def test_clipping_happens_before_the_rule():
    got = two_steps("sgd", {"learning_rate": 0.1, "clipvalue": 0.25}, grads=(1.0, -0.1))
    np.testing.assert_allclose(got, [P0 - 0.025, P0 - 0.025 + 0.01], rtol=1e-15)


def test_only_one_clip_option():
    with pytest.raises(ValueError, match="only one of"):
        opt.clip_gradients(np.ones(2), clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="only one of"):
        two_steps("adam", {"clipnorm": 1.0, "global_clipnorm": 1.0})


def test_weight_decay_mask():
    params = np.array([1.0, 2.0])
    np.testing.assert_allclose(opt.apply_weight_decay(params, 0.1, 0.5, np.array([True, False])),
                               [0.95, 2.0])
    np.testing.assert_array_equal(opt.apply_weight_decay(params, 0.1, None), params)


# ---------------------------------------------------------------- contract

@pytest.mark.parametrize("name", opt.OPTIMIZER_NAMES)
def test_steps_are_pure_and_keep_dtype(name):
    config = {"momentum": 0.5} if name in ("sgd", "rmsprop") else {}
    for dtype in (np.float64, np.float32):
        params = np.linspace(-1, 1, 5).astype(dtype)
        grads = np.linspace(0.3, -0.2, 5).astype(dtype)
        state = opt.init_state(name, params, **config)
        before = [params.copy(), grads.copy(), {k: v.copy() for k, v in state.items()}]
        new_params, new_state, _ = opt.apply_gradients(name, params, grads, state, 0, config)
        np.testing.assert_array_equal(params, before[0])
        np.testing.assert_array_equal(grads, before[1])
        for key, value in state.items():
            np.testing.assert_array_equal(value, before[2][key])
        assert new_params.dtype == dtype
        assert all(v.dtype == dtype for v in new_state.values())


def test_state_slots_follow_the_options():
    p = np.zeros(3)
    assert set(opt.init_state("adam", p)) == {"m", "v"}
    assert set(opt.init_state("adam", p, amsgrad=True)) == {"m", "v", "v_hat"}
    assert opt.init_state("sgd", p) == {}
    assert set(opt.init_state("rmsprop", p, momentum=0.9, centered=True)) == {
        "velocity", "momentum", "average_gradient"}
    np.testing.assert_array_equal(opt.init_state("adagrad", p)["accumulator"], 0.1)


def test_kernels_adam_update_is_the_same_adam():
    rng = np.random.default_rng(0)
    param, grad = rng.standard_normal(6), rng.standard_normal(6)
    m, v = np.zeros(6), np.zeros(6)
    state = {"m": m.copy(), "v": v.copy()}
    expected = param.copy()
    for step in (1, 2, 3):
        ref.adam_update(param, grad, m, v, step, learning_rate=0.01)
        expected, state = opt.adam_step(expected, grad, state, step - 1, learning_rate=0.01)
    np.testing.assert_array_equal(param, expected)
    np.testing.assert_array_equal(m, state["m"])


def test_bad_options_are_refused():
    p = np.zeros(2)
    with pytest.raises(ValueError, match="optimizer name"):
        opt.init_state("adamax", p)
    with pytest.raises(TypeError, match="unknown option.*betas"):
        opt.init_state("adam", p, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="weight_decay"):
        opt.init_state("adamw", p, weight_decay=None)
    with pytest.raises(ValueError, match="momentum"):
        opt.init_state("sgd", p, momentum=1.5)
    with pytest.raises(TypeError, match="learning_rate"):
        opt.apply_gradients("sgd", p, p, {}, 0, {"learning_rate": "fast"})
    with pytest.raises(ValueError, match="grads"):
        opt.apply_gradients("sgd", p, np.zeros(3), {}, 0)
    with pytest.raises(ValueError, match="sizes"):
        opt.clip_gradients(np.ones(4), sizes=[1, 2], clipnorm=1.0)
