"""Keras 3 files of functional models and of every layer fastrnn has, both ways.

The fixtures were recorded by real Keras 3.15.1 with
tools/keras_fixtures/graph_files.py (cases in tools/keras_fixtures/cases.py):
Keras's own files with its inputs, predictions and weights, what Keras
predicted and loaded from the files fastrnn wrote, and Keras models fastrnn
must refuse.  Keras itself is not imported here (tests/test_model_keras_interop.py
runs the same cases live where Keras is installed).
"""
import glob
import io
import json
import os
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import fastrnn  # noqa: E402
from fastrnn.saving import (FileFormatError, load_model, load_weights_h5,  # noqa: E402
                            save_model, save_weights_h5)
from tolerances import tol  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
F32 = tol("interop", np.float32)


def fixture(name):
    return os.path.join(FIXTURES, name)


def records(npz_path):
    out = {}
    with np.load(npz_path) as data:
        for key in data.files:
            if "/" in key:
                case, item = key.split("/", 1)
                out.setdefault(case, {})[item] = data[key]
    return out


def inputs(rec):
    return [rec[f"x{i}"] for i in range(len([k for k in rec if k.startswith("x")]))]


def predict(model, xs):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    if not isinstance(out, list):
        out = [out]
    return {f"pred_{i}": o for i, o in enumerate(out)}


KERAS_MADE = records(fixture("keras_graph_files.npz"))
IN_KERAS = sorted(glob.glob(fixture("fastrnn_graph_files_in_keras_*.npz")))
FASTRNN_MADE = [(os.path.basename(p), case) for p in IN_KERAS for case in sorted(records(p))]


def test_recordings_cover_every_case():
    assert len(KERAS_MADE) >= 7
    assert {case for _, case in FASTRNN_MADE} == set(KERAS_MADE)


@pytest.mark.parametrize("case", sorted(KERAS_MADE))
def test_keras_file_loads_with_keras_predictions(case):
    rec = KERAS_MADE[case]
    model = load_model(fixture(f"keras_{case}.keras"))
    weights = model.get_weights()
    assert len(weights) == len([k for k in rec if k.startswith("w")])
    for i, w in enumerate(weights):
        assert np.array_equal(w, rec[f"w{i}"]), f"weight {i} differs from Keras's"
    got = predict(model, inputs(rec))
    assert set(got) == {k for k in rec if k.startswith("pred")}
    for key, value in got.items():
        np.testing.assert_allclose(value, rec[key], err_msg=key, **F32)


@pytest.mark.parametrize("case", sorted(KERAS_MADE))
def test_keras_weights_file_loads(case):
    rec = KERAS_MADE[case]
    model = load_model(fixture(f"keras_{case}.keras"))
    model.set_weights([w * 0 + 0.5 for w in model.get_weights()])
    model.load_weights(fixture(f"keras_{case}.weights.h5"))
    for i, w in enumerate(model.get_weights()):
        assert np.array_equal(w, rec[f"w{i}"])


@pytest.mark.parametrize("recording,case", FASTRNN_MADE)
def test_keras_predicted_what_fastrnn_predicts(recording, case):
    rec = records(fixture(recording))[case]
    model = load_model(fixture(f"fastrnn_{case}.keras"))
    for i, w in enumerate(model.get_weights()):    # Keras loaded exactly our weights
        assert np.array_equal(rec[f"w{i}"], w)
    for key, value in predict(model, inputs(rec)).items():
        np.testing.assert_allclose(value, rec[key], err_msg=key, **F32)
        np.testing.assert_allclose(value, rec[f"weights_file_{key}"], err_msg=key, **F32)


def h5_contents(data):
    out = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(name, obj):
            value = obj[()] if isinstance(obj, h5py.Dataset) else None
            out[name] = ({k: str(v) for k, v in obj.attrs.items()}, value)
        f.visititems(visit)
    return out


@pytest.mark.parametrize("case", sorted(KERAS_MADE))
def test_fastrnn_still_writes_what_keras_read(case, tmp_path):
    """The recordings certify today's writer only while it writes the same files.

    After a deliberate format change, re-run tools/keras_fixtures/graph_files.py."""
    committed = fixture(f"fastrnn_{case}.keras")
    model = load_model(committed)
    save_model(model, tmp_path / "fresh.keras")
    with zipfile.ZipFile(committed) as old, zipfile.ZipFile(tmp_path / "fresh.keras") as new:
        assert json.loads(old.read("config.json")) == json.loads(new.read("config.json"))
        assert h5_contents(old.read("model.weights.h5")).keys() == \
            h5_contents(new.read("model.weights.h5")).keys()
    save_weights_h5(model, tmp_path / "fresh.weights.h5")
    with open(fixture(f"fastrnn_{case}.weights.h5"), "rb") as f:
        old, new = h5_contents(f.read()), h5_contents((tmp_path / "fresh.weights.h5").read_bytes())
    assert old.keys() == new.keys()
    for key in old:
        assert old[key][0] == new[key][0], key
        if old[key][1] is not None:
            assert np.array_equal(old[key][1], new[key][1]), key


def test_keras_and_fastrnn_write_the_same_layout():
    """For the same model, fastrnn's weights file has Keras's groups, names and shapes."""
    for case in KERAS_MADE:
        with zipfile.ZipFile(fixture(f"keras_{case}.keras")) as k, \
                zipfile.ZipFile(fixture(f"fastrnn_{case}.keras")) as f:
            theirs = h5_contents(k.read("model.weights.h5"))
            ours = h5_contents(f.read("model.weights.h5"))
        assert sorted(theirs) == sorted(ours), case
        for key in theirs:
            if theirs[key][1] is not None:
                assert theirs[key][1].shape == ours[key][1].shape, (case, key)


def test_loaded_layers_carry_keras_arguments():
    model = load_model(fixture("keras_merges.keras"))
    assert model.input_names == ["seq", "h0"]
    by_class = {type(la).__name__: la for la in model.layers}
    bi = by_class["Bidirectional"]
    assert bi.merge_mode == "mul" and bi.forward_layer.units == 3
    assert bi.forward_layer.return_sequences
    rnn = by_class["SimpleRNN"]
    assert rnn.go_backwards and rnn.return_state
    assert len(model.outputs) == 3
    emb = load_model(fixture("keras_embedding_rnn.keras")).layers[1]
    assert (emb.input_dim, emb.output_dim, emb.mask_zero) == (12, 3, True)
    core = load_model(fixture("keras_core_layers.keras"))
    assert [type(la).__name__ for la in core.layers] == [
        "TimeDistributed", "Activation", "Dropout", "Flatten", "RepeatVector", "SimpleRNN",
        "Reshape", "Dense"]
    assert core.layers[2].rate == 0.3 and core.layers[5].recurrent_dropout == 0.1
    two = load_model(fixture("keras_two_directions.keras"))
    assert sorted(two.output_names) == ["both", "sum"]


@pytest.mark.parametrize("name,match", [
    ("mask_through_rnn", "mask of layer 'masking.*' reaches it through other layers"),
    ("mask_through_dense", "mask of layer 'masking.*' reaches it through other layers"),
    ("masked_bidirectional", "mask of layer 'masking.*' reaches it"),
    ("mask_and_initial_state", "initial_state on a masked input"),
    ("lstm_in_bidirectional", "layer class 'LSTM'"),
    ("conv_in_time_distributed", "layer class 'Conv1D'"),
    ("shared_layer", "shared layers are not supported"),
    ("operation", "operation 'sum.*' .*Sum"),
    ("mask_zero_to_dense", "mask_zero"),
])
def test_keras_models_fastrnn_cannot_run_are_refused(name, match):
    with pytest.raises(FileFormatError, match=match):
        load_model(fixture(f"keras_refused_{name}.keras"))


# -- fastrnn models that would compute something else in Keras are not written ---------
def test_masks_keras_would_apply_elsewhere_are_not_written(tmp_path):
    L = fastrnn.layers
    x = fastrnn.Input((5, 2))
    h = L.SimpleRNN(3, return_sequences=True)(L.Masking()(x))
    model = fastrnn.Model(x, L.SimpleRNN(2)(h))
    with pytest.raises(ValueError, match="reaches it through other layers"):
        save_model(model, tmp_path / "m.keras")
    with pytest.raises(ValueError, match="reaches it through other layers"):
        model.save_weights(tmp_path / "m.weights.h5")
    assert os.listdir(tmp_path) == []


def test_functional_weights_round_trip(tmp_path):
    model = load_model(fixture("keras_merges.keras"))
    want = model.get_weights()
    model.save_weights(tmp_path / "m.weights.h5")
    model.set_weights([w * 0 for w in want])
    model.load_weights(tmp_path / "m.weights.h5")
    for a, b in zip(model.get_weights(), want):
        assert np.array_equal(a, b)
