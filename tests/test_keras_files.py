"""Keras 3 files both ways: .keras archives and .weights.h5, including hostile ones.

The fixtures under tests/fixtures/keras/ were made by real Keras 3 (3.15 and
3.3) with tools/keras_fixtures/ (see the scripts' docstrings): Keras's own
files with its predictions and weights, and what Keras predicted on files
fastrnn wrote.  Keras itself is never imported here.
"""
import glob
import io
import json
import os
import shutil
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given

h5py = pytest.importorskip("h5py")

import fastrnn  # noqa: E402
from fastrnn.saving import (load_model, load_weights_h5, save_model,  # noqa: E402
                            save_weights_h5)
from fastrnn.saving.keras_layers import snake_case  # noqa: E402
from interop_models import models, predictions  # noqa: E402
from tolerances import tol  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
F32 = tol("interop", np.float32)


def fixture(name):
    return os.path.join(FIXTURES, name)


def records(npz_path):
    """{case: {key: array}} from a fixture .npz with keys "<case>/<key>"."""
    out = {}
    with np.load(npz_path) as data:
        for key in data.files:
            if "/" in key:
                case, item = key.split("/", 1)
                out.setdefault(case, {})[item] = data[key]
    return out


def tutorial(seed=0, dtype=None):
    fastrnn.set_random_seed(seed)
    return fastrnn.Sequential([fastrnn.Input((3, 1), dtype=dtype), fastrnn.layers.SimpleRNN(20),
                               fastrnn.layers.Dense(1)])


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.shape == y.shape and np.array_equal(x, y)


# -- real Keras files -> fastrnn --------------------------------------------------
KERAS_MADE = [(prefix, case) for prefix in ("keras", "keras333")
              for case in sorted(records(fixture(f"{prefix}_files.npz")))]


@pytest.mark.parametrize("prefix,case", KERAS_MADE)
def test_load_model_from_keras(prefix, case):
    rec = records(fixture(f"{prefix}_files.npz"))[case]
    model = load_model(fixture(f"{prefix}_{case}.keras"))
    weights = model.get_weights()
    n = len([k for k in rec if k.startswith("w")])
    assert len(weights) == n
    for i, w in enumerate(weights):
        assert np.array_equal(w, rec[f"w{i}"]), f"weight {i} differs from Keras's"
    got = predictions(model, rec["x"])
    assert set(got) == {k for k in rec if k.startswith("pred")}
    for key, value in got.items():
        np.testing.assert_allclose(value, rec[key], **F32)


@pytest.mark.parametrize("prefix,case", KERAS_MADE)
def test_load_weights_h5_from_keras(prefix, case):
    rec = records(fixture(f"{prefix}_files.npz"))[case]
    model = load_model(fixture(f"{prefix}_{case}.keras"))
    model.set_weights([w * 0 + 0.5 for w in model.get_weights()])
    load_weights_h5(model, fixture(f"{prefix}_{case}.weights.h5"))
    for i, w in enumerate(model.get_weights()):
        assert np.array_equal(w, rec[f"w{i}"])


def test_loaded_layers_carry_keras_arguments():
    model = load_model(fixture("keras_stacked.keras"))
    rnn1, rnn2, dense = model.layers
    assert (rnn1.units, rnn1.activation, rnn1.go_backwards, rnn1.return_sequences) == \
        (4, "relu", True, True)
    assert (rnn2.units, rnn2.use_bias, rnn2.return_sequences) == (3, False, True)
    assert (dense.units, dense.activation) == (2, "sigmoid")
    assert model.input_shape == (None, 5, 2)
    assert load_model(fixture("keras_many_to_many.keras")).input_shape == (None, None, 3)


def test_loaded_simple_rnn_keeps_its_dropout():
    model = load_model(fixture("keras_unsupported_dropout.keras"))
    rnn = [layer for layer in model.layers if hasattr(layer, "recurrent_dropout")][0]
    assert rnn.dropout == 0.2


@pytest.mark.parametrize("name,match", [
    ("lstm", "'LSTM' is not supported"),
    ("functional", "'Functional' model"),
    ("regularizer", "kernel_regularizer"),
])
def test_unsupported_keras_models_refused(name, match):
    with pytest.raises(ValueError, match=match):
        load_model(fixture(f"keras_unsupported_{name}.keras"))


# -- fastrnn files -> real Keras (recorded) ------------------------------------------
IN_KERAS = sorted(glob.glob(fixture("fastrnn_files_in_keras_*.npz")))
FASTRNN_CASES = [(os.path.basename(p), case) for p in IN_KERAS for case in sorted(records(p))]


def test_recordings_exist():
    versions = {os.path.basename(p) for p in IN_KERAS}
    assert {"fastrnn_files_in_keras_3.3.3.npz", "fastrnn_files_in_keras_3.15.1.npz"} <= versions
    assert len(FASTRNN_CASES) >= 12


@pytest.mark.parametrize("recording,case", FASTRNN_CASES)
def test_keras_predicted_what_fastrnn_predicts(recording, case):
    rec = records(fixture(recording))[case]
    model = load_model(fixture(f"fastrnn_{case}.keras"))
    x = rec["x"]
    for i, w in enumerate(model.get_weights()):   # Keras loaded exactly our weights
        assert np.array_equal(rec[f"w{i}"], w.astype(rec[f"w{i}"].dtype))
    for key, value in predictions(model, x).items():
        np.testing.assert_allclose(value, rec[key], **F32)          # from the .keras file
        if f"weights_file_{key}" in rec:                             # from the .weights.h5
            np.testing.assert_allclose(value, rec[f"weights_file_{key}"], **F32)


def h5_contents(data):
    """{path: (attrs, array or None)} of an HDF5 file's bytes."""
    out = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(name, obj):
            value = obj[()] if isinstance(obj, h5py.Dataset) else None
            out[name] = ({k: str(v) for k, v in obj.attrs.items()}, value)
        f.visititems(visit)
    return out


def assert_same_h5(a, b):
    ca, cb = h5_contents(a), h5_contents(b)
    assert sorted(ca) == sorted(cb)
    for key in ca:
        assert ca[key][0] == cb[key][0], key
        if ca[key][1] is not None:
            assert ca[key][1].dtype == cb[key][1].dtype and np.array_equal(ca[key][1], cb[key][1])


@pytest.mark.parametrize("case", sorted({case for _, case in FASTRNN_CASES}))
def test_fastrnn_still_writes_what_keras_read(case, tmp_path):
    """The recordings certify today's writer only while it writes the same files.

    If this fails after a deliberate format change, re-run
    tools/keras_fixtures/write_fastrnn_files.py and make_keras_fixtures.py.
    """
    committed = fixture(f"fastrnn_{case}.keras")
    model = load_model(committed)
    fresh = tmp_path / "fresh.keras"
    save_model(model, fresh)
    with zipfile.ZipFile(committed) as old, zipfile.ZipFile(fresh) as new:
        assert old.namelist() == new.namelist()
        assert json.loads(old.read("config.json")) == json.loads(new.read("config.json"))
        assert json.loads(old.read("metadata.json")).keys() == \
            json.loads(new.read("metadata.json")).keys()
        assert_same_h5(old.read("model.weights.h5"), new.read("model.weights.h5"))
    weights_file = fixture(f"fastrnn_{case}.weights.h5")
    if os.path.exists(weights_file):
        save_weights_h5(model, tmp_path / "fresh.weights.h5")
        with open(weights_file, "rb") as f:
            assert_same_h5(f.read(), (tmp_path / "fresh.weights.h5").read_bytes())


def test_written_config_matches_keras_for_the_same_model():
    """Keras 3.3 wrote the same config for the same model: every argument.

    (Only the InputLayer's name may differ: fastrnn always writes "input_layer".)"""
    ours = load_model(fixture("keras333_stacked.keras"))
    with zipfile.ZipFile(fixture("keras333_stacked.keras")) as zf:
        theirs = json.loads(zf.read("config.json"))

    def strip(obj):   # object ids Keras adds for shared objects
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "shared_object_id"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    from fastrnn.saving.keras_file import _model_config, _plan_model
    mine = _model_config(ours, *_plan_model(ours))
    theirs["config"]["layers"][0]["config"]["name"] = "input_layer"
    assert strip(mine) == strip(theirs)


# -- round trips ---------------------------------------------------------------------
def same_predictions(a, b, x):
    pa, pb = predictions(a, x), predictions(b, x)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k].dtype == pb[k].dtype
        np.testing.assert_array_equal(pa[k], pb[k])


@given(models())
def test_keras_file_round_trip(tmp_path_factory, model_and_x):
    model, x = model_and_x
    path = tmp_path_factory.mktemp("rt") / "m.keras"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.name == model.name
    assert loaded.input_shape == model.input_shape
    assert loaded.dtype == model.dtype
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.name == b.name
        for attr in ("units", "activation", "use_bias", "return_sequences", "return_state",
                     "go_backwards"):
            assert getattr(a, attr, None) == getattr(b, attr, None), attr
    assert_same_weights(model, loaded)
    same_predictions(model, loaded, x)


@given(models())
def test_weights_h5_round_trip(tmp_path_factory, model_and_x):
    model, x = model_and_x
    path = tmp_path_factory.mktemp("rt") / "m.weights.h5"
    save_weights_h5(model, path)
    other = load_model_copy(model, tmp_path_factory)
    other.set_weights([w * 0 + 0.25 for w in other.get_weights()])
    load_weights_h5(other, path)
    assert_same_weights(model, other)
    same_predictions(model, other, x)


def load_model_copy(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("copy") / "copy.keras"
    save_model(model, path)
    return load_model(path)


def test_weights_match_by_class_position_not_name(tmp_path):
    a = tutorial(1)
    save_weights_h5(a, tmp_path / "a.weights.h5")
    fastrnn.clear_session()
    b = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(20, name="rnn"),
                            fastrnn.layers.Dense(1, name="head")])
    load_weights_h5(b, tmp_path / "a.weights.h5")
    assert_same_weights(a, b)
    with h5py.File(tmp_path / "a.weights.h5", "r") as f:
        assert sorted(f["layers"]) == ["dense", "simple_rnn"]
        assert f["layers/simple_rnn/cell/vars"].attrs["name"] == "simple_rnn_cell"
        assert f["layers/simple_rnn/cell/vars/1"].shape == (20, 20)


def test_snake_case_names_match_keras():
    assert [snake_case(n) for n in ("SimpleRNN", "Dense", "GRU", "Conv1D", "Bidirectional",
                                    "BatchNormalization", "LSTMCell")] == \
        ["simple_rnn", "dense", "gru", "conv1d", "bidirectional", "batch_normalization",
         "lstm_cell"]


def test_unbuilt_keras_model_loads_unbuilt(tmp_path):
    with zipfile.ZipFile(fixture("keras_tutorial.keras")) as zf:
        config = json.loads(zf.read("config.json"))
    del config["config"]["layers"][0]          # the InputLayer
    del config["config"]["build_input_shape"]
    empty = io.BytesIO()
    with h5py.File(empty, "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
    path = write_archive(tmp_path / "unbuilt.keras", config=config, weights=empty.getvalue())
    model = load_model(path)
    assert not model.built and len(model.layers) == 2


# -- hostile and broken files --------------------------------------------------------
def write_archive(path, config=None, weights=None, metadata=None, base="keras_tutorial.keras",
                  extra=None, compression=zipfile.ZIP_STORED):
    """A .keras archive from ``base`` with some members replaced (bytes or JSON-able)."""
    with zipfile.ZipFile(fixture(base)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, value in (("config.json", config), ("model.weights.h5", weights),
                        ("metadata.json", metadata)):
        if value is not None:
            members[name] = value if isinstance(value, bytes) else json.dumps(value).encode()
    members.update(extra or {})
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            if data is not None:
                zf.writestr(name, data)
    return path


def keras_config(base="keras_tutorial.keras"):
    with zipfile.ZipFile(fixture(base)) as zf:
        return json.loads(zf.read("config.json"))


def assert_refused(path, match=None, model=None):
    """load_model refuses ``path`` (or load_weights_h5 into ``model``, which must not change)."""
    if model is None:
        with pytest.raises(ValueError, match=match):
            load_model(path)
        return
    before = model.get_weights()
    with pytest.raises(ValueError, match=match):
        load_weights_h5(model, path)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b), "a refused file changed the model"


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_keras_file(tmp_path, fraction):
    data = open(fixture("keras_tutorial.keras"), "rb").read()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[:int(len(data) * fraction)])
    assert_refused(path)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_weights_file(tmp_path, fraction):
    data = open(fixture("fastrnn_tutorial.weights.h5"), "rb").read()
    path = tmp_path / "cut.weights.h5"
    path.write_bytes(data[:int(len(data) * fraction)])
    assert_refused(path, model=tutorial(3))


@pytest.mark.parametrize("seed", range(12))
def test_corrupted_keras_file(tmp_path, seed):
    """Any flipped bytes in the weights member: the zip CRC catches them."""
    data = bytearray(open(fixture("keras_tutorial.keras"), "rb").read())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("model.weights.h5")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    rng = np.random.default_rng(seed)
    for pos in rng.integers(start, start + info.compress_size, size=rng.integers(1, 6)):
        data[pos] ^= int(rng.integers(1, 256))
    path = tmp_path / "bad.keras"
    path.write_bytes(bytes(data))
    assert_refused(path)


@pytest.mark.parametrize("seed", range(30))
def test_corrupted_weights_file_never_escapes_as_other_errors(tmp_path, seed):
    """HDF5 has no checksum on data, so a flip may load other finite numbers; but a
    failure is always a ValueError and leaves the model as it was."""
    data = bytearray(open(fixture("fastrnn_tutorial.weights.h5"), "rb").read())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(0, 4096, size=rng.integers(1, 8)):
        data[pos] ^= int(rng.integers(1, 256))
    path = tmp_path / "bad.weights.h5"
    path.write_bytes(bytes(data))
    model = tutorial(3)
    before = model.get_weights()
    try:
        load_weights_h5(model, path)
    except ValueError:
        for a, b in zip(before, model.get_weights()):
            assert np.array_equal(a, b)


def weights_file(path, datasets, groups=(), base=None):
    """A .weights.h5 with the given datasets ({path: array or callable(file, path)})."""
    with h5py.File(path, "w") as f:
        for g in groups:
            f.require_group(g)
        for name, value in datasets.items():
            if callable(value):
                value(f, name)
            else:
                f[name] = value
    return path


def good_datasets(model):
    names = ["layers/simple_rnn/cell/vars/0", "layers/simple_rnn/cell/vars/1",
             "layers/simple_rnn/cell/vars/2", "layers/dense/vars/0", "layers/dense/vars/1"]
    return dict(zip(names, model.get_weights()))


def test_handmade_good_weights_file_loads(tmp_path):
    """The baseline the hostile variants below differ from in one thing each."""
    source, model = tutorial(5), tutorial(6)
    load_weights_h5(model, weights_file(tmp_path / "ok.weights.h5", good_datasets(source)))
    assert_same_weights(source, model)


@pytest.mark.parametrize("change,match", [
    (lambda d: d.update({"layers/dense/vars/0": np.zeros((21, 1), "f4")}), r"shape \(21, 1\)"),
    (lambda d: d.update({"layers/dense/vars/1": np.zeros((1, 1), "f4")}), "shape"),
    (lambda d: d.update({"layers/dense/vars/0": np.zeros((20, 1), "i4")}), "dtype int32"),
    (lambda d: d.update({"layers/dense/vars/0": np.zeros((20, 1), "c8")}), "dtype complex64"),
    (lambda d: d.update({"layers/dense/vars/0": np.array([b"x" * 20] * 20).reshape(20, 1)}),
     "dtype"),
    (lambda d: d.pop("layers/dense/vars/1"), "no weight 'layers/dense/vars/1'"),
    (lambda d: d.update({"layers/dense_1/vars/0": np.zeros((1, 1), "f4")}),
     "does not have: 'layers/dense_1/vars/0'"),
    (lambda d: d.update({"layers/dense/vars/0": np.full((20, 1), np.nan, "f4")}), "NaN"),
])
def test_wrong_weights_refused(tmp_path, change, match):
    datasets = good_datasets(tutorial(5))
    change(datasets)
    assert_refused(weights_file(tmp_path / "w.weights.h5", datasets), match, model=tutorial(6))


def test_huge_claimed_dataset_refused_before_allocation(tmp_path):
    datasets = good_datasets(tutorial(5))
    # 4 GB claimed, a few KB on disk: HDF5 allocates chunks only when written
    datasets["layers/dense/vars/0"] = lambda f, name: f.create_dataset(
        name, shape=(2 ** 30, 1), dtype="f4", chunks=(1024, 1))
    path = weights_file(tmp_path / "huge.weights.h5", datasets)
    assert os.path.getsize(path) < 100_000
    model = tutorial(6)
    tracemalloc.start()
    try:
        assert_refused(path, r"shape \(1073741824, 1\)", model=model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20


def test_missing_data_refused(tmp_path):
    """A dataset whose data was never written (HDF5 would hand out its fill value)."""
    datasets = good_datasets(tutorial(5))
    datasets["layers/simple_rnn/cell/vars/1"] = lambda f, n: f.create_dataset(
        n, shape=(20, 20), dtype="f4")
    assert_refused(weights_file(tmp_path / "unwritten.weights.h5", datasets),
                   "stores 0 bytes of its 1600", model=tutorial(6))


def test_links_and_external_data_refused(tmp_path):
    source = tutorial(5)
    outside = tmp_path / "outside.weights.h5"
    weights_file(outside, good_datasets(source))
    for kind, make, match in [
        ("soft", lambda f, n: f.__setitem__(n, h5py.SoftLink("/elsewhere")), "SoftLink"),
        ("external", lambda f, n: f.__setitem__(n, h5py.ExternalLink(str(outside), n)),
         "ExternalLink"),
        ("raw", lambda f, n: f.create_dataset(n, shape=(20, 1), dtype="f4",
                                              external=[(str(tmp_path / "raw.bin"), 0, 80)]),
         "outside the file"),
    ]:
        (tmp_path / "raw.bin").write_bytes(b"\0" * 80)
        datasets = good_datasets(source)
        datasets["elsewhere"] = np.zeros((20, 1), "f4")
        datasets["layers/dense/vars/0"] = make
        assert_refused(weights_file(tmp_path / f"{kind}.weights.h5", datasets), match,
                       model=tutorial(6))


def test_compressed_weights_accepted_unknown_filters_refused(tmp_path):
    source = tutorial(5)
    datasets = good_datasets(source)
    w = datasets["layers/simple_rnn/cell/vars/1"]
    datasets["layers/simple_rnn/cell/vars/1"] = lambda f, n: f.create_dataset(
        n, data=w, compression="gzip", shuffle=True, fletcher32=True)
    model = tutorial(6)
    load_weights_h5(model, weights_file(tmp_path / "gz.weights.h5", datasets))
    assert_same_weights(source, model)
    datasets["layers/simple_rnn/cell/vars/1"] = lambda f, n: f.create_dataset(
        n, data=w, compression="lzf")
    assert_refused(weights_file(tmp_path / "lzf.weights.h5", datasets), "filters",
                   model=tutorial(6))


def test_not_hdf5_refused(tmp_path):
    path = tmp_path / "text.weights.h5"
    path.write_text("hello")
    assert_refused(path, "not a readable HDF5 file", model=tutorial(6))


def test_architecture_mismatch_refused(tmp_path):
    save_weights_h5(tutorial(5), tmp_path / "t.weights.h5")
    fastrnn.clear_session()
    other = fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(21),
                                fastrnn.layers.Dense(1)])
    assert_refused(tmp_path / "t.weights.h5", "shape", model=other)


def mutate_layer(config, index, **changes):
    config["config"]["layers"][index]["config"].update(changes)
    return config


MALICIOUS = {
    "lambda_layer": (lambda c: c["config"]["layers"].insert(1, {
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "evil", "function": {"class_name": "__lambda__",
                                                 "config": {"code": "print('pwned')"}}}}),
        "'Lambda' is not supported"),
    "custom_module": (lambda c: c["config"]["layers"][1].update(
        module="fastrnn_test_must_not_import", registered_name="Custom>SimpleRNN"),
        "custom class"),
    "registered_name": (lambda c: c["config"]["layers"][2].update(
        registered_name="my_package>Dense"), "custom class"),
    "function_activation": (lambda c: mutate_layer(c, 2, activation={
        "module": "builtins", "class_name": "function", "config": "eval",
        "registered_name": "function"}), "not a built-in activation"),
    "unknown_activation": (lambda c: mutate_layer(c, 2, activation="__import__('os')"),
                           "activation"),
    "huge_units": (lambda c: mutate_layer(c, 1, units=2 ** 31 - 1), "too few"),
    "too_big_units": (lambda c: mutate_layer(c, 1, units=2 ** 40), "units"),
    "negative_units": (lambda c: mutate_layer(c, 1, units=-3), "units"),
    "float_units": (lambda c: mutate_layer(c, 1, units=2.5), "units"),
    "bool_flag": (lambda c: mutate_layer(c, 1, go_backwards="yes"), "go_backwards"),
    "stateful": (lambda c: mutate_layer(c, 1, stateful=True), "batch size must be static"),
    "unknown_argument": (lambda c: mutate_layer(c, 1, mystery=3), "mystery"),
    "mixed_dtypes": (lambda c: mutate_layer(c, 1, dtype="float64"), "different dtypes"),
    "int_dtype": (lambda c: mutate_layer(c, 2, dtype="int32"), "dtype 'int32'"),
    "trainable_false": (lambda c: mutate_layer(c, 1, trainable=False), "trainable"),
    "bad_shape": (lambda c: c["config"]["layers"][0]["config"].update(
        batch_shape=[None, 3, "1"]), "invalid dimension"),
    "wrong_rank": (lambda c: c["config"]["layers"][0]["config"].update(
        batch_shape=[None, 3]), "rank 3"),
    "input_not_first": (lambda c: c["config"]["layers"].append(c["config"]["layers"][0]),
                        "InputLayer at position"),
    "not_a_model": (lambda c: c.update(class_name="Dense"), "'Dense' model"),
    "no_layers": (lambda c: c["config"].update(layers="all of them"), "no list of layers"),
    "layer_not_object": (lambda c: c["config"]["layers"].append(7), "not an object"),
    "duplicate_names": (lambda c: mutate_layer(
        c, 2, name=c["config"]["layers"][1]["config"]["name"]), "cannot be built"),
    "state_not_last": (lambda c: mutate_layer(c, 1, return_state=True), "return_state"),
}


ACCEPTED = {
    "integer_input": lambda c: c["config"]["layers"][0]["config"].update(dtype="int32"),
    "legacy_input_key": lambda c: c["config"]["layers"][0]["config"].update(
        batch_input_shape=c["config"]["layers"][0]["config"].pop("batch_shape")),
    "float_policy_class": lambda c: mutate_layer(c, 1, dtype={
        "module": "keras", "class_name": "FloatDTypePolicy", "config": {"name": "float32"},
        "registered_name": None}),
    "new_inert_arguments": lambda c: mutate_layer(c, 1, some_future_flag=False,
                                                  some_future_config=None),
    "unknown_initializer": lambda c: mutate_layer(c, 1, kernel_initializer={
        "module": "keras.initializers", "class_name": "HeNormal", "config": {"seed": 3},
        "registered_name": None}),
    "string_initializer": lambda c: mutate_layer(c, 1, recurrent_initializer="orthogonal"),
    "unroll": lambda c: mutate_layer(c, 1, unroll=True),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_harmless_config_variations_load(tmp_path, case):
    config = keras_config()
    ACCEPTED[case](config)
    model = load_model(write_archive(tmp_path / "ok.keras", config=config))
    rec = records(fixture("keras_files.npz"))["tutorial"]
    np.testing.assert_allclose(model.predict(rec["x"], verbose=0), rec["pred"], **F32)


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_config_refused(tmp_path, case):
    config = keras_config()
    change, match = MALICIOUS[case]
    change(config)
    path = write_archive(tmp_path / "evil.keras", config=config)
    tracemalloc.start()
    try:
        assert_refused(path, match)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20
    assert "fastrnn_test_must_not_import" not in sys.modules


@pytest.mark.parametrize("config,match", [
    (b"{not json", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON|does not hold"),
    (b'"just a string"', "does not hold a serialized model"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
])
def test_config_not_json_refused(tmp_path, config, match):
    assert_refused(write_archive(tmp_path / "c.keras", config=config), match)


def test_missing_members_refused(tmp_path):
    with zipfile.ZipFile(fixture("keras_tutorial.keras")) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for missing, match in [("config.json", "no 'config.json'"),
                           ("model.weights.h5", "no 'model.weights.h5'")]:
        path = tmp_path / f"no-{missing}.keras"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                if name != missing:
                    zf.writestr(name, data)
        assert_refused(path, match)
    path = tmp_path / "npz.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", members["config.json"])
        zf.writestr("model.weights.npz", b"")
    assert_refused(path, "only HDF5 weights")


def test_zip_bombs_refused(tmp_path):
    # a config that inflates to 20 MB of spaces
    bomb = b"{" + b" " * (20 << 20) + b"}"
    assert_refused(write_archive(tmp_path / "c.keras", config=bomb,
                                 compression=zipfile.ZIP_DEFLATED), "claims")
    # weights that inflate far past what the config needs
    weights = open(fixture("fastrnn_tutorial.weights.h5"), "rb").read() + b"\0" * (80 << 20)
    assert_refused(write_archive(tmp_path / "w.keras", weights=weights,
                                 compression=zipfile.ZIP_DEFLATED), "claims|zip bomb")


def test_keras_weights_h5_in_wrong_model_file(tmp_path):
    """A .weights.h5 from a different model inside an archive: shapes are checked."""
    weights = open(fixture("keras_stacked.weights.h5"), "rb").read()
    assert_refused(write_archive(tmp_path / "mix.keras", weights=weights), "no weight|shape")


# -- paths, atomic writes, arguments --------------------------------------------------
def test_paths_checked(tmp_path):
    model = tutorial()
    with pytest.raises(ValueError, match="must end in '.keras'"):
        save_model(model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="must end in '.weights.h5'"):
        save_weights_h5(model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="must end in '.keras'"):
        load_model(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="filepath"):
        save_model(model, 3)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.keras")
    with pytest.raises(FileNotFoundError):
        load_weights_h5(model, tmp_path / "missing.weights.h5")


def test_only_regular_files_are_read(tmp_path):
    os.mkdir(tmp_path / "dir.keras")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path / "dir.keras")
    os.mkfifo(tmp_path / "fifo.keras")        # opening it would block forever
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(tmp_path / "fifo.keras")
    os.mkfifo(tmp_path / "fifo.weights.h5")
    with pytest.raises(ValueError, match="not a regular file"):
        load_weights_h5(tutorial(), tmp_path / "fifo.weights.h5")


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = fastrnn.Sequential([fastrnn.layers.SimpleRNN(2), fastrnn.layers.Dense(1)])
    with pytest.raises(ValueError, match="input shape"):
        save_model(model, tmp_path / "m.keras")


def test_unsupported_layer_cannot_be_saved(tmp_path, monkeypatch):
    from fastrnn.saving import keras_layers
    monkeypatch.delitem(keras_layers.LAYER_FORMATS, "Dense")
    with pytest.raises(ValueError, match=r"'dense\w*' \(Dense\) has no Keras file format"):
        save_model(tutorial(), tmp_path / "m.keras")


@pytest.mark.parametrize("saver,suffix", [(save_model, ".keras"),
                                          (save_weights_h5, ".weights.h5")])
def test_failed_write_keeps_old_file(tmp_path, monkeypatch, saver, suffix):
    path = tmp_path / f"m{suffix}"
    saver(tutorial(1), path)
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        saver(tutorial(2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name], "the temporary file was left behind"
    monkeypatch.undo()
    saver(tutorial(2), path)
    assert path.read_bytes() != before


def test_written_file_has_ordinary_permissions(tmp_path):
    path = tmp_path / "m.keras"
    save_model(tutorial(), path)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert (path.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)


def test_save_over_file_being_read(tmp_path):
    """The old file stays readable by an open handle while it is replaced."""
    path = tmp_path / "m.keras"
    save_model(tutorial(1), path)
    with open(path, "rb") as f:
        save_model(tutorial(2), path)
        old = f.read()
    with zipfile.ZipFile(io.BytesIO(old)) as zf:
        assert "config.json" in zf.namelist()
    copy = tmp_path / "copy.keras"
    shutil.copy(path, copy)
    assert_same_weights(load_model(copy), tutorial(2))
