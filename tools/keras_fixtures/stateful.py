"""Record Keras 3's stateful SimpleRNN (``stateful=True``) over fit and predict.

Run in a throwaway venv with Keras 3 and TensorFlow (never a test or CI
dependency); fastrnn's tests read ``tests/fixtures/keras/stateful.npz``::

    python3 -m venv ../keras-tf-venv && ../keras-tf-venv/bin/pip install keras tensorflow-cpu
    KERAS_BACKEND=tensorflow ../keras-tf-venv/bin/python tools/keras_fixtures/stateful.py

Why TensorFlow: with the JAX backend (Keras 3.15) the state variables of a
stateful RNN are not among the model's tracked variables, so ``fit``,
``predict`` and ``evaluate`` (which run the model statelessly) never carry
the state from one batch to the next -- only eager calls do.  The TensorFlow
backend follows the documented semantics, which fastrnn implements: the last
state of sample ``b`` of a batch is the initial state of sample ``b`` of the
next batch, across batches, epochs and calls, until ``reset_states()``.

Each case is a small float64 model with fixed weights and a fixed batch size
of B: ``fit`` for two epochs of two batches each (``shuffle=False``, the
state carried from epoch to epoch), then ``predict`` on two more batches,
then ``reset_states()`` and ``predict`` on the first of those batches.
Also a stateful Sequential saved as ``keras_stateful.keras`` (after a
``predict``: Keras saves ``stateful``, not the state) and its predictions
over two batches from a reset state (``file/x``, ``file/pred``).
Recorded: the initial weights, the data, the per-epoch losses, the weights
and every stateful layer's state after ``fit``, the predictions and the
states after ``predict``, and the prediction after the reset.
"""
import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise SystemExit("record with KERAS_BACKEND=tensorflow (see the module docstring)")
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras"
META = json.dumps({"keras": keras.__version__, "backend": "tensorflow",
                   "backend_version": tf.__version__, "numpy": np.__version__,
                   "floatx": keras.config.floatx()})

B, T, D, H = 3, 4, 2, 5


def build(case):
    """The case's model (the same builder is written out in tests/test_stateful.py)."""
    x = keras.Input(batch_shape=(B, T, D))
    if case == "last_state_sgd":
        h = keras.layers.SimpleRNN(H, stateful=True)(x)
        out = keras.layers.Dense(1)(h)
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
    elif case == "sequences_backwards_adam":
        h = keras.layers.SimpleRNN(H, stateful=True, return_sequences=True,
                                   go_backwards=True)(x)
        out = keras.layers.Dense(2)(h)
        optimizer = keras.optimizers.Adam(learning_rate=0.01)
    elif case == "stacked_sgd":
        h = keras.layers.SimpleRNN(H, stateful=True, return_sequences=True)(x)
        h = keras.layers.SimpleRNN(3, stateful=True)(h)
        out = keras.layers.Dense(1)(h)
        optimizer = keras.optimizers.SGD(learning_rate=0.05)
    elif case == "bidirectional_sgd":
        h = keras.layers.Bidirectional(keras.layers.SimpleRNN(H, stateful=True))(x)
        out = keras.layers.Dense(1)(h)
        optimizer = keras.optimizers.SGD(learning_rate=0.05)
    else:
        raise ValueError(case)
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


def states(model):
    return [keras.ops.convert_to_numpy(layer.states[0]) for layer in stateful_layers(model)]


def record(case, seed):
    rng = np.random.default_rng(seed)
    model = build(case)
    weights = [rng.uniform(-0.6, 0.6, w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    units = model.outputs[0].shape[-1]
    seq = len(model.outputs[0].shape) == 3
    x_fit = rng.standard_normal((2 * B, T, D))
    y_fit = rng.standard_normal((2 * B, T, units) if seq else (2 * B, units))
    x_pred = rng.standard_normal((2 * B, T, D))
    history = model.fit(x_fit, y_fit, batch_size=B, epochs=2, shuffle=False, verbose=0)
    entry = {"x_fit": x_fit, "y_fit": y_fit, "x_pred": x_pred,
             "loss": np.array(history.history["loss"])}
    for k, w in enumerate(weights):
        entry[f"weights_init/{k}"] = w
    for k, w in enumerate(model.get_weights()):
        entry[f"weights_fit/{k}"] = w
    for k, s in enumerate(states(model)):
        entry[f"state_fit/{k}"] = s
    entry["pred"] = model.predict(x_pred, batch_size=B, verbose=0)
    for k, s in enumerate(states(model)):
        entry[f"state_pred/{k}"] = s
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    entry["pred_reset"] = model.predict(x_pred[:B], batch_size=B, verbose=0)
    return {f"{case}/{key}": value for key, value in entry.items()}


def record_file(seed):
    """A Sequential stateful model saved as ``keras_stateful.keras``, and its predictions
    over two batches (the state carried from the first to the second)."""
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(batch_shape=(B, T, D)),
                              keras.layers.SimpleRNN(H, stateful=True, return_sequences=True),
                              keras.layers.Dense(2)])
    model.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in model.get_weights()])
    x = rng.standard_normal((2 * B, T, D))
    model.predict(x[:B], batch_size=B, verbose=0)      # a state that must not be saved
    model.save(OUT / "keras_stateful.keras")
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()
    return {"file/x": x, "file/pred": model.predict(x, batch_size=B, verbose=0)}


def main():
    arrays = {"meta": np.array(META)}
    for seed, case in enumerate(["last_state_sgd", "sequences_backwards_adam", "stacked_sgd",
                                 "bidirectional_sgd"]):
        arrays.update(record(case, seed))
    arrays.update(record_file(10))
    np.savez_compressed(OUT / "stateful.npz", **arrays)
    print(f"wrote {OUT / 'stateful.npz'} ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
