"""A fastrnn functional model as the NumPy reference's graph (fastrnn.reference.graph).

:func:`graph_of` reads the model's layer calls and writes the same network in
the reference's format, with the weights in that format's order (node
order), so any model the layers build can be checked against the reference.
"""
from fastrnn import layers as L


def _spec(layer):
    if isinstance(layer, L.TimeDistributed):
        return _spec(layer.layer)
    if isinstance(layer, L.SimpleRNN):
        return {"kind": "simple_rnn", "units": layer.units, "activation": layer.activation,
                "use_bias": layer.use_bias, "return_sequences": layer.return_sequences,
                "go_backwards": layer.go_backwards, "dropout": layer.dropout,
                "recurrent_dropout": layer.recurrent_dropout, "seed": layer._seed,
                "zero_output_for_mask": layer.zero_output_for_mask}
    if isinstance(layer, L.Masking):
        return {"kind": "masking", "mask_value": layer.mask_value}
    if isinstance(layer, (L.GlobalMaxPooling1D, L.GlobalAveragePooling1D)):
        return {"kind": "global_pool",
                "mode": "max" if isinstance(layer, L.GlobalMaxPooling1D) else "average"}
    if isinstance(layer, L.Dense):
        return {"kind": "dense", "units": layer.units, "activation": layer.activation,
                "use_bias": layer.use_bias}
    if isinstance(layer, L.Activation):
        return {"kind": "activation", "activation": layer.activation}
    if isinstance(layer, L.Dropout):
        return {"kind": "dropout", "rate": layer.rate, "seed": layer._seed}
    if isinstance(layer, L.Flatten):
        return {"kind": "flatten"}
    if isinstance(layer, L.Reshape):
        return {"kind": "reshape", "target_shape": layer.target_shape}
    if isinstance(layer, L.RepeatVector):
        return {"kind": "repeat_vector", "n": layer.n}
    if isinstance(layer, L.Concatenate):
        return {"kind": "concatenate", "axis": layer.axis}
    if isinstance(layer, L.Embedding):
        return {"kind": "embedding", "input_dim": layer.input_dim,
                "output_dim": layer.output_dim, "mask_zero": layer.mask_zero}
    for cls, kind in ((L.Add, "add"), (L.Subtract, "subtract"), (L.Multiply, "multiply"),
                      (L.Average, "average")):
        if isinstance(layer, cls):
            return {"kind": kind}
    raise TypeError(f"no reference for {type(layer).__name__}")


def _bidirectional(node, nodes, where, weights):
    """A Bidirectional call: its two recurrent nodes and the merge node."""
    layer = node.layer
    ins = [where[id(t)] for t in node.input_tensors]
    first = len(nodes)
    for sub in (layer.forward_layer, layer.backward_layer):
        nodes.append(dict(_spec(sub), inputs=ins, input_order=True))
    weights += layer.get_weights()
    outs = node.output_tensors
    if layer.merge_mode is None:
        where[id(outs[0])], where[id(outs[1])] = first, first + 1
        return
    kind = {"concat": "concatenate", "sum": "add", "mul": "multiply",
            "ave": "average"}[layer.merge_mode]
    nodes.append({"kind": kind, "inputs": [first, first + 1]})
    where[id(outs[0])] = len(nodes) - 1


def graph_of(model):
    """(graph, weights) of ``model`` for fastrnn.reference.graph."""
    nodes, where, weights = [], {}, []
    for k, t in enumerate(model.inputs):
        nodes.append({"kind": "input", "index": k})
        where[id(t)] = len(nodes) - 1
    for node in model._graph_nodes:
        if isinstance(node.layer, L.Bidirectional):
            _bidirectional(node, nodes, where, weights)
            continue
        spec = dict(_spec(node.layer), inputs=[where[id(t)] for t in node.input_tensors])
        nodes.append(spec)
        weights += node.layer.get_weights()
        outs = node.output_tensors
        where[id(outs[0])] = len(nodes) - 1
        if len(outs) == 2:          # return_state: the final state
            if node.layer.return_sequences:
                nodes.append({"kind": "last_step", "inputs": [len(nodes) - 1]})
            where[id(outs[1])] = len(nodes) - 1
    return {"nodes": nodes, "outputs": [where[id(t)] for t in model.outputs]}, weights


def weights_back(model, graph_weights):
    """Reference-ordered weights as the model's get_weights() list."""
    by_layer, k = {}, 0
    for node in model._graph_nodes:
        n = len(node.layer.get_weights())
        by_layer[id(node.layer)] = graph_weights[k:k + n]
        k += n
    return [w for layer in model._weighted_layers() for w in by_layer[id(layer)]]
