"""``keras.metrics.Precision`` and ``Recall``: counts of true/false positives/negatives.

Run in NumPy on each batch (as every :class:`~fastrnn.metrics.Metric` subclass).
As Keras 3: every value of the batch counts (the arrays are flattened), a
prediction is positive when it is strictly above ``thresholds`` (default
0.5), a target when it is non-zero; ``sample_weight`` weighs the counts;
the result is ``TP / (TP + FP)`` (precision) or ``TP / (TP + FN)``
(recall) over everything seen since the last reset, 0 before any positive.
"""
import numbers

import numpy as np

from .metrics import Metric

__all__ = ["Precision", "Recall"]


class _Confusion(Metric):
    _direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if top_k is not None or class_id is not None:
            raise NotImplementedError(f"{type(self).__name__}: top_k and class_id are not "
                                      f"supported yet")
        if thresholds is not None and (isinstance(thresholds, bool)
                                       or not isinstance(thresholds, numbers.Real)):
            raise NotImplementedError(f"{type(self).__name__}: thresholds must be one number "
                                      f"(a list of thresholds is not supported yet), got "
                                      f"{thresholds!r}")
        if thresholds is not None and not 0 <= thresholds <= 1:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {thresholds}")
        self.thresholds = thresholds
        self.top_k = None
        self.class_id = None
        self.reset_state()

    def reset_state(self):
        self.true_positives = 0.0
        self.false_positives = 0.0
        self.false_negatives = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.shape != y_pred.shape and y_true.size == y_pred.size:
            y_true = y_true.reshape(y_pred.shape)      # (N,) against (N, 1)
        threshold = 0.5 if self.thresholds is None else self.thresholds
        predicted = y_pred > threshold
        actual = y_true.astype(bool)
        w = np.ones(y_pred.shape) if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, dtype=np.float64).reshape(
                np.shape(sample_weight) + (1,) * (y_pred.ndim - np.ndim(sample_weight))),
            y_pred.shape)
        self.true_positives += float(np.sum(w * (predicted & actual)))
        self.false_positives += float(np.sum(w * (predicted & ~actual)))
        self.false_negatives += float(np.sum(w * (~predicted & actual)))

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype or "float32",
                "thresholds": self.thresholds, "top_k": None, "class_id": None}


class Precision(_Confusion):
    """``keras.metrics.Precision``: TP / (TP + FP) at the threshold (default 0.5)."""

    def result(self):
        seen = self.true_positives + self.false_positives
        return self.true_positives / seen if seen else 0.0


class Recall(_Confusion):
    """``keras.metrics.Recall``: TP / (TP + FN) at the threshold (default 0.5)."""

    def result(self):
        seen = self.true_positives + self.false_negatives
        return self.true_positives / seen if seen else 0.0
