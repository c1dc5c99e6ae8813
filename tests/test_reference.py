"""The reference against central finite differences (float64) and hand math."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn import reference as ref

from finite_diff import check_gradient, kink_regions
from preactivations import rnn_preactivations
from problems import make_rnn_problem
from tolerances import tol

REL = tol("finite_difference", np.float64)["rel"]


shapes = st.tuples(*(st.integers(1, 16) for _ in range(4)))


@given(shape=shapes, seed=st.integers(0, 2**31), activation=st.sampled_from(ref.ACTIVATIONS),
       with_h0=st.booleans())
def test_rnn_backward_matches_finite_differences(shape, seed, activation, with_h0):
    B, T, D, H = shape
    p = make_rnn_problem(B, T, D, H, seed, with_h0)
    x, kernel, recurrent_kernel, bias, h0, dh = (p[k] for k in ("x", "kernel", "recurrent_kernel", "bias", "h0", "dh"))

    def loss():  # a scalar whose dLoss/dh is exactly dh
        h = ref.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation)
        return float(np.sum(h * dh))

    def regions():  # relu's kink: differences must not straddle z = 0
        return kink_regions(activation, rnn_preactivations(x, kernel, recurrent_kernel, bias,
                                                           h0, activation))

    h = ref.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation)
    dx, dk, drk, db, dh0 = ref.rnn_backward(x, h, kernel, recurrent_kernel, dh, h0, activation)
    assert dx.shape == x.shape and dk.shape == kernel.shape
    assert drk.shape == recurrent_kernel.shape and db.shape == bias.shape
    assert dh0.shape == (B, H)
    for name, array, grad in [("x", x, dx), ("kernel", kernel, dk),
                              ("recurrent_kernel", recurrent_kernel, drk),
                              ("bias", bias, db)] + ([("h0", h0, dh0)] if with_h0 else []):
        check_gradient(loss, array, grad, REL, name=name, regions=regions)


def test_rnn_forward_by_hand():
    # One unit, two steps: h1 = tanh(x1 w + b), h2 = tanh(x2 w + h1 u + b).
    x = np.array([[[0.5], [-1.0]]])
    w, u, b = 0.7, -0.4, 0.1
    h = ref.rnn_forward(x, np.array([[w]]), np.array([[u]]), np.array([b]))
    h1 = np.tanh(0.5 * w + b)
    h2 = np.tanh(-1.0 * w + h1 * u + b)
    np.testing.assert_allclose(h[0, :, 0], [h1, h2], rtol=1e-15)
    h_relu = ref.rnn_forward(x, np.array([[w]]), np.array([[u]]), np.array([b]),
                             h0=np.array([[2.0]]), activation="relu")
    r1 = max(0.5 * w + 2.0 * u + b, 0)
    r2 = max(-1.0 * w + r1 * u + b, 0)
    np.testing.assert_allclose(h_relu[0, :, 0], [r1, r2], rtol=1e-15)


def test_unknown_activation_is_rejected():
    p = make_rnn_problem(2, 3, 2, 4, 0)
    with pytest.raises(ValueError, match="activation"):
        ref.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], activation="sigmoid")


@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=3), D=st.integers(1, 8),
       U=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_dense_backward_matches_finite_differences(lead, D, U, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, D))
    kernel = rng.standard_normal((D, U))
    bias = rng.standard_normal(U)
    dy = rng.standard_normal((*lead, U))

    def loss():
        return float(np.sum(ref.dense_forward(x, kernel, bias) * dy))

    dx, dk, db = ref.dense_backward(x, kernel, dy)
    assert ref.dense_forward(x, kernel, bias).shape == (*lead, U)
    for array, grad in [(x, dx), (kernel, dk), (bias, db)]:
        check_gradient(loss, array, grad, REL)


@pytest.mark.parametrize("loss_fn", [ref.mse, ref.mae])
@pytest.mark.parametrize("target_shape", [(7, 1), (7,)])
def test_loss_gradients(loss_fn, target_shape):
    rng = np.random.default_rng(1)
    y_pred = rng.standard_normal((7, 1))
    y_true = rng.standard_normal(target_shape)
    value, grad = loss_fn(y_true, y_pred)
    assert grad.shape == y_pred.shape
    kink = "abs" if loss_fn is ref.mae else "linear"  # mae's kink: y_pred == y_true
    check_gradient(lambda: loss_fn(y_true, y_pred)[0], y_pred, grad, REL,
                   regions=lambda: kink_regions(kink, y_pred - y_true.reshape(y_pred.shape)))


def test_loss_values_are_means():
    y_pred = np.array([[1.0], [2.0], [4.0]])
    y_true = np.array([0.0, 2.0, 2.0])
    assert ref.mse(y_true, y_pred)[0] == pytest.approx((1 + 0 + 4) / 3)
    assert ref.mae(y_true, y_pred)[0] == pytest.approx((1 + 0 + 2) / 3)
    with pytest.raises(ValueError, match="y_true"):
        ref.mse(np.zeros(4), y_pred)


def test_adam_first_steps_by_hand():
    # Keras: lr_t = lr sqrt(1-b2^t)/(1-b1^t); p -= lr_t m/(sqrt(v)+eps)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    param = np.array([1.0, -2.0])
    m = np.zeros(2)
    v = np.zeros(2)
    g1 = np.array([0.5, -0.25])
    ref.adam_update(param, g1, m, v, 1, lr, b1, b2, eps)
    m1, v1 = 0.1 * g1, 0.001 * g1**2
    lr1 = lr * np.sqrt(1 - b2) / (1 - b1)
    p1 = np.array([1.0, -2.0]) - lr1 * m1 / (np.sqrt(v1) + eps)
    np.testing.assert_allclose(param, p1, rtol=1e-14)
    # first step moves each weight by ~lr against the sign of its gradient
    np.testing.assert_allclose(param, [1.0 - 0.01, -2.0 + 0.01], rtol=1e-5)
    g2 = np.array([-1.0, 3.0])
    ref.adam_update(param, g2, m, v, 2, lr, b1, b2, eps)
    m2, v2 = 0.9 * m1 + 0.1 * g2, 0.999 * v1 + 0.001 * g2**2
    lr2 = lr * np.sqrt(1 - b2**2) / (1 - b1**2)
    np.testing.assert_allclose(m, m2, rtol=1e-14)
    np.testing.assert_allclose(v, v2, rtol=1e-14)
    np.testing.assert_allclose(param, p1 - lr2 * m2 / (np.sqrt(v2) + eps), rtol=1e-14)
    with pytest.raises(ValueError, match="step"):
        ref.adam_update(param, g2, m, v, 0)
