"""GlobalMaxPooling1D / GlobalAveragePooling1D: the layers, their engine node against the
NumPy reference (ties included), and clear errors.  (Random graphs with pooling nodes:
tests/test_engine_graph.py; Keras's numbers: tests/programs/p46 and its recorded output.)"""
import numpy as np
import pytest

import fastrnn
from fastrnn import layers
from fastrnn.reference import graph as ref

from model_graphs import graph_of


def test_shapes_names_and_aliases():
    x = fastrnn.Input((6, 3))
    assert layers.GlobalMaxPooling1D()(x).shape == (None, 3)
    assert layers.GlobalAveragePooling1D()(x).shape == (None, 3)
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    fastrnn.backend.clear_session()
    assert layers.GlobalMaxPooling1D().name == "global_max_pooling1d"
    assert layers.GlobalAveragePooling1D().name == "global_average_pooling1d"
    cfg = layers.GlobalAveragePooling1D(name="g").get_config()
    assert cfg["data_format"] == "channels_last" and cfg["keepdims"] is False


def test_values_on_arrays():
    x = np.arange(24, dtype="float64").reshape(2, 4, 3) % 7 - 3
    np.testing.assert_array_equal(layers.GlobalMaxPooling1D()(x), x.max(axis=1))
    np.testing.assert_allclose(layers.GlobalAveragePooling1D()(x), x.mean(axis=1))


@pytest.mark.parametrize("pool", [layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_model_gradients_match_the_reference(pool, dtype):
    inputs = fastrnn.Input((5, 2), dtype=dtype)
    h = layers.SimpleRNN(3, return_sequences=True)(inputs)
    model = fastrnn.Model(inputs, layers.Dense(2)(pool()(h)))
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 5, 2)), rng.normal(size=(6, 2))
    loss = model._loss_and_gradients([x.astype(dtype)], [y.astype(dtype)])
    graph, weights = graph_of(model)
    ref_loss, _, ref_grads = ref.loss_and_gradients(graph, weights, [x], [y], ["mse"], [1.0])
    tight = dtype == "float64"
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12 if tight else 1e-5)
    np.testing.assert_allclose(model.grads, np.concatenate([g.ravel() for g in ref_grads]),
                               rtol=1e-10 if tight else 1e-3, atol=1e-12 if tight else 1e-5)


def test_ties_share_the_gradient_as_jax():
    # Embedding rows 1 and 2 hold the same value in column 0: sequence [1, 2] ties there,
    # and each row gets half the gradient (jnp.max's rule); column 1 has one maximum.
    model = fastrnn.Sequential([fastrnn.Input((2,), dtype="float64"),
                                layers.Embedding(3, 2), layers.GlobalMaxPooling1D()])
    model.set_weights([np.array([[0.0, 0.0], [0.5, 0.1], [0.5, 0.3]])])
    model.compile(optimizer="sgd", loss="mse")
    model._loss_and_gradients([np.array([[[1.0], [2.0]]])], [np.zeros((1, 2))])  # engine form
    d = 2 * np.array([0.5, 0.3]) / 2          # d(mse)/d(out) for out = (0.5, 0.3)
    np.testing.assert_allclose(model.grads.reshape(3, 2),
                               [[0, 0], [d[0] / 2, 0], [d[0] / 2, d[1]]], rtol=1e-12)
    graph, weights = graph_of(model)
    _, _, ref_grads = ref.loss_and_gradients(graph, weights, [np.array([[1, 2]])],
                                             [np.zeros((1, 2))], ["mse"], [1.0])
    np.testing.assert_allclose(model.grads, ref_grads[0].ravel(), rtol=1e-12)


def test_clear_errors():
    with pytest.raises(ValueError, match="rank 3"):
        layers.GlobalMaxPooling1D()(fastrnn.Input((4,)))
    with pytest.raises(NotImplementedError, match="keepdims"):
        layers.GlobalAveragePooling1D(keepdims=True)
    with pytest.raises(NotImplementedError, match="channels_last"):
        layers.GlobalMaxPooling1D(data_format="channels_first")


@pytest.mark.parametrize("pool", [layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D])
def test_masked_steps_as_keras(pool):
    # the average over the kept steps only, the maximum over all (Keras's rules): engine
    # against the reference, whose masks flow as Keras's (Keras's own numbers: p58, p59)
    inputs = fastrnn.Input((6, 2), dtype="float64")
    h = layers.Dense(3, activation="tanh")(layers.Masking(0.0)(inputs))
    h = layers.SimpleRNN(3, return_sequences=True)(h)
    model = fastrnn.Model(inputs, layers.Dense(1)(pool()(h)))
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 6, 2))
    x[0, :2] = 0.0
    x[2, 3:] = 0.0
    x[4, 1] = 0.0
    y = rng.normal(size=(5, 1))
    loss = model._loss_and_gradients([x], [y])
    graph, weights = graph_of(model)
    ref_loss, _, ref_grads = ref.loss_and_gradients(graph, weights, [x], [y], ["mse"], [1.0])
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(model.grads, np.concatenate([g.ravel() for g in ref_grads]),
                               rtol=1e-10, atol=1e-13)
    # the pooled values themselves, from the sequence the SimpleRNN returns
    seq = fastrnn.Model(inputs, h).predict(x, verbose=0)
    pooled = fastrnn.Model(inputs, model.layers[-2].output).predict(x, verbose=0)
    keep = np.any(x != 0.0, axis=-1)[..., None]
    expected = (seq.max(axis=1) if pool is layers.GlobalMaxPooling1D
                else (seq * keep).sum(axis=1) / keep.sum(axis=1))
    np.testing.assert_allclose(pooled, expected, rtol=1e-12)
