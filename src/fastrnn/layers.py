"""Layers: :class:`SimpleRNN` and :class:`Dense`, plus :func:`Input`.

A layer's weights are C-contiguous views into a flat buffer: its own while it
stands alone, the model's single ``params`` buffer once a
:class:`fastrnn.Sequential` is built (the values are copied over and the
views re-pointed).  Its gradients are views into the matching ``grads``
buffer, written by the engine during training.  Weight names, shapes and order
are Keras's:

- ``SimpleRNN``: ``kernel`` (D, H), ``recurrent_kernel`` (H, H), ``bias`` (H,)
- ``Dense``: ``kernel`` (D, U), ``bias`` (U,)

(without ``bias`` when ``use_bias=False``).  Layers describe; the compiled
engine (:mod:`fastrnn.engine`) computes: each layer lowers to one engine node
(``_node()``), and calling a layer on an array runs a one-node engine.

A layer may belong to one model at a time.
"""
import weakref

import numpy as np

from . import activations, initializers

__all__ = ["Layer", "SimpleRNN", "Dense", "InputLayer", "Input"]

_name_counts = {}


def _unique_name(base):
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def clear_session():
    """Restart automatic layer and model names (``dense``, ``dense_1``, ...) from scratch.

    As ``keras.backend.clear_session``; existing layers keep their names.
    """
    _name_counts.clear()


def _check_dtype(dtype, argument="dtype"):
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{argument} must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{argument} must be float32 or float64, got {dt}")
    return dt


def _check_units(units, argument="units"):
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)):
        raise TypeError(f"{argument} must be a positive int, got {type(units).__name__}")
    if units < 1:
        raise ValueError(f"{argument} must be a positive int, got {units}")
    return int(units)


def _check_shape(shape, argument):
    """A user-given shape without the batch axis: a tuple of positive ints or None."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{argument} must be a tuple of ints, got {shape!r}") from None
    for s in shape:
        if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1):
            raise ValueError(f"{argument} must hold positive ints (or None), got {shape}")
    return tuple(None if s is None else int(s) for s in shape)


def _shape_str(shape):
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


class InputLayer:
    """The input of a model: its shape (without the batch axis) and dtype.

    Not a real layer (it has no weights and no output of its own); made by
    :func:`Input` to start a :class:`fastrnn.Sequential`.
    """

    def __init__(self, shape, batch_size=None, dtype=None, name=None):
        self.shape = (None,) + _check_shape(shape, "shape")
        if batch_size is not None:
            self.shape = (_check_units(batch_size, "batch_size"),) + self.shape[1:]
        self.dtype = _check_dtype(dtype)
        self.name = name or _unique_name("input_layer")

    def __repr__(self):
        return f"<Input shape={_shape_str(self.shape)}>"


def Input(shape, batch_size=None, dtype=None, name=None):
    """Declare a model's input, as ``keras.Input``.

    Parameters
    ----------
    shape : tuple of int
        Shape of one sample, without the batch axis: ``(T, D)`` for a
        SimpleRNN (``T`` may be None for variable length).
    batch_size : int, optional
    dtype : {"float32", "float64"}, optional
    name : str, optional

    Returns
    -------
    InputLayer
        Put it first in ``Sequential([...])``.
    """
    return InputLayer(shape, batch_size=batch_size, dtype=dtype, name=name)


class Layer:
    """Base class of layers with weights in a flat buffer.

    Subclasses define ``_default_name``, ``_weight_specs(input_shape)`` ->
    list of ``(name, shape, initializer)``, ``compute_output_shape``,
    and ``_node`` (the engine node it lowers to).

    Parameters
    ----------
    name : str, optional
        Default: the snake-case class name, numbered as Keras does
        (``dense``, ``dense_1``, ...).
    input_shape : tuple of int, optional
        Shape of one sample (no batch axis); on the first layer of a model it
        fixes the model's input.
    dtype : {"float32", "float64"}, optional
        Default: the model's dtype (float32).
    """

    _default_name = "layer"

    def __init__(self, name=None, input_shape=None, dtype=None):
        self.name = name if name is not None else _unique_name(self._default_name)
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        self._input_shape_arg = (None if input_shape is None
                                 else (None,) + _check_shape(input_shape, "input_shape"))
        self.dtype = _check_dtype(dtype)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._specs = []
        self._weights = []
        self._grads = []
        self._flat = None

    # -- building and weights ---------------------------------------------
    def _weight_specs(self, input_shape):
        return []

    def compute_output_shape(self, input_shape):
        raise NotImplementedError

    def _rng(self):
        return None  # initializers then draw from the global generator

    def build(self, input_shape, dtype=None):
        """Create the weights (initialised) for inputs of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple
            Including the batch axis (which may be None), e.g. ``(None, 3, 1)``.
        dtype : {"float32", "float64"}, optional
            Used when the layer has no dtype of its own; default float32.
        """
        input_shape = tuple(input_shape)
        self.dtype = self.dtype or _check_dtype(dtype) or np.dtype(np.float32)
        output_shape = self.compute_output_shape(input_shape)
        specs = self._weight_specs(input_shape)
        rng = self._rng()
        values = [init(shape, self.dtype, rng) for _, shape, init in specs]
        self._specs = [(name, tuple(shape)) for name, shape, _ in specs]
        size = self.count_params()
        params = np.empty(size, dtype=self.dtype)
        self._bind(params, np.zeros(size, dtype=self.dtype))
        for view, value in zip(self._weights, values):
            view[...] = value
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.built = True

    def _owner(self):
        """The model whose buffer holds this layer's weights (None: none, or gone)."""
        ref = getattr(self, "_owner_ref", None)
        return ref() if ref is not None else None

    def _set_owner(self, model):
        self._owner_ref = weakref.ref(model)

    def __getstate__(self):
        """Picklable: no engine, no weak reference (a model re-points its layers)."""
        state = self.__dict__.copy()
        state.pop("_own_runner", None)
        state.pop("_owner_ref", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.built and self._flat is not None:    # views of its own flat buffer again
            self._bind(self._flat, np.zeros_like(self._flat))

    def _bind(self, params, grads):
        """Point the weights and gradients at slices of flat buffers.

        Parameters
        ----------
        params, grads : ndarray of shape (count_params(),)
            Contiguous 1-D buffers (usually slices of the model's buffers).
        """
        self._weights, self._grads = [], []
        self._flat = params
        offset = 0
        for name, shape in self._specs:
            n = int(np.prod(shape, dtype=np.int64))
            w = params[offset:offset + n].reshape(shape)
            g = grads[offset:offset + n].reshape(shape)
            self._weights.append(w)
            self._grads.append(g)
            setattr(self, name, w)
            offset += n

    @property
    def weights(self):
        """The weight arrays (live views, Keras order)."""
        return list(self._weights)

    @property
    def weight_names(self):
        """``["kernel", "recurrent_kernel", "bias"]`` etc., in weight order."""
        return [name for name, _ in self._specs]

    def count_params(self):
        """Number of scalar weights."""
        return int(sum(np.prod(shape, dtype=np.int64) for _, shape in self._specs))

    def get_weights(self):
        """Copies of the weights, in Keras order."""
        return [w.copy() for w in self._weights]

    def set_weights(self, weights):
        """Overwrite the weights from a list of arrays of the right shapes (all checked first)."""
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet; it has no weights to set")
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"layer {self.name!r} expects {len(self._weights)} weight arrays "
                             f"({', '.join(self.weight_names)}), got {len(weights)}")
        checked = []
        for (name, shape), value in zip(self._specs, weights):
            value = np.asarray(value)
            if value.shape != shape:
                raise ValueError(f"layer {self.name!r}, weight {name!r}: expected shape "
                                 f"{shape}, got {value.shape}")
            if value.dtype.kind not in "fiu":
                raise TypeError(f"layer {self.name!r}, weight {name!r}: expected real numbers, "
                                f"got dtype {value.dtype}")
            with np.errstate(over="ignore"):   # checked after the cast: 1e39 is inf in float32
                value = value.astype(self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"layer {self.name!r}, weight {name!r} contains NaN or infinity"
                                 f" (in {self.dtype})")
            checked.append(value)
        for view, value in zip(self._weights, checked):
            view[...] = value

    # -- lowering ------------------------------------------------------------
    def _node(self):
        """The engine node this layer lowers to: a dict with ``kind``, ``units``,
        ``activation`` and optionally ``seq_out``/``backwards`` (see fastrnn.engine.lower)."""
        raise NotImplementedError

    def _weight_offsets(self):
        """``{weight name: offset}`` of each weight within the layer's own flat slice."""
        offsets, offset = {}, 0
        for name, shape in self._specs:
            offsets[name] = offset
            offset += int(np.prod(shape, dtype=np.int64))
        return offsets

    def _runner(self):
        """A one-node engine runner over this layer's weights (re-made when they move)."""
        from .engine import Runner, lower
        params = self._flat
        cached = getattr(self, "_own_runner", None)
        if cached is not None and cached.params is params:
            return cached
        plan, signature = lower([self], self.input_shape, [0])
        runner = Runner(plan, signature, params, np.zeros_like(params))
        self._own_runner = runner
        return runner

    def __call__(self, x):
        """Apply the layer to a NumPy array (building it on first use); returns new arrays."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"x must hold real numbers (float or int), got dtype {x.dtype}")
        if x.size == 0:
            raise ValueError(f"x is empty: shape {x.shape}")
        if not self.built:
            self.build((None,) + x.shape[1:], x.dtype if x.dtype in (np.float32, np.float64)
                       else None)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != s
                                           for e, s in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"layer {self.name!r} expects input of shape "
                             f"{_shape_str(expected)}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains NaN or infinity")
        out = np.empty(self.compute_output_shape(x.shape), dtype=self.dtype) \
            if not getattr(self, "return_state", False) else \
            np.empty(self.compute_output_shape(x.shape)[0], dtype=self.dtype)
        self._runner().predictor().predict(x, out, max(1, x.shape[0]))
        if getattr(self, "return_state", False):
            return [out, _last_state(out, self.return_sequences)]
        return out

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class SimpleRNN(Layer):
    """Fully connected recurrent layer (Elman RNN), as ``keras.layers.SimpleRNN``.

    ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``
    from ``h_0 = 0``; the recurrence runs in the compiled engine.

    Parameters
    ----------
    units : int
        H, the size of the state.
    activation : str, callable or None, default "tanh"
        Any of :data:`fastrnn.activations.SUPPORTED` (None: linear).
    use_bias : bool, default True
    kernel_initializer : str or callable, default "glorot_uniform"
    recurrent_initializer : str or callable, default "orthogonal"
    bias_initializer : str or callable, default "zeros"
    return_sequences : bool, default False
        Output every state, (B, T, H), instead of the last, (B, H).
    return_state : bool, default False
        Output ``[output, last_state]``; only as the last layer of a model,
        for prediction (``fit`` does not train through it).
    go_backwards : bool, default False
        Process the sequence in reverse; as in Keras, a returned sequence is
        then in processing (reversed) order.
    input_shape : tuple of int, optional
        ``(T, D)``; T may be None.
    seed : int, optional
        Seeds this layer's initializers (Keras uses it for dropout, which
        fastrnn does not have).  Without it the global generator
        (:func:`fastrnn.set_random_seed`) is used.
    dtype : {"float32", "float64"}, optional
    name : str, optional

    Notes
    -----
    Input (B, T, D); weights ``kernel`` (D, H), ``recurrent_kernel`` (H, H),
    ``bias`` (H,).
    """

    _default_name = "simple_rnn"

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences=False, return_state=False,
                 go_backwards=False, input_shape=None, seed=None, dtype=None, name=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = initializers.get(recurrent_initializer,
                                                      "recurrent_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed

    def _rng(self):
        return None if self.seed is None else np.random.default_rng(self.seed)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"SimpleRNN {self.name!r} expects input of rank 3 "
                             f"(batch, time steps, features), got shape {_shape_str(input_shape)}")
        if input_shape[2] is None:
            raise ValueError(f"SimpleRNN {self.name!r}: the number of features (last axis) "
                             f"must be known, got shape {_shape_str(input_shape)}")
        B, T, _ = input_shape
        out = (B, T, self.units) if self.return_sequences else (B, self.units)
        if self.return_state:
            return [out, (B, self.units)]
        return out

    def _weight_specs(self, input_shape):
        D, H = input_shape[2], self.units
        specs = [("kernel", (D, H), self.kernel_initializer),
                 ("recurrent_kernel", (H, H), self.recurrent_initializer)]
        if self.use_bias:
            specs.append(("bias", (H,), self.bias_initializer))
        return specs

    def _node(self):
        return {"kind": "simple_rnn", "units": self.units, "activation": self.activation,
                "seq_out": self.return_sequences, "backwards": self.go_backwards}


def _last_state(output, sequences):
    """The final state of a SimpleRNN from its output (processing order)."""
    return output[:, -1].copy() if sequences else output.copy()


class Dense(Layer):
    """Fully connected layer on the last axis, as ``keras.layers.Dense``.

    ``y = activation(x @ kernel + bias)``; on 3-D input (B, T, D) it is
    applied at every time step, giving (B, T, U), so
    ``SimpleRNN(return_sequences=True)`` + ``Dense`` is many-to-many.

    Parameters
    ----------
    units : int
        U, the number of outputs.
    activation : str, callable or None, default None
        Any of :data:`fastrnn.activations.SUPPORTED` (None: linear).
    use_bias : bool, default True
    kernel_initializer : str or callable, default "glorot_uniform"
    bias_initializer : str or callable, default "zeros"
    input_shape : tuple of int, optional
    dtype : {"float32", "float64"}, optional
    name : str, optional

    Notes
    -----
    Input (..., D); weights ``kernel`` (D, U), ``bias`` (U,).
    """

    _default_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", input_shape=None, dtype=None, name=None):
        super().__init__(name=name, input_shape=input_shape, dtype=dtype)
        self.units = _check_units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Dense {self.name!r} expects input of rank >= 2 "
                             f"(batch, ..., features), got shape {_shape_str(input_shape)}")
        if input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: the number of features (last axis) "
                             f"must be known, got shape {_shape_str(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def _weight_specs(self, input_shape):
        specs = [("kernel", (input_shape[-1], self.units), self.kernel_initializer)]
        if self.use_bias:
            specs.append(("bias", (self.units,), self.bias_initializer))
        return specs

    def _node(self):
        return {"kind": "dense", "units": self.units, "activation": self.activation}
