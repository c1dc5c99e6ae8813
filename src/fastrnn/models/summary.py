"""``model.summary()``: the table of layers, as Keras 3's summary utility prints it.

Columns "Layer (type)", "Output Shape", "Param #", and for a functional
model that is not a chain Keras's "Connected to" (``layer[node][tensor]``
of every input, one per line).  Layout is plain text (Keras draws the same
table with box characters through ``rich``).
"""
from ..layers.layer import _shape_str

__all__ = ["print_summary"]


def _readable_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _layer_shape(layer, node):
    if node is not None:
        shapes = [t.shape for t in node.output_tensors]
    elif layer.built and layer.output_shape is not None:
        out = layer.output_shape
        shapes = out if isinstance(out, list) else [out]
    else:
        return "?"
    if len(shapes) == 1:
        return _shape_str(shapes[0])
    return "[" + ", ".join(_shape_str(s) for s in shapes) + "]"


def _connections(node):
    if node is None or not node.input_tensors:
        return ["-"]
    out = []
    for t in node.input_tensors:
        layer, node_index, tensor_index = t._keras_history
        out.append(f"{layer.name}[{node_index}][{tensor_index}]")
    return [c + ("," if k < len(out) - 1 else "") for k, c in enumerate(out)]


def print_summary(model, print_fn):
    """Print ``model``'s summary line by line through ``print_fn``."""
    rows = []
    connected = not model._sequential_like()
    nodes = model._summary_nodes()
    for layer in model.layers:
        node = nodes.get(id(layer))
        if layer.built:
            params = f"{layer.count_params():,}"
        else:
            params = "0 (unbuilt)"
        rows.append((f"{layer.name} ({type(layer).__name__})", _layer_shape(layer, node), params,
                     _connections(node) if connected else []))
    w1 = max([33] + [len(r[0]) + 2 for r in rows])
    w2 = max([26] + [len(r[1]) + 2 for r in rows])
    w3 = max([12] + [len(r[2]) + 2 for r in rows])
    w4 = max([20] + [len(c) + 2 for r in rows for c in r[3]]) if connected else 0
    width = w1 + w2 + w3 + w4
    total = model.count_params() if model.built else 0
    nbytes = model.params.nbytes if model.built else 0
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * width)
    header = f" {'Layer (type)':<{w1 - 1}}{'Output Shape':<{w2}}{'Param #':>{w3 - 1}}"
    if connected:
        header += f"  {'Connected to':<{w4 - 2}}"
    print_fn(header.rstrip())
    print_fn("=" * width)
    for i, (name, shape, params, links) in enumerate(rows):
        line = f" {name:<{w1 - 1}}{shape:<{w2}}{params:>{w3 - 1}}"
        if connected:
            line += f"  {links[0]}"
        print_fn(line.rstrip())
        for link in links[1:]:
            print_fn((" " * (w1 + w2 + w3 + 1) + link).rstrip())
        if i < len(rows) - 1:
            print_fn("-" * width)
    print_fn("=" * width)
    print_fn(f" Total params: {total:,} ({_readable_bytes(nbytes)})")
    frozen = sum(model._frozen_segments()[1]) if model.built else 0
    itemsize = model.params.itemsize if model.built else 0
    print_fn(f" Trainable params: {total - frozen:,} "
             f"({_readable_bytes((total - frozen) * itemsize)})")
    print_fn(f" Non-trainable params: {frozen:,} ({_readable_bytes(frozen * itemsize)})")
    print_fn("_" * width)
