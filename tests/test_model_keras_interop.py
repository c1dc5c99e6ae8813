"""Side by side with Keras 3 (JAX backend); skipped where keras is not installed.

CI installs keras and jax (CPU) for it.  Locally, in a separate environment:
``pip install keras jax jaxlib`` and run with ``KERAS_BACKEND=jax``.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import fastrnn  # noqa: E402
from fastrnn.data import make_sequences  # noqa: E402

# float32 on both sides; a few Adam steps accumulate round-off differently.
RTOL, ATOL = 1e-4, 1e-5


def pair(build):
    keras.utils.set_random_seed(0)
    k = build(keras)
    f = build(fastrnn)
    f.set_weights(k.get_weights())
    return k, f


def tutorial(lib):
    return lib.Sequential([lib.Input((3, 1)), lib.layers.SimpleRNN(20), lib.layers.Dense(1)])


def stacked(lib):
    return lib.Sequential([
        lib.Input((5, 2)),
        lib.layers.SimpleRNN(4, return_sequences=True, go_backwards=True, activation="relu"),
        lib.layers.SimpleRNN(3, return_sequences=True),
        lib.layers.Dense(2, activation="sigmoid"),
    ])


def test_same_weight_layout_and_predictions():
    k, f = pair(tutorial)
    assert [w.shape for w in k.get_weights()] == [w.shape for w in f.get_weights()]
    assert k.count_params() == f.count_params() == 461
    X, _ = make_sequences()
    np.testing.assert_allclose(f.predict(X, verbose=0), k.predict(X, verbose=0),
                               rtol=RTOL, atol=ATOL)
    k.set_weights(f.get_weights())  # and back
    np.testing.assert_allclose(f.predict(X, verbose=0), k.predict(X, verbose=0),
                               rtol=RTOL, atol=ATOL)


def test_go_backwards_many_to_many_predictions():
    k, f = pair(stacked)
    x = np.random.default_rng(0).standard_normal((7, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(f.predict(x, verbose=0), k.predict(x, verbose=0),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("make_opt", [
    lambda lib: lib.optimizers.Adam(),
    lambda lib: lib.optimizers.Adam(0.01, amsgrad=True),
    lambda lib: lib.optimizers.Adam(0.01, global_clipnorm=0.05),
    lambda lib: lib.optimizers.SGD(0.001, momentum=0.9, nesterov=True, clipnorm=0.5),
])
def test_fit_trajectory_and_reported_loss(make_opt):
    k, f = pair(tutorial)
    X, Y = make_sequences()
    k.compile(optimizer=make_opt(keras), loss="mse")
    f.compile(optimizer=make_opt(fastrnn), loss="mse")
    hk = k.fit(X, Y, epochs=5, shuffle=False, verbose=0, validation_split=0.2)
    hf = f.fit(X, Y, epochs=5, shuffle=False, verbose=0, validation_split=0.2)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(hf.history[key], hk.history[key], rtol=RTOL)
    for a, b in zip(f.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    assert f.evaluate(X, Y, verbose=0) == pytest.approx(k.evaluate(X, Y, verbose=0), rel=RTOL)


def test_mae_many_to_many_fit():
    k, f = pair(stacked)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5, 2)).astype(np.float32)
    y = rng.uniform(size=(7, 5, 2)).astype(np.float32)
    k.compile(optimizer=keras.optimizers.Adam(0.01, clipvalue=0.01), loss="mae")
    f.compile(optimizer=fastrnn.optimizers.Adam(0.01, clipvalue=0.01), loss="mae")
    hk = k.fit(x, y, batch_size=3, epochs=4, shuffle=False, verbose=0)
    hf = f.fit(x, y, batch_size=3, epochs=4, shuffle=False, verbose=0)
    np.testing.assert_allclose(hf.history["loss"], hk.history["loss"], rtol=RTOL)


def test_summary_counts_match(capsys):
    k, f = pair(tutorial)
    f.summary()
    ours = capsys.readouterr().out
    k.summary()
    theirs = capsys.readouterr().out
    for text in ("Total params: 461 (1.80 KB)", "Trainable params: 461 (1.80 KB)",
                 "Non-trainable params: 0 (0.00 B)", "440", "21", "(None, 20)", "(None, 1)"):
        assert text in ours and text in theirs


# ---------------------------------------------------------------------------
# .keras files both ways, live (issue 12): needs h5py too

@pytest.mark.parametrize("build", [tutorial, stacked])
def test_a_fastrnn_file_loads_in_keras_with_the_same_predictions(build, tmp_path):
    pytest.importorskip("h5py")
    fastrnn.set_random_seed(3)
    model = build(fastrnn)
    x = np.random.default_rng(0).uniform(-1, 1, (6,) + model.input_shape[1:]).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for w, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)


@pytest.mark.parametrize("build", [tutorial, stacked])
def test_a_keras_file_loads_in_fastrnn_with_the_same_predictions(build, tmp_path):
    pytest.importorskip("h5py")
    keras.utils.set_random_seed(4)
    model = build(keras)
    x = np.random.default_rng(0).uniform(-1, 1, (6,) + model.input_shape[1:]).astype(np.float32)
    model.save(tmp_path / "k.keras")
    loaded = fastrnn.models.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for w, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)


# -- functional models and every layer, live (the cases of tools/keras_fixtures/cases.py) --
def _graph_cases():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "keras_fixtures" / "cases.py"
    spec = importlib.util.spec_from_file_location("keras_fixture_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _graph_cases()


def _outputs(model, xs):
    out = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("case", sorted(CASES.GRAPH_CASES))
def test_graph_case_fastrnn_file_in_keras(case, tmp_path):
    pytest.importorskip("h5py")
    fastrnn.clear_session()
    fastrnn.set_random_seed(CASES.case_seed(case) + 1)
    model = CASES.GRAPH_CASES[case](fastrnn)
    model.set_weights([w + 0.1 for w in model.get_weights()])
    xs = CASES.graph_inputs(model, case)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(_outputs(loaded, xs), _outputs(model, xs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(loaded.get_weights()) == len(model.get_weights())
    for w, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)
    clone = keras.models.clone_model(loaded)
    clone.load_weights(tmp_path / "m.weights.h5")
    for w, v in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)


@pytest.mark.parametrize("case", sorted(CASES.GRAPH_CASES))
def test_graph_case_keras_file_in_fastrnn(case, tmp_path):
    pytest.importorskip("h5py")
    keras.utils.set_random_seed(CASES.case_seed(case) + 2)
    model = CASES.GRAPH_CASES[case](keras)
    model.set_weights([w + 0.1 for w in model.get_weights()])
    xs = CASES.graph_inputs(model, case)
    model.save(tmp_path / "k.keras")
    model.save_weights(tmp_path / "k.weights.h5")
    loaded = fastrnn.models.load_model(tmp_path / "k.keras")
    for a, b in zip(_outputs(loaded, xs), _outputs(model, xs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for w, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)
    loaded.set_weights([w * 0 for w in loaded.get_weights()])
    loaded.load_weights(tmp_path / "k.weights.h5")
    for w, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(w, v)
