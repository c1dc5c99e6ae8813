"""Random model graphs for the tests, and their lowering straight to the engine.

:func:`graphs` is a Hypothesis strategy of graphs in the format of
:mod:`fastrnn.reference.graph` (with input arrays); :func:`engine_of`
lowers such a graph to a compiled engine without going through the layer
classes, so the engine is tested against the reference on its own.
"""
import numpy as np
from hypothesis import strategies as st

from fastrnn import _engine
from fastrnn.engine import lower
from fastrnn.reference import graph as ref

SMOOTH = ["tanh", "sigmoid", "linear", "softplus", "softsign", "elu", "softmax"]


@st.composite
def graphs(draw, max_nodes=8, smooth=True, dropout=True, embedding=True):
    """(graph, input shapes, input kinds): a random DAG over 1-3 inputs.

    Tensors are tracked as (seq, steps, width); every layer kind the engine
    has is drawn where its input fits, inputs are drawn with repetition (a
    tensor may feed several nodes), and the outputs are every tensor nothing
    consumes plus, sometimes, one that something does.
    """
    acts = SMOOTH if smooth else SMOOTH + ["relu"]
    nodes, shapes, kinds = [], [], []     # shapes: None for (B, F), else (T, F)
    tensors = []                           # (node index, seq, steps, width)
    n_inputs = draw(st.integers(1, 3))
    for k in range(n_inputs):
        kind = draw(st.sampled_from(["seq", "seq", "static"] + (["ids"] if embedding else [])))
        if kind == "ids":
            L, V = draw(st.integers(1, 4)), draw(st.integers(1, 5))
            nodes.append({"kind": "input", "index": k})
            nodes.append({"kind": "embedding", "inputs": [len(nodes) - 1], "input_dim": V,
                          "output_dim": draw(st.integers(1, 3))})
            shapes.append((L,))
            kinds.append(("ids", V))
            tensors.append((len(nodes) - 1, True, L, nodes[-1]["output_dim"]))
        elif kind == "seq":
            T, D = draw(st.integers(1, 4)), draw(st.integers(1, 3))
            nodes.append({"kind": "input", "index": k})
            shapes.append((T, D))
            kinds.append(("float", None))
            tensors.append((len(nodes) - 1, True, T, D))
        else:
            D = draw(st.integers(1, 4))
            nodes.append({"kind": "input", "index": k})
            shapes.append((D,))
            kinds.append(("float", None))
            tensors.append((len(nodes) - 1, False, 1, D))
    consumed = set()
    for _ in range(draw(st.integers(1, max_nodes))):
        op = draw(st.sampled_from(["rnn", "dense", "dense", "activation", "dropout", "flatten",
                                   "reshape", "repeat", "concat", "concat_time", "merge",
                                   "last", "pool", "scale"]))
        pick = draw(st.integers(0, len(tensors) - 1))
        src, seq, T, F = tensors[pick]
        new = None
        if op == "rnn" and seq:
            rs = draw(st.booleans())
            node = {"kind": "simple_rnn", "inputs": [src], "units": draw(st.integers(1, 4)),
                    "activation": draw(st.sampled_from(acts)), "use_bias": draw(st.booleans()),
                    "return_sequences": rs, "go_backwards": draw(st.booleans())}
            new = (True, T, node["units"]) if rs else (False, 1, node["units"])
        elif op == "dense":
            node = {"kind": "dense", "inputs": [src], "units": draw(st.integers(1, 4)),
                    "activation": draw(st.sampled_from(acts)), "use_bias": draw(st.booleans())}
            new = (seq, T, node["units"])
        elif op == "activation":
            node = {"kind": "activation", "inputs": [src],
                    "activation": draw(st.sampled_from(acts))}
            new = (seq, T, F)
        elif op == "dropout" and dropout:
            node = {"kind": "dropout", "inputs": [src], "rate": draw(st.sampled_from(
                [0.0, 0.25, 0.5, 1.0])), "seed": draw(st.integers(-2**63, 2**63 - 1))}
            new = (seq, T, F)
        elif op == "flatten" and seq:
            node = {"kind": "flatten", "inputs": [src]}
            new = (False, 1, T * F)
        elif op == "reshape":
            size = T * F
            steps = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
            node = {"kind": "reshape", "inputs": [src], "target_shape": (steps, size // steps)}
            new = (True, steps, size // steps)
        elif op == "last" and seq:
            node = {"kind": "last_step", "inputs": [src]}
            new = (False, 1, F)
        elif op == "scale":
            node = {"kind": "scale", "inputs": [src],
                    "factor": draw(st.sampled_from([1.0, -0.5, 3.0, 100.0])),
                    "offset": draw(st.sampled_from([0.0, 0.25, -2.0]))}
            new = (seq, T, F)
        elif op == "pool" and seq:
            node = {"kind": "global_pool", "inputs": [src],
                    "mode": draw(st.sampled_from(["max", "average"]))}
            new = (False, 1, F)
        elif op == "repeat" and not seq:
            n = draw(st.integers(1, 3))
            node = {"kind": "repeat_vector", "inputs": [src], "n": n}
            new = (True, n, F)
        elif op in ("concat", "concat_time", "merge"):
            if op == "concat":
                fits = [t for t in tensors if t[1] == seq and t[2] == T]
            elif op == "concat_time":
                fits = [t for t in tensors if seq and t[1] and t[3] == F]
            else:
                fits = [t for t in tensors if t[1:] == (seq, T, F)]
            if not fits:
                continue
            others = draw(st.lists(st.sampled_from(fits), min_size=1, max_size=2))
            srcs = [src] + [t[0] for t in others]
            if op == "concat":
                node = {"kind": "concatenate", "inputs": srcs, "axis": -1}
                new = (seq, T, F + sum(t[3] for t in others))
            elif op == "concat_time":
                node = {"kind": "concatenate", "inputs": srcs, "axis": 1}
                new = (True, T + sum(t[2] for t in others), F)
            else:
                kind = draw(st.sampled_from(["add", "multiply", "average"]
                                            + (["subtract"] if len(srcs) == 2 else [])))
                node = {"kind": kind, "inputs": srcs}
                new = (seq, T, F)
        if new is None:
            continue
        consumed.update(node["inputs"])
        nodes.append(node)
        tensors.append((len(nodes) - 1,) + new)
    sinks = [t[0] for t in tensors if t[0] not in consumed and nodes[t[0]]["kind"] != "input"]
    if not sinks:   # everything was consumed or nothing was added: one Dense on the last tensor
        src, seq, T, F = tensors[-1]
        nodes.append({"kind": "dense", "inputs": [src], "units": 2})
        sinks = [len(nodes) - 1]
    outputs = list(sinks)
    inner = [t[0] for t in tensors if t[0] in consumed and nodes[t[0]]["kind"] != "input"]
    if inner and draw(st.booleans()):
        outputs.append(draw(st.sampled_from(inner)))
    outputs = draw(st.permutations(outputs))
    return {"nodes": nodes, "outputs": list(outputs)}, shapes, kinds


def make_data(shapes, kinds, B, rng):
    """Input arrays for a graph from :func:`graphs`."""
    xs = []
    for shape, (kind, V) in zip(shapes, kinds):
        if kind == "ids":
            xs.append(rng.integers(0, V, size=(B,) + shape).astype(np.float64))
        else:
            xs.append(rng.uniform(-1, 1, (B,) + shape))
    return xs


def weights_of(graph, xs, rng, scale=0.5):
    """Random weights of the right shapes (node order)."""
    weights, outs = [], {}
    nodes = graph["nodes"]
    for i, node in enumerate(nodes):
        if node["kind"] == "input":
            outs[i] = xs[node["index"]].shape
            continue
        x_shape = outs[node["inputs"][0]]
        for shape in ref._weights_of(node, x_shape):
            weights.append(rng.uniform(-scale, scale, shape))
        outs[i] = _out_shape(node, [outs[j] for j in node["inputs"]])
    return weights


def _out_shape(node, in_shapes):
    kind, x = node["kind"], in_shapes[0]
    if kind == "simple_rnn":
        return (x[0], x[1], node["units"]) if node.get("return_sequences") else (x[0],
                                                                                 node["units"])
    if kind == "dense":
        return x[:-1] + (node["units"],)
    if kind in ("activation", "dropout", "add", "subtract", "multiply", "average", "scale"):
        return x
    if kind == "flatten":
        return (x[0], int(np.prod(x[1:])))
    if kind == "reshape":
        return (x[0],) + ref._reshape_target(x[1:], node["target_shape"])
    if kind == "repeat_vector":
        return (x[0], node["n"], x[1])
    if kind == "concatenate":
        axis = node.get("axis", -1) % len(x)
        return x[:axis] + (sum(s[axis] for s in in_shapes),) + x[axis + 1:]
    if kind == "embedding":
        return x + (node["output_dim"],)
    if kind in ("last_step", "global_pool"):
        return (x[0], x[2])
    raise ValueError(kind)


def engine_of(graph, weights, xs, dtype):
    """A compiled engine for ``graph`` with ``weights``, and the arrays in engine form.

    Returns
    -------
    engine, params, grads, x_engine (inputs as the engine takes them: ids as (B, L, 1))
    """
    _, trace = ref.forward(graph, weights, xs)
    nodes = graph["nodes"]
    feeds_embedding = {n["inputs"][0] for n in nodes if n["kind"] == "embedding"}
    params = np.concatenate([np.ravel(w) for w in weights] + [np.zeros(0)]).astype(dtype)
    specs, offset = [], 0
    for i, node in enumerate(nodes):
        out = trace[i]["out"]
        seq = out.ndim == 3
        kind = node["kind"]
        spec = {"inputs": node.get("inputs", []), "width": out.shape[-1], "seq": seq}
        shapes = [] if kind == "input" else ref._weights_of(node, trace[node["inputs"][0]]
                                                             ["out"].shape)
        offs = []
        for shape in shapes:
            offs.append(offset)
            offset += int(np.prod(shape))
        if kind == "input":
            ids = i in feeds_embedding
            spec.update(kind="input", arg=node["index"], seq=ids or seq,
                        width=1 if ids else out.shape[-1])
        elif kind == "simple_rnn":
            spec.update(kind="simple_rnn", activation=node.get("activation", "tanh"),
                        backwards=node.get("go_backwards", False), p0=offs[0], p1=offs[1],
                        p2=offs[2] if len(offs) == 3 else -1)
        elif kind == "dense":
            spec.update(kind="dense", activation=node.get("activation", "linear"), p0=offs[0],
                        p2=offs[1] if len(offs) == 2 else -1)
        elif kind == "activation":
            spec.update(kind="activation", activation=node["activation"])
        elif kind == "dropout":
            spec.update(kind="dropout", arg=node["seed"], real=node["rate"])
        elif kind in ("flatten", "reshape"):
            spec.update(kind="relayout", steps=out.shape[1] if seq else 1)
        elif kind == "repeat_vector":
            spec.update(kind="repeat", steps=node["n"])
        elif kind == "concatenate":
            spec.update(kind="concat_time" if (seq and node.get("axis", -1) % 3 == 1)
                        else "concat")
        elif kind == "embedding":
            spec.update(kind="embedding", arg=node["input_dim"], p0=offs[0])
        elif kind == "last_step":
            spec.update(kind="last_step")
        elif kind == "global_pool":
            spec.update(kind="pool_time", arg=0 if node.get("mode", "max") == "max" else 1)
        elif kind == "scale":
            spec.update(kind="scale", real=node.get("factor", 1.0), real2=node.get("offset", 0.0))
        else:
            spec.update(kind=kind)
        specs.append(spec)
    plan = lower(specs, graph["outputs"])
    grads = np.zeros_like(params)
    engine = _engine.Engine(plan.plan, plan.inputs, plan.outputs, params, grads)
    x_engine = []
    for i, node in enumerate(nodes):
        if node["kind"] == "input":
            x = np.ascontiguousarray(xs[node["index"]], dtype=dtype)
            x_engine.append((node["index"], x[..., None] if i in feeds_embedding else x))
    x_engine = [x for _, x in sorted(x_engine, key=lambda p: p[0])]
    return engine, params, grads, x_engine
