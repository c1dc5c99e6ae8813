"""Reader of the recorded Keras fixtures of losses and metrics.

``tests/fixtures/keras/losses_metrics.npz`` is written by
``tools/keras_fixtures/losses_metrics.py`` (run in a throwaway Keras venv); the
tests only read it.  Arrays live in two flat buffers indexed by the JSON
``__meta__`` (see the script's docstring).
"""
import json
import os

import numpy as np

from tolerances import tol

PATH = os.path.join(os.path.dirname(__file__), "fixtures", "keras", "losses_metrics.npz")
DTYPES = ("float32", "float64")


class KerasFixtures:
    """The recorded cases: ``meta["cases"]`` records, arrays by key."""

    def __init__(self, path=PATH):
        with np.load(path) as data:
            self.meta = json.loads(bytes(data["__meta__"]).decode())
            self._buffers = {name: data[name] for name in ("values32", "values64")}

    def has(self, key):
        return key in self.meta["arrays"]

    def array(self, key):
        """The array stored under ``key``, as float64 (float32 results exactly)."""
        buffer, offset, shape = self.meta["arrays"][key]
        size = int(np.prod(shape, dtype=np.int64))
        return self._buffers[buffer][offset:offset + size].astype(np.float64).reshape(shape)

    def cases(self, kind):
        return [c for c in self.meta["cases"] if c["kind"] == kind]

    def inputs(self, case):
        return {name: self.array(f"{case['id']}/{name}") for name in case["inputs"]}

    def result(self, case, dtype, name):
        """Keras's output ``name`` in ``dtype``, or None if Keras raised (see ``error``)."""
        key = f"{case['id']}/{dtype}/{name}"
        return self.array(key) if self.has(key) else None

    @staticmethod
    def error(case, dtype, name):
        return case["keras"][dtype].get("errors", {}).get(name)


def assert_keras_close(actual, expected, kind, dtype, err_msg=""):
    """The tolerance table's (kind, dtype) entry; NaN matches NaN, inf matches inf."""
    t = tol(kind, dtype)
    expected = np.asarray(expected, dtype=np.float64)
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(float(finite.max()) if finite.size else 0.0, 1.0)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=t["rtol"],
                               atol=t["atol_scale"] * scale, equal_nan=True, err_msg=err_msg)


_CACHE = {}


def fixtures():
    if "f" not in _CACHE:
        _CACHE["f"] = KerasFixtures()
    return _CACHE["f"]
