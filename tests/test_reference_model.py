"""The whole-model reference against Keras 3, finite differences and the kernels."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastrnn import reference as ref

from finite_diff import check_gradient
from keras_fixture import json_entry, load, optimizer_config, text
from tolerances import assert_close, tol

REL = tol("finite_difference", np.float64)["rel"]
KERAS = tol("keras_fixture", np.float64)
FIXTURE = load("models")
MODELS = json_entry(FIXTURE["cases"])
TRAIN_OPTIMIZERS = json_entry(FIXTURE["optimizers"])


def _case(name):
    p = f"{name}/"
    weights = [FIXTURE[p + f"weight{k}"] for k in range(int(FIXTURE[p + "n_weights"]))]
    return (json_entry(FIXTURE[p + "spec"]), weights, FIXTURE[p + "x"], FIXTURE[p + "y"],
            text(FIXTURE[p + "loss"]))


# ---------------------------------------------------------------- Keras fixtures

@pytest.mark.parametrize("name", MODELS)
def test_prediction_loss_and_gradients_match_keras(name):
    spec, weights, xs, ys, loss = _case(name)
    y_pred, _ = ref.forward(spec, weights, xs[0])
    np.testing.assert_allclose(y_pred, FIXTURE[f"{name}/prediction"], **KERAS)
    value, grads = ref.loss_and_gradients(spec, weights, xs[0], ys[0], loss)
    np.testing.assert_allclose(value, float(FIXTURE[f"{name}/loss_value"]), **KERAS)
    assert len(grads) == len(weights)
    for k, g in enumerate(grads):
        assert g.shape == weights[k].shape
        np.testing.assert_allclose(g, FIXTURE[f"{name}/grad{k}"], **KERAS, err_msg=f"grad{k}")


@pytest.mark.parametrize("name", MODELS)
def test_keras_float32_agrees_with_the_float64_reference(name):
    # Keras's default float32 (no dtype patch in the recording) matches too.
    spec, weights, xs, ys, loss = _case(name)
    y_pred, _ = ref.forward(spec, weights, xs[0])
    assert_close(FIXTURE[f"{name}/float32/prediction"], y_pred, "forward", np.float32)
    _, grads = ref.loss_and_gradients(spec, weights, xs[0], ys[0], loss)
    for k, g in enumerate(grads):
        assert_close(FIXTURE[f"{name}/float32/grad{k}"], g, "backward", np.float32,
                     err_msg=f"grad{k}")


@pytest.mark.parametrize("optimizer", TRAIN_OPTIMIZERS)
@pytest.mark.parametrize("name", MODELS)
def test_training_matches_keras_train_on_batch(name, optimizer):
    spec, weights, xs, ys, loss = _case(name)
    p = f"{name}/train/{optimizer}/"
    config = optimizer_config(FIXTURE[p + "config"])
    batches = list(zip(xs, ys))
    for steps in range(1, len(batches) + 1):
        trained, losses = ref.train(spec, weights, optimizer, config, batches[:steps], loss)
        flat = np.concatenate([w.ravel() for w in trained])
        np.testing.assert_allclose(flat, FIXTURE[p + "params"][steps - 1], **KERAS,
                                   err_msg=f"after step {steps}")
    np.testing.assert_allclose(losses, FIXTURE[p + "losses"], **KERAS)


def test_go_backwards_returns_the_sequence_in_processing_order():
    # Pinned by the Keras fixture above; spelled out here on the reference.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3))
    w = [rng.standard_normal((3, 5)) * 0.5, rng.standard_normal((5, 5)) * 0.3,
         rng.standard_normal(5) * 0.1]
    forward_on_reversed, _ = ref.forward(
        [{"kind": "simple_rnn", "units": 5, "return_sequences": True}], w, x[:, ::-1])
    backwards, _ = ref.forward(
        [{"kind": "simple_rnn", "units": 5, "return_sequences": True, "go_backwards": True}],
        w, x)
    np.testing.assert_array_equal(backwards, forward_on_reversed)
    last, _ = ref.forward([{"kind": "simple_rnn", "units": 5, "go_backwards": True}], w, x)
    np.testing.assert_array_equal(last, backwards[:, -1])  # the state after seeing x[:, 0]


# ---------------------------------------------------------------- finite differences

SMOOTH = ("linear", "tanh", "sigmoid", "softplus", "softsign", "elu", "exponential", "silu",
          "gelu", "mish", "celu", "squareplus", "log_sigmoid", "tanh_shrink")
KINKED = tuple(ref.ACTIVATION_KINKS)
ROW_WISE = ("softmax", "log_softmax", "sparsemax")


@st.composite
def models(draw):
    """A legal stack: 1-3 SimpleRNN (all but the last return sequences), 0-2 Dense,
    sometimes a Dense before the first SimpleRNN; every flag drawn."""
    activations = st.sampled_from(SMOOTH + KINKED)
    n_rnn = draw(st.integers(1, 3))
    spec = []
    if draw(st.booleans()) and draw(st.booleans()):
        spec.append({"kind": "dense", "units": draw(st.integers(1, 3)),
                     "activation": draw(activations), "use_bias": draw(st.booleans())})
    for i in range(n_rnn):
        last = i == n_rnn - 1
        spec.append({"kind": "simple_rnn", "units": draw(st.integers(1, 4)),
                     "activation": draw(activations), "use_bias": draw(st.booleans()),
                     "return_sequences": draw(st.booleans()) if last else True,
                     "go_backwards": draw(st.booleans())})
    for _ in range(draw(st.integers(0, 2))):
        spec.append({"kind": "dense", "units": draw(st.integers(1, 3)),
                     "activation": draw(st.sampled_from(SMOOTH + KINKED + ROW_WISE)),
                     "use_bias": draw(st.booleans())})
    return spec


def _random_weights(spec, input_dim, rng):
    weights = []
    for shape in ref.weight_shapes(spec, input_dim):
        if len(shape) == 2:
            weights.append(rng.uniform(-1, 1, shape) / np.sqrt(shape[0]))
        else:
            weights.append(rng.uniform(-0.5, 0.5, shape))
    return weights


def _distance_to_kinks(spec, trace):
    """How close any pre-activation is to a point where its derivative jumps."""
    distance = np.inf
    for layer, record in zip(ref.normalize_spec(spec), trace):
        z = record["z"]
        for kink in ref.ACTIVATION_KINKS.get(layer["activation"], ()):
            distance = min(distance, float(np.min(np.abs(z - kink))))
        if layer["activation"] == "sparsemax":
            h = record["h"]
            tau = np.max(z - h, axis=-1, keepdims=True, where=h > 0, initial=-np.inf)
            distance = min(distance, float(np.min(np.abs(z - tau))))
    return distance


@given(spec=models(), B=st.integers(1, 3), T=st.integers(1, 4), D=st.integers(1, 3),
       loss=st.sampled_from(sorted(ref.LOSSES)), seed=st.integers(0, 2**31))
def test_backward_matches_finite_differences(spec, B, T, D, loss, seed):
    rng = np.random.default_rng(seed)
    weights = _random_weights(spec, D, rng)
    x = rng.standard_normal((B, T, D))
    y_pred, trace = ref.forward(spec, weights, x)
    y = rng.standard_normal(y_pred.shape)
    # Central differences are only a check where the function is smooth
    # nearby: keep kinked activations and mae's |.| clear of their kinks.
    assume(_distance_to_kinks(spec, trace) > 1e-3)
    assume(loss == "mse" or np.min(np.abs(y_pred - y)) > 1e-3)
    value, grads = ref.loss_and_gradients(spec, weights, x, y, loss)
    assert np.isfinite(value)

    def f():
        return ref.loss_and_gradients(spec, weights, x, y, loss)[0]

    for k, (w, g) in enumerate(zip(weights, grads)):
        check_gradient(f, w, g, REL, name=f"weights[{k}]")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_recurrence_is_the_kernel_reference(activation, go_backwards):
    # The model's SimpleRNN is kernels.rnn_forward/rnn_backward on the
    # processing-order input, for the activations those take.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2))
    kernel, rec, bias = rng.standard_normal((2, 4)), rng.standard_normal((4, 4)) * 0.4, rng.standard_normal(4)
    dh = rng.standard_normal((3, 5, 4))
    z, h = ref.simple_rnn_forward(x, kernel, rec, bias, activation, go_backwards)
    xs = x[:, ::-1] if go_backwards else x
    np.testing.assert_allclose(h, ref.rnn_forward(xs, kernel, rec, bias, None, activation),
                               rtol=1e-14, atol=1e-15)
    dx, dk, drk, db = ref.simple_rnn_backward(x, z, h, kernel, rec, dh, activation, go_backwards)
    kdx, kdk, kdrk, kdb, _ = ref.rnn_backward(xs, h, kernel, rec, dh, None, activation)
    np.testing.assert_allclose(dx, kdx[:, ::-1] if go_backwards else kdx, rtol=1e-13, atol=1e-14)
    for a, b in ((dk, kdk), (drk, kdrk), (db, kdb)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_dense_acts_on_every_step_and_on_2d_input():
    rng = np.random.default_rng(4)
    spec = [{"kind": "dense", "units": 3, "activation": "softmax"},
            {"kind": "dense", "units": 2, "activation": "tanh", "use_bias": False}]
    weights = [rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((3, 2))]
    x = rng.standard_normal((2, 5, 4))
    y3, _ = ref.forward(spec, weights, x)
    y2, _ = ref.forward(spec, weights, x.reshape(10, 4))
    assert y3.shape == (2, 5, 2)
    np.testing.assert_allclose(y3.reshape(10, 2), y2, rtol=1e-15)
    manual = np.tanh(ref.activate("softmax", x @ weights[0] + weights[1]) @ weights[2])
    np.testing.assert_allclose(y3, manual, rtol=1e-14)


# ---------------------------------------------------------------- training

def test_one_sgd_step_is_the_gradient_step():
    spec, weights, xs, ys, loss = _case("tutorial")
    value, grads = ref.loss_and_gradients(spec, weights, xs[0], ys[0], loss)
    trained, losses = ref.train(spec, weights, "sgd", {"learning_rate": 0.1},
                                [(xs[0], ys[0])], loss)
    assert losses == [value]  # the loss before the update, as train_on_batch reports it
    for w, g, t in zip(weights, grads, trained):
        np.testing.assert_allclose(t, w - 0.1 * g, rtol=1e-15)


def test_train_leaves_the_initial_weights_alone():
    spec, weights, xs, ys, loss = _case("no_bias_per_step")
    before = [w.copy() for w in weights]
    ref.train(spec, weights, "rmsprop", {"clipnorm": 0.1, "momentum": 0.5},
              list(zip(xs, ys)), loss)
    for w, b in zip(weights, before):
        np.testing.assert_array_equal(w, b)


def test_clipnorm_in_train_clips_each_weight_array():
    # A huge clipnorm changes nothing; a tiny one makes each array's step
    # lr * clipnorm long (SGD), whatever its gradient's size.
    spec, weights, xs, ys, loss = _case("tutorial")
    batch = [(xs[0], ys[0])]
    plain, _ = ref.train(spec, weights, "sgd", {"learning_rate": 0.1}, batch, loss)
    loose, _ = ref.train(spec, weights, "sgd", {"learning_rate": 0.1, "clipnorm": 1e6}, batch, loss)
    tight, _ = ref.train(spec, weights, "sgd", {"learning_rate": 0.1, "clipnorm": 1e-3}, batch, loss)
    for p, l, t, w in zip(plain, loose, tight, weights):
        np.testing.assert_array_equal(p, l)
        np.testing.assert_allclose(np.linalg.norm(t - w), 1e-4, rtol=1e-10)


# ---------------------------------------------------------------- bad input

def test_weight_shapes_in_keras_order():
    spec = [{"kind": "simple_rnn", "units": 4, "return_sequences": True},
            {"kind": "simple_rnn", "units": 3, "use_bias": False},
            {"kind": "dense", "units": 2}]
    assert ref.weight_shapes(spec, 5) == [(5, 4), (4, 4), (4,), (4, 3), (3, 3), (3, 2), (2,)]


@pytest.mark.parametrize("spec, match", [
    ([], "non-empty"),
    ([{"kind": "lstm", "units": 3}], "kind"),
    ([{"kind": "dense", "units": 0}], "units"),
    ([{"kind": "dense", "units": True}], "units"),
    ([{"kind": "dense", "units": 2, "activation": "glu"}], r"spec\[0\].*activation"),
    ([{"kind": "dense", "units": 2, "return_sequences": True}], "unknown keys"),
])
def test_bad_spec_is_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        ref.forward(spec, [], np.zeros((1, 2, 3)))


def test_bad_weights_input_and_loss_are_refused():
    spec = [{"kind": "simple_rnn", "units": 2}, {"kind": "dense", "units": 1}]
    good = [np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(2), np.zeros((2, 1)), np.zeros(1)]
    x = np.zeros((4, 5, 3))
    with pytest.raises(ValueError, match="5 arrays"):
        ref.forward(spec, good[:-1], x)
    with pytest.raises(ValueError, match=r"weights\[1\] must have shape \(2, 2\)"):
        ref.forward(spec, [good[0], np.zeros((3, 3))] + good[2:], x)
    with pytest.raises(ValueError, match="3-D input"):
        ref.forward(spec, good, np.zeros((4, 3)))
    stacked = [{"kind": "simple_rnn", "units": 2}, {"kind": "simple_rnn", "units": 2}]
    with pytest.raises(ValueError, match="return_sequences"):
        ref.forward(stacked, good[:3] + [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2)], x)
    with pytest.raises(ValueError, match="loss"):
        ref.loss_and_gradients(spec, good, x, np.zeros((4, 1)), loss="huber")
    with pytest.raises(ValueError, match="y_true"):
        ref.loss_and_gradients(spec, good, x, np.zeros((4, 2)))
