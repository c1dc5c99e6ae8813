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
