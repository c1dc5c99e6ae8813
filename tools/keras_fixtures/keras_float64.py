"""Keras 3 on JAX in float64, as the fixture scripts record it (imported first by them).

Float64 as in optimizers_models.py: JAX's x64 mode, ``set_floatx("float64")``,
a float64 dtype policy, and the one-line patch that keeps Keras's type
promotion from mapping float64 to float32 on JAX (see that module's
docstring).  Also the fixture directory, the versions recorded beside every
fixture, and the fixed weights the scripts give their models.
"""
import json
import os
import pathlib

os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_ENABLE_X64"] = "1"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402

keras_dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"  # see optimizers_models.py
keras.config.set_floatx("float64")
keras.config.set_dtype_policy("float64")

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "keras"
META = json.dumps({"keras": keras.__version__, "jax": jax.__version__,
                   "numpy": np.__version__, "backend": keras.backend.backend(),
                   "floatx": keras.config.floatx()})


def fixed_weights(model, rng):
    """Small fixed weights: recurrent kernels at spectral radius 0.8."""
    weights = []
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("recurrent_kernel"):
            m = rng.standard_normal(shape)
            weights.append(m * 0.8 / max(np.abs(np.linalg.eigvals(m))))
        elif variable.path.endswith("kernel"):
            weights.append(rng.uniform(-1, 1, shape) / np.sqrt(shape[0]))
        else:
            weights.append(rng.uniform(-0.5, 0.5, shape))
    return weights
