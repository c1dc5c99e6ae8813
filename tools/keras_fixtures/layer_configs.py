"""Record Keras 3's ``layer.get_config()`` of a few layers (tests/test_keras_compat.py).

Run in a throwaway venv with Keras and JAX::

    KERAS_BACKEND=jax python tools/keras_fixtures/layer_configs.py

Writes ``tests/fixtures/keras/layer_configs.json``: for each case, the
constructor call (class name and arguments, evaluated identically by the
test with fastrnn) and the config Keras returns.
"""
import json
import os

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "keras", "layer_configs.json")

CASES = [
    ("SimpleRNN", {"units": 7, "name": "rnn"}),
    ("SimpleRNN", {"units": 3, "activation": "relu", "return_sequences": True,
                   "go_backwards": True, "use_bias": False, "dropout": 0.25, "name": "rnn2"}),
    ("Dense", {"units": 4, "name": "d"}),
    ("Dense", {"units": 2, "activation": "softmax", "use_bias": False, "name": "d2"}),
    ("RepeatVector", {"n": 5, "name": "rv"}),
    ("Dropout", {"rate": 0.3, "name": "drop"}),
    ("Activation", {"activation": "tanh", "name": "act"}),
    ("Masking", {"mask_value": -1.0, "name": "mask"}),
]


def main():
    records = []
    for class_name, kwargs in CASES:
        layer = getattr(keras.layers, class_name)(**kwargs)
        records.append({"class_name": class_name, "kwargs": kwargs,
                        "config": layer.get_config()})
    with open(OUT, "w") as f:
        json.dump({"keras_version": keras.__version__, "cases": records}, f, indent=1,
                  sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
