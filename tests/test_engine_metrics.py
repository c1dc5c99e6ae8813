"""The engine's compiled metrics, compile()'s names, and evaluate()/fit() against Keras 3.

- every recorded metric case through the engine's ``_metrics`` (its running
  total and count against the values Keras recorded);
- Keras's streaming record (three batches, weights of every shape, reset);
- ``fastrnn.metrics.resolve`` / ``fastrnn.losses.resolve`` against what Keras's
  ``compile`` built from each string, over 12 shape pairs;
- whole models rebuilt with the weights the fixture script set: ``evaluate``
  (names and values: losses, fused sigmoid/softmax, accuracies, weighted
  metrics, temporal weights) and ``fit``'s history keys, against Keras.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn import _engine
from fastrnn import losses as losses_module
from fastrnn import metrics as metrics_module
from fastrnn.reference import metrics as M
from keras_loss_fixtures import DTYPES, assert_keras_close, fixtures

F = fixtures()
E2E = F.meta["e2e"]["float32"]
SPARSE = ("sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy")


def _engine_metric(fn, options, y_true, y_pred, weight=None, weighted=False):
    """(total, count) the engine accumulates for one batch of a metric function."""
    spec = {"code": _engine.METRICS[fn], "weighted": weighted,
            "param": float(options.get("threshold", options.get("k", 0.5 if fn ==
                                                                  "binary_accuracy" else 5)))}
    sparse = fn in SPARSE
    code = _engine.LOSSES["sparse_categorical_crossentropy" if sparse else "mean_squared_error"]
    lead = y_pred.shape[:-1]
    yt = y_true.reshape(lead + (1,)) if sparse else y_true.reshape(y_pred.shape)
    _, _, _, totals = _engine.loss_and_gradient(yt, y_pred, weight, code=code,
                                                from_logits=True, metrics=[spec])
    return totals[0]


def _per_sample_sum(values, batch):
    values = np.asarray(values, dtype=np.float64).reshape(batch, -1)
    return values.mean(axis=1).sum()


def _metric_cases():
    out = []
    for case in F.cases("metric"):
        inputs = F.inputs(case)
        yp, yt = inputs["y_pred"], inputs["y_true"]
        if yp.ndim < 2 or (yt.ndim == yp.ndim and yt.shape[-1] != yp.shape[-1]
                           and case["fn"] not in SPARSE):
            continue        # a model's output always has its unit axis
        if case["fn"] in SPARSE:
            labels = yt.reshape(-1)
            if np.any((labels < 0) | (labels >= yp.shape[-1]) | (labels != np.floor(labels))):
                continue    # fit rejects such labels before any compiled loop
        out.append(case)
    return out


METRIC_CASES = _metric_cases()


def test_metric_cases_cover_every_engine_accuracy():
    assert {c["fn"] for c in METRIC_CASES} == {
        "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
        "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", METRIC_CASES, ids=lambda c: c["id"])
def test_engine_metric_matches_keras(case, dtype):
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    yp, yt = inputs["y_pred"].astype(dt), inputs["y_true"].astype(dt)
    total, count = _engine_metric(case["fn"], case["options"], yt, yp)
    expected = F.result(case, dtype, "values")
    assert count == yp.shape[0]
    assert total == pytest.approx(_per_sample_sum(expected, yp.shape[0]), rel=1e-14)


STREAM_ENGINE = {"BinaryAccuracy": "binary_accuracy", "Accuracy": "accuracy",
                 "CategoricalAccuracy": "categorical_accuracy",
                 "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
                 "TopKCategoricalAccuracy": "top_k_categorical_accuracy",
                 "SparseTopKCategoricalAccuracy": "sparse_top_k_categorical_accuracy",
                 "MeanSquaredError": "mean_squared_error", "MeanAbsoluteError": "mean_absolute_error",
                 "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
                 "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
                 "RootMeanSquaredError": "mean_squared_error"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in F.cases("stream") if c["fn"] in STREAM_ENGINE],
                         ids=lambda c: c["id"])
def test_engine_streaming_matches_keras(case, dtype):
    """Three batches (4, 4, 2; weights None, (N,), (N, 1), (N, T)) accumulated by the engine."""
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    fn = STREAM_ENGINE[case["fn"]]
    total = count = 0.0
    for i in range(3):
        yp = inputs[f"y_pred_{i}"].astype(dt)
        yt = inputs[f"y_true_{i}"].astype(dt)
        if yp.ndim == 1:
            yp, yt = yp[:, None], yt[:, None]
        w = inputs.get(f"sample_weight_{i}")
        if w is not None:
            w = w.astype(dt)
            if w.shape == (yp.shape[0], 1):
                w = np.broadcast_to(w, yp.shape[:2]) if yp.ndim == 3 else w[:, 0]
            w = np.ascontiguousarray(w)
        t, c = _engine_metric(fn, case["options"], yt, yp, w, weighted=w is not None)
        total, count = total + t, count + c
        result = total / count if count else 0.0
        if case["fn"] == "RootMeanSquaredError":
            result = np.sqrt(result)
        assert_keras_close(result, F.result(case, dtype, f"result_{i}"), "keras_losses", dtype,
                           err_msg=f"after batch {i}")


def test_the_metric_objects_stream_like_the_reference():
    """fastrnn.metrics objects also work on their own, in NumPy (as keras.metrics)."""
    rng = np.random.default_rng(0)
    yt, yp = rng.integers(0, 2, (6, 3)).astype(float), rng.uniform(0, 1, (6, 3))
    w = rng.uniform(0, 2, 6)
    ours, ref = metrics_module.BinaryAccuracy(threshold=0.4), M.BinaryAccuracy(threshold=0.4)
    for sl in (slice(0, 4), slice(4, 6)):
        ours.update_state(yt[sl], yp[sl], sample_weight=w[sl])
        ref.update_state(yt[sl], yp[sl], sample_weight=w[sl])
    assert ours.result() == pytest.approx(ref.result(), rel=1e-15)
    rmse = metrics_module.RootMeanSquaredError()
    assert rmse(yt, yp) == pytest.approx(np.sqrt(np.mean((yt - yp) ** 2)))
    ours.reset_state()
    assert ours.result() == 0.0


# ---------------------------------------------------------------------------
# compile(): what each string becomes (Keras 3's records)
# ---------------------------------------------------------------------------

def _records(kind):
    records = {}
    for rec in F.meta["resolve"][kind]:
        records.setdefault(rec["identifier"], []).append(rec)
    return records


@pytest.mark.parametrize("identifier", sorted(_records("metrics")))
def test_metric_strings_resolve_as_keras(identifier):
    for rec in _records("metrics")[identifier]:
        shapes = (rec["y_true_shape"], rec["y_pred_shape"])
        if "error" in rec:
            with pytest.raises(ValueError, match="Could not interpret metric identifier"):
                metrics_module.resolve(identifier, *shapes)
            continue
        if rec["cls"] not in metrics_module.__all__:
            with pytest.raises(ValueError, match="not available in fastrnn"):
                metrics_module.resolve(identifier, *shapes)
            continue
        metric = metrics_module.resolve(identifier, *shapes)
        assert (type(metric).__name__, metric.name) == (rec["cls"], rec["name"]), shapes
        for option, value in rec["config"].items():
            assert getattr(metric, option) == value
        assert metric._engine_spec() is not None          # every one runs in the engine


@pytest.mark.parametrize("identifier", sorted(_records("losses")))
def test_loss_strings_resolve_as_keras(identifier):
    for rec in _records("losses")[identifier]:
        shapes = (rec["y_true_shape"], rec["y_pred_shape"])
        if "error" in rec:
            with pytest.raises(ValueError, match="Could not interpret loss identifier"):
                losses_module.resolve(identifier, *shapes)
            continue
        loss = losses_module.resolve(identifier, *shapes)
        assert (type(loss).__name__, loss.name, loss._engine_name) == (
            rec["cls"], rec["name"], rec["fn"]), shapes


# ---------------------------------------------------------------------------
# Whole models against Keras's evaluate() and fit()
# ---------------------------------------------------------------------------

def _f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _classifier(units, activation):
    model = keras.Sequential([keras.Input((3, 2)), keras.layers.SimpleRNN(4),
                              keras.layers.Dense(units, activation=activation)])
    rng = np.random.default_rng(5)              # the fixture script's weights
    model.set_weights([_f32(0.5 * rng.standard_normal(w.shape)).astype(np.float32)
                       for w in model.get_weights()])
    return model


CLASSIFIERS = {
    "binary": (1, "sigmoid", "binary_crossentropy",
               lambda: ["accuracy", "acc", "mse", "mse", keras.metrics.BinaryAccuracy(),
                        keras.metrics.binary_accuracy, keras.metrics.MeanSquaredError(),
                        lambda yt, yp: yp * 0], ["mse"]),
    "sparse": (3, "softmax", "sparse_categorical_crossentropy",
               lambda: ["accuracy", "sparse_top_k_categorical_accuracy"], None),
    "categorical": (3, "softmax", "categorical_crossentropy", lambda: ["acc", "Accuracy"], None),
    "multilabel_bce": (3, "sigmoid", "binary_crossentropy", lambda: ["accuracy"], None),
    "crossentropy_sparse": (3, "softmax", "crossentropy", lambda: ["accuracy"], None),
    "crossentropy_binary": (1, "sigmoid", "ce", lambda: ["acc"], None),
}


@pytest.mark.parametrize("config", sorted(CLASSIFIERS))
def test_classifier_evaluate_and_history_match_keras(config):
    units, activation, loss, metrics, weighted = CLASSIFIERS[config]
    record = E2E[f"classify/{config}"]
    x = F.array("e2e/classify/x")
    y = F.array(f"e2e/classify/{config}/y_true")
    model = _classifier(units, activation)
    model.compile(optimizer="sgd", loss=loss, metrics=metrics(), weighted_metrics=weighted)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               F.array(f"e2e/classify/{config}/y_pred/float32"), rtol=2e-6,
                               atol=1e-7)
    result = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    expected = record["evaluate"]
    assert sorted(result) == sorted(expected)
    for name, value in expected.items():
        assert_keras_close(result[name], value, "keras_losses", "float32", err_msg=name)
    assert list(result) == model.metrics_names       # evaluate's list order
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y))
    assert sorted(history.history) == sorted(record["history_keys"])


def _sequence_model():
    model = keras.Sequential([keras.Input((3, 2)),
                              keras.layers.SimpleRNN(4, return_sequences=True),
                              keras.layers.Dense(1)])
    rng = np.random.default_rng(11)
    model.set_weights([_f32(0.5 * rng.standard_normal(w.shape)).astype(np.float32)
                       for w in model.get_weights()])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"], weighted_metrics=["mae"])
    return model


@pytest.mark.parametrize("key", sorted(k for k in E2E if k.startswith("plain/")))
def test_sequence_evaluate_with_temporal_weights_matches_keras(key):
    """A return_sequences model: per-step (N, T) weights, (N, 1) weights, none; batches of
    6 and 4; (N,) weights are an error in Keras 3 and here."""
    weight_name, batch = key[len("plain/evaluate_sw_"):].rsplit("_bs", 1)
    x, y = F.array("e2e/x"), F.array("e2e/y")
    w = None if weight_name == "none" else F.array(f"e2e/sw_{weight_name}")
    model = _sequence_model()
    expected = E2E[key]
    if "error" in expected:
        with pytest.raises(ValueError, match="sample_weight"):
            model.evaluate(x, y, batch_size=int(batch), sample_weight=w, verbose=0)
        return
    result = model.evaluate(x, y, batch_size=int(batch), sample_weight=w, verbose=0,
                            return_dict=True)
    assert sorted(result) == sorted(expected)
    for name, value in expected.items():
        assert_keras_close(result[name], value, "keras_losses", "float32", err_msg=name)


def test_evaluate_returns_like_keras():
    model = _sequence_model()
    x, y = F.array("e2e/x"), F.array("e2e/y")
    values = model.evaluate(x, y, verbose=0)
    assert isinstance(values, list) and len(values) == 3
    assert model.metrics_names == ["loss", "mae", "weighted_mae"]
    plain = keras.Sequential([keras.Input((3, 2)), keras.layers.SimpleRNN(2),
                              keras.layers.Dense(1)])
    plain.compile(loss="mse")
    assert isinstance(plain.evaluate(x, y[:, -1], verbose=0), float)   # no metrics: a scalar


def test_a_python_metric_sees_every_batch_and_matches_its_engine_twin():
    """A user function runs in NumPy per batch; the same function as an engine metric gives
    the same epoch value."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 4, 2))
    y = rng.standard_normal((37, 1))
    calls = []

    def my_mae(y_true, y_pred):
        calls.append(len(y_true))
        return np.mean(np.abs(y_true - y_pred), axis=-1)

    keras.set_random_seed(1)
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[my_mae, "mae"])
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert calls == [8, 8, 8, 8, 5] * 2
    np.testing.assert_allclose(history.history["my_mae"], history.history["mae"], rtol=1e-6)
    ev = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert ev["my_mae"] == pytest.approx(ev["mae"], rel=1e-6)


def test_metrics_accumulate_over_the_epoch_in_the_compiled_call():
    """fit's metric equals evaluate-style accumulation of the per-batch pre-update outputs."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20, 3, 2))
    y = (rng.uniform(size=(20, 1)) > 0.5).astype(float)
    keras.set_random_seed(2)
    model = keras.Sequential([keras.Input((3, 2), dtype="float64"), keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1, activation="sigmoid")])
    twin = keras.Sequential([keras.Input((3, 2), dtype="float64"), keras.layers.SimpleRNN(3),
                             keras.layers.Dense(1, activation="sigmoid")])
    twin.set_weights(model.get_weights())
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    twin.compile(optimizer="sgd", loss="binary_crossentropy")
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    correct = 0.0
    for start in range(0, 20, 6):
        xb, yb = x[start:start + 6], y[start:start + 6]
        correct += np.sum((twin.predict(xb, verbose=0) > 0.5) == yb)
        twin.fit(xb, yb, batch_size=6, epochs=1, verbose=0, shuffle=False)
    assert history.history["accuracy"][0] == pytest.approx(correct / 20, abs=1e-12)
    np.testing.assert_array_equal(model.params, twin.params)
