"""Merge layers: :class:`Concatenate`, :class:`Add`, :class:`Subtract`,
:class:`Multiply`, :class:`Average`, and their functional forms
(``concatenate``, ``add``, ...), as Keras 3's.

A merge takes a list of tensors.  Elementwise merges need equal shapes
(Keras's broadcasting of differing shapes is not supported); Concatenate
needs equal shapes except on its axis, which is the last (features) or, for
sequences, axis 1 (time).
"""
from .layer import Layer, _shape_str, _tensor_layout

__all__ = ["Concatenate", "Add", "Subtract", "Multiply", "Average", "concatenate", "add",
           "subtract", "multiply", "average"]


def _describe(shapes):
    return ", ".join(_shape_str(s) for s in shapes)


class _Merge(Layer):
    _multi_input = True
    _kind = None
    _min_inputs = 1

    def __init__(self, name=None, **kwargs):
        super().__init__(name=name, **kwargs)

    def _check_call_inputs(self, shapes):
        if len(shapes) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs a list of at least "
                             f"{self._min_inputs} inputs, got {len(shapes)}")

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_call_inputs(shapes)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} merges inputs of one shape; "
                             f"got shapes {_describe(shapes)} (different ranks)")
        out = list(shapes[0])
        for axis in range(1, len(out)):
            sizes = {s[axis] for s in shapes} - {None}
            if len(sizes) > 1:
                raise ValueError(f"{type(self).__name__} {self.name!r} merges inputs of one "
                                 f"shape; got shapes {_describe(shapes)} (axis {axis} differs)")
            out[axis] = sizes.pop() if sizes else None
        return tuple(out)

    def _node(self, input_shape):
        seq, _, width = _tensor_layout(tuple(input_shape[0]), f"{type(self).__name__} "
                                                              f"{self.name!r}")
        return {"kind": self._kind, "width": width, "seq": seq}


class Add(_Merge):
    """Adds a list of same-shaped inputs, as ``keras.layers.Add``."""
    _default_name = "add"
    _kind = "add"


class Subtract(_Merge):
    """``inputs[0] - inputs[1]``, as ``keras.layers.Subtract`` (exactly two inputs)."""
    _default_name = "subtract"
    _kind = "subtract"

    def _check_call_inputs(self, shapes):
        if len(shapes) != 2:
            raise ValueError(f"Subtract {self.name!r} takes exactly 2 inputs, got {len(shapes)}")


class Multiply(_Merge):
    """Multiplies a list of same-shaped inputs elementwise, as ``keras.layers.Multiply``."""
    _default_name = "multiply"
    _kind = "multiply"


class Average(_Merge):
    """The elementwise mean of a list of same-shaped inputs, as ``keras.layers.Average``."""
    _default_name = "average"
    _kind = "average"


class Concatenate(_Merge):
    """Joins a list of inputs along ``axis``, as ``keras.layers.Concatenate``.

    Parameters
    ----------
    axis : int, default -1
        The last axis (features), or 1 for sequences (B, T, F) (time).
    """

    _default_name = "concatenate"

    def __init__(self, axis=-1, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {type(axis).__name__}")
        self.axis = axis

    def _axis(self, rank):
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis={self.axis} is not an axis of "
                             f"inputs of rank {rank} other than the batch axis")
        return axis

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        self._check_call_inputs(shapes)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate {self.name!r} needs inputs of one rank; got shapes "
                             f"{_describe(shapes)}")
        rank = ranks.pop()
        axis = self._axis(rank)
        out = list(shapes[0])
        for k in range(1, rank):
            sizes = [s[k] for s in shapes]
            if k == axis:
                out[k] = None if None in sizes else sum(sizes)
                continue
            known = set(sizes) - {None}
            if len(known) > 1:
                raise ValueError(f"Concatenate {self.name!r} (axis={self.axis}) needs inputs "
                                 f"of matching shapes except on that axis; got shapes "
                                 f"{_describe(shapes)}")
            out[k] = known.pop() if known else None
        return tuple(out)

    def _node(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        out = self.compute_output_shape(shapes)
        seq, _, width = _tensor_layout(out, f"Concatenate {self.name!r}")
        axis = self._axis(len(out))
        return {"kind": "concat_time" if (seq and axis == 1) else "concat", "width": width,
                "seq": seq}


def _merge(cls, inputs, **kwargs):
    return cls(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``."""
    return _merge(Add, inputs, **kwargs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``."""
    return _merge(Subtract, inputs, **kwargs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``."""
    return _merge(Multiply, inputs, **kwargs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``."""
    return _merge(Average, inputs, **kwargs)
