"""Optimizers on flat buffers: Keras's formulas, clipping, one compiled call per Adam step."""
import numpy as np
import pytest

from fastrnn import ops, optimizers
from fastrnn.optimizers import SGD, Adam


def problem(n=7, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)


def test_adam_steps_match_keras_formula():
    params, _ = problem()
    opt = Adam(learning_rate=0.01)
    opt.build(params, [0, 3])
    p, m, v = params.copy(), np.zeros(7), np.zeros(7)
    for t in range(1, 6):
        g = np.random.default_rng(t).standard_normal(7)
        opt.apply(params, g.copy())
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(params, p, rtol=1e-12, atol=1e-14)
    assert opt.iterations == 5


def test_adam_is_one_ops_call_per_step(monkeypatch):
    calls = []
    real = ops.adam_update

    def counting(*args, **kwargs):
        calls.append(args[0].size)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, "adam_update", counting)
    params, grads = problem(50)
    opt = Adam()
    opt.build(params, [0, 10, 30])
    opt.apply(params, grads)
    opt.apply(params, grads)
    assert calls == [50, 50]


def test_amsgrad_uses_running_max_of_v():
    params, _ = problem(3)
    p = params.copy()
    opt = Adam(learning_rate=0.1, amsgrad=True)
    opt.build(params, [0])
    m, v, vhat = np.zeros(3), np.zeros(3), np.zeros(3)
    for t, scale in enumerate([10.0, 0.1, 0.1], start=1):
        g = np.full(3, scale)
        opt.apply(params, g.copy())
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        vhat = np.maximum(vhat, v)
        p = p - 0.1 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(vhat) + 1e-7)
    np.testing.assert_allclose(params, p, rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_keras_formula(nesterov):
    params, _ = problem()
    p, u = params.copy(), np.zeros(7)
    opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    opt.build(params, [0])
    for t in range(3):
        g = np.random.default_rng(t).standard_normal(7)
        opt.apply(params, g.copy())
        u = 0.9 * u - 0.1 * g
        p = p + (0.9 * u - 0.1 * g if nesterov else u)
    np.testing.assert_allclose(params, p, rtol=1e-12)


def test_plain_sgd():
    params, grads = problem()
    p = params - 0.5 * grads
    opt = SGD(0.5)
    opt.build(params, [0])
    opt.apply(params, grads)
    np.testing.assert_allclose(params, p)


def test_clipvalue_is_elementwise():
    opt = SGD(1.0, clipvalue=0.5)
    params = np.zeros(4)
    opt.build(params, [0])
    opt.apply(params, np.array([2.0, -3.0, 0.1, -0.2]))
    np.testing.assert_allclose(params, [-0.5, 0.5, -0.1, 0.2])


def test_clipnorm_is_per_variable_and_global_clipnorm_is_joint():
    grads = np.array([3.0, 4.0, 0.3, 0.4])          # variable norms 5 and 0.5
    opt = SGD(1.0, clipnorm=1.0)
    params = np.zeros(4)
    opt.build(params, [0, 2])
    opt.apply(params, grads.copy())
    np.testing.assert_allclose(-params, [0.6, 0.8, 0.3, 0.4])  # only the first is rescaled

    opt = SGD(1.0, global_clipnorm=1.0)
    params = np.zeros(4)
    opt.build(params, [0, 2])
    opt.apply(params, grads.copy())
    np.testing.assert_allclose(-params, grads / np.linalg.norm(grads))


def test_state_survives_rebuild_with_same_layout_only():
    params, grads = problem()
    opt = Adam()
    opt.build(params, [0])
    opt.apply(params, grads)
    opt.build(params, [0])
    assert opt.iterations == 1
    opt.build(np.zeros(3), [0])
    assert opt.iterations == 0 and opt.m.size == 3


@pytest.mark.parametrize("make, error, match", [
    (lambda: Adam(learning_rate=-1), ValueError, "learning_rate"),
    (lambda: Adam(learning_rate="fast"), TypeError, "learning_rate"),
    (lambda: Adam(beta_1=1.0), ValueError, "beta_1"),
    (lambda: Adam(epsilon=float("nan")), ValueError, "epsilon"),
    (lambda: Adam(clipnorm=1.0, clipvalue=1.0), ValueError, "at most one"),
    (lambda: SGD(momentum=1.5), ValueError, "momentum"),
    (lambda: optimizers.get("rmsprop"), ValueError, "unknown optimizer"),
    (lambda: optimizers.get(3), TypeError, "optimizer"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_apply_before_build_raises():
    with pytest.raises(ValueError, match="build"):
        Adam().apply(np.zeros(3), np.zeros(3))


def test_get_by_name():
    assert isinstance(optimizers.get("adam"), Adam)
    assert isinstance(optimizers.get("SGD"), SGD)
    opt = Adam()
    assert optimizers.get(opt) is opt
