"""Record Keras 3 truth for masks flowing through models (run in a throwaway venv).

Writes ``tests/fixtures/keras/masks.npz``: for every case of
``tests/mask_cases.py`` (the same builders the tests use with fastrnn):
fixed weights, one padded batch (padding after, before, a hole, none, all
padding), targets and per-step sample weights, and Keras's predictions,
``evaluate(return_dict=True)`` without and with the sample weights (masked
steps count neither in the loss nor in the metrics), and the losses and
weights of two ``train_on_batch`` steps with SGD(0.1) (the first step's
weights give Keras's gradient of the masked loss: (w0 - w1) / 0.1).

float64 as in optimizers_models.py (JAX x64, ``set_floatx("float64")`` and
the same one-line dtype patch).

Usage (never a test or CI dependency)::

    python3 -m venv ../keras-venv && ../keras-venv/bin/pip install keras jax jaxlib
    ../keras-venv/bin/python tools/keras_fixtures/masks.py
"""
import json
import sys

from keras_float64 import META, OUT, ROOT, fixed_weights  # first: Keras on JAX in float64

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
import mask_cases as cases  # noqa: E402

LR = 0.1


def main():
    rng = np.random.default_rng(20261127)
    data = {"meta": META}
    for name, build in cases.CASES.items():
        keras.utils.clear_session()
        model, kinds, losses, metrics = build(keras, "float64")
        weights = fixed_weights(model, rng)
        model.set_weights(weights)
        xs = cases.draw_inputs(kinds, rng)
        feed = xs if len(xs) > 1 else xs[0]
        preds = model.predict(feed, verbose=0)
        preds = preds if isinstance(preds, list) else [preds]
        ys = [cases.targets_for(loss, p, rng) for loss, p in zip(losses, preds)]
        sw = rng.uniform(0.5, 2, preds[0].shape[:2])      # per-step (temporal) weights
        p = f"{name}/"
        data[p + "n_weights"] = len(weights)
        data[p + "n_inputs"] = len(xs)
        data[p + "n_outputs"] = len(preds)
        data[p + "sample_weight"] = sw
        for k, w in enumerate(weights):
            data[p + f"weight{k}"] = w
        for k, x in enumerate(xs):
            data[p + f"x{k}"] = x
        for k, (pred, y) in enumerate(zip(preds, ys)):
            data[p + f"prediction{k}"] = pred
            data[p + f"y{k}"] = y
        targets = ys if len(ys) > 1 else ys[0]
        model.compile(optimizer=keras.optimizers.SGD(LR), loss=losses if len(ys) > 1
                      else losses[0], metrics=metrics or None,
                      weighted_metrics=metrics or None)
        logs = model.evaluate(feed, targets, verbose=0, return_dict=True, batch_size=cases.B)
        data[p + "evaluate"] = json.dumps(logs)
        per_step = all(pred.ndim == 3 for pred in preds)
        if per_step:
            logs = model.evaluate(feed, targets, verbose=0, return_dict=True,
                                  sample_weight=sw if len(ys) == 1 else [sw] * len(ys),
                                  batch_size=cases.B)
            data[p + "evaluate_weighted"] = json.dumps(logs)
        if name in cases.EVALUATE_ONLY:
            continue
        steps = []
        for step in range(2):
            result = model.train_on_batch(feed, targets)
            steps.append(float(np.ravel(result)[0]))
            data[p + f"train/params{step}"] = np.concatenate(
                [w.ravel() for w in model.get_weights()])
        data[p + "train/losses"] = np.array(steps)
    data["cases"] = json.dumps(list(cases.CASES))
    data["README"] = (
        "cases: JSON list; per case <name>/weight<k> (n_weights, get_weights() order), "
        "/x<k> (n_inputs; padded), /y<k> and /prediction<k> (n_outputs), /sample_weight "
        "(B, T of the output), /evaluate (JSON return_dict: loss, metrics and weighted metrics of "
        "mask_cases), /evaluate_weighted (the same with sample_weight, per-step outputs "
        "only), /train/losses (2,) and /train/params<s> (flat weights after step s) of "
        "SGD(0.1) train_on_batch on the batch (not for mask_cases.EVALUATE_ONLY).  float64.")
    np.savez_compressed(OUT / "masks.npz", **data)
    print("wrote", OUT / "masks.npz", len(cases.CASES), "cases")


if __name__ == "__main__":
    main()
