"""Record Keras 3 truth for the whole-model reference (run in a throwaway venv).

Writes, next to the tests (each file well under 300 KB):

- ``tests/fixtures/keras/optimizers.npz``: every optimizer and option applied
  to fixed float64 variables with a fixed sequence of 5 gradients, and the
  variables after each step;
- ``tests/fixtures/keras/models.npz``: small Sequential models with fixed
  weights and inputs: predictions, the loss and its gradient with respect to
  every weight (``jax.grad`` through ``model.stateless_call``), and the weights
  and losses of 3 ``train_on_batch`` steps with Adam, SGD and RMSprop;
- ``tests/fixtures/keras/activations.npz``: every activation by name on a
  grid that includes the kinks: the output and the vector-Jacobian product.

Everything is float64: ``keras.config.set_floatx("float64")`` with JAX's x64
mode, so variables, learning rates and optimizer slots are all float64.  One
patch is needed for that: Keras's type promotion maps float64 to float32 on the
JAX backend whatever x64 says (``BIT64_TO_BIT32_DTYPE`` in
``keras/src/backend/common/dtypes.py``), so ``keras.ops.tanh`` of a float64
tensor is float32 and a float64 SimpleRNN(tanh) fails inside ``lax.scan``; the
script keeps float64 as float64 there.  To show the patch changes nothing but
precision, the models are also run in Keras's default float32, where the patch
plays no part, and recorded (``<name>/float32/...``).  The versions used are in
each file's ``meta`` entry (recorded with Keras 3.15.1, JAX 0.10.2).

Usage (never a test or CI dependency)::

    python3 -m venv ../keras-venv && ../keras-venv/bin/pip install keras jax jaxlib
    ../keras-venv/bin/python tools/keras_fixtures/optimizers_models.py

The layout of each file is described in its ``README`` entry (a string array).
"""
import json
import os
import pathlib

os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_ENABLE_X64"] = "1"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402

keras_dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"  # see the module docstring
keras.config.set_floatx("float64")
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras"
META = json.dumps({"keras": keras.__version__, "jax": jax.__version__,
                   "numpy": np.__version__, "backend": keras.backend.backend(),
                   "floatx": keras.config.floatx()})


# ------------------------------------------------------------------ optimizers

# (name, Keras class, config); a "learning_rate" given as a dict is an
# ExponentialDecay schedule: lr(it) = initial * rate ** (it / steps).
OPTIMIZER_CASES = [
    ("adam", "Adam", {}),
    ("adam_amsgrad", "Adam", {"amsgrad": True, "learning_rate": 0.05}),
    ("adam_betas", "Adam", {"beta_1": 0.5, "beta_2": 0.8, "epsilon": 0.01, "learning_rate": 0.1}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.05, "clipnorm": 0.5}),
    ("adam_global_clipnorm", "Adam", {"learning_rate": 0.05, "global_clipnorm": 0.8}),
    ("adam_clipvalue", "Adam", {"learning_rate": 0.05, "clipvalue": 0.3}),
    ("adam_weight_decay", "Adam", {"learning_rate": 0.05, "weight_decay": 0.2}),
    ("adam_schedule", "Adam", {"learning_rate": {"initial_learning_rate": 0.1, "decay_steps": 1,
                                                 "decay_rate": 0.5}}),
    ("adamw", "AdamW", {}),
    ("adamw_strong", "AdamW", {"learning_rate": 0.05, "weight_decay": 0.3}),
    ("adamw_amsgrad_clipnorm", "AdamW", {"learning_rate": 0.05, "weight_decay": 0.1,
                                         "amsgrad": True, "clipnorm": 0.7}),
    ("adamw_schedule", "AdamW", {"weight_decay": 0.5, "learning_rate": {
        "initial_learning_rate": 0.2, "decay_steps": 2, "decay_rate": 0.3}}),
    ("sgd", "SGD", {}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd_nesterov_no_momentum", "SGD", {"learning_rate": 0.1, "nesterov": True}),
    ("sgd_clipnorm", "SGD", {"learning_rate": 0.1, "momentum": 0.5, "clipnorm": 0.5}),
    ("sgd_global_clipnorm", "SGD", {"learning_rate": 0.1, "global_clipnorm": 0.8}),
    ("sgd_clipvalue", "SGD", {"learning_rate": 0.1, "clipvalue": 0.3}),
    ("sgd_weight_decay", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.2}),
    ("sgd_schedule", "SGD", {"momentum": 0.5, "learning_rate": {
        "initial_learning_rate": 0.5, "decay_steps": 1, "decay_rate": 0.5}}),
    ("rmsprop", "RMSprop", {}),
    ("rmsprop_rho", "RMSprop", {"learning_rate": 0.05, "rho": 0.5, "epsilon": 0.01}),
    ("rmsprop_momentum", "RMSprop", {"learning_rate": 0.05, "momentum": 0.9}),
    ("rmsprop_centered", "RMSprop", {"learning_rate": 0.05, "centered": True}),
    ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.05, "centered": True,
                                              "momentum": 0.5, "rho": 0.7}),
    ("rmsprop_clipnorm", "RMSprop", {"learning_rate": 0.05, "clipnorm": 0.5}),
    ("rmsprop_clipvalue", "RMSprop", {"learning_rate": 0.05, "clipvalue": 0.3,
                                      "weight_decay": 0.1}),
    ("adagrad", "Adagrad", {}),
    ("adagrad_options", "Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5,
                                    "epsilon": 0.001}),
    ("adagrad_zero_accumulator", "Adagrad", {"learning_rate": 0.1,
                                             "initial_accumulator_value": 0.0}),
    ("adagrad_global_clipnorm", "Adagrad", {"learning_rate": 0.1, "global_clipnorm": 0.8,
                                            "weight_decay": 0.1}),
]
VARIABLE_SHAPES = [(3, 2), (2,), (4,)]
STEPS = 5


def _keras_optimizer(class_name, config):
    config = dict(config)
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(
            **config["learning_rate"])
    return getattr(keras.optimizers, class_name)(**config)


def record_optimizers():
    rng = np.random.default_rng(20240901)
    sizes = [int(np.prod(s)) for s in VARIABLE_SHAPES]
    init = rng.uniform(-1, 1, sum(sizes))
    # Gradients of varied size, so clipping binds in some steps and not others;
    # step 3 gives the second variable a zero gradient (clipnorm's 0 branch).
    scales = np.array([0.1, 1.0, 3.0, 0.02, 0.5])
    grads = rng.standard_normal((STEPS, sum(sizes))) * scales[:, None]
    grads[2, sizes[0]:sizes[0] + sizes[1]] = 0.0
    data = {"init": init, "grads": grads, "sizes": np.array(sizes),
            "shapes": json.dumps(VARIABLE_SHAPES), "meta": META}
    names = []
    for name, class_name, config in OPTIMIZER_CASES:
        optimizer = _keras_optimizer(class_name, config)
        parts = np.split(init, np.cumsum(sizes)[:-1])
        variables = [keras.Variable(p.reshape(s), dtype="float64")
                     for p, s in zip(parts, VARIABLE_SHAPES)]
        history = []
        for step in range(STEPS):
            step_grads = [g.reshape(s) for g, s in
                          zip(np.split(grads[step], np.cumsum(sizes)[:-1]), VARIABLE_SHAPES)]
            optimizer.apply(step_grads, variables)
            assert all(v.dtype == "float64" for v in variables)
            history.append(np.concatenate([np.asarray(v.value).ravel() for v in variables]))
        assert int(optimizer.iterations) == STEPS
        data[f"{name}/params"] = np.array(history)
        data[f"{name}/optimizer"] = class_name.lower()
        data[f"{name}/config"] = json.dumps(config)
        names.append(name)
    data["cases"] = json.dumps(names)
    data["README"] = (
        "init (P,): the variables, flat; sizes/shapes: the variables' sizes and shapes; "
        "grads (5, P): the gradient of each step; cases: JSON list of case names; per case "
        "<name>/optimizer (adam, adamw, sgd, rmsprop, adagrad), <name>/config (JSON options; a "
        "learning_rate dict is ExponentialDecay(initial_learning_rate, decay_steps, decay_rate)), "
        "<name>/params (5, P): the variables after each step. float64 throughout.")
    np.savez_compressed(OUT / "optimizers.npz", **data)
    return names


# ------------------------------------------------------------------ models

def rnn(units, activation="tanh", use_bias=True, return_sequences=False, go_backwards=False):
    return {"kind": "simple_rnn", "units": units, "activation": activation, "use_bias": use_bias,
            "return_sequences": return_sequences, "go_backwards": go_backwards}


def dense(units, activation="linear", use_bias=True):
    return {"kind": "dense", "units": units, "activation": activation, "use_bias": use_bias}


MODEL_CASES = [
    ("tutorial", [rnn(4), dense(1)], "mse"),
    ("stacked_relu_sigmoid", [rnn(4, "relu", return_sequences=True),
                              rnn(3, "sigmoid", go_backwards=True), dense(2)], "mae"),
    ("backwards_sequences_softmax", [rnn(4, return_sequences=True, go_backwards=True),
                                     dense(3, "softmax")], "mse"),
    ("no_bias_per_step", [rnn(3, "elu", use_bias=False, return_sequences=True),
                          rnn(4, "gelu", return_sequences=True),
                          dense(3, "relu", use_bias=False), dense(1)], "mse"),
    ("smooth_mix", [rnn(3, "softsign", return_sequences=True),
                    rnn(3, "mish", return_sequences=True, go_backwards=True),
                    rnn(3, "silu"), dense(3, "selu"), dense(2, "softplus")], "mse"),
    ("kinked_mix", [rnn(4, "hard_sigmoid", return_sequences=True),
                    rnn(3, "relu6", go_backwards=True, return_sequences=True),
                    dense(3, "leaky_relu"), dense(2, "hard_silu")], "mae"),
    ("dense_first", [dense(3, "softplus"), rnn(4, "exponential", use_bias=False),
                     dense(3, "log_softmax")], "mse"),
]
TRAIN_OPTIMIZERS = [("adam", "Adam", {"learning_rate": 0.01}),
                    ("sgd", "SGD", {"learning_rate": 0.01, "momentum": 0.9}),
                    ("rmsprop", "RMSprop", {"learning_rate": 0.01})]
B, T, D = 4, 5, 2
TRAIN_STEPS = 3


def _build(spec, dtype="float64"):
    layers = [keras.Input((T, D), dtype=dtype)]
    for layer in spec:
        if layer["kind"] == "simple_rnn":
            layers.append(keras.layers.SimpleRNN(
                layer["units"], activation=layer["activation"], use_bias=layer["use_bias"],
                return_sequences=layer["return_sequences"], go_backwards=layer["go_backwards"],
                dtype=dtype))
        else:
            layers.append(keras.layers.Dense(layer["units"], activation=layer["activation"],
                                             use_bias=layer["use_bias"], dtype=dtype))
    return keras.Sequential(layers)


def _fixed_weights(model, rng):
    """Small, fixed weights: recurrent kernels at spectral radius 0.8."""
    weights = []
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("recurrent_kernel"):
            m = rng.standard_normal(shape)
            weights.append(m * 0.8 / max(np.abs(np.linalg.eigvals(m))))
        elif variable.path.endswith("kernel"):
            weights.append(rng.uniform(-1, 1, shape) / np.sqrt(shape[0]))
        else:
            weights.append(rng.uniform(-0.4, 0.4, shape))
    return weights


def _prediction_loss_gradients(model, x, y, loss):
    """model(x), the Keras loss object's value, and jax.grad of the loss."""
    prediction = np.asarray(model(x))
    loss_fn = keras.losses.get(loss)  # per sample, no reduction

    non_trainable = [v.value for v in model.non_trainable_variables]  # e.g. dropout seeds

    def total_loss(trainable):
        y_pred, _ = model.stateless_call(trainable, non_trainable, x)
        return keras.ops.mean(loss_fn(y, y_pred))

    value, grads = jax.value_and_grad(total_loss)([v.value for v in model.trainable_variables])
    loss_object = {"mse": keras.losses.MeanSquaredError,
                   "mae": keras.losses.MeanAbsoluteError}[loss]()
    keras_loss = float(loss_object(y, prediction))
    assert abs(keras_loss - float(value)) <= 1e-6 * max(1, abs(keras_loss))
    return prediction, keras_loss, [np.asarray(g) for g in grads]


def record_models():
    rng = np.random.default_rng(20240902)
    data = {"meta": META}
    names = []
    for name, spec, loss in MODEL_CASES:
        model = _build(spec)
        assert [v.path for v in model.trainable_variables] == [v.path for v in model.weights]
        assert all(v.dtype == "float64" for v in model.weights)
        weights = _fixed_weights(model, rng)
        model.set_weights(weights)
        xs = rng.standard_normal((TRAIN_STEPS, B, T, D))
        y_shape = (TRAIN_STEPS,) + tuple(model.output_shape[1:])
        ys = rng.standard_normal((TRAIN_STEPS, B) + y_shape[1:])
        prediction, loss_value, grads = _prediction_loss_gradients(model, xs[0], ys[0], loss)
        prefix = f"{name}/"
        data[prefix + "spec"] = json.dumps(spec)
        data[prefix + "loss"] = loss
        data[prefix + "x"] = xs
        data[prefix + "y"] = ys
        data[prefix + "n_weights"] = len(weights)
        for k, w in enumerate(weights):
            data[prefix + f"weight{k}"] = w
            data[prefix + f"grad{k}"] = np.asarray(grads[k])
        data[prefix + "prediction"] = prediction
        data[prefix + "loss_value"] = loss_value
        # The same in Keras's default float32 (no dtype patch involved).
        keras.config.set_floatx("float32")
        model32 = _build(spec, "float32")
        model32.set_weights([w.astype(np.float32) for w in weights])
        p32, l32, g32 = _prediction_loss_gradients(model32, xs[0].astype(np.float32),
                                                   ys[0].astype(np.float32), loss)
        assert p32.dtype == np.float32
        keras.config.set_floatx("float64")
        data[prefix + "float32/prediction"] = p32
        data[prefix + "float32/loss_value"] = l32
        for k, g in enumerate(g32):
            data[prefix + f"float32/grad{k}"] = g
        for opt_name, class_name, config in TRAIN_OPTIMIZERS:
            model.set_weights(weights)
            model.compile(optimizer=getattr(keras.optimizers, class_name)(**config), loss=loss)
            losses, history = [], []
            for step in range(TRAIN_STEPS):
                losses.append(float(model.train_on_batch(xs[step], ys[step])))
                history.append(np.concatenate([w.ravel() for w in model.get_weights()]))
            assert np.all(np.isfinite(history)), (name, opt_name)
            data[prefix + f"train/{opt_name}/config"] = json.dumps(config)
            data[prefix + f"train/{opt_name}/losses"] = np.array(losses)
            data[prefix + f"train/{opt_name}/params"] = np.array(history)
        names.append(name)
    data["cases"] = json.dumps(names)
    data["optimizers"] = json.dumps([o for o, _, _ in TRAIN_OPTIMIZERS])
    data["README"] = (
        "cases: JSON list of model names; per model <name>/spec (JSON layer specs as SPEC.md), "
        "<name>/loss (mse or mae), <name>/x (3, B, T, D) and <name>/y (3, B, ...): three "
        "batches; <name>/weight<k> the initial get_weights(), <name>/n_weights; on batch 0: "
        "<name>/prediction (model(x)), <name>/loss_value, <name>/grad<k> (jax.grad of the "
        "loss through model.stateless_call); <name>/float32/{prediction,loss_value,grad<k>} the same in Keras's default float32; <name>/train/<opt>/config (JSON options), "
        "/losses (3,) as train_on_batch returned them on batches 0, 1, 2, /params (3, P): "
        "the flat get_weights() after each step. float64 except the float32 entries.")
    np.savez_compressed(OUT / "models.npz", **data)
    return names


# ------------------------------------------------------------------ activations

ACTIVATION_NAMES = ["linear", "tanh", "relu", "sigmoid", "softmax", "softplus", "softsign", "elu",
                    "selu", "exponential", "hard_sigmoid", "silu", "swish", "gelu", "relu6",
                    "leaky_relu", "mish", "log_softmax", "hard_silu", "hard_swish", "celu",
                    "squareplus", "sparse_plus", "soft_shrink", "tanh_shrink", "hard_tanh",
                    "hard_shrink", "log_sigmoid", "sparse_sigmoid", "sparsemax"]
KINKS = np.array([[-6.0, -3.0, -1.0, -0.5, 0.0, 0.5], [1.0, 3.0, 6.0, 0.0, -1.0, 2.0]])


def record_activations():
    rng = np.random.default_rng(20240903)
    z = np.concatenate([KINKS, rng.standard_normal((6, 6)) * 2.5, rng.uniform(-8, 8, (2, 6))])
    dh = rng.standard_normal(z.shape)
    data = {"z": z, "dh": dh, "meta": META, "names": json.dumps(ACTIVATION_NAMES),
            "kink_rows": np.array([0, 1])}
    for name in ACTIVATION_NAMES:
        fn = keras.activations.get(name)
        h, vjp = jax.vjp(fn, z)
        data[f"{name}/h"] = np.asarray(h)
        data[f"{name}/dz"] = np.asarray(vjp(dh)[0])
    data["README"] = (
        "z (10, 6): rows 0-1 hit the kinks (-6, -3, -1, -1/2, 0, 1/2, 1, 3, 6), the rest "
        "random; dh: a random cotangent; per name (keras.activations.get(name)): <name>/h = "
        "act(z) (softmax-like ones per row) and <name>/dz = the vector-Jacobian product of dh "
        "(jax.vjp). float64.")
    np.savez_compressed(OUT / "activations.npz", **data)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    print("optimizer cases:", record_optimizers())
    print("model cases:", record_models())
    record_activations()
    for f in ("optimizers.npz", "models.npz", "activations.npz"):
        print(f, (OUT / f).stat().st_size, "bytes")
