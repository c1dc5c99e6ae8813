"""Weight regularizers (``kernel_regularizer=``, ``keras.regularizers``): Keras's
penalty in the loss the model trains on and reports, its gradient inside the compiled
step, ``model.losses``, configs, and bad input."""
import numpy as np
import pytest

import fastrnn
from fastrnn import layers, regularizers


def _pair(make, dtype="float64", seed=0):
    """(model with regularizers, the same model without), equal weights."""
    models = []
    for regularized in (True, False):
        inputs = fastrnn.Input((5, 3), dtype=dtype)
        models.append(fastrnn.Model(inputs, make(inputs, regularized)))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape) for w in models[0].get_weights()]
    for m in models:
        m.set_weights(weights)
        m.compile(optimizer="sgd", loss="mse")
    return models


def _rnn_dense(inputs, regularized):
    r = regularized
    h = layers.SimpleRNN(4, kernel_regularizer=regularizers.L1L2(0.01, 0.02) if r else None,
                         recurrent_regularizer=regularizers.l2(0.3) if r else None,
                         bias_regularizer=regularizers.l1(0.05) if r else None)(inputs)
    return layers.Dense(2, kernel_regularizer="l2" if r else None)(h)


def _bidirectional(inputs, regularized):
    rnn = layers.SimpleRNN(3, return_sequences=True,
                           kernel_regularizer=regularizers.L1(0.1) if regularized else None)
    h = layers.Bidirectional(rnn)(inputs)
    return layers.TimeDistributed(layers.Dense(
        1, bias_regularizer=regularizers.L2(0.5) if regularized else None))(h)


def _expected_penalty_and_gradient(model):
    """Keras's formulas, in NumPy, from the layers' regularizers and weights."""
    penalty, grads = 0.0, []
    for layer in model._weighted_layers():
        regs = regularizers.layer_regularizers(layer)
        for (name, _), w in zip(layer._specs, layer._weights):
            reg = regs.get(name)
            if reg is None:
                grads.append(np.zeros(w.size))
                continue
            penalty += reg.l1 * np.abs(w).sum() + reg.l2 * np.square(w).sum()
            grads.append((reg.l1 * np.where(w >= 0, 1.0, -1.0) + 2 * reg.l2 * w).ravel())
    return penalty, np.concatenate(grads)


@pytest.mark.parametrize("make", [_rnn_dense, _bidirectional])
def test_penalty_and_its_gradient_join_the_loss(make):
    with_reg, without = _pair(make)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5, 3))
    y = rng.standard_normal((6,) + tuple(with_reg.output_shape[1:]))
    loss = with_reg._loss_and_gradients([x], [y])
    plain = without._loss_and_gradients([x], [y])
    penalty, grad = _expected_penalty_and_gradient(with_reg)
    assert penalty > 0
    np.testing.assert_allclose(loss, plain + penalty, rtol=1e-12)
    np.testing.assert_allclose(with_reg.grads - without.grads, grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sum(with_reg.losses), penalty, rtol=1e-12)
    # evaluate reports the penalty too (Keras's compute_loss adds model.losses)
    np.testing.assert_allclose(with_reg.evaluate(x, y, verbose=0),
                               without.evaluate(x, y, verbose=0) + penalty, rtol=1e-12)


def test_sign_of_zero_is_plus_one_as_jax():
    model = fastrnn.Sequential([fastrnn.Input((2,), dtype="float64"),
                                layers.Dense(1, bias_regularizer=regularizers.L1(0.5))])
    model.set_weights([np.zeros((2, 1)), np.zeros(1)])
    model.compile(optimizer="sgd", loss="mse")
    model._loss_and_gradients([np.zeros((3, 2))], [np.zeros((3, 1))])
    np.testing.assert_array_equal(model.grads, [0.0, 0.0, 0.5])


def test_one_sgd_step_is_keras():
    # Keras 3.15.1 (JAX) printed these for the same model, data and step
    model = fastrnn.Sequential([fastrnn.Input((2,)), layers.Dense(
        1, kernel_initializer="ones", bias_initializer="ones",
        kernel_regularizer=regularizers.L1L2(l1=0.1, l2=0.01), bias_regularizer="l2")])
    model.compile(optimizer=fastrnn.optimizers.SGD(0.1), loss="mse", metrics=["mse"])
    x, y = np.ones((4, 2), "float32"), np.zeros(4)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), [9.230000495910645, 9.0],
                               rtol=1e-6)
    np.testing.assert_allclose(model.losses, [0.2199999988079071, 0.009999999776482582],
                               rtol=1e-6)
    np.testing.assert_allclose(model.train_on_batch(x, y), [9.230000495910645, 9.0], rtol=1e-6)
    np.testing.assert_allclose(model.get_weights()[0], [[0.3880000114440918]] * 2, rtol=1e-6)
    np.testing.assert_allclose(model.get_weights()[1], [0.39800000190734863], rtol=1e-6)
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y)).history
    np.testing.assert_allclose(history["loss"], [1.4604709148406982, 0.22918857634067535],
                               rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"], [0.22918857634067535, 0.033592935651540756],
                               rtol=1e-5)
    np.testing.assert_allclose(history["mse"], [1.378275990486145, 0.20003433525562286],
                               rtol=1e-5)


def test_whole_epoch_calls_and_batch_calls_agree():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 5, 3))
    y = rng.standard_normal((30, 2))
    a, b = _pair(_rnn_dense, seed=3)
    for m in (a, b):
        m.compile(optimizer=fastrnn.optimizers.Adam(0.01), loss="mse")
    history = a.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0).history
    # b: same weights but no regularizers -- must differ; a twin with regularizers by batches
    twin = _pair(_rnn_dense, seed=3)[0]
    twin.compile(optimizer=fastrnn.optimizers.Adam(0.01), loss="mse")
    losses = [twin.train_on_batch(x[k:k + 10], y[k:k + 10]) for k in (0, 10, 20)]
    np.testing.assert_allclose(history["loss"][0], np.mean(losses), rtol=1e-12)
    for u, v in zip(a.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    b.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(a.get_weights()[1], b.get_weights()[1])


def test_embedding_regularizer():
    model = fastrnn.Sequential([fastrnn.Input((4,)),
                                layers.Embedding(7, 2, embeddings_regularizer="l2"),
                                layers.SimpleRNN(2), layers.Dense(1)])
    table = model.layers[0].get_weights()[0]
    np.testing.assert_allclose(model.losses, [0.01 * np.square(table).sum()], rtol=1e-6)


def test_configs_carry_the_regularizers():
    layer = layers.SimpleRNN(3, kernel_regularizer=regularizers.L1L2(0.1, 0.2),
                             recurrent_regularizer="l1")
    cfg = layer.get_config()
    assert cfg["kernel_regularizer"] == {"module": "keras.regularizers", "class_name": "L1L2",
                                         "config": {"l1": 0.1, "l2": 0.2},
                                         "registered_name": None}
    assert cfg["bias_regularizer"] is None
    again = layers.SimpleRNN.from_config(cfg)
    assert again.kernel_regularizer.get_config() == {"l1": 0.1, "l2": 0.2}
    assert type(again.recurrent_regularizer) is regularizers.L1
    assert regularizers.get(regularizers.serialize(regularizers.L2(0.3))).l2 == 0.3
    assert regularizers.L2(0.5)(np.ones((2, 2))) == 2.0


def test_bad_regularizers_are_clear_errors():
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="l1_l2"):
        regularizers.get("l1_l2")          # Keras does not interpret it either
    with pytest.raises(NotImplementedError, match="function"):
        layers.Dense(2, kernel_regularizer=lambda w: 0.0)
    with pytest.raises(NotImplementedError, match="activity_regularizer"):
        layers.SimpleRNN(2, activity_regularizer="l2")
    with pytest.raises(NotImplementedError, match="constraint"):
        layers.Dense(2, kernel_constraint=object())
    layers.Dense(2, kernel_constraint=None, activity_regularizer=None)
    with pytest.raises(TypeError, match="recurrent_regularizer"):
        layers.Dense(2, recurrent_regularizer="l2")
    with pytest.raises(NotImplementedError, match="Orthogonal"):
        regularizers.get({"class_name": "OrthogonalRegularizer", "config": {}})


def test_engine_refuses_bad_segments():
    model = _pair(_rnn_dense)[0]
    engine = model._trainer()
    n = model.params.size
    with pytest.raises(ValueError, match="inside"):
        engine.set_regularizers([n - 1], [2], [0.1], [0.0])
    with pytest.raises(ValueError, match="overlap"):
        engine.set_regularizers([0, 3], [4, 2], [0.1, 0.1], [0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        engine.set_regularizers([0], [2], [np.nan], [0.0])
    with pytest.raises(ValueError, match="same length"):
        engine.set_regularizers([0], [2, 3], [0.1], [0.0])
    engine.set_regularizers([], [], [], [])
    assert engine.penalty() == 0.0
