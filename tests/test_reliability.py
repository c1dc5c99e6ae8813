"""Reliability II (issue 14): copies and pickles, shared layers, files, forks, long predictions.

The engine's own classes of defect (size arithmetic, BLAS threads, FP flags,
optimizer settings, compile during fit, predict during fit) are tested in
test_engine.py, test_optimizers.py and test_nonfinite_training.py.
"""
import copy
import multiprocessing
import os
import pickle
import threading
import tracemalloc

import numpy as np
import pytest

import fastrnn as keras
from fastrnn.data import make_sequences


def tutorial(seed=0, dtype="float32"):
    keras.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3, 1), dtype=dtype), keras.layers.SimpleRNN(8),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


# ---------------------------------------------------------------------------
# 2. copies and pickles are whole, independent models

COPIES = {
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
}


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("after", ["build", "fit", "predict"])
def test_a_copy_is_an_independent_working_model(how, after, tmp_path):
    X, Y = make_sequences()
    model = tutorial()
    if after in ("fit", "predict"):
        model.fit(X, Y, epochs=2, verbose=0)
    if after == "predict":
        model.predict(X, verbose=0)
    original = model.params.copy()
    clone = COPIES[how](model)
    # every layer's weights are views of the clone's own buffer
    for layer in clone.layers:
        for w in layer.weights:
            assert np.shares_memory(w, clone.params)
            assert not np.shares_memory(w, model.params)
    np.testing.assert_array_equal(clone.predict(X, verbose=0), model.predict(X, verbose=0))
    clone.fit(X, Y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.params, original)           # the original is untouched
    assert not np.array_equal(clone.params, original)                # the clone trained
    flat = np.concatenate([w.ravel() for w in clone.get_weights()])
    np.testing.assert_array_equal(flat, clone.params)                # get_weights reads params
    clone.save_weights(tmp_path / "clone.npz")
    fresh = tutorial(seed=1)
    fresh.load_weights(tmp_path / "clone.npz")
    np.testing.assert_array_equal(fresh.params, clone.params)


def test_a_copy_keeps_the_optimizer_state_and_continues_as_the_original():
    X, Y = make_sequences()
    model = tutorial(dtype="float64")
    model.fit(X, Y, epochs=3, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.optimizer.iterations == model.optimizer.iterations
    for m in (model, clone):
        m.fit(X, Y, epochs=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(clone.params, model.params)


def test_a_standalone_layer_pickles():
    layer = keras.layers.SimpleRNN(4, seed=1)
    x = np.random.default_rng(0).standard_normal((2, 3, 2)).astype(np.float32)
    y = layer(x)
    clone = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(clone(x), y)
    assert np.shares_memory(clone.kernel, clone._flat)


# ---------------------------------------------------------------------------
# 3. a layer in two models

def test_a_layer_of_a_built_model_cannot_join_another():
    rnn = keras.layers.SimpleRNN(8)
    a = keras.Sequential([keras.Input((3, 1)), rnn, keras.layers.Dense(1)])
    before = a.get_weights()
    with pytest.raises(ValueError, match="already belongs to model"):
        keras.Sequential([keras.Input((3, 1)), rnn, keras.layers.Dense(1)])
    for w, v in zip(a.get_weights(), before):
        np.testing.assert_array_equal(w, v)
    assert np.shares_memory(rnn.kernel, a.params)


def test_a_layer_of_a_discarded_model_may_join_another():
    rnn = keras.layers.SimpleRNN(8)
    keras.Sequential([keras.Input((3, 1)), rnn])
    import gc
    gc.collect()
    b = keras.Sequential([keras.Input((3, 1)), rnn, keras.layers.Dense(1)])
    assert np.shares_memory(rnn.kernel, b.params)


# ---------------------------------------------------------------------------
# 6. no floating-point flag leaks, also after a fork

def _fork_child(queue):
    X, Y = make_sequences()
    model = tutorial()
    model.fit(X, Y, epochs=3, verbose=0)
    # a GEMM large enough for BLAS's worker threads, whose result is subnormal
    a = np.full((256, 256), 1e-20, np.float32)
    b = np.full((256, 256), 1e-21, np.float32)
    product = float((a @ b)[0, 0])                  # 2.56e-39: subnormal in float32
    tiny = float(np.float32(1e-38) * np.float32(0.25))
    queue.put((product, tiny))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_after_a_fork_training_leaves_subnormals_alone_in_every_thread():
    _ = np.ones((256, 256), np.float32) @ np.ones((256, 256), np.float32)   # BLAS pool exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0, "the child hung or crashed"
    product, tiny = queue.get(timeout=5)
    assert product != 0.0 and tiny != 0.0


# ---------------------------------------------------------------------------
# 8. readers never see half-written weights: predict during load_weights

def test_predict_during_load_weights_sees_one_weight_set_or_the_other(tmp_path):
    X, _ = make_sequences()
    model = tutorial(dtype="float64")
    sets = []
    for seed in (1, 2):
        other = tutorial(seed=seed, dtype="float64")
        other.save_weights(tmp_path / f"{seed}.npz")
        model.set_weights(other.get_weights())
        sets.append(model.predict(X[:4], verbose=0))
    preds, done = [], threading.Event()

    def reader():
        while not done.is_set():
            preds.append(model.predict(X[:4], verbose=0))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for k in range(60):
            model.load_weights(tmp_path / f"{1 + k % 2}.npz")
    finally:
        done.set()
        t.join()
    assert preds
    for p in preds:
        assert any(np.array_equal(p, s) for s in sets)


# ---------------------------------------------------------------------------
# 9. files

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_weights_refuses_a_fifo_instead_of_blocking(tmp_path):
    fifo = tmp_path / "w.npz"
    os.mkfifo(fifo)
    model = tutorial()
    result = []
    t = threading.Thread(target=lambda: result.append(_error_of(model.load_weights, fifo)),
                         daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "load_weights blocked on a FIFO"
    assert isinstance(result[0], ValueError) and "regular file" in str(result[0])


def _error_of(fn, *args):
    try:
        fn(*args)
    except Exception as e:          # noqa: BLE001 - the test inspects it
        return e
    return None


def test_load_weights_refuses_a_device(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    link = tmp_path / "zero.npz"
    os.symlink("/dev/zero", link)
    with pytest.raises(ValueError, match="regular file"):
        tutorial().load_weights(link)


def test_a_failed_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    model = tutorial()
    path = tmp_path / "ckpt.npz"
    model.save_weights(path)
    good = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(path)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]          # no temporary left behind


def test_layer_set_weights_checks_finiteness_after_the_cast():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    before = layer.get_weights()
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer.set_weights([np.full((3, 2), 1e39), np.zeros(2)])
    for w, v in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(w, v)


def test_model_set_weights_checks_finiteness_after_the_cast():
    model = tutorial()
    weights = model.get_weights()
    weights[0] = np.full(weights[0].shape, 1e39)
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.set_weights(weights)


# ---------------------------------------------------------------------------
# 10. long sequences: buffers sized by what the call needs

def test_one_long_sequence_predicts_in_bounded_memory():
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, 1)), keras.layers.SimpleRNN(8),
                              keras.layers.Dense(1)])
    T = 1_000_000
    x = np.random.default_rng(0).uniform(-1, 1, (1, T, 1)).astype(np.float32)
    tracemalloc.start()
    try:
        out = model.predict(x, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (1, 1) and np.all(np.isfinite(out))
    # states (T x 8) + the input gather: ~36 MB in float32; 32 sequences' worth would be 1.2 GB
    assert peak < 80 * 2**20
