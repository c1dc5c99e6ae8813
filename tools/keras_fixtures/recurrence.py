"""Record Keras 3's SimpleRNN with masks, initial states and dropout (run in a throwaway venv).

Writes ``tests/fixtures/keras/recurrence_<backend>.npz`` for the backend in
``KERAS_BACKEND`` (``jax`` by default; ``tensorflow`` records the second
file).  The two differ in one corner, which is why both are kept: at the
masked steps *before* a sequence's first unmasked step the JAX backend
outputs the initial state and TensorFlow outputs zeros (see
``fastrnn/reference/recurrence.py``).

Each case is one ``keras.layers.SimpleRNN`` with fixed weights, called on a
fixed float64 input with a step mask (right padding, left padding, holes with
an all-masked and a full sequence, or none), with or without
``initial_state``, ``go_backwards`` and ``return_sequences`` both ways, and
with given dropout masks (``training=True``; the masks are set on the cell
before the call, where ``DropoutRNNCell`` would otherwise draw them).  It
records the output, the final state (``return_state=True``) and the gradient
of ``sum(output * R)`` for a fixed random R with respect to the kernel, the
recurrent kernel, the bias, the input and the initial state (``jax.grad``
through ``layer.stateless_call``, or ``tf.GradientTape``).

Everything is float64 (JAX: x64 mode with the type-promotion patch explained
in ``optimizers_models.py``).  Usage (never a test or CI dependency)::

    python3 -m venv ../keras-venv && ../keras-venv/bin/pip install keras jax jaxlib
    ../keras-venv/bin/python tools/keras_fixtures/recurrence.py
    # and, in a venv with tensorflow-cpu instead of jax:
    KERAS_BACKEND=tensorflow ../keras-tf-venv/bin/python tools/keras_fixtures/recurrence.py
"""
import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ["JAX_ENABLE_X64"] = "1"

import keras  # noqa: E402
import numpy as np  # noqa: E402

BACKEND = keras.backend.backend()
if BACKEND == "jax":
    import jax  # noqa: E402
    from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402

    keras_dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"  # see optimizers_models.py
    BACKEND_VERSION = jax.__version__
elif BACKEND == "tensorflow":
    import tensorflow as tf  # noqa: E402

    BACKEND_VERSION = tf.__version__
else:
    raise SystemExit(f"record with the jax or tensorflow backend, not {BACKEND}")
keras.config.set_floatx("float64")

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras"
META = json.dumps({"keras": keras.__version__, "backend": BACKEND,
                   "backend_version": BACKEND_VERSION, "numpy": np.__version__,
                   "floatx": keras.config.floatx()})

B, T, D, H = 4, 5, 3, 4
LENGTHS = np.array([5, 3, 1, 4])
MASKS = {
    "none": None,
    "right": np.arange(T)[None, :] < LENGTHS[:, None],           # padding="post"
    "left": np.arange(T)[None, :] >= T - LENGTHS[:, None],       # padding="pre" (default)
    "holes": np.array([[1, 0, 1, 1, 0],
                       [0, 0, 0, 0, 0],                          # all masked
                       [1, 1, 1, 1, 1],                          # none masked
                       [0, 1, 0, 0, 1]], dtype=bool),
}


def cases():
    """(name, options) for every recorded case."""
    out = []
    for mask in ("right", "left", "holes"):
        for h0 in (False, True):
            for go_backwards in (False, True):
                for seq in (False, True):
                    name = (f"{mask}{'_h0' if h0 else ''}{'_backwards' if go_backwards else ''}"
                            f"{'_seq' if seq else ''}")
                    out.append((name, dict(mask=mask, h0=h0, go_backwards=go_backwards,
                                           return_sequences=seq, activation="tanh",
                                           dropout=False)))
    for go_backwards in (False, True):
        out.append((f"none_h0{'_backwards' if go_backwards else ''}_seq",
                    dict(mask="none", h0=True, go_backwards=go_backwards,
                         return_sequences=True, activation="tanh", dropout=False)))
        out.append((f"holes_h0_relu{'_backwards' if go_backwards else ''}_seq",
                    dict(mask="holes", h0=True, go_backwards=go_backwards,
                         return_sequences=True, activation="relu", dropout=False)))
        for mask in ("none", "left", "holes"):
            out.append((f"dropout_{mask}_h0{'_backwards' if go_backwards else ''}_seq",
                        dict(mask=mask, h0=True, go_backwards=go_backwards,
                             return_sequences=True, activation="tanh", dropout=True)))
        out.append((f"dropout_right{'_backwards' if go_backwards else ''}",
                    dict(mask="right", h0=False, go_backwards=go_backwards,
                         return_sequences=False, activation="tanh", dropout=True)))
    return out


def arrays(index, options):
    """The case's fixed inputs (a generator seeded by the case's index)."""
    rng = np.random.default_rng(1000 + index)
    a = {
        "x": rng.normal(size=(B, T, D)),
        "kernel": rng.normal(scale=0.6, size=(D, H)),
        "recurrent_kernel": rng.normal(scale=0.5, size=(H, H)),
        "bias": rng.normal(scale=0.3, size=H),
    }
    shape = (B, T, H) if options["return_sequences"] else (B, H)
    a["R"] = rng.normal(size=shape)
    if options["h0"]:
        a["h0"] = rng.normal(scale=0.7, size=(B, H))
    if MASKS[options["mask"]] is not None:
        a["mask"] = MASKS[options["mask"]].astype(np.uint8)
    if options["dropout"]:
        # Keras's inverted masks: 0 with probability rate, else 1 / (1 - rate)
        a["dropout_mask"] = (rng.random((B, D)) >= 0.3) / 0.7
        a["recurrent_dropout_mask"] = (rng.random((B, H)) >= 0.4) / 0.6
    return a


def make_layer(options):
    layer = keras.layers.SimpleRNN(
        H, activation=options["activation"], return_sequences=options["return_sequences"],
        go_backwards=options["go_backwards"], return_state=True,
        dropout=0.3 if options["dropout"] else 0.0,
        recurrent_dropout=0.4 if options["dropout"] else 0.0)
    layer.build((B, T, D))
    return layer


def call(layer, a, x, h0, training):
    """layer(x) with the case's mask, initial state and dropout masks."""
    if "dropout_mask" in a:     # used by DropoutRNNCell instead of drawing its own
        layer.cell._dropout_mask = keras.ops.convert_to_tensor(a["dropout_mask"])
        layer.cell._recurrent_dropout_mask = keras.ops.convert_to_tensor(
            a["recurrent_dropout_mask"])
    kwargs = {"training": training}
    if "mask" in a:
        kwargs["mask"] = keras.ops.convert_to_tensor(a["mask"].astype(bool))
    if h0 is not None:
        kwargs["initial_state"] = h0
    return layer(x, **kwargs)


def record_jax(layer, a, training):
    import jax.numpy as jnp

    weights = [jnp.asarray(a[k]) for k in ("kernel", "recurrent_kernel", "bias")]
    layer.set_weights([np.asarray(w) for w in weights])
    R = jnp.asarray(a["R"])

    non_trainable = [v.value for v in layer.non_trainable_variables]   # the seed generator

    def run(params, x, h0):
        if "dropout_mask" in a:
            layer.cell._dropout_mask = jnp.asarray(a["dropout_mask"])
            layer.cell._recurrent_dropout_mask = jnp.asarray(a["recurrent_dropout_mask"])
        kwargs = {"training": training}
        if "mask" in a:
            kwargs["mask"] = jnp.asarray(a["mask"].astype(bool))
        if h0 is not None:
            kwargs["initial_state"] = h0
        (output, state), _ = layer.stateless_call(params, non_trainable, x, **kwargs)
        return output, state

    def loss(params, x, h0):
        output, _ = run(params, x, h0)
        return jnp.sum(output * R)

    x = jnp.asarray(a["x"])
    h0 = jnp.asarray(a["h0"]) if "h0" in a else None
    output, state = run(weights, x, h0)
    if h0 is None:
        grads, dx = jax.grad(lambda p, x: loss(p, x, None), argnums=(0, 1))(weights, x)
        dh0 = None
    else:
        grads, dx, dh0 = jax.grad(loss, argnums=(0, 1, 2))(weights, x, h0)
    return output, state, grads, dx, dh0


def record_tf(layer, a, training):
    layer.set_weights([a["kernel"], a["recurrent_kernel"], a["bias"]])
    x = tf.constant(a["x"])
    h0 = tf.constant(a["h0"]) if "h0" in a else None
    with tf.GradientTape() as tape:
        tape.watch(x)
        if h0 is not None:
            tape.watch(h0)
        output, state = call(layer, a, x, h0, training)
        loss = tf.reduce_sum(output * tf.constant(a["R"]))
    sources = list(layer.trainable_variables) + [x] + ([h0] if h0 is not None else [])
    grads = tape.gradient(loss, sources)
    dh0 = grads[4] if h0 is not None else None
    return output, state, grads[:3], grads[3], dh0


def main():
    data = {"meta": np.array(META)}
    names = []
    for index, (name, options) in enumerate(cases()):
        a = arrays(index, options)
        layer = make_layer(options)
        record = record_jax if BACKEND == "jax" else record_tf
        output, state, grads, dx, dh0 = record(layer, a, training=options["dropout"])
        for key, value in a.items():
            data[f"{name}/{key}"] = value
        data[f"{name}/options"] = np.array(json.dumps(options))
        data[f"{name}/output"] = np.asarray(output, dtype=np.float64)
        data[f"{name}/state"] = np.asarray(state, dtype=np.float64)
        for key, value in zip(("dkernel", "drecurrent_kernel", "dbias"), grads):
            data[f"{name}/{key}"] = np.asarray(value, dtype=np.float64)
        data[f"{name}/dx"] = np.asarray(dx, dtype=np.float64)
        if dh0 is not None:
            data[f"{name}/dh0"] = np.asarray(dh0, dtype=np.float64)
        names.append(name)
    data["cases"] = np.array(names)
    data["README"] = np.array(
        "Per case <name>/: inputs x (B,T,D), kernel, recurrent_kernel, bias, optional h0 "
        "(initial_state), mask (uint8 (B,T), absent: none), dropout_mask (B,D) and "
        "recurrent_dropout_mask (B,H) (set on the cell, training=True), R (the cotangent of "
        "the output); options (JSON: mask kind, h0, go_backwards, return_sequences, "
        "activation, dropout); Keras's output (processing order), state (return_state), "
        "and the gradients of sum(output * R): dkernel, drecurrent_kernel, dbias, dx, dh0.")
    path = OUT / f"recurrence_{BACKEND}.npz"
    np.savez_compressed(path, **data)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(names)} cases)")


if __name__ == "__main__":
    main()
