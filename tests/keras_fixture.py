"""Read the Keras 3 fixtures (recorded by tools/keras_fixtures/optimizers_models.py)."""
import json
import pathlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "keras"


def load(name):
    """The arrays of ``tests/fixtures/keras/<name>.npz`` as a dict (no pickles)."""
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def text(value):
    """A string entry (stored as a 0-d unicode array)."""
    return str(value)


def json_entry(value):
    return json.loads(str(value))


def exponential_decay(initial_learning_rate, decay_steps, decay_rate):
    """Keras's ExponentialDecay as a function of the iteration count."""
    return lambda iteration: initial_learning_rate * decay_rate ** (iteration / decay_steps)


def optimizer_config(value):
    """A fixture's JSON optimizer options, with a schedule dict made callable."""
    config = json_entry(value)
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = exponential_decay(**config["learning_rate"])
    return config
