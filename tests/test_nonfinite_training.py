"""Exploding training (issue 6) on both paths, and gradient clipping.

relu with a large recurrent kernel over long sequences overflows: ``fit`` must
stop with :class:`fastrnn.errors.NonFiniteTrainingError` naming the epoch and
batch, before any NaN/inf reaches the weights, which stay those of the last
good step.  With ``global_clipnorm`` large-but-finite gradients train finitely.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn.errors import NonFiniteTrainingError
from fastrnn.fused import FusedTrainer

PATHS = [True, False]       # use_fused


def relu_model(fused, T, scale, dtype="float32", optimizer="adam"):
    keras.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.SimpleRNN(8, activation="relu", input_shape=[T, 1], dtype=dtype,
                               kernel_initializer="ones"),
        keras.layers.Dense(1, dtype=dtype)])
    model.compile(optimizer=optimizer, loss="mse")
    model.use_fused = fused
    w = model.get_weights()
    w[1] = scale * np.eye(8)            # recurrent kernel: the state grows like scale**t
    model.set_weights(w)
    return model


def test_error_is_a_floating_point_error():
    assert issubclass(NonFiniteTrainingError, FloatingPointError)
    assert keras.errors.NonFiniteTrainingError is NonFiniteTrainingError


@pytest.mark.parametrize("fused", PATHS)
def test_overflow_stops_fit_at_the_first_bad_batch_with_weights_of_the_last_good_step(fused):
    # Rows 0..63 are zeros (the state stays 0: finite); rows 64.. are ones, and
    # 3**100 overflows float32.  Without shuffling, batches 1-2 are good, batch 3 is not.
    T = 100
    X = np.zeros((96, T, 1), np.float32)
    X[64:] = 1.0
    Y = np.ones(96, np.float32)
    model = relu_model(fused, T, 3.0)
    good = relu_model(fused, T, 3.0)
    good.fit(X[:64], Y[:64], batch_size=32, epochs=1, shuffle=False, verbose=0)
    with pytest.raises(NonFiniteTrainingError, match=r"epoch 1/2, batch 3/3") as info:
        model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    assert (info.value.epoch, info.value.batch) == (0, 2)
    assert info.value.kind in ("loss", "gradient")
    assert np.all(np.isfinite(model.params))
    np.testing.assert_array_equal(model.params, good.params)
    assert model.optimizer.iterations == good.optimizer.iterations == 2
    assert np.all(np.isfinite(model.optimizer.m)) and np.all(np.isfinite(model.optimizer.v))


@pytest.mark.parametrize("fused", PATHS)
def test_overflow_is_reported_with_batch_callbacks_too(fused):
    class Seen(keras.callbacks.Callback):
        batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append(batch)

    T = 100
    X = np.ones((40, T, 1), np.float32)
    Y = np.ones(40, np.float32)
    model = relu_model(fused, T, 3.0)
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="epoch 1/1, batch 1/2"):
        model.fit(X, Y, batch_size=32, epochs=1, verbose=0, callbacks=[Seen()])
    assert Seen.batches == []
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("fused", PATHS)
def test_global_clipnorm_keeps_large_gradients_finite(fused):
    # 1.3**60 ~ 7e6: gradients huge but finite; clipped, training stays finite
    T = 60
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (64, T, 1)).astype(np.float32)
    Y = rng.uniform(0, 1, 64).astype(np.float32)
    model = relu_model(fused, T, 1.3, optimizer=keras.optimizers.Adam(global_clipnorm=1.0))
    history = model.fit(X, Y, batch_size=16, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.all(np.isfinite(model.params))
    assert model.optimizer.iterations == 12


@pytest.mark.parametrize("fused", PATHS)
def test_float64_paths_agree_on_where_training_stops(fused):
    T = 400                                  # 10**400 overflows float64
    X = np.ones((8, T, 1))
    Y = np.ones(8)
    model = relu_model(fused, T, 10.0, dtype="float64")
    before = model.params.copy()
    with pytest.raises(NonFiniteTrainingError, match="batch 1/1"):
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.params, before)


# ---------------------------------------------------------------------------
# Clipping

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_clipnorm_bounds_the_norm_and_passes_small_gradients_bitwise(dtype):
    rng = np.random.default_rng(1)
    opt = keras.optimizers.Adam(global_clipnorm=2.0)
    params = np.zeros(50, dtype)
    opt.build(params, [0, 20])
    big = (rng.standard_normal(50) * 10).astype(dtype)
    g = big.copy()
    opt._clip(g)
    assert np.linalg.norm(g.astype(np.float64)) <= 2.0 * (1 + 1e-6)
    small = (rng.standard_normal(50) * 0.01).astype(dtype)
    g = small.copy()
    opt._clip(g)
    np.testing.assert_array_equal(g, small)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", ["global_clipnorm", "clipnorm"])
def test_fused_clipping_applies_a_bounded_gradient_and_passes_small_ones_bitwise(dtype, clip):
    # After one step from m = 0: m = (1 - beta_1) * g_applied, exactly.
    D, H = 2, 4
    c = 0.5
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5, D)).astype(dtype)
    for y_scale, clipped in ((1e3, True), (1e-4, False)):
        n = D * H + H * H + H + H + 1
        p = (rng.standard_normal(n) * 0.3).astype(dtype)
        g, m, v = np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)
        tr = FusedTrainer(p, g, m, v, input_dim=D, units=H, **{clip: c})
        y = (rng.standard_normal(6) * y_scale).astype(dtype)
        if not clipped:   # targets = predictions (almost): tiny gradient
            y = tr.predict(x)[:, 0] + y
        tr.step(x, y)
        b1c = dtype(1 - 0.9)
        applied = m.astype(np.float64) / float(b1c)
        if clip == "global_clipnorm":
            norms = [np.linalg.norm(applied)]
            raw = [np.linalg.norm(g.astype(np.float64))]
        else:
            cuts = np.cumsum([0, D * H, H * H, H, H, 1])
            norms = [np.linalg.norm(applied[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
            raw = [np.linalg.norm(g[a:b].astype(np.float64)) for a, b in zip(cuts[:-1], cuts[1:])]
        if clipped:
            assert max(raw) > c
            assert max(norms) <= c * (1 + 1e-5)
        else:
            assert max(raw) < c
            np.testing.assert_array_equal(m, b1c * g)      # g passed unchanged
