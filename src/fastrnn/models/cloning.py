"""``keras.models.clone_model``: the same architecture with new layers (new weights).

Each layer is re-made from its config (:meth:`Layer.from_config` of
:meth:`Layer.get_config`: same class, arguments and names, freshly
initialised weights, as Keras does), or by ``clone_function(layer)``; a
functional model's graph is replayed on new :func:`fastrnn.Input` tensors.
"""
from ..layers.input_layer import InputLayer
from ..layers.layer import KerasTensor, Layer

__all__ = ["clone_model"]


def _default_clone(layer):
    return type(layer).from_config(layer.get_config())


def _clone_layer(layer, clone_function):
    new = clone_function(layer)
    if not isinstance(new, Layer):
        raise TypeError(f"clone_function must return a fastrnn layer, got "
                        f"{type(new).__name__} for layer {layer.name!r}")
    return new


def _new_input(tensor):
    source = tensor._keras_history[0]
    return InputLayer(batch_shape=tensor.shape, dtype=tensor.dtype,
                      name=getattr(source, "name", None) + "_clone"
                      if getattr(source, "name", None) else None).output


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """A new model of the same architecture, with new weights (as ``keras.models.clone_model``).

    Parameters
    ----------
    model : Sequential or functional Model
    input_tensors : KerasTensor or list of them, optional
        Inputs (from :func:`fastrnn.Input`) to build the clone on; default new
        ones of the model's input shapes.
    clone_function : callable, optional
        ``layer -> new layer``; default the layer re-made from its config.
    call_function, recursive
        Accepted for Keras compatibility; only their defaults are supported.

    Returns
    -------
    Model
        Built when ``model`` is; weights freshly initialised (copy them with
        ``clone.set_weights(model.get_weights())``).
    """
    from .functional import Functional
    from .sequential import Sequential
    from .subclassed import Subclassed
    if kwargs:
        raise TypeError(f"clone_model got unexpected keyword arguments: "
                        f"{', '.join(sorted(kwargs))}")
    if call_function is not None:
        raise NotImplementedError("clone_model(call_function=...) is not supported")
    clone_function = clone_function or _default_clone
    if isinstance(model, Subclassed):
        raise NotImplementedError("clone_model of a subclassed model: make a new instance of "
                                  "its class instead (as Keras requires)")
    if isinstance(model, Sequential):
        layers = [_clone_layer(layer, clone_function) for layer in model.layers]
        if input_tensors is not None:
            first = input_tensors[0] if isinstance(input_tensors, (list, tuple)) \
                else input_tensors
            return Sequential([first] + layers, name=model.name)
        if model.built:
            shape = model._inputs[0].shape
            first = InputLayer(batch_shape=shape, dtype=model._inputs[0].dtype).output
            return Sequential([first] + layers, name=model.name)
        return Sequential(layers, name=model.name)
    if not isinstance(model, Functional):
        raise TypeError(f"clone_model takes a fastrnn model, got {type(model).__name__}")
    if input_tensors is None:
        new_inputs = [_new_input(t) for t in model._inputs]
    else:
        new_inputs = list(input_tensors) if isinstance(input_tensors, (list, tuple)) \
            else [input_tensors]
        if len(new_inputs) != len(model._inputs) or not all(
                isinstance(t, KerasTensor) for t in new_inputs):
            raise ValueError(f"input_tensors must be {len(model._inputs)} symbolic tensor(s) "
                             f"(from fastrnn.Input)")
    where = {id(old): new for old, new in zip(model._inputs, new_inputs)}
    clones = {}
    for node in model._graph_nodes:
        layer = node.layer
        if id(layer) not in clones:
            clones[id(layer)] = _clone_layer(layer, clone_function)
        new = clones[id(layer)]
        ins = [where[id(t)] for t in node.input_tensors]
        kwargs = dict(node.arguments)
        if layer._multi_input:
            outs = new(ins, **kwargs)
        elif len(ins) == 2:             # a SimpleRNN with initial_state
            outs = new(ins[0], initial_state=ins[1], **kwargs)
        else:
            outs = new(ins[0], **kwargs)
        for old, out in zip(node.output_tensors, outs if isinstance(outs, list) else [outs]):
            where[id(old)] = out

    def rebuild(struct):
        if isinstance(struct, KerasTensor):
            return where[id(struct)]
        if isinstance(struct, dict):
            return {k: rebuild(v) for k, v in struct.items()}
        return [rebuild(t) for t in struct]

    inputs = model._inputs_struct
    new_struct = (new_inputs[0] if isinstance(inputs, KerasTensor) else
                  {k: new_inputs[i] for i, k in enumerate(sorted(inputs))}
                  if isinstance(inputs, dict) else new_inputs)
    return Functional(new_struct, rebuild(model._outputs_struct), name=model.name)
