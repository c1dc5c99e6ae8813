"""``keras.layers.Lambda`` for the functions fastrnn can run in its engine.

fastrnn runs no Python per batch, so a Lambda's function is not called on the
data.  Instead it is *recognised*: called a few times on NumPy arrays of the
input's shape, it must behave as ``y = a * reshape(x) + b`` with scalars
``a``, ``b`` and a reshape that keeps the order of the values -- what the
usual tutorial Lambdas are (``lambda x: x * 100.0``, ``lambda x: x / 10 - 1``,
``lambda x: keras.ops.expand_dims(x, axis=-1)``, ``squeeze``).  It then
lowers to the engine's reshape and scale nodes (exact values and gradients).
Any other function is a clear ``NotImplementedError`` when the layer is
called, never a silent difference.
"""
import numpy as np

from .layer import Layer, _shape_str

__all__ = ["Lambda"]


class Lambda(Layer):
    """Wraps a function of one tensor, as ``keras.layers.Lambda`` (see the module notes).

    Parameters
    ----------
    function : callable
        Called on NumPy arrays (``keras.ops.expand_dims``/``squeeze`` and
        arithmetic work on them) to recognise the map.
    output_shape, mask
        Accepted for Keras compatibility (the shape is found by calling ``function``).
    arguments : dict, optional
        Keyword arguments passed to ``function``.
    """

    _default_name = "lambda"

    def __init__(self, function, output_shape=None, mask=None, arguments=None, name=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {type(function).__name__}")
        if mask is not None:
            raise NotImplementedError("Lambda(mask=...) is not supported")
        self.function = function
        self.arguments = dict(arguments or {})
        self._maps = {}

    # -- recognising the function ----------------------------------------------------------
    def _call_numpy(self, x):
        return np.asarray(self.function(x, **self.arguments), dtype=np.float64)

    def _refuse(self, why):
        raise NotImplementedError(
            f"Lambda {self.name!r}: fastrnn runs a Lambda only when its function is "
            f"a * x + b (scalars a, b) of a reshape of its input (expand_dims, squeeze), "
            f"computed in its compiled engine; this one {why}")

    def _map(self, input_shape):
        """(factor, offset, output shape with the batch axis) of the function."""
        key = tuple(input_shape)
        if key in self._maps:
            return self._maps[key]
        if any(s is None for s in input_shape[1:]):
            self._refuse(f"gets an input of shape {_shape_str(input_shape)} with an unknown "
                         f"size (give the sequence length)")
        shape = tuple(input_shape[1:])
        rng = np.random.default_rng(12345)
        x1, x2 = rng.normal(size=(2,) + shape), rng.normal(size=(2,) + shape)
        try:
            y0 = self._call_numpy(np.zeros((2,) + shape))
            y1, y2 = self._call_numpy(x1), self._call_numpy(x2)
            y12 = self._call_numpy(x1 - 3 * x2)
        except Exception as e:      # noqa: BLE001 -- any failure of the user's function
            self._refuse(f"cannot run on NumPy arrays ({type(e).__name__}: {e})")
        if not (y0.shape == y1.shape == y2.shape == y12.shape) or y1.shape[:1] != (2,) \
                or int(np.prod(y1.shape[1:])) != int(np.prod(shape)):
            self._refuse(f"changes the number of values (shape {shape} -> {y1.shape[1:]})")
        offset = float(y0.flat[0])
        if not np.all(y0 == offset):
            self._refuse("adds different values to different elements")
        d1, flat1 = (y1 - y0).reshape(2, -1), x1.reshape(2, -1)
        factor = float(np.sum(d1 * flat1) / np.sum(flat1 * flat1))
        scale = max(1.0, abs(factor))
        for d, x in ((d1, flat1), ((y2 - y0).reshape(2, -1), x2.reshape(2, -1)),
                     ((y12 - y0).reshape(2, -1), (x1 - 3 * x2).reshape(2, -1))):
            if not np.allclose(d, factor * x, rtol=1e-9, atol=1e-12 * scale):
                self._refuse("is not a scale and shift of its input's values in order")
        out_shape = (input_shape[0],) + tuple(y1.shape[1:])
        if len(out_shape) not in (2, 3):
            self._refuse(f"gives rank {len(out_shape)} (fastrnn computes on rank 2 or 3)")
        self._maps[key] = (factor, offset, out_shape)
        return self._maps[key]

    # -- the layer ---------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        return self._map(input_shape)[2]

    def _lower_call(self, input_shape, inputs, base, first):
        factor, offset, out_shape = self._map(input_shape)
        nodes, source = [], list(inputs)
        seq = len(out_shape) == 3
        width = out_shape[-1]
        if tuple(out_shape[1:]) != tuple(input_shape[1:]):
            nodes.append({"kind": "relayout", "inputs": source, "width": width, "seq": seq,
                          "steps": out_shape[1] if seq else 1})
            source = [first]
        if factor != 1.0 or offset != 0.0 or not nodes:
            nodes.append({"kind": "scale", "inputs": source, "width": width, "seq": seq,
                          "real": factor, "real2": offset})
        return nodes, [len(nodes) - 1]

    def get_config(self):
        config = super().get_config()
        config.pop("function", None)
        return config
