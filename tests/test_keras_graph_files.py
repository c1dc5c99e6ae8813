"""Keras 3 files of functional models and of every layer fastrnn has, both ways.

The fixtures were recorded by real Keras 3.15.1 (and 3.3.3) with
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
from fastrnn.saving import (FileFormatError, load_model, save_model,  # noqa: E402
                            save_weights_h5)
from fastrnn.saving.keras_layers import masks_flow  # noqa: E402
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
    # masks_through_layers: Keras 3.3's mask rules are older than 3.15's (fastrnn's)
    assert len(KERAS_MADE) >= 8
    assert set(KERAS333_MADE) == set(KERAS_MADE) - {"masks_through_layers", "pooling"}
    assert {case for _, case in FASTRNN_MADE} == set(KERAS_MADE)
    assert {os.path.basename(p) for p in IN_KERAS} >= {
        "fastrnn_graph_files_in_keras_3.3.3.npz", "fastrnn_graph_files_in_keras_3.15.1.npz"}


# Keras 3.3.3's own files of the same cases (an older config format)
KERAS333_MADE = records(fixture("keras333_graph_files.npz"))
BOTH = [("keras", case) for case in sorted(KERAS_MADE)] + \
    [("keras333", case) for case in sorted(KERAS333_MADE)]


@pytest.mark.parametrize("prefix,case", BOTH)
def test_keras_file_loads_with_keras_predictions(prefix, case):
    rec = (KERAS_MADE if prefix == "keras" else KERAS333_MADE)[case]
    model = load_model(fixture(f"{prefix}_{case}.keras"))
    weights = model.get_weights()
    assert len(weights) == len([k for k in rec if k.startswith("w")])
    for i, w in enumerate(weights):
        assert np.array_equal(w, rec[f"w{i}"]), f"weight {i} differs from Keras's"
    got = predict(model, inputs(rec))
    assert set(got) == {k for k in rec if k.startswith("pred")}
    for key, value in got.items():
        np.testing.assert_allclose(value, rec[key], err_msg=key, **F32)


@pytest.mark.parametrize("prefix,case", BOTH)
def test_keras_weights_file_loads(prefix, case):
    rec = (KERAS_MADE if prefix == "keras" else KERAS333_MADE)[case]
    model = load_model(fixture(f"{prefix}_{case}.keras"))
    model.set_weights([w * 0 + 0.5 for w in model.get_weights()])
    model.load_weights(fixture(f"{prefix}_{case}.weights.h5"))
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


MASKS_FLOW = masks_flow()
MASK_CASES = records(fixture("keras_refused.npz"))


@pytest.mark.parametrize("name,match", [
    ("mask_through_rnn", "mask of layer 'masking.*' reaches it through other layers"),
    ("mask_through_dense", "mask of layer 'masking.*' reaches it through other layers"),
    ("masked_bidirectional", "mask of layer 'masking.*' reaches it"),
    ("mask_zero_to_dense", "mask_zero"),
])
def test_masks_load_where_fastrnn_applies_them_as_keras(name, match):
    """Refused while fastrnn applies a mask only in a SimpleRNN reading its source; once
    masks flow through layers as in Keras, they load and predict what Keras predicted."""
    if not MASKS_FLOW:
        with pytest.raises(FileFormatError, match=match):
            load_model(fixture(f"keras_refused_{name}.keras"))
        return
    rec = MASK_CASES[name]
    model = load_model(fixture(f"keras_refused_{name}.keras"))
    for key, value in predict(model, inputs(rec)).items():
        np.testing.assert_allclose(value, rec[key], err_msg=key, **F32)


@pytest.mark.parametrize("name,match", [
    ("mask_and_initial_state", "initial_state on a masked input"),
    ("lstm_in_bidirectional", "layer class 'LSTM'"),
    ("conv_in_time_distributed", "layer class 'Conv1D'"),
    ("shared_layer", "shared layers are not supported"),
    ("operation", "operation 'sum.*' .*Sum"),
])
def test_keras_models_fastrnn_cannot_run_are_refused(name, match):
    with pytest.raises(FileFormatError, match=match):
        load_model(fixture(f"keras_refused_{name}.keras"))


# -- fastrnn models that would compute something else in Keras are not written ---------
@pytest.mark.skipif(MASKS_FLOW, reason="this fastrnn applies masks wherever Keras does")
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


# -- hostile files of the new layer kinds and of functional configs ------------------------
def write_archive(path, config=None, weights=None, base="keras_merges.keras"):
    with zipfile.ZipFile(fixture(base)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if weights is not None:
        members["model.weights.h5"] = weights
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def config_of(base):
    with zipfile.ZipFile(fixture(base)) as zf:
        return json.loads(zf.read("config.json"))


def entry(config, class_name):
    return next(e for e in config["config"]["layers"] if e["class_name"] == class_name)


def mutate(base, change):
    config = config_of(base)
    change(config)
    return config


def _set(obj, key, value):
    obj[key] = value


def _history(config, class_name, history):
    node = entry(config, class_name)["inbound_nodes"][0]
    first = node["args"][0]
    first = first[0] if isinstance(first, list) else first
    first["config"]["keras_history"] = history


BIG = 2 ** 31 - 1
HOSTILE = {
    "huge_embedding": ("keras_embedding_rnn.keras", lambda c: entry(c, "Embedding")["config"]
                       .update(input_dim=BIG, output_dim=BIG), "too few"),
    "huge_bidirectional": ("keras_bidirectional.keras", lambda c: [entry(c, "Bidirectional")[
        "config"][side]["config"].update(units=BIG) for side in ("layer", "backward_layer")],
        "too few"),
    "huge_time_distributed": ("keras_core_layers.keras", lambda c: entry(c, "TimeDistributed")[
        "config"]["layer"]["config"].update(units=BIG), "too few"),
    "huge_repeat": ("keras_core_layers.keras", lambda c: entry(c, "RepeatVector")[
        "config"].update(n=BIG * 4), r"n must be an int"),
    "bad_reshape": ("keras_core_layers.keras", lambda c: entry(c, "Reshape")[
        "config"].update(target_shape=[-1, -1]), "Reshape"),
    "reshape_not_a_list": ("keras_core_layers.keras", lambda c: entry(c, "Reshape")[
        "config"].update(target_shape="__import__('os')"), "target_shape must be a list"),
    "bad_axis": ("keras_merges.keras", lambda c: entry(c, "Concatenate")[
        "config"].update(axis=5), "axis=5"),
    "dropout_rate": ("keras_core_layers.keras", lambda c: entry(c, "Dropout")[
        "config"].update(rate=7), "rate must be a number in"),
    "noise_shape": ("keras_core_layers.keras", lambda c: entry(c, "Dropout")[
        "config"].update(noise_shape=[None, 1, 3]), "noise_shape"),
    "custom_inner": ("keras_core_layers.keras", lambda c: entry(c, "TimeDistributed")[
        "config"]["layer"].update(module="evil.module"), "custom class"),
    "backward_differs": ("keras_bidirectional.keras", lambda c: entry(c, "Bidirectional")[
        "config"]["backward_layer"]["config"].update(units=7), "backward_layer"),
    "merge_mode": ("keras_bidirectional.keras", lambda c: entry(c, "Bidirectional")[
        "config"].update(merge_mode="max"), "merge_mode 'max'"),
    "cycle": ("keras_merges.keras", lambda c: _history(c, "Subtract", ["average", 0, 0]),
              "cycle|does not exist|unknown layer"),
    "unknown_ref": ("keras_merges.keras", lambda c: _history(c, "Subtract", ["nope", 0, 0]),
                    "unknown layer 'nope'"),
    "second_call": ("keras_merges.keras",
                    lambda c: _history(c, "Subtract", [entry(c, "Bidirectional")["name"], 1, 0]),
                    "shared layers"),
    "tensor_index": ("keras_merges.keras",
                     lambda c: _history(c, "Subtract", [entry(c, "Bidirectional")["name"], 0, 9]),
                     "does not exist"),
    "history_type": ("keras_merges.keras", lambda c: _history(c, "Subtract", "eval('1')"),
                     "not a \\[layer, node, index\\]"),
    "two_calls": ("keras_merges.keras", lambda c: entry(c, "Subtract")["inbound_nodes"].append(
        entry(c, "Subtract")["inbound_nodes"][0]), "shared layers"),
    "call_kwargs": ("keras_merges.keras", lambda c: entry(c, "Subtract")["inbound_nodes"][0][
        "kwargs"].update(constants=[1]), "call argument constants"),
    "output_not_there": ("keras_merges.keras", lambda c: c["config"].update(
        output_layers=[["ghost", 0, 0]]), "unknown layer 'ghost'"),
    "input_not_input": ("keras_merges.keras", lambda c: c["config"].update(
        input_layers=[[entry(c, "Subtract")["name"], 0, 0]]), "not an InputLayer"),
    "no_layers": ("keras_merges.keras", lambda c: c["config"].update(layers=[]),
                  "lists 0 layers"),
    "duplicate_names": ("keras_merges.keras", lambda c: c["config"]["layers"].append(
        c["config"]["layers"][-1]), "two layers are named"),
    "int_as_float_input": ("keras_embedding_rnn.keras", lambda c: entry(c, "InputLayer")[
        "config"].update(dtype="complex64"), "dtype"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_functional_configs_refused(tmp_path, case):
    base, change, match = HOSTILE[case]
    path = write_archive(tmp_path / "h.keras", config=mutate(base, change), base=base)
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(FileFormatError, match=match):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, "a hostile file made fastrnn allocate what it claims"


def test_wrong_weight_shapes_of_new_layers_refused(tmp_path):
    """A weights file whose Bidirectional backward kernel has the wrong shape."""
    with zipfile.ZipFile(fixture("keras_bidirectional.keras")) as zf:
        data = zf.read("model.weights.h5")
    buf = io.BytesIO(data)
    with h5py.File(buf, "r+") as f:
        path = "layers/bidirectional/backward_layer/cell/vars/0"
        del f[path]
        f.create_dataset(path, data=np.zeros((3, 3), np.float32))
    bad = write_archive(tmp_path / "w.keras", weights=buf.getvalue(),
                        base="keras_bidirectional.keras")
    with pytest.raises(FileFormatError, match="backward_layer/cell/vars/0.*shape"):
        load_model(bad)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_functional_file(tmp_path, fraction):
    data = open(fixture("keras_merges.keras"), "rb").read()
    path = tmp_path / "t.keras"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(FileFormatError):
        load_model(path)


def test_weights_file_of_another_architecture_leaves_model_unchanged(tmp_path):
    model = load_model(fixture("keras_merges.keras"))
    before = model.get_weights()
    with pytest.raises(ValueError):
        model.load_weights(fixture("keras_two_directions.weights.h5"))
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)


# -- fastrnn -> .keras -> fastrnn over random functional models -----------------------------
from hypothesis import given  # noqa: E402
from interop_models import graph_models  # noqa: E402


@given(graph_models())
def test_functional_round_trip(tmp_path_factory, model_and_xs):
    model, xs = model_and_xs
    path = tmp_path_factory.mktemp("graph") / "m.keras"
    def masked_source(t):
        layer = t._keras_history[0]
        return type(layer).__name__ == "Masking" or getattr(layer, "mask_zero", False)
    masked_state = any(len(node.input_tensors) > 1 and masked_source(node.input_tensors[0])
                       for node in model._graph_nodes
                       if type(node.layer).__name__ == "SimpleRNN")
    if masked_state:        # Keras 3 would drop that mask: not written
        with pytest.raises(ValueError, match="initial_state on a masked input"):
            save_model(model, path)
        return
    save_model(model, path)
    loaded = load_model(path)
    assert [type(la).__name__ for la in loaded.layers] == \
        [type(la).__name__ for la in model.layers]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    cast = [x if np.asarray(x).dtype.kind in "iu" else np.asarray(x, model.dtype) for x in xs]
    got = loaded.predict(cast if len(cast) > 1 else cast[0], verbose=0)
    want = model.predict(cast if len(cast) > 1 else cast[0], verbose=0)
    for a, b in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        np.testing.assert_array_equal(a, b)
    weights = path.with_name("m.weights.h5")
    model.save_weights(weights)
    loaded.set_weights([w * 0 for w in loaded.get_weights()])
    loaded.load_weights(weights)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


# -- stateful=True (where fastrnn's SimpleRNN has it) -----------------------------------------
from fastrnn.saving.keras_layers import takes_argument  # noqa: E402

STATEFUL = takes_argument("SimpleRNN", "stateful")


@pytest.mark.skipif(not STATEFUL, reason="this fastrnn has no stateful SimpleRNN")
def test_stateful_flag_and_fixed_batch_round_trip(tmp_path):
    L = fastrnn.layers
    x = fastrnn.Input(batch_shape=(2, 3, 1))
    model = fastrnn.Model(x, L.Dense(1)(L.SimpleRNN(4, stateful=True)(x)))
    save_model(model, tmp_path / "s.keras")
    with zipfile.ZipFile(tmp_path / "s.keras") as zf:
        config = json.loads(zf.read("config.json"))
    assert entry(config, "SimpleRNN")["config"]["stateful"] is True
    assert entry(config, "InputLayer")["config"]["batch_shape"] == [2, 3, 1]
    loaded = load_model(tmp_path / "s.keras")
    rnn = [la for la in loaded.layers if type(la).__name__ == "SimpleRNN"][0]
    assert rnn.stateful and loaded.input_shape == (2, 3, 1)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


def _tensor(name, shape):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [name, 0, 0]}}


@pytest.mark.parametrize("kind", ["Functional", "Sequential"])
def test_graph_too_deep_to_walk_refused(tmp_path, kind):
    """Thousands of chained layers: a ValueError, not a RecursionError."""
    n = 3000
    act = [{"module": "keras.layers", "class_name": "Activation", "registered_name": None,
            "config": {"name": f"a{i}", "trainable": True, "dtype": "float32",
                       "activation": "relu"}} for i in range(n)]
    inp = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
           "config": {"batch_shape": [None, 3, 2], "dtype": "float32", "sparse": False,
                      "name": "inp"}}
    if kind == "Functional":
        inp.update(name="inp", inbound_nodes=[])
        for i, layer in enumerate(act):
            layer.update(name=f"a{i}", inbound_nodes=[
                {"args": [_tensor(f"a{i - 1}" if i else "inp", [None, 3, 2])], "kwargs": {}}])
        config = {"module": "keras.src.models.functional", "class_name": "Functional",
                  "registered_name": "Functional", "config": {
                      "name": "deep", "trainable": True, "layers": [inp] + act,
                      "input_layers": [["inp", 0, 0]], "output_layers": [[f"a{n - 1}", 0, 0]]}}
    else:
        config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
                  "config": {"name": "deep", "trainable": True, "layers": [inp] + act}}
    empty = io.BytesIO()
    h5py.File(empty, "w").close()
    path = write_archive(tmp_path / "deep.keras", config=config, weights=empty.getvalue())
    with pytest.raises(FileFormatError, match="too deep"):
        load_model(path)


def test_names_keras_gives_mask_operations_are_not_written(tmp_path):
    """A fresh Keras process rebuilding a masked model names its mask concatenation
    "concatenate"; a Concatenate layer of that name would then clash (Keras refuses the
    model), so in a model with masks it is written as "concatenate_layer"."""
    L = fastrnn.layers
    fastrnn.clear_session()
    x = fastrnn.Input((4, 2))
    masked = L.Masking()(x)
    joined = L.Concatenate()([L.SimpleRNN(2, return_sequences=True)(masked), masked])
    model = fastrnn.Model(x, L.SimpleRNN(3)(joined))
    assert joined._keras_history[0].name == "concatenate"
    save_model(model, tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        config = json.loads(zf.read("config.json"))
    names = [e["name"] for e in config["config"]["layers"]]
    assert "concatenate" not in names and "concatenate_layer" in names
    assert entry(config, "Concatenate")["config"]["name"] == "concatenate_layer"
    model.save_weights(tmp_path / "m.weights.h5")
    loaded = load_model(tmp_path / "m.keras")
    loaded.set_weights([w * 0 for w in loaded.get_weights()])
    loaded.load_weights(tmp_path / "m.weights.h5")
    x_data = np.random.default_rng(0).standard_normal((3, 4, 2))
    x_data[0, 2:] = 0
    np.testing.assert_array_equal(loaded.predict(x_data, verbose=0),
                                  model.predict(x_data, verbose=0))
    model.load_weights(tmp_path / "m.weights.h5")      # into the model it came from


def test_regularizers_round_trip(tmp_path):
    """L1/L2/L1L2 on SimpleRNN, Dense, Embedding and inside Bidirectional/TimeDistributed
    are written as Keras writes them and read back; a function or an unknown class is not."""
    from fastrnn import regularizers as R
    L = fastrnn.layers
    tokens = fastrnn.Input((5,), dtype="int32")
    e = L.Embedding(6, 2, embeddings_regularizer=R.L1(0.02))(tokens)
    h = L.Bidirectional(L.SimpleRNN(3, return_sequences=True, kernel_regularizer=R.L2(0.03),
                                    recurrent_regularizer=R.L1L2(0.1, 0.2)))(e)
    out = L.TimeDistributed(L.Dense(1, bias_regularizer="l2"))(h)
    model = fastrnn.Model(tokens, out)
    save_model(model, tmp_path / "r.keras")
    with zipfile.ZipFile(tmp_path / "r.keras") as zf:
        config = json.loads(zf.read("config.json"))
    assert entry(config, "Embedding")["config"]["embeddings_regularizer"] == {
        "module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.02},
        "registered_name": None}
    loaded = load_model(tmp_path / "r.keras")
    bi = loaded.layers[2]
    assert repr(bi.forward_layer.recurrent_regularizer) == repr(R.L1L2(0.1, 0.2))
    assert loaded.layers[3].layer.bias_regularizer.l2 == pytest.approx(0.01)
    for bad, match in (({"module": "my.code", "class_name": "L2", "config": {}},
                        "custom class"),
                       ({"module": "keras.regularizers", "class_name": "OrthogonalRegularizer",
                         "config": {}}, "not supported")):
        config2 = json.loads(json.dumps(config))
        entry(config2, "Embedding")["config"]["embeddings_regularizer"] = bad
        path = tmp_path / "bad.keras"
        with zipfile.ZipFile(tmp_path / "r.keras") as src, zipfile.ZipFile(path, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, json.dumps(config2) if name == "config.json"
                             else src.read(name))
        with pytest.raises(FileFormatError, match=match):
            load_model(path)


def test_frozen_wrappers_round_trip(tmp_path):
    """trainable=False on a Bidirectional and a TimeDistributed survives a .keras file."""
    L = fastrnn.layers
    x = fastrnn.Input((4, 2))
    h = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), trainable=False)(x)
    model = fastrnn.Model(x, L.TimeDistributed(L.Dense(1), trainable=False)(h))
    save_model(model, tmp_path / "f.keras")
    loaded = load_model(tmp_path / "f.keras")
    assert [la.trainable for la in loaded.layers[1:]] == [False, False]
