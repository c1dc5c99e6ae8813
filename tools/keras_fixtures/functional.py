"""Record Keras 3 truth for functional models (run in a throwaway venv).

Writes ``tests/fixtures/keras/functional.npz``: for every case of
``tests/functional_cases.py`` (the same builders the tests use with
fastrnn): the class names of ``model.layers`` in Keras's order, each layer's
inbound layers (the summary's "Connected to"), fixed weights, one batch of
inputs and targets, and Keras's predictions, ``evaluate(return_dict=True)``
(the total and each output's loss with ``loss_weights``), the gradient of
the total loss with respect to every weight (``jax.grad`` through
``model.stateless_call``), and the losses and weights of two
``train_on_batch`` steps with SGD.  The dropout case has predictions only
(Keras's random masks are not fastrnn's).

float64 as in optimizers_models.py (JAX x64, ``set_floatx("float64")`` and
the same one-line dtype patch); the predictions are also recorded in Keras's
default float32.

Usage (never a test or CI dependency)::

    python3 -m venv ../keras-venv && ../keras-venv/bin/pip install keras jax jaxlib
    ../keras-venv/bin/python tools/keras_fixtures/functional.py
"""
import json
import sys

from keras_float64 import META, OUT, ROOT, fixed_weights  # first: Keras on JAX in float64

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
import functional_cases as cases  # noqa: E402


def _connections(model):
    out = []
    for layer in model.layers:
        node = layer._inbound_nodes[0]
        out.append([layer.name, [t._keras_history.operation.name for t in node.input_tensors]])
    return out


def _total_and_grads(model, xs, ys, losses, loss_weights):
    fns = [keras.losses.get(name) for name in losses]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def total(trainable):
        preds, _ = model.stateless_call(trainable, non_trainable, xs)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        return sum(w * keras.ops.mean(fn(y, p)) for fn, w, y, p in
                   zip(fns, loss_weights, ys, preds))

    value, grads = jax.value_and_grad(total)([v.value for v in model.trainable_variables])
    return float(value), [np.asarray(g) for g in grads]


def main():
    rng = np.random.default_rng(20240910)
    data = {"meta": META}
    for name, build in cases.CASES.items():
        keras.utils.clear_session()
        model, kinds = build(keras, "float64")
        shapes = [t.shape[1:] for t in model.inputs]
        weights = fixed_weights(model, rng)
        model.set_weights(weights)
        xs = cases.draw_inputs(kinds, shapes, rng)
        feed = xs if len(xs) > 1 else xs[0]         # as the model's inputs were given
        preds = model.predict(feed, verbose=0)
        preds = preds if isinstance(preds, list) else [preds]
        ys = [rng.uniform(-1, 1, p.shape) for p in preds]
        p = f"{name}/"
        data[p + "layers"] = json.dumps([type(layer).__name__ for layer in model.layers])
        data[p + "connections"] = json.dumps(_connections(model))
        data[p + "n_weights"] = len(weights)
        data[p + "n_inputs"] = len(xs)
        data[p + "n_outputs"] = len(preds)
        for k, w in enumerate(weights):
            data[p + f"weight{k}"] = w
        for k, x in enumerate(xs):
            data[p + f"x{k}"] = x
        for k, (pred, y) in enumerate(zip(preds, ys)):
            data[p + f"prediction{k}"] = pred
            data[p + f"y{k}"] = y
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")    # layers follow the policy, not floatx
        model32, _ = build(keras, "float32")
        model32.set_weights([w.astype(np.float32) for w in weights])
        x32 = [x if x.dtype.kind == "i" else x.astype(np.float32) for x in xs]
        p32 = model32.predict(x32 if len(x32) > 1 else x32[0], verbose=0)
        keras.config.set_floatx("float64")
        keras.config.set_dtype_policy("float64")
        for k, pred in enumerate(p32 if isinstance(p32, list) else [p32]):
            assert pred.dtype == np.float32
            data[p + f"float32/prediction{k}"] = pred
        if name in cases.PREDICT_ONLY:
            continue
        losses, loss_weights = cases.losses_for(len(preds))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses,
                      loss_weights=loss_weights)
        targets = ys if len(ys) > 1 else ys[0]
        logs = model.evaluate(feed, targets, verbose=0, return_dict=True, batch_size=len(xs[0]))
        total, grads = _total_and_grads(model, feed, ys, losses, loss_weights)
        assert abs(total - logs["loss"]) < 1e-9 * max(1, abs(total)), (name, total, logs)
        data[p + "evaluate"] = json.dumps(logs)
        for k, g in enumerate(grads):
            data[p + f"grad{k}"] = g
        steps = []
        for step in range(2):
            result = model.train_on_batch(feed, targets)  # [loss, <output>_loss, ...] or loss
            steps.append(float(np.ravel(result)[0]))
            data[p + f"train/params{step}"] = np.concatenate(
                [w.ravel() for w in model.get_weights()])
        data[p + "train/losses"] = np.array(steps)
    data["cases"] = json.dumps(list(cases.CASES))
    data["README"] = (
        "cases: JSON list; per case <name>/layers (JSON class names in model.layers order), "
        "/connections (JSON [layer name, [inbound layer names]]), /weight<k> (n_weights, "
        "get_weights() order), /x<k> (n_inputs), /y<k> and /prediction<k> (n_outputs), "
        "/float32/prediction<k> (Keras's float32 model, same weights); except the dropout "
        "case: /evaluate (JSON return_dict with loss_weights 1, 1.5, ... and losses mse, mae, "
        "...), /grad<k> (jax.grad of the total loss), /train/losses (2,) and "
        "/train/params<s> (flat weights after step s) of SGD(0.1) train_on_batch on the batch. "
        "float64 unless named float32.")
    np.savez_compressed(OUT / "functional.npz", **data)
    print("wrote", OUT / "functional.npz", len(cases.CASES), "cases")


if __name__ == "__main__":
    main()
