import numpy as np
import pytest

from fastrnn.data import make_sequences, make_sine


def test_make_sequences_is_the_tutorial_data():
    X, Y = make_sequences()
    assert X.shape == (100, 3, 1) and Y.shape == (100,)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    for i in range(100):
        np.testing.assert_array_equal(X[i, :, 0], np.linspace(i / 10, (i + 2) / 10, 3))
        assert Y[i] == (i + 3) / 10
    np.testing.assert_allclose(X[80, :, 0], [8.0, 8.1, 8.2])
    assert Y[80] == pytest.approx(8.3)


@pytest.mark.parametrize("size,seq_len", [(1, 1), (5, 7), (250, 10)])
def test_make_sequences_other_sizes(size, seq_len):
    X, Y = make_sequences(size, seq_len)
    assert X.shape == (size, seq_len, 1) and Y.shape == (size,)
    for i in range(size):
        np.testing.assert_array_equal(X[i, :, 0], np.linspace(i / 10, (i + seq_len - 1) / 10, seq_len))
        assert Y[i] == (i + seq_len) / 10


@pytest.mark.parametrize("kwargs,error", [
    (dict(size=0), ValueError), (dict(seq_len=-1), ValueError),
    (dict(size=2.5), TypeError), (dict(seq_len="3"), TypeError), (dict(size=True), TypeError),
])
def test_make_sequences_rejects_bad_sizes(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        make_sequences(**kwargs)


def test_make_sine_is_seeded_windows_of_one_series():
    X, Y = make_sine(size=50, seq_len=8, noise=0.1, seed=3)
    X2, Y2 = make_sine(size=50, seq_len=8, noise=0.1, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert X.shape == (50, 8, 1) and Y.shape == (50,)
    # consecutive windows overlap: window i+1 is window i shifted by one step
    np.testing.assert_array_equal(X[1:, :-1, 0], X[:-1, 1:, 0])
    np.testing.assert_array_equal(Y[:-1], X[1:, -1, 0])
    assert not np.array_equal(X, make_sine(size=50, seq_len=8, noise=0.1, seed=4)[0])


def test_make_sine_without_noise_is_a_sine():
    X, Y = make_sine(size=30, seq_len=5, noise=0.0, period=10.0, seed=0)
    series = np.concatenate([X[0, :, 0], Y])
    # s_{k+1} follows from s_k by rotation through 2 pi / period: check with
    # the identity s_{k+1} + s_{k-1} = 2 cos(2 pi / period) s_k
    np.testing.assert_allclose(series[2:] + series[:-2], 2 * np.cos(2 * np.pi / 10) * series[1:-1],
                               atol=1e-12)
    assert np.all(np.abs(series) <= 1.0)


@pytest.mark.parametrize("kwargs", [dict(noise=-1.0), dict(period=0.0), dict(noise=float("nan"))])
def test_make_sine_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_sine(**kwargs)
