"""Initializers: Keras 3's names, configs and distributions; seeds; layers using them.

``tests/fixtures/keras/initializers.json`` (tools/keras_fixtures/initializers.py)
holds what Keras 3 answers: the class and config behind every name, configs
of instances built with arguments, bad arguments, and summary statistics of
large draws.  fastrnn draws with NumPy, so values are compared as
distributions, never number by number (except the deterministic ones).
"""
import json

import numpy as np
import pytest

import fastrnn
from fastrnn import initializers as init
from fastrnn.layers import SimpleRNN

from keras_fixture import FIXTURES

KERAS = json.loads((FIXTURES / "initializers.json").read_text())
# Keras 3.15's Identity.get_config() is {} (its gain is lost on saving): fastrnn
# keeps {"gain": ...}; and keras.initializers.get("constant") raises KeyError
# (Constant.from_config needs a value): fastrnn gives Constant(0.0).
KERAS_BUGS = {"Identity", "Constant"}


def keras_config(class_name, config):
    return {"gain": 1.0, **config} if class_name == "Identity" and not config else config


@pytest.mark.parametrize("name", sorted(KERAS["names"]))
def test_every_keras_name_gives_the_keras_class_and_config(name):
    want = KERAS["names"][name]
    got = init.get(name)
    if "error" in want:      # Keras cannot build it without arguments (see KERAS_BUGS)
        assert type(got).__name__ in KERAS_BUGS
        return
    assert type(got).__name__ == want["class_name"]
    assert got.get_config() == keras_config(want["class_name"], want["config"])


@pytest.mark.parametrize("name", sorted(KERAS["unknown"]))
def test_names_keras_does_not_know_are_refused(name):
    assert KERAS["unknown"][name] == "ValueError"
    with pytest.raises(ValueError, match="kernel_initializer"):
        init.get(name, "kernel_initializer")


@pytest.mark.parametrize("entry", KERAS["with_arguments"],
                         ids=[f"{e['class_name']}-{i}" for i, e in enumerate(KERAS["with_arguments"])])
def test_configs_and_serialization_match_keras(entry):
    got = getattr(init, entry["class_name"])(**entry["kwargs"])
    want = entry["config"]
    if entry["class_name"] == "Identity":
        want = {**want, **entry["kwargs"]}
    assert got.get_config() == want
    serialized = init.serialize(got)
    assert {**serialized, "config": {}} == {**entry["serialized"], "config": {}}
    again = init.get(serialized)
    assert type(again) is type(got) and again.get_config() == got.get_config()
    assert got.clone().get_config() == got.get_config()


def close_stats(ours, keras, n, bounded):
    """Summary statistics of n draws agree with Keras's within sampling error."""
    std = keras["std"]
    assert abs(ours["std"] - std) <= 5 * std / np.sqrt(n) + 1e-12, ("std", ours, keras)
    assert abs(ours["mean"] - keras["mean"]) <= 6 * std / np.sqrt(n) + 1e-12, ("mean", ours, keras)
    if bounded:                # uniform or truncated: the extremes sit at the bounds
        scale = max(abs(keras["max"]), abs(keras["min"]), 1e-12)
        assert abs(ours["max"] - keras["max"]) <= 0.05 * scale, ("max", ours, keras)
        assert abs(ours["min"] - keras["min"]) <= 0.05 * scale, ("min", ours, keras)


def draw_stats(initializer, shape):
    try:
        a = initializer(shape, "float64")
    except ValueError:
        return {"error": "ValueError"}
    return {"min": a.min(), "max": a.max(), "mean": a.mean(), "std": a.std()}


def bounded(initializer):
    if isinstance(initializer, (init.RandomNormal, init.Orthogonal)):
        return False
    return getattr(initializer, "distribution", None) != "untruncated_normal"


CASES = [(e["class_name"], e["kwargs"], e["stats"]) for e in KERAS["with_arguments"]]
CASES += [(name, {} if name in ("Zeros", "Ones", "Constant", "Identity") else {"seed": 1}, stats)
          for name, stats in KERAS["defaults"].items()]


@pytest.mark.parametrize("class_name, kwargs, stats", CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_draws_are_distributed_as_keras_draws(class_name, kwargs, stats):
    initializer = getattr(init, class_name)(**{**kwargs, **({"seed": 0} if "seed" in kwargs else {})})
    for shape_key, keras_stats in stats.items():
        shape = tuple(json.loads(shape_key))
        ours = draw_stats(initializer, shape)
        if "error" in keras_stats:
            assert ours == keras_stats, shape
            continue
        close_stats(ours, keras_stats, int(np.prod(shape)), bounded(initializer))


def test_deterministic_initializers_give_keras_values():
    np.testing.assert_array_equal(init.Identity(gain=2.0)((3, 5)), KERAS["identity_3x5"])
    np.testing.assert_array_equal(init.get("identity")((5, 3)), KERAS["identity_5x3"])
    np.testing.assert_array_equal(init.Constant(0.25)((2, 3), "float64"), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.Constant([1.0, 2.0])((2, 2)), [[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="broadcast"):
        init.Constant([1.0, 2.0, 3.0])((2, 2))
    assert init.get("zeros")((2,)).dtype == np.float32           # Keras's floatx
    assert not init.get("zero")((3, 3), "float64").any()
    np.testing.assert_array_equal(init.get("one")((2, 2), "int32"), 1)


@pytest.mark.parametrize("entry", KERAS["bad_arguments"],
                         ids=[str(e["kwargs"]) for e in KERAS["bad_arguments"]])
def test_bad_arguments_are_refused_as_keras_does(entry):
    with pytest.raises(ValueError, match=next(iter(entry["kwargs"]))):
        getattr(init, entry["class_name"])(**entry["kwargs"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(seed=1.5), TypeError, "seed"), (dict(seed="1"), TypeError, "seed"),
    (dict(distribution=3), TypeError, "distribution"), (dict(scale="big"), TypeError, "scale"),
    (dict(scale=float("inf")), ValueError, "scale"),
])
def test_bad_argument_types_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        init.VarianceScaling(**kwargs)


def test_fans_and_variance_scaling_formulas():
    assert init.compute_fans(()) == (1, 1)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.compute_fans((3, 5)) == (3, 5)
    assert init.compute_fans((2, 3, 4, 5)) == (24, 30)
    assert init.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == (6, 4)
    # uniform: limit sqrt(3 scale / n); he_uniform on (6, 10): sqrt(6 / 6) = 1
    a = init.HeUniform(seed=0)((6, 10), "float64")
    assert np.abs(a).max() <= 1.0 and np.abs(a).max() > 0.9
    a = init.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform", seed=0)((4, 9))
    assert np.abs(a).max() <= 1.0 + 1e-7
    # truncated normal: |w| <= 2 sqrt(scale / n) / .8796
    a = init.LecunNormal(seed=0)((400, 50), "float64")
    assert np.abs(a).max() <= 2 * np.sqrt(1 / 400) / 0.87962566103423978
    assert abs(a.std() - np.sqrt(1 / 400)) < 0.02 * np.sqrt(1 / 400)
    assert init.VarianceScaling(distribution="Normal").distribution == "truncated_normal"


def test_seeds_repeat_and_rng_is_used_otherwise():
    assert KERAS["seeded_repeats"]
    seeded = init.RandomNormal(seed=4)
    np.testing.assert_array_equal(seeded((3, 3)), seeded((3, 3)))
    unseeded = init.GlorotUniform()
    a = unseeded((3, 3), "float64", np.random.default_rng(9))
    np.testing.assert_array_equal(a, unseeded((3, 3), "float64", np.random.default_rng(9)))
    assert not np.array_equal(a, unseeded((3, 3), "float64", np.random.default_rng(10)))
    fastrnn.set_random_seed(5)
    first = unseeded((4, 4))
    fastrnn.set_random_seed(5)
    np.testing.assert_array_equal(unseeded((4, 4)), first)


@pytest.mark.parametrize("name, shape, first, total", [
    ("glorot_uniform", (3, 5), 0.4745057951397349, 2.8958290125131514),
    ("glorot_normal", (4, 6), 0.15492228897347068, -0.23205105709552498),
    ("orthogonal", (5, 5), 0.16687316018548493, 1.8846199860020223),
    ("random_uniform", (2, 7), 0.027395604855596334, 0.17284934610742647),
    ("random_normal", (3, 3), 0.015235853987721568, -0.12513345782425664),
])
def test_seeded_draws_are_those_of_earlier_fastrnn(name, shape, first, total):
    """The draws of the initializers fastrnn had before stay bit for bit the same."""
    a = init.get(name)(shape, "float64", np.random.default_rng(42))
    assert float(a.flat[0]) == first and float(a.sum()) == total


def test_get_accepts_what_keras_accepts():
    assert init.get(None) is None
    assert isinstance(init.get(None, "kernel_initializer"), init.GlorotUniform)  # add_weight's default
    instance = init.Orthogonal(gain=0.5)
    assert init.get(instance) is instance
    assert isinstance(init.get(init.HeNormal), init.HeNormal)
    assert isinstance(init.get({"class_name": "RandomUniform", "config": {"maxval": 1.0}}),
                      init.RandomUniform)
    assert init.glorot_uniform is init.GlorotUniform and init.IdentityInitializer is init.Identity
    # a Keras-style function f(shape, dtype=None), and one that takes the rng
    keras_style = init.get(lambda shape, dtype=None: np.full(shape, 3.0, dtype=dtype))
    np.testing.assert_array_equal(keras_style((2,), "float64", np.random.default_rng()), [3, 3])
    seen = []
    with_rng = init.get(lambda shape, dtype, rng: seen.append(rng) or np.zeros(shape, dtype))
    rng = np.random.default_rng(0)
    with_rng((2,), "float32", rng)
    assert seen == [rng]
    # an array: its values, for exactly its shape
    from_array = init.get(np.arange(6.0).reshape(2, 3), "kernel_initializer")
    np.testing.assert_array_equal(from_array((2, 3), "float64"), np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match="kernel_initializer"):
        from_array((3, 2))
    for bad, error in [(3, TypeError), (int, TypeError), ({"config": {}}, ValueError),
                       ({"class_name": "Nope"}, ValueError),
                       ({"class_name": "Zeros", "config": {"value": 1}}, TypeError)]:
        with pytest.raises(error, match="bias_initializer"):
            init.get(bad, "bias_initializer")


def test_layers_build_with_every_initializer_name():
    for name in ("he_normal", "lecun_uniform", "truncated_normal", "variance_scaling",
                 "random_uniform", "GlorotNormal", "uniform", "normal"):
        layer = SimpleRNN(4, kernel_initializer=name, seed=1)
        layer.build((None, 3, 2))
        assert np.isfinite(layer.kernel).all() and layer.kernel.std() > 0
    irnn = SimpleRNN(5, recurrent_initializer=init.Identity(gain=0.5), bias_initializer="ones",
                     seed=0)
    irnn.build((None, 3, 2))
    np.testing.assert_array_equal(irnn.recurrent_kernel, 0.5 * np.eye(5))
    np.testing.assert_array_equal(irnn.bias, 1)
    keras_fn = SimpleRNN(2, kernel_initializer=lambda shape, dtype=None: np.ones(shape, dtype))
    keras_fn.build((None, 1, 3))
    np.testing.assert_array_equal(keras_fn.kernel, 1)
