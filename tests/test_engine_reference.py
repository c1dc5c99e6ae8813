"""The engine against the whole-model NumPy reference (fastrnn.reference.model).

Over a Hypothesis sweep of stacks (1-3 SimpleRNN, 0-2 Dense, every supported
activation, return_sequences, go_backwards, bias on/off), losses and
optimizers (with clipping and weight decay): the loss, every gradient, and the
weights and losses of 5 training steps, float64 tight and float32 loose
(tolerances from the one table).
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastrnn as keras
from fastrnn import activations
from fastrnn.reference import model as ref

from tolerances import assert_close

ACTS = list(activations.SUPPORTED)
# Without a kink: over several Adam steps, a pre-activation that rounds to the
# other side of relu's 0 in one implementation flips a gradient between 0 and
# ~1e-17, and Adam turns either into a full step (found by the seed sweep).
SMOOTH_ACTS = [a for a in ACTS if a not in ("relu", "relu6", "leaky_relu", "hard_sigmoid")]
OPTIMIZERS = {
    "adam": [{}, {"amsgrad": True}, {"clipnorm": 0.05}, {"weight_decay": 0.01}],
    "adamw": [{"weight_decay": 0.05}],
    "sgd": [{"learning_rate": 0.1}, {"momentum": 0.9, "nesterov": True, "learning_rate": 0.05},
            {"momentum": 0.5, "clipvalue": 0.01, "learning_rate": 0.1}],
    "rmsprop": [{}, {"centered": True, "momentum": 0.5, "global_clipnorm": 0.1}],
    "adagrad": [{"learning_rate": 0.1}],
}
CASES = [(name, cfg) for name, cfgs in OPTIMIZERS.items() for cfg in cfgs]
OPT_CLASS = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
             "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
             "adagrad": keras.optimizers.Adagrad}


@st.composite
def architectures(draw, acts=ACTS):
    n_rnn = draw(st.integers(0, 3))
    n_dense = draw(st.integers(1 if n_rnn == 0 else 0, 2))
    spec = []
    for i in range(n_rnn):
        last = i == n_rnn - 1
        spec.append({"kind": "simple_rnn", "units": draw(st.integers(1, 5)),
                     "activation": draw(st.sampled_from(acts)),
                     "use_bias": draw(st.booleans()),
                     "return_sequences": draw(st.booleans()) if last else True,
                     "go_backwards": draw(st.booleans())})
    for _ in range(n_dense):
        spec.append({"kind": "dense", "units": draw(st.integers(1, 4)),
                     "activation": draw(st.sampled_from(acts)),
                     "use_bias": draw(st.booleans())})
    return spec


def build(spec, T, D, dtype):
    layers = [keras.Input((T, D) if spec[0]["kind"] == "simple_rnn" else (D,), dtype=dtype)]
    for s in spec:
        if s["kind"] == "simple_rnn":
            layers.append(keras.layers.SimpleRNN(
                s["units"], activation=s["activation"], use_bias=s["use_bias"],
                return_sequences=s["return_sequences"], go_backwards=s["go_backwards"]))
        else:
            layers.append(keras.layers.Dense(s["units"], activation=s["activation"],
                                             use_bias=s["use_bias"]))
    return keras.Sequential(layers)


def problem(spec, B, T, D, seed, dtype):
    keras.set_random_seed(seed)
    model = build(spec, T, D, dtype)
    rng = np.random.default_rng(seed)
    # moderate weights and inputs: exponential and friends stay finite
    weights = [0.5 * w for w in model.get_weights()]
    model.set_weights(weights)
    shape = (B, T, D) if spec[0]["kind"] == "simple_rnn" else (B, D)
    x = rng.uniform(-1, 1, shape)
    y = rng.uniform(-1, 1, model.predict(x.astype(dtype), verbose=0).shape)
    return model, [w.astype(np.float64) for w in model.get_weights()], x, y


def close(actual, expected, dtype, what):
    assert_close(actual, expected, what, np.dtype(dtype))


@settings(max_examples=60, deadline=None)
@given(spec=architectures(), B=st.integers(1, 4), T=st.integers(1, 4), D=st.integers(1, 3),
       loss=st.sampled_from(["mse", "mae"]), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float64", "float32"]))
def test_loss_and_every_gradient_match_the_reference(spec, B, T, D, loss, seed, dtype):
    model, weights, x, y = problem(spec, B, T, D, seed, dtype)
    model.compile(optimizer="sgd", loss=loss)
    with np.errstate(all="ignore"):
        ref_value, ref_grads = ref.loss_and_gradients(spec, weights, x, y, loss)
    assume(np.isfinite(ref_value) and ref_value < 1e30
           and all(np.all(np.isfinite(g)) and np.max(np.abs(g), initial=0) < 1e30
                   for g in ref_grads))
    value = model._loss_and_gradients(x.astype(dtype), y.astype(dtype))
    close(value, ref_value, dtype, "forward")
    if loss == "mae" and dtype == "float32":
        return      # sign(y_pred - y) flips where float32 rounding crosses zero
    close(model.grads, np.concatenate([g.ravel() for g in ref_grads]), dtype, "backward")


@pytest.mark.parametrize("act", ["leaky_relu", "relu", "relu6", "elu", "selu"])
def test_a_kink_at_exactly_zero_takes_kerass_side(act):
    """At z = 0 each activation's slope is the one of Keras's branch that holds z = 0
    (leaky_relu: 1 from ``z >= 0``; relu: 0); found by Hypothesis (relu6 -> leaky_relu)."""
    spec = [{"kind": "dense", "units": 2, "activation": act, "use_bias": False},
            {"kind": "dense", "units": 1, "activation": "linear", "use_bias": True}]
    model = keras.Sequential([keras.layers.Dense(2, activation=act, use_bias=False,
                                                 input_shape=(3,), dtype="float64"),
                              keras.layers.Dense(1, dtype="float64")])
    # the first kernel's first column is 0: those pre-activations are exactly 0
    weights = [np.array([[0.0, 0.5], [0.0, -0.3], [0.0, 0.2]]), np.array([[0.7], [-0.4]]),
               np.array([0.1])]
    model.set_weights(weights)
    model.compile(optimizer="sgd", loss="mse")
    x = np.array([[1.0, 2.0, -1.0], [-0.5, 0.3, 0.8]])
    y = np.array([[0.3], [-0.2]])
    ref_value, ref_grads = ref.loss_and_gradients(spec, weights, x, y, "mse")
    value = model._loss_and_gradients(x, y)
    close(value, ref_value, "float64", "forward")
    close(model.grads, np.concatenate([g.ravel() for g in ref_grads]), "float64", "backward")


@settings(max_examples=40, deadline=None)
@given(spec=architectures(SMOOTH_ACTS), B=st.integers(1, 4), T=st.integers(1, 3),
       D=st.integers(1, 3), case=st.sampled_from(CASES), seed=st.integers(0, 2**16))
def test_five_training_steps_match_the_reference(spec, B, T, D, case, seed):
    name, cfg = case
    model, weights, x, y = problem(spec, B, T, D, seed, "float64")
    model.compile(optimizer=OPT_CLASS[name](**cfg), loss="mse")
    rng = np.random.default_rng(seed + 1)
    batches = [(x * (1 + 0.2 * k), y + rng.uniform(-0.1, 0.1, y.shape)) for k in range(5)]
    with np.errstate(all="ignore"):
        ref_weights, ref_losses = ref.train(spec, weights, name, cfg, batches, "mse")
    # stacked exponential activations can overflow: such cases compare nothing
    assume(all(np.all(np.isfinite(w)) and np.max(np.abs(w), initial=0) < 1e30 for w in ref_weights)
           and np.all(np.isfinite(ref_losses)) and max(ref_losses) < 1e30)
    losses = [model._train_batch(bx, by) for bx, by in batches]
    close(losses, ref_losses, "float64", "forward")
    close(model.params, np.concatenate([w.ravel() for w in ref_weights]), "float64", "backward")


@pytest.mark.parametrize("name, cfg", CASES)
def test_fit_equals_the_reference_step_by_step(name, cfg):
    spec = [{"kind": "simple_rnn", "units": 6, "activation": "tanh", "use_bias": True,
             "return_sequences": True, "go_backwards": True},
            {"kind": "simple_rnn", "units": 4, "activation": "relu", "use_bias": True,
             "return_sequences": False, "go_backwards": False},
            {"kind": "dense", "units": 2, "activation": "linear", "use_bias": True}]
    model, weights, x, y = problem(spec, 24, 5, 3, 7, "float64")
    model.compile(optimizer=OPT_CLASS[name](**cfg), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 24, 8)] * 2
    ref_weights, ref_losses = ref.train(spec, weights, name, cfg, batches, "mse")
    epoch_losses = [np.mean(ref_losses[:3]), np.mean(ref_losses[3:])]
    close(history.history["loss"], epoch_losses, "float64", "forward")
    close(model.params, np.concatenate([w.ravel() for w in ref_weights]), "float64", "backward")
