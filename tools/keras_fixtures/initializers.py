"""Record Keras 3's initializers: names, configs and the distributions they draw.

Writes ``tests/fixtures/keras/initializers.json``: for every name Keras's
``keras.initializers.get`` accepts, the class it gives and that instance's
``get_config()``; the configs of instances built with arguments; whether a
few bad arguments raise; and, for every initializer, the summary statistics
(min, max, mean, std) of one large draw for a few shapes, the values of the
deterministic ones (zeros, ones, constant, identity), and what ``get``
does with None.  fastrnn draws with NumPy, not with Keras's generators, so
the tests compare distributions (and configs), never random values.

Usage (never a test or CI dependency)::

    python3 -m venv ../keras-venv && ../keras-venv/bin/pip install keras jax jaxlib
    ../keras-venv/bin/python tools/keras_fixtures/initializers.py
"""
import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "keras"

NAMES = ["zeros", "ones", "constant", "random_uniform", "random_normal", "truncated_normal",
         "variance_scaling", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
         "lecun_uniform", "lecun_normal", "orthogonal", "identity",
         "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal", "TruncatedNormal",
         "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
         "LecunUniform", "LecunNormal", "Orthogonal", "Identity", "IdentityInitializer",
         "OrthogonalInitializer", "uniform", "normal", "zero", "one"]
UNKNOWN = ["Glorot_Uniform", "GLOROT_UNIFORM", "glorotuniform", "he", "xavier"]

# (class name, constructor arguments): configs and distributions
WITH_ARGUMENTS = [
    ("Constant", {"value": 0.25}),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.7, "seed": 3}),
    ("RandomNormal", {"mean": 0.5, "stddev": 0.2, "seed": 3}),
    ("TruncatedNormal", {"mean": -0.5, "stddev": 0.3, "seed": 3}),
    ("VarianceScaling", {"scale": 2.5, "mode": "fan_out", "distribution": "uniform", "seed": 3}),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "normal"}),
    ("VarianceScaling", {"scale": 3.0, "mode": "fan_in", "distribution": "untruncated_normal"}),
    ("GlorotUniform", {"seed": 11}),
    ("HeNormal", {"seed": 11}),
    ("LecunUniform", {"seed": 11}),
    ("Orthogonal", {"gain": 2.0, "seed": 5}),
    ("Identity", {"gain": 3.0}),
]
BAD_ARGUMENTS = [
    ("VarianceScaling", {"scale": 0.0}),
    ("VarianceScaling", {"scale": -1.0}),
    ("VarianceScaling", {"mode": "fan_sum"}),
    ("VarianceScaling", {"distribution": "cauchy"}),
]
SHAPES = [(200, 300), (300, 200), (40, 30, 20), (500,)]


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def stats(initializer, shape):
    try:
        a = np.asarray(initializer(shape, dtype="float32"), dtype=np.float64)
    except Exception as e:  # the recorded fact is which exception Keras raises
        return {"error": type(e).__name__}
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
            "std": float(a.std())}


def main():
    out = {"meta": {"keras": keras.__version__, "backend": keras.backend.backend()}}
    out["names"] = {}
    for name in NAMES:
        try:
            init = keras.initializers.get(name)
        except Exception as e:  # Keras 3.15: get("constant") needs a value (KeyError)
            out["names"][name] = {"error": type(e).__name__}
            continue
        out["names"][name] = {"class_name": type(init).__name__,
                              "config": jsonable(init.get_config())}
    out["unknown"] = {}
    for name in UNKNOWN:
        try:
            keras.initializers.get(name)
            out["unknown"][name] = None
        except Exception as e:
            out["unknown"][name] = type(e).__name__
    out["get_none"] = repr(keras.initializers.get(None))
    out["with_arguments"] = []
    for class_name, kwargs in WITH_ARGUMENTS:
        init = getattr(keras.initializers, class_name)(**kwargs)
        entry = {"class_name": class_name, "kwargs": kwargs,
                 "config": jsonable(init.get_config()),
                 "serialized": jsonable(keras.initializers.serialize(init)),
                 "stats": {str(list(s)): stats(init, s) for s in SHAPES}}
        out["with_arguments"].append(entry)
    out["defaults"] = {}
    for class_name in sorted({v["class_name"] for v in out["names"].values() if "class_name" in v}):
        init = getattr(keras.initializers, class_name)(seed=1) if class_name not in (
            "Zeros", "Ones", "Constant", "Identity") else getattr(keras.initializers, class_name)()
        out["defaults"][class_name] = {str(list(s)): stats(init, s) for s in SHAPES}
    out["bad_arguments"] = []
    for class_name, kwargs in BAD_ARGUMENTS:
        try:
            getattr(keras.initializers, class_name)(**kwargs)
            error = None
        except Exception as e:
            error = type(e).__name__
        out["bad_arguments"].append({"class_name": class_name, "kwargs": kwargs, "error": error})
    out["identity_3x5"] = np.asarray(keras.initializers.Identity(gain=2.0)((3, 5))).tolist()
    out["identity_5x3"] = np.asarray(keras.initializers.Identity()((5, 3))).tolist()
    seeded = keras.initializers.RandomNormal(seed=4)
    out["seeded_repeats"] = bool(np.array_equal(np.asarray(seeded((3, 3))),
                                                np.asarray(seeded((3, 3)))))
    path = OUT / "initializers.json"
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
