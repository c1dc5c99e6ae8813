"""Subclassed models: ``class MyModel(keras.Model)`` with layers as attributes and a ``call``.

::

    class Regressor(fastrnn.Model):
        def __init__(self, units=16, **kwargs):
            super().__init__(**kwargs)
            self.rnn = fastrnn.layers.SimpleRNN(units)
            self.head = fastrnn.layers.Dense(1)

        def call(self, inputs, training=False):
            return self.head(self.rnn(inputs))

fastrnn computes no Python ``call`` per batch: the first time the model
meets data (``fit``, ``predict``, ``evaluate``, a call on an array, or
``build(input_shape)``), ``call`` runs once on a symbolic
:func:`fastrnn.Input` of the data's shape, the layer calls it makes are
recorded, and the model becomes the functional graph they form, lowered to
the compiled engine like any other model.  So ``call`` may use layers and
Python control flow that depends on arguments and shapes, not on the
values of the data (as Keras's own symbolic build and ``jit_compile``
require).

As in Keras, ``model.layers`` and the order of ``get_weights()`` follow the
order the layers were assigned as attributes.

Implementation: ``Model.__new__`` gives a subclass with a ``call`` a class
that puts :class:`Subclassed` (a functional model built by tracing) right
after the user's class in the method order; nothing else changes.
"""
import numpy as np

from ..layers.input_layer import InputLayer
from ..layers.layer import KerasTensor, Layer
from .functional import Functional

__all__ = ["Subclassed", "subclassed_class"]

_CLASSES = {}


def subclassed_class(cls):
    """The class an instance of the user's ``cls`` gets (cached per class)."""
    made = _CLASSES.get(cls)
    if made is None:
        made = type(cls.__name__, (cls, Subclassed),
                    {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                     "_user_class": cls})
        _CLASSES[cls] = made
    return made


def _rebuild(cls):
    """Unpickling: an empty instance of the traced class of the user's ``cls``."""
    return object.__new__(subclassed_class(cls))


def _snake_case(name):
    from ..saving.keras_layers import snake_case
    return snake_case(name)


class Subclassed(Functional):
    """A functional model whose graph comes from tracing the subclass's ``call`` once."""

    _user_class = None

    def __init__(self, *args, **kwargs):
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        kwargs.pop("dtype", None)
        if args or kwargs:
            raise TypeError(f"Model.__init__ of a subclass takes name= (and trainable=, "
                            f"dtype=) only; got {', '.join(map(repr, args))} "
                            f"{', '.join(sorted(kwargs))}")
        if trainable is not True:
            raise NotImplementedError("trainable=False is not supported yet")
        self._init_model(name, _snake_case(self._user_class.__name__))

    def __reduce_ex__(self, protocol):
        return _rebuild, (self._user_class,), self.__getstate__()

    # -- tracing ---------------------------------------------------------------------
    def build(self, input_shape):
        """Run ``call`` once on a symbolic input of ``input_shape`` and build that graph.

        Parameters
        ----------
        input_shape : tuple, or a list of tuples for several inputs
            With the batch axis first, e.g. ``(None, 10, 2)``.
        """
        several = isinstance(input_shape, list) and input_shape and \
            isinstance(input_shape[0], (tuple, list))
        shapes = input_shape if several else [input_shape]
        inputs = []
        for shape in shapes:
            shape = tuple(shape)
            if len(shape) < 2:
                raise ValueError(f"input_shape must have a batch axis and at least one more, "
                                 f"got {shape}")
            inputs.append(InputLayer(batch_shape=(None,) + shape[1:]).output)
        outputs = self.call(inputs if several else inputs[0])
        if not isinstance(outputs, (KerasTensor, list, tuple, dict)):
            raise TypeError(f"{type(self).__name__}.call must return the tensors its layers "
                            f"return (fastrnn traces call once on symbolic inputs and runs "
                            f"the recorded layers), got {type(outputs).__name__}")
        self._set_graph(inputs if several else inputs[0], outputs)

    def _build_from(self, x):
        if self.built or x is None:
            return
        from .. import utils
        if isinstance(x, dict):
            raise NotImplementedError("a subclassed model takes an array or a list of arrays")
        if isinstance(x, (list, tuple)) and x and hasattr(x[0], "shape"):
            self.build([(None,) + tuple(np.shape(a))[1:] for a in x])
        elif hasattr(x, "shape") or isinstance(x, (list, tuple)):
            self.build((None,) + tuple(np.shape(x))[1:])
        elif isinstance(x, utils.PyDataset) or hasattr(x, "__iter__"):
            return      # fit builds from its first batch

    # -- the entry points that meet data first ---------------------------------------------

    @property
    def dtype(self):
        """The dtype of the weights and of all computation (float32 until built)."""
        if self.built:
            return self.params.dtype
        declared = {layer._dtype_arg for layer in self._tracked_layers()} - {None}
        return declared.pop() if len(declared) == 1 else np.dtype(np.float32)

    def fit(self, x=None, *args, **kwargs):
        self._build_from(x)
        return super().fit(x, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._build_from(x)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._build_from(x)
        return super().evaluate(x, *args, **kwargs)

    def __call__(self, x, training=None):
        self._build_from(x)
        return super().__call__(x, training=training)

    def summary(self, *args, **kwargs):
        if not self.built:
            raise ValueError(f"model {self.name!r} has not been built yet: fit it, call it on "
                             f"data or call build(input_shape) first (its layers are made "
                             f"by call)")
        return super().summary(*args, **kwargs)

    # -- layers in attribute order, as Keras tracks them ---------------------------------
    def _tracked_layers(self):
        return [v for k, v in vars(self).items() if isinstance(v, Layer)
                and not k.startswith("_")]

    @property
    def layers(self):
        if not self.built:
            return self._tracked_layers()
        in_graph = [layer for layer in self._layers_in_order
                    if not isinstance(layer, InputLayer)]
        ids = {id(layer) for layer in in_graph}
        ordered = [layer for layer in self._tracked_layers() if id(layer) in ids]
        seen = {id(layer) for layer in ordered}
        return ordered + [layer for layer in in_graph if id(layer) not in seen]

    def _weighted_layers(self):
        return self.layers

    def _summary_nodes(self):
        return {id(node.layer): node for node in self._graph_nodes}
