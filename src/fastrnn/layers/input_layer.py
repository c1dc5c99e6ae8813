"""A model's input: :func:`Input` (a symbolic tensor) and its :class:`InputLayer`."""
import numpy as np

from .layer import KerasTensor, Layer, Node, _check_shape, _check_units, _shape_str, _unique_name

__all__ = ["InputLayer", "Input"]


def _check_input_dtype(dtype):
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy dtype name such as 'float32' or 'int32', "
                        f"got {dtype!r}") from None
    if dt.kind not in "fiub" or dt == np.float16:
        raise TypeError(f"dtype must be float32, float64, an integer or bool dtype, got {dt}")
    return dt


class InputLayer(Layer):
    """The layer behind :func:`Input`: it has no weights and its output is the input.

    Parameters
    ----------
    shape : tuple of int
        One sample's shape, without the batch axis (None for any size).
    batch_size : int, optional
    dtype : str, optional
        Of the data: "float32" (default), "float64", or an integer/bool type
        (indices for an Embedding; cast to the model's float type).
    batch_shape : tuple, optional
        The shape with the batch axis, instead of ``shape`` and ``batch_size``.
    name : str, optional
        Default ``input_layer``, ``input_layer_1``, ...

    Attributes
    ----------
    batch_shape : tuple
        With the batch axis (None unless ``batch_size`` is given).
    output : KerasTensor
    """

    _default_name = "input_layer"

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None,
                 sparse=None, ragged=None, input_tensor=None, optional=False, **kwargs):
        if kwargs.pop("input_shape", None) is not None and shape is None:
            raise TypeError("InputLayer takes shape=..., not input_shape=...")
        if sparse or ragged:
            raise NotImplementedError("sparse and ragged inputs are not supported")
        if input_tensor is not None or optional:
            raise NotImplementedError("input_tensor and optional inputs are not supported")
        super().__init__(name=name or _unique_name("input_layer"), **kwargs)
        if batch_shape is not None:
            if shape is not None or batch_size is not None:
                raise ValueError("give either shape (and batch_size) or batch_shape, not both")
            batch_shape = _check_shape(batch_shape, "batch_shape")
            if not batch_shape:
                raise ValueError("batch_shape must start with the batch axis")
            self.batch_shape = batch_shape
        else:
            if shape is None:
                raise ValueError("Input needs shape=... (one sample's shape, without the "
                                 "batch axis), e.g. shape=(3, 1)")
            shape = _check_shape(shape, "shape")
            batch = None if batch_size is None else _check_units(batch_size, "batch_size")
            self.batch_shape = (batch,) + shape
        self.input_dtype = _check_input_dtype(dtype) or np.dtype(np.float32)
        # the model's computing dtype, when this input asks for one
        self.dtype = self.input_dtype if self.input_dtype.kind == "f" else None
        self.built = True
        self.input_shape = self.output_shape = self.batch_shape
        tensor = KerasTensor(self.batch_shape, self.input_dtype, name=self.name)
        Node(self, [], [tensor])
        self._tensor = tensor

    @property
    def shape(self):
        """The input's shape with the batch axis (as ``batch_shape``)."""
        return self.batch_shape

    @property
    def output(self):
        return self._tensor

    def __repr__(self):
        return f"<InputLayer name={self.name}, shape={_shape_str(self.batch_shape)}>"


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, sparse=None,
          ragged=None, tensor=None, optional=False):
    """A model's input, as ``keras.Input``: a symbolic tensor to call layers on.

    Parameters
    ----------
    shape : tuple of int
        One sample's shape, without the batch axis: ``(T, D)`` before a
        SimpleRNN (T may be None for any length), ``(L,)`` of integers before
        an Embedding, ``(F,)`` before a Dense.
    batch_size : int, optional
    dtype : str, optional
        "float32" (default) or "float64" (the model then computes in
        float64); an integer type for indices.
    batch_shape : tuple, optional
        The full shape with the batch axis, instead of shape and batch_size.
    name : str, optional
        The input's name (the key of this input when data comes as a dict).

    Returns
    -------
    KerasTensor
        Call layers on it and build ``fastrnn.Model(inputs, outputs)``, or put
        it first in ``Sequential([...])``.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                       name=name, sparse=sparse, ragged=ragged, input_tensor=tensor,
                       optional=optional)
    return layer.output
