"""Record Keras 3's answers for the utilities, schedules and callbacks fastrnn mirrors.

Run it in a throwaway environment that has Keras 3 and TensorFlow (the
time-series dataset of Keras is a ``tf.data.Dataset``); fastrnn's tests only
read the JSON files it writes and never import Keras::

    python -m venv keras-env && keras-env/bin/pip install keras jax jaxlib tensorflow-cpu
    KERAS_BACKEND=jax keras-env/bin/python tools/keras_fixtures/record_utils.py

Writes ``tests/fixtures/keras/{utils,schedules,callbacks}.json``.  Each case
records its inputs, then either the result (values, dtype, shape) or the
name of the exception Keras raised.
"""
import csv
import io
import json
import os
import sys
import tempfile
import types
import warnings

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                   "fixtures", "keras")


def encode(value):
    """JSON form of an array / list result: values, dtype and shape."""
    arr = np.asarray(value)
    if arr.dtype == object:
        return {"values": arr.tolist(), "dtype": "object", "shape": list(arr.shape)}
    return {"values": arr.tolist(), "dtype": str(arr.dtype), "shape": list(arr.shape)}


def attempt(fn):
    try:
        return {"result": encode(fn())}
    except Exception as e:  # the recorded fact is which exception Keras raises
        return {"error": type(e).__name__, "message": str(e)[:200]}


def pad_cases():
    seq3 = [[1], [2, 3], [4, 5, 6]]
    cases = [
        ("default", seq3, {}),
        ("value_minus_one", seq3, {"value": -1}),
        ("padding_post", seq3, {"padding": "post"}),
        ("maxlen_2", seq3, {"maxlen": 2}),
        ("maxlen_2_truncating_post", seq3, {"maxlen": 2, "truncating": "post"}),
        ("maxlen_4_post_post", [[1, 2, 3, 4, 5], [6]], {"maxlen": 4, "padding": "post",
                                                      "truncating": "post"}),
        ("float32_value_half", [[1.5, 2.25], [3.0]], {"dtype": "float32", "value": 0.5}),
        ("floats_to_int32", [[1.7, -2.7], [3.2]], {}),
        ("features", [np.ones((2, 3)).tolist(), [], np.arange(9).reshape(3, 3).tolist()],
         {"maxlen": 2, "dtype": "float64"}),
        ("empty_inner", [[], [1, 2]], {}),
        ("all_empty", [[], []], {}),
        ("maxlen_longer", seq3, {"maxlen": 5, "padding": "post", "value": 9}),
        ("array_2d", np.arange(6).reshape(2, 3).tolist(), {"maxlen": 2}),
        ("strings_object", [["a", "b"], ["c"]], {"dtype": "object", "value": "<pad>"}),
        ("maxlen_0_truncating_post", seq3, {"maxlen": 0, "truncating": "post"}),
        ("maxlen_0_truncating_pre", seq3, {"maxlen": 0}),
        ("empty_with_maxlen", [], {"maxlen": 3}),
        ("empty_without_maxlen", [], {}),
        ("bad_padding", seq3, {"padding": "middle"}),
        ("bad_truncating", [[1, 2, 3]], {"maxlen": 2, "truncating": "middle"}),
        ("string_value_int_dtype", seq3, {"value": "x"}),
        ("mismatched_features", [[[1, 2]], [[1, 2, 3]]], {}),
        ("int64_dtype", [[2**40], [1, 2]], {"dtype": "int64"}),
    ]
    out = []
    for name, seqs, kwargs in cases:
        dtype = kwargs.get("dtype")
        if dtype == "object":
            kwargs = dict(kwargs, dtype=object)
        rec = attempt(lambda: keras.utils.pad_sequences(seqs, **kwargs))
        out.append({"name": name, "sequences": seqs,
                    "kwargs": dict(kwargs, **({"dtype": "object"} if dtype == "object" else {})),
                    **rec})
    return out


def categorical_cases():
    cases = [
        ("basic", [0, 1, 2, 3], {"num_classes": 4}),
        ("column", [[0], [2], [1]], {}),
        ("matrix", [[0, 1], [2, 0]], {}),
        ("scalar", 2, {"num_classes": 4}),
        ("inferred", [1, 3], {}),
        ("num_classes_zero_infers", [1, 3], {"num_classes": 0}),
        ("float_labels", [1.0, 2.0], {}),
        ("bools", [True, False], {}),
        ("empty_with_classes", [], {"num_classes": 3}),
        ("trailing_one_3d", [[[1]], [[0]]], {}),
        ("more_classes", [0, 1], {"num_classes": 5}),
        ("negative_wraps_in_keras", [0, -1], {"num_classes": 3}),
        ("too_large", [0, 3], {"num_classes": 3}),
        ("fractional_truncated_in_keras", [0.7, 1.2], {}),
        ("empty_without_classes", [], {}),
    ]
    return [{"name": n, "x": x, "kwargs": k,
             **attempt(lambda: keras.utils.to_categorical(x, **k))} for n, x, k in cases]


def normalize_cases():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 4)).round(3)
    cases = [
        ("rows_l2", m, {}),
        ("axis_1", m, {"axis": 1}),
        ("order_1", m, {"order": 1}),
        ("zero_row", np.array([[0.0, 0.0], [3.0, 4.0]]), {}),
        ("vector", np.array([3.0, 4.0]), {}),
        ("ints", np.array([[1, 2], [2, 2]]), {}),
        ("three_d_axis_1", rng.normal(size=(2, 3, 2)).round(3), {"axis": 1}),
        ("square_axis_0", np.array([[1.0, 2.0], [3.0, 4.0]]), {"axis": 0}),
    ]
    return [{"name": n, "x": x.tolist(), "x_dtype": str(x.dtype), "kwargs": k,
             **attempt(lambda: keras.utils.normalize(x, **k))} for n, x, k in cases]


def timeseries_cases():
    data100 = np.arange(100)
    rng = np.random.default_rng(1)
    multi = rng.normal(size=(50, 3)).astype("float32").round(3)
    multi_t = rng.normal(size=(50, 2)).round(3)
    series = np.arange(60, dtype="float64") * 0.5
    cases = [
        ("docs_example_1", data100, data100 * 10,
         dict(sequence_length=10, sampling_rate=2, sequence_stride=3, batch_size=16)),
        ("no_targets_unbatched", data100[:20], None, dict(sequence_length=5, batch_size=None)),
        ("multi_start_end", multi, multi_t,
         dict(sequence_length=4, batch_size=7, start_index=5, end_index=40)),
        ("short_targets", np.arange(30), np.arange(20) + 100,
         dict(sequence_length=5, batch_size=8)),
        ("too_long_windows", np.arange(10), None, dict(sequence_length=20, batch_size=4)),
        ("list_floats", [0.5 * i for i in range(12)], [float(i) for i in range(12)],
         dict(sequence_length=3, batch_size=4)),
        ("list_ints", list(range(12)), None, dict(sequence_length=3, batch_size=5)),
        ("docs_example_2", series[:-10], series[10:], dict(sequence_length=10)),
        ("stride_rate", np.arange(40), None,
         dict(sequence_length=3, sequence_stride=4, sampling_rate=3, batch_size=3)),
        ("start_only", np.arange(30), np.arange(30) * 2,
         dict(sequence_length=4, start_index=7, batch_size=5)),
        ("unbatched_targets", np.arange(8), np.arange(8) * -1,
         dict(sequence_length=3, batch_size=None)),
    ]
    errors = [
        ("sampling_rate_zero", np.arange(10), None, dict(sequence_length=2, sampling_rate=0)),
        ("stride_too_long", np.arange(10), None, dict(sequence_length=2, sequence_stride=10)),
        ("start_too_late", np.arange(10), None, dict(sequence_length=2, start_index=10)),
        ("end_before_start", np.arange(10), None,
         dict(sequence_length=2, start_index=5, end_index=5)),
        ("end_too_late", np.arange(10), None, dict(sequence_length=2, end_index=10)),
        ("rate_too_long", np.arange(10), None, dict(sequence_length=2, sampling_rate=10)),
    ]
    out = []
    for name, data, targets, kwargs in cases:
        ds = keras.utils.timeseries_dataset_from_array(data, targets, **kwargs)
        batches = []
        for item in ds.as_numpy_iterator():
            if targets is None:
                batches.append({"x": encode(item)})
            else:
                batches.append({"x": encode(item[0]), "y": encode(item[1])})
        out.append({"name": name, "data": np.asarray(data).tolist() if isinstance(
            data, np.ndarray) else data, "data_is_list": not isinstance(data, np.ndarray),
            "data_dtype": str(np.asarray(data).dtype),
            "targets": None if targets is None else (
                targets.tolist() if isinstance(targets, np.ndarray) else targets),
            "targets_dtype": None if targets is None else str(np.asarray(targets).dtype),
            "kwargs": kwargs, "batches": batches})
    # shuffled: the same windows, TensorFlow's order (only the set is comparable)
    ds = keras.utils.timeseries_dataset_from_array(data100, data100 * 10, sequence_length=5,
                                                   sequence_stride=7, batch_size=4,
                                                   shuffle=True, seed=3)
    firsts = sorted(int(x[0]) for xb, _ in ds.as_numpy_iterator() for x in xb)
    out.append({"name": "shuffled_window_starts", "kwargs": dict(
        sequence_length=5, sequence_stride=7, batch_size=4, shuffle=True, seed=3),
        "window_starts_sorted": firsts, "batches_per_pass": len(list(ds))})
    for name, data, targets, kwargs in errors:
        try:
            keras.utils.timeseries_dataset_from_array(data, targets, **kwargs)
            rec = {"error": None}
        except Exception as e:
            rec = {"error": type(e).__name__, "message": str(e)[:200]}
        out.append({"name": name, "data": data.tolist(), "data_dtype": str(data.dtype),
                    "data_is_list": False, "targets": None, "kwargs": kwargs, **rec})
    return out


STEPS = [0, 1, 2, 5, 9, 10, 11, 19, 20, 21, 50, 99, 100, 101, 109, 110, 111, 150, 1000, 5000]


def schedule_cases():
    S = keras.optimizers.schedules
    specs = [
        ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.96)),
        ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.96,
                                  staircase=True)),
        ("ExponentialDecay", dict(initial_learning_rate=0.01, decay_steps=7, decay_rate=1.5)),
        ("PiecewiseConstantDecay", dict(boundaries=[100, 110], values=[1.0, 0.5, 0.1])),
        ("PiecewiseConstantDecay", dict(boundaries=[10], values=[0.3, 0.03])),
        ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=100,
                                 end_learning_rate=0.01, power=0.5)),
        ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=100)),
        ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=20,
                                 end_learning_rate=0.001, power=2.0, cycle=True)),
        ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
        ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,
                                  staircase=True)),
        ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100)),
        ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.1)),
        ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=100, warmup_target=0.1,
                             warmup_steps=20)),
        ("CosineDecay", dict(initial_learning_rate=0.01, decay_steps=100, alpha=0.2,
                             warmup_target=0.1, warmup_steps=10)),
        ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=20)),
        ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=20,
                                     t_mul=1.0, m_mul=0.5, alpha=0.1)),
    ]
    out = []
    for cls, kwargs in specs:
        sched = getattr(S, cls)(**kwargs)
        values = [float(np.asarray(sched(step))) for step in STEPS]
        cfg = sched.get_config()
        out.append({"class": cls, "kwargs": kwargs, "steps": STEPS, "values": values,
                    "config": cfg, "serialized": S.serialize(sched)})
    errors = [
        ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=0, decay_rate=0.9)),
        ("PiecewiseConstantDecay", dict(boundaries=[1, 2], values=[1.0, 0.5])),
        ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=-1)),
    ]
    for cls, kwargs in errors:
        try:
            getattr(S, cls)(**kwargs)
            rec = {"error": None}
        except Exception as e:
            rec = {"error": type(e).__name__}
        out.append({"class": cls, "kwargs": kwargs, **rec})
    return out


class FakeModel:
    """What the callbacks touch: optimizer, weights, stop_training, save."""

    def __init__(self, lr=0.01):
        self.optimizer = keras.optimizers.SGD(learning_rate=lr)
        self.stop_training = False
        self.value = 0
        self.saved = []
        self.restored = None
        self.metrics = []
        self.metrics_names = []

    def get_weights(self):
        return [np.array([self.value])]

    def set_weights(self, weights):
        self.restored = int(weights[0][0])

    def save(self, filepath, overwrite=True):
        self.saved.append(filepath)

    def save_weights(self, filepath, overwrite=True):
        self.saved.append(filepath)


def drive(callback, series, monitor, model=None):
    """Run a callback through scripted epochs; what it did, epoch by epoch."""
    model = model or FakeModel()
    callback.set_model(model)
    callback.set_params({"epochs": len(series), "steps": 1, "verbose": 0})
    callback.on_train_begin({})
    epochs, lrs, logged = [], [], []
    for epoch, value in enumerate(series):
        model.value = epoch
        callback.on_epoch_begin(epoch, {})
        logs = {"loss": 1.0 + epoch, monitor: value} if monitor != "loss" else {"loss": value}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            callback.on_epoch_end(epoch, logs)
        epochs.append(epoch)
        lrs.append(float(np.asarray(model.optimizer.learning_rate)))
        logged.append({k: v for k, v in logs.items()})
        if model.stop_training:
            break
    callback.on_train_end({})
    return {"epochs_run": epochs, "learning_rates": lrs, "logs": logged,
            "saved": model.saved, "restored": model.restored}


def callback_cases():
    C = keras.callbacks
    out = {"early_stopping": [], "reduce_lr": [], "checkpoint": [], "scheduler": [],
           "csv": []}
    val = [1.0, 0.8, 0.81, 0.79, 0.795, 0.9, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75]
    acc = [0.5, 0.6, 0.6, 0.65, 0.64, 0.63, 0.62, 0.7, 0.69, 0.68]
    es = [
        ("patience_2", dict(patience=2), "val_loss", val),
        ("min_delta", dict(patience=1, min_delta=0.05), "val_loss", val),
        ("baseline", dict(patience=3, baseline=0.75), "val_loss", val),
        ("start_from_epoch", dict(patience=1, start_from_epoch=4), "val_loss", val),
        ("restore_best", dict(patience=2, restore_best_weights=True), "val_loss", val),
        ("max_mode_acc", dict(monitor="val_accuracy", patience=2, mode="max"),
         "val_accuracy", acc),
        ("baseline_never_beaten", dict(patience=2, baseline=0.5, restore_best_weights=True),
         "val_loss", val),
    ]
    for name, kwargs, monitor, series in es:
        cb = C.EarlyStopping(**kwargs)
        rec = drive(cb, series, monitor)
        out["early_stopping"].append({"name": name, "kwargs": kwargs, "monitor": monitor,
                                      "series": series, "epochs_run": rec["epochs_run"],
                                      "stopped_epoch": cb.stopped_epoch,
                                      "restored": rec["restored"]})
    rl = [
        ("defaults_patience_2", dict(patience=2), "val_loss", val),
        ("factor_half_cooldown", dict(patience=1, factor=0.5, cooldown=2), "val_loss", val),
        ("min_lr", dict(patience=1, factor=0.1, min_lr=0.0005), "val_loss", val),
        ("max_mode", dict(monitor="val_accuracy", mode="max", patience=1, factor=0.5),
         "val_accuracy", acc),
        ("min_delta_big", dict(patience=1, min_delta=0.05, factor=0.2), "val_loss", val),
    ]
    for name, kwargs, monitor, series in rl:
        cb = C.ReduceLROnPlateau(**kwargs)
        rec = drive(cb, series, monitor)
        out["reduce_lr"].append({"name": name, "kwargs": kwargs, "monitor": monitor,
                                 "series": series, **{k: rec[k] for k in (
                                     "epochs_run", "learning_rates", "logs")}})
    ck = [
        ("every_epoch", dict(filepath="ck-{epoch:02d}.keras"), "val_loss", val[:5]),
        ("best_only", dict(filepath="best-{epoch:02d}-{val_loss:.2f}.keras",
                           save_best_only=True), "val_loss", val),
        ("best_only_threshold", dict(filepath="best.keras", save_best_only=True,
                                     initial_value_threshold=0.75), "val_loss", val),
        ("best_only_max", dict(filepath="acc-{epoch}.keras", save_best_only=True,
                               monitor="val_accuracy", mode="max"), "val_accuracy", acc),
        ("weights_only", dict(filepath="w-{epoch:03d}-{loss:.3f}.weights.h5",
                              save_weights_only=True), "val_loss", val[:3]),
    ]
    for name, kwargs, monitor, series in ck:
        cb = C.ModelCheckpoint(**kwargs)
        rec = drive(cb, series, monitor)
        out["checkpoint"].append({"name": name, "kwargs": kwargs, "monitor": monitor,
                                  "series": series, "saved": rec["saved"]})

    def step_down(epoch, lr):
        return lr if epoch < 3 else lr * 0.5

    def by_epoch(epoch):
        return 0.1 / (epoch + 1)

    for name, fn in (("two_args", step_down), ("one_arg", by_epoch)):
        cb = C.LearningRateScheduler(fn)
        rec = drive(cb, [1.0] * 6, "loss", FakeModel(lr=0.02))
        out["scheduler"].append({"name": name, "learning_rates": rec["learning_rates"],
                                 "logs": rec["logs"]})
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs, rows in (
                ("plain", {}, [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.25,
                                                                  "val_loss": 0.125}]),
                ("semicolon", {"separator": ";"}, [{"b": 1.5, "a": 2.0},
                                                   {"b": 0.1, "a": 1e-7}]),
                ("array_value", {}, [{"loss": 0.5, "v": np.array([1.0, 2.0])}])):
            path = os.path.join(tmp, name + ".csv")
            cb = C.CSVLogger(path, **kwargs)
            model = FakeModel()
            cb.set_model(model)
            cb.on_train_begin({})
            for epoch, logs in enumerate(rows):
                cb.on_epoch_end(epoch, dict(logs))
            cb.on_train_end({})
            with open(path, "rb") as f:
                text = f.read().decode()
            # appending a second run to the same file
            cb2 = C.CSVLogger(path, append=True, **kwargs)
            cb2.set_model(model)
            cb2.on_train_begin({})
            cb2.on_epoch_end(0, dict(rows[0]))
            cb2.on_train_end({})
            with open(path, "rb") as f:
                appended = f.read().decode()
            out["csv"].append({"name": name, "kwargs": kwargs,
                               "rows": [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                         for k, v in r.items()} for r in rows],
                               "array_keys": [k for k, v in rows[0].items()
                                              if isinstance(v, np.ndarray)],
                               "text": text, "appended": appended})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {"keras": keras.__version__, "backend": keras.backend.backend(),
            "numpy": np.__version__}
    files = {
        "utils.json": {"meta": meta, "pad_sequences": pad_cases(),
                       "to_categorical": categorical_cases(),
                       "normalize": normalize_cases(), "timeseries": timeseries_cases()},
        "schedules.json": {"meta": meta, "schedules": schedule_cases()},
        "callbacks.json": {"meta": meta, **callback_cases()},
    }
    for name, content in files.items():
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(content, f, indent=1, sort_keys=True)
            f.write("\n")
        print("wrote", name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    sys.exit(main())
