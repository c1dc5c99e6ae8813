"""Exploding training (issue 6) on the engine, and gradient clipping.

relu with a large recurrent kernel over long sequences overflows: ``fit`` must
stop with :class:`fastrnn.errors.NonFiniteTrainingError` naming the epoch and
batch, before any NaN/inf reaches the weights, which stay those of the last
good step.  With ``global_clipnorm`` large-but-finite gradients train finitely.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn.errors import NonFiniteTrainingError


def relu_model(T, scale, dtype="float32", optimizer="adam"):
    keras.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.SimpleRNN(8, activation="relu", input_shape=[T, 1], dtype=dtype,
                               kernel_initializer="ones"),
        keras.layers.Dense(1, dtype=dtype)])
    model.compile(optimizer=optimizer, loss="mse")
    w = model.get_weights()
    w[1] = scale * np.eye(8)            # recurrent kernel: the state grows like scale**t
    model.set_weights(w)
    return model


class _BatchHook(keras.callbacks.Callback):
    """A callback with a batch hook: fit then runs one compiled call per batch."""

    def on_train_batch_begin(self, batch, logs=None):
        pass


def hooks(per_batch):
    return [_BatchHook()] if per_batch else []


def test_error_is_a_floating_point_error():
    assert issubclass(NonFiniteTrainingError, FloatingPointError)
    assert keras.errors.NonFiniteTrainingError is NonFiniteTrainingError


@pytest.mark.parametrize("per_batch", [False, True])
def test_overflow_stops_fit_at_the_first_bad_batch_with_weights_of_the_last_good_step(per_batch):
    # Rows 0..63 are zeros (the state stays 0: finite); rows 64.. are ones, and
    # 3**100 overflows float32.  Without shuffling, batches 1-2 are good, batch 3 is not.
    T = 100
    X = np.zeros((96, T, 1), np.float32)
    X[64:] = 1.0
    Y = np.ones(96, np.float32)
    model = relu_model(T, 3.0)
    good = relu_model(T, 3.0)
    good.fit(X[:64], Y[:64], batch_size=32, epochs=1, shuffle=False, verbose=0)
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 1/2, batch 3/3") as info:
        model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0,
                  callbacks=hooks(per_batch))
    assert (info.value.epoch, info.value.batch) == (0, 2)
    assert info.value.kind in ("loss", "gradient")
    assert np.all(np.isfinite(model.params))
    np.testing.assert_array_equal(model.params, good.params)
    assert model.optimizer.iterations == good.optimizer.iterations == 2
    assert np.all(np.isfinite(model.optimizer.m)) and np.all(np.isfinite(model.optimizer.v))


def test_overflow_is_reported_with_batch_callbacks_too():
    class Seen(keras.callbacks.Callback):
        batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append(batch)

    T = 100
    X = np.ones((40, T, 1), np.float32)
    Y = np.ones(40, np.float32)
    model = relu_model(T, 3.0)
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="epoch 1/1, batch 1/2"):
        model.fit(X, Y, batch_size=32, epochs=1, verbose=0, callbacks=[Seen()])
    assert Seen.batches == []
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("per_batch", [False, True])
def test_global_clipnorm_keeps_large_gradients_finite(per_batch):
    # 1.3**60 ~ 7e6: gradients huge but finite; clipped, training stays finite
    T = 60
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (64, T, 1)).astype(np.float32)
    Y = rng.uniform(0, 1, 64).astype(np.float32)
    model = relu_model(T, 1.3, optimizer=keras.optimizers.Adam(global_clipnorm=1.0))
    history = model.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=hooks(per_batch))
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(model.params))
    assert model.optimizer.iterations == 12


@pytest.mark.parametrize("per_batch", [False, True])
def test_float64_training_stops_where_it_overflows(per_batch):
    T = 400                                  # 10**400 overflows float64
    X = np.ones((8, T, 1))
    Y = np.ones(8)
    model = relu_model(T, 10.0, dtype="float64")
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="batch 1/1"):
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0, callbacks=hooks(per_batch))
    np.testing.assert_array_equal(model.params, before)


# ---------------------------------------------------------------------------
# Clipping

def _one_step_model(dtype, clip, c):
    keras.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 2), dtype=dtype), keras.layers.SimpleRNN(4),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(**{clip: c}), loss="mse")
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("clip", ["global_clipnorm", "clipnorm", "clipvalue"])
def test_clipping_applies_a_bounded_gradient_and_passes_small_ones_bitwise(dtype, clip):
    # After one Adam step from m = 0: m = (1 - beta_1) * g_applied, exactly.
    c = 0.5
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5, 2)).astype(dtype)
    for y_scale, clipped in ((1e3, True), (1e-4, False)):
        model = _one_step_model(dtype, clip, c)
        y = (rng.standard_normal(6) * y_scale).astype(dtype)
        if not clipped:   # targets = predictions (almost): tiny gradient
            y = model.predict(x, verbose=0)[:, 0] + y
        model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
        g = model.grads                      # the raw gradient (the engine clips a copy)
        m = model.optimizer.m
        b1c = model.dtype.type(1 - 0.9)
        applied = m.astype(np.float64) / float(b1c)
        cuts = [off for _, _, off in model.param_layout] + [g.size]
        if clip == "global_clipnorm":
            norms = [np.linalg.norm(applied)]
            raw = [np.linalg.norm(g.astype(np.float64))]
        elif clip == "clipnorm":
            norms = [np.linalg.norm(applied[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
            raw = [np.linalg.norm(g[a:b].astype(np.float64)) for a, b in zip(cuts[:-1], cuts[1:])]
        else:
            norms = [np.max(np.abs(applied))]
            raw = [np.max(np.abs(g))]
        if clipped:
            assert max(raw) > c
            assert max(norms) <= c * (1 + 1e-5)
        else:
            assert max(raw) < c
            np.testing.assert_array_equal(m, b1c * g)      # g passed unchanged


@pytest.mark.parametrize("per_batch", [False, True])
def test_terminate_on_nan_stops_fit_gracefully_with_the_last_good_weights(per_batch):
    T = 100
    X = np.zeros((96, T, 1), np.float32)
    X[64:] = 1.0                               # batch 3 overflows (see above)
    Y = np.ones(96, np.float32)
    model = relu_model(T, 3.0)
    good = relu_model(T, 3.0)
    good.fit(X[:64], Y[:64], batch_size=32, epochs=1, shuffle=False, verbose=0)
    history = model.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0,
                        callbacks=[keras.callbacks.TerminateOnNaN()] + hooks(per_batch))
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    np.testing.assert_array_equal(model.params, good.params)


def test_a_huge_learning_rate_never_writes_inf_into_the_weights():
    # 1e39 is finite in float64 (so the setter takes it) but the float32 step is inf
    model = relu_model(3, 0.5)
    model.optimizer = keras.optimizers.SGD(learning_rate=1e39)
    model.compile(optimizer=model.optimizer, loss="mse")
    X = np.random.default_rng(0).uniform(-1, 1, (8, 3, 1)).astype(np.float32)
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="update") as info:
        model.fit(X, np.ones(8, np.float32), batch_size=8, epochs=1, verbose=0)
    assert info.value.kind == "update"
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.iterations == 0


def test_a_learning_rate_set_to_nan_by_a_callback_is_refused_before_any_step():
    class Sabotage(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = float("nan")

    model = relu_model(3, 0.5)
    X = np.random.default_rng(0).uniform(-1, 1, (8, 3, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(X, np.ones(8, np.float32), epochs=2, verbose=0, callbacks=[Sabotage()])
    assert np.all(np.isfinite(model.params))


def dense_model(weight, optimizer):
    model = keras.Sequential([keras.layers.Dense(1, input_shape=[1])])
    model.compile(optimizer=optimizer, loss="mse")
    model.set_weights([np.array([[weight]], np.float32), np.zeros(1, np.float32)])
    return model


@pytest.mark.parametrize("per_batch", [False, True])
@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"clipnorm": 1e30},
                                     {"amsgrad": True, "global_clipnorm": 1e30}])
@pytest.mark.parametrize("x, weight, kind", [
    (3e38, 1e-38, "gradient"),   # output 3, loss 9, dLoss/dW = 3e38 * 6 = inf
    (1e19, 1.0, "update"),       # gradient 2e38 (finite), but its square is inf in v
])
def test_adam_leaves_weights_and_state_bitwise_as_they_were(per_batch, options, x, weight, kind):
    # Adam checks its update in its own pass: a non-finite gradient or a v that
    # overflows (while the weights themselves would stay finite) restores
    # weights, m, v (and vhat) and the step counter exactly
    model = dense_model(1.0, keras.optimizers.Adam(**options))
    X = np.array([[1.0], [x]], np.float32)
    model.fit(X[:1], np.zeros(1, np.float32), batch_size=1, epochs=2, verbose=0)
    model.set_weights([np.array([[weight]], np.float32), np.zeros(1, np.float32)])
    params, state = model.params.copy(), model.optimizer.state.copy()
    with pytest.raises(NonFiniteTrainingError) as info:
        model.fit(X[1:], np.zeros(1, np.float32), batch_size=1, epochs=1, verbose=0,
                  callbacks=hooks(per_batch))
    assert info.value.kind == kind
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    assert model.optimizer.iterations == 2


def test_adam_with_a_huge_learning_rate_never_writes_inf_into_the_weights():
    model = dense_model(0.5, keras.optimizers.Adam(learning_rate=1e39))
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="update") as info:
        model.fit(np.ones((4, 1), np.float32), np.zeros(4, np.float32), batch_size=4, epochs=1,
                  verbose=0)
    assert info.value.kind == "update"
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.iterations == 0
