"""ops.rnn_backward(input_grad=False): no dx, every other gradient unchanged."""
import numpy as np
import pytest

from fastrnn import ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_without_input_grad_the_other_gradients_are_bitwise_the_same(dtype, activation):
    rng = np.random.default_rng(0)
    B, T, D, H = 3, 5, 4, 6
    x = rng.standard_normal((B, T, D)).astype(dtype)
    k = rng.standard_normal((D, H)).astype(dtype) * 0.5
    rk = rng.standard_normal((H, H)).astype(dtype) * 0.5
    h0 = rng.standard_normal((B, H)).astype(dtype)
    h = ops.rnn_forward(x, k, rk, np.zeros(H, dtype), h0=h0, activation=activation)
    dh = rng.standard_normal((B, T, H)).astype(dtype)
    full = ops.rnn_backward(x, h, k, rk, dh, h0=h0, activation=activation)
    part = ops.rnn_backward(x, h, k, rk, dh, h0=h0, activation=activation, input_grad=False)
    assert full[0].shape == (B, T, D) and part[0] is None
    for a, b in zip(full[1:], part[1:]):
        np.testing.assert_array_equal(a, b)


def test_input_grad_must_be_a_bool():
    x = np.zeros((1, 2, 1))
    with pytest.raises(TypeError, match="input_grad"):
        ops.rnn_backward(x, np.zeros((1, 2, 2)), np.zeros((1, 2)), np.zeros((2, 2)),
                         np.zeros((1, 2, 2)), input_grad="no")
