"""Layers and initializers: forward against the reference, gradients, weights, errors."""
import numpy as np
import pytest

import fastrnn
from fastrnn import initializers
from fastrnn import reference as ref
from fastrnn.layers import Dense, Input, SimpleRNN

from finite_diff import check_gradient, kink_regions
from tolerances import assert_close, tol

REL = tol("finite_difference", np.float64)["rel"]


def rnn_layer(units, D, dtype=np.float64, **kwargs):
    layer = SimpleRNN(units, dtype=dtype, seed=1, **kwargs)
    layer.build((None, None, D))
    layer.bias[...] = np.linspace(-0.3, 0.3, units)  # non-zero, so a wrong bias path shows
    return layer


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_forward_matches_reference(return_sequences, go_backwards, activation):
    x = np.random.default_rng(0).standard_normal((4, 5, 3))
    layer = rnn_layer(6, 3, return_sequences=return_sequences, go_backwards=go_backwards,
                      activation=activation)
    xs = x[:, ::-1] if go_backwards else x
    h = ref.rnn_forward(xs, layer.kernel, layer.recurrent_kernel, layer.bias, None, activation)
    expected = h if return_sequences else h[:, -1]
    assert_close(layer(x), expected, "forward", np.float64)


def test_simple_rnn_without_bias_has_two_weights():
    layer = SimpleRNN(4, use_bias=False, dtype="float64")
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    y = layer(x)
    assert layer.weight_names == ["kernel", "recurrent_kernel"]
    assert layer.count_params() == 2 * 4 + 4 * 4
    h = ref.rnn_forward(x, layer.kernel, layer.recurrent_kernel, np.zeros(4))
    assert_close(y, h[:, -1], "forward", np.float64)


def test_return_state_gives_output_and_last_state():
    layer = SimpleRNN(3, return_sequences=True, return_state=True, dtype="float64")
    out, state = layer(np.ones((2, 4, 1)))
    assert out.shape == (2, 4, 3) and state.shape == (2, 3)
    np.testing.assert_array_equal(out[:, -1], state)


def _check_layer_gradients(layer, x, dy, regions=None):
    """The engine's weight gradients of ``sum(layer(x) * dy)`` against central differences.

    The layer runs as a one-layer model on the engine with mse against
    targets ``y = out - dy * n / 2``, where dLoss/dout is exactly ``dy``.
    """
    model = fastrnn.Sequential([Input(x.shape[1:], dtype="float64"), layer])
    model.compile(optimizer="sgd", loss="mse")
    out = model.predict(x, verbose=0)
    y = out - dy * out.size / 2

    def loss():
        return model.evaluate(x, y, verbose=0)

    model._loss_and_gradients(x, y)
    grads = model.grads.copy()
    for (name, _, off), w in zip(model.param_layout, layer.weights):
        check_gradient(loss, w, grads[off:off + w.size], REL, name=name, regions=regions)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softsign", "elu"])
def test_simple_rnn_gradients_match_finite_differences(return_sequences, go_backwards, activation):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2))
    layer = SimpleRNN(5, return_sequences=return_sequences, go_backwards=go_backwards,
                      activation=activation, seed=1, bias_initializer="ones")
    out_shape = (3, 4, 5) if return_sequences else (3, 5)
    _check_layer_gradients(layer, x, rng.standard_normal(out_shape))


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", "softmax"])
def test_dense_on_3d_input_forward_and_gradients(activation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    layer = Dense(3, activation=activation, dtype="float64", bias_initializer="ones")
    y = layer(x)
    assert y.shape == (2, 3, 3)
    z = ref.dense_forward(x, layer.kernel, layer.bias)
    if activation == "relu":
        z = np.maximum(z, 0)
    elif activation == "tanh":
        z = np.tanh(z)
    elif activation == "sigmoid":
        z = 1 / (1 + np.exp(-z))
    elif activation == "softmax":
        z = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    assert_close(y, z, "forward", np.float64)
    layer = Dense(3, activation=activation, bias_initializer="ones")

    def regions():  # relu's kink, read from the live weights
        return kink_regions(activation, ref.dense_forward(x, layer.kernel, layer.bias))

    _check_layer_gradients(layer, x, rng.standard_normal(y.shape), regions=regions)


def test_weight_names_shapes_and_order_follow_keras():
    rnn = SimpleRNN(20)
    rnn.build((None, 3, 1))
    dense = Dense(1)
    dense.build((None, 20))
    assert [(n, w.shape) for n, w in zip(rnn.weight_names, rnn.weights)] == [
        ("kernel", (1, 20)), ("recurrent_kernel", (20, 20)), ("bias", (20,))]
    assert [(n, w.shape) for n, w in zip(dense.weight_names, dense.weights)] == [
        ("kernel", (20, 1)), ("bias", (1,))]
    assert rnn.count_params() == 440 and dense.count_params() == 21
    assert rnn.kernel.dtype == np.float32


def test_default_initializers():
    rnn = SimpleRNN(30, seed=0)
    rnn.build((None, 3, 10))
    limit = np.sqrt(6 / (10 + 30))
    assert np.all(np.abs(rnn.kernel) <= limit) and np.abs(rnn.kernel).max() > 0.8 * limit
    np.testing.assert_allclose(rnn.recurrent_kernel @ rnn.recurrent_kernel.T, np.eye(30),
                               atol=1e-5)
    np.testing.assert_array_equal(rnn.bias, 0)


def test_orthogonal_is_semi_orthogonal_for_wide_and_tall():
    for shape in [(3, 7), (7, 3)]:
        q = initializers.Orthogonal(gain=2.0, seed=0)(shape, "float64")
        small = min(shape)
        gram = q.T @ q if shape[0] > shape[1] else q @ q.T
        np.testing.assert_allclose(gram, 4 * np.eye(small), atol=1e-12)


def test_layer_seed_and_global_seed_are_reproducible():
    def weights(**kwargs):
        layer = SimpleRNN(5, **kwargs)
        layer.build((None, 2, 3))
        return layer.get_weights()

    for a, b in zip(weights(seed=7), weights(seed=7)):
        np.testing.assert_array_equal(a, b)
    fastrnn.set_random_seed(3)
    first = weights()
    fastrnn.set_random_seed(3)
    second = weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], weights()[0])


def test_initializer_lookup():
    assert isinstance(initializers.get("glorot_uniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    with pytest.raises(ValueError, match="kernel_initializer"):
        SimpleRNN(3, kernel_initializer="nope")
    with pytest.raises(TypeError, match="seed"):
        fastrnn.set_random_seed(1.5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(units=0), ValueError, "units"),
    (dict(units=2.5), TypeError, "units"),
    (dict(units=3, activation="swish"), ValueError, "activation"),
    (dict(units=3, dtype="int32"), TypeError, "dtype"),
    (dict(units=3, input_shape=(3, 0)), ValueError, "input_shape"),
])
def test_simple_rnn_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SimpleRNN(**kwargs)


def test_dense_constructor_errors():
    with pytest.raises(ValueError, match="activation"):
        Dense(2, activation="gelu")
    with pytest.raises(ValueError, match="units"):
        Dense(-1)


def test_layer_call_checks_shapes():
    layer = SimpleRNN(3)
    layer.build((None, 4, 2))
    with pytest.raises(ValueError, match="expects input of shape"):
        layer(np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match="rank 3"):
        SimpleRNN(3)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        layer(np.full((1, 4, 2), np.nan))
    with pytest.raises(ValueError, match="empty"):
        layer(np.ones((0, 4, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        layer(np.full((1, 4, 2), "a"))


def test_set_weights_checks_before_writing():
    layer = Dense(2, dtype="float64")
    layer.build((None, 3))
    before = layer.get_weights()
    with pytest.raises(ValueError, match="bias"):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
    with pytest.raises(ValueError, match="NaN"):
        layer.set_weights([np.zeros((3, 2)), np.array([0.0, np.nan])])
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_input_validates_shape():
    assert Input((3, 1)).shape == (None, 3, 1)
    assert Input((None, 1)).shape == (None, None, 1)
    with pytest.raises(ValueError, match="shape"):
        Input((3, -1))


def test_automatic_names_and_clear_session():
    fastrnn.clear_session()
    assert [Dense(1).name, Dense(1).name, SimpleRNN(1).name] == ["dense", "dense_1", "simple_rnn"]
    assert Dense(1, name="out").name == "out"
    fastrnn.clear_session()
    assert Dense(1).name == "dense"
