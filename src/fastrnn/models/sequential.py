"""The Sequential model: a stack of layers, a functional model that is a chain.

As in Keras 3, a Sequential whose input shape is known (an
:func:`fastrnn.Input` first, or ``input_shape=`` on the first layer) is
built at once, by calling its layers on that input; otherwise it is built
on the first ``fit`` (from the data), ``build(input_shape)`` or call.
Until then ``summary()`` lists the layers with "?" shapes.
"""
import numpy as np

from ..layers.input_layer import InputLayer
from ..layers.layer import KerasTensor, Layer, _check_shape
from .functional import Functional
from .model import WeightFileError

__all__ = ["Sequential", "WeightFileError"]


class Sequential(Functional):
    """A linear stack of layers, as ``keras.Sequential``.

    Parameters
    ----------
    layers : list, optional
        :class:`fastrnn.layers.Layer` instances, optionally preceded by a
        :func:`fastrnn.Input`.  With an input shape known (from ``Input`` or
        the first layer's ``input_shape``) the model is built at once;
        otherwise on the first ``fit`` or an explicit :meth:`build`.
    name : str, optional

    Attributes
    ----------
    params : ndarray of shape (P,)
        Every weight, in one contiguous buffer (None until built).
    grads : ndarray of shape (P,)
        The gradients of the last training batch, same layout.
    param_layout : list of (str, tuple, int)
        ``(name, shape, offset)`` of each weight in ``params``.
    optimizer, loss
        Set by :meth:`compile`.
    stop_training : bool
        A callback may set it to end ``fit`` after the current epoch.
    """

    def __init__(self, layers=None, name=None, trainable=True):
        from ..layers.layer import _check_trainable
        trainable = _check_trainable(trainable, "trainable")
        self._init_model(name, "sequential")
        self._trainable = trainable
        self._stack = []
        self._input_layer = None
        self._own_nodes = []
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)):
                layers = [layers]
            for layer in layers:
                self.add(layer, rebuild=False)
        self._maybe_build()

    # -- structure -----------------------------------------------------------
    @property
    def layers(self):
        """The layers, in order (the ``Input`` is not one)."""
        return list(self._stack)

    def _weighted_layers(self):
        return list(self._stack)

    def add(self, layer, rebuild=True, _rebuild=None):
        """Append a layer (or, first, an :func:`fastrnn.Input`)."""
        if _rebuild is not None:
            rebuild = _rebuild
        if isinstance(layer, KerasTensor):
            origin = layer._keras_history[0]
            if not isinstance(origin, InputLayer):
                raise TypeError("Sequential takes fastrnn layers or an Input, not the output "
                                "of a layer call")
            layer = origin
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("an Input can only be the first element of a Sequential")
            self._input_layer = layer
        else:
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes fastrnn layers, got {type(layer).__name__}")
            if any(layer is other for other in self._stack):
                raise ValueError(f"layer {layer.name!r} is already in this model")
            if any(layer.name == other.name for other in self._stack):
                raise ValueError(f"two layers are named {layer.name!r}; layer names must be unique")
            if self._stack and getattr(self._stack[-1], "return_state", False):
                raise ValueError(f"layer {self._stack[-1].name!r} has return_state=True and "
                                 f"returns two outputs; it can only be the last layer")
            self._stack.append(layer)
        self.built = False
        if rebuild:
            self._maybe_build()

    def pop(self, rebuild=True):
        """Remove the last layer and return it (the model is rebuilt when it can be)."""
        if not self._stack:
            raise ValueError("the model has no layers to pop")
        layer = self._stack.pop()
        self.built = False
        if rebuild and self._stack:
            self._maybe_build()
        return layer

    def _declared_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if self._stack and self._stack[0]._input_shape_arg is not None:
            first = self._stack[0]
            batch = first._batch_size_arg
            return (batch,) + first._input_shape_arg[1:]
        return None

    def _maybe_build(self):
        shape = self._declared_input_shape()
        if shape is not None and self._stack:
            self.build(shape)

    def _model_dtype(self):
        declared = []
        if self._input_layer is not None and self._input_layer.dtype is not None:
            declared.append((self._input_layer.name, self._input_layer.dtype))
        declared += [(layer.name, layer.dtype) for layer in self._stack
                     if not layer.built and layer.dtype is not None]
        dtypes = {d for _, d in declared}
        if len(dtypes) > 1:
            raise ValueError("layers ask for different dtypes: "
                             + ", ".join(f"{n}: {d}" for n, d in declared))
        if dtypes:
            return dtypes.pop()
        built = {layer.dtype for layer in self._stack if layer.built}
        return built.pop() if len(built) == 1 else np.dtype(np.float32)

    @property
    def dtype(self):
        """The dtype of the weights and of all computation (float32 by default)."""
        return self.params.dtype if self.built else self._model_dtype()

    def build(self, input_shape=None):
        """Create (or re-use) every layer's weights and gather them into ``params``.

        Parameters
        ----------
        input_shape : tuple
            Including the batch axis, e.g. ``(None, 3, 1)``; the time axis may be None.
        """
        if not self._stack:
            raise ValueError("the model has no layers; add some before building it")
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__") \
                or len(input_shape) < 2:
            raise ValueError(f"input_shape must be a tuple with the batch axis first, such as "
                             f"(None, 3, 1); got {input_shape!r}")
        batch = input_shape[0]
        input_shape = (batch,) + _check_shape(input_shape[1:], "input_shape")
        if self._input_layer is not None and tuple(
                self._input_layer.batch_shape[1:]) != input_shape[1:]:
            raise ValueError(f"model {self.name!r} starts with an Input of shape "
                             f"{self._input_layer.batch_shape}; it cannot be built for "
                             f"input_shape {input_shape}")
        dtype = self._model_dtype()
        # Check the whole chain of shapes before touching any layer.
        shape = input_shape
        for i, layer in enumerate(self._stack):
            if isinstance(shape, list):
                raise ValueError(f"layer {self._stack[i - 1].name!r} returns two outputs "
                                 f"(return_state=True); it must be the last layer")
            layer._check_call_inputs([shape])
            shape = layer.compute_output_shape(shape)  # a clear error for a wrong rank
        # Forget the graph of an earlier build; layers whose weights no longer fit start over.
        for node in self._own_nodes:
            node.layer._inbound_nodes = [n for n in node.layer._inbound_nodes if n is not node]
        self._own_nodes = []
        shape = input_shape
        for layer in self._stack:
            if layer.built:
                specs = [tuple(s) for _, s, _ in layer._weight_specs(shape)]
                if specs != [s for _, s in layer._specs]:
                    layer.built = False
            layer.dtype = np.dtype(dtype)   # a built layer's values are cast when gathered
            shape = layer.compute_output_shape(shape)
        source = self._input_layer
        if source is None:
            source = InputLayer(batch_shape=input_shape, dtype=dtype)
        x = source.output
        for layer in self._stack:
            x = layer(x)
            self._own_nodes.append(layer._inbound_nodes[-1])
        self._chain_input = source
        self._set_graph(source.output, x)

    def _sequential_like(self):
        return True

    def _summary_nodes(self):
        if not self.built:
            return {}
        return {id(node.layer): node for node in self._own_nodes}

    @property
    def input_shape(self):
        self._require_built("report its input shape")
        return self._inputs[0].shape

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self._stack]}>"
