"""SimpleRNN(stateful=True): the state kept from batch to batch, on the compiled engine.

A stateful layer keeps one state per sample of the model's fixed batch
size: sample ``b`` of a batch starts from where sample ``b`` of the previous
batch ended, in ``fit``, ``evaluate`` and ``predict`` and from one call to
the next, until ``reset_states()``.  Training does not differentiate into
the previous batch (truncated BPTT, as Keras).

Checked here: predicting consecutive chunks equals predicting the whole
sequence with a stateless model; ``fit`` equals a NumPy reference trainer
(reference recurrence with ``h0``, truncated BPTT, SGD) batch for batch;
the batch-per-call path equals the epoch-per-call path; gradients with a
set state equal the reference's with that ``h0``; resets; a rejected
non-finite step leaves the state alone; Bidirectional; the ``.keras``
config; and Keras 3's own numbers (``tests/fixtures/keras/stateful.npz``,
recorded by ``tools/keras_fixtures/stateful.py``).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastrnn as keras
from fastrnn.callbacks import Callback
from fastrnn.errors import NonFiniteTrainingError
from fastrnn.reference.recurrence import recurrence_backward, recurrence_forward

from keras_fixture import load
from tolerances import TOLERANCES

F64 = TOLERANCES[("forward", np.float64)]
F64_BACK = TOLERANCES[("backward", np.float64)]
KERAS64 = TOLERANCES[("keras_fixture", np.float64)]   # vs Keras's float64 run (TensorFlow)
# Keras's float64 Adam on TensorFlow rounds its hyperparameters to float32 (measured: 7e-8
# from the exact float64 formula, which fastrnn follows, after one step of lr=0.01)
KERAS64_ADAM = TOLERANCES[("interop", np.float64)]

B, T, D, H = 3, 4, 2, 5


def stateful_model(units=H, return_sequences=False, out=1, batch=B, steps=T, features=D,
                   dtype="float64", seed=0, **rnn):
    model = keras.Sequential([
        keras.Input(batch_shape=(batch, steps, features), dtype=dtype),
        keras.layers.SimpleRNN(units, stateful=True, return_sequences=return_sequences,
                               seed=seed, **rnn),
        keras.layers.Dense(out),
    ])
    return model


def random_weights(model, seed=1, scale=0.6):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-scale, scale, w.shape) for w in model.get_weights()])
    return model


def chunks_to_batches(x, steps):
    """(B, K*steps, D) -> (K*B, steps, D): chunk k of every sequence is batch k."""
    Bn, total, F = x.shape
    K = total // steps
    return x.reshape(Bn, K, steps, F).transpose(1, 0, 2, 3).reshape(K * Bn, steps, F)


def batches_to_chunks(y, Bn):
    """(K*B, steps, F) -> (B, K*steps, F): the inverse of chunks_to_batches."""
    KB, steps, F = y.shape
    K = KB // Bn
    return y.reshape(K, Bn, steps, F).transpose(1, 0, 2, 3).reshape(Bn, K * steps, F)


# -- consecutive chunks are one long sequence ------------------------------------------
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_predict_over_consecutive_chunks_equals_the_whole_sequence(activation):
    K = 4
    rng = np.random.default_rng(2)
    long = rng.standard_normal((B, K * T, D))
    stateful = random_weights(stateful_model(return_sequences=True, out=2,
                                             activation=activation))
    whole = keras.Sequential([keras.Input((None, D), dtype="float64"),
                              keras.layers.SimpleRNN(H, return_sequences=True,
                                                     activation=activation),
                              keras.layers.Dense(2)])
    whole.set_weights(stateful.get_weights())
    expected = whole.predict(long, verbose=0)
    got = stateful.predict(chunks_to_batches(long, T), batch_size=B, verbose=0)
    np.testing.assert_allclose(batches_to_chunks(got, B), expected, **F64)
    # the state is the long sequence's last one, and predict goes on from it
    last = whole.layers[0](long)[:, -1]
    np.testing.assert_allclose(stateful.layers[0].states[0], last, **F64)
    more = rng.standard_normal((B, T, D))
    np.testing.assert_allclose(
        stateful.predict(more, batch_size=B, verbose=0),
        whole.predict(np.concatenate([long, more], axis=1), verbose=0)[:, -T:], **F64)


@given(batch=st.integers(1, 4), steps=st.integers(1, 4), chunks=st.integers(1, 4),
       units=st.integers(1, 6), features=st.integers(1, 3), seed=st.integers(0, 2**31 - 1),
       activation=st.sampled_from(["tanh", "linear", "sigmoid", "elu"]))
def test_chunks_equal_the_whole_sequence_sweep(batch, steps, chunks, units, features, seed,
                                               activation):
    rng = np.random.default_rng(seed)
    long = rng.standard_normal((batch, chunks * steps, features))
    stateful = stateful_model(units, return_sequences=True, out=1, batch=batch, steps=steps,
                              features=features, activation=activation)
    random_weights(stateful, seed=seed)
    whole = keras.Sequential([keras.Input((None, features), dtype="float64"),
                              keras.layers.SimpleRNN(units, return_sequences=True,
                                                     activation=activation),
                              keras.layers.Dense(1)])
    whole.set_weights(stateful.get_weights())
    got = stateful.predict(chunks_to_batches(long, steps), verbose=0)
    np.testing.assert_allclose(batches_to_chunks(got, batch), whole.predict(long, verbose=0),
                               **F64)


def test_predict_in_one_call_or_chunk_by_chunk_is_the_same():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4 * B, T, D))
    model = random_weights(stateful_model())
    together = model.predict(x, batch_size=B, verbose=0)
    model.layers[0].reset_states()
    apart = np.concatenate([model.predict(x[k:k + B], verbose=0) for k in range(0, 4 * B, B)])
    np.testing.assert_array_equal(together, apart)


def test_last_state_output_is_the_long_sequence_at_chunk_ends():
    K = 3
    rng = np.random.default_rng(4)
    long = rng.standard_normal((B, K * T, D))
    model = random_weights(stateful_model())
    rnn = model.layers[0]
    got = model.predict(chunks_to_batches(long, T), verbose=0).reshape(K, B)
    states = recurrence_forward(long, rnn.kernel, rnn.recurrent_kernel, rnn.bias)
    dense = model.layers[1]
    for k in range(K):
        expected = states[:, (k + 1) * T - 1] @ dense.kernel + dense.bias
        np.testing.assert_allclose(got[k], expected[:, 0], **F64)


# -- fit: truncated BPTT, batch after batch ---------------------------------------------
def reference_fit(weights, x, y, lr, epochs, h0=None):
    """NumPy: SimpleRNN(stateful) -> Dense(1), mse, SGD, batches of B in order.

    Each batch starts from the previous batch's last state (computed with the
    weights before that batch's update); no gradient reaches that state.
    """
    K, R, b, W, c = [w.copy() for w in weights]
    state = np.zeros((B, H)) if h0 is None else h0.copy()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(x), B):
            xb, yb = x[start:start + B], y[start:start + B]
            h = recurrence_forward(xb, K, R, b, h0=state)
            last = h[:, -1]
            out = last @ W + c
            total += np.mean((out - yb) ** 2) * B
            dout = 2 * (out - yb) / out.size
            dW, dc = last.T @ dout, dout.sum(0)
            dh = np.zeros_like(h)
            dh[:, -1] = dout @ W.T
            _, dK, dR, db, _ = recurrence_backward(xb, h, K, R, dh, bias=b, h0=state)
            K, R, b, W, c = K - lr * dK, R - lr * dR, b - lr * db, W - lr * dW, c - lr * dc
            state = last
        losses.append(total / len(x))
    return [K, R, b, W, c], state, losses


def test_fit_equals_the_reference_with_truncated_bptt():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4 * B, T, D))
    y = rng.standard_normal((4 * B, 1))
    model = random_weights(stateful_model())
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    history = model.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0)
    expected, state, losses = reference_fit(weights, x, y, 0.1, epochs=2)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, **F64_BACK)
    np.testing.assert_allclose(model.layers[0].states[0], state, **F64)
    np.testing.assert_allclose(history.history["loss"], losses, **F64)


def test_fit_from_zero_differs_from_fit_carrying_the_state():
    """The carried state matters (a check that the comparison above can fail)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2 * B, T, D))
    y = rng.standard_normal((2 * B, 1))
    model = random_weights(stateful_model())
    weights = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    model.fit(x, y, batch_size=B, shuffle=False, verbose=0)
    stateless = keras.Sequential([keras.Input((T, D), dtype="float64"),
                                  keras.layers.SimpleRNN(H), keras.layers.Dense(1)])
    stateless.set_weights(weights)
    stateless.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    stateless.fit(x, y, batch_size=B, shuffle=False, verbose=0)
    assert not np.allclose(model.get_weights()[0], stateless.get_weights()[0])


class _EveryBatch(Callback):
    """A batch hook: fit then trains one compiled call per batch."""

    def on_train_batch_end(self, batch, logs=None):
        pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batch_by_batch_equals_epoch_calls(optimizer):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5 * B, T, D))
    y = rng.standard_normal((5 * B, T, 2))
    runs = []
    for how in ("several epochs per call", "an epoch per call", "a batch per call"):
        model = random_weights(stateful_model(return_sequences=True, out=2))
        model.compile(optimizer=optimizer, loss="mse")
        if how == "several epochs per call":
            model.fit(x, y, batch_size=B, epochs=3, shuffle=False, verbose=0)
        elif how == "an epoch per call":
            for _ in range(3):
                model.fit(x, y, batch_size=B, shuffle=False, verbose=0)
        else:
            model.fit(x, y, batch_size=B, epochs=3, shuffle=False, verbose=0,
                      callbacks=[_EveryBatch()])
        runs.append((model.get_weights(), model.layers[0].states[0].copy()))
    for weights, state in runs[1:]:
        for a, b in zip(weights, runs[0][0]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(state, runs[0][1])


def test_train_on_batch_equals_fit():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3 * B, T, D))
    y = rng.standard_normal((3 * B, 1))
    a, b = random_weights(stateful_model()), random_weights(stateful_model())
    for model in (a, b):
        model.compile(optimizer="adam", loss="mse")
    a.fit(x, y, batch_size=B, shuffle=False, verbose=0)
    for start in range(0, 3 * B, B):
        b._train_batch([x[start:start + B]], [y[start:start + B]])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.layers[0].states[0], b.layers[0].states[0])


def test_gradients_start_from_the_state_and_stop_there():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, 1))
    h0 = rng.uniform(-0.9, 0.9, (B, H))
    model = random_weights(stateful_model())
    model.compile(optimizer="sgd", loss="mse")
    model.layers[0].reset_states(h0)
    model._loss_and_gradients([x], [y])
    K, R, b, W, c = model.get_weights()
    h = recurrence_forward(x, K, R, b, h0=h0)
    dout = 2 * (h[:, -1] @ W + c - y) / y.size
    dh = np.zeros_like(h)
    dh[:, -1] = dout @ W.T
    _, dK, dR, db, _ = recurrence_backward(x, h, K, R, dh, bias=b, h0=h0)
    grads = model.layers[0]._grads
    for got, want in zip(grads, [dK, dR, db]):
        np.testing.assert_allclose(got, want, **F64_BACK)
    np.testing.assert_allclose(model.layers[1]._grads[0], h[:, -1].T @ dout, **F64_BACK)
    np.testing.assert_allclose(model.layers[0].states[0], h[:, -1], **F64)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_steps_carry_the_state_into_the_next_batch(go_backwards):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((2 * B, T, D))
    x[B + 0] = 0.0                  # batch 2, sample 0: every step masked
    x[B + 1, 2:] = 0.0              # sample 1: right padding
    x[B + 2, :1] = 0.0              # sample 2: left padding
    inp = keras.Input(batch_shape=(B, T, D), dtype="float64")
    rnn = keras.layers.SimpleRNN(H, stateful=True, go_backwards=go_backwards)
    model = keras.Model(inp, rnn(keras.layers.Masking(0.0)(inp)))
    random_weights(model)
    got = model.predict(x, verbose=0)
    state = np.zeros((B, H))
    for k in range(2):
        xb = x[k * B:(k + 1) * B]
        h = recurrence_forward(xb, rnn.kernel, rnn.recurrent_kernel, rnn.bias, h0=state,
                               mask=np.any(xb != 0, axis=-1), go_backwards=go_backwards)
        state = h[:, 0] if go_backwards else h[:, -1]
        np.testing.assert_allclose(got[k * B:(k + 1) * B], state, **F64)
    np.testing.assert_allclose(rnn.states[0], state, **F64)
    np.testing.assert_allclose(state[0], got[0], **F64)    # the masked sample kept its state


# -- resets ---------------------------------------------------------------------------------
def test_reset_states_restores_zeros():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((B, T, D))
    model = random_weights(stateful_model())
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    assert not np.allclose(first, second)          # the state moved on
    rnn = model.layers[0]
    assert np.abs(rnn.states[0]).max() > 0
    rnn.reset_states()
    np.testing.assert_array_equal(rnn.states[0], np.zeros((B, H)))
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    rnn.reset_state()                              # Keras 3's name
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)


def test_reset_states_to_given_values():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((B, T, D))
    h0 = rng.uniform(-1, 1, (B, H))
    model = random_weights(stateful_model(return_sequences=True, out=H))
    rnn = model.layers[0]
    rnn.reset_states([h0])                         # Keras 2's reset_states(states)
    np.testing.assert_array_equal(rnn.states[0], h0)
    h = recurrence_forward(x, rnn.kernel, rnn.recurrent_kernel, rnn.bias, h0=h0)
    dense = model.layers[1]
    np.testing.assert_allclose(model.predict(x, verbose=0), h @ dense.kernel + dense.bias, **F64)


def test_a_layer_that_is_not_stateful_keeps_no_state():
    layer = keras.layers.SimpleRNN(3)
    layer.reset_states()                           # as Keras: nothing to do
    assert layer.states is None
    with pytest.raises(AttributeError, match="stateful"):
        layer.reset_states(np.zeros((2, 3)))
    with pytest.raises(AttributeError, match="stateful"):
        keras.layers.Bidirectional(keras.layers.SimpleRNN(3)).reset_states()


def test_evaluate_moves_the_state_on_like_predict():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2 * B, T, D))
    y = rng.standard_normal((2 * B, 1))
    a, b = random_weights(stateful_model()), random_weights(stateful_model())
    a.compile(optimizer="sgd", loss="mse")
    loss = a.evaluate(x, y, batch_size=B, verbose=0)
    pred = b.predict(x, batch_size=B, verbose=0)
    np.testing.assert_allclose(loss, np.mean((pred - y) ** 2), **F64)
    np.testing.assert_array_equal(a.layers[0].states[0], b.layers[0].states[0])


@pytest.mark.parametrize("kind,target,lr", [("loss", 1e200, 0.1), ("update", 1e10, 1e300)])
@pytest.mark.parametrize("per_batch", [False, True])
def test_a_rejected_step_leaves_the_state_as_it_was(kind, target, lr, per_batch):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2 * B, T, D))
    y = np.full((2 * B, 1), target)
    model = random_weights(stateful_model())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    h0 = np.full((B, H), 0.25)
    model.layers[0].reset_states(h0)
    before = model.get_weights()
    with pytest.raises(NonFiniteTrainingError, match=kind):
        model.fit(x, y, batch_size=B, shuffle=False, verbose=0,
                  callbacks=[_EveryBatch()] if per_batch else None)
    np.testing.assert_array_equal(model.layers[0].states[0], h0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_float32_model_keeps_a_float32_state():
    model = random_weights(stateful_model(dtype="float32"))
    model.predict(np.ones((B, T, D), np.float32), verbose=0)
    state = model.layers[0].states[0]
    assert state.dtype == np.float32 and state.shape == (B, H)
    assert np.abs(state).max() > 0


# -- the fixed batch size -----------------------------------------------------------------
def test_batch_size_from_batch_input_shape_and_batch_size_arguments():
    for first in (keras.layers.SimpleRNN(H, stateful=True, batch_input_shape=(B, T, D)),
                  keras.layers.SimpleRNN(H, stateful=True, input_shape=(T, D), batch_size=B)):
        model = keras.Sequential([first, keras.layers.Dense(1)])
        model.predict(np.ones((2 * B, T, D)), verbose=0)
        assert model.layers[0].states[0].shape == (B, H)
    x = keras.Input((T, D), batch_size=B)
    model = keras.Model(x, keras.layers.Dense(1)(keras.layers.SimpleRNN(H, stateful=True)(x)))
    model.predict(np.ones((B, T, D)), verbose=0)       # batch_size defaults to the fixed one
    assert model.layers[1].states[0].shape == (B, H)


def test_without_a_batch_size_keras_error():
    with pytest.raises(ValueError, match="batch size must be static"):
        keras.Sequential([keras.Input((T, D)), keras.layers.SimpleRNN(H, stateful=True)])
    model = keras.Sequential([keras.layers.SimpleRNN(H, stateful=True), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="batch size must be static"):
        model.fit(np.ones((B, T, D)), np.ones((B, 1)), verbose=0)


def test_calling_a_stateful_layer_on_arrays_is_refused_clearly():
    model = stateful_model()
    with pytest.raises(NotImplementedError, match="stateful"):
        model.layers[0](np.ones((B, T, D)))


def test_a_generator_batch_of_another_size_is_refused():
    model = stateful_model()
    model.compile(optimizer="adam", loss="mse")
    batches = [(np.ones((B, T, D)), np.ones((B, 1))), (np.ones((B - 1, T, D)), np.ones((B - 1, 1)))]
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(iter(batches), verbose=0)
    state = model.layers[0].states[0].copy()
    assert np.abs(state).max() > 0                  # the first batch ran
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(iter([b[0] for b in batches]), verbose=0)


def test_shuffle_is_allowed_batches_are_taken_as_given():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4 * B, T, D))
    y = rng.standard_normal((4 * B, 1))
    model = random_weights(stateful_model())
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, batch_size=B, epochs=2, verbose=0)   # shuffle=True
    assert np.all(np.isfinite(history.history["loss"]))


# -- Bidirectional ----------------------------------------------------------------------
def test_bidirectional_stateful_keeps_both_states():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2 * B, T, D))
    inp = keras.Input(batch_shape=(B, T, D), dtype="float64")
    bi = keras.layers.Bidirectional(keras.layers.SimpleRNN(H, stateful=True), merge_mode=None)
    model = keras.Model(inp, bi(inp))
    random_weights(model)
    forward, backward = model.predict(x, batch_size=B, verbose=0)
    kf, rf, bf, kb, rb, bb = model.get_weights()
    # each half is a stateful recurrence of its own, chunk after chunk
    state_f, state_b = np.zeros((B, H)), np.zeros((B, H))
    for k in range(2):
        xb = x[k * B:(k + 1) * B]
        hf = recurrence_forward(xb, kf, rf, bf, h0=state_f)
        hb = recurrence_forward(xb, kb, rb, bb, h0=state_b, go_backwards=True)
        state_f, state_b = hf[:, -1], hb[:, 0]
        np.testing.assert_allclose(forward[k * B:(k + 1) * B], state_f, **F64)
        np.testing.assert_allclose(backward[k * B:(k + 1) * B], state_b, **F64)
    assert len(bi.states) == 2
    np.testing.assert_allclose(bi.states[0], state_f, **F64)
    np.testing.assert_allclose(bi.states[1], state_b, **F64)
    bi.reset_states()
    assert not np.any(bi.states[0]) and not np.any(bi.states[1])


# -- saving --------------------------------------------------------------------------------
def test_keras_file_carries_stateful_not_the_state(tmp_path):
    pytest.importorskip("h5py")
    model = random_weights(stateful_model())
    model.predict(np.ones((B, T, D)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    rnn = loaded.layers[0]
    assert rnn.stateful and loaded.input_shape == (B, T, D)
    np.testing.assert_array_equal(rnn.states[0], np.zeros((B, H)))
    model.layers[0].reset_states()
    x = np.random.default_rng(15).standard_normal((2 * B, T, D))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               **F64)


# -- Keras 3's numbers (TensorFlow backend, float64) ------------------------------------
FIXTURE = load("stateful")


def test_a_stateful_keras_file_loads_stateful():
    pytest.importorskip("h5py")
    from keras_fixture import FIXTURES
    model = keras.models.load_model(FIXTURES / "keras_stateful.keras")
    rnn = model.layers[0]
    assert rnn.stateful and model.input_shape == (3, 4, 2)
    np.testing.assert_allclose(model.predict(FIXTURE["file/x"], verbose=0), FIXTURE["file/pred"],
                               **KERAS64)
    assert np.abs(rnn.states[0]).max() > 0


def keras_case_model(case):
    """The models of tools/keras_fixtures/stateful.py (B=3, T=4, D=2, H=5), in float64."""
    Bk, Tk, Dk, Hk = 3, 4, 2, 5
    x = keras.Input(batch_shape=(Bk, Tk, Dk), dtype="float64")
    if case == "last_state_sgd":
        out = keras.layers.Dense(1)(keras.layers.SimpleRNN(Hk, stateful=True)(x))
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
    elif case == "sequences_backwards_adam":
        h = keras.layers.SimpleRNN(Hk, stateful=True, return_sequences=True,
                                   go_backwards=True)(x)
        out = keras.layers.Dense(2)(h)
        optimizer = keras.optimizers.Adam(learning_rate=0.01)
    elif case == "stacked_sgd":
        h = keras.layers.SimpleRNN(Hk, stateful=True, return_sequences=True)(x)
        out = keras.layers.Dense(1)(keras.layers.SimpleRNN(3, stateful=True)(h))
        optimizer = keras.optimizers.SGD(learning_rate=0.05)
    else:
        bi = keras.layers.Bidirectional(keras.layers.SimpleRNN(Hk, stateful=True))
        out = keras.layers.Dense(1)(bi(x))
        optimizer = keras.optimizers.SGD(learning_rate=0.05)
    model = keras.Model(x, out)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def stateful_layers(model):
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            layers += [layer.forward_layer, layer.backward_layer]
        elif getattr(layer, "stateful", False):
            layers.append(layer)
    return layers


def _entries(case, prefix):
    keys = sorted((k for k in FIXTURE if k.startswith(f"{case}/{prefix}/")),
                  key=lambda k: int(k.rsplit("/", 1)[1]))
    return [FIXTURE[k] for k in keys]


KERAS_CASES = sorted({key.split("/")[0] for key in FIXTURE if "/" in key} - {"file"})


def test_keras_cases_recorded():
    assert KERAS_CASES == ["bidirectional_sgd", "last_state_sgd", "sequences_backwards_adam",
                           "stacked_sgd"]


@pytest.mark.parametrize("case", KERAS_CASES)
def test_fit_and_predict_match_keras(case):
    f = {key.split("/", 1)[1]: value for key, value in FIXTURE.items()
         if key.startswith(case + "/")}
    tol = KERAS64_ADAM if case.endswith("adam") else KERAS64
    model = keras_case_model(case)
    model.set_weights(_entries(case, "weights_init"))
    history = model.fit(f["x_fit"], f["y_fit"], batch_size=3, epochs=2, shuffle=False,
                        verbose=0)
    np.testing.assert_allclose(history.history["loss"], f["loss"], **tol)
    for got, want in zip(model.get_weights(), _entries(case, "weights_fit")):
        np.testing.assert_allclose(got, want, **tol)
    layers = stateful_layers(model)
    for layer, want in zip(layers, _entries(case, "state_fit")):
        np.testing.assert_allclose(layer.states[0], want, **tol)
    np.testing.assert_allclose(model.predict(f["x_pred"], batch_size=3, verbose=0), f["pred"],
                               **tol)
    for layer, want in zip(layers, _entries(case, "state_pred")):
        np.testing.assert_allclose(layer.states[0], want, **tol)
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    np.testing.assert_allclose(model.predict(f["x_pred"][:3], verbose=0), f["pred_reset"],
                               **tol)


# -- the engine's own interface ---------------------------------------------------------
def _raw_engine(inference=False):
    """A plan of input -> stateful SimpleRNN (return_sequences) on flat float64 buffers."""
    from fastrnn import _engine
    from fastrnn.engine import lower
    nodes = [{"kind": "input", "inputs": [], "width": D, "seq": True},
             {"kind": "simple_rnn", "inputs": [0], "width": H, "seq": True, "activation": "tanh",
              "p0": 0, "p1": D * H, "p2": D * H + H * H, "stateful": True, "state_owner": None,
              "batch": B}]
    plan = lower(nodes, [1])
    params = np.random.default_rng(17).uniform(-0.6, 0.6, D * H + H * H + H)
    engine = _engine.Engine(plan.plan, plan.inputs, plan.outputs, params, np.zeros_like(params),
                            inference=inference)
    return engine, params


def test_engine_needs_its_state_buffers_first():
    engine, _ = _raw_engine(inference=True)
    assert engine.state_batch_size is None
    with pytest.raises(RuntimeError, match="set_states"):
        engine.predict(np.zeros((B, T, D)), np.zeros((B, T, H)), B)
    engine.set_states([np.zeros((B, H))])
    assert engine.state_batch_size == B


def test_engine_states_are_read_and_written_in_place():
    engine, params = _raw_engine(inference=True)
    K = params[:D * H].reshape(D, H)
    R = params[D * H:D * H + H * H].reshape(H, H)
    b = params[D * H + H * H:]
    state = np.random.default_rng(18).uniform(-1, 1, (B, H))
    start = state.copy()
    engine.set_states([state])
    x = np.random.default_rng(19).standard_normal((2 * B, T, D))
    out = engine.predict(x, np.zeros((2 * B, T, H)), B)
    h1 = recurrence_forward(x[:B], K, R, b, h0=start)
    h2 = recurrence_forward(x[B:], K, R, b, h0=h1[:, -1])
    np.testing.assert_allclose(out, np.concatenate([h1, h2]), **F64)
    np.testing.assert_allclose(state, h2[:, -1], **F64)       # the caller's array, updated
    state[...] = 0                                             # the caller resets it
    np.testing.assert_allclose(engine.predict(x[:B], np.zeros((B, T, H)), B),
                               recurrence_forward(x[:B], K, R, b), **F64)


def test_engine_refuses_state_buffers_that_alias_the_weights():
    engine, params = _raw_engine()
    with pytest.raises(ValueError, match="share memory"):
        engine.set_states([params[:B * H].reshape(B, H)])
    with pytest.raises(ValueError, match="states"):
        engine.set_states([np.zeros((B, H), np.float32)][:0])
