"""``to_categorical`` and ``normalize``, as ``keras.utils`` has them (NumPy in, NumPy out)."""
import numbers

import numpy as np

__all__ = ["to_categorical", "normalize"]


def _integer_labels(x):
    """``x`` as an int64 array, refusing what Keras would silently mangle.

    Keras casts with ``np.array(x, dtype="int64")``, which truncates 1.7 to 1
    and turns NaN into an arbitrary integer; here only values that are whole
    numbers are accepted.
    """
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: x must hold integer class labels, got an array of "
                        f"dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError("to_categorical: x holds NaN or infinite values; class labels "
                             "must be integers 0 .. num_classes-1")
        if (arr != np.trunc(arr)).any():
            bad = arr[arr != np.trunc(arr)].flat[0]
            raise ValueError(f"to_categorical: x must hold whole-number class labels, got "
                             f"{bad!r}")
    return arr.astype(np.int64)


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels (``keras.utils.to_categorical``).

    Parameters
    ----------
    x : array_like of int, shape (...)
        Class labels 0 .. ``num_classes - 1`` (floats with whole values, such
        as ``1.0``, and bools are accepted).  A trailing axis of size 1, as in
        shape (N, 1), is dropped, as Keras does.
    num_classes : int, optional
        Number of classes; ``None`` (or 0, as in Keras) means ``max(x) + 1``.

    Returns
    -------
    ndarray of float64, shape x.shape + (num_classes,)
        (with a trailing size-1 axis of ``x`` removed first).

    Raises
    ------
    TypeError
        ``x`` is not numeric, or ``num_classes`` is not an int.
    ValueError
        A label is negative, not a whole number, or ``>= num_classes``; or
        ``x`` is empty and ``num_classes`` is not given.

    Notes
    -----
    Keras lets a negative label wrap around (``-1`` becomes the last class)
    and raises ``IndexError`` for a label ``>= num_classes``; both are a
    ``ValueError`` here.
    """
    labels = _integer_labels(x)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, numbers.Integral)):
        raise TypeError(f"to_categorical: num_classes must be an int or None, got "
                        f"{type(num_classes).__name__}")
    if flat.size and flat.min() < 0:
        raise ValueError(f"to_categorical: class labels must be >= 0, got {int(flat.min())}")
    if not num_classes:
        if flat.size == 0:
            raise ValueError("to_categorical: x is empty, so num_classes cannot be inferred; "
                             "pass num_classes")
        num_classes = int(flat.max()) + 1
    num_classes = int(num_classes)
    if num_classes < 0:
        raise ValueError(f"to_categorical: num_classes must be > 0, got {num_classes}")
    if flat.size and flat.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(flat.max())} is out of range for "
                         f"num_classes={num_classes} (labels must be 0 .. {num_classes - 1})")
    one_hot = np.zeros((flat.size, num_classes))
    one_hot[np.arange(flat.size), flat] = 1.0
    return one_hot.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Divide ``x`` by its ``order``-norm along ``axis`` (``keras.utils.normalize``).

    Parameters
    ----------
    x : array_like
    axis : int, default -1
    order : int or float, default 2
        As ``np.linalg.norm``'s ``ord`` for vectors (2 is the L2 norm).

    Returns
    -------
    ndarray of float, shape of ``x`` (shape (1, n) for a 1-D ``x`` of n values, as in Keras)
        A new array; slices whose norm is 0 are left as they are.

    Notes
    -----
    Keras's NumPy branch computes the norms along ``axis`` but re-inserts
    them at the last axis when ``axis`` is 0 (``axis or -1``), which divides
    by the wrong norms (or fails to broadcast); here every ``axis``
    normalises along itself.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"normalize: x must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError("normalize: x must have at least one axis")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"normalize: axis must be an int, got {type(axis).__name__}")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"normalize: axis {axis} is out of range for x of shape {arr.shape}")
    norm = np.linalg.norm(arr, order, axis, keepdims=True)
    norm[norm == 0] = 1
    out = arr / norm
    return out[np.newaxis] if arr.ndim == 1 else out
