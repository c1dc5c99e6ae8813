"""Sequential: the acceptance scene, gradients, Adam trajectory, training, weights I/O."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastrnn as keras
from fastrnn import reference as ref
from fastrnn.data import make_sequences

from finite_diff import check_gradient
from preactivations import sequential_regions
from tolerances import assert_close, tol

REL = tol("finite_difference", np.float64)["rel"]


def tutorial_model(dtype=None, seed=0):
    keras.set_random_seed(seed)
    model = keras.Sequential([
        keras.layers.SimpleRNN(units=20, input_shape=[3, 1], return_sequences=False, dtype=dtype),
        keras.layers.Dense(1, dtype=dtype),
    ])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_acceptance_scene_summary(capsys):
    model = keras.Sequential([keras.layers.SimpleRNN(units=20, input_shape=[3, 1],
                                                     return_sequences=False),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.summary()
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert any(r[1:2] == ["(SimpleRNN)"] and r[-1] == "440" and "20)" in r for r in rows)
    assert any(r[1:2] == ["(Dense)"] and r[-1] == "21" and "1)" in r for r in rows)
    assert "Total params: 461" in out and "Trainable params: 461" in out
    assert model.count_params() == 461
    assert [w.shape for w in model.get_weights()] == [(1, 20), (20, 20), (20,), (20, 1), (1,)]
    assert [n for n, _, _ in model.param_layout] == [
        "simple_rnn/kernel", "simple_rnn/recurrent_kernel", "simple_rnn/bias",
        "dense/kernel", "dense/bias"]


def test_weights_are_views_into_one_flat_buffer():
    model = tutorial_model()
    assert model.params.ndim == 1 and model.params.flags.c_contiguous
    assert model.params.dtype == np.float32 and model.grads.shape == model.params.shape
    offset = 0
    for (name, shape, off), w in zip(model.param_layout, model.weights):
        assert off == offset and w.shape == shape and w.flags.c_contiguous
        assert np.shares_memory(w, model.params)
        offset += w.size
    model.params[:] = 0.5
    assert all(np.all(w == 0.5) for w in model.layers[0].weights)


def reference_loss_and_grads(weights, x, y):
    """SimpleRNN(tanh) -> Dense -> mse, written with fastrnn.reference only."""
    k, rk, b, dk, db = weights
    h = ref.rnn_forward(x, k, rk, b)
    out = ref.dense_forward(h[:, -1], dk, db)
    loss, dout = ref.mse(y, out)
    dlast, gdk, gdb = ref.dense_backward(h[:, -1], dk, dout)
    dh = np.zeros_like(h)
    dh[:, -1] = dlast
    _, gk, grk, gb, _ = ref.rnn_backward(x, h, k, rk, dh)
    return loss, np.concatenate([g.ravel() for g in (gk, grk, gb, gdk, gdb)])


def test_model_gradients_match_reference_and_finite_differences():
    model = tutorial_model("float64")
    X, Y = make_sequences()
    # one checked array per model input and output
    (x,), (y,) = model._check_x(X[:17] / 5), model._check_y(Y[:17] / 5, X[:17])
    model.params[:] += np.random.default_rng(0).uniform(-0.1, 0.1, model.params.size)
    loss = model._loss_and_gradients(x, y)
    ref_loss, ref_grads = reference_loss_and_grads(model.get_weights(), x, y)
    assert_close(loss, ref_loss, "forward", np.float64)
    assert_close(model.grads, ref_grads, "backward", np.float64)
    grads = model.grads.copy()
    check_gradient(lambda: model._loss_and_gradients(x, y), model.params, grads, REL,
                   name="params", max_coords=200)


def test_gradients_of_a_stacked_many_to_many_model():
    keras.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4, 2), dtype="float64"),
        keras.layers.SimpleRNN(5, return_sequences=True, go_backwards=True, activation="relu"),
        keras.layers.SimpleRNN(3, return_sequences=True, use_bias=False),
        keras.layers.Dense(2, activation="tanh"),
    ])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 4, 2)), rng.standard_normal((6, 4, 2))
    model.params[:] += rng.uniform(-0.2, 0.2, model.params.size)
    model._loss_and_gradients(x, y)
    check_gradient(lambda: model._loss_and_gradients(x, y), model.params,
                   model.grads.copy(), REL, name="params", max_coords=200,
                   regions=sequential_regions(model, x))


def test_adam_trajectory_matches_a_reference_loop():
    model = tutorial_model("float64", seed=4)
    X, Y = make_sequences()
    weights = model.get_weights()
    history = model.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0)

    params = np.concatenate([w.ravel() for w in weights])
    m, v = np.zeros_like(params), np.zeros_like(params)
    shapes = [w.shape for w in weights]
    step, epoch_losses = 0, []
    for _ in range(3):
        total = 0.0
        for start in range(0, 100, 32):
            xb, yb = X[start:start + 32], Y[start:start + 32]
            split = np.split(params, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
            loss, grads = reference_loss_and_grads(
                [p.reshape(s) for p, s in zip(split, shapes)], xb, yb)
            step += 1
            ref.adam_update(params, grads, m, v, step)
            total += loss * len(xb)
        epoch_losses.append(total / 100)
    assert_close(model.params, params, "backward", np.float64)
    assert_close(history.history["loss"], epoch_losses, "forward", np.float64)
    assert model.optimizer.iterations == 12


def test_tutorial_trains_to_low_error_with_default_adam():
    # The tutorial's own settings: Adam(learning_rate=0.001), batch 32, 1000 epochs.
    model = tutorial_model(seed=0)
    X, Y = make_sequences()
    history = model.fit(X, Y, epochs=1000, verbose=0)
    assert history.history["loss"][-1] < 0.002
    assert model.evaluate(X, Y, verbose=0) < 0.002
    prediction = model.predict(np.array([[[8.0], [8.1], [8.2]]]), verbose=0)
    assert prediction.shape == (1, 1) and prediction.dtype == np.float32
    assert abs(prediction[0, 0] - 8.3) < 0.05


def test_same_seed_same_weights_after_training():
    X, Y = make_sequences()
    runs = []
    for _ in range(2):
        model = tutorial_model(seed=11)
        model.fit(X, Y, epochs=5, verbose=0, validation_split=0.1)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = tutorial_model(seed=12)
    other.fit(X, Y, epochs=5, verbose=0)
    assert not np.array_equal(runs[0], other.params)


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    model = tutorial_model("float64")
    X, Y = make_sequences()
    seen = []
    inner = model._train_batch

    def recording(xb, yb, *rest):  # the per-batch seam can be replaced per model
        loss = inner(xb, yb, *rest)
        seen.append((len(xb[0]), loss))     # one array per model input
        return loss

    class BatchHook(keras.callbacks.Callback):      # forces one compiled call per batch
        def on_train_batch_begin(self, batch, logs=None):
            pass

    whole = tutorial_model("float64")
    model._train_batch = recording
    history = model.fit(X, Y, batch_size=32, epochs=1, verbose=0, shuffle=False,
                        callbacks=[BatchHook()])
    assert [n for n, _ in seen] == [32, 32, 32, 4]
    expected = sum(n * loss for n, loss in seen) / 100
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    # one compiled call for the whole epoch gives the same loss and weights
    whole_history = whole.fit(X, Y, batch_size=32, epochs=1, verbose=0, shuffle=False)
    assert whole_history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(whole.params, model.params, rtol=1e-12, atol=1e-15)


def test_evaluate_is_the_mean_over_all_samples():
    model = tutorial_model("float64")
    X, Y = make_sequences()
    full = np.mean((model.predict(X, verbose=0)[:, 0] - Y) ** 2)
    assert model.evaluate(X, Y, batch_size=32, verbose=0) == pytest.approx(full, rel=1e-12)
    assert model.evaluate(X, Y[:, None], batch_size=7, verbose=0) == pytest.approx(full, rel=1e-12)


def test_validation_split_takes_the_last_samples_before_shuffling():
    X, Y = make_sequences()
    a = tutorial_model("float64", seed=5)
    b = tutorial_model("float64", seed=5)
    ha = a.fit(X, Y, epochs=2, validation_split=0.2, shuffle=False, verbose=0)
    hb = b.fit(X[:80], Y[:80], epochs=2, validation_data=(X[80:], Y[80:]), shuffle=False,
               verbose=0)
    assert ha.history == hb.history and set(ha.history) == {"loss", "val_loss"}
    np.testing.assert_array_equal(a.params, b.params)


def test_initial_epoch_and_history():
    model = tutorial_model()
    X, Y = make_sequences()
    history = model.fit(X, Y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4] and len(history.history["loss"]) == 2
    assert model.history is history


def test_save_load_round_trip_is_bit_for_bit(tmp_path):
    X, Y = make_sequences()
    model = tutorial_model(seed=2)
    model.fit(X, Y, epochs=3, verbose=0)
    path = tmp_path / "w.npz"
    model.save_weights(path)
    fresh = tutorial_model(seed=99)  # other global layer names, other initial weights
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.params, model.params)
    np.testing.assert_array_equal(fresh.predict(X, verbose=0), model.predict(X, verbose=0))
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(n for n, _, _ in model.param_layout)


def _write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("dense/bias"), "missing"),
    (lambda a: a.update(extra=np.zeros(2, np.float32)), "unexpected"),
    (lambda a: a.update({"dense/kernel": np.zeros((21, 1), np.float32)}), "shape"),
    (lambda a: a.update({"dense/bias": np.zeros(1, np.int64)}), "dtype"),
    (lambda a: a.update({"dense/bias": np.array([None], dtype=object)}), "dtype"),
    (lambda a: a.update({"dense/bias": np.array([np.nan], np.float32)}), "NaN"),
])
def test_load_weights_rejects_bad_files_and_leaves_the_model_unchanged(tmp_path, change, match):
    model = tutorial_model()
    arrays = {n: w for (n, _, _), w in zip(model.param_layout, model.get_weights())}
    change(arrays)
    path = tmp_path / "bad.npz"
    _write_npz(path, **arrays)
    model.params[:] = 0.25
    with pytest.raises(ValueError, match=match):
        model.load_weights(path)
    assert np.all(model.params == 0.25)


def test_load_weights_other_failures(tmp_path):
    model = tutorial_model()
    not_zip = tmp_path / "junk.npz"
    not_zip.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not an .npz"):
        model.load_weights(not_zip)
    with pytest.raises(ValueError, match=".npz"):
        model.save_weights(tmp_path / "weights.h5")
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "missing.npz")


def test_set_weights_checks_everything_first():
    model = tutorial_model()
    good = model.get_weights()
    bad = [w.copy() for w in good]
    bad[-1] = np.zeros(2)
    with pytest.raises(ValueError, match="dense/bias"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match="5 weight arrays"):
        model.set_weights(good[:4])
    bad = [w.copy() for w in good]
    bad[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.set_weights(bad)
    for a, b in zip(good, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.set_weights([w.astype(np.float64) + 1 for w in good])
    assert model.params.dtype == np.float32
    np.testing.assert_array_equal(model.get_weights()[4], good[4] + 1)


def test_input_start_add_and_deferred_build():
    model = keras.Sequential([keras.Input((3, 1)), keras.layers.SimpleRNN(4)])
    model.add(keras.layers.Dense(2))
    assert model.built and model.output_shape == (None, 2) and model.count_params() == 34

    deferred = keras.Sequential([keras.layers.SimpleRNN(4), keras.layers.Dense(1)])
    assert not deferred.built
    with pytest.raises(ValueError, match="no input shape yet"):
        deferred.predict(np.ones((2, 3, 1)))
    lines = []
    deferred.summary(print_fn=lines.append)     # as Keras: "?" shapes, "0 (unbuilt)"
    assert any("(SimpleRNN)" in line and "?" in line and line.endswith("0 (unbuilt)")
               for line in lines)
    assert any("Total params: 0" in line for line in lines)
    deferred.compile(loss="mae")
    deferred.fit(np.ones((5, 3, 2)), np.ones(5), epochs=1, verbose=0)
    assert deferred.input_shape == (None, 3, 2)
    assert deferred.predict(np.ones((2, 3, 2)), verbose=0).shape == (2, 1)


def test_variable_length_time_axis():
    model = keras.Sequential([keras.Input((None, 1)), keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1)])
    model.compile(loss="mse")
    model.fit(np.ones((4, 5, 1)), np.ones(4), verbose=0)
    assert model.predict(np.ones((2, 7, 1)), verbose=0).shape == (2, 1)


def test_many_to_many():
    model = keras.Sequential([keras.Input((6, 1)),
                              keras.layers.SimpleRNN(8, return_sequences=True),
                              keras.layers.SimpleRNN(8, return_sequences=True),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = np.sin(np.linspace(0, 6, 60)).reshape(10, 6, 1)
    first = model.evaluate(x, x[..., 0], verbose=0)  # y (N, T) against output (N, T, 1)
    model.fit(x, x, epochs=30, verbose=0)
    assert model.evaluate(x, x, verbose=0) < first
    assert model.predict(x, verbose=0).shape == (10, 6, 1)


def test_return_state_only_last_and_not_for_fit():
    with pytest.raises(ValueError, match="last layer"):
        keras.Sequential([keras.Input((3, 1)), keras.layers.SimpleRNN(4, return_state=True),
                          keras.layers.Dense(1)])
    model = keras.Sequential([keras.Input((3, 1)), keras.layers.SimpleRNN(4, return_state=True)])
    out, state = model.predict(np.ones((5, 3, 1)), verbose=0)
    assert out.shape == state.shape == (5, 4)
    model.compile(loss="mse")
    # two outputs: the output and the state each need a target
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit(np.ones((5, 3, 1)), np.ones((5, 4)), verbose=0)
    history = model.fit(np.ones((5, 3, 1)), [np.ones((5, 4)), np.zeros((5, 4))], verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_float64_model_and_casting():
    model = tutorial_model("float64")
    assert model.params.dtype == np.float64
    out = model.predict(np.arange(6).reshape(2, 3, 1), verbose=0)  # ints are cast
    assert out.dtype == np.float64
    model32 = tutorial_model()
    assert model32.predict(np.ones((2, 3, 1), np.float64), verbose=0).dtype == np.float32


def test_mixed_dtypes_are_refused():
    with pytest.raises(ValueError, match="different dtypes"):
        keras.Sequential([keras.layers.SimpleRNN(2, input_shape=(3, 1), dtype="float64"),
                          keras.layers.Dense(1, dtype="float32")])


X_GOOD = np.ones((4, 3, 1))
Y_GOOD = np.ones(4)


@pytest.mark.parametrize("x, y, error, match", [
    (np.full((4, 3, 1), np.nan), Y_GOOD, ValueError, "x contains NaN"),
    (X_GOOD, np.array([1, 2, np.inf, 4]), ValueError, "y contains NaN or infinity"),
    (np.full((4, 3, 1), 1e300), Y_GOOD, ValueError, "after casting to float32"),
    (X_GOOD, np.ones(5), ValueError, "x has 4 samples but y has 5"),
    (np.ones((4, 3, 2)), Y_GOOD, ValueError, "2 features"),
    (np.ones((4, 5, 1)), Y_GOOD, ValueError, "5 time steps"),
    (np.ones((4, 3, 2, 2)), Y_GOOD, ValueError, "rank 3"),
    (np.ones((0, 3, 1)), np.ones(0), ValueError, "x is empty"),
    (X_GOOD, np.ones((4, 2)), ValueError, "y has shape"),
    (np.array([[["a"]]] * 4), Y_GOOD, TypeError, "x must hold real numbers"),
    (X_GOOD, np.array(["1"] * 4), TypeError, "y must hold real numbers"),
    (None, Y_GOOD, ValueError, "x is required"),
    (X_GOOD, None, ValueError, "y is required"),
    (X_GOOD, 3.0, ValueError, "scalar"),
])
def test_fit_input_errors(x, y, error, match):
    model = tutorial_model()
    with pytest.raises(error, match=match):
        model.fit(x, y, verbose=0)
    with pytest.raises(error, match=match):
        model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(validation_split=1.0), ValueError, "validation_split"),
    (dict(validation_split=0.8), ValueError, "leaves"),   # 4 samples: 0 for training
    (dict(validation_data=(X_GOOD,)), ValueError, "validation_data"),
    (dict(validation_data=(X_GOOD, np.ones(3))), ValueError, "validation_data\\[0\\] has 4"),
    (dict(callbacks=[object()]), TypeError, "Callback"),
])
def test_fit_argument_errors(kwargs, error, match):
    model = tutorial_model()
    with pytest.raises(error, match=match):
        model.fit(X_GOOD, Y_GOOD, **{"verbose": 0, **kwargs})


def test_predict_input_errors():
    model = tutorial_model()
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 3, 1), np.nan), verbose=0)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((2, 3, 4)), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict(np.ones((0, 3, 1)), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(X_GOOD, batch_size=-3, verbose=0)


def test_compile_errors():
    model = tutorial_model()
    with pytest.raises(ValueError, match="loss"):
        model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="loss identifier"):
        model.compile(loss="huber_loss")      # the class's name, not a loss identifier (Keras)
    with pytest.raises(TypeError, match="loss"):
        model.compile(loss=lambda a, b: 0.0)
    with pytest.raises(ValueError, match="metrics"):
        model.compile(loss="mse", metrics="mae")     # a list, as Keras requires
    with pytest.raises(ValueError, match="metric identifier"):
        model.compile(loss="mse", metrics=["rmse"])  # not a Keras metric name
    fresh = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match="compile"):
        fresh.fit(np.ones((2, 2)), np.ones(2))


def test_structure_errors():
    rnn = keras.layers.SimpleRNN(2)
    with pytest.raises(ValueError, match="already in this model"):
        keras.Sequential([rnn, rnn])
    with pytest.raises(TypeError, match="fastrnn layers"):
        keras.Sequential([object()])
    with pytest.raises(ValueError, match="first element"):
        keras.Sequential([keras.layers.Dense(1), keras.Input((2,))])
    with pytest.raises(ValueError, match="rank 3"):
        keras.Sequential([keras.layers.SimpleRNN(2, input_shape=(3,))])


def test_verbose_modes(capsys):
    model = tutorial_model()
    X, Y = make_sequences()
    model.fit(X, Y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(X, Y, epochs=2, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2") and "val_loss" in lines[0]
    model.fit(X, Y, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss=" in out
    model.fit(X, Y, epochs=1, verbose="auto")  # captured stdout is not a terminal: 1 line
    assert capsys.readouterr().out.startswith("Epoch 1/1")


def test_mae_loss_matches_reference():
    model = tutorial_model("float64")
    model.compile(optimizer="sgd", loss="mae")
    X, Y = make_sequences()
    expected, _ = ref.mae(Y[:, None], model.predict(X, verbose=0))
    assert model.evaluate(X, Y, verbose=0) == pytest.approx(expected, rel=1e-12)
    first = model.fit(X, Y, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert first[0] == pytest.approx(expected, rel=0.05) and first[-1] < first[0]


def test_build_argument_errors():
    model = keras.Sequential([keras.layers.SimpleRNN(2)])
    with pytest.raises(ValueError, match="input_shape"):
        model.build("abc")
    with pytest.raises(ValueError, match="input_shape"):
        model.build((None, 3, 0))
    with pytest.raises(ValueError, match="rank 3"):
        model.build((None, 3))
    assert not model.built


def test_float32_gradients_match_the_float64_reference():
    model = tutorial_model()  # float32
    X, Y = make_sequences()
    (x,), (y,) = model._check_x(X[:40] / 5), model._check_y(Y[:40] / 5, X[:40])
    model._loss_and_gradients(x, y)
    weights64 = [w.astype(np.float64) for w in model.get_weights()]
    _, ref_grads = reference_loss_and_grads(weights64, x.astype(np.float64), y.astype(np.float64))
    assert_close(model.grads, ref_grads, "backward", np.float32)


@given(B=st.integers(1, 5), T=st.integers(1, 4), D=st.integers(1, 3), H=st.integers(1, 4),
       U=st.integers(1, 3), return_sequences=st.booleans(), go_backwards=st.booleans(),
       activation=st.sampled_from(["tanh", "relu"]),
       dense_activation=st.sampled_from([None, "tanh", "sigmoid"]),
       loss=st.sampled_from(["mse"]), stacked=st.booleans(), seed=st.integers(0, 2**31))
def test_model_gradients_property(B, T, D, H, U, return_sequences, go_backwards, activation,
                                  dense_activation, loss, stacked, seed):
    rng = np.random.default_rng(seed)
    layers = [keras.Input((T, D), dtype="float64")]
    if stacked:
        layers.append(keras.layers.SimpleRNN(H, return_sequences=True, seed=seed))
    layers += [keras.layers.SimpleRNN(H, return_sequences=return_sequences,
                                      go_backwards=go_backwards, activation=activation,
                                      seed=seed + 1),
               keras.layers.Dense(U, activation=dense_activation)]
    model = keras.Sequential(layers)
    model.compile(loss=loss)
    model.params[:] = rng.uniform(-0.8, 0.8, model.params.size)
    x = rng.standard_normal((B, T, D))
    y = rng.standard_normal(model._concrete_output_shape(x.shape))
    model._loss_and_gradients(x, y)
    check_gradient(lambda: model._loss_and_gradients(x, y), model.params, model.grads.copy(),
                   REL, name="params", regions=sequential_regions(model, x))
