"""Data sets: the tutorial's sequences and a seeded noisy sine wave."""
import numpy as np

__all__ = ["make_sequences", "make_sine"]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _finite_float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def make_sequences(size=100, seq_len=3):
    """The tutorial's data: runs of consecutive tenths and the next one.

    ``X[i] = linspace(i/10, (i+seq_len-1)/10, seq_len)`` and
    ``Y[i] = (i+seq_len)/10``, so with the defaults ``X[80] = [8.0, 8.1, 8.2]``
    and ``Y[80] = 8.3``.

    Parameters
    ----------
    size : int
        Number of sequences N.
    seq_len : int
        Steps per sequence T.

    Returns
    -------
    X : ndarray of shape (N, T, 1), float64
    Y : ndarray of shape (N,), float64
    """
    size = _positive_int(size, "size")
    seq_len = _positive_int(seq_len, "seq_len")
    X = np.array(
        [np.linspace(i / 10, (i + seq_len - 1) / 10, seq_len) for i in range(size)],
        dtype=np.float64,
    ).reshape(size, seq_len, 1)
    Y = np.array([(i + seq_len) / 10 for i in range(size)], dtype=np.float64)
    return X, Y


def make_sine(size=1000, seq_len=20, noise=0.05, period=25.0, seed=None):
    """Windows of a noisy sine wave, each followed by its next value.

    The series is ``s_k = sin(2 pi k / period + phase) + noise * e_k`` with a
    random phase and standard-normal ``e_k``, both drawn from ``seed``.
    Window ``i`` is ``s_i .. s_{i+seq_len-1}`` and its target ``s_{i+seq_len}``.

    Parameters
    ----------
    size : int
        Number of windows N.
    seq_len : int
        Steps per window T.
    noise : float
        Standard deviation of the added Gaussian noise (>= 0).
    period : float
        Period of the wave in steps (> 0).
    seed : int or None
        Seed of ``numpy.random.default_rng``; the same seed gives the same data.

    Returns
    -------
    X : ndarray of shape (N, T, 1), float64
    Y : ndarray of shape (N,), float64
    """
    size = _positive_int(size, "size")
    seq_len = _positive_int(seq_len, "seq_len")
    noise = _finite_float(noise, "noise")
    period = _finite_float(period, "period")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    if not np.isfinite(period) or period <= 0:
        raise ValueError(f"period must be finite and > 0, got {period}")
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    k = np.arange(size + seq_len)
    series = np.sin(2 * np.pi * k / period + phase) + noise * rng.standard_normal(k.size)
    windows = np.lib.stride_tricks.sliding_window_view(series, seq_len + 1)[:size]
    X = np.ascontiguousarray(windows[:, :seq_len]).reshape(size, seq_len, 1)
    Y = windows[:, seq_len].copy()
    return X, Y
