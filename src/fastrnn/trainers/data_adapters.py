"""Data adapters: every kind of input ``fit``/``evaluate``/``predict`` accept, as batches.

As in Keras 3 (``keras/src/trainers/data_adapters/``) one adapter layer turns
whatever the user passes into uniform NumPy batches ``(x, y, sample_weight)``,
so the training loop is one loop:

- :class:`ArrayDataAdapter`: NumPy arrays or nested lists (``x``, ``y``,
  ``sample_weight``); checked and cast once, batched by slicing (and the
  whole epoch can run in one compiled call);
- :class:`IterableDataAdapter`: a Python generator or iterator, any
  iterable of batches (re-iterated every epoch), a
  :class:`fastrnn.utils.PyDataset` (``on_epoch_begin``/``on_epoch_end``
  called around every epoch), the object ``timeseries_dataset_from_array``
  returns, or a ``tf.data.Dataset`` (iterated with ``as_numpy_iterator``;
  TensorFlow is never imported by fastrnn).  Each batch is ``x``, ``(x,)``,
  ``(x, y)`` or ``(x, y, sample_weight)``.

:class:`EpochIterator` hands out one epoch's batches with Keras's rules for
``steps_per_epoch``: with it, a one-shot generator keeps running across
epochs (each epoch takes the next ``steps_per_epoch`` batches); a finite
re-iterable starts again when it has been read through.  Running out of
data stops training with Keras's warning.
"""
import math
import types

import numpy as np

#: Keras's warning when the data ends before the epochs do
RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset or "
           "generator can generate at least `steps_per_epoch * epochs` batches.")

__all__ = ["ArrayDataAdapter", "IterableDataAdapter", "EpochIterator", "get_data_adapter",
           "is_array_like", "unpack_batch"]


def is_tf_dataset(x):
    """A ``tf.data.Dataset`` (checked by class name and module; TensorFlow is not imported)."""
    for parent in type(x).__mro__:
        if parent.__name__ in ("DatasetV2", "DistributedDataset") and \
                "tensorflow" in str(parent.__module__):
            return True
    return False


def is_array_like(x):
    """Arrays and nested lists/tuples of numbers: what the array adapter takes."""
    if isinstance(x, (np.ndarray, str, bytes)):     # strings: the array path rejects them
        return True
    if isinstance(x, (list, tuple, dict)):          # dicts: arrays by input name
        return True
    # other objects with an array interface (e.g. pandas), never iterables of batches
    return hasattr(x, "__array__") and not hasattr(x, "__next__")


def unpack_batch(batch, where):
    """``(x, y, sample_weight)`` from a batch ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, dict):
        raise ValueError(f"{where}: a batch is x, (x,), (x, y) or (x, y, sample_weight); "
                         f"dict batches (named inputs) are not supported")
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) == 1:
        return batch[0], None, None
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch
    raise ValueError(f"{where}: a batch is x, (x,), (x, y) or (x, y, sample_weight); got a "
                     f"tuple of {len(batch)} elements")


class ArrayDataAdapter:
    """Checked arrays, sliced into batches of ``batch_size`` (the last one may be smaller).

    Parameters
    ----------
    x, y, sample_weight : ndarray, or list of ndarray
        Already checked and cast by the trainer (``y``/``sample_weight`` may be None);
        ``sample_weight`` here is the engine's per-row weights.  A model with
        several inputs (outputs) has one array per input (output) in a list.
    batch_size : int
    shuffle : bool
        A fresh permutation every epoch (``rng``).
    """

    is_arrays = True

    def __init__(self, x, y, sample_weight, batch_size, shuffle=False):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.num_samples = _first(x).shape[0]
        self.num_batches = math.ceil(self.num_samples / batch_size)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass

    def batches(self, rng=None):
        """One pass: ``(x, y, w)`` slices (of a shuffled copy when shuffling)."""
        x, y, w = self.x, self.y, self.sample_weight
        if self.shuffle and rng is not None:
            perm = rng.permutation(self.num_samples)
            x, y, w = (_apply(a, lambda b: np.take(b, perm, axis=0)) for a in (x, y, w))
        for start in range(0, self.num_samples, self.batch_size):
            stop = start + self.batch_size
            yield tuple(_apply(a, lambda b: b[start:stop]) for a in (x, y, w))


def _first(a):
    return a[0] if isinstance(a, list) else a


def _apply(a, fn):
    """fn on an array, on each array of a list (None entries kept), or None."""
    if a is None:
        return None
    if isinstance(a, list):
        return [None if b is None else fn(b) for b in a]
    return fn(a)


class IterableDataAdapter:
    """Batches from a generator, an iterable, a PyDataset or a tf.data.Dataset.

    Parameters
    ----------
    source : iterable
    name : str
        How errors name the source ("x", "validation_data").
    """

    is_arrays = False

    def __init__(self, source, name="x"):
        self.source = source
        self.name = name
        # an iterator (a generator) runs once; anything else is iterated afresh every epoch
        self.one_shot = hasattr(source, "__next__") and not is_tf_dataset(source)
        self.num_batches = self._size(source)
        self._hooks = hasattr(source, "on_epoch_end") and hasattr(source, "__getitem__")

    @staticmethod
    def _size(source):
        if is_tf_dataset(source):
            n = int(source.cardinality())
            return n if n >= 0 else None          # -1 infinite, -2 unknown
        n = getattr(source, "num_batches", None)
        if n is not None or hasattr(source, "num_batches"):
            return n
        try:
            return len(source)
        except TypeError:
            return None

    def on_epoch_begin(self):
        if self._hooks:
            getattr(self.source, "on_epoch_begin", lambda: None)()

    def on_epoch_end(self):
        if self._hooks:
            self.source.on_epoch_end()

    def iterator(self):
        """A fresh iterator over the source (the same running one for a generator)."""
        if is_tf_dataset(self.source):
            return iter(self.source.as_numpy_iterator())
        if self.one_shot:
            return self.source
        if hasattr(self.source, "__getitem__") and hasattr(self.source, "num_batches") \
                and not hasattr(self.source, "__iter__"):
            n = self.num_batches
            return (self.source[i] for i in (range(n) if n is not None else _count()))
        return iter(self.source)


def _count():
    i = 0
    while True:
        yield i
        i += 1


class EpochIterator:
    """The batches of every epoch, with Keras's ``steps_per_epoch`` rules.

    Parameters
    ----------
    adapter : ArrayDataAdapter or IterableDataAdapter
    steps_per_epoch : int, optional
    rng : numpy.random.Generator, optional
        Shuffles array data.

    Attributes
    ----------
    exhausted : bool
        The last epoch ran out of data before ``steps_per_epoch`` (or got no
        batch at all): ``fit`` stops with Keras's warning (:data:`RAN_OUT`).
    """

    def __init__(self, adapter, steps_per_epoch=None, rng=None):
        self.adapter = adapter
        self.steps_per_epoch = steps_per_epoch
        self.rng = rng
        self._current = None
        self._seen = 0
        self.exhausted = False

    @property
    def num_batches(self):
        return self.steps_per_epoch or self.adapter.num_batches

    def _fresh(self):
        if self.adapter.is_arrays:
            return iter(self.adapter.batches(self.rng))
        return self.adapter.iterator()

    def epoch(self):
        """Yield ``(step, batch)`` for one epoch."""
        adapter = self.adapter
        adapter.on_epoch_begin()
        self.exhausted = False
        steps = self.steps_per_epoch
        known = adapter.num_batches
        if steps is None or self._current is None:
            self._current = self._fresh()
            self._seen = 0
        step = 0
        while steps is None or step < steps:
            if steps is not None and known is not None and self._seen >= known:
                # a finite source read through: start again (Keras re-creates it)
                self._current = self._fresh()
                self._seen = 0
            try:
                batch = next(self._current)
            except StopIteration:
                self._current = None
                if steps is not None or step == 0:
                    self.exhausted = True
                break
            self._seen += 1
            yield step, batch
            step += 1
        adapter.on_epoch_end()


def get_data_adapter(x, y, sample_weight, name="x"):
    """The iterable adapter for ``x`` when it is not array-like (None for arrays).

    Raises
    ------
    ValueError
        ``y`` or ``sample_weight`` given with batches that carry their own.
    TypeError
        ``x`` is neither array-like nor an iterable of batches.
    """
    if is_array_like(x):
        return None
    if x is None:
        raise ValueError(f"{name} is required (got None)")
    kind = ("a tf.data.Dataset" if is_tf_dataset(x) else
            "a generator" if isinstance(x, types.GeneratorType) else
            f"a {type(x).__name__}")
    if y is not None:
        raise ValueError(f"when {name} is {kind}, y must not be passed: the targets come "
                         f"with the batches, (x, y) or (x, y, sample_weight)")
    if sample_weight is not None:
        raise ValueError(f"when {name} is {kind}, sample_weight must not be passed: it comes "
                         f"with the batches, (x, y, sample_weight)")
    if not (is_tf_dataset(x) or hasattr(x, "__iter__") or hasattr(x, "__getitem__")):
        raise TypeError(f"{name} must be an array, a list, a generator or an iterable of "
                        f"batches, a PyDataset or a tf.data.Dataset; got {type(x).__name__}")
    return IterableDataAdapter(x, name)
