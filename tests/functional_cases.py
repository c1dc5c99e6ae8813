"""Functional models built the same way in Keras and fastrnn (needs only NumPy).

Each case is ``build(lib, dtype)`` with ``lib`` = ``keras`` or ``fastrnn``,
returning ``(model, inputs)`` where ``inputs`` says how to draw each input
("float" or ("ids", vocabulary)).  tools/keras_fixtures/functional.py records
Keras 3's numbers for them; tests/test_keras_functional.py compares.
Layer names are given where the fixture records the graph's connections.
"""
import numpy as np

B = 4


def two_in_two_out(lib, dtype):
    L = lib.layers
    seq = lib.Input((5, 2), dtype=dtype, name="seq")
    aux = lib.Input((3,), dtype=dtype, name="aux")
    h = L.SimpleRNN(4, name="rnn")(seq)
    c = L.Concatenate(name="cat")([h, aux])
    out1 = L.Dense(1, name="out1")(c)
    out2 = L.Dense(2, activation="sigmoid", name="out2")(h)
    return lib.Model([seq, aux], [out1, out2]), ["float", "float"]


def encoder_decoder(lib, dtype):
    L = lib.layers
    x = lib.Input((6, 2), dtype=dtype)
    code = L.SimpleRNN(5)(x)
    dec = L.SimpleRNN(3, return_sequences=True)(L.RepeatVector(4)(code))
    return lib.Model(x, L.TimeDistributed(L.Dense(2))(dec)), ["float"]


def text(lib, dtype):
    L = lib.layers
    ids = lib.Input((7,), dtype="int32")
    e = L.Embedding(11, 3, dtype=dtype)(ids)      # integer input: the layer sets the dtype
    a = L.Flatten()(L.SimpleRNN(4, return_sequences=True)(e))
    b = L.SimpleRNN(2, go_backwards=True, activation="relu")(e)
    out = L.Dense(1, activation="sigmoid")(L.Concatenate()([a, b]))
    return lib.Model(ids, out), [("ids", 11)]


def merges(lib, dtype):
    L = lib.layers
    x = lib.Input((4, 3), dtype=dtype)
    a = L.Dense(3, activation="tanh")(x)
    b = L.SimpleRNN(3, return_sequences=True)(x)
    c = L.Dense(3)(x)
    joined = L.Concatenate()([L.Add()([a, b, c]), L.Subtract()([a, b]),
                              L.Multiply()([b, c]), L.Average()([a, c])])
    probs = L.Activation("softmax")(joined)
    return lib.Model(x, L.Dense(2)(L.Flatten()(L.Reshape((2, 24))(probs)))), ["float"]


def time_concat(lib, dtype):
    L = lib.layers
    a = lib.Input((3, 2), dtype=dtype)
    b = lib.Input((5, 2), dtype=dtype)
    h = L.SimpleRNN(3)(L.Concatenate(axis=1)([a, b]))
    return lib.Model([a, b], L.Dense(1)(h)), ["float", "float"]


def dropout(lib, dtype):
    L = lib.layers
    x = lib.Input((4, 3), dtype=dtype)
    h = L.Dropout(0.5, seed=1)(L.SimpleRNN(4, return_sequences=True)(x))
    return lib.Model(x, L.Dense(1)(L.SimpleRNN(2)(h))), ["float"]


def return_state(lib, dtype):
    L = lib.layers
    x = lib.Input((4, 2), dtype=dtype)
    seq, state = L.SimpleRNN(3, return_sequences=True, return_state=True)(x)
    return lib.Model(x, [seq, L.Dense(1)(state)]), ["float"]


CASES = {"two_in_two_out": two_in_two_out, "encoder_decoder": encoder_decoder, "text": text,
         "merges": merges, "time_concat": time_concat, "dropout": dropout,
         "return_state": return_state}

#: cases whose training differs by design (random dropout masks): predictions only
PREDICT_ONLY = {"dropout"}


def draw_inputs(kinds, shapes, rng):
    """One batch of B samples per input."""
    xs = []
    for kind, shape in zip(kinds, shapes):
        if kind == "float":
            xs.append(rng.uniform(-1, 1, (B,) + tuple(shape)))
        else:
            xs.append(rng.integers(0, kind[1], (B,) + tuple(shape)).astype(np.int32))
    return xs


def losses_for(n_outputs):
    """The loss and loss weight of each output (mse, then mae, ...)."""
    return (["mse", "mae"] * n_outputs)[:n_outputs], [1.0 + 0.5 * k for k in range(n_outputs)]
