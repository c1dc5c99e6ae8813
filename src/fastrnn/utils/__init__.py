"""Utilities with ``keras.utils``'s names: labels, padding, time-series windows, datasets.

Everything here is NumPy in, NumPy out; nothing needs TensorFlow.

- :func:`to_categorical`, :func:`normalize`
- :func:`pad_sequences` (also ``fastrnn.preprocessing.sequence.pad_sequences``)
- :func:`timeseries_dataset_from_array` (also ``fastrnn.preprocessing``)
- :class:`PyDataset` (alias :class:`Sequence`)
- :func:`set_random_seed` (the same function as ``fastrnn.set_random_seed``)
- :func:`clear_session` (``keras.utils.clear_session``, as :func:`fastrnn.backend.clear_session`)
"""
from ..initializers import set_random_seed
from ..backend import clear_session
from .numerical_utils import normalize, to_categorical
from .py_dataset import PyDataset, Sequence
from .sequence_utils import pad_sequences
from .timeseries_dataset import TimeseriesDataset, timeseries_dataset_from_array

__all__ = [
    "to_categorical", "normalize", "pad_sequences", "timeseries_dataset_from_array",
    "TimeseriesDataset", "PyDataset", "Sequence", "set_random_seed", "clear_session",
]
