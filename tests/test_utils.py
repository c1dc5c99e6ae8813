"""fastrnn.utils / fastrnn.preprocessing against Keras 3's recorded answers.

The fixtures (tests/fixtures/keras/utils.json) come from
tools/keras_fixtures/record_utils.py run with real Keras; where Keras raises
an obscure error or silently mangles input, fastrnn raises a clear one, and
the case says so.
"""
import json
import math
import os
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastrnn
from fastrnn.preprocessing import sequence as prep_sequence
from fastrnn.preprocessing import timeseries_dataset_from_array as prep_timeseries
from fastrnn.utils import (PyDataset, Sequence, normalize, pad_sequences, set_random_seed,
                           timeseries_dataset_from_array, to_categorical)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "utils.json")
with open(FIXTURES) as _f:
    KERAS = json.load(_f)


def cases(section):
    return pytest.mark.parametrize("case", KERAS[section], ids=[c["name"] for c in KERAS[section]])


def assert_same(actual, recorded):
    if recorded["shape"] == []:   # one unbatched target: a NumPy scalar, as Keras yields it
        assert isinstance(actual, (np.ndarray, np.generic))
        actual = np.asarray(actual)
    assert isinstance(actual, np.ndarray)
    assert list(actual.shape) == recorded["shape"]
    assert str(actual.dtype) == recorded["dtype"]
    if recorded["dtype"] == "object":
        assert actual.tolist() == recorded["values"]
    else:
        np.testing.assert_array_equal(actual, np.array(recorded["values"],
                                                       dtype=recorded["dtype"]).reshape(
                                                           recorded["shape"]))


# -- public names, as `from keras.X import Y` -------------------------------------------------

def test_names_are_where_keras_has_them():
    assert fastrnn.utils.pad_sequences is prep_sequence.pad_sequences is pad_sequences
    assert prep_timeseries is timeseries_dataset_from_array
    assert fastrnn.utils.set_random_seed is fastrnn.set_random_seed is set_random_seed
    assert Sequence is PyDataset
    for name in ("to_categorical", "normalize", "pad_sequences",
                 "timeseries_dataset_from_array", "PyDataset", "Sequence", "set_random_seed"):
        assert name in fastrnn.utils.__all__


# -- pad_sequences -----------------------------------------------------------------------------

# Keras fails with an obscure error where fastrnn gives a result or a clear one.
PAD_DIFFERENCES = {
    "maxlen_0_truncating_pre": "result",      # Keras: numpy broadcast error; here (N, 0)
    "empty_without_maxlen": ValueError,        # both ValueError; the message differs
}


@cases("pad_sequences")
def test_pad_sequences_matches_keras(case):
    kwargs = dict(case["kwargs"])
    if kwargs.get("dtype") == "object":
        kwargs["dtype"] = object
    if "error" in case and case["name"] not in PAD_DIFFERENCES:
        with pytest.raises({"ValueError": ValueError, "TypeError": TypeError}[case["error"]]):
            pad_sequences(case["sequences"], **kwargs)
        return
    if case["name"] == "maxlen_0_truncating_pre":
        out = pad_sequences(case["sequences"], **kwargs)
        assert out.shape == (3, 0) and out.dtype == np.int32
        return
    if case["name"] == "empty_without_maxlen":
        with pytest.raises(ValueError, match="maxlen"):
            pad_sequences(case["sequences"], **kwargs)
        return
    assert_same(pad_sequences(case["sequences"], **kwargs), case["result"])


def test_pad_sequences_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match="truncating"):   # even when nothing is cut
        pad_sequences([[1]], truncating="both")
    with pytest.raises(TypeError, match="maxlen"):
        pad_sequences([[1]], maxlen=2.0)
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences([[1]], maxlen=-1)
    with pytest.raises(ValueError, match="item 1"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="sequences"):
        pad_sequences(iter([[1]]))


def test_pad_sequences_accepts_arrays_and_keeps_input_untouched():
    seqs = [np.array([1, 2, 3]), np.array([4])]
    out = pad_sequences(seqs, maxlen=2, padding="post", truncating="post")
    np.testing.assert_array_equal(out, [[1, 2], [4, 0]])
    np.testing.assert_array_equal(seqs[0], [1, 2, 3])


@given(st.lists(st.lists(st.integers(-50, 50), max_size=7), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, 9)), st.sampled_from(["pre", "post"]),
       st.sampled_from(["pre", "post"]))
def test_pad_sequences_against_a_plain_reference(seqs, maxlen, padding, truncating):
    out = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating, value=-99)
    width = max(map(len, seqs)) if maxlen is None else maxlen
    assert out.shape == (len(seqs), width)
    for row, seq in zip(out, seqs):
        kept = seq[len(seq) - width:] if (truncating == "pre" and len(seq) > width) \
            else seq[:width]
        pad = [-99] * (width - len(kept))
        assert row.tolist() == (kept + pad if padding == "post" else pad + kept)


# -- to_categorical / normalize ----------------------------------------------------------------

CATEGORICAL_DIFFERENCES = {
    # Keras wraps -1 to the last class; a negative label is an error here
    "negative_wraps_in_keras": (ValueError, ">= 0"),
    # Keras raises IndexError
    "too_large": (ValueError, "out of range"),
    # Keras truncates 0.7 to 0
    "fractional_truncated_in_keras": (ValueError, "whole-number"),
    # Keras: numpy's zero-size reduction error
    "empty_without_classes": (ValueError, "num_classes"),
}


@cases("to_categorical")
def test_to_categorical_matches_keras(case):
    x = case["x"]
    if case["name"] in CATEGORICAL_DIFFERENCES:
        error, match = CATEGORICAL_DIFFERENCES[case["name"]]
        with pytest.raises(error, match=match):
            to_categorical(x, **case["kwargs"])
        return
    assert_same(to_categorical(x, **case["kwargs"]), case["result"])


def test_to_categorical_bad_input():
    with pytest.raises(TypeError, match="num_classes"):
        to_categorical([0, 1], num_classes=2.0)
    with pytest.raises(TypeError, match="integer class labels"):
        to_categorical(["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        to_categorical([0.0, np.nan])


@given(st.lists(st.integers(0, 6), min_size=1, max_size=20))
def test_to_categorical_round_trips_through_argmax(labels):
    one_hot = to_categorical(labels)
    assert one_hot.shape == (len(labels), max(labels) + 1)
    np.testing.assert_array_equal(one_hot.argmax(-1), labels)
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)


@cases("normalize")
def test_normalize_matches_keras(case):
    x = np.array(case["x"], dtype=case["x_dtype"])
    if case["name"] == "square_axis_0":
        # Keras divides by the column norms laid along the rows (its `axis or -1`);
        # here axis=0 normalises the columns
        out = normalize(x, **case["kwargs"])
        np.testing.assert_allclose(np.linalg.norm(out, axis=0), 1.0)
        assert not np.allclose(out, np.array(case["result"]["values"]))
        return
    out = normalize(x, **case["kwargs"])
    assert list(out.shape) == case["result"]["shape"]
    np.testing.assert_allclose(out, np.array(case["result"]["values"]), rtol=1e-12)


def test_normalize_bad_input():
    with pytest.raises(ValueError, match="axis"):
        normalize(np.ones((2, 2)), axis=2)
    with pytest.raises(TypeError, match="numeric"):
        normalize(np.array(["a"]))


# -- timeseries_dataset_from_array -------------------------------------------------------------

def _recorded_input(case, key):
    values = case[key]
    if values is None:
        return None
    if case.get("data_is_list"):
        return values
    return np.array(values, dtype=case[f"{key}_dtype"])


TIMESERIES = [c for c in KERAS["timeseries"] if "batches" in c]
TIMESERIES_ERRORS = [c for c in KERAS["timeseries"] if "error" in c]


@pytest.mark.parametrize("case", TIMESERIES, ids=[c["name"] for c in TIMESERIES])
def test_timeseries_matches_keras_batch_for_batch(case):
    data = _recorded_input(case, "data")
    targets = _recorded_input(case, "targets")
    ds = timeseries_dataset_from_array(data, targets, **case["kwargs"])
    for _ in range(2):   # re-iterable: every pass is the same without shuffle
        batches = list(ds)
        assert len(batches) == len(case["batches"]) == len(ds)
        for got, want in zip(batches, case["batches"]):
            if targets is None:
                assert_same(got, want["x"])
            else:
                assert_same(got[0], want["x"])
                assert_same(got[1], want["y"])


@pytest.mark.parametrize("case", TIMESERIES_ERRORS, ids=[c["name"] for c in TIMESERIES_ERRORS])
def test_timeseries_rejects_what_keras_rejects(case):
    data = np.array(case["data"], dtype=case["data_dtype"])
    with pytest.raises(ValueError):
        timeseries_dataset_from_array(data, None, **case["kwargs"])


def test_timeseries_shuffle_same_windows_new_order_each_pass():
    rec = next(c for c in KERAS["timeseries"] if c["name"] == "shuffled_window_starts")
    data = np.arange(100)
    ds = timeseries_dataset_from_array(data, data * 10, **rec["kwargs"])
    passes = []
    for _ in range(3):
        starts = [int(x[0]) for xb, yb in ds for x in xb]
        for xb, yb in ds:
            np.testing.assert_array_equal(yb, xb[:, 0] * 10)   # targets travel with windows
        passes.append(starts)
        assert sorted(starts) == rec["window_starts_sorted"]
    assert len(ds) == rec["batches_per_pass"]
    assert passes[0] != passes[1] or passes[1] != passes[2]
    again = timeseries_dataset_from_array(data, data * 10, **rec["kwargs"])
    assert [int(x[0]) for xb, _ in again for x in xb] == passes[0]   # the seed fixes it


def test_timeseries_shuffle_without_seed_follows_set_random_seed():
    data = np.arange(50)
    orders = []
    for _ in range(2):
        set_random_seed(5)
        ds = timeseries_dataset_from_array(data, None, sequence_length=3, batch_size=4,
                                           shuffle=True)
        orders.append([int(x[0]) for xb in ds for x in xb])
    assert orders[0] == orders[1] and orders[0] != sorted(orders[0])


def test_timeseries_take_and_numpy_iterator():
    ds = timeseries_dataset_from_array(np.arange(30.0), None, sequence_length=4, batch_size=5)
    first = list(ds.take(2))
    assert len(first) == 2 == len(ds.take(2)) and len(ds.take(-1)) == len(ds)
    np.testing.assert_array_equal(first[1][0], [5.0, 6.0, 7.0, 8.0])
    np.testing.assert_array_equal(next(ds.as_numpy_iterator())[0], [0.0, 1.0, 2.0, 3.0])
    assert ds.num_batches == ds.cardinality() == len(ds) == 6


def test_timeseries_bad_arguments():
    data = np.arange(20)
    with pytest.raises(TypeError, match="sequence_length"):
        timeseries_dataset_from_array(data, None, sequence_length=2.5)
    with pytest.raises(ValueError, match="sequence_length"):
        timeseries_dataset_from_array(data, None, sequence_length=0)
    with pytest.raises(ValueError, match="batch_size"):
        timeseries_dataset_from_array(data, None, 3, batch_size=0)
    with pytest.raises(ValueError, match="end_index"):
        timeseries_dataset_from_array(data, None, 3, end_index=0)
    with pytest.raises(ValueError, match="format"):
        timeseries_dataset_from_array(data, None, 3, format="torch")
    with pytest.raises(ValueError, match="targets"):
        # the window at step 12 would need targets[12]
        timeseries_dataset_from_array(data, np.arange(10), 3, start_index=10)
    with pytest.raises(TypeError, match="shuffle"):
        timeseries_dataset_from_array(data, None, 3, shuffle="yes")


@given(st.integers(5, 40), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 9), st.integers(0, 3))
def test_timeseries_windows_against_a_plain_reference(n, length, stride, rate, batch, start):
    data = np.arange(n) * 3 + 1
    targets = -np.arange(n)
    if stride >= n or rate >= n or start >= n:
        return
    ds = timeseries_dataset_from_array(data, targets, length, sequence_stride=stride,
                                       sampling_rate=rate, batch_size=batch,
                                       start_index=start or None)
    windows = [(data[p:p + length * rate:rate], targets[p])
               for p in range(start, n - (length - 1) * rate, stride)]
    got = [(x, y) for xb, yb in ds for x, y in zip(xb, yb)]
    assert len(got) == len(windows)
    for (x, y), (wx, wy) in zip(got, windows):
        np.testing.assert_array_equal(x, wx)
        assert y == wy
    assert all(len(xb) == batch for xb, _ in list(ds)[:-1])


# -- PyDataset ---------------------------------------------------------------------------------

class Batches(PyDataset):
    def __init__(self, n, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x = np.arange(n, dtype=float)
        self.batch_size = batch_size
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        lo = idx * self.batch_size
        return self.x[lo:lo + self.batch_size], self.x[lo:lo + self.batch_size] * 2

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_keras_surface():
    ds = Batches(10, 4, workers=2, use_multiprocessing=False, max_queue_size=3)
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (2, False, 3)
    assert ds.num_batches == len(ds) == 3
    batches = list(ds)
    assert len(batches) == 3 and batches[-1][0].tolist() == [8.0, 9.0]
    ds.on_epoch_begin()
    ds.on_epoch_end()
    assert ds.epochs_ended == 1
    defaults = Batches(3, 2)
    assert (defaults.workers, defaults.use_multiprocessing, defaults.max_queue_size) == (
        1, False, 10)


def test_pydataset_without_super_init_warns_and_uses_defaults():
    class NoSuper(PyDataset):
        def __init__(self):
            self.size = 1

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return np.zeros(1), np.zeros(1)

    ds = NoSuper()
    with pytest.warns(UserWarning, match="super"):
        assert ds.workers == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.max_queue_size == 10   # warned once; the defaults are now set


def test_pydataset_bad_arguments_and_missing_methods():
    with pytest.raises(TypeError, match="workers"):
        Batches(3, 1, workers=1.5)
    with pytest.raises(ValueError, match="workers"):
        Batches(3, 1, workers=-1)
    with pytest.raises(TypeError, match="use_multiprocessing"):
        Batches(3, 1, use_multiprocessing="no")
    with pytest.raises(ValueError, match="max_queue_size"):
        Batches(3, 1, max_queue_size=-2)
    with pytest.raises(NotImplementedError, match="__getitem__"):
        PyDataset()[0]
    with pytest.raises(NotImplementedError, match="__len__"):
        PyDataset().num_batches


def test_pydataset_endless_when_num_batches_is_none():
    class Endless(PyDataset):
        @property
        def num_batches(self):
            return None

        def __getitem__(self, i):
            return np.full(2, i), np.zeros(2)

    it = iter(Endless())
    assert [int(next(it)[0][0]) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_pydataset_pickles_for_multiprocessing():
    ds = pickle.loads(pickle.dumps(Batches(5, 2, workers=3)))
    assert ds.workers == 3 and len(ds) == 3


def test_timeseries_keeps_the_dtype_of_array_likes():
    class Column:   # an array-like without a dtype attribute (as a DataFrame has `dtypes`)
        def __init__(self, values):
            self.values = np.asarray(values, dtype=np.float64)

        def __len__(self):
            return len(self.values)

        def __array__(self, dtype=None, copy=None):
            return self.values if dtype is None else self.values.astype(dtype)

    ds = timeseries_dataset_from_array(Column(np.arange(10.0)), None, 3, batch_size=4)
    assert next(iter(ds)).dtype == np.float64
    ds = timeseries_dataset_from_array(tuple(range(10)), None, 3, batch_size=4)
    assert next(iter(ds)).dtype == np.int32     # a Python sequence converts as TensorFlow does
