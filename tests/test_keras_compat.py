"""Keras names that programs use around the model: ``keras.backend``, ``layer.get_config``
/ ``from_config``, and the one-batch methods ``train_on_batch`` / ``test_on_batch`` /
``predict_on_batch`` / ``reset_metrics``."""
import json
import os

import numpy as np
import pytest

import fastrnn

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "layer_configs.json")

# -- keras.backend -----------------------------------------------------------------------


def test_backend_names():
    assert fastrnn.backend.floatx() == "float32"
    assert fastrnn.backend.epsilon() == 1e-7
    assert fastrnn.backend.backend() == "fastrnn"
    assert fastrnn.backend.is_keras_tensor(fastrnn.Input((3, 1)))
    assert not fastrnn.backend.is_keras_tensor(np.zeros((1, 3, 1)))


@pytest.mark.parametrize("clear", [fastrnn.backend.clear_session, fastrnn.utils.clear_session])
def test_clear_session_restarts_the_names(clear):
    fastrnn.layers.Dense(1)
    clear(free_memory=True)
    assert fastrnn.layers.Dense(1).name == "dense"
    assert fastrnn.layers.Dense(1).name == "dense_1"
    clear()
    assert fastrnn.layers.SimpleRNN(2).name == "simple_rnn"


# -- get_config / from_config --------------------------------------------------------------

with open(FIXTURE) as _f:
    _CASES = json.load(_f)["cases"]

#: entries later Keras releases add at their defaults, which fastrnn's configs leave out
#: (the same configs go into .keras files that Keras 3.3 must read)
_NEWER_KERAS_ONLY = {"quantization_config", "input_axes", "output_axes"}


def _without_newer(value):
    if isinstance(value, dict):
        return {k: _without_newer(v) for k, v in value.items() if k not in _NEWER_KERAS_ONLY}
    return value


@pytest.mark.parametrize("case", _CASES, ids=[c["kwargs"]["name"] for c in _CASES])
def test_get_config_is_keras(case):
    layer = getattr(fastrnn.layers, case["class_name"])(**case["kwargs"])
    assert _without_newer(layer.get_config()) == _without_newer(case["config"])


@pytest.mark.parametrize("case", _CASES, ids=[c["kwargs"]["name"] for c in _CASES])
def test_from_config_of_keras_config_rebuilds_the_layer(case):
    cls = getattr(fastrnn.layers, case["class_name"])
    layer = cls.from_config(case["config"])
    assert type(layer) is cls
    assert _without_newer(layer.get_config()) == _without_newer(case["config"])


@pytest.mark.parametrize("make", [
    lambda L: L.Embedding(12, 3, mask_zero=True, name="e"),
    lambda L: L.TimeDistributed(L.Dense(2, activation="relu"), name="td"),
    lambda L: L.Bidirectional(L.SimpleRNN(4), merge_mode="sum", name="bi"),
    lambda L: L.Reshape((2, 3), name="rs"),
    lambda L: L.Flatten(name="f"),
])
def test_config_round_trip_of_other_layers(make):
    layer = make(fastrnn.layers)
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert again.get_config()["dtype"]["config"]["name"] == "float32"


def test_config_of_a_float64_layer_and_a_bad_config():
    layer = fastrnn.layers.Dense(3, dtype="float64")
    assert layer.get_config()["dtype"]["config"]["name"] == "float64"
    cfg = fastrnn.layers.SimpleRNN(3).get_config()
    cfg["stateful"] = "maybe"
    with pytest.raises(ValueError, match="stateful"):
        fastrnn.layers.SimpleRNN.from_config(cfg)
    with pytest.raises(TypeError, match="config"):
        fastrnn.layers.Dense.from_config([("units", 3)])


# -- train_on_batch / test_on_batch / predict_on_batch ----------------------------------------

def _ones_model(metrics=("mae",)):
    model = fastrnn.Sequential([fastrnn.Input((2,)),
                                fastrnn.layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer=fastrnn.optimizers.SGD(0.0), loss="mse", metrics=list(metrics))
    return model


def test_each_batch_call_reports_its_batch_alone():
    # Keras 3.15.1 (JAX) printed these for the same calls: the metrics restart every call
    model = _ones_model()
    a, b = np.ones((4, 2), "float32"), 2 * np.ones((2, 2), "float32")
    assert model.train_on_batch(a, np.zeros(4)) == [4.0, 2.0]
    assert model.train_on_batch(b, np.zeros(2)) == [16.0, 4.0]
    assert model.test_on_batch(b, np.zeros(2)) == [16.0, 4.0]
    assert model.test_on_batch(a, np.zeros(4)) == [4.0, 2.0]
    assert model.train_on_batch(b, np.zeros(2), return_dict=True) == {"loss": 16.0, "mae": 4.0}
    model.reset_metrics()
    assert model.evaluate(a, np.zeros(4), verbose=0) == [4.0, 2.0]
    assert model.train_on_batch(b, np.zeros(2)) == [16.0, 4.0]
    out = model.predict_on_batch(a)
    assert isinstance(out, np.ndarray) and out.shape == (4, 1)
    np.testing.assert_allclose(out, 2.0)


def test_batch_calls_without_metrics_and_with_weights():
    model = _ones_model(metrics=())
    x = np.ones((4, 2), "float32")
    loss = model.train_on_batch(x, np.zeros(4))
    assert isinstance(loss, float) and loss == 4.0
    # "sum over batch size": (4*1 + 0 + 0 + 0) / 4
    assert model.test_on_batch(x, np.zeros(4), sample_weight=np.array([1, 0, 0, 0.])) == 1.0


def test_train_on_batch_is_one_fit_step():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 2)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    models = []
    for _ in range(2):
        fastrnn.set_random_seed(3)
        m = fastrnn.Sequential([fastrnn.Input((5, 2)), fastrnn.layers.SimpleRNN(4),
                                fastrnn.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        models.append(m)
    losses = [models[0].train_on_batch(x, y) for _ in range(3)]
    history = models[1].fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(losses, history.history["loss"], rtol=1e-6)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_train_on_batch_needs_compile_and_checks_input():
    model = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                                fastrnn.layers.Dense(1)])
    with pytest.raises(Exception, match="compile"):
        model.train_on_batch(np.zeros((2, 3, 1)), np.zeros(2))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError):
        model.train_on_batch(np.zeros((2, 4, 2)), np.zeros(2))


# -- trainable = False would be ignored silently: a clear error ----------------------------

def test_freezing_is_refused_not_ignored():
    model = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                                fastrnn.layers.Dense(1)])
    assert model.trainable and model.layers[0].trainable
    model.layers[0].trainable = True
    model.trainable = True
    with pytest.raises(NotImplementedError, match="trainable"):
        model.layers[0].trainable = False
    with pytest.raises(NotImplementedError, match="trainable"):
        model.trainable = False
    assert model.layers[0].trainable


# -- keras.models.clone_model ----------------------------------------------------------------

def test_clone_sequential_has_new_weights_and_the_same_names():
    model = fastrnn.Sequential([fastrnn.Input((4, 2)), fastrnn.layers.SimpleRNN(3, name="r"),
                                fastrnn.layers.Dense(1, activation="relu", name="d")],
                               name="seq")
    clone = fastrnn.models.clone_model(model)
    assert type(clone) is fastrnn.Sequential and clone.name == "seq" and clone.built
    assert [layer.name for layer in clone.layers] == ["r", "d"]
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert clone.layers[1].get_config() == model.layers[1].get_config()
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])   # re-initialised
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4, 2))
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    clone.compile(optimizer="sgd", loss="mse")
    clone.fit(x, np.ones(5), epochs=1, verbose=0)                           # independent
    assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])
    unbuilt = fastrnn.models.clone_model(fastrnn.Sequential([fastrnn.layers.Dense(2)]))
    assert not unbuilt.built


def test_clone_functional_graph():
    L = fastrnn.layers
    seq, h0 = fastrnn.Input((5, 2), name="seq"), fastrnn.Input((3,), name="h0")
    a = L.SimpleRNN(3, return_sequences=True)(seq, initial_state=h0)
    b = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="sum")(a)
    out = L.TimeDistributed(L.Dense(1))(L.Add()([a, b]))
    model = fastrnn.Model([seq, h0], out)
    clone = fastrnn.models.clone_model(model)
    assert [type(x).__name__ for x in clone.layers] == [type(x).__name__ for x in model.layers]
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(1)
    x = [rng.normal(size=(4, 5, 2)), rng.normal(size=(4, 3))]
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_clone_function_and_refusals():
    model = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                                fastrnn.layers.Dense(1)])
    seen = []
    clone = fastrnn.models.clone_model(
        model, clone_function=lambda layer: seen.append(layer.name) or
        type(layer).from_config(layer.get_config()))
    assert seen == [layer.name for layer in model.layers] and clone.built
    with pytest.raises(TypeError, match="clone_function"):
        fastrnn.models.clone_model(model, clone_function=lambda layer: None)
    with pytest.raises(TypeError, match="fastrnn model"):
        fastrnn.models.clone_model("model")

    class Sub(fastrnn.Model):
        def __init__(self):
            super().__init__()
            self.d = fastrnn.layers.Dense(1)

        def call(self, x):
            return self.d(x)

    with pytest.raises(NotImplementedError, match="subclassed"):
        fastrnn.models.clone_model(Sub())


# -- inference models made from a trained model's layers (the seq2seq recipe) -----------------

def test_inference_models_share_the_trained_layers():
    L = fastrnn.layers
    rng = np.random.default_rng(5)
    enc_x, dec_x = rng.normal(size=(16, 4, 3)), rng.normal(size=(16, 5, 3))
    encoder_inputs, decoder_inputs = fastrnn.Input((None, 3)), fastrnn.Input((None, 3))
    _, state = L.SimpleRNN(6, return_state=True)(encoder_inputs)
    decoder_rnn = L.SimpleRNN(6, return_sequences=True, return_state=True)
    seq, _ = decoder_rnn(decoder_inputs, initial_state=[state])
    head = L.Dense(2)
    model = fastrnn.Model([encoder_inputs, decoder_inputs], head(seq))
    model.compile(optimizer="adam", loss="mse")
    model.fit([enc_x, dec_x], rng.normal(size=(16, 5, 2)), epochs=2, verbose=0)

    encoder = fastrnn.Model(encoder_inputs, state)
    state_in = fastrnn.Input((6,))
    step, step_state = decoder_rnn(decoder_inputs, initial_state=[state_in])
    decoder = fastrnn.Model([decoder_inputs, state_in], [head(step), step_state])
    full = model.predict([enc_x, dec_x], verbose=0)
    h = encoder.predict(enc_x, verbose=0)
    for t in range(5):          # one step at a time, carrying the state, as inference does
        out, h = decoder.predict([dec_x[:, t:t + 1], h], verbose=0)
        np.testing.assert_allclose(out[:, 0], full[:, t], rtol=1e-5, atol=1e-6)
    # training the big model again moves the small ones' weights too (one set of weights)
    model.fit([enc_x, dec_x], rng.normal(size=(16, 5, 2)), epochs=1, verbose=0)
    np.testing.assert_allclose(encoder.get_weights()[0], model.get_weights()[0])


# -- keras.metrics.Precision / Recall ------------------------------------------------------

def test_precision_and_recall_count_as_keras():
    # Keras 3.15.1 printed these for the same calls
    yt = np.array([[1], [0], [1], [1], [0], [0]], "float32")
    yp = np.array([[0.9], [0.6], [0.4], [0.5], [0.2], [0.51]], "float32")
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 3.0], "float32")
    expected = {fastrnn.metrics.Precision: (1 / 3, 1 / 3, 1 / 3),
                fastrnn.metrics.Recall: (1 / 3, 0.5, 1.0)}
    for cls, (a, b, c) in expected.items():
        m = cls()
        assert m.result() == 0.0
        m.update_state(yt, yp)
        assert m.result() == pytest.approx(a)
        m.update_state(yt[:2], yp[:2], sample_weight=w[:2])
        assert m.result() == pytest.approx(b)
        m2 = cls(thresholds=0.3)
        m2.update_state(yt, yp, sample_weight=w)
        assert m2.result() == pytest.approx(c)
        assert m.get_config() == {"name": m.name, "dtype": "float32", "thresholds": None,
                                  "top_k": None, "class_id": None}
    with pytest.raises(NotImplementedError, match="thresholds"):
        fastrnn.metrics.Precision(thresholds=[0.2, 0.5])
    with pytest.raises(NotImplementedError, match="top_k"):
        fastrnn.metrics.Recall(top_k=2)


def test_precision_and_recall_in_fit_and_evaluate():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 4, 2)), (rng.random(40) > 0.5).astype("float32")
    model = fastrnn.Sequential([fastrnn.Input((4, 2)), fastrnn.layers.SimpleRNN(3),
                                fastrnn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=fastrnn.optimizers.SGD(0.0), loss="binary_crossentropy",
                  metrics=[fastrnn.metrics.Precision(), fastrnn.metrics.Recall()])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    positive = model.predict(x, verbose=0).ravel() > 0.5
    tp = np.sum(positive & (y == 1))
    precision = tp / max(positive.sum(), 1)
    recall = tp / max((y == 1).sum(), 1)
    assert history["precision"][0] == pytest.approx(precision)
    assert history["recall"][0] == pytest.approx(recall)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["precision"] == pytest.approx(precision)
    assert logs["recall"] == pytest.approx(recall)


def test_config_and_save_model_names(tmp_path):
    assert fastrnn.config.floatx() == "float32" and fastrnn.config.epsilon() == 1e-7
    fastrnn.config.set_floatx("float32")
    with pytest.raises(NotImplementedError, match="float64"):
        fastrnn.config.set_floatx("float64")
    pytest.importorskip("h5py")
    model = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                                fastrnn.layers.Dense(1)])
    path = tmp_path / "m.keras"
    fastrnn.models.save_model(model, path)
    again = fastrnn.models.load_model(path)
    np.testing.assert_array_equal(again.get_weights()[0], model.get_weights()[0])
    with pytest.raises(FileExistsError):
        fastrnn.models.save_model(model, path, overwrite=False)


# -- keras.layers.RNN(keras.layers.SimpleRNNCell(...)) ----------------------------------------

def test_rnn_of_a_simple_rnn_cell_is_a_simple_rnn():
    L = fastrnn.layers
    fastrnn.backend.clear_session()
    cell = L.SimpleRNNCell(4, activation="relu", kernel_regularizer="l2", dropout=0.25)
    layer = L.RNN(cell, return_sequences=True)
    assert L.SimpleRNN(2).name == "simple_rnn"        # the cell took no automatic name
    assert layer.name == "rnn" and isinstance(layer, L.SimpleRNN)
    model = fastrnn.Sequential([fastrnn.Input((5, 2)), layer, L.RNN(L.SimpleRNNCell(3)),
                                L.Dense(1)])
    assert [w.shape for w in model.get_weights()] == [(2, 4), (4, 4), (4,), (4, 3), (3, 3),
                                                      (3,), (3, 1), (1,)]
    twin = fastrnn.Sequential([fastrnn.Input((5, 2)),
                               L.SimpleRNN(4, activation="relu", return_sequences=True),
                               L.SimpleRNN(3), L.Dense(1)])
    twin.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(3, 5, 2))
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.predict(x, verbose=0))
    assert len(model.losses) == 1                     # the cell's kernel regularizer
    cfg = layer.get_config()       # Keras 3.15.1's keys
    assert sorted(cfg) == ["cell", "dtype", "go_backwards", "name", "return_sequences",
                           "return_state", "stateful", "trainable", "unroll",
                           "zero_output_for_mask"]
    assert cfg["cell"]["class_name"] == "SimpleRNNCell"
    assert cfg["cell"]["config"]["units"] == 4 and cfg["cell"]["config"]["dropout"] == 0.25
    again = L.RNN.from_config(cfg)
    assert again.units == 4 and again.activation == "relu" and again.dropout == 0.25
    with pytest.raises(NotImplementedError, match="stacked"):
        L.RNN([L.SimpleRNNCell(3), L.SimpleRNNCell(2)])
    with pytest.raises(NotImplementedError, match="SimpleRNNCell"):
        L.RNN(object())
    with pytest.raises(ValueError):
        L.SimpleRNNCell(3, dropout=2.0)


def test_keras_ops_conversions():
    w = np.ones((2, 2), "float32")
    out = fastrnn.ops.convert_to_numpy(w)
    assert isinstance(out, np.ndarray) and not np.shares_memory(out, w)
    assert fastrnn.ops.convert_to_numpy(0.5) == 0.5
    assert fastrnn.ops.convert_to_tensor([1, 2], dtype="float32").dtype == np.float32
