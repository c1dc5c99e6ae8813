"""Functional models against Keras 3's recorded numbers (tests/fixtures/keras/functional.npz).

The same builders (tests/functional_cases.py) made the Keras models in
tools/keras_fixtures/functional.py: here fastrnn's get the recorded weights
and must give Keras's layer order and connections, predictions (float64 and
float32), evaluate's total and per-output losses with loss_weights, the
gradient of every weight, and two SGD steps.
"""
import json

import numpy as np
import pytest

import fastrnn as keras

import functional_cases as cases
from keras_fixture import load
from tolerances import assert_close

DATA = load("functional")
CASES = json.loads(str(DATA["cases"]))
F64 = np.dtype(np.float64)


def entries(name, key, n):
    return [DATA[f"{name}/{key}{k}"] for k in range(n)]


def fastrnn_model(name, dtype="float64"):
    keras.clear_session()
    model, _ = cases.CASES[name](keras, dtype)
    p = f"{name}/"
    model.set_weights([w.astype(dtype) for w in entries(name, "weight",
                                                         int(DATA[p + "n_weights"]))])
    xs = entries(name, "x", int(DATA[p + "n_inputs"]))
    ys = entries(name, "y", int(DATA[p + "n_outputs"]))
    return model, xs, ys


def as_list(out):
    return out if isinstance(out, list) else [out]


def feed(arrays):
    return arrays if len(arrays) > 1 else arrays[0]


def test_the_fixture_covers_every_case():
    assert CASES == list(cases.CASES)


@pytest.mark.parametrize("name", CASES)
def test_layer_order_and_connections_are_keras(name):
    model, _, _ = fastrnn_model(name)
    assert [type(layer).__name__ for layer in model.layers] == json.loads(
        str(DATA[f"{name}/layers"]))
    # connections by position in model.layers (automatic names differ between sessions)
    theirs = json.loads(str(DATA[f"{name}/connections"]))
    where = {layer_name: k for k, (layer_name, _) in enumerate(theirs)}
    want = [[where[n] for n in inbound] for _, inbound in theirs]
    mine = {layer.name: k for k, layer in enumerate(model.layers)}
    nodes = model._summary_nodes()
    got = [[mine[t._keras_history[0].name] for t in nodes[id(layer)].input_tensors]
           for layer in model.layers]
    assert got == want
    if name == "two_in_two_out":        # explicit names: the summary's column itself
        lines = []
        model.summary(print_fn=lines.append)
        for layer_name, inbound in theirs:
            row = next(line for line in lines if line.startswith(f" {layer_name} ("))
            first = f"{inbound[0]}[0][0]" if inbound else "-"
            assert row.split()[-1].rstrip(",") == first


@pytest.mark.parametrize("name", CASES)
def test_predictions_are_keras(name):
    model, xs, _ = fastrnn_model(name)
    want = entries(name, "prediction", len(model.outputs))
    for got, expected in zip(as_list(model.predict(feed(xs), verbose=0)), want):
        assert_close(got, expected, "keras_fixture", F64)
    model32, _, _ = fastrnn_model(name, "float32")
    want32 = entries(name, "float32/prediction", len(model.outputs))
    x32 = [x if x.dtype.kind == "i" else x.astype(np.float32) for x in xs]
    for got, expected in zip(as_list(model32.predict(feed(x32), verbose=0)), want32):
        assert got.dtype == np.float32
        assert_close(got, expected, "keras_fixture", np.dtype(np.float32))


TRAINED = [name for name in CASES if name not in cases.PREDICT_ONLY]


@pytest.mark.parametrize("name", TRAINED)
def test_losses_and_gradients_are_keras(name):
    model, xs, ys = fastrnn_model(name)
    losses, loss_weights = cases.losses_for(len(ys))
    model.compile(keras.optimizers.SGD(0.1), losses if len(ys) > 1 else losses[0],
                  loss_weights=loss_weights if len(ys) > 1 else [loss_weights[0]])
    logs = model.evaluate(feed(xs), feed(ys), batch_size=len(xs[0]), verbose=0,
                          return_dict=True)
    expected = json.loads(str(DATA[f"{name}/evaluate"]))
    assert sorted(logs) == sorted(expected)      # (Keras's JAX backend sorts the keys)
    assert_close([logs[k] for k in sorted(logs)], [expected[k] for k in sorted(logs)],
                 "keras_fixture", F64)
    x = model._check_x(feed(xs))
    model._loss_and_gradients(x, model._check_y(feed(ys), x))
    grads = entries(name, "grad", len(model.weights))
    for (wname, shape, off), g in zip(model.param_layout, grads):
        size = int(np.prod(shape))
        assert_close(model.grads[off:off + size].reshape(shape), g, "keras_fixture", F64,
                     err_msg=wname)


@pytest.mark.parametrize("name", TRAINED)
def test_two_sgd_steps_are_keras(name):
    model, xs, ys = fastrnn_model(name)
    losses, loss_weights = cases.losses_for(len(ys))
    model.compile(keras.optimizers.SGD(0.1), losses if len(ys) > 1 else losses[0],
                  loss_weights=loss_weights if len(ys) > 1 else [loss_weights[0]])
    got = []
    for step in range(2):
        history = model.fit(feed(xs), feed(ys), batch_size=len(xs[0]), epochs=1,
                            shuffle=False, verbose=0)
        got.append(history.history["loss"][0])
        assert_close(model.params, DATA[f"{name}/train/params{step}"], "keras_fixture", F64)
    assert_close(got, DATA[f"{name}/train/losses"], "keras_fixture", F64)
