"""``PyDataset``: Keras 3's base class for a dataset of batches written in Python."""
import numbers
import warnings

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for a dataset that hands out whole batches by index (``keras.utils.PyDataset``).

    Subclass it and implement ``__len__`` (the number of batches) and
    ``__getitem__(index)`` (batch ``index``: ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)``).  Optionally override :meth:`on_epoch_begin`
    and :meth:`on_epoch_end` (called by ``fit`` around every epoch, e.g. to
    reshuffle), or the :attr:`num_batches` property instead of ``__len__``
    (``None`` for an endless dataset).

    Parameters
    ----------
    workers : int, default 1
        How many threads or processes may load batches in parallel.
    use_multiprocessing : bool, default False
        Use processes rather than threads.
    max_queue_size : int, default 10
        How many loaded batches may wait in the queue.

    Notes
    -----
    As in Keras these three only tell ``fit`` how it may read the dataset;
    the class itself does nothing with them, and iterating it directly reads
    the batches one after another.  Subclasses must call
    ``super().__init__(**kwargs)``; if they do not, the defaults are used
    with a warning, as Keras does.

    Examples
    --------
    >>> import math, numpy as np
    >>> class Batches(PyDataset):
    ...     def __init__(self, x, y, batch_size, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.x, self.y, self.batch_size = x, y, batch_size
    ...     def __len__(self):
    ...         return math.ceil(len(self.x) / self.batch_size)
    ...     def __getitem__(self, idx):
    ...         lo = idx * self.batch_size
    ...         return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]
    >>> len(Batches(np.zeros((10, 3, 1)), np.zeros(10), 4))
    3
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        missing = False
        for name, default in (("_workers", 1), ("_use_multiprocessing", False),
                              ("_max_queue_size", 10)):
            if name not in self.__dict__:
                self.__dict__[name] = default
                missing = True
        if missing:
            warnings.warn("Your PyDataset class should call super().__init__(**kwargs) in its "
                          "constructor. **kwargs can include workers, use_multiprocessing, "
                          "max_queue_size. Do not pass these arguments to fit(), as they will "
                          "be ignored.", stacklevel=3)

    @property
    def workers(self):
        """int: threads or processes ``fit`` may use to load batches."""
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"PyDataset: workers must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"PyDataset: workers must be >= 0, got {value}")
        self._workers = int(value)

    @property
    def use_multiprocessing(self):
        """bool: whether those workers are processes."""
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"PyDataset: use_multiprocessing must be a bool, got "
                            f"{type(value).__name__}")
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        """int: loaded batches that may wait in the queue."""
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"PyDataset: max_queue_size must be an int, got "
                            f"{type(value).__name__}")
        if value < 0:
            raise ValueError(f"PyDataset: max_queue_size must be >= 0, got {value}")
        self._max_queue_size = int(value)

    def __getitem__(self, index):
        """Batch number ``index`` (a subclass implements this)."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(self, "
                                  f"index), returning one batch")

    @property
    def num_batches(self):
        """int or None: batches per epoch (``len(self)``); ``None`` means endless."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (or the "
                                  f"num_batches property)")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""

    def __iter__(self):
        """The batches in order, once (endlessly if :attr:`num_batches` is None).

        Keras leaves iteration to Python's ``__getitem__`` protocol, which
        only stops at an ``IndexError``; here a pass stops after
        ``num_batches`` batches.
        """
        n = self.num_batches
        i = 0
        while n is None or i < n:
            yield self[i]
            i += 1


Sequence = PyDataset
"""Keras 3's other name for :class:`PyDataset` (``keras.utils.Sequence``)."""
