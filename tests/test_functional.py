"""The functional API: Input, layers called on symbolic tensors, Model(inputs, outputs).

Structure (Keras's layer order, names, summary with "Connected to", get_layer,
inputs/outputs), data as lists and dicts for several inputs and outputs, the
losses of several outputs (history keys, evaluate's list, loss_weights),
Sequential as a chain Model, models sharing layers, and training of graphs
against the NumPy reference (fastrnn.reference.graph) step by step.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn import layers
from fastrnn.reference import graph as ref

from tolerances import assert_close

F64 = np.dtype(np.float64)


def two_in_two_out(dtype="float32"):
    a = keras.Input((3, 1), name="seq", dtype=dtype)
    b = keras.Input((2,), name="aux", dtype=dtype)
    h = layers.SimpleRNN(4, name="rnn")(a)
    c = layers.Concatenate(name="cat")([h, b])
    o1 = layers.Dense(1, name="out1")(c)
    o2 = layers.Dense(2, name="out2")(h)
    return a, b, h, c, o1, o2


def data(seed=0, n=10):
    rng = np.random.default_rng(seed)
    x = [rng.uniform(-1, 1, (n, 3, 1)), rng.uniform(-1, 1, (n, 2))]
    y = [rng.uniform(-1, 1, (n, 1)), rng.uniform(-1, 1, (n, 2))]
    return x, y


def test_input_is_a_symbolic_tensor():
    t = keras.Input(shape=(3, 1), name="series")
    assert isinstance(t, keras.KerasTensor)
    assert t.shape == (None, 3, 1) and t.dtype == "float32" and t.name == "series"
    assert repr(t) == ("<KerasTensor shape=(None, 3, 1), dtype=float32, sparse=False, "
                       "ragged=False, name=series>")
    assert keras.Input((None, 2), batch_size=8).shape == (8, None, 2)
    assert keras.Input(batch_shape=(4, 5)).shape == (4, 5)
    assert keras.Input((7,), dtype="int32").dtype == "int32"
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(t)


def test_calling_layers_on_symbolic_tensors_records_the_graph():
    a, b, h, c, o1, o2 = two_in_two_out()
    assert h.shape == (None, 4) and c.shape == (None, 6) and o2.shape == (None, 2)
    rnn = h._keras_history[0]
    assert rnn.built and rnn.input is a and rnn.output is h
    assert [w.shape for w in rnn.get_weights()] == [(1, 4), (4, 4), (4,)]
    with pytest.raises(ValueError, match="takes one input"):
        layers.Dense(2)([a, b])
    with pytest.raises(TypeError, match="list of tensors"):
        layers.Add()(a)


def test_model_structure_follows_keras():
    a, b, h, c, o1, o2 = two_in_two_out()
    model = keras.Model([a, b], [o1, o2])
    assert isinstance(model, keras.Model) and model.name.startswith("functional")
    # recorded from Keras 3.15 for this graph (depth order, then a walk from the outputs)
    assert [layer.name for layer in model.layers] == ["seq", "rnn", "aux", "cat", "out1", "out2"]
    assert model.output_names == ["out1", "out2"] and model.input_names == ["seq", "aux"]
    assert model.inputs == [a, b] and model.outputs == [o1, o2]
    assert model.input_shape == [(None, 3, 1), (None, 2)]
    assert model.output_shape == [(None, 1), (None, 2)]
    assert model.get_layer("cat") is c._keras_history[0]
    assert model.get_layer(index=1).name == "rnn"
    with pytest.raises(ValueError, match="no layer named"):
        model.get_layer("nope")
    assert [n for n, _, _ in model.param_layout] == [
        "simple_rnn/kernel", "simple_rnn/recurrent_kernel", "simple_rnn/bias",
        "dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    assert model.count_params() == 24 + 7 + 10


def test_summary_has_keras_connected_to_column():
    a, b, h, c, o1, o2 = two_in_two_out()
    lines = []
    keras.Model([a, b], [o1, o2], name="two").summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "two"' and "Connected to" in lines[2]
    rows = {line.split()[0]: line for line in lines if line.startswith(" ") and "(" in line}
    assert rows["seq"].split()[-1] == "-"
    assert rows["rnn"].split()[-1] == "seq[0][0]"
    assert rows["cat"].split()[-1] == "rnn[0][0],"
    follow = lines[lines.index(rows["cat"]) + 1]
    assert follow.split() == ["aux[0][0]"]
    assert "Total params: 41" in text
    # a chain is "sequential-like": no Connected to column, the Input row kept
    lines = []
    keras.Model(a, o2).summary(print_fn=lines.append)
    assert "Connected to" not in "\n".join(lines)
    assert any("seq (InputLayer)" in line for line in lines)


def test_fit_predict_evaluate_with_lists_and_dicts():
    a, b, h, c, o1, o2 = two_in_two_out()
    model = keras.Model([a, b], [o1, o2])
    model.compile("sgd", ["mse", "mae"], loss_weights=[1.0, 0.5])
    x, y = data()
    history = model.fit(x, y, epochs=2, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "out1_loss", "out2_loss"}
    loss, l1, l2 = model.evaluate(x, y, verbose=0)
    p1, p2 = model.predict(x, verbose=0)
    assert l1 == pytest.approx(np.mean((p1 - y[0]) ** 2), rel=1e-5)
    assert l2 == pytest.approx(np.mean(np.abs(p2 - y[1])), rel=1e-5)
    assert loss == pytest.approx(l1 + 0.5 * l2, rel=1e-6)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "out1_loss", "out2_loss"]
    # dicts keyed by input and output names give the same
    xd, yd = {"aux": x[1], "seq": x[0]}, {"out2": y[1], "out1": y[0]}
    assert model.evaluate(xd, yd, verbose=0) == pytest.approx([loss, l1, l2])
    # a model whose outputs are a dict predicts a dict; the loss may be a dict
    named = keras.Model({"seq": a, "aux": b}, {"first": o1, "second": o2})
    assert named.output_names == ["first", "second"]
    out = named.predict(xd, verbose=0)
    assert set(out) == {"first", "second"} and out["second"].shape == (10, 2)
    named.compile("sgd", {"first": "mse", "second": "mse"}, loss_weights={"first": 2.0,
                                                                          "second": 1.0})
    history = named.fit(xd, {"first": y[0], "second": y[1]}, verbose=0)
    assert set(history.history) == {"loss", "first_loss", "second_loss"}


def test_one_loss_for_every_output_and_its_weight():
    a, b, h, c, o1, o2 = two_in_two_out()
    model = keras.Model([a, b], [o1, o2])
    x, y = data(1)
    model.compile("sgd", "mse", loss_weights=[0.5])    # as Keras: one weight for one loss
    loss, l1, l2 = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(0.5 * (l1 + l2), rel=1e-6)
    for bad in (dict(loss="mse", loss_weights=[1.0, 2.0]), dict(loss=["mse"]),
                dict(loss={"out1": "mse"}), dict(loss=["mse", "mae"], loss_weights=[1, 2, 3])):
        model.compile("sgd", **bad)
        with pytest.raises(ValueError, match="loss"):
            model.evaluate(x, y, verbose=0)


def test_data_structure_errors_name_the_argument():
    a, b, h, c, o1, o2 = two_in_two_out()
    model = keras.Model([a, b], [o1, o2])
    model.compile("sgd", "mse")
    x, y = data()
    with pytest.raises(ValueError, match="2 inputs"):
        model.predict(x[0], verbose=0)
    with pytest.raises(ValueError, match="2 inputs.*list of 3"):
        model.predict(x + [x[1]], verbose=0)
    with pytest.raises(ValueError, match=r"x is a dict without the model's input\(s\) \['aux'\]"):
        model.predict({"seq": x[0]}, verbose=0)
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit(x, y[0], verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\] has 3 features"):
        model.predict([x[0], np.ones((10, 3))], verbose=0)
    with pytest.raises(ValueError, match=r"x\[0\] has 10 samples but x\[1\] has 4"):
        model.predict([x[0], x[1][:4]], verbose=0)
    with pytest.raises(ValueError, match=r"y\[1\] has shape"):
        model.fit(x, [y[0], y[0]], verbose=0)


def test_model_graph_errors():
    a = keras.Input((3, 1))
    b = keras.Input((3, 1))
    h = layers.SimpleRNN(2)(a)
    with pytest.raises(ValueError, match="graph disconnected"):
        keras.Model(b, layers.Dense(1)(h))
    with pytest.raises(ValueError, match="not made by fastrnn.Input"):
        keras.Model(h, layers.Dense(1)(h))
    shared = layers.Dense(2)
    with pytest.raises(NotImplementedError, match="shared layers"):
        keras.Model(a, layers.Add()([shared(h), shared(h)]))
    with pytest.raises(TypeError, match="symbolic tensor"):
        keras.Model(a, np.ones(3))
    with pytest.raises(ValueError, match="unique"):
        x = layers.Dense(2, name="same")(h)
        keras.Model(a, layers.Dense(2, name="same")(x))
    with pytest.raises(NotImplementedError, match="subclass"):
        keras.Model()


def test_sequential_is_a_chain_model():
    model = keras.Sequential([keras.Input((3, 1)), layers.SimpleRNN(4), layers.Dense(1)])
    assert isinstance(model, keras.Model)
    assert [type(layer).__name__ for layer in model.layers] == ["SimpleRNN", "Dense"]
    assert model.inputs[0].shape == (None, 3, 1) and model.outputs[0].shape == (None, 1)
    popped = model.pop()
    assert isinstance(popped, layers.Dense) and model.output_shape == (None, 4)
    model.add(layers.Dense(3))
    assert model.output_shape == (None, 3) and model.count_params() == 24 + 15
    x = np.random.default_rng(0).uniform(size=(5, 3, 1))
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))


def test_the_same_network_as_sequential_and_functional_agrees():
    keras.set_random_seed(3)
    seq = keras.Sequential([keras.Input((4, 2)), layers.SimpleRNN(5, return_sequences=True),
                            layers.SimpleRNN(3), layers.Dense(2, activation="tanh")])
    inp = keras.Input((4, 2))
    out = layers.Dense(2, activation="tanh")(layers.SimpleRNN(3)(
        layers.SimpleRNN(5, return_sequences=True)(inp)))
    fun = keras.Model(inp, out)
    fun.set_weights(seq.get_weights())
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (20, 4, 2)), rng.uniform(-1, 1, (20, 2))
    for model in (seq, fun):
        model.compile(keras.optimizers.Adam(0.01), "mse")
    np.testing.assert_array_equal(seq.predict(x, verbose=0), fun.predict(x, verbose=0))
    h1 = seq.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    h2 = fun.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert h1 == h2
    np.testing.assert_array_equal(seq.params, fun.params)


def test_models_sharing_layers_see_each_others_training():
    a, b, h, c, o1, o2 = two_in_two_out()
    full = keras.Model([a, b], [o1, o2])
    encoder = keras.Model(a, h)             # a sub-model: the same layer objects
    x, y = data(2)
    before = encoder.predict(x[0], verbose=0)
    full.compile(keras.optimizers.SGD(0.5), "mse")
    full.fit(x, y, epochs=3, verbose=0)
    after = encoder.predict(x[0], verbose=0)
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, full.get_layer("rnn")(x[0]))
    # the full model runs again after the encoder took the layers: same weights
    np.testing.assert_allclose(full.predict(x, verbose=0)[1],
                               full.get_layer("out2")(after), rtol=1e-5, atol=1e-6)


def test_input_conveniences_as_keras():
    model = keras.Sequential([keras.Input((3, 1)), layers.SimpleRNN(2), layers.Dense(1)])
    x = np.random.default_rng(0).uniform(size=(4, 3, 1))
    base = model.predict(x, verbose=0)
    assert base.dtype == np.float32
    np.testing.assert_array_equal(model.predict(x[..., 0], verbose=0), base)   # (N, T)
    np.testing.assert_array_equal(model.predict(x.astype(np.float64), verbose=0), base)
    assert model.predict(x.astype(np.float64), verbose=0).dtype == np.float32
    ints = np.array([[[0], [1], [1]], [[1], [0], [0]]])
    np.testing.assert_array_equal(model.predict(ints, verbose=0),
                                  model.predict(ints.astype(np.float32), verbose=0))
    np.testing.assert_array_equal(model.predict(ints.astype(bool), verbose=0),
                                  model.predict(ints.astype(np.float32), verbose=0))


GRAPH = {"nodes": [{"kind": "input", "index": 0}, {"kind": "input", "index": 1},
                   {"kind": "simple_rnn", "inputs": [0], "units": 4, "return_sequences": True},
                   {"kind": "dropout", "inputs": [2], "rate": 0.3, "seed": 11},
                   {"kind": "simple_rnn", "inputs": [3], "units": 3, "activation": "relu"},
                   {"kind": "embedding", "inputs": [1], "input_dim": 7, "output_dim": 3},
                   {"kind": "flatten", "inputs": [5]},
                   {"kind": "concatenate", "inputs": [4, 6]},
                   {"kind": "dense", "inputs": [7], "units": 2, "activation": "tanh"},
                   {"kind": "dense", "inputs": [4], "units": 2},
                   {"kind": "add", "inputs": [8, 9]}],
         "outputs": [10, 4]}


def graph_model(dtype="float64"):
    seq = keras.Input((5, 2), dtype=dtype)
    ids = keras.Input((3,), dtype="int32")
    h = layers.SimpleRNN(4, return_sequences=True)(seq)
    h = layers.Dropout(0.3, seed=11)(h)
    last = layers.SimpleRNN(3, activation="relu")(h)
    e = layers.Flatten()(layers.Embedding(7, 3)(ids))
    d1 = layers.Dense(2, activation="tanh")(layers.Concatenate()([last, e]))
    d2 = layers.Dense(2)(last)
    return keras.Model([seq, ids], [layers.Add()([d1, d2]), last])


def test_training_a_graph_equals_the_reference_step_by_step():
    """fit (dropout on, one compiled call per epoch) = the NumPy reference's steps."""
    keras.set_random_seed(0)
    model = graph_model()
    by_name = {layer.name: layer for layer in model.layers}
    rng = np.random.default_rng(4)
    xs = [rng.uniform(-1, 1, (12, 5, 2)), rng.integers(0, 7, (12, 3))]
    ys = [rng.uniform(-1, 1, (12, 2)), rng.uniform(-1, 1, (12, 3))]
    # the reference lists weights in its node order, not Keras's layer order
    weights = [w for name in _node_order(model) for w in by_name[name].get_weights()]
    model.compile(keras.optimizers.SGD(0.1), ["mse", "mae"], loss_weights=[1.0, 0.5])
    history = model.fit(xs, ys, batch_size=5, epochs=2, shuffle=False, verbose=0)
    batches = [([x[i:i + 5] for x in xs], [y[i:i + 5] for y in ys]) for i in (0, 5, 10)] * 2
    ref_weights, ref_losses = ref.train(GRAPH, weights, "sgd", {"learning_rate": 0.1},
                                        batches, ["mse", "mae"], [1.0, 0.5])
    sizes = [5, 5, 2]
    epochs = [np.dot(sizes, ref_losses[:3]) / 12, np.dot(sizes, ref_losses[3:]) / 12]
    assert_close(history.history["loss"], epochs, "forward", F64)
    got = [w for name in _node_order(model) for w in by_name[name].get_weights()]
    for g, r in zip(got, ref_weights):
        assert_close(g, r, "backward", F64)


def _node_order(model):
    """Layer names with weights in the engine's (topological) order of GRAPH above."""
    rnns = [layer.name for layer in model.layers if isinstance(layer, layers.SimpleRNN)]
    dense = [layer.name for layer in model.layers if isinstance(layer, layers.Dense)]
    emb = [layer.name for layer in model.layers if isinstance(layer, layers.Embedding)]
    # GRAPH: rnn(4), rnn(3), embedding, dense(concat), dense(last)
    first = [n for n in rnns if model.get_layer(n).units == 4]
    second = [n for n in rnns if model.get_layer(n).units == 3]
    d_concat = [n for n in dense if model.get_layer(n).kernel.shape[0] == 3 + 9]
    d_last = [n for n in dense if model.get_layer(n).kernel.shape[0] == 3]
    return first + second + emb + d_concat + d_last


def test_predict_evaluate_and_gradients_of_a_graph_match_the_reference():
    keras.set_random_seed(1)
    model = graph_model()
    by_name = {layer.name: layer for layer in model.layers}
    weights = [w for name in _node_order(model) for w in by_name[name].get_weights()]
    rng = np.random.default_rng(5)
    xs = [rng.uniform(-1, 1, (6, 5, 2)), rng.integers(0, 7, (6, 3))]
    ys = [rng.uniform(-1, 1, (6, 2)), rng.uniform(-1, 1, (6, 3))]
    outs, _ = ref.forward(GRAPH, weights, xs)
    for got, want in zip(model.predict(xs, verbose=0), outs):
        assert_close(got, want, "forward", F64)
    model.compile("sgd", "mse")
    total, _, _ = ref.loss_and_gradients(GRAPH, weights, xs, ys, "mse", training=False)
    assert_close(model.evaluate(xs, ys, verbose=0)[0], total, "forward", F64)


# ---------------------------------------------------------------- any loss on any output

def classifier_and_regressor():
    keras.set_random_seed(4)
    x = keras.Input((5, 2), dtype="float64", name="series")
    h = layers.SimpleRNN(6)(x)
    probs = layers.Dense(3, activation="softmax", name="label")(h)
    value = layers.Dense(1, name="value")(layers.Concatenate()([h, probs]))  # reads probs
    gate = layers.Dense(2, activation="sigmoid", name="gate")(h)
    return keras.Model(x, [probs, value, gate])


def test_each_output_its_own_loss_weight_and_sample_weights():
    """Sparse cross-entropy, mse and binary cross-entropy on three outputs, weighted:
    the total and every output's loss are those of each output alone, and the
    gradient is the weighted sum of the outputs' gradients."""
    model = classifier_and_regressor()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (9, 5, 2))
    labels = rng.integers(0, 3, 9)
    value = rng.uniform(-1, 1, (9, 1))
    gate = rng.integers(0, 2, (9, 2)).astype(float)
    w_label, w_value = rng.uniform(0, 2, 9), rng.uniform(0, 2, 9)
    losses = ["sparse_categorical_crossentropy", "mse", "binary_crossentropy"]
    weights = [1.0, 0.5, 2.0]
    model.compile("sgd", losses, loss_weights=weights)
    sample_weight = [w_label, w_value, None]
    logs = model.evaluate(x, [labels, value, gate], sample_weight=sample_weight, verbose=0,
                          return_dict=True, batch_size=9)
    assert list(logs) == ["loss", "label_loss", "value_loss", "gate_loss"]
    grads = _gradients(model, x, [labels, value, gate], sample_weight)
    alone, total_grad = [], np.zeros_like(grads)
    for k, (name, loss, w, y) in enumerate(zip(["label", "value", "gate"], losses,
                                               sample_weight, [labels, value, gate])):
        single = keras.Model(model.inputs, model.outputs[k])
        single.compile("sgd", loss)
        alone.append(single.evaluate(x, y, sample_weight=w, verbose=0, batch_size=9))
        g = _gradients(single, x, y, w)
        total_grad += weights[k] * _in_layout(g, single, model)
        assert logs[f"{name}_loss"] == pytest.approx(alone[-1], rel=1e-12)
    model.compile("sgd", losses, loss_weights=weights)
    assert logs["loss"] == pytest.approx(sum(w * a for w, a in zip(weights, alone)), rel=1e-12)
    np.testing.assert_allclose(_gradients(model, x, [labels, value, gate], sample_weight),
                               total_grad, rtol=1e-10, atol=1e-13)


def _gradients(model, x, y, w):
    xs = model._check_x(x)
    ys = model._check_y(y, xs)
    ws = model._check_weights(w, None, ys, xs)
    model._loss_and_gradients(xs, ys, ws)
    return model.grads.copy()


def _in_layout(grads, sub, model):
    """A sub-model's gradient placed at its layers' weights in the full model's layout."""
    out = np.zeros(model.params.size)
    offsets = {id(layer): off for layer, off in zip(model._weighted_layers(),
                                                   model._layer_offsets)}
    for layer, off in zip(sub._weighted_layers(), sub._layer_offsets):
        n = layer.count_params()
        out[offsets[id(layer)]:offsets[id(layer)] + n] = grads[off:off + n]
    return out


def test_a_softmax_output_read_by_another_layer_is_not_fused():
    """Fusing computes an output's loss from its logits; when another layer reads that
    output it must still see probabilities -- the engine fuses only unread outputs."""
    model = classifier_and_regressor()
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse", "binary_crossentropy"])
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (4, 5, 2))
    y = [rng.integers(0, 3, 4), rng.uniform(size=(4, 1)), np.ones((4, 2))]
    model.evaluate(x, y, verbose=0)
    engine = model._trainer()
    assert engine.fused_outputs == [False, False, True]
    probs, _, gate = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)
    assert np.all((gate > 0) & (gate < 1))
    model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0)[0].sum(axis=1), 1, rtol=1e-12)


def test_sample_weight_structures_and_their_errors():
    model = classifier_and_regressor()
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse", "mse"])
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (6, 5, 2))
    y = [rng.integers(0, 3, 6), rng.uniform(size=(6, 1)), rng.uniform(size=(6, 2))]
    w = rng.uniform(0, 1, 6)
    one = model.evaluate(x, y, sample_weight=w, verbose=0)
    listed = model.evaluate(x, y, sample_weight=[w, w, w], verbose=0)
    named = model.evaluate(x, y, sample_weight={"label": w, "value": w, "gate": w}, verbose=0)
    assert one == pytest.approx(listed) and one == pytest.approx(named)
    with pytest.raises(ValueError, match="sample_weight"):
        model.evaluate(x, y, sample_weight={"nope": w}, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight\[1\]"):
        model.evaluate(x, y, sample_weight=[w, w[:3], w], verbose=0)
    with pytest.raises(NotImplementedError, match="class_weight"):
        model.fit(x, y, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(NotImplementedError, match="metrics"):
        model.compile("sgd", "mse", metrics=["mae"])
        model.evaluate(x, y, verbose=0)
