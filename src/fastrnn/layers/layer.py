"""The base :class:`Layer`, the symbolic tensors of the functional API, and names.

A layer holds hyperparameters and weight views into a flat buffer: its own
while it stands alone, the model's single ``params`` buffer once a model is
built from it (the values are copied over and the views re-pointed).  Its
gradients are views into the matching ``grads`` buffer, written by the
engine.  Layers describe; the compiled engine (:mod:`fastrnn.engine`)
computes: each layer call lowers to one engine node (:meth:`Layer._node`).

Calling a layer

- on :class:`KerasTensor` objects (from :func:`fastrnn.Input` or another
  layer) records the call (a :class:`Node`) and returns new symbolic
  tensors: the functional API, ``fastrnn.Model(inputs, outputs)``;
- on arrays computes at once, on a small engine over the layer's own weights.

A layer may be called once in a model (shared layers are not supported yet).
"""
import contextvars
import math
import weakref

import numpy as np

__all__ = ["Layer", "KerasTensor", "Node", "clear_session"]

_name_counts = {}

#: A list while a build is recorded (:func:`recording_builds`), else None.
_BUILD_RECORD = contextvars.ContextVar("fastrnn_build_record", default=None)


class recording_builds:
    """Within the block, every :meth:`Layer.build` in this thread appends
    ``(layer, dtype, [(shape, initializer), ...])`` to ``records``: which
    initializer drew each weight, in the order of the draws.

    :func:`fastrnn.fit_many` replays these draws to give copies of one model
    their own initial weights without building each one
    (:meth:`fastrnn.models.model.Model._replayed_params`).
    """

    def __init__(self):
        self.records = []
        self._token = None

    def __enter__(self):
        self._token = _BUILD_RECORD.set(self.records)
        return self.records

    def __exit__(self, *exc):
        _BUILD_RECORD.reset(self._token)
        return False


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
    if isinstance(shape, (str, bytes)):
        raise ValueError(f"{argument} must be a tuple of ints, got {shape!r}")
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


def _float_dtype(dtype):
    """``dtype`` if it is float32/float64, else None."""
    dt = np.dtype(dtype)
    return dt if dt in (np.float32, np.float64) else None


class KerasTensor:
    """A symbolic tensor of the functional API: a shape, a dtype, and where it comes from.

    Made by :func:`fastrnn.Input` and by calling a layer on symbolic tensors;
    it holds no values.

    Attributes
    ----------
    shape : tuple
        With the batch axis first; None where any size goes.
    dtype : str
        "float32", "float64", "int32", ...
    name : str
    """

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype).name
        self.name = name if name is not None else _unique_name("keras_tensor")
        self._keras_history = None      # (layer, node index, tensor index)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={_shape_str(self.shape)}, dtype={self.dtype}, "
                f"sparse=False, ragged=False, name={self.name}>")

    def __len__(self):
        raise TypeError("a symbolic tensor has no length; call a layer on it, or use "
                        "its .shape")

    def __iter__(self):
        raise TypeError(f"a symbolic tensor cannot be iterated over; a layer that returns "
                        f"several tensors returns a list ({self!r})")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic (it holds no values): build a "
                        f"fastrnn.Model(inputs, outputs) and call predict on data")


class Node:
    """One call of a layer on symbolic tensors (a vertex of a model's graph).

    Attributes
    ----------
    layer : Layer
    input_tensors : list of KerasTensor
    output_tensors : list of KerasTensor
    arguments : dict
        Keyword arguments of the call (such as ``training``).
    """

    def __init__(self, layer, input_tensors, output_tensors, arguments=None):
        self.layer = layer
        self.input_tensors = list(input_tensors)
        self.output_tensors = list(output_tensors)
        self.arguments = dict(arguments or {})
        layer._inbound_nodes.append(self)
        index = len(layer._inbound_nodes) - 1
        for k, t in enumerate(self.output_tensors):
            t._keras_history = (layer, index, k)

    @property
    def is_input(self):
        return not self.input_tensors

    @property
    def parent_nodes(self):
        """The nodes that made this node's inputs."""
        parents = []
        for t in self.input_tensors:
            layer, index, _ = t._keras_history
            parents.append(layer._inbound_nodes[index])
        return parents

    def __repr__(self):
        return f"<Node {self.layer.name} of {[t.name for t in self.input_tensors]}>"


def _is_symbolic(inputs):
    if isinstance(inputs, KerasTensor):
        return True
    if isinstance(inputs, (list, tuple)):
        flags = [isinstance(t, KerasTensor) for t in inputs]
        if any(flags) and not all(flags):
            raise TypeError("a layer takes symbolic tensors or arrays, not a mix of both")
        return bool(flags) and all(flags)
    return False


class Layer:
    """Base class of layers.

    Subclasses define ``_default_name``, ``compute_output_shape``, ``_node``
    (the engine node they lower to) and, with weights, ``_weight_specs``
    (list of ``(name, shape, initializer)`` in Keras's order).  A layer that
    takes several tensors (a merge) sets ``_multi_input``.

    Parameters
    ----------
    name : str, optional
        Default: the snake-case class name, numbered as Keras does
        (``dense``, ``dense_1``, ...).
    input_shape : tuple of int, optional
        Shape of one sample (no batch axis); on the first layer of a
        Sequential it fixes the model's input.
    dtype : {"float32", "float64"}, optional
        Default: the dtype of the input (float32 for integer inputs).
    """

    _default_name = "layer"
    _multi_input = False

    def __init__(self, name=None, input_shape=None, dtype=None, **kwargs):
        input_dim = kwargs.pop("input_dim", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        batch_size = kwargs.pop("batch_size", None)
        trainable = kwargs.pop("trainable", True)
        from ..regularizers import _take_layer_arguments
        _take_layer_arguments(self, kwargs)     # kernel_regularizer=..., ... (checked)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments: "
                            f"{', '.join(sorted(kwargs))}")
        self._trainable = _check_trainable(trainable, "trainable")
        self.name = name if name is not None else _unique_name(self._default_name)
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        if input_shape is None and batch_input_shape is not None:
            batch_input_shape = tuple(batch_input_shape)
            input_shape, batch_size = batch_input_shape[1:], batch_input_shape[0]
        self._input_shape_arg = (None if input_shape is None
                                 else (None,) + _check_shape(input_shape, "input_shape"))
        self._batch_size_arg = batch_size
        self.dtype = _check_dtype(dtype)
        self._dtype_arg = self.dtype      # asked for explicitly (the model's dtype must agree)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._specs = []
        self._weights = []
        self._grads = []
        self._flat = np.zeros(0, dtype=self.dtype or np.float32)
        self._inbound_nodes = []

    # -- building and weights ---------------------------------------------
    def _weight_specs(self, input_shape):
        return []

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _rng(self):
        return None  # initializers then draw from the global generator

    def build(self, input_shape, dtype=None):
        """Create the weights (initialised) for inputs of ``input_shape``.

        Parameters
        ----------
        input_shape : tuple (a list of tuples for a merge)
            Including the batch axis (which may be None), e.g. ``(None, 3, 1)``.
        dtype : {"float32", "float64"}, optional
            Used when the layer has no dtype of its own; default float32.
        """
        input_shape = ([tuple(s) for s in input_shape] if self._multi_input
                       else tuple(input_shape))
        self.dtype = self.dtype or _check_dtype(dtype) or np.dtype(np.float32)
        output_shape = self.compute_output_shape(input_shape)
        specs = self._weight_specs(input_shape)
        rng = self._rng()
        values = [init(shape, self.dtype, rng) for _, shape, init in specs]
        record = _BUILD_RECORD.get()
        if record is not None:
            record.append((self, self.dtype, [(tuple(shape), init) for _, shape, init in specs]))
        self._specs = [(name, tuple(shape)) for name, shape, _ in specs]
        size = self.count_params()
        params = np.empty(size, dtype=self.dtype)
        self._bind(params, np.zeros(size, dtype=self.dtype))
        for view, value in zip(self._weights, values):
            view[...] = value
        self._after_build(values)
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

    def _after_build(self, values):
        """Hook: weights given to the constructor (Embedding's ``weights=``) go in here."""

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
            n = math.prod(shape)
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
    def trainable(self):
        """Whether ``fit`` updates this layer's weights (Keras's ``layer.trainable``).

        Setting it sets the wrapped layers' too (Bidirectional's two RNNs,
        TimeDistributed's layer), as Keras does.  Training reads it at each
        ``fit``/``train_on_batch``: a frozen weight is left bitwise unchanged
        (no optimizer step, no weight decay, its optimizer slots kept), its
        regularizer adds no penalty, and clipping (``global_clipnorm``) sees
        only the trainable weights' gradients.
        """
        return getattr(self, "_trainable", True)

    @trainable.setter
    def trainable(self, value):
        value = _check_trainable(value, f"layer {getattr(self, 'name', '?')!r}.trainable")
        self._trainable = value
        TRAINABLE_CHANGES[0] += 1
        for _, inner in self._inner_layers():
            inner.trainable = value

    def _inner_layers(self):
        """(weight-name prefix, layer) of the layers this one wraps."""
        if getattr(self, "forward_layer", None) is not None:
            return [("forward_", self.forward_layer), ("backward_", self.backward_layer)]
        if isinstance(getattr(self, "layer", None), Layer):
            return [("", self.layer)]
        return []

    def _frozen_weight_names(self):
        """The names (as in ``_specs``) of this layer's weights that do not train."""
        names = [name for name, _ in self._specs]
        if not self.trainable:
            return set(names)
        frozen = set()
        for prefix, inner in self._inner_layers():
            if not inner.trainable:
                frozen.update(name for name in names if name.startswith(prefix))
        return frozen

    @property
    def trainable_weights(self):
        """The weights ``fit`` updates (live views, Keras order; [] when frozen)."""
        frozen = self._frozen_weight_names()
        return [w for (name, _), w in zip(self._specs, self._weights) if name not in frozen]

    @property
    def non_trainable_weights(self):
        """The frozen weights (live views, Keras order)."""
        frozen = self._frozen_weight_names()
        return [w for (name, _), w in zip(self._specs, self._weights) if name in frozen]

    @property
    def weight_names(self):
        """``["kernel", "recurrent_kernel", "bias"]`` etc., in weight order."""
        return [name for name, _ in self._specs]

    def count_params(self):
        """Number of scalar weights."""
        return int(sum(math.prod(shape) for _, shape in self._specs))

    def get_weights(self):
        """Copies of the weights, in Keras order."""
        return [w.copy() for w in self._weights]

    def get_config(self):
        """The layer's arguments as a dict, as Keras 3's ``get_config()`` gives them."""
        from ._config import layer_config
        return layer_config(self)

    @classmethod
    def from_config(cls, config):
        """A new (unbuilt) layer from a :meth:`get_config` dict, as Keras's ``from_config``."""
        from ._config import layer_from_config
        return layer_from_config(cls, config)

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

    # -- the functional API --------------------------------------------------
    @property
    def input(self):
        """The symbolic input of the layer's (single) call."""
        return self._single_node("input").input_tensors[0] if not self._multi_input else \
            self._single_node("input").input_tensors

    @property
    def output(self):
        """The symbolic output of the layer's (single) call."""
        outs = self._single_node("output").output_tensors
        return outs[0] if len(outs) == 1 else outs

    def _single_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"layer {self.name!r} has never been called on a symbolic "
                                 f"tensor, so it has no {what}")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(f"layer {self.name!r} has been called {len(self._inbound_nodes)} "
                                 f"times, so its {what} is ambiguous")
        return self._inbound_nodes[0]

    def _output_dtype(self, input_dtypes):
        return self.dtype.name

    def _check_call_inputs(self, shapes):
        """Called with the input shapes of a call before anything is built (raise to refuse)."""

    def _symbolic_call(self, inputs, arguments):
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self._multi_input:
            if not isinstance(inputs, (list, tuple)):
                raise TypeError(f"layer {self.name!r} ({type(self).__name__}) takes a list of "
                                f"tensors, got one tensor")
        elif len(tensors) != 1:
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) takes one input, "
                             f"got a list of {len(tensors)}")
        shapes = [t.shape for t in tensors]
        shape = shapes if self._multi_input else shapes[0]
        self._check_call_inputs(shapes)
        floats = {_float_dtype(t.dtype) for t in tensors} - {None}
        dtype = floats.pop() if len(floats) == 1 else None
        if not self.built:
            self.build(shape, dtype)
        else:
            specs = [tuple(s) for _, s, _ in self._weight_specs(shape)]
            if specs != [s for _, s in self._specs]:
                raise ValueError(f"layer {self.name!r} was built for input shape "
                                 f"{self.input_shape} and cannot take {shape}")
        out_shape = self.compute_output_shape(shape)
        outputs = [KerasTensor(s, self._output_dtype([t.dtype for t in tensors]))
                   for s in (out_shape if isinstance(out_shape, list) else [out_shape])]
        Node(self, tensors, outputs, arguments)
        return outputs if isinstance(out_shape, list) else outputs[0]

    # -- lowering ------------------------------------------------------------
    def _node(self, input_shape):
        """The engine node this layer lowers to, for input of ``input_shape``.

        A dict as :func:`fastrnn.engine.lower` takes it (without ``inputs``),
        where ``p0``/``p1``/``p2`` name weights (``"kernel"`` ...) instead of
        giving offsets: :meth:`_lowered` resolves them.
        """
        raise NotImplementedError

    def _weight_offsets(self):
        """``{weight name: offset}`` of each weight within the layer's own flat slice."""
        offsets, offset = {}, 0
        for name, shape in self._specs:
            offsets[name] = offset
            offset += math.prod(shape)
        return offsets

    def _lowered(self, input_shape, inputs, base):
        """The node of :meth:`_node` with its inputs and absolute weight offsets.

        Parameters
        ----------
        input_shape : tuple (list of tuples for a merge)
            With the batch axis.
        inputs : list of int
            The engine nodes feeding this one.
        base : int
            Offset of the layer's first weight in the flat ``params``.
        """
        node = dict(self._node(input_shape), inputs=list(inputs))
        offsets = self._weight_offsets()
        for key in ("p0", "p1", "p2"):
            if node.get(key) is not None:
                node[key] = base + offsets[node[key]] if node[key] in offsets else -1
        return node

    def _lower_call(self, input_shape, inputs, base, first):
        """The engine nodes of one call of this layer.

        Parameters
        ----------
        input_shape, inputs, base
            As :meth:`_lowered`.
        first : int
            The index the first returned node will have in the plan.

        Returns
        -------
        nodes : list of dict
        outputs : list of int
            For each output tensor of the call, the position in ``nodes`` of
            the node that makes it.
        """
        return [self._lowered(input_shape, inputs, base)], [0]

    # -- calling on arrays ------------------------------------------------------
    def _eager_runner(self, shapes, feeds_ids):
        """A small engine over this layer's weights for inputs of these shapes
        (re-made when the weights move or the input ranks change)."""
        from ..engine import Runner, lower
        key = (tuple(len(s) for s in shapes), tuple(feeds_ids))
        cached = getattr(self, "_own_runner", None)
        if cached is not None and cached[0] == key and cached[1].params is self._flat:
            return cached[1]
        nodes = [_input_node(k, s, ids) for k, (s, ids) in enumerate(zip(shapes, feeds_ids))]
        shape = ([(None,) + s[1:] for s in shapes] if self._multi_input
                 else (None,) + shapes[0][1:])
        first = len(nodes)
        own, outs = self._lower_call(shape, list(range(len(shapes))), 0, first)
        nodes.extend(own)
        runner = Runner(lower(nodes, [first + k for k in outs]), self._flat,
                        np.zeros_like(self._flat))
        self._own_runner = (key, runner)
        return runner

    def _takes_indices(self):
        """The layer reads integer indices (Embedding)."""
        return False

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        """Apply the layer: to symbolic tensors (the functional API) or to arrays.

        On arrays (NumPy or array-likes; a list for a merge) it builds the
        layer on first use and returns new arrays; ``training=True`` applies
        dropout.
        """
        if mask is not None:
            raise NotImplementedError("mask=: masks are not supported yet")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected call arguments: "
                            f"{', '.join(sorted(kwargs))}")
        if _is_symbolic(inputs):
            return self._symbolic_call(inputs, {"training": training} if training else {})
        return self._eager_call(inputs, bool(training))

    def _eager_call(self, inputs, training):
        arrays = list(inputs) if (self._multi_input and isinstance(inputs, (list, tuple))) \
            else [inputs]
        if self._multi_input and not isinstance(inputs, (list, tuple)):
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}) takes a list of arrays")
        xs = []
        for k, x in enumerate(arrays):
            name = "inputs" if len(arrays) == 1 else f"inputs[{k}]"
            x = np.asarray(x)
            if x.dtype.kind not in "fiub":
                raise TypeError(f"{name} must hold real numbers (float or int), got dtype "
                                f"{x.dtype}")
            if x.ndim < 2 or x.size == 0:
                raise ValueError(f"{name} must have a batch axis and at least one more, and "
                                 f"not be empty: shape {x.shape}")
            xs.append(x)
        if any(x.shape[0] != xs[0].shape[0] for x in xs):
            raise ValueError(f"the inputs have different numbers of samples: "
                             f"{[x.shape[0] for x in xs]}")
        shapes = [(None,) + x.shape[1:] for x in xs]
        shape = shapes if self._multi_input else shapes[0]
        if not self.built:
            self._check_call_inputs(shapes)
            floats = {_float_dtype(x.dtype) for x in xs} - {None}
            self.build(shape, floats.pop() if len(floats) == 1 else None)
        else:
            self._check_call_inputs(shapes)
            specs = [tuple(s) for _, s, _ in self._weight_specs(shape)]
            if specs != [s for _, s in self._specs]:
                raise ValueError(f"layer {self.name!r} expects input of shape "
                                 f"{self.input_shape}, got {shape}")
        out_shape = self.compute_output_shape([x.shape for x in xs] if self._multi_input
                                              else xs[0].shape)
        ids = [self._takes_indices()] * len(xs)
        engine_xs = []
        for x, is_ids in zip(xs, ids):
            with np.errstate(over="ignore"):
                x = np.ascontiguousarray(x, dtype=self.dtype)
            if not is_ids and not np.all(np.isfinite(x)):
                raise ValueError("inputs contain NaN or infinity")
            engine_xs.append(x[..., None] if is_ids else x)
        runner = self._eager_runner(shapes, ids)
        outs = [np.empty(s, dtype=self.dtype)
                for s in (out_shape if isinstance(out_shape, list) else [out_shape])]
        runner.predictor().predict(engine_xs, outs, max(1, xs[0].shape[0]), training)
        return outs if isinstance(out_shape, list) else outs[0]

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


#: bumped by every ``trainable =`` (models cache their frozen segments against it)
TRAINABLE_CHANGES = [0]


def _check_trainable(value, what):
    """``trainable`` as a bool (Keras takes any truthy value; None is refused)."""
    if value is None or not isinstance(value, (bool, int, np.bool_, np.integer)):
        raise TypeError(f"{what} must be a bool, got {value!r}")
    return bool(value)


def _input_node(index, shape, feeds_ids):
    """The engine node of a model input of ``shape`` (with the batch axis).

    An input read by an Embedding, (B, L), becomes a sequence of L steps of
    one value each (the user's array gets a trailing axis of 1).
    """
    if feeds_ids:
        if len(shape) != 2:
            raise ValueError(f"an Embedding takes input of shape (batch, length), got "
                             f"{_shape_str(shape)}")
        return {"kind": "input", "inputs": [], "width": 1, "seq": True,
                "steps": shape[1] or 0, "arg": index}
    if len(shape) == 3:
        if shape[2] is None:
            raise ValueError(f"the number of features (last axis) must be known, got shape "
                             f"{_shape_str(shape)}")
        return {"kind": "input", "inputs": [], "width": shape[2], "seq": True,
                "steps": shape[1] or 0, "arg": index}
    if len(shape) == 2:
        if shape[1] is None:
            raise ValueError(f"the number of features (last axis) must be known, got shape "
                             f"{_shape_str(shape)}")
        return {"kind": "input", "inputs": [], "width": shape[1], "seq": False, "arg": index}
    raise ValueError(f"fastrnn's models take inputs of rank 2 (batch, features) or 3 (batch, "
                     f"steps, features), got shape {_shape_str(shape)}")


def _tensor_layout(shape, what):
    """(seq, steps or None, width) of a tensor of ``shape`` in the engine, or a clear error."""
    if len(shape) == 3:
        if shape[2] is None:
            raise ValueError(f"{what}: the number of features (last axis) must be known, got "
                             f"shape {_shape_str(shape)}")
        return True, shape[1], shape[2]
    if len(shape) == 2:
        if shape[1] is None:
            raise ValueError(f"{what}: the number of features must be known, got shape "
                             f"{_shape_str(shape)}")
        return False, 1, shape[1]
    raise ValueError(f"{what}: fastrnn computes on tensors of rank 2 (batch, features) or 3 "
                     f"(batch, steps, features), got shape {_shape_str(shape)}")
