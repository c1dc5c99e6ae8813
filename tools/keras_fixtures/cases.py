"""The model cases shared by the fixture scripts (imported by both; needs only NumPy).

Each case is a function ``build(lib)`` that makes the same model with
``lib`` = ``fastrnn`` or ``keras``, and a fixed input.
"""
import numpy as np


def tutorial(lib):
    return lib.Sequential([lib.Input((3, 1)), lib.layers.SimpleRNN(20), lib.layers.Dense(1)])


def stacked(lib):
    return lib.Sequential([
        lib.Input((5, 2)),
        lib.layers.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu"),
        lib.layers.SimpleRNN(3, return_sequences=True, use_bias=False),
        lib.layers.Dense(2, activation="sigmoid"),
    ])


def many_to_many(lib):
    # variable number of time steps; softmax over the last axis
    return lib.Sequential([lib.Input((None, 3)), lib.layers.SimpleRNN(4, return_sequences=True),
                           lib.layers.Dense(3, activation="softmax")])


def return_state(lib):
    return lib.Sequential([lib.Input((4, 2)),
                           lib.layers.SimpleRNN(3, go_backwards=True, return_state=True)])


def dense_only(lib):
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="tanh"),
                           lib.layers.Dense(2, activation="relu", use_bias=False)])


CASES = {"tutorial": tutorial, "stacked": stacked, "many_to_many": many_to_many,
         "return_state": return_state, "dense_only": dense_only}

# input shape (without batch) per case; None time steps get 6
_X_SHAPES = {"tutorial": (3, 1), "stacked": (5, 2), "many_to_many": (6, 3),
             "return_state": (4, 2), "dense_only": (4,)}


def inputs(case):
    """A fixed float32 input batch of 5 samples for ``case``."""
    rng = np.random.default_rng(sorted(CASES).index(case))
    return rng.standard_normal((5,) + _X_SHAPES[case]).astype(np.float32)


# -- the layers and functional models of round 2 ---------------------------------------
# Each builds the same model with lib = fastrnn or keras; graph_inputs(case) gives its
# inputs (a list, in the order of the model's inputs).  Seeds are per case name, so
# adding a case changes no other case's files.
def embedding_rnn(lib):
    tokens = lib.Input((6,), dtype="int32", name="tokens")
    e = lib.layers.Embedding(12, 3, mask_zero=True)(tokens)
    h = lib.layers.SimpleRNN(4, return_sequences=True)(e)
    return lib.Model(tokens, lib.layers.TimeDistributed(lib.layers.Dense(2))(h))


def masking_rnn(lib):
    return lib.Sequential([lib.Input((5, 2)), lib.layers.Masking(0.0),
                           lib.layers.SimpleRNN(3, activation="relu"), lib.layers.Dense(1)])


def embedding_sequential(lib):
    return lib.Sequential([lib.Input((7,), dtype="int32"), lib.layers.Embedding(9, 2),
                           lib.layers.SimpleRNN(3, go_backwards=True),
                           lib.layers.Dense(2, activation="softmax")])


def bidirectional(lib):
    L = lib.layers
    return lib.Sequential([
        lib.Input((5, 2)),
        L.Bidirectional(L.SimpleRNN(3, return_sequences=True, use_bias=False)),
        L.Bidirectional(L.SimpleRNN(2, activation="relu"), merge_mode="ave"),
        L.Dense(1)])


def core_layers(lib):
    L = lib.layers
    return lib.Sequential([
        lib.Input((4, 3)), L.TimeDistributed(L.Dense(2, activation="tanh")),
        L.Activation("relu"), L.Dropout(0.3), L.Flatten(), L.RepeatVector(2),
        L.SimpleRNN(3, dropout=0.2, recurrent_dropout=0.1, return_sequences=True),
        L.Reshape((6,)), L.Dense(2)])


def merges(lib):
    L = lib.layers
    seq_in = lib.Input((4, 2), name="seq")
    h0 = lib.Input((3,), name="h0")
    seq, state = L.SimpleRNN(3, return_sequences=True, return_state=True,
                             go_backwards=True)(seq_in, initial_state=h0)
    bi = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="mul")(seq_in)
    sub = L.Subtract()([seq, bi])
    avg = L.Average()([seq, bi, sub])
    added = L.Add()([L.Multiply()([seq, bi]), avg])
    joined = L.Concatenate()([seq, bi])
    out1 = L.Dense(2, activation="softmax")(L.Activation("tanh")(L.Dropout(0.2)(joined)))
    out2 = L.Reshape((12,))(added)
    out3 = L.RepeatVector(2)(state)
    return lib.Model([seq_in, h0], [out1, out2, out3])


def two_directions(lib):
    L = lib.layers
    x = lib.Input((None, 2))
    fwd, bwd = L.Bidirectional(L.SimpleRNN(2), merge_mode=None)(x)
    both = L.Concatenate(axis=1)([L.RepeatVector(3)(fwd), L.RepeatVector(2)(bwd)])
    return lib.Model(x, {"both": both, "sum": L.Add()([fwd, bwd])})


def masks_through_layers(lib):
    """A mask carried through Dense, a backwards returned sequence, a Bidirectional,
    TimeDistributed and a concatenation to the last SimpleRNN (Keras 3's rules)."""
    L = lib.layers
    x = lib.Input((5, 2))
    h = L.Dense(3, activation="tanh")(L.Masking(0.0)(x))
    s = L.SimpleRNN(3, return_sequences=True, go_backwards=True)(h)
    b = L.Bidirectional(L.SimpleRNN(2, return_sequences=True), merge_mode="sum")(s)
    out = L.SimpleRNN(2)(L.Concatenate()([b, L.TimeDistributed(L.Dense(2))(s)]))
    return lib.Model(x, out)


def pooling(lib):
    """Pooling over time: a masked mean (over the kept steps) and a max (mask ignored)."""
    L = lib.layers
    tokens = lib.Input((6,), dtype="int32")
    h = L.SimpleRNN(3, return_sequences=True)(L.Embedding(10, 2, mask_zero=True)(tokens))
    pooled = L.Concatenate()([L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D()(h)])
    return lib.Model(tokens, L.Dense(1)(pooled))


GRAPH_CASES = {"pooling": pooling, "masks_through_layers": masks_through_layers, "embedding_rnn": embedding_rnn, "masking_rnn": masking_rnn,
               "embedding_sequential": embedding_sequential, "bidirectional": bidirectional,
               "core_layers": core_layers, "merges": merges, "two_directions": two_directions}


def case_seed(case):
    """A seed from the case's name (stable when cases are added)."""
    return sum(ord(c) * 31 ** i for i, c in enumerate(case)) % 2 ** 31


def graph_inputs(model, case):
    """Fixed inputs for the model of ``case``, one array per model input (5 samples).

    Token inputs hold padding (0) at the end, at the start and in between;
    float sequences have all-zero (masked) steps at the end and in between.
    """
    rng = np.random.default_rng(case_seed(case))
    xs = []
    for t in model.inputs:
        shape = (5,) + tuple(6 if d is None else d for d in t.shape[1:])
        if "int" in str(t.dtype):
            x = rng.integers(1, 9, shape).astype(np.int32)
            x[0, -2:] = 0
            x[1, :2] = 0
            x[2, 2] = 0
        else:
            x = rng.standard_normal(shape).astype(np.float32)
            if len(shape) == 3:
                x[0, -2:] = 0
                x[2, 1] = 0
        xs.append(x)
    return xs
