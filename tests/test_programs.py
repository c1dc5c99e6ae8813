"""Keras programs, run with only their import changed to fastrnn (the issue 10/11 measure).

Each file in ``tests/programs/`` is a Keras 3 program in the style of the
public SimpleRNN tutorials.  Its Keras imports (``import keras``, ``from
keras.x import y``, ``from tensorflow import keras``, ``tensorflow.keras``)
are rewritten to fastrnn -- nothing else changes -- and it must run to the
end.  Programs that use what fastrnn does not support yet are strict xfails
naming the feature: when the feature lands the test fails until the mark is
removed, so the list below stays the truth.
"""
import os
import re
import runpy
import sys

import numpy as np
import pytest

from tolerances import tol

HERE = os.path.dirname(__file__)
#: what Keras 3 printed running the deterministic programs (tools/keras_fixtures/programs.py)
FIXTURES = os.path.join(HERE, "fixtures", "keras", "programs")
PROGRAMS = sorted(f for f in os.listdir(os.path.join(HERE, "programs")) if f.endswith(".py"))

#: program -> what it needs that fastrnn lacks today
NOT_YET = {
}

#: program -> an optional package it imports besides Keras (skipped without it; CI has it)
NEEDS = {
    "p15_callbacks_and_files.py": "h5py",
    "p26_save_and_reload.py": "h5py",
    "p41_sklearn_scaler_split.py": "sklearn",
    "p48_checkpoint_best_model.py": "h5py",
}

_REWRITES = [
    (r"^from tensorflow\.keras(\.|\s)", r"from fastrnn\1"),
    (r"^from tensorflow import keras\b", "import fastrnn as keras"),
    (r"^import tensorflow\.keras as keras\b", "import fastrnn as keras"),
    (r"^import keras\b", "import fastrnn as keras"),
    (r"^from keras(\.|\s)", r"from fastrnn\1"),
]


def rewrite_imports(source):
    """The program with its Keras imports pointed at fastrnn (and nothing else changed)."""
    lines = []
    for line in source.splitlines():
        for pattern, repl in _REWRITES:
            line = re.sub(pattern, repl, line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_rewriting_changes_only_the_imports():
    source = "import keras\nfrom keras.layers import Dense\nfrom tensorflow import keras\nx = 1\n"
    assert rewrite_imports(source) == ("import fastrnn as keras\nfrom fastrnn.layers import "
                                       "Dense\nimport fastrnn as keras\nx = 1\n")


@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_with_the_import_changed(name, tmp_path, monkeypatch, capsys):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    with open(os.path.join(HERE, "programs", name)) as f:
        source = rewrite_imports(f.read())
    script = tmp_path / name
    script.write_text(source)
    monkeypatch.chdir(tmp_path)
    if name in NOT_YET:
        with pytest.raises(Exception):
            runpy.run_path(str(script), run_name="__main__")
        pytest.xfail(f"needs {NOT_YET[name]}")
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert out                            # every program prints its result
    recorded = os.path.join(FIXTURES, name[:-3] + ".out")
    if os.path.exists(recorded):          # a deterministic program: Keras's numbers
        with open(recorded) as f:
            keras_out = "".join(line for line in f if not line.startswith("# keras"))
        assert_same_printout(out, keras_out)


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def assert_same_printout(out, expected):
    """The same text around the numbers, and the numbers equal within the tolerance."""
    def skeleton(text):
        return " ".join(_NUMBER.sub("#", text).split())
    assert skeleton(out) == skeleton(expected)
    got = np.array([float(v) for v in _NUMBER.findall(out)])
    want = np.array([float(v) for v in _NUMBER.findall(expected)])
    np.testing.assert_allclose(got, want, **tol("keras_program", np.float32),
                               err_msg=f"fastrnn printed:\n{out}\nKeras printed:\n{expected}")


def test_printouts_are_compared_number_by_number():
    assert_same_printout("loss: [0.5 1e-3]\n", "loss: [0.500001 0.001]")
    with pytest.raises(AssertionError):
        assert_same_printout("loss: [0.5 0.002]", "loss: [0.5 0.001]")
    with pytest.raises(AssertionError):
        assert_same_printout("loss: [0.5]", "mae: [0.5]")


def test_every_recorded_printout_has_its_program():
    recorded = [f for f in os.listdir(FIXTURES) if f.endswith(".out")]
    assert len(recorded) >= 4
    assert {f[:-4] + ".py" for f in recorded} <= set(PROGRAMS) - set(NOT_YET)


def test_every_program_is_listed_or_runs():
    assert set(NOT_YET) <= set(PROGRAMS)
    assert set(NEEDS) <= set(PROGRAMS)
    assert "tensorflow" not in sys.modules     # the rewrite never imports TensorFlow
