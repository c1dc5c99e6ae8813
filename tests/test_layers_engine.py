"""Every layer on the engine, through the models users build, against the NumPy reference.

For each layer a small functional model containing it: predictions, the loss
and every gradient (training mode: dropout on, its masks known to the
reference) float64 tight, two epochs of fit step by step, float32 against
float64 loosely, and finite differences of the whole model.  Then what each
layer promises on its own: Dropout's training-only inverted scaling and its
seeded masks, Embedding's indices (integers, floats truncated, out of range
refused before anything runs, repeated rows adding up), TimeDistributed's
weights, the shape rules of Flatten/Reshape/RepeatVector and the merges.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn import layers as L
from fastrnn.reference import graph as ref

from finite_diff import check_gradient
from model_graphs import graph_of, weights_back
from tolerances import assert_close, tol

F64 = np.dtype(np.float64)
REL = tol("finite_difference", np.float64)["rel"]


def seq_input(T=4, D=2, dtype="float64"):
    return keras.Input((T, D), dtype=dtype)


def m_activation(dtype):
    x = seq_input(dtype=dtype)
    h = L.Dense(3)(x)
    outs = [L.Activation(a)(h) for a in ("tanh", "softmax", "sigmoid", "log_softmax", "elu")]
    return keras.Model(x, [L.Flatten()(o) for o in outs[:1]] + outs[1:])


def m_dropout(dtype):
    x = seq_input(dtype=dtype)
    h = L.SimpleRNN(5, return_sequences=True)(x)
    h = L.Dropout(0.4, seed=7)(h)
    h = L.SimpleRNN(3)(h)
    return keras.Model(x, L.Dense(2)(L.Dropout(0.25, seed=-3)(h)))


def m_flatten_reshape(dtype):
    x = seq_input(dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True, go_backwards=True)(x)
    flat = L.Flatten()(h)                                     # (4*3,)
    again = L.Reshape((6, 2))(flat)                           # a new sequence
    h2 = L.SimpleRNN(2)(again)
    back = L.Reshape((-1,))(again)
    return keras.Model(x, [L.Dense(1)(flat), h2, L.Dense(2)(back)])


def m_repeat(dtype):
    x = seq_input(dtype=dtype)
    code = L.SimpleRNN(4)(x)
    dec = L.SimpleRNN(3, return_sequences=True)(L.RepeatVector(5)(code))
    return keras.Model(x, L.TimeDistributed(L.Dense(2, activation="tanh"))(dec))


def m_concat(dtype):
    a, b = seq_input(dtype=dtype), keras.Input((3,), dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True)(a)
    joined = L.Concatenate()([h, a, L.Dense(2)(a)])           # features (2 need gradients)
    in_time = L.Concatenate(axis=1)([h, L.Dense(3)(a)])       # time
    last = L.SimpleRNN(2)(in_time)
    return keras.Model([a, b], [L.Dense(1)(L.Concatenate()([last, b])),
                                L.Dense(2)(joined)])


@pytest.fixture(params=["add", "subtract", "multiply", "average"])
def merge(request):
    return request.param


def m_merges(dtype, kind="add"):
    x = seq_input(dtype=dtype)
    a = L.Dense(3, activation="tanh")(x)
    b = L.SimpleRNN(3, return_sequences=True)(x)
    c = L.Dense(3)(x)
    cls = {"add": L.Add, "subtract": L.Subtract, "multiply": L.Multiply,
           "average": L.Average}[kind]
    merged = cls()([a, b]) if kind == "subtract" else cls()([a, b, c])
    return keras.Model(x, L.Dense(1)(L.SimpleRNN(2)(merged)))


def m_embedding(dtype):
    ids = keras.Input((5,), dtype="int32")
    other = keras.Input((2,), dtype=dtype)
    e = L.Embedding(6, 3)(ids)
    h = L.SimpleRNN(4)(e)
    return keras.Model([ids, other], L.Dense(1)(L.Concatenate()([h, other])))


def m_return_state(dtype):
    x = seq_input(dtype=dtype)
    seqs, state = L.SimpleRNN(3, return_sequences=True, return_state=True)(x)
    out, state2 = L.SimpleRNN(2, return_state=True, go_backwards=True)(seqs)
    return keras.Model(x, [L.Dense(1)(state), out, state2])


def m_rnn_dropout(dtype):
    """SimpleRNN's own dropout: both masks, going backwards; only the
    recurrent one; only the input one (a seed beyond int64)."""
    x = seq_input(dtype=dtype)
    h = L.SimpleRNN(5, dropout=0.3, recurrent_dropout=0.4, seed=11, return_sequences=True,
                    go_backwards=True)(x)
    h = L.SimpleRNN(3, recurrent_dropout=0.5, seed=2)(h)
    h2 = L.SimpleRNN(2, dropout=0.5, seed=2**63 + 4, return_sequences=True)(x)
    return keras.Model(x, [L.Dense(2)(h), h2])


def m_bidirectional(dtype, mode="concat", dropout=0.0):
    x = seq_input(dtype=dtype)
    seq = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode=mode)(x)
    if mode is None:
        seq = L.Concatenate()(seq)
    last = L.Bidirectional(L.SimpleRNN(2, dropout=dropout, recurrent_dropout=dropout, seed=5),
                           merge_mode=mode)(seq)
    if mode is None:
        return keras.Model(x, [L.Dense(1)(last[0]), last[1]])
    return keras.Model(x, L.Dense(1)(last))


def m_initial_state(dtype):
    """initial_state=: an Input (no gradient) and a computed state (a gradient
    to the Dense that makes it, also read elsewhere), going backwards too."""
    x, s0 = seq_input(dtype=dtype), keras.Input((3,), dtype=dtype)
    h = L.SimpleRNN(3, return_sequences=True)(x, initial_state=s0)
    code = L.Dense(2, activation="tanh")(L.SimpleRNN(3)(h))
    out = L.SimpleRNN(2, go_backwards=True, recurrent_dropout=0.3, seed=8)(
        h, initial_state=[code])
    return keras.Model([x, s0], [L.Dense(1)(out), code])


BUILDERS = {"activation": m_activation, "initial_state": m_initial_state, "dropout": m_dropout, "rnn_dropout": m_rnn_dropout,
            "bidirectional": lambda dtype: m_bidirectional(dtype, "concat", 0.3),
            "flatten_reshape": m_flatten_reshape, "repeat_time_distributed": m_repeat,
            "concatenate": m_concat, "embedding": m_embedding, "return_state": m_return_state}


def data_for(model, n, seed):
    rng = np.random.default_rng(seed)
    xs = []
    for t, emb in zip(model.inputs, model._input_ids):
        shape = (n,) + t.shape[1:]
        xs.append(rng.integers(0, emb.input_dim, shape) if emb is not None
                  else rng.uniform(-1, 1, shape))
    outs, _ = ref.forward(*graph_of(model), xs)
    return xs, [rng.uniform(-1, 1, o.shape) for o in outs]


def check_against_reference(model, dtype="float64", seed=0):
    keras.set_random_seed(seed)
    graph, weights = graph_of(model)
    xs, ys = data_for(model, 6, seed)
    dt = np.dtype(dtype)
    preds = model.predict(xs, verbose=0)
    preds = preds if isinstance(preds, list) else [preds]
    for got, want in zip(preds, ref.forward(graph, weights, xs)[0]):
        assert got.dtype == dt
        assert_close(got, want, "forward", dt)
    n_out = len(model.outputs)
    losses = (["mse", "mae"] * n_out)[:n_out]
    loss_weights = [1.0 + 0.5 * k for k in range(n_out)]
    model.compile("sgd", losses if n_out > 1 else losses[0],
                  loss_weights=loss_weights if n_out > 1 else None)
    total = model._loss_and_gradients(model._check_x(xs),
                                      model._check_y(ys, model._check_x(xs)))
    ref_total, _, ref_grads = ref.loss_and_gradients(graph, weights, xs, ys, losses,
                                                     loss_weights, training=True)
    assert_close(total, ref_total, "forward", dt)
    if dtype == "float64":
        want = np.concatenate([g.ravel() for g in weights_back(model, ref_grads)])
        assert_close(model.grads, want, "backward", dt)
    return graph, weights, xs, ys, losses, loss_weights


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layer_matches_the_reference(name, dtype):
    check_against_reference(BUILDERS[name](dtype), dtype)


def test_merges_match_the_reference(merge):
    check_against_reference(m_merges("float64", merge))


@pytest.mark.parametrize("name", ["dropout", "rnn_dropout", "bidirectional", "initial_state",
                                  "embedding",
                                  "concatenate", "return_state", "repeat_time_distributed"])
def test_fit_equals_the_reference_step_by_step(name):
    """Two epochs of fit (one compiled call per epoch; dropout masks drawn in
    the engine) against the reference's steps, bit-level tolerance."""
    keras.set_random_seed(5)
    model = BUILDERS[name]("float64")
    graph, weights = graph_of(model)
    xs, ys = data_for(model, 10, 1)
    n_out = len(model.outputs)
    loss_weights = [1.0 + k for k in range(n_out)]
    model.compile(keras.optimizers.SGD(0.05), "mse",
                  loss_weights=None if n_out == 1 else [1.0])
    if n_out > 1:
        model.compile(keras.optimizers.SGD(0.05), ["mse"] * n_out, loss_weights=loss_weights)
    history = model.fit(xs, ys if n_out > 1 else ys[0], batch_size=4, epochs=2, shuffle=False,
                        verbose=0)
    cuts = [slice(0, 4), slice(4, 8), slice(8, 10)]
    batches = [([x[c] for x in xs], [y[c] for y in ys]) for c in cuts] * 2
    ref_weights, ref_losses = ref.train(graph, weights, "sgd", {"learning_rate": 0.05},
                                        batches, "mse", loss_weights if n_out > 1 else None)
    epoch = [(4 * ref_losses[0] + 4 * ref_losses[1] + 2 * ref_losses[2]) / 10,
             (4 * ref_losses[3] + 4 * ref_losses[4] + 2 * ref_losses[5]) / 10]
    assert_close(history.history["loss"], epoch, "forward", F64)
    for got, want in zip(model.get_weights(), weights_back(model, ref_weights)):
        assert_close(got, want, "backward", F64)


@pytest.mark.parametrize("name", ["activation", "flatten_reshape", "concatenate", "embedding",
                                  "repeat_time_distributed", "return_state"])
def test_model_gradients_match_finite_differences(name):
    keras.set_random_seed(2)
    model = BUILDERS[name]("float64")
    xs, ys = data_for(model, 3, 2)
    model.compile("sgd", "mse" if len(model.outputs) == 1 else ["mse"] * len(model.outputs))
    x = model._check_x(xs)
    y = model._check_y(ys, x)
    model._loss_and_gradients(x, y)
    grads = model.grads.copy()

    def loss():
        value = model.evaluate(xs, ys if len(ys) > 1 else ys[0], batch_size=3, verbose=0)
        return value[0] if isinstance(value, list) else value

    for (wname, _, off), w in zip(model.param_layout, model.weights):
        check_gradient(loss, w, grads[off:off + w.size], REL, name=wname, max_coords=12)


# ---------------------------------------------------------------- Dropout

def dropout_model(rate, seed=0):
    x = keras.Input((50, 4), dtype="float64")
    return keras.Model(x, L.Dropout(rate, seed=seed)(x))


def test_dropout_is_the_identity_outside_training():
    model = dropout_model(0.5)
    x = np.random.default_rng(0).uniform(1, 2, (8, 50, 4))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    np.testing.assert_array_equal(model(x), x)
    np.testing.assert_array_equal(L.Dropout(0.5)(x), x)


def test_dropout_in_training_drops_and_rescales():
    x = np.ones((16, 50, 4))
    for rate in (0.2, 0.5, 0.9):
        out = L.Dropout(rate, seed=1)(x, training=True)
        kept = out != 0
        np.testing.assert_allclose(out[kept], 1 / (1 - rate))
        assert abs(kept.mean() - (1 - rate)) < 0.03        # 3200 draws
    np.testing.assert_array_equal(L.Dropout(0.0, seed=1)(x, training=True), x)
    np.testing.assert_array_equal(L.Dropout(1.0, seed=1)(x, training=True), 0 * x)


def test_dropout_masks_are_seeded_and_advance():
    x = np.ones((4, 6, 3))
    a, b = L.Dropout(0.5, seed=3), L.Dropout(0.5, seed=3)
    first = a(x, training=True)
    np.testing.assert_array_equal(first, b(x, training=True))     # same seed, same masks
    assert not np.array_equal(first, L.Dropout(0.5, seed=4)(x, training=True))
    assert not np.array_equal(first, a(x, training=True))          # the stream moves on
    keras.set_random_seed(9)
    c = L.Dropout(0.5)
    keras.set_random_seed(9)
    d = L.Dropout(0.5)
    np.testing.assert_array_equal(c(x, training=True), d(x, training=True))


def test_dropout_rate_is_checked():
    for rate in (-0.1, 1.5, "0.5", None, True):
        with pytest.raises(ValueError, match="rate"):
            L.Dropout(rate)
    with pytest.raises(NotImplementedError, match="noise_shape"):
        L.Dropout(0.5, noise_shape=(None, 1, 4))


# ---------------------------------------------------------------- Embedding

def embedding_model(dim=4, length=3):
    ids = keras.Input((length,), dtype="int64")
    return keras.Model(ids, L.Embedding(dim, 2, name="emb")(ids))


def test_embedding_reads_rows_of_its_table():
    model = embedding_model()
    table = model.get_layer("emb").embeddings
    assert table.shape == (4, 2)
    idx = np.array([[0, 3, 3], [2, 1, 0]])
    np.testing.assert_array_equal(model.predict(idx, verbose=0), table[idx])
    # floats are truncated toward zero, as Keras's cast to int32
    np.testing.assert_array_equal(model.predict(idx + 0.7, verbose=0), table[idx])
    np.testing.assert_array_equal(model.predict(np.array([[-0.5, 0.9, 3.99]]), verbose=0),
                                  table[[[0, 0, 3]]])
    layer = L.Embedding(4, 2, weights=[np.arange(8.0).reshape(4, 2)], input_length=3)
    np.testing.assert_array_equal(layer(np.array([[1, 2]])), [[[2, 3], [4, 5]]])
    np.testing.assert_array_equal(layer.get_weights()[0], np.arange(8.0).reshape(4, 2))


@pytest.mark.parametrize("bad", [4, -1, 7.5, -1.0, np.nan, np.inf, 2**40])
def test_embedding_index_out_of_range_is_refused_before_anything_runs(bad):
    model = embedding_model()
    model.compile("sgd", "mse")
    before = model.get_weights()
    idx = np.array([[0, 1, 2], [1, bad, 0]], dtype=np.float64)
    for call in (lambda: model.predict(idx, verbose=0),
                 lambda: model.fit(idx, np.zeros((2, 3, 2)), verbose=0),
                 lambda: model.evaluate(idx, np.zeros((2, 3, 2)), verbose=0),
                 lambda: model.get_layer("emb")(idx)):
        with pytest.raises(ValueError, match="input_dim=4"):
            call()
    for w, v in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, v)


def test_embedding_gradient_adds_repeated_rows():
    ids = keras.Input((4,), dtype="int32")
    model = keras.Model(ids, L.Embedding(5, 3)(ids))
    model.compile("sgd", "mse")
    idx = np.array([[1, 1, 4, 1], [4, 0, 1, 1]])
    y = np.random.default_rng(0).uniform(size=(2, 4, 3))
    x = model._check_x(idx)
    model._loss_and_gradients(x, model._check_y(y, x))
    table = model.get_weights()[0]
    dy = 2 * (table[idx] - y) / y.size
    want = np.zeros_like(table)
    np.add.at(want, idx.reshape(-1), dy.reshape(-1, 3))
    np.testing.assert_allclose(model.grads.reshape(5, 3), want, rtol=1e-6, atol=1e-8)
    assert np.all(model.grads.reshape(5, 3)[[2, 3]] == 0)          # rows never read


def test_a_sequential_text_model_builds_from_integer_data():
    """The IMDB-style stack: Embedding first, no input shape, fit on integer arrays."""
    keras.set_random_seed(0)
    model = keras.Sequential([L.Embedding(50, 8), L.SimpleRNN(6), L.Dense(1)])
    rng = np.random.default_rng(0)
    X = rng.integers(0, 50, (40, 7))
    model.compile("rmsprop", "mse")
    history = model.fit(X, rng.uniform(size=40), epochs=3, verbose=0)
    assert model.input_shape == (None, 7) and model.output_shape == (None, 1)
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(ValueError, match="input_dim=50"):
        model.predict(X + 50, verbose=0)


def test_embedding_mask_zero_reaches_the_loss_through_a_dense():
    """Dense passes the mask on (Keras): index-0 steps count in no loss."""
    keras.set_random_seed(3)
    ids = keras.Input((3,), dtype="int32")
    model = keras.Model(ids, L.Dense(2)(L.Embedding(5, 2, mask_zero=True)(ids)))
    model.compile("sgd", "mse")
    x = np.array([[1, 2, 0], [0, 3, 4]])
    y = np.random.default_rng(0).uniform(size=(2, 3, 2)).astype(np.float32)
    p = model.predict(x, verbose=0)
    kept = x != 0
    want = ((p - y) ** 2).mean(-1)[kept].mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_embedding_mask_zero_matches_the_reference(go_backwards):
    """Index 0 masks the step (padding before, after, in between, everywhere)."""
    keras.set_random_seed(8)
    ids = keras.Input((6,), dtype="int32")
    e = L.Embedding(5, 3, mask_zero=True)(ids)
    seq = L.SimpleRNN(3, return_sequences=True, go_backwards=go_backwards)(e)
    model = keras.Model(ids, [L.Dense(1)(L.SimpleRNN(2)(seq)), L.SimpleRNN(2)(e)])
    graph, weights = graph_of(model)
    x = np.random.default_rng(0).integers(0, 5, (7, 6))
    x[0] = 0
    x[1, 3:] = 0
    x[2, :4] = 0
    outs, _ = ref.forward(graph, weights, [x])
    ys = [np.random.default_rng(2).uniform(-1, 1, o.shape) for o in outs]
    for got, want in zip(model.predict(x, verbose=0), outs):
        assert_close(got, want, "forward", F64 if got.dtype == F64 else got.dtype)
    model.compile("sgd", ["mse", "mse"])
    xc = model._check_x([x])
    model._loss_and_gradients(xc, model._check_y(ys, xc))
    _, _, ref_grads = ref.loss_and_gradients(graph, weights, [x], ys, ["mse", "mse"], None,
                                             training=True)
    want = np.concatenate([g.ravel() for g in weights_back(model, ref_grads)])
    assert_close(model.grads, want, "backward", model.grads.dtype)


# ---------------------------------------------------------------- shapes and wrappers

def test_time_distributed_dense_is_a_dense_on_every_step():
    keras.set_random_seed(1)
    x = keras.Input((5, 3), dtype="float64")
    td = L.TimeDistributed(L.Dense(2, activation="tanh"))
    model = keras.Model(x, td(x))
    assert td.weight_names == ["kernel", "bias"] and td.layer.kernel is not None
    assert [n for n, _, _ in model.param_layout] == ["time_distributed/kernel",
                                                     "time_distributed/bias"]
    np.testing.assert_array_equal(td.layer.kernel, td.kernel)
    xv = np.random.default_rng(0).uniform(size=(3, 5, 3))
    np.testing.assert_allclose(model.predict(xv, verbose=0),
                               np.tanh(xv @ td.kernel + td.bias), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="TimeDistributed"):
        L.TimeDistributed(L.SimpleRNN(2))


@pytest.mark.parametrize("make, shape, error", [
    (lambda t: L.Flatten()(t), (None, 3), "steps must be known"),
    (lambda t: L.Reshape((5, 5))(t), (4, 3), "cannot reshape"),
    (lambda t: L.Reshape((-1, -1))(t), (4, 3), "one -1"),
    (lambda t: L.RepeatVector(2)(t), (4, 3), "rank 2"),
    (lambda t: L.Add()([t, L.Dense(2)(t)]), (4, 3), "axis 2 differs"),
    (lambda t: L.Concatenate()([t, L.Reshape((3, 4))(L.Flatten()(t))]), (4, 3), "matching"),
    (lambda t: L.Subtract()([t, t, t]), (4, 3), "exactly 2"),
    (lambda t: L.Concatenate(axis=0)([t, t]), (4, 3), "axis=0"),
])
def test_shape_rules_are_checked_when_the_graph_is_made(make, shape, error):
    t = keras.Input(shape)
    with pytest.raises(ValueError, match=error):
        keras.Model(t, make(t))


# ---------------------------------------------------------------- SimpleRNN dropout

def test_rnn_dropout_is_training_only_and_one_mask_per_sequence():
    """Keras's masks: off in predict; in training the input mask is one (B, D)
    mask for every step, so a sequence of equal steps sees equal inputs; the
    stream moves on from batch to batch."""
    x = keras.Input((6, 4), dtype="float64")
    rnn = L.SimpleRNN(3, dropout=0.5, seed=1, return_sequences=True,
                      kernel_initializer="ones", recurrent_initializer="zeros")
    model = keras.Model(x, rnn(x))
    data = np.ones((8, 6, 4))
    plain = np.tanh(4.0) * np.ones((8, 6, 3))
    assert_close(model.predict(data, verbose=0), plain, "forward", F64)
    first = model(data, training=True)
    # zero recurrent kernel: each step's state is tanh(sum of the kept inputs * 2)
    kept = np.arctanh(first[:, :, 0]) / 2
    np.testing.assert_allclose(kept, kept[:, :1] * np.ones((1, 6)), atol=1e-12)
    assert set(np.round(kept.ravel(), 6)) <= {0, 1, 2, 3, 4}
    assert len(set(np.round(kept[:, 0], 6))) > 1            # the mask differs by sequence
    assert not np.array_equal(first, model(data, training=True))


def test_rnn_dropout_rates_are_checked():
    for name in ("dropout", "recurrent_dropout"):
        for rate in (-0.1, 1.5, "0.5", None, True):
            with pytest.raises(ValueError, match=name):
                L.SimpleRNN(2, **{name: rate})


# ---------------------------------------------------------------- Bidirectional

@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merges_match_the_reference(mode):
    check_against_reference(m_bidirectional("float64", mode))


@pytest.mark.parametrize("mode", ["concat", None])
def test_bidirectional_gradients_match_finite_differences(mode):
    keras.set_random_seed(3)
    model = m_bidirectional("float64", mode)
    xs, ys = data_for(model, 3, 2)
    n_out = len(model.outputs)
    model.compile("sgd", "mse" if n_out == 1 else ["mse"] * n_out)
    x = model._check_x(xs)
    model._loss_and_gradients(x, model._check_y(ys, x))
    grads = model.grads.copy()

    def loss():
        value = model.evaluate(xs, ys if n_out > 1 else ys[0], batch_size=3, verbose=0)
        return value[0] if isinstance(value, list) else value

    for (wname, _, off), w in zip(model.param_layout, model.weights):
        check_gradient(loss, w, grads[off:off + w.size], REL, name=wname, max_coords=12)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_is_keras_two_layers_and_a_concatenation(return_sequences):
    """Keras's definition: [forward(x), backward(x)], the backward layer going
    backwards, its returned sequence flipped back to input order; weights
    forward's then backward's."""
    keras.set_random_seed(4)
    x = keras.Input((5, 2), dtype="float64")
    bi = L.Bidirectional(L.SimpleRNN(3, return_sequences=return_sequences))
    model = keras.Model(x, bi(x))
    assert [w.shape for w in model.get_weights()] == [(2, 3), (3, 3), (3,)] * 2
    fwd = L.SimpleRNN(3, return_sequences=return_sequences)
    bwd = L.SimpleRNN(3, return_sequences=return_sequences, go_backwards=True)
    m_f, m_b = keras.Model(x, fwd(x)), keras.Model(x, bwd(x))
    w = model.get_weights()
    m_f.set_weights(w[:3])
    m_b.set_weights(w[3:])
    data = np.random.default_rng(0).uniform(-1, 1, (4, 5, 2))
    back = m_b.predict(data, verbose=0)
    want = np.concatenate([m_f.predict(data, verbose=0),
                           back[:, ::-1] if return_sequences else back], axis=-1)
    assert_close(model.predict(data, verbose=0), want, "forward", F64)


def test_bidirectional_arguments_are_checked():
    with pytest.raises(TypeError, match="SimpleRNN"):
        L.Bidirectional(L.Dense(2))
    with pytest.raises(ValueError, match="merge_mode"):
        L.Bidirectional(L.SimpleRNN(2), merge_mode="max")


# ---------------------------------------------------------------- initial_state

def test_initial_state_gradients_match_finite_differences():
    keras.set_random_seed(6)
    x, s0 = seq_input(), keras.Input((3,), dtype="float64")
    code = L.Dense(2, activation="tanh")(s0)
    out = L.SimpleRNN(2, go_backwards=True)(x, initial_state=code)
    model = keras.Model([x, s0], L.Dense(1)(out))
    xs, ys = data_for(model, 3, 2)
    model.compile("sgd", "mse")
    xc = model._check_x(xs)
    model._loss_and_gradients(xc, model._check_y(ys, xc))
    grads = model.grads.copy()
    for (wname, _, off), w in zip(model.param_layout, model.weights):
        check_gradient(lambda: model.evaluate(xs, ys[0], batch_size=3, verbose=0), w,
                       grads[off:off + w.size], REL, name=wname, max_coords=12)


def test_initial_state_is_checked():
    x = seq_input()
    with pytest.raises(ValueError, match="initial_state"):
        L.SimpleRNN(3)(x, initial_state=keras.Input((2,)))
    with pytest.raises(ValueError, match="initial_state"):
        L.SimpleRNN(3)(x, initial_state=np.zeros((1, 3)))


# ---------------------------------------------------------------- Masking

def m_masking(dtype="float64", dropout=0.0):
    x = keras.Input((6, 2), dtype=dtype)
    m = L.Masking(0.0)(x)
    seq = L.SimpleRNN(3, return_sequences=True, go_backwards=True, recurrent_dropout=dropout,
                      seed=3)(m)
    last = L.SimpleRNN(4, dropout=dropout, seed=4)(L.Masking(0.0)(L.Dense(2)(seq)))
    return keras.Model(x, [L.Dense(1)(last), L.Dense(2)(L.SimpleRNN(2)(m))])


def padded(n, seed):
    """Sequences with masked steps: post-padded, pre-padded, holes, all masked."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 6, 2))
    for i in range(n):
        cut = rng.integers(1, 6)
        if i % 3 == 0:
            x[i, cut:] = 0
        elif i % 3 == 1:
            x[i, :cut] = 0
        else:
            x[i, cut] = 0
    x[0] = 0
    return x


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_masking_matches_the_reference(dropout):
    keras.set_random_seed(7)
    model = m_masking(dropout=dropout)
    graph, weights = graph_of(model)
    xs = [padded(7, 1)]
    outs, _ = ref.forward(graph, weights, xs)
    ys = [np.random.default_rng(2).uniform(-1, 1, o.shape) for o in outs]
    for got, want in zip(model.predict(xs, verbose=0), outs):
        assert_close(got, want, "forward", F64)
    model.compile("sgd", ["mse", "mae"])
    x = model._check_x(xs)
    total = model._loss_and_gradients(x, model._check_y(ys, x))
    ref_total, _, ref_grads = ref.loss_and_gradients(graph, weights, xs, ys, ["mse", "mae"],
                                                     None, training=True)
    assert_close(total, ref_total, "forward", F64)
    want = np.concatenate([g.ravel() for g in weights_back(model, ref_grads)])
    assert_close(model.grads, want, "backward", F64)


def test_masked_steps_are_skipped_as_if_absent():
    """A post-padded sequence gives the state of its unpadded steps; a
    pre-padded one too (the padding never enters the recurrence)."""
    keras.set_random_seed(1)
    x = keras.Input((None, 2), dtype="float64")
    rnn = L.SimpleRNN(3)
    model = keras.Model(x, rnn(L.Masking()(x)))
    plain = keras.Model(x, L.SimpleRNN(3)(x))
    plain.set_weights(model.get_weights())
    seq = np.random.default_rng(0).uniform(-1, 1, (1, 4, 2))
    pad = np.zeros((1, 3, 2))
    want = plain.predict(seq, verbose=0)
    for data in (np.concatenate([seq, pad], 1), np.concatenate([pad, seq], 1)):
        assert_close(model.predict(data, verbose=0), want, "forward", F64)
