"""Record what real Keras 3 writes and reads, for tests/test_keras_files.py.

Run in a throwaway environment with Keras (never a fastrnn dependency), from
the repository root, after ``write_fastrnn_files.py``::

    python -m venv /tmp/keras-env && . /tmp/keras-env/bin/activate
    pip install keras jax jaxlib h5py
    KERAS_BACKEND=jax python tools/keras_fixtures/make_keras_fixtures.py
    # optionally an older Keras 3, for the older file format:
    #   pip install "keras==3.3.3" "jax==0.4.30" "jaxlib==0.4.30" "numpy<2" h5py packaging
    #   KERAS_BACKEND=jax python tools/keras_fixtures/make_keras_fixtures.py --prefix keras333 \
    #       --cases tutorial stacked

It writes to ``tests/fixtures/keras/``:

- ``<prefix>_<case>.keras`` and ``<prefix>_<case>.weights.h5``: models made by
  Keras (the tutorial one compiled and trained, so its files carry optimizer
  state), with ``<prefix>_files.npz`` holding each case's input ``x``,
  Keras's predictions and Keras's weights;
- ``<prefix>_unsupported_*.keras`` (only without --cases): models fastrnn
  must refuse (LSTM, a functional model, dropout, a regularizer);
- ``fastrnn_files_in_keras_<keras version>.npz``: what Keras predicts on
  the ``fastrnn_*`` files (``keras.models.load_model`` on the ``.keras``,
  ``load_weights`` on the ``.weights.h5``), and the weights it loaded.
"""
import argparse
import glob
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import CASES, inputs  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "keras")


def outputs(model, x):
    out = model.predict(x, verbose=0)
    if isinstance(out, (list, tuple)):
        return {f"pred_{i}": np.asarray(o) for i, o in enumerate(out)}
    return {"pred": np.asarray(out)}


def write_keras_files(prefix, cases):
    record = {}
    for i, case in enumerate(cases):
        keras.utils.set_random_seed(10 + i)
        model = CASES[case](keras)
        model.set_weights([w + 0.1 if w.ndim == 1 else w for w in model.get_weights()])
        x = inputs(case)
        if case == "tutorial":   # trained: the file then holds optimizer state too
            X = np.linspace(0, 1, 300, dtype=np.float32).reshape(100, 3, 1)
            Y = X[:, -1] + 0.1
            model.compile(optimizer="adam", loss="mse")
            model.fit(X, Y, epochs=2, batch_size=32, verbose=0)
        model.save(os.path.join(OUT, f"{prefix}_{case}.keras"))
        model.save_weights(os.path.join(OUT, f"{prefix}_{case}.weights.h5"))
        record[f"{case}/x"] = x
        for key, value in outputs(model, x).items():
            record[f"{case}/{key}"] = value
        for j, w in enumerate(model.get_weights()):
            record[f"{case}/w{j}"] = np.asarray(w)
    np.savez(os.path.join(OUT, f"{prefix}_files.npz"), **record)


def write_unsupported(prefix):
    L = keras.layers
    models = {
        "lstm": keras.Sequential([keras.Input((3, 1)), L.LSTM(2), L.Dense(1)]),
        "dropout": keras.Sequential([keras.Input((3, 1)), L.SimpleRNN(2, dropout=0.2), L.Dense(1)]),
        "regularizer": keras.Sequential([keras.Input((3, 1)), L.SimpleRNN(2),
                                         L.Dense(1, kernel_regularizer="l2")]),
    }
    inp = keras.Input((3, 1))
    models["functional"] = keras.Model(inp, L.Dense(1)(L.SimpleRNN(2)(inp)))
    for name, model in models.items():
        model.save(os.path.join(OUT, f"{prefix}_unsupported_{name}.keras"))


def read_fastrnn_files():
    record = {"keras_version": np.array(keras.__version__)}
    for path in sorted(glob.glob(os.path.join(OUT, "fastrnn_*.keras"))):
        case = os.path.basename(path)[len("fastrnn_"):-len(".keras")]
        x = inputs(case.replace("_float64", ""))
        model = keras.models.load_model(path)
        record[f"{case}/x"] = x
        for key, value in outputs(model, x).items():
            record[f"{case}/{key}"] = value
        for j, w in enumerate(model.get_weights()):
            record[f"{case}/w{j}"] = np.asarray(w)
        weights_file = path[:-len(".keras")] + ".weights.h5"
        if os.path.exists(weights_file):
            clone = keras.models.clone_model(model)
            clone.load_weights(weights_file)
            for key, value in outputs(clone, x).items():
                record[f"{case}/weights_file_{key}"] = value
    name = f"fastrnn_files_in_keras_{keras.__version__}.npz"
    np.savez(os.path.join(OUT, name), **record)
    print("Keras", keras.__version__, "read", sorted({k.split("/")[0] for k in record if "/" in k}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="keras")
    parser.add_argument("--cases", nargs="*", default=None)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    write_keras_files(args.prefix, args.cases or sorted(CASES))
    if args.cases is None:
        write_unsupported(args.prefix)
    read_fastrnn_files()


if __name__ == "__main__":
    main()
