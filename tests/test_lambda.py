"""Lambda layers: functions recognised as a * reshape(x) + b and lowered to the engine's
reshape and scale nodes; anything else refused when the layer is called.  (The scale
node against the reference: tests/test_engine_graph.py; Keras's numbers: p55.)"""
import numpy as np
import pytest

import fastrnn
from fastrnn import layers


@pytest.mark.parametrize("function, expected, shape", [
    (lambda x: x * 100.0, lambda x: x * 100.0, (3, 4, 1)),
    (lambda x: x / 4 - 1, lambda x: x / 4 - 1, (3, 4, 2)),
    (lambda x: -x, lambda x: -x, (3, 4)),
    (lambda x: x, lambda x: x, (3, 4, 1)),
    (lambda x: fastrnn.ops.expand_dims(x, axis=-1), lambda x: x[..., None], (3, 4)),
    (lambda x: fastrnn.ops.squeeze(x, axis=-1) * 2, lambda x: x[..., 0] * 2, (3, 4, 1)),
])
def test_recognised_functions_compute_what_they_say(function, expected, shape):
    x = np.random.default_rng(0).normal(size=shape)
    out = layers.Lambda(function)(x)
    np.testing.assert_allclose(out, expected(x).astype("float32"), rtol=1e-6)


def test_lambda_in_a_trained_model_gets_its_gradient():
    def build(scaled):
        inputs = fastrnn.Input((5,), dtype="float64")
        h = layers.Lambda(lambda x: fastrnn.ops.expand_dims(x, -1))(inputs)
        h = layers.SimpleRNN(3)(h)
        out = layers.Dense(1)(h)
        if scaled:
            out = layers.Lambda(lambda x: 4.0 * x + 2.0)(out)
        return fastrnn.Model(inputs, out)
    scaled, plain = build(True), build(False)
    plain.set_weights(scaled.get_weights())
    for m in (scaled, plain):
        m.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 5)), rng.normal(size=(6, 1))
    # loss(4 p + 2, y) = 16 * loss(p, (y - 2) / 4): gradients 16 times those of the plain model
    loss = scaled._loss_and_gradients([x], [y])
    plain_loss = plain._loss_and_gradients([x[..., None][..., 0]], [(y - 2) / 4])
    np.testing.assert_allclose(loss, 16 * plain_loss, rtol=1e-12)
    np.testing.assert_allclose(scaled.grads, 16 * plain.grads, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("function, why", [
    (lambda x: x ** 2, "scale and shift"),
    (lambda x: np.tanh(x), "scale and shift"),
    (lambda x: x[:, ::-1], "in order"),
    (lambda x: x.sum(axis=1), "number of values"),
    (lambda x: x + np.arange(x.shape[-1]), "different values"),
    (lambda x: x.no_such_method(), "cannot run"),
])
def test_other_functions_are_refused_by_name(function, why):
    with pytest.raises(NotImplementedError, match=why):
        layers.Lambda(function)(fastrnn.Input((4, 2)))


def test_unknown_length_and_bad_arguments():
    with pytest.raises(NotImplementedError, match="unknown size"):
        layers.Lambda(lambda x: x * 2)(fastrnn.Input((None, 2)))
    with pytest.raises(TypeError, match="callable"):
        layers.Lambda(3.0)
    assert layers.Lambda(lambda x: x, name="l").get_config()["name"] == "l"
