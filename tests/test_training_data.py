"""fit / evaluate / predict over every kind of data, with sample and class weights.

- generators, iterables, PyDataset, the timeseries dataset and a
  tf.data-shaped object train on the compiled engine one batch per call and
  give the array path's weights bit for bit;
- Keras's steps_per_epoch rules, running out of data, generators that raise
  or yield malformed batches;
- per-sample, per-step (temporal) and class weights: Keras's reduction, and a
  weight of 0 on a step is as if that step's loss did not exist;
- sparse labels are checked before any compiled loop;
- the fused sigmoid/softmax output: gradients by finite differences, and
  predict still returns probabilities.
"""
import math
import warnings

import numpy as np
import pytest

import fastrnn as keras
from finite_diff import check_gradient

B = 8


def _model(units=1, activation=None, seq=False, dtype="float64", seed=0):
    keras.set_random_seed(seed)
    return keras.Sequential([keras.Input((5, 2), dtype=dtype),
                             keras.layers.SimpleRNN(6, return_sequences=seq),
                             keras.layers.Dense(units, activation=activation)])


def _data(n=30, units=1, seq=False, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5, 2))
    y = rng.standard_normal((n, 5, units) if seq else (n, units))
    return x, y


def _batches(x, y=None, w=None, batch_size=B):
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        if y is None:
            yield x[sl]
        else:
            yield (x[sl], y[sl]) if w is None else (x[sl], y[sl], w[sl])


def _trained(data, epochs=2, **fit):
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(data, epochs=epochs, verbose=0, **fit)
    return model, history


def _array_baseline(x, y, w=None, epochs=2, batch_size=B):
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, sample_weight=w, batch_size=batch_size, epochs=epochs, verbose=0,
                        shuffle=False)
    return model, history


# ---------------------------------------------------------------------------
# every source gives the array path's numbers, bit for bit
# ---------------------------------------------------------------------------

class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, w=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.w = x, y, w
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / B)

    def __getitem__(self, i):
        sl = slice(i * B, (i + 1) * B)
        return (self.x[sl], self.y[sl]) if self.w is None else (self.x[sl], self.y[sl],
                                                                   self.w[sl])

    def on_epoch_end(self):
        self.epochs_ended += 1


class ReIterable:
    """Any iterable of batches (re-iterated every epoch)."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __iter__(self):
        return _batches(*self.arrays)


class DatasetV2:
    """Looks like a tf.data.Dataset to the adapter (class name and module), without TF."""

    __module__ = "tensorflow.python.data.ops.dataset_ops"

    def __init__(self, *arrays):
        self.arrays = arrays

    def as_numpy_iterator(self):
        return _batches(*self.arrays)

    def cardinality(self):
        return math.ceil(len(self.arrays[0]) / B)


def _endless(x, y, w=None):
    while True:
        yield from _batches(x, y, w)


SOURCES = {
    "PyDataset": lambda x, y, w: (Batches(x, y, w), {}),
    "iterable": lambda x, y, w: (ReIterable(x, y) if w is None else ReIterable(x, y, w), {}),
    "tf.data": lambda x, y, w: (DatasetV2(x, y) if w is None else DatasetV2(x, y, w), {}),
    "endless generator": lambda x, y, w: (_endless(x, y, w), {"steps_per_epoch": 4}),
}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_source_trains_like_the_arrays_bit_for_bit(source, weighted):
    x, y = _data()
    w = np.random.default_rng(2).uniform(0, 2, len(x)) if weighted else None
    expected, expected_history = _array_baseline(x, y, w)
    data, kwargs = SOURCES[source](x, y, w)
    model, history = _trained(data, **kwargs)
    np.testing.assert_array_equal(model.params, expected.params)
    assert history.history == expected_history.history


def test_a_generator_gives_the_array_weights_bit_for_bit():
    """The issue's test: one epoch from a plain generator == the array path (run_epoch)."""
    x, y = _data()
    expected, _ = _array_baseline(x, y, epochs=1)
    model, _ = _trained(_batches(x, y), epochs=1)
    np.testing.assert_array_equal(model.params, expected.params)


def test_pydataset_epoch_hooks_are_called():
    x, y = _data()
    data = Batches(x, y)
    _trained(data, epochs=3)
    assert data.epochs_ended == 3


def test_timeseries_dataset_trains():
    series = np.sin(np.linspace(0, 20, 200))[:, None]
    data = keras.utils.timeseries_dataset_from_array(series[:-5], series[5:, 0], sequence_length=5,
                                                     batch_size=16)
    model = keras.Sequential([keras.layers.SimpleRNN(4), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(data, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and model.input_shape == (None, 5, 1)
    windows = sum(len(b[0]) for b in data)
    assert next(iter(data))[0].shape == (16, 5, 1)
    assert model.predict(data, verbose=0).shape == (windows, 1)
    assert np.isfinite(model.evaluate(data, verbose=0))


def test_evaluate_and_predict_from_batches_equal_the_arrays():
    x, y = _data()
    model, _ = _array_baseline(x, y)
    ev = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    ev_gen = model.evaluate(_batches(x, y), verbose=0, return_dict=True)
    assert ev_gen == pytest.approx(ev, rel=1e-12)
    np.testing.assert_array_equal(model.predict(_batches(x, y), verbose=0),
                                  model.predict(x, verbose=0))
    np.testing.assert_array_equal(model.predict(DatasetV2(x), verbose=0), model.predict(x, verbose=0))


def test_validation_from_a_generator_and_a_pydataset():
    x, y = _data()
    xv, yv = _data(12, seed=5)
    model, history = _array_baseline(x, y)
    m1 = _model()
    m1.compile(optimizer="adam", loss="mse", metrics=["mae"])
    h1 = m1.fit(x, y, batch_size=B, epochs=2, verbose=0, shuffle=False,
                validation_data=_endless(xv, yv), validation_steps=2)
    m2 = _model()
    m2.compile(optimizer="adam", loss="mse", metrics=["mae"])
    h2 = m2.fit(x, y, batch_size=B, epochs=2, verbose=0, shuffle=False,
                validation_data=Batches(xv, yv))
    assert h1.history["val_loss"] == pytest.approx(h2.history["val_loss"], rel=1e-12)
    assert set(h1.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert h1.history["loss"] == history.history["loss"]


# ---------------------------------------------------------------------------
# steps_per_epoch, running out, bad generators
# ---------------------------------------------------------------------------

def test_steps_per_epoch_takes_the_next_batches_of_a_generator():
    """Two epochs of 2 steps from one generator == one epoch of 4 batches, the same weights."""
    x, y = _data(32)
    one, _ = _array_baseline(x, y, epochs=1)
    model, history = _trained(_batches(x, y), epochs=2, steps_per_epoch=2)
    np.testing.assert_array_equal(model.params, one.params)
    assert len(history.history["loss"]) == 2


def test_a_used_up_generator_stops_training_with_keras_warning():
    x, y = _data()
    with pytest.warns(UserWarning, match="ran out of data"):
        model, history = _trained(_batches(x, y), epochs=3)
    assert len(history.history["loss"]) == 1


def test_an_empty_generator_is_an_error():
    model = _model()
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="no batches"):
        model.fit(iter(()), verbose=0)


def test_a_generator_that_raises_leaves_the_last_good_weights():
    x, y = _data()

    def failing():
        yield from list(_batches(x, y))[:2]
        raise RuntimeError("disk on fire")

    expected, _ = _array_baseline(x[:2 * B], y[:2 * B], epochs=1)
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.fit(failing(), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.params, expected.params)


@pytest.mark.parametrize("bad, match", [
    (lambda x, y: x, "x alone"),
    (lambda x, y: (x, y, None, None), "4 elements"),
    (lambda x, y: {"x": x, "y": y}, "dict"),
    (lambda x, y: (x[:, :, :1], y), "features"),
    (lambda x, y: (x, y[:3]), "samples"),
    (lambda x, y: (x, np.full_like(y, np.nan)), "NaN"),
    (lambda x, y: (x, y, -np.ones(len(x))), "negative"),
    (lambda x, y: (x, y, np.ones((len(x), 3))), "sample_weight"),
    (lambda x, y: ("abc", y), "x"),
])
def test_a_malformed_batch_is_a_clear_error_naming_it(bad, match):
    x, y = _data()
    batches = list(_batches(x, y))
    batches[2] = bad(*batches[2][:2])
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises((ValueError, TypeError), match=match) as info:
        model.fit(iter(batches), epochs=1, verbose=0)
    assert "batch 2" in str(info.value)


def test_generator_arguments_keras_refuses():
    x, y = _data()
    model = _model()
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="y must not be passed"):
        model.fit(_batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="sample_weight must not be passed"):
        model.fit(_batches(x, y), sample_weight=np.ones(len(x)), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(_batches(x, y), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(_batches(x, y), validation_split=0.2, verbose=0)
    with pytest.raises(TypeError, match="x must be"):
        model.fit(3.5j, verbose=0)


# ---------------------------------------------------------------------------
# sample, temporal and class weights
# ---------------------------------------------------------------------------

def test_temporal_weight_zero_is_a_step_that_does_not_exist():
    """Weight 0 on a step: its target can be anything (bit-identical training), its rows
    get no gradient, and the loss is Keras's sum(w * loss) / (N * T) over the rest."""
    x, y = _data(seq=True)
    w = np.random.default_rng(3).uniform(0.5, 2, (len(x), 5))
    w[:, 3] = 0
    w[::4, 0] = 0
    garbage = y.copy()
    garbage[w == 0] = 1e6
    models = []
    for targets in (y, garbage):
        model = _model(seq=True)
        model.compile(optimizer="adam", loss="mse", weighted_metrics=["mae"])
        history = model.fit(x, targets, sample_weight=w, batch_size=B, epochs=3, verbose=0)
        models.append((model, history))
    np.testing.assert_array_equal(models[0][0].params, models[1][0].params)
    assert models[0][1].history == models[1][1].history
    model = models[0][0]
    pred = model.predict(x, verbose=0)
    per_step = ((pred - y) ** 2).mean(-1)
    # per batch sum(w * loss) / (batch * T), zero-weight steps included in the count;
    # the epoch value weighs the batches by their sizes
    sizes = [8, 8, 8, 6]
    expected = sum((per_step[i:i + 8] * w[i:i + 8]).sum() / (n * 5)
                   * n for i, n in zip(range(0, 30, 8), sizes)) / 30
    assert model.evaluate(x, y, sample_weight=w, batch_size=B, verbose=0)[0] == pytest.approx(
        expected, rel=1e-10)
    model._loss_and_gradients(x.copy(), y.reshape(30, 5, 1).copy(), w.copy())
    grads_y = model.grads.copy()
    model._loss_and_gradients(x.copy(), garbage.reshape(30, 5, 1).copy(), w.copy())
    np.testing.assert_array_equal(model.grads, grads_y)


def test_per_sample_weights_of_a_sequence_output():
    """(N, 1) weights weigh every step of a sample; (N,) is Keras 3's error."""
    x, y = _data(seq=True)
    w = np.random.default_rng(4).uniform(0, 2, len(x))
    model = _model(seq=True)
    model.compile(optimizer="sgd", loss="mse")
    a = model.evaluate(x, y, sample_weight=w[:, None], verbose=0)
    b = model.evaluate(x, y, sample_weight=np.repeat(w[:, None], 5, axis=1), verbose=0)
    assert a == b
    with pytest.raises(ValueError, match=r"sample_weight has shape \(30,\)"):
        model.evaluate(x, y, sample_weight=w, verbose=0)


def test_weighted_loss_follows_keras_reduction():
    x, y = _data()
    w = np.random.default_rng(5).uniform(0, 2, len(x))
    model = _model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mse"], weighted_metrics=["mse"])
    result = model.evaluate(x, y, sample_weight=w, batch_size=len(x), verbose=0,
                            return_dict=True)
    err = ((model.predict(x, verbose=0) - y) ** 2)[:, 0]
    assert result["loss"] == pytest.approx((err * w).sum() / len(x), rel=1e-12)   # / count
    assert result["weighted_mse"] == pytest.approx((err * w).sum() / w.sum(), rel=1e-12)
    assert result["mse"] == pytest.approx(err.mean(), rel=1e-12)              # unweighted


def test_validation_data_with_weights():
    x, y = _data()
    xv, yv = _data(10, seed=7)
    wv = np.random.default_rng(6).uniform(0, 2, 10)
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(xv, yv, wv))
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(xv, yv, sample_weight=wv, verbose=0), rel=1e-12)


def test_validation_split_splits_the_weights_too():
    x, y = _data()
    w = np.random.default_rng(8).uniform(0, 2, len(x))
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, sample_weight=w, epochs=1, verbose=0, validation_split=0.2)
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[24:], y[24:], sample_weight=w[24:], verbose=0), rel=1e-12)


@pytest.mark.parametrize("labels", ["sparse", "one_hot"])
def test_class_weight_is_sample_weight_by_class(labels):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((30, 5, 2))
    classes = rng.integers(0, 3, 30)
    y = classes.astype(float) if labels == "sparse" else np.eye(3)[classes]
    loss = "sparse_categorical_crossentropy" if labels == "sparse" else "categorical_crossentropy"
    cw = {0: 0.5, 1: 2.0}                        # class 2: Keras's default 1
    results = []
    for kwargs in ({"class_weight": cw},
                   {"sample_weight": np.array([cw.get(c, 1.0) for c in classes])}):
        model = _model(3, "softmax")
        model.compile(optimizer="adam", loss=loss, weighted_metrics=["accuracy"])
        results.append((model, model.fit(x, y, batch_size=B, epochs=2, verbose=0,
                                         shuffle=False, **kwargs)))
    np.testing.assert_array_equal(results[0][0].params, results[1][0].params)
    assert results[0][1].history == results[1][1].history


def test_class_weight_errors():
    x, y = _data()
    yc = (y > 0).astype(float)
    model = _model(1, "sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="negative"):
        model.fit(x, yc, class_weight={0: 1.0, 1: -2.0}, verbose=0)
    with pytest.raises(ValueError, match="class indices"):
        model.fit(x, yc, class_weight={"zero": 1.0}, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(x, yc, class_weight={0: np.nan}, verbose=0)
    with pytest.raises(ValueError, match="dict"):
        model.fit(x, yc, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="at the same time"):
        model.fit(x, yc, class_weight={0: 1.0}, sample_weight=np.ones(30), verbose=0)
    seq = _model(1, "sigmoid", seq=True)
    seq.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="per-step"):
        seq.fit(x, np.zeros((30, 5, 1)), class_weight={0: 1.0}, verbose=0)


# ---------------------------------------------------------------------------
# labels, fusion, gradients
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad, what", [(3.0, "3"), (-1.0, "-1"), (1.5, "1.5")])
def test_sparse_labels_are_checked_before_training(bad, what):
    x, _ = _data()
    y = np.random.default_rng(10).integers(0, 3, 30).astype(float)
    y[17] = bad
    model = _model(3, "softmax")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"y\[17\] = {what}.*\[0, 3\)"):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(x, y, verbose=0)


def test_ignore_class_labels_pass_the_check():
    x, _ = _data(seq=True)
    y = np.random.default_rng(11).integers(0, 3, (30, 5)).astype(float)
    y[:, :2] = -1                                 # padding steps
    model = _model(3, "softmax", seq=True)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("units, activation, loss, labels", [
    (1, "sigmoid", "binary_crossentropy", "binary"),
    (3, "sigmoid", "binary_crossentropy", "multi"),
    (4, "softmax", "categorical_crossentropy", "one_hot"),
    (4, "softmax", "sparse_categorical_crossentropy", "sparse"),
    (4, "softmax", keras.losses.CategoricalCrossentropy(label_smoothing=0.2), "one_hot"),
])
@pytest.mark.parametrize("seq", [False, True])
def test_fused_output_gradients_match_finite_differences(units, activation, loss, labels, seq):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 5, 2))
    lead = (6, 5) if seq else (6,)
    y = {"binary": lambda: rng.integers(0, 2, lead + (1,)).astype(float),
         "multi": lambda: rng.integers(0, 2, lead + (3,)).astype(float),
         "one_hot": lambda: np.eye(4)[rng.integers(0, 4, lead)],
         "sparse": lambda: rng.integers(0, 4, lead + (1,)).astype(float)}[labels]()
    w = rng.uniform(0.2, 2, lead)
    model = _model(units, activation, seq=seq)
    model.compile(optimizer="sgd", loss=loss)
    model.evaluate(x, y, verbose=0)               # resolves the loss for these shapes
    assert model._runner().trainer(model._loss_fn, model.optimizer).fused
    model._loss_and_gradients(x, y, w)
    check_gradient(lambda: model._loss_and_gradients(x, y, w), model.params,
                   model.grads.copy(), 1e-6, name="params")


def test_predict_after_a_fused_loss_still_gives_probabilities():
    x, y = _data()
    model = _model(3, "softmax")
    before = model.predict(x, verbose=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    yc = np.eye(3)[np.argmax(y.repeat(3, 1) + np.arange(3), -1)]
    model.evaluate(x, yc, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    np.testing.assert_allclose(before.sum(-1), 1, rtol=1e-12)


def test_a_linear_output_with_binary_crossentropy_is_clipped_not_nan():
    """Probabilities outside [0, 1] (a linear layer) with from_logits=False: Keras clips
    to [1e-7, 1 - 1e-7]; the loss stays finite and training does not produce NaN."""
    x, y = _data()
    yc = (y > 0).astype(float)
    model = _model()
    model.set_weights([w * 30 for w in model.get_weights()])   # outputs far outside [0, 1]
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, yc, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert max(history.history["loss"]) <= -np.log(1e-7) + 1e-6


def test_keras_tutorial_classification_runs_unchanged():
    """The usual tutorial shape: sigmoid output, binary_crossentropy, metrics=['accuracy']."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((64, 10, 1)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")
    keras.set_random_seed(0)
    model = keras.Sequential([keras.layers.SimpleRNN(8, input_shape=(10, 1)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["accuracy"][-1] > 0.8
    loss, acc = model.evaluate(x, y, verbose=0)
    assert 0 <= acc <= 1 and loss < history.history["loss"][0]


def test_verbose_lines_show_the_metrics(capsys):
    x, y = _data()
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(x, y, epochs=1, verbose=2, validation_split=0.2)
    line = capsys.readouterr().out.strip()
    assert line.startswith("Epoch 1/1") and " - loss: " in line and " - mae: " in line
    assert " - val_loss: " in line and " - val_mae: " in line
    model.evaluate(x, y, verbose=2)
    assert capsys.readouterr().out.strip().startswith("loss: ")


def test_no_tensorflow_import():
    import sys
    assert "tensorflow" not in sys.modules


def test_warnings_are_not_emitted_on_the_array_path():
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _array_baseline(x, y, epochs=1)


def test_several_epochs_per_compiled_call_report_every_epochs_metrics():
    """fit with nothing between epochs runs several epochs per compiled call; each epoch's
    metrics are its own (the engine restarts them), bitwise those of one call per epoch."""
    x, y = _data()
    w = np.random.default_rng(14).uniform(0, 2, len(x))

    class EpochHook(keras.callbacks.Callback):      # forces one compiled call per epoch
        def on_epoch_end(self, epoch, logs=None):
            pass

    runs = []
    for callbacks in (None, [EpochHook()]):
        model = _model()
        model.several_calls = []
        inner = model._fit_epochs_compiled

        def recording(*args, model=model, inner=inner):
            model.several_calls.append(1)
            return inner(*args)

        model._fit_epochs_compiled = recording
        model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse"],
                      weighted_metrics=["mae"])
        history = model.fit(x, y, sample_weight=w, batch_size=B, epochs=6, verbose=0,
                            callbacks=callbacks)
        runs.append((model, history))
    np.testing.assert_array_equal(runs[0][0].params, runs[1][0].params)
    assert runs[0][1].history == runs[1][1].history
    assert len(set(runs[0][1].history["mae"])) == 6
    assert runs[0][0].several_calls and not runs[1][0].several_calls
