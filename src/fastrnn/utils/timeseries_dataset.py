"""``timeseries_dataset_from_array``: sliding windows over a series, as NumPy batches.

Keras returns a ``tf.data.Dataset``; here the result is a small re-iterable
object, :class:`TimeseriesDataset`, that yields the same windows in the same
order (without shuffling) as NumPy arrays, and needs no TensorFlow.
"""
import numbers

import numpy as np

__all__ = ["timeseries_dataset_from_array", "TimeseriesDataset"]


def _int_arg(value, name, minimum=None, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"timeseries_dataset_from_array: {name} must be an int"
                        f"{' or None' if allow_none else ''}, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"timeseries_dataset_from_array: {name} must be >= {minimum}, "
                         f"got {value}")
    return value


def _as_array(values, name):
    """An ndarray view of ``values``; Python lists convert as TensorFlow converts them.

    ``tf.data`` turns a list of Python floats into float32 and of ints into
    int32; arrays (and array-likes such as pandas objects) keep their dtype.
    """
    if not hasattr(values, "__len__"):
        raise TypeError(f"timeseries_dataset_from_array: {name} must be an array or a list, "
                        f"got {type(values).__name__}")
    if not isinstance(values, (list, tuple)):
        return np.asarray(values)
    arr = np.asarray(values)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.int64:
        arr = arr.astype(np.int32)
    return arr


class TimeseriesDataset:
    """The windows of :func:`timeseries_dataset_from_array`, iterated as NumPy batches.

    Iterating yields ``(x, y)`` with ``x`` of shape (b, sequence_length,
    *data.shape[1:]) and ``y`` of shape (b, *targets.shape[1:]) -- or only
    ``x`` when there are no targets -- with ``b = batch_size`` except maybe in
    the last batch.  With ``batch_size=None`` single windows are yielded
    (shapes without the leading ``b``).  Every ``iter()`` starts a new pass
    (an epoch); with ``shuffle`` each pass has its own order.

    Attributes
    ----------
    start_positions : ndarray of int64
        Where each window starts, relative to ``start_index``, in the
        unshuffled order.
    """

    def __init__(self, data, targets, start_positions, sequence_length, sampling_rate,
                 batch_size, shuffle, seed, start_index):
        self._data = data
        self._targets = targets
        self.start_positions = start_positions
        self._offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self._start_index = start_index
        self._passes = 0

    def __len__(self):
        """Batches in one pass (windows when ``batch_size`` is None)."""
        n = len(self.start_positions)
        return n if self.batch_size is None else -(-n // self.batch_size)

    @property
    def num_batches(self):
        """Same as ``len(self)``."""
        return len(self)

    def cardinality(self):
        """Same as ``len(self)`` (``tf.data.Dataset.cardinality`` as an int)."""
        return len(self)

    def _order(self):
        if not self.shuffle:
            return self.start_positions
        # One seeded permutation per pass: every window once per pass, a new
        # order each pass (the order is not TensorFlow's).
        rng = np.random.default_rng([self.seed, self._passes])
        self._passes += 1
        return rng.permutation(self.start_positions)

    def _windows(self, positions):
        first = positions + self._start_index
        x = self._data[first[:, None] + self._offsets]
        if self._targets is None:
            return x
        return x, self._targets[first]

    def __iter__(self):
        order = self._order()
        if self.batch_size is None:
            for p in order:
                item = self._windows(np.array([p]))
                yield item[0] if self._targets is None else (item[0][0], item[1][0])
            return
        for lo in range(0, len(order), self.batch_size):
            yield self._windows(order[lo:lo + self.batch_size])

    def as_numpy_iterator(self):
        """A new pass over the batches (they already are NumPy arrays)."""
        return iter(self)

    def take(self, count):
        """The first ``count`` batches of each pass, as a re-iterable (``count=-1``: all).

        Parameters
        ----------
        count : int
        """
        count = _int_arg(count, "count", minimum=-1)
        return _Take(self, count)


class _Take:
    def __init__(self, dataset, count):
        self._dataset = dataset
        self._count = count

    def __len__(self):
        n = len(self._dataset)
        return n if self._count < 0 else min(n, self._count)

    def __iter__(self):
        for i, batch in enumerate(self._dataset):
            if 0 <= self._count <= i:
                return
            yield batch


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None, format="tf"):
    """Sliding windows over a time series, batched (``keras.utils.timeseries_dataset_from_array``).

    Window ``k`` starts at ``start_index + p_k`` with ``p_k = k *
    sequence_stride`` and holds the steps ``p_k, p_k + sampling_rate, ...``
    (``sequence_length`` of them); its target is ``targets[start_index +
    p_k]``.  Windows that would reach ``end_index`` (exclusive) or the end of
    ``targets`` are not made.

    Parameters
    ----------
    data : array_like of shape (T, ...)
        Axis 0 is time.
    targets : array_like of shape (T', ...) or None
        ``targets[i]`` is the target of the window starting at step ``i``.
        ``None``: the dataset yields only the inputs.
    sequence_length : int
        Steps per window (>= 1).
    sequence_stride : int, default 1
        Steps between the starts of consecutive windows (1 <= stride < T).
    sampling_rate : int, default 1
        Steps between consecutive items of a window (1 <= rate < T).
    batch_size : int or None, default 128
        Windows per batch (the last may be smaller); ``None`` yields single
        windows.
    shuffle : bool, default False
        Yield the windows in a random order, a new one on every pass.
    seed : int, optional
        Seed of that order; by default one is drawn from NumPy's global
        generator (so :func:`fastrnn.utils.set_random_seed` fixes it), as in
        Keras.
    start_index, end_index : int, optional
        Only steps ``start_index <= t < end_index`` are used.
    format : {"tf", "grain"}, default "tf"
        Accepted for Keras compatibility; both give the same NumPy dataset.

    Returns
    -------
    TimeseriesDataset
        Re-iterable; ``len()`` is the number of batches per pass.

    Raises
    ------
    TypeError
        An int argument is not an int.
    ValueError
        An argument is out of range (as Keras checks), ``targets`` is too
        short for the windows after ``start_index``, or ``data`` is 0-D.

    Notes
    -----
    Same windows and, without shuffle, the same order and batches as Keras.
    With ``shuffle=True`` the set of windows per pass is the same but the
    order is not TensorFlow's.  Python lists convert as TensorFlow converts
    them (floats to float32, ints to int32); arrays keep their dtype.
    Keras accepts ``end_index=0`` and then yields nothing; here it is a
    ``ValueError``, as the check Keras means to make.
    """
    if format not in ("tf", "grain"):
        raise ValueError(f'timeseries_dataset_from_array: format must be "tf" or "grain", '
                         f'got {format!r}')
    data = _as_array(data, "data")
    if data.ndim == 0:
        raise ValueError("timeseries_dataset_from_array: data must have a time axis (axis 0)")
    if targets is not None:
        targets = _as_array(targets, "targets")
        if targets.ndim == 0:
            raise ValueError("timeseries_dataset_from_array: targets must have a time axis "
                             "(axis 0)")
    n = len(data)
    sequence_length = _int_arg(sequence_length, "sequence_length", minimum=1)
    sequence_stride = _int_arg(sequence_stride, "sequence_stride", minimum=1)
    sampling_rate = _int_arg(sampling_rate, "sampling_rate", minimum=1)
    batch_size = _int_arg(batch_size, "batch_size", minimum=1, allow_none=True)
    seed = _int_arg(seed, "seed", minimum=0, allow_none=True)
    start_index = _int_arg(start_index, "start_index", minimum=0, allow_none=True)
    end_index = _int_arg(end_index, "end_index", minimum=1, allow_none=True)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"timeseries_dataset_from_array: shuffle must be a bool, got "
                        f"{type(shuffle).__name__}")
    if start_index and start_index >= n:
        raise ValueError(f"timeseries_dataset_from_array: start_index must be lower than the "
                         f"length of the data; got start_index={start_index} for data of "
                         f"length {n}")
    if end_index is not None:
        if start_index and end_index <= start_index:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be higher than "
                             f"start_index; got start_index={start_index}, "
                             f"end_index={end_index}")
        if end_index >= n:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be lower than "
                             f"the length of the data; got end_index={end_index} for data "
                             f"of length {n}")
    if sampling_rate >= n:
        raise ValueError(f"timeseries_dataset_from_array: sampling_rate must be lower than "
                         f"the length of the data; got sampling_rate={sampling_rate} for "
                         f"data of length {n}")
    if sequence_stride >= n:
        raise ValueError(f"timeseries_dataset_from_array: sequence_stride must be lower than "
                         f"the length of the data; got sequence_stride={sequence_stride} for "
                         f"data of length {n}")
    start_index = start_index or 0
    end_index = n if end_index is None else end_index

    num_windows = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        num_windows = min(num_windows, len(targets))
    start_positions = np.arange(0, max(num_windows, 0), sequence_stride, dtype=np.int64)
    if targets is not None and len(start_positions) and \
            start_index + start_positions[-1] >= len(targets):
        raise ValueError(f"timeseries_dataset_from_array: targets has {len(targets)} steps but "
                         f"the window starting at step {start_index + start_positions[-1]} "
                         f"needs a target there")
    if shuffle and seed is None:
        seed = int(np.random.randint(1_000_000))
    return TimeseriesDataset(data, targets, start_positions, sequence_length, sampling_rate,
                             batch_size, bool(shuffle), seed, start_index)
