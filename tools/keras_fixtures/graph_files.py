"""Keras files of functional models and every layer, both ways (tests/test_keras_graph_files.py).

Two steps, from the repository root::

    # 1. with fastrnn and h5py installed: fastrnn writes its files
    python tools/keras_fixtures/graph_files.py fastrnn
    # 2. in a throwaway environment with Keras (never a fastrnn dependency):
    #    pip install "keras==3.15.1" "jax==0.10.2" "jaxlib==0.10.2" h5py
    KERAS_BACKEND=jax python tools/keras_fixtures/graph_files.py keras
    # 3. with an older Keras 3: reading fastrnn's files, and its own keras333_* files:
    #    pip install "keras==3.3.3" "jax==0.4.30" "jaxlib==0.4.30" "numpy<2" h5py
    KERAS_BACKEND=jax python tools/keras_fixtures/graph_files.py keras-read

Step 1 writes ``tests/fixtures/keras/fastrnn_<case>.keras`` and
``.weights.h5`` for every case of ``cases.GRAPH_CASES``.  Step 2 writes
Keras's own files of the same cases (``keras_<case>.keras``,
``.weights.h5``) with ``keras_graph_files.npz`` (each case's inputs
``<case>/x<i>``, Keras's predictions ``<case>/pred_<i>`` -- a dict output in
sorted key order -- and weights ``<case>/w<i>``), what Keras predicts and
loads from fastrnn's files (``fastrnn_graph_files_in_keras_<version>.npz``,
the same keys plus ``weights_file_pred_<i>`` from ``load_weights``), and
``keras_refused_<name>.keras``: models fastrnn must refuse (those of
``MASK_CASES`` only while its masks do not flow through layers as Keras's do;
``keras_refused.npz`` has Keras's inputs and predictions for them).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cases import GRAPH_CASES, case_seed, graph_inputs  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "keras")


def with_biases(model):
    """Non-zero biases, so a bias lost on the way shows."""
    model.set_weights([w + 0.1 if w.ndim == 1 else w for w in model.get_weights()])
    return model


def outputs(model, xs):
    import numpy as np
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    if not isinstance(out, (list, tuple)):
        out = [out]
    return {f"pred_{i}": np.asarray(o) for i, o in enumerate(out)}


def write_fastrnn():
    import fastrnn
    from fastrnn.saving import save_model, save_weights_h5
    for case, build in sorted(GRAPH_CASES.items()):
        fastrnn.clear_session()
        fastrnn.set_random_seed(case_seed(case))
        model = with_biases(build(fastrnn))
        save_model(model, os.path.join(OUT, f"fastrnn_{case}.keras"))
        save_weights_h5(model, os.path.join(OUT, f"fastrnn_{case}.weights.h5"))
    print("fastrnn wrote", sorted(GRAPH_CASES))


# refused while fastrnn applies a mask only in a SimpleRNN reading its source directly
MASK_CASES = ("mask_through_rnn", "mask_through_dense", "masked_bidirectional",
              "mask_zero_to_dense")


def refused(keras):
    L = keras.layers
    x = keras.Input((5, 2))
    h0 = keras.Input((3,))
    tokens = keras.Input((5,), dtype="int32")
    masked = L.Masking()(x)
    return {
        # Keras applies the mask in the second SimpleRNN too; fastrnn only in the first
        "mask_through_rnn": keras.Model(x, L.SimpleRNN(2)(L.SimpleRNN(3, return_sequences=True)(
            masked))),
        "mask_through_dense": keras.Model(x, L.SimpleRNN(2)(L.Dense(3)(masked))),
        "masked_bidirectional": keras.Model(x, L.Bidirectional(L.SimpleRNN(2))(masked)),
        # Keras 3 ignores the mask of a call with initial_state (fastrnn would apply it)
        "mask_and_initial_state": keras.Model([x, h0], L.SimpleRNN(3)(masked, initial_state=h0)),
        "lstm_in_bidirectional": keras.Model(x, L.Bidirectional(L.LSTM(2))(x)),
        "operation": keras.Model(x, keras.ops.sum(L.SimpleRNN(2, return_sequences=True)(x),
                                                  axis=1)),
        "mask_zero_to_dense": keras.Model(tokens, L.Dense(1)(L.Embedding(10, 2, mask_zero=True)(
            tokens))),
    }


def write_keras():
    write_keras_own("keras")
    write_refused()
    read_fastrnn_files()


def write_keras_own(prefix):
    """Keras's own files of every case, with its inputs, predictions and weights."""
    import keras
    import numpy as np
    record = {}
    for case in _cases_for(keras):
        build = GRAPH_CASES[case]
        keras.utils.set_random_seed(case_seed(case))
        model = with_biases(build(keras))
        xs = graph_inputs(model, case)
        model.save(os.path.join(OUT, f"{prefix}_{case}.keras"))
        model.save_weights(os.path.join(OUT, f"{prefix}_{case}.weights.h5"))
        for i, x in enumerate(xs):
            record[f"{case}/x{i}"] = x
        for key, value in outputs(model, xs).items():
            record[f"{case}/{key}"] = value
        for j, w in enumerate(model.get_weights()):
            record[f"{case}/w{j}"] = np.asarray(w)
    np.savez(os.path.join(OUT, f"{prefix}_graph_files.npz"), **record)


def write_refused():
    import keras
    import numpy as np
    L = keras.layers
    models = refused(keras)
    shared = L.SimpleRNN(2)
    x = keras.Input((5, 2))
    models["shared_layer"] = keras.Model(x, L.Add()([shared(x), shared(L.Dense(2)(x))]))
    inp = keras.Input((5, 4, 1))
    models["conv_in_time_distributed"] = keras.Model(inp, L.TimeDistributed(L.Conv1D(2, 2))(inp))
    refused_record = {}
    for name, model in sorted(models.items()):
        model.save(os.path.join(OUT, f"keras_refused_{name}.keras"))
        if name in MASK_CASES:      # what Keras computes, for a fastrnn whose masks flow
            xs = graph_inputs(model, name)
            for i, x in enumerate(xs):
                refused_record[f"{name}/x{i}"] = x
            for key, value in outputs(model, xs).items():
                refused_record[f"{name}/{key}"] = value
    np.savez(os.path.join(OUT, "keras_refused.npz"), **refused_record)


# Keras 3.3 carried masks by older rules than 3.15's (which fastrnn follows; the first case
# differs there): these
# cases are recorded with 3.15 only
KERAS_315_ONLY = {"masks_through_layers", "pooling"}


def _cases_for(keras):
    old = tuple(int(v) for v in keras.__version__.split(".")[:2]) < (3, 15)
    return sorted(c for c in GRAPH_CASES if not (old and c in KERAS_315_ONLY))


def read_fastrnn_files():
    import keras
    import numpy as np
    record = {"keras_version": np.array(keras.__version__)}
    for case in _cases_for(keras):
        path = os.path.join(OUT, f"fastrnn_{case}.keras")
        model = keras.models.load_model(path)
        xs = graph_inputs(model, case)
        for i, x in enumerate(xs):
            record[f"{case}/x{i}"] = x
        for key, value in outputs(model, xs).items():
            record[f"{case}/{key}"] = value
        for j, w in enumerate(model.get_weights()):
            record[f"{case}/w{j}"] = np.asarray(w)
        clone = keras.models.clone_model(model)
        clone.load_weights(path[:-len(".keras")] + ".weights.h5")
        for key, value in outputs(clone, xs).items():
            record[f"{case}/weights_file_{key}"] = value
    np.savez(os.path.join(OUT, f"fastrnn_graph_files_in_keras_{keras.__version__}.npz"),
             **record)
    print("Keras", keras.__version__, "read", _cases_for(keras))


if __name__ == "__main__":
    if sys.argv[1:] == ["fastrnn"]:
        write_fastrnn()
    elif sys.argv[1:] == ["keras"]:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        write_keras()
    elif sys.argv[1:] == ["keras-read"]:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        read_fastrnn_files()
        write_keras_own("keras333")
    else:
        sys.exit(__doc__)
