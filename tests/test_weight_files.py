"""Hostile weight files: load_weights rejects them clearly, before any large
allocation, and leaves the model exactly as it was."""
import io
import os
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastrnn as keras


def tutorial_model(seed=0):
    keras.set_random_seed(seed)
    model = keras.Sequential([keras.layers.SimpleRNN(units=20, input_shape=[3, 1]),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def model():
    return tutorial_model()


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.npz"
    tutorial_model(seed=1).save_weights(path)
    return path


def assert_rejected(model, path, match=None):
    before = model.get_weights()
    params_before = model.params.copy()
    with pytest.raises(ValueError, match=match):
        model.load_weights(path)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after)), "a failed load changed the model"
    assert np.array_equal(model.params, params_before)


def write_npz(path, arrays):
    """An .npz written member by member (lets a test put anything inside)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in arrays.items():
            if isinstance(payload, np.ndarray):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, payload, allow_pickle=True)
                payload = buf.getvalue()
            zf.writestr(name + ".npy", payload)


def good_arrays():
    m = tutorial_model(seed=2)
    return {name: w for (name, _, _), w in zip(m.param_layout, m.get_weights())}


def test_round_trip_is_bit_for_bit(model, good_file):
    model.load_weights(good_file)
    other = tutorial_model(seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))


def test_truncated_at_every_byte_offset(model, good_file, tmp_path):
    data = good_file.read_bytes()
    path = tmp_path / "cut.npz"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        assert_rejected(model, path)


def test_random_corruptions_never_escape_as_other_errors(model, good_file, tmp_path):
    """Flipped bytes either still load (the flip hit weight data and the
    result is finite) or are rejected with ValueError -- nothing else."""
    data = bytearray(good_file.read_bytes())
    rng = np.random.default_rng(0)
    path = tmp_path / "flip.npz"
    loaded = rejected = 0
    for _ in range(400):
        corrupt = bytearray(data)
        for i in rng.choice(len(corrupt), size=rng.integers(1, 4), replace=False):
            corrupt[i] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(corrupt))
        before = model.get_weights()
        try:
            model.load_weights(path)
            loaded += 1
            assert np.isfinite(model.params).all()
        except ValueError:
            rejected += 1
            assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert rejected > 0 and loaded + rejected == 400


def test_wrong_magic(model, good_file, tmp_path):
    path = tmp_path / "magic.npz"
    # the zip directory at the end survives, the first member's header does not
    path.write_bytes(b"GARBAGE!" + good_file.read_bytes()[8:])
    assert_rejected(model, path, "simple_rnn/kernel.*malformed")
    path.write_bytes(b"GARBAGE!" * 100)
    assert_rejected(model, path, "not an .npz")
    path.write_bytes(b"")
    assert_rejected(model, path, "not an .npz")


def test_member_with_bad_npy_magic(model, tmp_path):
    arrays = good_arrays()
    arrays["dense/bias"] = b"\x93NUMPX" + b"\x00" * 100
    write_npz(tmp_path / "m.npz", arrays)
    assert_rejected(model, tmp_path / "m.npz", "dense/bias")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = None


def test_pickle_payload_is_not_run(model, tmp_path):
    global MARKER
    MARKER = str(tmp_path / "pwned")
    arrays = good_arrays()
    payload = np.empty(1, dtype=object)
    payload[0] = _Exploit()
    arrays["dense/bias"] = payload
    write_npz(tmp_path / "p.npz", arrays)
    assert_rejected(model, tmp_path / "p.npz", "dense/bias")
    assert not os.path.exists(MARKER), "the pickle ran"
    # a raw pickle where an .npy should be
    arrays = good_arrays()
    arrays["dense/bias"] = pickle.dumps(_Exploit())
    write_npz(tmp_path / "q.npz", arrays)
    assert_rejected(model, tmp_path / "q.npz")
    assert not os.path.exists(MARKER), "the pickle ran"


@pytest.mark.parametrize("dtype", [np.int32, np.complex128, np.bool_, "U3"])
def test_wrong_dtype(model, tmp_path, dtype):
    arrays = good_arrays()
    arrays["simple_rnn/bias"] = arrays["simple_rnn/bias"].astype(dtype)
    write_npz(tmp_path / "d.npz", arrays)
    assert_rejected(model, tmp_path / "d.npz", "simple_rnn/bias")


def test_wrong_shape(model, tmp_path):
    arrays = good_arrays()
    arrays["simple_rnn/recurrent_kernel"] = arrays["simple_rnn/recurrent_kernel"][:, :19]
    write_npz(tmp_path / "s.npz", arrays)
    assert_rejected(model, tmp_path / "s.npz", "simple_rnn/recurrent_kernel")


def test_missing_and_extra_entries(model, tmp_path):
    arrays = good_arrays()
    del arrays["dense/kernel"]
    write_npz(tmp_path / "missing.npz", arrays)
    assert_rejected(model, tmp_path / "missing.npz", "dense/kernel")
    arrays = good_arrays()
    arrays["dense_7/kernel"] = np.zeros((20, 1), np.float32)
    write_npz(tmp_path / "extra.npz", arrays)
    assert_rejected(model, tmp_path / "extra.npz", "dense_7/kernel")
    write_npz(tmp_path / "empty.npz", {})
    assert_rejected(model, tmp_path / "empty.npz")


def test_non_finite_weights(model, tmp_path):
    arrays = good_arrays()
    arrays["dense/kernel"][3, 0] = np.nan
    write_npz(tmp_path / "nan.npz", arrays)
    assert_rejected(model, tmp_path / "nan.npz", "dense/kernel")


def _npy_with_header(shape, dtype="<f4", data=b""):
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


@pytest.mark.parametrize("shape", [(4_000_000_000,), (100_000, 100_000), (20, 2**40)])
def test_header_claiming_billions_of_elements(model, tmp_path, shape):
    arrays = good_arrays()
    arrays["simple_rnn/kernel"] = _npy_with_header(shape, data=b"\x00" * 64)
    write_npz(tmp_path / "huge.npz", arrays)
    tracemalloc.start()
    try:
        assert_rejected(model, tmp_path / "huge.npz", "simple_rnn/kernel")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, f"a rejected load allocated {peak} bytes"


def test_right_header_but_short_data(model, tmp_path):
    arrays = good_arrays()
    arrays["simple_rnn/kernel"] = _npy_with_header((1, 20), data=b"\x00" * 40)
    write_npz(tmp_path / "short.npz", arrays)
    assert_rejected(model, tmp_path / "short.npz")


@pytest.mark.parametrize("header", [b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 20), 'x': __import__('os')}",
                                    b"not a dict at all", b"{'descr': '<f4'}", b"\xff\xfe" * 10])
def test_malformed_npy_header(model, tmp_path, header):
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    payload = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 80
    arrays = good_arrays()
    arrays["simple_rnn/kernel"] = payload
    write_npz(tmp_path / "hdr.npz", arrays)
    assert_rejected(model, tmp_path / "hdr.npz", "simple_rnn/kernel")


def test_missing_file_and_directory(model, tmp_path):
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "nope.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises((IsADirectoryError, ValueError)):
        model.load_weights(tmp_path / "dir.npz")
