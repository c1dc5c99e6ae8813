"""``keras.preprocessing``'s names that fastrnn has: ``sequence.pad_sequences`` and
:func:`timeseries_dataset_from_array` (the same functions as in :mod:`fastrnn.utils`)."""
from ..utils.timeseries_dataset import timeseries_dataset_from_array
from . import sequence

__all__ = ["sequence", "timeseries_dataset_from_array"]
