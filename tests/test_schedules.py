"""fastrnn.schedules (exposed as fastrnn.optimizers.schedules) against Keras 3.

Values were recorded from Keras (float32) by tools/keras_fixtures/record_utils.py.
"""
import json
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn import schedules
from tolerances import assert_close

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "schedules.json")
with open(FIXTURES) as _f:
    RECORDED = json.load(_f)["schedules"]
VALUES = [c for c in RECORDED if "values" in c]
ERRORS = [c for c in RECORDED if "error" in c]


def case_id(case):
    return case["class"] + "(" + ",".join(f"{k}={v}" for k, v in case["kwargs"].items()) + ")"


@pytest.mark.parametrize("case", VALUES, ids=[case_id(c) for c in VALUES])
def test_values_match_keras(case):
    schedule = getattr(schedules, case["class"])(**case["kwargs"])
    scalar = [schedule(step) for step in case["steps"]]
    assert all(isinstance(v, float) for v in scalar)
    # where Keras's float32 overflows (a growing rate far out), float64 does not
    finite = np.isfinite(case["values"])
    assert_close(np.array(scalar)[finite], np.array(case["values"])[finite], "keras_fixture",
                 np.float32, err_msg=case_id(case))
    assert np.all(np.array(scalar)[~finite] > np.finfo(np.float32).max)
    vector = schedule(np.array(case["steps"]))
    assert isinstance(vector, np.ndarray) and vector.shape == (len(case["steps"]),)
    np.testing.assert_allclose(vector, scalar, rtol=1e-15, atol=0)


@pytest.mark.parametrize("case", VALUES, ids=[case_id(c) for c in VALUES])
def test_config_round_trip_and_keras_layout(case):
    cls = getattr(schedules, case["class"])
    schedule = cls(**case["kwargs"])
    config = schedule.get_config()
    assert config == case["config"]
    assert schedules.serialize(schedule) == case["serialized"]
    again = schedules.deserialize(case["serialized"])
    assert type(again) is cls and again.get_config() == config
    assert cls.from_config(config)(37) == schedule(37)


@pytest.mark.parametrize("case", ERRORS, ids=[case_id(c) for c in ERRORS])
def test_rejects_what_keras_rejects(case):
    with pytest.raises(ValueError):
        getattr(schedules, case["class"])(**case["kwargs"])


@pytest.mark.parametrize("make", [
    lambda v: schedules.ExponentialDecay(v, 10, 0.9),
    lambda v: schedules.ExponentialDecay(0.1, 10, v),
    lambda v: schedules.InverseTimeDecay(v, 10, 0.5),
    lambda v: schedules.InverseTimeDecay(0.1, 10, v),
    lambda v: schedules.PolynomialDecay(v, 10),
    lambda v: schedules.PolynomialDecay(0.1, 10, end_learning_rate=v),
    lambda v: schedules.PolynomialDecay(0.1, 10, power=v),
    lambda v: schedules.CosineDecay(v, 10),
    lambda v: schedules.CosineDecay(0.1, 10, alpha=v),
    lambda v: schedules.CosineDecay(0.0, 10, warmup_target=v, warmup_steps=5),
    lambda v: schedules.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=v),
    lambda v: schedules.CosineDecayRestarts(v, 10),
    lambda v: schedules.CosineDecayRestarts(0.1, 10, m_mul=v),
    lambda v: schedules.PiecewiseConstantDecay([5], [0.1, v]),
], ids=lambda f: "")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5])
def test_nan_infinite_or_negative_rates_are_value_errors(make, bad):
    with pytest.raises(ValueError):
        make(bad)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.9)
    with pytest.raises(ValueError, match="first_decay_steps"):
        schedules.CosineDecayRestarts(0.1, -3)
    with pytest.raises(ValueError, match="t_mul"):
        schedules.CosineDecayRestarts(0.1, 10, t_mul=0.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        schedules.PiecewiseConstantDecay([5, 5], [1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match="length"):
        schedules.PiecewiseConstantDecay([5], [1.0])
    with pytest.raises(TypeError, match="initial_learning_rate"):
        schedules.ExponentialDecay("0.1", 10, 0.9)
    with pytest.raises(TypeError, match="staircase"):
        schedules.ExponentialDecay(0.1, 10, 0.9, staircase="yes")
    with pytest.raises(ValueError, match="step"):
        schedules.ExponentialDecay(0.1, 10, 0.9)(-1)
    with pytest.raises(ValueError, match="step"):
        schedules.CosineDecay(0.1, 10)(float("nan"))
    with pytest.raises(TypeError, match="step"):
        schedules.CosineDecay(0.1, 10)("3")


def test_deserialize_errors_and_custom_objects():
    with pytest.raises(ValueError, match="unknown"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        schedules.deserialize({"config": {}})

    class Halving(schedules.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / 2 ** step

        def get_config(self):
            return {"rate": self.rate}

    config = schedules.serialize(Halving(0.8))
    assert schedules.deserialize(config, custom_objects={"Halving": Halving})(2) == 0.2
    with pytest.raises(TypeError):
        schedules.serialize(lambda step: 0.1)


def test_base_class_must_be_overridden():
    base = schedules.LearningRateSchedule()
    with pytest.raises(NotImplementedError, match="__call__"):
        base(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        base.get_config()


def test_formulas_at_landmarks():
    # exact values the formulas give, independent of Keras
    assert schedules.ExponentialDecay(0.1, 10, 0.5)(20) == pytest.approx(0.025, rel=1e-15)
    assert schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == pytest.approx(0.05)
    assert schedules.InverseTimeDecay(1.0, 2, 1.0)(4) == pytest.approx(1 / 3)
    assert schedules.PolynomialDecay(0.1, 10, 0.0)(5) == pytest.approx(0.05)
    assert schedules.PolynomialDecay(0.1, 10, 0.0)(50) == 0.0
    cos = schedules.CosineDecay(0.2, 100, alpha=0.25)
    assert cos(0) == pytest.approx(0.2) and cos(100) == pytest.approx(0.05)
    assert cos(50) == pytest.approx(0.2 * (0.75 * 0.5 + 0.25))
    warm = schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4)
    assert [warm(s) for s in (0, 1, 2, 3)] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert warm(4) == pytest.approx(1.0) and warm(14) == pytest.approx(0.0, abs=1e-15)
    piece = schedules.PiecewiseConstantDecay([10, 20], [3.0, 2.0, 1.0])
    assert [piece(s) for s in (0, 10, 10.5, 20, 21)] == [3.0, 3.0, 2.0, 2.0, 1.0]
    sgdr = schedules.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5)
    assert sgdr(10) == pytest.approx(0.5) and sgdr(30) == pytest.approx(0.25)


@given(st.floats(0.0, 1.0), st.integers(1, 1000), st.floats(0.0, 1.0), st.integers(0, 5000))
def test_cosine_decay_stays_between_its_ends(lr, decay_steps, alpha, step):
    value = schedules.CosineDecay(lr, decay_steps, alpha=alpha)(step)
    assert lr * alpha - 1e-15 <= value <= lr + 1e-15


@given(st.floats(1e-6, 1.0), st.integers(1, 500), st.floats(0.01, 1.0),
       st.lists(st.integers(0, 5000), min_size=2, max_size=10))
def test_decays_do_not_increase(lr, decay_steps, rate, steps):
    steps = sorted(steps)
    for schedule in (schedules.ExponentialDecay(lr, decay_steps, rate),
                     schedules.InverseTimeDecay(lr, decay_steps, rate),
                     schedules.PolynomialDecay(lr, decay_steps, lr * rate / 2, power=rate)):
        values = schedule(np.array(steps))
        assert np.all(np.diff(values) <= 1e-18) and np.all(np.isfinite(values))
        assert math.isfinite(schedule(steps[-1]))
