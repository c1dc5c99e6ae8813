"""Sequential's fused path: same results as the general path, same fit semantics.

A ``SimpleRNN -> Dense`` model compiled with Adam trains through
``fastrnn.fused.FusedTrainer`` (one compiled ``run_epoch`` per epoch, or one
``step`` per batch when callbacks want batches or verbose=1).  Every test here
trains the same seeded model twice, fused and with ``use_fused = False``
(the layer-by-layer ops path), in float64, and compares.
"""
import tracemalloc

import numpy as np
import pytest

import fastrnn as keras
from fastrnn.callbacks import Callback
from fastrnn.data import make_sequences

from concurrency import run_in_threads

CLOSE = dict(rtol=1e-9, atol=1e-12)


def make_model(dtype="float64", seed=0, units=20, activation="tanh", return_sequences=False,
               output_units=1, use_bias=True, optimizer=None, loss="mse", T=3, D=1):
    keras.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.SimpleRNN(units, activation=activation, use_bias=use_bias,
                               return_sequences=return_sequences, input_shape=[T, D],
                               dtype=dtype),
        keras.layers.Dense(output_units, dtype=dtype)])
    model.compile(optimizer=optimizer if optimizer is not None else "adam", loss=loss)
    return model


def pair(**kw):
    """The same model twice: fused, and forced onto the general path."""
    opt = kw.pop("opt", None)
    a = make_model(optimizer=opt() if opt else None, **kw)
    b = make_model(optimizer=opt() if opt else None, **kw)
    b.use_fused = False
    np.testing.assert_array_equal(a.params, b.params)
    return a, b


def assert_same_training(a, b, ha, hb):
    np.testing.assert_allclose(a.params, b.params, **CLOSE)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], **CLOSE)
    assert a.optimizer.iterations == b.optimizer.iterations
    np.testing.assert_allclose(a.optimizer.m, b.optimizer.m, **CLOSE)
    np.testing.assert_allclose(a.optimizer.v, b.optimizer.v, **CLOSE)


def fit(model, *args, **kw):
    """fit with the shuffling generator seeded (fit draws it from the global seed)."""
    keras.set_random_seed(7)
    return model.fit(*args, **kw)


class BatchRecorder(Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def test_the_tutorial_model_is_fused_and_others_are_not():
    assert make_model()._fused_config(True) is not None
    assert make_model(activation="relu", return_sequences=True)._fused_config(True) is not None
    assert make_model(optimizer=keras.optimizers.SGD())._fused_config(True) is None
    assert make_model(optimizer=keras.optimizers.SGD())._fused_config(False) is not None
    assert make_model(optimizer=keras.optimizers.Adam(amsgrad=True))._fused_config(True) is None
    keras.set_random_seed(0)
    stacked = keras.Sequential([keras.layers.SimpleRNN(4, return_sequences=True,
                                                       input_shape=[3, 1]),
                                keras.layers.SimpleRNN(4), keras.layers.Dense(1)])
    stacked.compile("adam", "mse")
    assert stacked._fused_config(False) is None
    for layers in ([keras.layers.SimpleRNN(4, go_backwards=True, input_shape=[3, 1]),
                    keras.layers.Dense(1)],
                   [keras.layers.SimpleRNN(4, input_shape=[3, 1]),
                    keras.layers.Dense(1, activation="tanh")]):
        m = keras.Sequential(layers)
        m.compile("adam", "mse")
        assert m._fused_config(False) is None
    replaced = make_model()
    replaced._train_batch = replaced._train_batch
    assert replaced._fused_config(True) is None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("loss", ["mse", "mae"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_fused_fit_equals_the_general_path(activation, loss, shuffle):
    X, Y = make_sequences()
    a, b = pair(activation=activation, loss=loss)
    ha = fit(a, X, Y, epochs=5, batch_size=32, shuffle=shuffle, verbose=0)
    hb = fit(b, X, Y, epochs=5, batch_size=32, shuffle=shuffle, verbose=0)
    assert a._fused is not None and b._fused is None
    assert_same_training(a, b, ha, hb)
    assert a.optimizer.iterations == 5 * 4


@pytest.mark.parametrize("clip", [dict(clipnorm=0.05), dict(global_clipnorm=0.05),
                                  dict(clipvalue=0.01)])
def test_fused_fit_with_clipping_equals_the_general_path(clip):
    X, Y = make_sequences()
    a, b = pair(opt=lambda: keras.optimizers.Adam(learning_rate=0.01, **clip))
    ha = fit(a, X, Y, epochs=4, batch_size=16, verbose=0)
    hb = fit(b, X, Y, epochs=4, batch_size=16, verbose=0)
    assert_same_training(a, b, ha, hb)


def test_fused_many_to_many_with_validation_equals_the_general_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 7, 3))
    Y = rng.standard_normal((50, 7, 2))
    a, b = pair(units=6, T=7, D=3, output_units=2, return_sequences=True, use_bias=False)
    ha = fit(a, X, Y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    hb = fit(b, X, Y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    assert_same_training(a, b, ha, hb)
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], **CLOSE)
    np.testing.assert_allclose(a.predict(X, verbose=0), b.predict(X, verbose=0), **CLOSE)


def test_per_batch_mode_equals_whole_epochs_and_the_general_path():
    # batch hooks force one fused step per batch; the logs are the running mean
    X, Y = make_sequences()
    a, b = pair()
    c = make_model()
    ra, rb = BatchRecorder(), BatchRecorder()
    ha = fit(a, X, Y, epochs=3, verbose=0, callbacks=[ra])
    hb = fit(b, X, Y, epochs=3, verbose=0, callbacks=[rb])
    hc = fit(c, X, Y, epochs=3, verbose=0)
    assert_same_training(a, b, ha, hb)
    np.testing.assert_allclose(ra.losses, rb.losses, **CLOSE)
    np.testing.assert_array_equal(a.params, c.params)    # step == run_epoch, bitwise
    assert ha.history["loss"] == hc.history["loss"]


def test_fit_then_fit_continues_the_schedule_and_follows_the_learning_rate():
    X, Y = make_sequences()
    a, b = pair()
    for model in (a, b):
        fit(model, X, Y, epochs=2, verbose=0)
        model.optimizer.learning_rate = 0.01
        fit(model, X, Y, epochs=2, verbose=0, shuffle=False)
    assert a.optimizer.iterations == b.optimizer.iterations == 16
    assert a._fused[1].iterations == 16
    np.testing.assert_allclose(a.params, b.params, **CLOSE)
    # a new optimizer (compile again) restarts the schedule on fresh moments
    a.compile(keras.optimizers.Adam(), "mse")
    b.compile(keras.optimizers.Adam(), "mse")
    ha = fit(a, X, Y, epochs=1, verbose=0)
    hb = fit(b, X, Y, epochs=1, verbose=0)
    assert a.optimizer.iterations == 4
    assert_same_training(a, b, ha, hb)


def test_learning_rate_changed_by_a_callback_is_used():
    class Decay(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.model.optimizer.learning_rate = 0.01 / (1 + epoch)

    X, Y = make_sequences()
    a, b = pair()
    ha = fit(a, X, Y, epochs=3, verbose=0, callbacks=[Decay()])
    hb = fit(b, X, Y, epochs=3, verbose=0, callbacks=[Decay()])
    assert_same_training(a, b, ha, hb)


def test_fused_predict_and_evaluate_equal_the_general_path():
    X, Y = make_sequences()
    a, b = pair()
    fit(a, X, Y, epochs=2, verbose=0)
    fit(b, X, Y, epochs=2, verbose=0)
    pa, pb = a.predict(X, verbose=0), b.predict(X, verbose=0)
    assert pa.shape == pb.shape == (100, 1) and pa.dtype == np.float64
    np.testing.assert_allclose(pa, pb, **CLOSE)
    np.testing.assert_allclose(a.evaluate(X, Y, verbose=0), b.evaluate(X, Y, verbose=0),
                               **CLOSE)
    # after set_weights (in place) the fused predictor sees the new weights
    w = [np.full_like(v, 0.1) for v in a.get_weights()]
    a.set_weights(w)
    b.set_weights(w)
    np.testing.assert_allclose(a.predict(X, verbose=0), b.predict(X, verbose=0), **CLOSE)


def test_predict_without_compile_is_fused_too():
    keras.set_random_seed(1)
    model = keras.Sequential([keras.layers.SimpleRNN(5, input_shape=[4, 2]),
                              keras.layers.Dense(3)])
    x = np.random.default_rng(0).standard_normal((9, 4, 2)).astype(np.float32)
    out = model.predict(x, verbose=0)
    assert model._fused is None and len(model._predictors) == 1
    model.use_fused = False
    np.testing.assert_allclose(out, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _epoch_allocation_peak(model, X, Y, **fit_kw):
    """Bytes allocated above the level at epoch begin, at the peak within epochs >= 1."""
    peaks = []

    class Probe(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            tracemalloc.reset_peak()
            self.base = tracemalloc.get_traced_memory()[0]

        def on_epoch_end(self, epoch, logs=None):
            peaks.append(tracemalloc.get_traced_memory()[1] - self.base)

    tracemalloc.start()
    try:
        fit(model, X, Y, epochs=4, verbose=0, callbacks=[Probe()], **fit_kw)
    finally:
        tracemalloc.stop()
    return max(peaks[1:])


def test_no_allocations_per_training_step_through_fit():
    # 400 batches per epoch: any per-step array (the general path allocates several
    # per layer per step) would lift the epoch's allocation peak by kilobytes.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400 * 8, 3, 1))
    Y = rng.standard_normal(400 * 8)
    fused, general = pair()
    fused_peak = _epoch_allocation_peak(fused, X, Y, batch_size=8)
    general_peak = _epoch_allocation_peak(general, X, Y, batch_size=8)
    assert general_peak > 2048          # the probe sees per-step arrays
    assert fused_peak < 1024, fused_peak  # only per-epoch bookkeeping (logs, a view)
    # per-batch mode (batch hooks, verbose=1): no block survives a step, no arrays
    # (only Python scalars: the loss float and the iterations int)
    tr = fused._fused[1]
    x, y = X[:8], Y[:8]
    tr.step(x, y)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(100):
            fused._fit_trainer = tr
            fused._train_batch(x, y)
        fused._fit_trainer = None
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "lineno")
    # at most the one int now held by optimizer.iterations (it replaced the old one)
    assert sum(s.count_diff for s in diff) <= 1, [s for s in diff if s.count_diff]


def test_threads_predicting_with_one_model_get_bitwise_the_serial_results():
    # each thread has its own predictor; all chunk the samples alike
    model = make_model(dtype="float32")
    X, Y = make_sequences()
    fit(model, X, Y, epochs=2, verbose=0)
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal((n, 3, 1)) for n in (1, 1, 5, 5, 33, 33, 70, 70)]
    serial = [model.predict(x, batch_size=7, verbose=0) for x in inputs]
    results = run_in_threads(lambda x: model.predict(x, verbose=0), inputs, repeats=50,
                             fast_switching=False)
    for s, r in zip(serial, results):
        np.testing.assert_array_equal(s, r)
