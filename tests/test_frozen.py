"""Frozen weights (``layer.trainable = False``, ``model.trainable = False``), as Keras 3.

A frozen weight is left bitwise unchanged by training (no optimizer step, no
weight decay, its optimizer slots kept), its regularizer adds no penalty, and
clipping sees only the trainable gradients (Keras builds its optimizer on
``trainable_variables`` and computes gradients for those alone).  The
trainable weights follow Keras's optimizer formulas (the NumPy reference,
``fastrnn.reference.optimizers``) applied to the trainable variables only,
on the gradient the engine computed at the same weights.
"""
import numpy as np
import pytest

import fastrnn as keras
from fastrnn import optimizers
from fastrnn.reference.optimizers import apply_gradients, init_state

L = keras.layers

OPTIMIZERS = [
    ("adam", {"learning_rate": 0.05}),
    ("adam", {"learning_rate": 0.05, "amsgrad": True}),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 0.2}),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 0.2, "global_clipnorm": 0.05}),
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 0.5, "global_clipnorm": 0.05}),
    ("sgd", {"learning_rate": 0.5, "clipvalue": 0.01}),
    ("adam", {"learning_rate": 0.05, "clipnorm": 0.05}),
    ("rmsprop", {"learning_rate": 0.05, "momentum": 0.5, "centered": True}),
    ("adagrad", {"learning_rate": 0.1}),
]
_CLASSES = {"adam": optimizers.Adam, "adamw": optimizers.AdamW, "sgd": optimizers.SGD,
            "rmsprop": optimizers.RMSprop, "adagrad": optimizers.Adagrad}


def rnn_model(seed=0, dtype="float64", **rnn_kwargs):
    keras.set_random_seed(seed)
    return keras.Sequential([keras.Input((4, 2), dtype=dtype),
                             L.SimpleRNN(3, name="rnn", **rnn_kwargs), L.Dense(2, name="d")])


def data(seed=0, n=8, dtype="float64"):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 4, 2)).astype(dtype),
            rng.standard_normal((n, 2)).astype(dtype))


def ranges(model, layer_name):
    """(element mask of the layer's weights in params, sizes of its variables)."""
    mask = np.zeros(model.params.size, bool)
    sizes = []
    base = model.params.ctypes.data
    for w in model.get_layer(layer_name).weights:       # live views into params
        off = (w.ctypes.data - base) // w.itemsize
        mask[off:off + w.size] = True
        sizes.append(w.size)
    assert mask.any()
    return mask, sizes


@pytest.mark.parametrize("frozen_layer", ["rnn", "d"])
@pytest.mark.parametrize("name,config", OPTIMIZERS)
def test_frozen_weights_stay_bitwise_and_the_others_follow_keras(name, config, frozen_layer):
    model = rnn_model()
    model.get_layer(frozen_layer).trainable = False
    model.compile(optimizer=_CLASSES[name](**config), loss="mse")
    x, y = data()
    frozen, _ = ranges(model, frozen_layer)
    trainable = ~frozen
    sizes = ranges(model, "d" if frozen_layer == "rnn" else "rnn")[1]
    start = model.params.copy()
    p = model.params[trainable].copy()
    state = init_state(name, p, **{k: v for k, v in config.items()
                                   if k in ("amsgrad", "momentum", "centered")})
    for t in range(4):
        xt, yt = x * (1 + 0.3 * t), y - 0.2 * t
        model._loss_and_gradients(xt, yt)
        g = model.grads.copy()
        if "clip" in " ".join(config) and t == 0:     # the clip bites, and only the
            c = config.get("global_clipnorm", config.get("clipnorm", config.get("clipvalue")))
            assert np.abs(g[trainable]).max() > c       # trainable gradients count
            assert np.linalg.norm(g[frozen]) > 0.01
        np.testing.assert_allclose(model.params[trainable], p, rtol=1e-11, atol=1e-13)
        model._train_batch(xt, yt)
        p, state, _ = apply_gradients(name, p, g[trainable], state, t, config, sizes=sizes)
        np.testing.assert_allclose(model.params[trainable], p, rtol=1e-10, atol=1e-12)
        assert np.array_equal(model.params[frozen], start[frozen])
    assert model.optimizer.iterations == 4
    assert not np.array_equal(model.params[trainable], start[trainable])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_leaves_a_frozen_layer_bitwise_unchanged(dtype):
    model = rnn_model(dtype=dtype)
    model.layers[0].trainable = False
    model.compile(optimizer=optimizers.AdamW(0.05, weight_decay=0.5), loss="mse")
    x, y = data(dtype=dtype, n=24)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=3, batch_size=5, verbose=0)
    after = model.get_weights()
    assert [np.array_equal(a, b) for a, b in zip(before, after)] == [True] * 3 + [False] * 2


def test_frozen_after_training_keeps_its_weights_and_optimizer_slots():
    # momentum left over from training must not move a weight frozen afterwards
    model = rnn_model()
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="mse")
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    frozen, _ = ranges(model, "rnn")
    momentum = model.optimizer.slot("momentum")
    assert np.abs(momentum[frozen]).min() > 0
    model.layers[0].trainable = False
    params, slots = model.params.copy(), momentum.copy()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    assert np.array_equal(model.params[frozen], params[frozen])
    assert np.array_equal(model.optimizer.slot("momentum")[frozen], slots[frozen])
    assert not np.array_equal(model.params[~frozen], params[~frozen])
    model.layers[0].trainable = True              # unfrozen: it trains again
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(model.params[frozen], params[frozen])


def test_a_frozen_model_trains_nothing_even_with_a_layer_set_trainable_again():
    model = rnn_model()
    model.trainable = False
    model.layers[1].trainable = True          # Keras: the model's flag still wins
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 5
    model.compile(optimizer="adam", loss="mse")
    before = model.params.copy()
    model.fit(*data(), epochs=2, verbose=0)
    model.train_on_batch(*data())
    assert np.array_equal(model.params, before)
    model.trainable = True
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(*data())
    assert not np.array_equal(model.params, before)


def test_trainable_weights_lists_and_constructor_arguments():
    model = rnn_model()
    rnn, dense = model.layers
    assert len(model.trainable_weights) == 5 and model.non_trainable_weights == []
    rnn.trainable = False
    assert rnn.trainable_weights == [] and len(rnn.non_trainable_weights) == 3
    assert [w.shape for w in model.trainable_weights] == [(3, 2), (2,)]
    assert [w.shape for w in model.non_trainable_weights] == [(2, 3), (3, 3), (3,)]
    assert model.trainable_weights[0] is not None and np.shares_memory(
        model.trainable_weights[0], dense.kernel)
    assert not L.Dense(2, trainable=False).trainable
    assert not keras.Sequential([L.Dense(1)], trainable=False).trainable
    inputs = keras.Input((3,))
    assert not keras.Model(inputs, L.Dense(1)(inputs), trainable=False).trainable
    with pytest.raises(TypeError, match="trainable"):
        L.Dense(2, trainable=None)


def test_summary_counts_trainable_and_non_trainable_params():
    model = rnn_model(dtype="float32")
    model.layers[0].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert " Total params: 26 (104.00 B)" in lines         # Keras's lines and bytes
    assert " Trainable params: 8 (32.00 B)" in lines
    assert " Non-trainable params: 18 (72.00 B)" in lines
    model.trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert " Trainable params: 0 (0.00 B)" in lines
    assert " Non-trainable params: 26 (104.00 B)" in lines


def test_a_frozen_weight_adds_no_regularizer_penalty():
    # Keras's model.losses regularizes model.trainable_weights only
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 2), dtype="float64"),
                              L.SimpleRNN(3, kernel_regularizer=keras.regularizers.L2(0.5)),
                              L.Dense(2, kernel_regularizer=keras.regularizers.L1(0.25))])
    x, y = data()
    assert len(model.losses) == 2
    model.layers[0].trainable = False
    assert len(model.losses) == 1
    penalty = 0.25 * np.abs(model.layers[1].kernel).sum()
    np.testing.assert_allclose(model.losses[0], penalty)
    model.compile(optimizer="sgd", loss="mse")
    mse = np.mean((model.predict(x, verbose=0) - y) ** 2)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), mse + penalty, rtol=1e-12)
    frozen = model.layers[0].get_weights()
    np.testing.assert_allclose(model.train_on_batch(x, y), mse + penalty, rtol=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, model.layers[0].get_weights()))
    model.layers[0].trainable = True              # the penalty is back
    mse = np.mean((model.predict(x, verbose=0) - y) ** 2)
    both = penalty = 0.5 * np.square(model.layers[0].kernel).sum() + 0.25 * np.abs(
        model.layers[1].kernel).sum()
    np.testing.assert_allclose(model.train_on_batch(x, y), mse + both, rtol=1e-12)


def test_wrapped_layers_freeze_with_their_wrapper_or_alone():
    keras.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 2), dtype="float64"),
                              L.Bidirectional(L.SimpleRNN(3, return_sequences=True)),
                              L.TimeDistributed(L.Dense(2))])
    bidi, td = model.layers
    bidi.forward_layer.trainable = False          # one direction only
    td.trainable = False
    assert not td.layer.trainable
    assert len(bidi.trainable_weights) == 3 and len(bidi.non_trainable_weights) == 3
    names = [n for n, _, _ in model.param_layout]
    model.compile(optimizer="adam", loss="mse")
    before = dict(zip(names, [w.copy() for w in model.get_weights()]))
    rng = np.random.default_rng(1)
    model.fit(rng.standard_normal((6, 4, 2)), rng.standard_normal((6, 4, 2)), epochs=2,
              verbose=0)
    after = dict(zip(names, model.get_weights()))
    changed = {n for n in names if not np.array_equal(before[n], after[n])}
    assert changed == {n for n in names if "backward" in n}, changed


def test_set_frozen_checks_its_segments():
    model = rnn_model()
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(*data())
    engine = model._trainer()
    n = model.params.size
    for offsets, lengths in [([-1], [2]), ([n - 1], [2]), ([0, 3], [5, 2]), ([0], [1, 2])]:
        with pytest.raises(ValueError, match="frozen|same length"):
            engine.set_frozen(offsets, lengths)
    engine.set_frozen([], [])


def test_frozen_layers_survive_get_config_and_keras_files(tmp_path):
    pytest.importorskip("h5py")
    model = rnn_model(dtype="float32")
    model.layers[0].trainable = False
    assert model.layers[0].get_config()["trainable"] is False
    assert not type(model.layers[0]).from_config(model.layers[0].get_config()).trainable
    path = str(tmp_path / "frozen.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert [layer.trainable for layer in again.layers] == [False, True]
    assert [w.shape for w in again.trainable_weights] == [(3, 2), (2,)]
    model.trainable = False
    model.save(path)
    again = keras.models.load_model(path)
    assert not again.layers[1].trainable and again.trainable_weights == []
