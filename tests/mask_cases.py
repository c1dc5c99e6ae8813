"""Masked models built the same way in Keras and fastrnn (needs only NumPy).

Each case is ``build(lib, dtype)`` with ``lib`` = ``keras`` or ``fastrnn``,
returning ``(model, inputs, loss, metrics)``: ``inputs`` says how to draw
each input ("float": padded (B, T, D) floats, ("ids", vocabulary): padded
indices), ``loss`` one per output, ``metrics`` for a single output.  The
masks come from Masking or Embedding(mask_zero=True) and reach the
recurrences and the losses through other layers, as Keras 3 passes them on.
tools/keras_fixtures/masks.py records Keras 3's numbers;
tests/test_masks.py compares.
"""
import numpy as np

B, T = 5, 6


def masking_sequence(lib, dtype):
    """Masking -> SimpleRNN(return_sequences) -> TimeDistributed(Dense): a per-step loss."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True)(L.Masking()(x))
    return lib.Model(x, L.TimeDistributed(L.Dense(1))(h)), ["float"], ["mse"], ["mae"]


def embedding_activation(lib, dtype):
    """Embedding(mask_zero) -> Activation -> SimpleRNN: the mask through another layer."""
    L = lib.layers
    ids = lib.Input((T,), dtype="int32")
    e = L.Activation("tanh")(L.Embedding(9, 3, mask_zero=True, dtype=dtype)(ids))
    out = L.Dense(1, activation="sigmoid")(L.SimpleRNN(4)(e))
    return lib.Model(ids, out), [("ids", 9)], ["binary_crossentropy"], ["accuracy"]


def embedding_dropout(lib, dtype):
    """Embedding(mask_zero) -> Dropout -> SimpleRNN(return_sequences) -> TimeDistributed."""
    L = lib.layers
    ids = lib.Input((T,), dtype="int32")
    e = L.Dropout(0.5, seed=3)(L.Embedding(9, 3, mask_zero=True, dtype=dtype)(ids))
    h = L.SimpleRNN(4, return_sequences=True)(e)
    return lib.Model(ids, L.TimeDistributed(L.Dense(1))(h)), [("ids", 9)], ["mse"], ["mae"]


def time_distributed_chain(lib, dtype):
    """Masking -> TimeDistributed(Dense) -> SimpleRNN(return_sequences) -> Dense (3-D)."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.TimeDistributed(L.Dense(3, activation="tanh"))(L.Masking()(x))
    h = L.SimpleRNN(4, return_sequences=True, activation="relu")(h)
    return lib.Model(x, L.Dense(2)(h)), ["float"], ["mae"], ["mse"]


def tagger(lib, dtype):
    """Embedding(mask_zero) -> SimpleRNN(return_sequences) -> softmax per step (a tagger)."""
    L = lib.layers
    ids = lib.Input((T,), dtype="int32")
    h = L.SimpleRNN(5, return_sequences=True)(L.Embedding(9, 4, mask_zero=True,
                                                          dtype=dtype)(ids))
    out = L.Dense(4, activation="softmax")(h)
    return (lib.Model(ids, out), [("ids", 9)], ["sparse_categorical_crossentropy"],
            ["sparse_categorical_accuracy"])


def backwards_sequence(lib, dtype):
    """go_backwards with return_sequences: the output is reversed, its mask is not (Keras)."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True, go_backwards=True)(L.Masking()(x))
    return lib.Model(x, L.Dense(1)(h)), ["float"], ["mse"], ["mae"]


def zero_backwards(lib, dtype):
    """zero_output_for_mask going backwards: 0 where the step processed is masked."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True, go_backwards=True,
                    zero_output_for_mask=True)(L.Masking()(x))
    return lib.Model(x, L.Dense(1)(h)), ["float"], ["mse"], ["mae"]


def bidirectional_sequence(lib, dtype):
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.Bidirectional(L.SimpleRNN(3, return_sequences=True))(L.Masking()(x))
    return lib.Model(x, L.Dense(1)(h)), ["float"], ["mse"], ["mae"]


def bidirectional_last(lib, dtype):
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    h = L.Bidirectional(L.SimpleRNN(3), merge_mode="sum")(L.Masking()(x))
    return lib.Model(x, L.Dense(1)(h)), ["float"], ["mse"], ["mae"]


def merged_masks(lib, dtype):
    """Add of two masked sequences (the OR of the masks) and a Concatenate with an
    unmasked one (all steps kept), as two outputs."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    ids = lib.Input((T,), dtype="int32")
    a = L.SimpleRNN(3, return_sequences=True)(L.Masking()(x))
    b = L.SimpleRNN(3, return_sequences=True)(L.Embedding(9, 2, mask_zero=True,
                                                          dtype=dtype)(ids))
    added = L.Dense(1)(L.Add()([a, b]))
    joined = L.Dense(1)(L.Concatenate()([a, L.Dense(2)(x)]))
    return lib.Model([x, ids], [added, joined]), ["float", ("ids", 9)], ["mse", "mae"], []


def time_concat(lib, dtype):
    """A masked and an unmasked sequence joined in time (Keras: ones for the unmasked)."""
    L = lib.layers
    x = lib.Input((T, 2), dtype=dtype)
    b = lib.Input((T, 2), dtype=dtype)
    joined = L.Concatenate(axis=1)([L.Masking()(x), b])
    h = L.SimpleRNN(3, return_sequences=True)(joined)
    return lib.Model([x, b], L.Dense(1)(h)), ["float", "float"], ["mse"], ["mae"]


CASES = {"masking_sequence": masking_sequence, "embedding_activation": embedding_activation,
         "embedding_dropout": embedding_dropout,
         "time_distributed_chain": time_distributed_chain, "tagger": tagger,
         "backwards_sequence": backwards_sequence,
         "bidirectional_sequence": bidirectional_sequence,
         "bidirectional_last": bidirectional_last, "merged_masks": merged_masks,
         "time_concat": time_concat, "zero_backwards": zero_backwards}


#: cases whose training differs by design (random dropout masks): no training steps
EVALUATE_ONLY = {"embedding_dropout"}


def pad(x, value=0):
    """Padding as real programs have it: after (row 0), before (row 1, pad_sequences'
    default), a hole (row 2), none (row 3); the last row is all padding when the
    batch has more rows."""
    x = x.copy()
    x[0, T - 2:] = value
    x[1, :3] = value
    x[2, 2] = value
    if len(x) > 4:
        x[4, :] = value
    return x


def draw_inputs(kinds, rng, all_masked_row=True):
    """One padded batch of B samples per input (ids: indices from 1, 0 is padding);
    every second input has its rows in reverse order (the masks of two inputs differ)."""
    xs = []
    for k, kind in enumerate(kinds):
        if kind == "float":
            x = rng.uniform(-1, 1, (B, T, 2))
        else:
            x = rng.integers(1, kind[1], (B, T)).astype(np.int32)
        x = pad(x)
        if not all_masked_row:
            x[4] = 0.5 if kind == "float" else rng.integers(1, 3, x[4].shape)
        xs.append(np.ascontiguousarray(x[::-1]) if k % 2 else x)
    return xs


def targets_for(loss, prediction, rng):
    """Targets of the loss's kind for a prediction of this shape."""
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, prediction.shape[-1], prediction.shape[:-1] + (1,)).astype(
            np.float64)
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, prediction.shape).astype(np.float64)
    return rng.uniform(-1, 1, prediction.shape)
