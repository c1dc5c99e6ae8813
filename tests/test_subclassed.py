"""Subclassed models (``class M(keras.Model)`` with ``call``): traced once into the
functional graph, Keras's attribute order for layers and weights, copies and pickles."""
import copy
import pickle

import numpy as np
import pytest

import fastrnn
from fastrnn import layers


class Regressor(fastrnn.Model):
    def __init__(self, units=5, **kwargs):
        super().__init__(**kwargs)
        self.head = layers.Dense(1)                 # defined first: its weights come first
        self.rnn = layers.SimpleRNN(units, return_sequences=True)
        self.rnn2 = layers.SimpleRNN(3)

    def call(self, inputs, training=False):
        return self.head(self.rnn2(self.rnn(inputs)))


class TwoInputs(fastrnn.Model):
    def __init__(self):
        super().__init__(name="two")
        self.a = layers.SimpleRNN(2)
        self.b = layers.Dense(2)
        self.merge = layers.Concatenate()
        self.out = layers.Dense(1)

    def call(self, inputs):
        seq, static = inputs
        return self.out(self.merge([self.a(seq), self.b(static)]))


class ReturnsNumber(fastrnn.Model):
    def __init__(self):
        super().__init__()
        self.d = layers.Dense(1)

    def call(self, inputs):
        self.d(inputs)
        return 3.0


def _data(n=12):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4, 2)).astype("float32"), rng.normal(size=(n, 1))


def test_traced_model_computes_as_the_same_functional_model():
    x, y = _data()
    model = Regressor(name="reg")
    assert not model.built and model.name == "reg"
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "SimpleRNN",
                                                                "SimpleRNN"]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built and isinstance(model, Regressor) and isinstance(model, fastrnn.Model)
    # Keras's order: the attributes' (head first), not the graph's
    assert [w.shape for w in model.get_weights()] == [(3, 1), (1,), (2, 5), (5, 5), (5,),
                                                      (5, 3), (3, 3), (3,)]
    inputs = fastrnn.Input((4, 2))
    rnn, rnn2, head = layers.SimpleRNN(5, return_sequences=True), layers.SimpleRNN(3), \
        layers.Dense(1)
    twin = fastrnn.Model(inputs, head(rnn2(rnn(inputs))))
    w = model.get_weights()
    twin.set_weights(w[2:] + w[:2])
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.predict(x, verbose=0),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x)), twin.predict(x, verbose=0), rtol=1e-6)


def test_build_summary_and_default_name():
    model = Regressor()
    with pytest.raises(ValueError, match="not been built"):
        model.summary()
    model.build((None, 7, 2))
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(None, 7, 5)" in line for line in lines)
    assert model.name.startswith("regressor")
    assert model.count_params() == 4 + 40 + 27


def test_several_inputs():
    model = TwoInputs()
    rng = np.random.default_rng(1)
    seq, static = rng.normal(size=(6, 3, 2)), rng.normal(size=(6, 4))
    model.compile(optimizer="adam", loss="mse")
    model.fit([seq, static], np.zeros((6, 1)), epochs=1, verbose=0)
    assert model.predict([seq, static], verbose=0).shape == (6, 1)
    assert [layer.name for layer in model.layers][:2] == [model.a.name, model.b.name]


def test_copies_and_pickles_are_whole_models():
    x, y = _data()
    model = Regressor()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert type(other) is type(model)
        np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
        other.fit(x, y, epochs=1, verbose=0)        # trains its own weights
        assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])


def test_call_must_return_tensors():
    with pytest.raises(TypeError, match="must return"):
        ReturnsNumber().predict(np.zeros((2, 3)), verbose=0)


def test_model_without_call_is_still_refused():
    with pytest.raises(NotImplementedError, match="subclass"):
        fastrnn.Model()
