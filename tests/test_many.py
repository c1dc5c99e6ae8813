"""fit_many: many models trained in parallel equal the same models trained alone, bitwise.

"Alone" is the reference everywhere: ``set_random_seed(seed)``, build, ``fit``
in this thread, nothing else running.  The Dask tests need
``dask[distributed]`` (``pip install 'fastrnn[dask]'``) and skip without it.
"""
import importlib.util
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import fastrnn
from fastrnn import fit_many, initializers
from fastrnn.callbacks import EarlyStopping
from fastrnn.errors import NonFiniteTrainingError
from fastrnn.layers import Dense, SimpleRNN
from fastrnn.many import FitResult

EPOCHS = 4


def build(units=6, learning_rate=0.01):
    """A small tutorial-shaped model; no layer has a seed, so all randomness is scoped."""
    model = fastrnn.Sequential([SimpleRNN(units, input_shape=[5, 2]), Dense(1)])
    model.compile(optimizer=fastrnn.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def make_datasets(n, samples=37, seed=0):
    """n different (x, y) sets of shape (samples, 5, 2), (samples, 1); 37 = a ragged last batch."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((samples, 5, 2)).astype(np.float32)
        y = (x[:, :, 0].sum(axis=1, keepdims=True) * 0.3).astype(np.float32)
        out.append((x, y))
    return out


def alone(seed, x, y, config=None, **fit_kwargs):
    """The reference: one model, seeded globally, trained in this thread."""
    fastrnn.set_random_seed(seed)
    model = build(**(config or {}))
    history = model.fit(x, y, verbose=0, **{"epochs": EPOCHS, "batch_size": 8, **fit_kwargs})
    return model.get_weights(), history.history


def assert_same(result, weights, history):
    assert len(result.weights) == len(weights)
    for got, want in zip(result.weights, weights):
        assert got.dtype == want.dtype
        assert np.array_equal(got, want), "weights differ from the lone run"
    assert result.history == history
    assert result.loss == history["loss"][-1]


# -- the seed scope -------------------------------------------------------------------
def test_seed_scope_gives_each_thread_the_lone_stream():
    """Two threads drawing in lock-step inside their own scopes each get their seed's stream."""
    def stream(n):
        return [initializers._next_generator().integers(1 << 30) for _ in range(n)]

    fastrnn.set_random_seed(11)
    want = {s: None for s in (11, 12)}
    for s in want:
        fastrnn.set_random_seed(s)
        want[s] = stream(20)
    fastrnn.set_random_seed(99)
    global_next = initializers._global_rng.bit_generator.state
    got = {}
    barrier = threading.Barrier(2)

    def run(seed):
        with initializers._seed_scope(seed):
            values = []
            for _ in range(20):
                barrier.wait()      # interleave the two threads' draws
                values.extend(stream(1))
            got[seed] = values

    threads = [threading.Thread(target=run, args=(s,)) for s in want]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want
    assert initializers._global_rng.bit_generator.state == global_next   # untouched


def test_set_random_seed_inside_a_scope_reseeds_only_the_scope():
    fastrnn.set_random_seed(5)
    before = initializers._global_rng.bit_generator.state
    with initializers._seed_scope(1):
        fastrnn.set_random_seed(2)
        inside = initializers._next_generator().integers(1 << 30)
    assert initializers._global_rng.bit_generator.state == before
    fastrnn.set_random_seed(2)
    assert inside == initializers._next_generator().integers(1 << 30)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_seed_scope_rejects_bad_seeds(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        with initializers._seed_scope(seed):
            pass


# -- results equal lone runs, whatever n_jobs -----------------------------------------
@pytest.mark.parametrize("n_jobs", [1, 2, 3, -1])
def test_one_model_per_dataset_equals_lone_runs(n_jobs):
    datasets = make_datasets(7)
    seeds = [3, 1, 4, 1, 5, 9, 2]       # a repeated seed on different data is fine
    results = fit_many(build, datasets, seeds=seeds, epochs=EPOCHS, batch_size=8, n_jobs=n_jobs)
    assert [r.index for r in results] == list(range(7))
    for r, (x, y), seed in zip(results, datasets, seeds):
        assert isinstance(r, FitResult) and r.seed == seed and r.error is None
        assert_same(r, *alone(seed, x, y))


def test_configs_and_seeds_on_one_shared_dataset():
    (x, y), = make_datasets(1)
    configs = [{"units": 3}, {"units": 7, "learning_rate": 0.003}, {"units": 5}]
    results = fit_many(build, (x, y), configs=configs, seeds=[10, 20, 30], epochs=EPOCHS,
                       batch_size=8, n_jobs=3)
    for r, config, seed in zip(results, configs, [10, 20, 30]):
        assert r.config == config
        assert r.weights[1].shape == (config["units"],) * 2
        assert_same(r, *alone(seed, x, y, config))


def test_default_seeds_are_reproducible_and_reported():
    datasets = make_datasets(3)
    fastrnn.set_random_seed(123)
    first = fit_many(build, datasets, epochs=2, batch_size=8, n_jobs=2)
    fastrnn.set_random_seed(123)
    second = fit_many(build, datasets, epochs=2, batch_size=8, n_jobs=1)
    assert len({r.seed for r in first}) == 3
    for a, b, (x, y) in zip(first, second, datasets):
        assert a.seed == b.seed
        assert_same(b, *alone(a.seed, x, y, epochs=2))


def test_validation_callbacks_and_models():
    datasets = make_datasets(4)
    vals = make_datasets(4, samples=11, seed=1)
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)  # stops after epoch 2
    results = fit_many(build, datasets, seeds=7, validation_data=vals, callbacks=[stop],
                       epochs=EPOCHS, batch_size=8, n_jobs=2, return_models=True)
    assert stop.model is None       # the template is copied, never used itself
    for r, (x, y), val in zip(results, datasets, vals):
        weights, history = alone(7, x, y, validation_data=val,
                                 callbacks=[EarlyStopping(monitor="val_loss", patience=0,
                                                          min_delta=10.0)])
        assert len(history["loss"]) == 2
        assert_same(r, weights, history)
        assert r.val_loss == history["val_loss"][-1]
        assert np.array_equal(r.model.predict(val[0], verbose=0),
                              r.model.predict(val[0], verbose=0))
        assert all(np.array_equal(a, b) for a, b in zip(r.model.get_weights(), weights))


def test_errors_raise_names_the_model_and_return_keeps_going():
    datasets = make_datasets(3)
    configs = [{}, {"learning_rate": 1e38}, {}]     # the middle one overflows float32
    with pytest.raises(NonFiniteTrainingError) as info:
        fit_many(build, datasets, configs=configs, seeds=0, epochs=EPOCHS, n_jobs=2)
    if hasattr(info.value, "__notes__"):
        assert "model 1" in info.value.__notes__[0]
    results = fit_many(build, datasets, configs=configs, seeds=0, epochs=EPOCHS, batch_size=8,
                       n_jobs=2, errors="return")
    assert isinstance(results[1].error, NonFiniteTrainingError) and np.isnan(results[1].loss)
    assert results[1].weights and all(np.isfinite(w).all() for w in results[1].weights)
    for i in (0, 2):
        assert results[i].error is None
        assert_same(results[i], *alone(0, *datasets[i]))


# -- the batched path: many models' epochs in one GIL-free compiled call ----------------
@pytest.fixture
def batched_calls(monkeypatch):
    """Counts the models each ``_engine.run_epochs_many`` call trains."""
    from fastrnn import _engine
    calls = []
    run = _engine.run_epochs_many

    def counting(engines, *args):
        calls.append(len(engines))
        return run(engines, *args)

    monkeypatch.setattr(_engine, "run_epochs_many", counting)
    return calls


def build_with(units=6, learning_rate=0.01, metrics=None, dtype=None, dropout=0.0):
    """``build``, optionally with compiled metrics, float64 weights or dropout."""
    layers = ([fastrnn.Input((5, 2), dtype=dtype)] if dtype else []) + [
        SimpleRNN(units, dropout=dropout, recurrent_dropout=dropout,
                  **({} if dtype else {"input_shape": [5, 2]})), Dense(1)]
    model = fastrnn.Sequential(layers)
    model.compile(optimizer=fastrnn.optimizers.Adam(learning_rate=learning_rate), loss="mse",
                  metrics=metrics)
    return model


def alone_with(seed, x, y, config, **fit_kwargs):
    fastrnn.set_random_seed(seed)
    model = build_with(**config)
    history = model.fit(x, y, verbose=0, **{"epochs": EPOCHS, "batch_size": 8, **fit_kwargs})
    return model, history.history


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("epochs", [1, EPOCHS])
def test_batched_path_equals_lone_runs(batched_calls, n_jobs, epochs):
    """Datasets of two sizes (two groups), float32 and float64 models: every result, the
    returned model's History and optimizer step count equal the lone run's."""
    datasets = make_datasets(5) + make_datasets(4, samples=20, seed=3)
    configs = [{"dtype": "float64"} if i % 3 == 0 else {"units": 4 + i % 2} for i in range(9)]
    configs[4]["dropout"] = 0.3
    seeds = list(range(20, 29))
    results = fit_many(build_with, datasets, configs=configs, seeds=seeds, epochs=epochs,
                       batch_size=8, n_jobs=n_jobs, return_models=True)
    assert sum(batched_calls) == 9 and len(batched_calls) >= 2
    for r, (x, y), config, seed in zip(results, datasets, configs, seeds):
        model, history = alone_with(seed, x, y, config, epochs=epochs)
        assert_same(r, model.get_weights(), history)
        assert r.model.history.history == history and r.model.history.epoch == list(range(epochs))
        assert r.model.optimizer.iterations == model.optimizer.iterations
        assert r.model.history.params == model.history.params
        if n_jobs == 2 and epochs == 1:
            # the returned model goes on exactly as the lone one (optimizer state included)
            for m in (r.model, model):
                fastrnn.set_random_seed(77)
                m.fit(x, y, epochs=2, batch_size=8, verbose=0)
            assert all(np.array_equal(a, b)
                       for a, b in zip(r.model.get_weights(), model.get_weights()))
            assert np.array_equal(r.model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_batched_path_without_shuffle_and_default_batch_size(batched_calls):
    datasets = make_datasets(3, samples=70)
    results = fit_many(build, datasets, seeds=[1, 2, 3], epochs=3, shuffle=False, n_jobs=2)
    assert sum(batched_calls) == 3
    for r, (x, y), seed in zip(results, datasets, [1, 2, 3]):
        assert_same(r, *alone(seed, x, y, epochs=3, shuffle=False, batch_size=None))


def test_models_that_need_python_between_epochs_fall_back_to_fit(batched_calls):
    """Compiled metrics (one model of three) or callbacks (all): trained by fit, still equal."""
    datasets = make_datasets(3)
    configs = [{}, {"metrics": ["mae"]}, {}]
    results = fit_many(build_with, datasets, configs=configs, seeds=4, epochs=EPOCHS,
                       batch_size=8, n_jobs=2)
    assert sum(batched_calls) == 2
    for r, (x, y), config in zip(results, datasets, configs):
        model, history = alone_with(4, x, y, config)
        assert_same(r, model.get_weights(), history)
    assert "mae" in results[1].history
    batched_calls.clear()
    results = fit_many(build, datasets, seeds=4, epochs=EPOCHS, batch_size=8, n_jobs=2,
                       callbacks=lambda: [EarlyStopping(monitor="loss", patience=100)])
    assert batched_calls == []
    for r, (x, y) in zip(results, datasets):
        assert_same(r, *alone(4, x, y))


def test_stateful_models_fall_back_to_fit(batched_calls):
    """A model with stateful layers (fixed batch size, states carried between batches)
    trains through fit, beside batched ones."""
    def build_stateful(stateful=True):
        if not stateful:
            return build()
        model = fastrnn.Sequential([fastrnn.Input(batch_shape=(8, 5, 2)),
                                    SimpleRNN(4, stateful=True), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        return model

    datasets = make_datasets(2, samples=32)
    configs = [{}, {"stateful": False}]
    results = fit_many(build_stateful, datasets, configs=configs, seeds=5, epochs=EPOCHS,
                       batch_size=8, n_jobs=1)
    assert batched_calls == [1]
    for r, (x, y), config in zip(results, datasets, configs):
        fastrnn.set_random_seed(5)
        model = build_stateful(**config)
        history = model.fit(x, y, epochs=EPOCHS, batch_size=8, verbose=0).history
        assert_same(r, model.get_weights(), history)


def test_batched_error_stops_only_that_model(batched_calls):
    """A model diverging at its first step in the batched call: the others are unharmed, and
    its error and History are those of its lone fit."""
    datasets = make_datasets(3)
    configs = [{}, {"learning_rate": 1e38}, {}]
    results = fit_many(build_with, datasets, configs=configs, seeds=0, epochs=EPOCHS,
                       batch_size=8, n_jobs=1, errors="return")
    assert batched_calls == [3]
    fastrnn.set_random_seed(0)
    model = build_with(learning_rate=1e38)
    with pytest.raises(NonFiniteTrainingError) as lone:
        model.fit(*datasets[1], epochs=EPOCHS, batch_size=8, verbose=0)
    assert str(results[1].error) == str(lone.value)
    assert (results[1].error.epoch, results[1].error.batch) == (lone.value.epoch,
                                                                lone.value.batch)
    assert all(np.array_equal(a, b) for a, b in zip(results[1].weights, model.get_weights()))
    for i in (0, 2):
        assert_same(results[i], *alone(0, *datasets[i]))


@pytest.mark.parametrize("n", [1, 2, 3, 37, 1000])
def test_shuffled_orders_draw_as_generator_shuffle(n):
    """Every row: np.arange(n) shuffled by rng.shuffle, bitwise, and the generator ends in
    the same state; without shuffling the generator is untouched."""
    from fastrnn import _engine
    for seed in range(20):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        want = np.empty((5, n), np.int64)
        for row in want:
            row[...] = np.arange(n)
            a.shuffle(row)
        got = np.full((5, n), -1, np.int64)
        _engine.shuffled_orders(b, got)
        assert np.array_equal(got, want)
        assert a.bit_generator.state == b.bit_generator.state
    state = b.bit_generator.state
    _engine.shuffled_orders(b, got, False)
    assert np.array_equal(got, np.tile(np.arange(n), (5, 1)))
    assert b.bit_generator.state == state
    with pytest.raises(TypeError, match="orders"):
        _engine.shuffled_orders(b, got.astype(np.int32))


def test_run_epochs_many_checks_before_it_runs():
    """Bad rows are refused before any engine trains, and every engine is usable afterwards."""
    from fastrnn import _engine
    (x, y), = make_datasets(1)
    models = [build() for _ in range(2)]
    for m in models:
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    engines = [m._trainer() for m in models]
    before = [m.get_weights() for m in models]
    order = np.tile(np.arange(37), (2, 1))
    rates = np.full((2, 5), 0.01)
    losses, means = np.zeros((2, 5)), np.zeros((2, 1))
    with pytest.raises(RuntimeError, match="bind_data"):
        _engine.run_epochs_many(engines, order, 8, rates, losses, means)
    for e in engines:
        e.bind_data(x, y)
    bad = order.copy()
    bad[1, 3] = 37
    with pytest.raises(ValueError, match=r"order\[1, 3\]"):
        _engine.run_epochs_many(engines, bad, 8, rates, losses, means)
    with pytest.raises(ValueError, match="learning_rates"):
        _engine.run_epochs_many(engines, order, 8, np.full((2, 5), np.nan), losses, means)
    with pytest.raises(TypeError, match="means"):
        _engine.run_epochs_many(engines, order, 8, rates, losses, np.zeros((1, 1)))
    for m, w in zip(models, before):
        assert all(np.array_equal(a, b) for a, b in zip(m.get_weights(), w))
    _engine.run_epochs_many(engines, order, 8, rates, losses, means)   # usable: not left busy
    assert np.isfinite(means).all()
    for e in engines:
        e.unbind_data()


def test_bad_arguments_are_named():
    datasets = make_datasets(2)
    with pytest.raises(ValueError, match="lengths"):
        fit_many(build, datasets, seeds=[1, 2, 3])
    with pytest.raises(TypeError, match="build_fn"):
        fit_many("build", datasets)
    with pytest.raises(TypeError, match="configs"):
        fit_many(build, datasets, configs={"units": 3})
    with pytest.raises(ValueError, match=r"datasets\[1\]"):
        fit_many(build, [datasets[0], (1, 2, 3)])
    with pytest.raises(ValueError, match="n_jobs"):
        fit_many(build, datasets, n_jobs=0)
    with pytest.raises(ValueError, match="errors"):
        fit_many(build, datasets, errors="ignore")
    with pytest.raises(TypeError, match="seeds"):
        fit_many(build, datasets, seeds=1.0)

    def uncompiled():
        return fastrnn.Sequential([SimpleRNN(2, input_shape=[5, 2]), Dense(1)])

    with pytest.raises(ValueError, match="compiled"):
        fit_many(uncompiled, datasets, n_jobs=1)
    # without dask.distributed installed, any client is answered by what to install
    has_distributed = importlib.util.find_spec("distributed") is not None
    with pytest.raises(TypeError if has_distributed else ImportError, match="client"):
        fit_many(build, datasets, client=object())


# -- copies of one built model (no build per model) ------------------------------------
@pytest.fixture
def copy_calls(monkeypatch):
    """Counts the models fit_many trains as copies of another model's build."""
    from fastrnn import many
    calls = []
    begin = many._Copies.begin

    def counting(self, job, fit_kwargs):
        calls.append(job.index)
        return begin(self, job, fit_kwargs)

    monkeypatch.setattr(many._Copies, "begin", counting)
    return calls


def build_variant(units=6, kind="plain", dtype="float32"):
    """Models whose builds draw in different ways (functional, wrappers, seeds, schedules,
    regularizers), for the replay of initial weights."""
    from fastrnn.layers import Bidirectional, Embedding, TimeDistributed
    optimizer = fastrnn.optimizers.Adam(learning_rate=0.01)
    if kind == "functional":
        inp = fastrnn.Input((5, 2), dtype=dtype)
        h = SimpleRNN(units, return_sequences=True)(inp)
        h = TimeDistributed(Dense(3))(h)
        out = Dense(1, kernel_regularizer=fastrnn.regularizers.L2(0.01))(SimpleRNN(units)(h))
        model = fastrnn.Model(inp, out)
    elif kind == "bidirectional":
        model = fastrnn.Sequential([fastrnn.Input((5, 2), dtype=dtype),
                                    Bidirectional(SimpleRNN(units)), Dense(1)])
    elif kind == "embedding":
        model = fastrnn.Sequential([fastrnn.Input((5,), dtype="int32"), Embedding(7, 3),
                                    SimpleRNN(units, dtype=dtype), Dense(1, dtype=dtype)])
    elif kind == "seeded":      # a layer with its own seed beside scoped ones
        model = fastrnn.Sequential([fastrnn.Input((5, 2), dtype=dtype),
                                    SimpleRNN(units, seed=3), Dense(1)])
    elif kind == "schedule":
        model = fastrnn.Sequential([fastrnn.Input((5, 2), dtype=dtype), SimpleRNN(units),
                                    Dense(1)])
        optimizer = fastrnn.optimizers.SGD(
            fastrnn.optimizers.schedules.ExponentialDecay(0.05, 3, 0.5), momentum=0.9)
    else:
        model = fastrnn.Sequential([fastrnn.Input((5, 2), dtype=dtype), SimpleRNN(units),
                                    Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


VARIANTS = ["plain", "functional", "bidirectional", "embedding", "seeded", "schedule"]


def variant_data(kind, n=1, samples=21, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if kind == "embedding":
            x = rng.integers(0, 7, (samples, 5)).astype(np.int32)
        else:
            x = rng.standard_normal((samples, 5, 2)).astype(np.float32)
        out.append((x, rng.standard_normal((samples, 1)).astype(np.float32)))
    return out


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_replayed_draws_equal_the_builds_initial_weights(kind, dtype):
    """Replaying a build's recorded initializer calls under its seed gives its initial
    weights bitwise, and under another seed those of a build under that seed."""
    from fastrnn.layers.layer import recording_builds
    with initializers._seed_scope(11):
        with recording_builds() as records:
            model = build_variant(kind=kind, dtype=dtype)
        after_build = initializers._next_seed()
    assert records, "the build recorded nothing"
    with initializers._seed_scope(11):
        params = model._replayed_params(records)
        after_replay = initializers._next_seed()
    assert params is not None and params.dtype == model.params.dtype
    assert np.array_equal(params, model.params)
    assert after_replay == after_build, "the replay drew a different amount"
    with initializers._seed_scope(12):
        other = model._replayed_params(records)
    with initializers._seed_scope(12):
        rebuilt = build_variant(kind=kind, dtype=dtype)
    assert np.array_equal(other, rebuilt.params)


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("kind", VARIANTS)
def test_copies_equal_lone_runs(copy_calls, batched_calls, n_jobs, kind):
    """Nine models of one configuration and eight of another train as copies (after one
    check per configuration), and every result equals its lone run bitwise."""
    datasets = variant_data(kind, n=17)
    configs = [{"kind": kind, "units": 5}] * 9 + [{"kind": kind, "units": 3}] * 8
    seeds = list(range(40, 57))
    results = fit_many(build_variant, datasets, configs=configs, seeds=seeds, epochs=3,
                       batch_size=8, n_jobs=n_jobs)
    assert sorted(copy_calls) == sorted([1, 10] + list(range(17))), \
        "every model a copy, plus one check per configuration (its second model)"
    assert batched_calls[:2] == [2, 2], "each check trains two engines (for one epoch)"
    for r, (x, y), config, seed in zip(results, datasets, configs, seeds):
        fastrnn.set_random_seed(seed)
        model = build_variant(**config)
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history
        assert_same(r, model.get_weights(), history)


def test_copies_refused_when_the_build_draws_more_than_weights(copy_calls):
    """A build that draws more than the initial weights (a dropout layer's seed, drawn at
    construction): the check fails, every model is built, results still equal."""
    datasets = make_datasets(8)
    results = fit_many(build_with, datasets, configs=[{"dropout": 0.3}], seeds=list(range(8)),
                       epochs=2, batch_size=8, n_jobs=1)
    assert copy_calls == [1], "only the check ran as a copy"
    for r, (x, y), seed in zip(results, datasets, range(8)):
        model, history = alone_with(seed, x, y, {"dropout": 0.3}, epochs=2)
        assert_same(r, model.get_weights(), history)


def test_a_copy_that_diverges_reports_its_lone_error(copy_calls):
    """A copy whose data overflow the loss: the same error, epoch, batch and weights as
    its lone fit; the other copies are unharmed."""
    datasets = make_datasets(8)
    x, y = datasets[4]
    datasets[4] = (x, np.full_like(y, 3e38))
    results = fit_many(build, datasets, seeds=list(range(8)), epochs=EPOCHS, batch_size=8,
                       n_jobs=1, errors="return")
    assert 4 in copy_calls
    fastrnn.set_random_seed(4)
    model = build()
    with pytest.raises(NonFiniteTrainingError) as lone:
        model.fit(*datasets[4], epochs=EPOCHS, batch_size=8, verbose=0)
    assert str(results[4].error) == str(lone.value)
    assert all(np.array_equal(a, b) for a, b in zip(results[4].weights, model.get_weights()))
    for i in (0, 1, 2, 3, 5, 6, 7):
        assert results[i].error is None
        assert_same(results[i], *alone(i, *datasets[i]))


def test_return_models_builds_every_model(copy_calls):
    results = fit_many(build, make_datasets(8), seeds=list(range(8)), epochs=1, batch_size=8,
                       n_jobs=1, return_models=True)
    assert copy_calls == []
    assert all(r.model is not None for r in results)


# -- Dask ---------------------------------------------------------------------------
def _reference(datasets, seeds):
    return [alone(s, x, y) for (x, y), s in zip(datasets, seeds)]


@pytest.fixture(scope="module")
def thread_client():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


@pytest.mark.parametrize("chunk_size", [None, 2, 5])
def test_dask_threads_equal_lone_runs(thread_client, chunk_size):
    datasets = make_datasets(6)
    seeds = list(range(40, 46))
    results = fit_many(build, datasets, seeds=seeds, epochs=EPOCHS, batch_size=8,
                       client=thread_client, chunk_size=chunk_size)
    for r, want in zip(results, _reference(datasets, seeds)):
        assert_same(r, *want)


def test_dask_error_reaches_the_caller(thread_client):
    datasets = make_datasets(4)
    configs = [{}, {}, {"learning_rate": 1e38}, {}]
    with pytest.raises(NonFiniteTrainingError):
        fit_many(build, datasets, configs=configs, seeds=0, epochs=EPOCHS, client=thread_client,
                 chunk_size=1)
    results = fit_many(build, datasets, configs=configs, seeds=0, epochs=EPOCHS, batch_size=8,
                       client=thread_client, chunk_size=3, errors="return")
    assert isinstance(results[2].error, NonFiniteTrainingError)
    assert_same(results[3], *alone(0, *datasets[3]))


def test_dask_shared_data_is_scattered_once(thread_client, monkeypatch):
    """A dataset every chunk uses is scattered to all workers once, not sent with each task."""
    (x, y), = make_datasets(1)
    scattered = []
    scatter = thread_client.scatter

    def spy(data, **kwargs):
        scattered.append((data, kwargs))
        return scatter(data, **kwargs)

    monkeypatch.setattr(thread_client, "scatter", spy)
    keys_before = set(thread_client.who_has())
    results = fit_many(build, (x, y), seeds=[1, 2, 3, 4, 5], epochs=EPOCHS, batch_size=8,
                       client=thread_client, chunk_size=2, return_models=True)
    assert len(scattered) == 1 and scattered[0][1].get("broadcast") is True
    assert [id(a) for a in scattered[0][0]] == [id(x), id(y)]
    for r, s in zip(results, [1, 2, 3, 4, 5]):
        assert_same(r, *alone(s, x, y))
        assert r.model is not None and np.array_equal(r.model.get_weights()[0], r.weights[0])
    # nothing fit_many put on the cluster stays there
    deadline = time.monotonic() + 10
    while set(thread_client.who_has()) - keys_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(thread_client.who_has()) - keys_before


@pytest.fixture(scope="module")
def process_cluster():
    pytest.importorskip("distributed")
    import cloudpickle
    from distributed import Client, LocalCluster
    # Worker processes cannot import this test module: ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            yield cluster, client
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_dask_processes_equal_lone_runs_even_when_a_worker_dies(process_cluster, tmp_path):
    """One worker process kills itself mid-job; Dask reruns its tasks and nothing changes."""
    _, client = process_cluster
    marker = str(tmp_path / "killed")
    datasets = make_datasets(12)
    seeds = list(range(100, 112))

    def build_or_die(units=6, learning_rate=0.01, die=False):
        # In a worker, the first build of the doomed model kills its own process
        # (SIGKILL: no cleanup, as a crash); the rerun finds the marker and goes on.
        if die and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return build(units, learning_rate)

    pids_before = set(client.run(os.getpid).values())
    configs = [{"die": i == 7} for i in range(12)]     # a model of a middle chunk
    results = fit_many(build_or_die, datasets, configs=configs, seeds=seeds, epochs=EPOCHS,
                       batch_size=8, client=client, chunk_size=2)
    assert os.path.exists(marker), "no worker was killed"
    assert pids_before - set(client.run(os.getpid).values()), "the killed worker is still there"
    assert len(results) == 12 and all(r is not None for r in results)
    for r, want in zip(results, _reference(datasets, seeds)):
        assert_same(r, *want)
