"""``pad_sequences``, as ``keras.utils.pad_sequences`` (also ``keras.preprocessing.sequence``)."""
import numbers

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or cut) sequences of different lengths to one length.

    Parameters
    ----------
    sequences : sequence of sequences
        ``N`` sequences (lists or arrays), each of shape (length_i, *features);
        every non-empty one must have the same ``features`` shape.
    maxlen : int, optional
        Length of the result; ``None`` means the longest sequence's length.
    dtype : str or numpy dtype, default "int32"
        Of the result; the sequences' values are cast to it (floats to an int
        dtype are truncated toward zero, as NumPy and Keras do).  Use
        ``object`` (or a string dtype) for strings.
    padding : {"pre", "post"}, default "pre"
        Pad before or after each sequence.
    truncating : {"pre", "post"}, default "pre"
        Drop the values at the start ("pre") or at the end ("post") of a
        sequence longer than ``maxlen``.
    value : float or str, default 0.0
        The padding value (cast to ``dtype``).

    Returns
    -------
    ndarray of shape (N, maxlen, *features) and type ``dtype``

    Raises
    ------
    ValueError
        ``sequences`` has no length, holds something that is not a sequence,
        or sequences of different feature shapes; ``padding`` or
        ``truncating`` is not "pre"/"post"; ``maxlen`` is negative; ``value``
        is a string while ``dtype`` is not a string dtype; ``sequences`` is
        empty and ``maxlen`` is not given.
    TypeError
        ``maxlen`` is not an int.

    Notes
    -----
    Differences from Keras, where Keras fails obscurely: ``maxlen=0`` gives
    an (N, 0) array whatever ``truncating`` is (Keras raises a broadcasting
    error for "pre"), and an empty ``sequences`` without ``maxlen`` is a
    ``ValueError`` that says so.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: sequences must be a list (or array) of sequences, "
                         f"got {type(sequences).__name__}")
    if padding not in ("pre", "post"):
        raise ValueError(f'pad_sequences: padding must be "pre" or "post", got {padding!r}')
    if truncating not in ("pre", "post"):
        raise ValueError(f'pad_sequences: truncating must be "pre" or "post", got '
                         f'{truncating!r}')
    if maxlen is not None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral):
            raise TypeError(f"pad_sequences: maxlen must be an int or None, got "
                            f"{type(maxlen).__name__}")
        if maxlen < 0:
            raise ValueError(f"pad_sequences: maxlen must be >= 0, got {maxlen}")
        maxlen = int(maxlen)

    lengths = []
    sample_shape = None
    for i, seq in enumerate(sequences):
        try:
            n = len(seq)
        except TypeError:
            raise ValueError(f"pad_sequences: sequences must be a list of sequences; item {i} "
                             f"is {type(seq).__name__}: {seq!r}") from None
        lengths.append(n)
        if sample_shape is None and n:
            # the feature shape comes from the first non-empty sequence, as in Keras
            sample_shape = np.asarray(seq).shape[1:]
    if sample_shape is None:
        sample_shape = ()
    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences: sequences is empty; pass maxlen to get an "
                             "array of shape (0, maxlen)")
        maxlen = max(lengths)

    is_str_dtype = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str_dtype:
        raise ValueError(f"pad_sequences: dtype {dtype} is not compatible with the string "
                         f"value {value!r}; pass dtype=object for variable-length strings")

    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    for i, (seq, n) in enumerate(zip(sequences, lengths)):
        if not n or not maxlen:
            continue
        kept = seq[n - maxlen:] if (truncating == "pre" and n > maxlen) else seq[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"pad_sequences: sequence {i} has items of shape "
                             f"{kept.shape[1:]}, the first non-empty sequence has "
                             f"{sample_shape}")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out
