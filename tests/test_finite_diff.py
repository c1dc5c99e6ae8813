"""The kink-aware finite-difference check: right where differences cross a kink, still strict.

The fixture ``KINKED`` is the example from issue 16: relu, where a plain
central difference straddles z = 0 and disagrees with a correct gradient.
Every test that shows the check passing there is paired with one that
breaks a derivative on purpose and shows the check failing.
"""
import numpy as np
import pytest

import fastrnn
from fastrnn import reference as ref
from fastrnn.reference import recurrence as ref_recurrence

from finite_diff import KINKS, check_gradient, kink_regions, kinks
from preactivations import rnn_preactivations, sequential_preactivations, sequential_regions
from problems import make_rnn_problem
from tolerances import tol

REL = tol("finite_difference", np.float64)["rel"]
KINKED = dict(B=13, T=13, D=13, H=13, seed=2, with_h0=True)  # from issue 16


def rnn_case(activation, B, T, D, H, seed, with_h0):
    """(loss, regions, [(name, array, analytic gradient), ...]) of one reference problem."""
    p = make_rnn_problem(B, T, D, H, seed, with_h0)
    x, kernel, recurrent_kernel, bias, h0, dh = (
        p[k] for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "dh"))

    def loss():
        return float(np.sum(ref.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation) * dh))

    def regions():
        return kink_regions(activation, rnn_preactivations(x, kernel, recurrent_kernel, bias,
                                                           h0, activation))

    h = ref.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation)
    dx, dk, drk, db, dh0 = ref.rnn_backward(x, h, kernel, recurrent_kernel, dh, h0, activation)
    arrays = [("x", x, dx), ("kernel", kernel, dk), ("recurrent_kernel", recurrent_kernel, drk),
              ("bias", bias, db)] + ([("h0", h0, dh0)] if with_h0 else [])
    return loss, regions, arrays


def break_slope(monkeypatch, broken):
    """Make the reference's act'(z) wrong: the recurrence's dz = dh act'(z) is
    replaced by ``broken(dz)`` (element-wise, so the same as breaking act')."""
    right = ref_recurrence.activation_grad
    monkeypatch.setattr(ref_recurrence, "activation_grad",
                        lambda name, z, h, dh: broken(right(name, z, h, dh)))


# ---------------------------------------------------------------- the kink case

def test_plain_central_differences_fail_across_relus_kink():
    # documents why the check needs regions: without them a correct gradient fails
    loss, _, arrays = rnn_case("relu", **KINKED)
    name, kernel, dk = arrays[1]
    with pytest.raises(AssertionError, match="relative error"):
        check_gradient(loss, kernel, dk, REL, name=name)


def test_kink_aware_check_passes_and_differences_one_sided_there():
    loss, regions, arrays = rnn_case("relu", **KINKED)
    one_sided = 0
    for name, array, grad in arrays:
        diffs = check_gradient(loss, array, grad, REL, name=name, regions=regions)
        one_sided += diffs.one_sided.size
    assert one_sided > 0  # the fixture really has differences that cross the kink


def test_the_one_sided_coordinates_are_still_checked():
    loss, regions, arrays = rnn_case("relu", **KINKED)
    name, kernel, dk = arrays[1]
    diffs = check_gradient(loss, kernel, dk, REL, name=name, regions=regions)
    assert diffs.one_sided.size > 0
    wrong = dk.copy().reshape(-1)
    wrong[diffs.one_sided] *= 1 + 1e-3  # wrong only where the difference was one-sided
    with pytest.raises(AssertionError, match="relative error"):
        check_gradient(loss, kernel, wrong.reshape(dk.shape), REL, name=name, regions=regions)


@pytest.mark.parametrize("factor", [0.5, 1.01])
def test_a_wrong_relu_derivative_at_a_few_coordinates_fails(monkeypatch, factor):
    def broken(slope):  # relu' off by `factor` for batch 0, unit 0, at every step
        slope = slope.copy()
        slope[0, 0] *= factor
        return slope

    break_slope(monkeypatch, broken)
    loss, regions, arrays = rnn_case("relu", **KINKED)
    failures = 0
    for name, array, grad in arrays:
        try:
            check_gradient(loss, array, grad, REL, name=name, regions=regions)
        except AssertionError as error:
            assert "relative error" in str(error)
            failures += 1
    assert failures >= 3  # kernel, recurrent_kernel, bias at least


def test_a_1e_4_error_in_tanh_derivative_fails(monkeypatch):
    break_slope(monkeypatch, lambda slope: slope * (1 + 1e-4))
    loss, regions, arrays = rnn_case("tanh", B=4, T=5, D=3, H=6, seed=0, with_h0=True)
    name, kernel, dk = arrays[1]
    with pytest.raises(AssertionError, match="relative error"):
        check_gradient(loss, kernel, dk, REL, name=name, regions=regions)


def test_tanh_problem_passes_without_breakage():  # the control of the test above
    loss, regions, arrays = rnn_case("tanh", B=4, T=5, D=3, H=6, seed=0, with_h0=True)
    for name, array, grad in arrays:
        diffs = check_gradient(loss, array, grad, REL, name=name, regions=regions)
        assert diffs.one_sided.size == 0 and diffs.skipped == 0


# ---------------------------------------------------------------- one coordinate by hand

def kinked_scalar(w):
    """f(w) = relu(w0) w1^2 + w0 w1 + 50 w0^2 and its gradient: the kink is at w0 = 0.

    The curvature (f'' = 100 along w0) makes a first-order one-sided
    difference miss by ~5e-5: only a second-order one passes.
    """
    f = max(w[0], 0.0) * w[1] ** 2 + w[0] * w[1] + 50 * w[0] ** 2
    grad = np.array([(w[0] > 0) * w[1] ** 2 + w[1] + 100 * w[0],
                     2 * max(w[0], 0.0) * w[1] + w[0]])
    return f, grad


@pytest.mark.parametrize("w0", [4e-7, -4e-7])  # within the step (1e-6) of the kink
def test_one_sided_difference_is_second_order_accurate(w0):
    w = np.array([w0, 1.5])
    _, grad = kinked_scalar(w)

    def f():
        return kinked_scalar(w)[0]

    def regions():
        return kink_regions("relu", w[:1])

    with pytest.raises(AssertionError, match="relative error"):
        check_gradient(f, w, grad, REL)
    diffs = check_gradient(f, w, grad, REL, regions=regions)
    assert list(diffs.one_sided) == [0] and diffs.skipped == 0
    wrong = grad.copy()
    wrong[0] += 1e-4
    with pytest.raises(AssertionError, match="relative error"):
        check_gradient(f, w, wrong, REL, regions=regions)


def test_a_point_on_the_kink_is_skipped_and_too_many_skips_fail():
    w = np.array([0.0, 1.0, 2.0, 3.0])

    def f():
        return float(np.sum(np.maximum(w, 0) * np.arange(1, 5)))

    def regions():
        return kink_regions("relu", w)

    grad = (w > 0) * np.arange(1, 5.0)
    diffs = check_gradient(f, w, grad, REL, regions=regions)  # 1 of 4 skipped: allowed
    assert diffs.skipped == 1 and list(diffs.indices) == [1, 2, 3]
    with pytest.raises(AssertionError, match="skipped at kinks"):
        check_gradient(f, w, grad, REL, regions=regions, max_skipped=0.2)


def test_a_check_that_skips_everything_fails():
    rng = np.random.default_rng(0)
    w = np.linspace(-1, 1, 10)

    def f():
        return float(np.sum(w**2))

    with pytest.raises(AssertionError, match="10 of 10 coordinates skipped"):
        check_gradient(f, w, 2 * w, REL, regions=lambda: rng.random(3))


# ---------------------------------------------------------------- kinks and regions

def test_kink_regions_number_the_pieces_and_the_kinks():
    z = np.array([-1.0, 0.0, 3.0, 6.0, 7.0])
    np.testing.assert_array_equal(kink_regions("relu6", z), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(kink_regions("relu", z), [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(kink_regions("tanh", z), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(kink_regions(None, z), [0, 0, 0, 0, 0])
    assert kinks("hard_sigmoid") == (-3.0, 3.0)
    assert all(list(points) == sorted(points) for points in KINKS.values())


def test_an_activation_without_a_kinks_entry_is_an_error():
    with pytest.raises(ValueError, match="KINKS"):
        kink_regions("mystery", np.zeros(3))


def test_every_activation_fastrnn_accepts_has_a_kinks_entry():
    for activation in ref.ACTIVATIONS:
        kinks(activation)
    for activation in [None, "linear", "relu", "tanh", "sigmoid", "softmax"]:
        fastrnn.layers.Dense(1, activation=activation)  # accepted by Dense
        kinks(activation)


# ---------------------------------------------------------------- whole models

def relu_model():
    fastrnn.set_random_seed(3)
    model = fastrnn.Sequential([
        fastrnn.Input((4, 2), dtype="float64"),
        fastrnn.layers.SimpleRNN(5, return_sequences=True, go_backwards=True, activation="relu"),
        fastrnn.layers.SimpleRNN(3, use_bias=False),
        fastrnn.layers.Dense(2, activation="relu"),
    ])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_sequential_preactivations_reproduce_the_models_output():
    model = relu_model()
    x = np.random.default_rng(4).standard_normal((6, 4, 2))
    pairs = sequential_preactivations(model, x)
    assert [a for a, _ in pairs] == ["relu", "tanh", "relu"]
    assert [z.shape for _, z in pairs] == [(6, 4, 5), (6, 4, 3), (6, 2)]
    np.testing.assert_allclose(np.maximum(pairs[-1][1], 0), model.predict(x, verbose=0),
                               rtol=1e-12, atol=1e-12)
    regions = sequential_regions(model, x)
    keys = regions()
    assert [k.shape for k in keys] == [(6, 4, 5), (6, 4, 3), (6, 2)]
    assert set(np.unique(keys[0])) <= {0, 1, 2} and np.all(keys[1] == 0)
    # the key follows the weights as they are when called: put one pre-activation
    # 1e-7 past relu's kink, then a bias step of 2e-7 moves it across
    rnn = model.layers[0]
    kernel, recurrent_kernel, bias = rnn.get_weights()
    bias[0] -= pairs[0][1][0, 0, 0] - 1e-7
    rnn.set_weights([kernel, recurrent_kernel, bias])
    keys = regions()
    assert keys[0][0, 0, 0] == 2
    bias[0] -= 2e-7
    rnn.set_weights([kernel, recurrent_kernel, bias])
    assert regions()[0][0, 0, 0] == 0
