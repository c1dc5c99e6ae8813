"""The compiled engine: one path for every model (issue 9).

- gradients of whole models against central finite differences (float64), over
  a Hypothesis sweep of stacks; float32 against float64;
- one call per epoch equals one call per batch;
- threads: concurrent fits are bitwise the serial ones, and no thread's BLAS
  thread count or floating-point behaviour changes;
- a KeyboardInterrupt or a callback's exception mid-fit leaves a usable model;
- compile() from a callback takes effect from the next epoch;
- no allocation per step; sizes that would overflow are refused before any
  allocation.
"""
import _thread
import threading
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn as keras
from fastrnn import _engine
from fastrnn.layers import Dense, SimpleRNN

from concurrency import run_in_threads
from finite_diff import check_gradient
from tolerances import tol

REL = tol("finite_difference", np.float64)["rel"]
SMOOTH = ["tanh", "sigmoid", "softsign", "elu", "selu", "softplus", "linear", "softmax"]


def stack(n_rnn, n_dense, activations, seqs, backwards, biases, last_seq, T, D, dtype="float64"):
    layers = [keras.Input((T, D), dtype=dtype)]
    for i in range(n_rnn):
        last = i == n_rnn - 1
        layers.append(SimpleRNN(3 + i, activation=activations[i], use_bias=biases[i],
                                return_sequences=(last_seq if last else True) if last else seqs[i],
                                go_backwards=backwards[i], bias_initializer="ones"))
    for j in range(n_dense):
        layers.append(Dense(2 + j, activation=activations[n_rnn + j], use_bias=biases[n_rnn + j]))
    return keras.Sequential(layers)


def gradient_check(model, x, y, rel=REL):
    """The engine's gradient of every weight against central differences of evaluate()."""
    model.compile(optimizer="sgd", loss="mse")
    model._loss_and_gradients(x, y)
    grads = model.grads.copy()

    def loss():
        return model.evaluate(x, y, batch_size=len(x), verbose=0)

    for (name, _, off), w in zip(model.param_layout, model.weights):
        check_gradient(loss, w, grads[off:off + w.size], rel, name=name, max_coords=24)


@settings(max_examples=25, deadline=None)
@given(n_rnn=st.integers(1, 3), n_dense=st.integers(0, 2),
       activations=st.lists(st.sampled_from(SMOOTH), min_size=5, max_size=5),
       seqs=st.lists(st.booleans(), min_size=3, max_size=3),
       backwards=st.lists(st.booleans(), min_size=3, max_size=3),
       biases=st.lists(st.booleans(), min_size=5, max_size=5),
       last_seq=st.booleans(), B=st.integers(1, 4), T=st.integers(1, 4), D=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_engine_gradients_match_finite_differences(n_rnn, n_dense, activations, seqs, backwards,
                                                   biases, last_seq, B, T, D, seed):
    keras.set_random_seed(seed)
    # every RNN but the last returns sequences, so the stack is well formed
    seqs = [True] * 3
    model = stack(n_rnn, n_dense, activations, seqs, backwards, biases, last_seq, T, D)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal(model.predict(x, verbose=0).shape)
    gradient_check(model, x, y)


def test_dense_only_model_on_2d_input():
    keras.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,), dtype="float64"), Dense(5, activation="tanh"),
                              Dense(3, activation="softmax"), Dense(2)])
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    gradient_check(model, x, y)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_float32_engine_follows_float64(loss):
    X = np.random.default_rng(0).uniform(-1, 1, (40, 6, 2))
    Y = np.random.default_rng(1).uniform(-1, 1, (40, 6, 1))
    models = []
    for dtype in ("float64", "float32"):
        keras.set_random_seed(5)
        model = keras.Sequential([keras.Input((6, 2), dtype=dtype),
                                  SimpleRNN(8, return_sequences=True),
                                  SimpleRNN(5, return_sequences=True, go_backwards=True),
                                  Dense(4, activation="relu"), Dense(1)])
        model.compile(optimizer="adam", loss=loss)
        models.append(model)
    models[1].set_weights(models[0].get_weights())
    h = [m.fit(X, Y, epochs=3, batch_size=8, verbose=0, shuffle=False).history["loss"]
         for m in models]
    np.testing.assert_allclose(h[1], h[0], rtol=1e-4)
    np.testing.assert_allclose(models[1].params, models[0].params, rtol=2e-3, atol=2e-4)


class BatchHook(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad", "adamw"])
def test_one_call_per_epoch_equals_one_call_per_batch(optimizer):
    X = np.random.default_rng(0).uniform(-1, 1, (50, 5, 2))
    Y = np.random.default_rng(1).uniform(-1, 1, (50, 1))
    runs = []
    for hook in ([], [BatchHook()]):
        keras.set_random_seed(3)
        model = keras.Sequential([keras.Input((5, 2), dtype="float64"), SimpleRNN(6),
                                  Dense(3, activation="relu"), Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        h = model.fit(X, Y, epochs=3, batch_size=16, verbose=0, callbacks=hook)
        runs.append((h.history["loss"], model.params.copy()))
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-13)


# ---------------------------------------------------------------------------
# threads, BLAS and floating-point state

def _blas_threads():
    from threadpoolctl import threadpool_info
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


def _denormals_work():
    tiny = np.array([1e-38], np.float32)
    return float((tiny * np.float32(0.25))[0]) != 0.0     # not flushed to zero


def _model(seed):
    keras.set_random_seed(seed)
    model = keras.Sequential([keras.Input((10, 3)), SimpleRNN(16, return_sequences=True),
                              SimpleRNN(8), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _train(model, epochs=20):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (64, 10, 3)), rng.uniform(-1, 1, 64)
    h = model.fit(X, Y, epochs=epochs, verbose=0, shuffle=False)   # no global RNG draws
    return model.params.copy(), h.history["loss"], _denormals_work()


def test_concurrent_fits_are_bitwise_the_serial_ones_and_change_no_thread_state():
    pytest.importorskip("threadpoolctl")
    before = _blas_threads()
    serial = [_train(_model(seed)) for seed in range(4)]
    models = [_model(seed) for seed in range(4)]       # built here: the global seed is shared
    concurrent = run_in_threads(_train, models, repeats=1)
    for (p1, h1, d1), (p2, h2, d2) in zip(serial, concurrent):
        np.testing.assert_array_equal(p1, p2)
        assert h1 == h2
        assert d1 and d2                      # no flush-to-zero in any training thread
    assert _blas_threads() == before
    assert _denormals_work()


def test_blas_threads_are_unchanged_for_a_thread_that_set_its_own():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        inside = _blas_threads()
        _train(_model(0), epochs=2)
        assert _blas_threads() == inside
    assert _blas_threads() == _blas_threads()


def test_predict_during_fit_sees_the_weights_of_a_completed_step():
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 1), dtype="float64"), SimpleRNN(8), Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (64, 5, 1)), rng.uniform(-1, 1, 64)
    probe = X[:3]
    weight_sets = [model.params.copy()]          # every set the model ever had

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weight_sets.append(self.model.params.copy())

    preds, done = [], threading.Event()

    def reader():
        while not done.is_set():
            preds.append(model.predict(probe, verbose=0))

    t = threading.Thread(target=reader)
    t.start()
    try:
        model.fit(X, Y, epochs=10, batch_size=8, verbose=0, callbacks=[Record()])
    finally:
        done.set()
        t.join()
    valid = []
    for params in weight_sets:
        model.params[:] = params
        valid.append(model.predict(probe, verbose=0))
    assert len(preds) > 0
    for p in preds:
        assert any(np.array_equal(p, v) for v in valid)


# ---------------------------------------------------------------------------
# interrupts, errors, re-compiling

@pytest.fixture
def sigint_raises_keyboard_interrupt():
    """Python's own SIGINT handler for the test (a background job starts with SIGINT
    ignored, and then interrupt_main() does nothing)."""
    import signal
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_mid_fit_leaves_a_usable_model(sigint_raises_keyboard_interrupt):
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((30, 4)), SimpleRNN(32), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (256, 30, 4)), rng.uniform(-1, 1, 256)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # ~a minute of epochs: ample for the timer thread even on a busy machine
            # (10,000 epochs once finished before a starved timer ran)
            model.fit(X, Y, epochs=200_000, verbose=0)
    finally:
        timer.cancel()
    assert model.optimizer.iterations > 0
    assert np.all(np.isfinite(model.params))
    before = model.optimizer.iterations
    model.fit(X, Y, epochs=1, verbose=0)
    assert model.optimizer.iterations == before + 8
    assert np.all(np.isfinite(model.predict(X[:4], verbose=0)))
    assert _denormals_work()


def test_a_callback_exception_mid_fit_leaves_the_last_completed_epoch():
    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.params = self.model.params.copy()
                raise RuntimeError("boom")

    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 1)), SimpleRNN(4), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    X, Y = np.ones((10, 3, 1)), np.ones(10)
    boom = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(X, Y, epochs=5, verbose=0, callbacks=[boom])
    np.testing.assert_array_equal(model.params, boom.params)
    model.fit(X, Y, epochs=1, verbose=0)          # still trains


def test_compile_from_a_callback_takes_effect_from_the_next_epoch():
    class Freeze(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mae")
                self.frozen = self.model.params.copy()

    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 1), dtype="float64"), SimpleRNN(4), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    X, Y = np.random.default_rng(0).uniform(size=(20, 3, 1)), np.ones(20)
    freeze = Freeze()
    h = model.fit(X, Y, epochs=3, verbose=0, callbacks=[freeze])
    np.testing.assert_array_equal(model.params, freeze.frozen)     # lr 0 from epoch 2 on
    mae = np.mean(np.abs(model.predict(X, verbose=0)[:, 0] - 1))
    assert h.history["loss"][2] == pytest.approx(mae, rel=1e-12)   # and the loss is mae


# ---------------------------------------------------------------------------
# allocation and sizes

def test_no_allocation_per_step():
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((20, 3)), SimpleRNN(64, return_sequences=True),
                              Dense(10, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="mse")
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (32, 20, 3)).astype(np.float32)
    Y = rng.uniform(0, 1, (32, 20, 10)).astype(np.float32)
    engine = model._trainer()
    engine.train_step(X, Y, 0.001)           # the first batch sizes the work buffers
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            engine.train_step(X, Y, 0.001)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base <= 0 and peak - base < 1024


def _engine_for(units=4):
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 2)), SimpleRNN(units), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model._trainer()


@pytest.mark.parametrize("batch, steps", [(4, 2**62), (2**62, 4), (2**31, 1), (2**40, 2**40)])
def test_sizes_that_would_overflow_are_refused_before_allocating(batch, steps):
    engine = _engine_for()
    with pytest.raises(ValueError):
        engine.reserve(batch, steps)
    assert engine.capacity[0] < 2**20


@pytest.mark.parametrize("value", [0, -1, 2**63 - 1, 2**64, 1.5, "3", None])
def test_bad_batch_sizes_are_refused(value):
    engine = _engine_for()
    X = np.zeros((8, 3, 2), np.float32)
    engine.bind_data(X, np.zeros((8, 1), np.float32))
    with pytest.raises((TypeError, ValueError)):
        engine.run_epoch(np.arange(8, dtype=np.int64), value, np.full(8, 0.001),
                         np.empty(8))


def test_run_epoch_checks_its_buffers():
    engine = _engine_for()
    X = np.zeros((8, 3, 2), np.float32)
    engine.bind_data(X, np.zeros((8, 1), np.float32))
    order = np.arange(8, dtype=np.int64)
    with pytest.raises(ValueError, match="losses"):
        engine.run_epoch(order, 2, np.full(4, 0.001), np.empty(3))
    with pytest.raises(ValueError, match="learning_rates"):
        engine.run_epoch(order, 2, np.full(3, 0.001), np.empty(4))
    with pytest.raises(ValueError, match="out of range"):
        engine.run_epoch(np.array([0, 8], dtype=np.int64), 2, np.full(4, 0.001), np.empty(4))
    with pytest.raises(ValueError, match="learning_rate"):
        engine.run_epoch(order, 8, np.array([np.nan]), np.empty(1))


def test_a_plan_that_does_not_fit_its_buffers_is_refused():
    params = np.zeros(10, np.float32)
    plan = np.array([[_engine.KINDS["dense"], -1, 0, 0, 4, 3, 0, -1, 12]], dtype=np.int64)
    with pytest.raises(ValueError, match="outside params"):
        _engine.Engine(plan, params, np.zeros_like(params), 4, 3, False, False)


@pytest.mark.parametrize("shuffle", [False, True])
def test_several_epochs_per_call_equal_one_call_per_epoch(shuffle):
    X = np.random.default_rng(0).uniform(-1, 1, (50, 5, 2))
    Y = np.random.default_rng(1).uniform(-1, 1, (50, 1))
    runs = []
    for callbacks in ([], [keras.callbacks.History()]):    # a callback: one call per epoch
        keras.set_random_seed(3)
        model = keras.Sequential([keras.Input((5, 2), dtype="float64"), SimpleRNN(6), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        h = model.fit(X, Y, epochs=7, batch_size=16, verbose=0, shuffle=shuffle,
                      callbacks=callbacks)
        runs.append((h.history["loss"], h.epoch, model.params.copy(), model.optimizer.iterations))
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] == list(range(7))
    assert runs[0][3] == runs[1][3] == 28


def test_the_step_counter_is_the_optimizers_own():
    # the engine counts in the optimizer's buffer: nothing to copy back, so an
    # interrupt between the compiled call and Python cannot lose a step
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((3, 1)), SimpleRNN(4), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    engine = model._trainer()
    X, Y = np.ones((8, 3, 1), np.float32), np.ones((8, 1), np.float32)
    engine.train_step(X, Y, 0.001)
    assert model.optimizer.iterations == engine.iterations == 1
