"""Functional models: a graph of layer calls, as ``keras.Model(inputs, outputs)``.

::

    inputs = fastrnn.Input(shape=(T, D))
    h = fastrnn.layers.SimpleRNN(16)(inputs)
    outputs = fastrnn.layers.Dense(1)(h)
    model = fastrnn.Model(inputs, outputs)

The graph is read back from the outputs to the inputs (Keras's
``map_graph``): layers are ordered by decreasing depth (the longest path to
an output), ties by the order a depth-first walk from the outputs meets
them -- Keras's ``model.layers`` order, and the order of ``get_weights()``.
The whole graph lowers to one engine plan (:mod:`fastrnn.engine`): one node
per layer call, several inputs and outputs, tensors that feed several layers.
"""
import numpy as np

from .. import _engine
from ..engine import Runner, lower
from ..layers.input_layer import InputLayer
from ..layers.layer import KerasTensor, _input_node
from .model import Model

__all__ = ["Functional"]


def _flatten(struct, argument):
    """(flat list of KerasTensor, dict keys or None) of a model's inputs/outputs argument."""
    if isinstance(struct, KerasTensor):
        return [struct], None
    if isinstance(struct, dict):
        keys = sorted(struct)      # Keras flattens dicts in sorted key order
        flat = [struct[k] for k in keys]
    elif isinstance(struct, (list, tuple)):
        keys, flat = None, list(struct)
    else:
        raise TypeError(f"{argument} must be a symbolic tensor (from fastrnn.Input or a layer "
                        f"call), a list or a dict of them; got {type(struct).__name__}")
    if not flat:
        raise ValueError(f"{argument} is empty")
    for k, t in enumerate(flat):
        if not isinstance(t, KerasTensor):
            raise TypeError(f"{argument}[{keys[k] if keys else k}] must be a symbolic tensor "
                            f"(from fastrnn.Input or a layer call), got {type(t).__name__}")
    return flat, keys


def _map_graph(inputs, outputs):
    """The nodes and layers between ``inputs`` and ``outputs``, as Keras's map_graph.

    Returns
    -------
    nodes : list of Node
        Every node (input nodes included) by decreasing depth: a topological order.
    layers : list of Layer
        Keras's ``model.layers`` order.
    nodes_by_depth : dict
    """
    finished, in_progress = set(), set()
    ordered = []                # depth-first post-order: inputs before their users
    first_seen = {}             # layer -> index in a depth-first walk from the outputs

    def visit(tensor):
        layer, index, _ = tensor._keras_history
        node = layer._inbound_nodes[index]
        if node in finished:
            return
        if node in in_progress:
            raise ValueError(f"tensor {tensor.name} from layer {layer.name!r} is part of a cycle")
        first_seen.setdefault(layer, len(first_seen))
        in_progress.add(node)
        for t in node.input_tensors:
            visit(t)
        in_progress.discard(node)
        finished.add(node)
        ordered.append(node)

    for t in outputs:
        visit(t)
    node_depth, layer_depth = {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[node] = depth
        for parent in node.parent_nodes:
            node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for t in inputs:            # inputs no output needs still belong to the model
        layer = t._keras_history[0]
        if layer not in layer_depth:
            node = layer._inbound_nodes[t._keras_history[1]]
            layer_depth[layer] = 0
            node_depth[node] = 0
            first_seen[layer] = -1
    nodes_by_depth = {}
    for node, depth in node_depth.items():
        nodes_by_depth.setdefault(depth, []).append(node)
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_seen[layer]))
    nodes = sorted(node_depth, key=lambda node: (-node_depth[node],
                                                 first_seen[node.layer]))
    return nodes, layers, nodes_by_depth


class Functional(Model):
    """A model made of a graph of layer calls, as ``keras.Model(inputs, outputs)``.

    Parameters
    ----------
    inputs : KerasTensor, list or dict of KerasTensor
        Made by :func:`fastrnn.Input`.
    outputs : KerasTensor, list or dict of KerasTensor
        Made by calling layers on the inputs (and on what those return).
    name : str, optional
        Default ``functional``, ``functional_1``, ...

    Notes
    -----
    Data for several inputs (``fit``, ``predict``, ``evaluate``) comes as a
    list in the order of ``inputs`` or a dict keyed by the inputs' names;
    targets for several outputs as a list or a dict keyed by
    :attr:`output_names`.  ``predict`` returns a list (a dict when
    ``outputs`` was a dict).  Each output gets a loss (``compile(loss=...)``
    one for all, a list or a dict) and the training loss is their weighted
    sum (``loss_weights``), as in Keras.

    A layer may be called once in a model (shared layers are not supported yet).
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        trainable = kwargs.pop("trainable", True)
        if kwargs:
            raise TypeError(f"Model got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        if trainable is not True:
            raise NotImplementedError("trainable=False is not supported yet")
        self._init_model(name, "functional")
        self._set_graph(inputs, outputs)

    # -- the graph -------------------------------------------------------------
    def _set_graph(self, inputs, outputs):
        flat_in, in_keys = _flatten(inputs, "inputs")
        flat_out, out_keys = _flatten(outputs, "outputs")
        for k, t in enumerate(flat_in):
            if not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"inputs[{k}] ({t.name}) is not made by fastrnn.Input: a "
                                 f"model starts from Input tensors (models from intermediate "
                                 f"tensors are not supported)")
        if len({id(t) for t in flat_in}) != len(flat_in):
            raise ValueError("inputs lists one tensor twice")
        nodes, layers, nodes_by_depth = _map_graph(flat_in, flat_out)
        given = {id(t) for t in flat_in}
        for node in nodes:
            if node.is_input and id(node.output_tensors[0]) not in given:
                raise ValueError(f"graph disconnected: the outputs need the input "
                                 f"{node.layer.name!r}, which is not in inputs "
                                 f"({[t.name for t in flat_in]})")
        names = [layer.name for layer in layers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"the name {name!r} is used {names.count(name)} times in the "
                                 f"model; all layer names must be unique")
        seen = {}
        for node in nodes:
            if id(node.layer) in seen:
                raise NotImplementedError(f"layer {node.layer.name!r} is called more than once "
                                          f"in the model: shared layers are not supported yet")
            seen[id(node.layer)] = node
        self._inputs, self._outputs = flat_in, flat_out
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._input_keys, self._output_keys = in_keys, out_keys
        self._graph_nodes = [node for node in nodes if not node.is_input]
        self._node_of = seen
        self._layers_in_order = layers
        self._nodes_by_depth = nodes_by_depth
        self.output_names = (list(out_keys) if out_keys else
                             [t._keras_history[0].name for t in flat_out])
        self.input_names = list(in_keys) if in_keys else [t.name for t in flat_in]
        # which inputs hold indices for an Embedding (and its vocabulary size)
        self._input_ids = []
        for t in flat_in:
            users = [n.layer for n in self._graph_nodes
                     if any(u is t for u in n.input_tensors)]
            ids = [layer for layer in users if layer._takes_indices()]
            if ids and len(ids) != len(users):
                raise ValueError(f"input {t.name!r} feeds an Embedding and other layers; an "
                                 f"input of indices can only feed Embeddings")
            self._input_ids.append(min(ids, key=lambda layer: layer.input_dim) if ids else None)
        for node in self._graph_nodes:
            if node.layer._takes_indices():
                src = node.input_tensors[0]
                if not any(src is t for t in flat_in):
                    raise ValueError(f"Embedding {node.layer.name!r} must take a model input "
                                     f"(an Input of indices) directly")
        self._gather_params(self._weighted_layers(), self._resolve_dtype())
        # lower once now: what the engine cannot run is an error here, not at the first
        # fit, which then uses this plan
        plan = self._lower()
        _engine.analyse_plan(plan.plan, plan.inputs, plan.outputs, self.params.size)
        self._engine_runner = Runner(plan, self.params, self.grads)
        self.built = True

    def _resolve_dtype(self):
        """The model's one float dtype: what its Inputs and layers ask for (float32 if none)."""
        dtypes = {}
        for layer in self._weighted_layers():
            if getattr(layer, "_dtype_arg", None) is not None:
                dtypes.setdefault(np.dtype(layer._dtype_arg), []).append(layer.name)
        for t in self._inputs:
            dt = np.dtype(t.dtype)
            if dt.kind == "f":
                dtypes.setdefault(dt, []).append(t.name)
        if len(dtypes) > 1:
            raise ValueError("the layers compute in different dtypes: "
                             + "; ".join(f"{dt}: {', '.join(names)}" for dt, names in
                                         dtypes.items()))
        return dtypes.popitem()[0] if dtypes else np.dtype(np.float32)

    @property
    def layers(self):
        """Every layer, Input layers included, in Keras's order."""
        return list(self._layers_in_order)

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input(self):
        return self._inputs_struct

    @property
    def output(self):
        return self._outputs_struct

    @property
    def dtype(self):
        """The dtype of the weights and of all computation (float32 by default)."""
        return self.params.dtype

    @property
    def input_shape(self):
        self._require_built("report its input shape")
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        self._require_built("report its output shape")
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _sequential_like(self):
        for nodes in self._nodes_by_depth.values():
            if len(nodes) > 1 or (len(nodes) == 1 and len(nodes[0].input_tensors) > 1):
                return False
        return True

    def _summary_nodes(self):
        return {id(layer): node for node in
                [n for ns in self._nodes_by_depth.values() for n in ns]
                for layer in [node.layer]}

    # -- lowering ----------------------------------------------------------------
    def _lower(self):
        """The engine plan of the graph (see :func:`fastrnn.engine.lower`)."""
        nodes, where = [], {}
        base = {id(layer): off for layer, off in zip(self._weighted_layers(),
                                                     self._layer_offsets)}
        for k, (t, ids) in enumerate(zip(self._inputs, self._input_ids)):
            nodes.append(_input_node(k, t.shape, ids is not None))
            where[id(t)] = k
        for node in self._graph_nodes:
            layer = node.layer
            ins = [where[id(t)] for t in node.input_tensors]
            shapes = [t.shape for t in node.input_tensors]
            shape = shapes if layer._multi_input else shapes[0]
            own, outs = layer._lower_call(shape, ins, base.get(id(layer), 0), len(nodes))
            for t, k in zip(node.output_tensors, outs):
                where[id(t)] = len(nodes) + k
            nodes.extend(own)
        return lower(nodes, [where[id(t)] for t in self._outputs])

    def _concrete_output_shapes(self, x_shapes):
        """The outputs' shapes for inputs of these shapes (engine form: indices (N, L, 1))."""
        shapes = {}
        for t, s, ids in zip(self._inputs, x_shapes, self._input_ids):
            shapes[id(t)] = tuple(s[:-1]) if ids is not None else tuple(s)
        for node in self._graph_nodes:
            layer = node.layer
            ins = [shapes[id(t)] for t in node.input_tensors]
            out = layer.compute_output_shape(ins if layer._multi_input else ins[0])
            for t, s in zip(node.output_tensors, out if isinstance(out, list) else [out]):
                shapes[id(t)] = tuple(s)
        return [shapes[id(t)] for t in self._outputs]

    def _concrete_output_shape(self, x_shape):
        """The output's shape (a list with several) for one input of ``x_shape``."""
        shapes = self._concrete_output_shapes([x_shape])
        return shapes[0] if len(shapes) == 1 else shapes

    # -- data structures -----------------------------------------------------------
    def _split_inputs(self, x, argument):
        """One (value, name) per model input from an array, a list or a dict."""
        n = len(self._inputs)
        if isinstance(x, dict):
            missing = [name for name in self.input_names if name not in x]
            if missing:
                raise ValueError(f"{argument} is a dict without the model's input(s) "
                                 f"{missing}; its keys are {sorted(map(str, x))}")
            return [(x[name], f"{argument}[{name!r}]") for name in self.input_names]
        if n == 1:
            if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
                x = x[0]
            return [(x, argument)]
        if not isinstance(x, (list, tuple)):
            raise ValueError(f"the model has {n} inputs ({self.input_names}): {argument} must "
                             f"be a list of {n} arrays or a dict keyed by input name, got "
                             f"{type(x).__name__}")
        if len(x) != n:
            raise ValueError(f"the model has {n} inputs ({self.input_names}), but {argument} "
                             f"is a list of {len(x)}")
        return [(v, f"{argument}[{k}]") for k, v in enumerate(x)]

    def _split_outputs(self, y, argument):
        """One (value, name) per model output from an array, a list or a dict."""
        n = len(self._outputs)
        if isinstance(y, dict):
            missing = [name for name in self.output_names if name not in y]
            if missing:
                raise ValueError(f"{argument} is a dict without the model's output(s) "
                                 f"{missing}; its keys are {sorted(map(str, y))}")
            return [(y[name], f"{argument}[{name!r}]") for name in self.output_names]
        if n == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and hasattr(y[0], "shape"):
                y = y[0]
            return [(y, argument)]
        if not isinstance(y, (list, tuple)):
            raise ValueError(f"the model has {n} outputs ({self.output_names}): {argument} "
                             f"must be a list of {n} arrays or a dict keyed by output name, "
                             f"got {type(y).__name__}")
        if len(y) != n:
            raise ValueError(f"the model has {n} outputs ({self.output_names}), but "
                             f"{argument} is a list of {len(y)}")
        return [(v, f"{argument}[{k}]") for k, v in enumerate(y)]

    def _input_spec(self, k):
        """(shape with the batch axis, Embedding reading it or None) of input k."""
        return self._inputs[k].shape, self._input_ids[k]

    def _structure_outputs(self, arrays):
        """Outputs as the model returns them: one array, a list, or a dict."""
        if self._output_keys:
            return dict(zip(self._output_keys, arrays))
        if isinstance(self._outputs_struct, KerasTensor):
            return arrays[0]
        return list(arrays)

    def __call__(self, x, training=None):
        """The model's outputs for arrays ``x`` (new arrays), as ``model(x)`` in Keras."""
        if isinstance(x, KerasTensor) or (isinstance(x, (list, tuple)) and x
                                          and isinstance(x[0], KerasTensor)):
            raise NotImplementedError("calling a model on symbolic tensors (nesting models) is "
                                      "not supported yet")
        self._require_built("be called")
        out = self._forward(self._check_x(x), training=bool(training))
        return self._structure_outputs([o.copy() for o in out])

    def __repr__(self):
        return (f"<{type(self).__name__} name={self.name!r} inputs={self.input_names} "
                f"outputs={self.output_names}>")
