"""Masks flowing as in Keras 3: through layers to the recurrences, the losses and the metrics.

Three kinds of checks:

- Keras 3's recorded numbers (tests/fixtures/keras/masks.npz, made by
  tools/keras_fixtures/masks.py from the builders in tests/mask_cases.py):
  predictions, evaluate's loss and metrics with and without per-step sample
  weights, two SGD train_on_batch steps;
- the NumPy graph reference (fastrnn.reference.graph propagates the masks
  itself): forward, loss and every gradient, float64 tight;
- padded training equals training every sequence unpadded, one by one.
"""
import json

import numpy as np
import pytest

import fastrnn as keras
from fastrnn import layers as L
from fastrnn.reference import graph as ref

import mask_cases as cases
from keras_fixture import load
from model_graphs import graph_of, weights_back
from tolerances import assert_close

DATA = load("masks")
CASES = json.loads(str(DATA["cases"]))
F64 = np.dtype(np.float64)


def entries(name, key, n):
    return [DATA[f"{name}/{key}{k}"] for k in range(n)]


def fastrnn_case(name, dtype="float64"):
    keras.clear_session()
    model, kinds, losses, metrics = cases.CASES[name](keras, dtype)
    p = f"{name}/"
    model.set_weights([w.astype(dtype) for w in entries(name, "weight",
                                                         int(DATA[p + "n_weights"]))])
    xs = entries(name, "x", int(DATA[p + "n_inputs"]))
    ys = entries(name, "y", int(DATA[p + "n_outputs"]))
    return model, xs, ys, losses, metrics


def feed(arrays):
    return arrays if len(arrays) > 1 else arrays[0]


def compiled(name):
    model, xs, ys, losses, metrics = fastrnn_case(name)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses if len(ys) > 1
                  else losses[0], metrics=metrics or None, weighted_metrics=metrics or None)
    return model, xs, ys


def test_the_fixture_covers_every_case():
    assert CASES == list(cases.CASES)


@pytest.mark.parametrize("name", CASES)
def test_predictions_are_keras(name):
    model, xs, _, _, _ = fastrnn_case(name)
    out = model.predict(feed(xs), verbose=0)
    out = out if isinstance(out, list) else [out]
    for k, got in enumerate(out):
        assert_close(got, DATA[f"{name}/prediction{k}"], "keras_fixture", F64)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", CASES)
def test_evaluate_counts_only_the_kept_steps_as_keras(name, weighted):
    key = f"{name}/evaluate" + ("_weighted" if weighted else "")
    if key not in DATA:
        pytest.skip("sample weights per step: per-step outputs only")
    model, xs, ys = compiled(name)
    sw = DATA[f"{name}/sample_weight"] if weighted else None
    if sw is not None and len(ys) > 1:
        sw = [sw] * len(ys)
    logs = model.evaluate(feed(xs), feed(ys), sample_weight=sw, verbose=0, return_dict=True,
                          batch_size=cases.B)
    want = json.loads(str(DATA[key]))
    assert sorted(logs) == sorted(want)
    for k in want:
        assert_close(logs[k], want[k], "keras_fixture", F64, err_msg=k)


@pytest.mark.parametrize("name", CASES)
def test_training_steps_are_keras(name):
    model, xs, ys = compiled(name)
    for step in range(2):
        history = model.fit(feed(xs), feed(ys), batch_size=cases.B, epochs=1, shuffle=False,
                            verbose=0)
        assert_close(history.history["loss"][0], DATA[f"{name}/train/losses"][step],
                     "keras_fixture", F64)
        flat = np.concatenate([w.ravel() for w in model.get_weights()])
        assert_close(flat, DATA[f"{name}/train/params{step}"], "keras_fixture", F64)
