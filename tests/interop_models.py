"""Hypothesis strategies for the interop tests (Keras files, ONNX, PyTorch): random
supported Sequential models with random weights, and an input batch for each."""
import numpy as np
from hypothesis import strategies as st

import fastrnn

RNN_ACTIVATIONS = ["tanh", "relu"]
DENSE_ACTIVATIONS = [None, "relu", "tanh", "sigmoid", "softmax"]

rnn_layers = st.fixed_dictionaries({
    "units": st.integers(1, 5), "activation": st.sampled_from(RNN_ACTIVATIONS),
    "use_bias": st.booleans(), "go_backwards": st.booleans(),
})
dense_layers = st.fixed_dictionaries({
    "units": st.integers(1, 4), "use_bias": st.booleans(),
    "activation": st.sampled_from(DENSE_ACTIVATIONS),
})


@st.composite
def models(draw, dtypes=("float32", "float64"), min_rnns=0, return_state=True):
    """(model, x): 0-3 SimpleRNNs (any flags) then 0-2 Dense, built, with weights in [-1, 1).

    ``x`` is float64 of shape (N, T, D) (or (N, D) for a Dense-only model),
    N in 1..4; T is the model's time steps, or 1..6 when the model takes any.
    """
    fastrnn.clear_session()
    dtype = draw(st.sampled_from(dtypes))
    T = draw(st.sampled_from([None, 1, 4]))
    D = draw(st.integers(1, 3))
    rnns = draw(st.lists(rnn_layers, min_size=min_rnns, max_size=3))
    denses = draw(st.lists(dense_layers, min_size=0 if rnns else 1, max_size=2))
    layers = []
    for i, kw in enumerate(rnns):
        last = i == len(rnns) - 1
        layers.append(fastrnn.layers.SimpleRNN(
            **kw, return_sequences=not last or draw(st.booleans()),
            return_state=return_state and last and not denses and draw(st.booleans())))
    layers += [fastrnn.layers.Dense(**kw) for kw in denses]
    shape = (T, D) if rnns else (D,)
    model = fastrnn.Sequential([fastrnn.Input(shape, dtype=dtype)] + layers,
                               name=draw(st.sampled_from(["sequential", "my model"])))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    N = draw(st.integers(1, 4))
    steps = (T if T is not None else draw(st.integers(1, 6)),) if rnns else ()
    x = rng.standard_normal((N,) + steps + (D,))
    return model, x


def predictions(model, x):
    """{"pred": ...} or {"pred_0": ..., "pred_1": ...} (return_state) from model.predict."""
    out = model.predict(x, verbose=0)
    if isinstance(out, list):
        return {f"pred_{i}": o for i, o in enumerate(out)}
    return {"pred": out}


@st.composite
def graph_models(draw, dtypes=("float32", "float64")):
    """(model, xs): a random functional model of the round-2 layers, with inputs.

    One sequence input (floats, or token ids for an Embedding), optionally
    masked (Masking, or Embedding(mask_zero=True)) into a SimpleRNN (any
    direction, return_sequences/return_state, an initial_state input) or a
    Bidirectional (any merge mode); then a few of Dense, Activation, Dropout,
    TimeDistributed(Dense), Flatten, Reshape, RepeatVector and a merge with a
    second branch.  Inputs hold masked steps after, before and between the
    others; every sample keeps at least... any number of steps (none too).
    """
    fastrnn.clear_session()
    L = fastrnn.layers
    dtype = draw(st.sampled_from(dtypes))
    T = draw(st.sampled_from([None, 1, 3, 5]))
    D = draw(st.integers(1, 3))
    front = draw(st.sampled_from(["none", "masking", "embedding", "embedding_mask"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    N = draw(st.integers(1, 4))
    steps = T if T is not None else draw(st.integers(1, 6))
    if front.startswith("embedding"):
        x_in = fastrnn.Input((T,), dtype="int32")
        x = L.Embedding(7, D, mask_zero=front == "embedding_mask")(x_in)
        data = rng.integers(1, 7, (N, steps))
        zero = rng.random((N, steps)) < draw(st.sampled_from([0.0, 0.3, 0.7]))
        data[zero] = 0
    else:
        x_in = fastrnn.Input((T, D), dtype=dtype)
        x = L.Masking(0.0)(x_in) if front == "masking" else x_in
        data = rng.standard_normal((N, steps, D))
        zero = rng.random((N, steps)) < draw(st.sampled_from([0.0, 0.3, 0.7]))
        data[zero] = 0.0
    inputs, xs = [x_in], [data]
    units = draw(st.integers(1, 4))
    activation = draw(st.sampled_from(["tanh", "relu"]))
    return_sequences = draw(st.booleans())
    if front in ("masking", "embedding_mask") or draw(st.booleans()):
        state_in = None
        if draw(st.booleans()):
            state_in = fastrnn.Input((units,), dtype=dtype)
            inputs.append(state_in)
            xs.append(rng.standard_normal((N, units)))
        rnn = L.SimpleRNN(units, activation=activation, go_backwards=draw(st.booleans()),
                          return_sequences=return_sequences, use_bias=draw(st.booleans()),
                          return_state=draw(st.booleans()))
        out = rnn(x, initial_state=state_in) if state_in is not None else rnn(x)
        h, extra = (out[0], [out[1]]) if rnn.return_state else (out, [])
    else:
        merge = draw(st.sampled_from(["concat", "sum", "mul", "ave", None]))
        out = L.Bidirectional(L.SimpleRNN(units, activation=activation,
                                          return_sequences=return_sequences,
                                          use_bias=draw(st.booleans())), merge_mode=merge)(x)
        h, extra = (L.Add()(out), [out[1]]) if merge is None else (out, [])
    for step in draw(st.lists(st.sampled_from(["dense", "activation", "dropout", "time_dense",
                                               "flatten", "reshape", "repeat", "merge",
                                               "pool"]),
                              max_size=3)):
        rank = len(h.shape)
        if step == "dense":
            h = L.Dense(draw(st.integers(1, 3)), activation=draw(st.sampled_from(
                [None, "softmax", "sigmoid", "relu6", "elu"])))(h)
        elif step == "activation":
            h = L.Activation(draw(st.sampled_from(["tanh", "softplus", "leaky_relu",
                                                   "hard_sigmoid", "log_softmax"])))(h)
        elif step == "dropout":
            h = L.Dropout(0.3)(h)
        elif step == "time_dense" and rank == 3:
            h = L.TimeDistributed(L.Dense(2))(h)
        elif step == "flatten" and rank == 3 and h.shape[1] is not None:
            h = L.Flatten()(h)
        elif step == "reshape" and rank == 3 and h.shape[1] is not None:
            h = L.Reshape((-1, 1))(h)
        elif step == "repeat" and rank == 2:
            h = L.RepeatVector(2)(h)
        elif step == "pool" and rank == 3:
            h = draw(st.sampled_from([L.GlobalMaxPooling1D, L.GlobalAveragePooling1D]))()(h)
        elif step == "merge":
            other = L.Dense(h.shape[-1])(h)
            kind = draw(st.sampled_from(["Add", "Subtract", "Multiply", "Average",
                                         "Concatenate"]))
            h = getattr(L, kind)()([h, other])
    outputs = [h] + extra
    model = fastrnn.Model(inputs, outputs if len(outputs) > 1 else h)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    return model, xs
