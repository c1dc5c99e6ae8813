"""The compile config of ``.keras`` files: written by ``Model.save``, read by
``fastrnn.models.load_model``, which compiles the model as Keras does."""
import json
import os
import zipfile

import numpy as np
import pytest

import fastrnn
from fastrnn.trainers.compile_config import compile_config, read_compile_config

pytest.importorskip("h5py")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "keras")


def _model():
    return fastrnn.Sequential([fastrnn.Input((3, 1)), fastrnn.layers.SimpleRNN(2),
                               fastrnn.layers.Dense(1, activation="sigmoid")])


def test_round_trip_compiles_the_loaded_model(tmp_path):
    model = _model()
    model.compile(optimizer=fastrnn.optimizers.RMSprop(learning_rate=0.02, rho=0.8),
                  loss=fastrnn.losses.BinaryCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy", fastrnn.metrics.Precision(thresholds=0.4)])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = fastrnn.models.load_model(path)
    assert type(loaded.optimizer) is fastrnn.optimizers.RMSprop
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    loss, _, metrics, _ = loaded._compile_args
    assert loss.get_config() == model._compile_args[0].get_config()
    assert metrics[0] == "accuracy" and metrics[1].thresholds == 0.4
    x = np.random.default_rng(0).normal(size=(6, 3, 1))
    y = np.array([0, 1, 1, 0, 1, 0], "float32")
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    assert fastrnn.models.load_model(path, compile=False).optimizer is None
    assert fastrnn.saving.load_model(path).optimizer is None     # the archive reader alone


def test_keras_written_file_is_compiled_as_keras_would():
    # written by Keras 3.15.1, compiled with Adam() and "mse"
    model = fastrnn.models.load_model(os.path.join(FIXTURES, "keras_tutorial.keras"))
    assert type(model.optimizer) is fastrnn.optimizers.Adam
    assert model.optimizer.learning_rate == pytest.approx(0.001)
    assert model._compile_args[0] == "mse"
    # an uncompiled Keras model writes an empty compile config: no compile
    assert fastrnn.models.load_model(
        os.path.join(FIXTURES, "keras_stacked.keras")).optimizer is None


def test_what_cannot_be_written_or_used(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="mse", metrics=[lambda y, p: (y - p).mean()])
    assert compile_config(model) is None              # a Python function: not written
    path = tmp_path / "f.keras"
    model.save(path)
    assert read_compile_config(path) is None
    assert fastrnn.models.load_model(path).optimizer is None
    model.compile(optimizer="adam", loss="mse")
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["compile_config"]["optimizer"]["class_name"] = "Nadam"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.warns(UserWarning, match="Nadam"):
        loaded = fastrnn.models.load_model(path)
    assert loaded.optimizer is None
