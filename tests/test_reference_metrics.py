"""fastrnn.reference.metrics against Keras 3 (recorded): values, streaming, names, evaluate()."""
import numpy as np
import pytest

from fastrnn.reference import losses as L
from fastrnn.reference import metrics as M
from keras_loss_fixtures import DTYPES, assert_keras_close, fixtures

F = fixtures()
E2E = F.meta["e2e"]["float32"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", F.cases("metric"), ids=lambda c: c["id"])
def test_metric_function_matches_keras(case, dtype):
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    actual = getattr(M, case["fn"])(inputs["y_true"].astype(dt), inputs["y_pred"].astype(dt),
                                    **case["options"])
    expected = F.result(case, dtype, "values")
    assert actual.shape == expected.shape
    assert actual.dtype == dt
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", F.cases("stream"), ids=lambda c: c["id"])
def test_streaming_matches_keras(case, dtype):
    """Three batches (sizes 4, 4, 2; weights None, (N,), (N, 1), (N, T) or zeros), then reset."""
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    cast = lambda a: None if a is None else a.astype(dt)
    metric = (M.Mean if case["fn"] == "Mean" else M.METRIC_CLASSES[case["fn"]])(
        dtype=dt, **case["options"])
    assert metric.name == case["keras"][dtype]["name"]
    for i in range(3):
        weight = cast(inputs.get(f"sample_weight_{i}"))
        if case["fn"] == "Mean":
            metric.update_state(inputs[f"values_{i}"], sample_weight=weight)
        else:
            metric.update_state(cast(inputs[f"y_true_{i}"]), cast(inputs[f"y_pred_{i}"]),
                                sample_weight=weight)
        result = metric.result()
        assert np.asarray(result).dtype == dt
        assert_keras_close(result, F.result(case, dtype, f"result_{i}"), "keras_losses", dtype,
                           err_msg=f"after batch {i}")
    metric.reset_state()
    assert metric.result() == F.result(case, dtype, "result_reset") == 0


def test_mean_semantics():
    mean = M.Mean()
    mean.update_state(np.array([1.0, 3.0]), sample_weight=np.zeros(2))
    assert mean.result() == 0                                 # count 0: 0, not NaN
    mean.update_state(np.array([[1.0, 3.0], [5.0, 7.0]]), sample_weight=np.array([[1.0, 0.0],
                                                                               [1.0, 1.0]]))
    # per-step weights: total += sum_n mean_t(v w), count += sum_n mean_t(w)
    assert mean.total == pytest.approx(0.5 + 6.0) and mean.count == pytest.approx(1.5)
    assert mean.result() == pytest.approx((1 + 5 + 7) / 3)


def test_wrapper_mask_is_a_zero_one_weight():
    metric = M.MeanAbsoluteError()
    y_true, y_pred = np.zeros((2, 3, 1)), np.arange(6.0).reshape(2, 3, 1)
    mask = np.array([[True, True, False], [True, False, False]])
    metric.update_state(y_true, y_pred, mask=mask)
    assert metric.result() == pytest.approx((0 + 1 + 3) / 3)


# ---------------------------------------------------------------------------
# compile() strings and history names
# ---------------------------------------------------------------------------

def _records(kind):
    records = {}
    for rec in F.meta["resolve"][kind]:
        records.setdefault(rec["identifier"], []).append(rec)
    return records


METRIC_RECORDS = _records("metrics")
LOSS_RECORDS = _records("losses")


@pytest.mark.parametrize("identifier", sorted(METRIC_RECORDS))
def test_resolve_metric_matches_keras(identifier):
    """Over 12 (y_true, y_pred) shape pairs: the class, its name and options, or the error."""
    implemented = 0
    for rec in METRIC_RECORDS[identifier]:
        shapes = (rec["y_true_shape"], rec["y_pred_shape"])
        if "error" in rec:
            with pytest.raises(ValueError) as info:
                M.resolve_metric(identifier, None, *shapes)
            assert str(info.value) in rec["error"]
            continue
        try:
            metric = M.resolve_metric(identifier, None, *shapes)
        except NotImplementedError:
            assert rec["cls"] not in M.METRIC_CLASSES       # only what Keras has and we lack
            continue
        implemented += 1
        assert (type(metric).__name__, metric.name) == (rec["cls"], rec["name"]), shapes
        for option, value in rec["config"].items():
            assert getattr(metric, option) == value
    if identifier.lower() in ("accuracy", "acc"):
        assert implemented == len(METRIC_RECORDS[identifier])


@pytest.mark.parametrize("identifier", sorted(LOSS_RECORDS))
def test_resolve_loss_matches_keras(identifier):
    for rec in LOSS_RECORDS[identifier]:
        shapes = (rec["y_true_shape"], rec["y_pred_shape"])
        if "error" in rec:
            with pytest.raises(ValueError) as info:
                M.resolve_loss(identifier, *shapes)
            assert str(info.value) in rec["error"]
        else:
            assert M.resolve_loss(identifier, *shapes) == rec["fn"], shapes


def test_accuracy_ignores_the_loss_like_keras_3():
    """Multi-label sigmoid outputs with binary cross-entropy get *categorical* accuracy."""
    metric = M.resolve_metric("accuracy", "binary_crossentropy", (8, 3), (8, 3))
    assert isinstance(metric, M.CategoricalAccuracy)
    config = E2E["classify/multilabel_bce"]
    y_true = F.array("e2e/classify/multilabel_bce/y_true")
    y_pred = F.array("e2e/classify/multilabel_bce/y_pred/float32")
    metric.update_state(y_true, y_pred)
    assert metric.result() == pytest.approx(config["evaluate"]["accuracy"])
    binary = M.BinaryAccuracy()
    binary.update_state(y_true, y_pred)
    assert binary.result() != pytest.approx(config["evaluate"]["accuracy"])


def _classification_metrics():
    """The metrics each recorded classification model was compiled with (see the script)."""
    return {
        "binary": (["accuracy", "acc", "mse", "mse", M.BinaryAccuracy(), M.binary_accuracy,
                    M.MeanSquaredError(), lambda y_true, y_pred: y_pred * 0], ["mse"]),
        "sparse": (["accuracy", "sparse_top_k_categorical_accuracy"], []),
        "categorical": (["acc", "Accuracy"], []),
        "multilabel_bce": (["accuracy"], []),
        "crossentropy_sparse": (["accuracy"], []),
        "crossentropy_binary": (["acc"], []),
    }


LOSS_OF = {"binary": "binary_crossentropy", "sparse": "sparse_categorical_crossentropy",
           "categorical": "categorical_crossentropy", "multilabel_bce": "binary_crossentropy",
           "crossentropy_sparse": "crossentropy", "crossentropy_binary": "ce"}


@pytest.mark.parametrize("config", sorted(_classification_metrics()))
def test_history_and_evaluate_match_keras(config):
    """Names (history keys, evaluate keys) and values of evaluate() from the recorded outputs."""
    metrics, weighted = _classification_metrics()[config]
    record = E2E[f"classify/{config}"]
    y_true = F.array(f"e2e/classify/{config}/y_true")
    y_pred = F.array(f"e2e/classify/{config}/y_pred/float32")
    objects = [M.resolve_metric(m, None, y_true.shape, y_pred.shape) for m in metrics]
    weighted_objects = [M.resolve_metric(m, None, y_true.shape, y_pred.shape) for m in weighted]
    names = [m.name for m in objects]
    weighted_names = [m.name for m in weighted_objects]
    assert M.history_names(names, weighted_names, validation=True) == record["history_keys"]
    expected = record["evaluate"]
    assert M.history_names(names, weighted_names) == sorted(expected)

    loss = M.resolve_loss(LOSS_OF[config], y_true.shape, y_pred.shape)
    assert_keras_close(L.loss_value(loss, y_true, y_pred), expected["loss"],
                       "keras_losses_vs_float32", np.float64)
    result_names = M.metric_result_names(names, weighted_names)
    for key, metric in zip(result_names, objects + weighted_objects):
        metric.update_state(y_true, y_pred)                   # one batch of 8, no weights
        assert_keras_close(metric.result(), expected[key], "keras_losses_vs_float32", np.float64,
                           err_msg=key)


# ---------------------------------------------------------------------------
# evaluate() of a return_sequences model: temporal weights, masks, batches
# ---------------------------------------------------------------------------

EVALUATE_KEYS = sorted(k for k in E2E if k.startswith(("plain/", "masked/")))


def reference_evaluate(x, y, y_pred, weight, batch_size, masked):
    """Keras's evaluate(): per batch loss and metrics, epoch loss weighted by batch size."""
    mask = np.any(x != 0.0, axis=-1) if masked else None    # the Masking layer's mask
    loss_tracker = M.Mean()
    mae = M.MeanAbsoluteError(name="mae")
    weighted_mae = M.MeanAbsoluteError(name="weighted_mae")
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        w = None if weight is None else weight[batch]
        m = None if mask is None else mask[batch]
        loss = L.loss_value("mean_squared_error", y[batch], y_pred[batch], w, m)
        loss_tracker.update_state(loss, sample_weight=len(y[batch]))
        mae.update_state(y[batch], y_pred[batch], mask=m)                    # metrics: no weights
        weighted_mae.update_state(y[batch], y_pred[batch], sample_weight=w, mask=m)
    return {"loss": loss_tracker.result(), "mae": mae.result(),
            "weighted_mae": weighted_mae.result()}


@pytest.mark.parametrize("key", EVALUATE_KEYS)
def test_evaluate_of_a_sequence_model_matches_keras(key):
    tag, rest = key.split("/")
    weight_name, batch = rest[len("evaluate_sw_"):].rsplit("_bs", 1)
    masked = tag == "masked"
    x = F.array("e2e/x_masked" if masked else "e2e/x")
    y = F.array("e2e/y")
    y_pred = F.array(f"e2e/{tag}/y_pred/float32")
    weight = None if weight_name == "none" else F.array(f"e2e/sw_{weight_name}")
    expected = E2E[key]
    if "error" in expected:                                   # (N,) weights, (N, T) losses
        assert weight.shape == (len(x),)
        with pytest.raises(ValueError):
            reference_evaluate(x, y, y_pred, weight, int(batch), masked)
        return
    actual = reference_evaluate(x, y, y_pred, weight, int(batch), masked)
    assert sorted(actual) == sorted(expected)
    for name, value in actual.items():
        assert_keras_close(value, expected[name], "keras_losses_vs_float32", np.float64, err_msg=name)


def test_mask_makes_the_epoch_loss_depend_on_the_batching():
    """With a mask, each batch normalises by its own valid count (as Keras does)."""
    assert E2E["masked/evaluate_sw_none_bs6"]["loss"] != pytest.approx(
        E2E["masked/evaluate_sw_none_bs4"]["loss"], rel=1e-3)
    assert E2E["plain/evaluate_sw_none_bs6"]["loss"] == pytest.approx(
        E2E["plain/evaluate_sw_none_bs4"]["loss"], rel=1e-6)
