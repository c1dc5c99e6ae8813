"""The one table of numerical tolerances used by the tests.

Keys: what is compared.  float64 kernels match the float64 reference tightly;
float32 kernels are compared against the float64 reference loosely.  For
gradients in float32, ``atol`` is scaled by the largest gradient magnitude.
"""
import numpy as np

TOLERANCES = {
    # kernel vs reference
    ("forward", np.float64): dict(rtol=1e-10, atol=1e-12),
    ("backward", np.float64): dict(rtol=1e-10, atol=1e-12),
    ("forward", np.float32): dict(rtol=1e-4, atol=1e-5),
    ("backward", np.float32): dict(rtol=1e-3, atol_scale=1e-5),
    # the float64 reference vs values recorded from Keras 3 in float64
    ("keras_fixture", np.float64): dict(rtol=1e-11, atol=1e-13),
    # the same float32 weights run by another implementation (Keras, ONNX Runtime, PyTorch)
    ("interop", np.float32): dict(rtol=1e-5, atol=1e-6),
    # a float64 model against another implementation's float32 run of it
    ("interop", np.float64): dict(rtol=1e-4, atol=1e-5),
    # reference vs central finite differences (float64): max relative error
    ("finite_difference", np.float64): dict(rel=1e-6),
    # a float64 computation vs a value Keras recorded in float32 (schedules,
    # learning rates): float32 rounding of the inputs and each operation
    ("keras_fixture", np.float32): dict(rtol=2e-6, atol=1e-8),
    # reference losses, gradients and metrics vs Keras 3 (JAX) in
    # tests/fixtures/keras/losses_metrics.npz.  atol_scale is relative to the
    # largest finite |expected| of the array (at least 1): float32 gradients
    # carry cancellation noise of that size.
    #   float64 reference vs Keras's float64 record (an exact evaluation of
    #   Keras's formulas): summation order and log/exp rounding.
    ("keras_losses", np.float64): dict(rtol=1e-10, atol_scale=1e-13),
    #   float32 reference vs Keras as it ships (float32), every case, clip
    #   bounds included: float32 rounding of a handful of operations.
    ("keras_losses", np.float32): dict(rtol=1e-5, atol_scale=1e-5),
    #   float64 reference vs Keras's float32 numbers, on inputs away from the
    #   float32 clip bounds (1 - 1e-7 is 1 - 2**-23 in float32): measured
    #   worst 1e-6.
    ("keras_losses_vs_float32", np.float64): dict(rtol=2e-6, atol_scale=2e-6),
    # the engine's compiled losses and metrics vs the NumPy reference in the same dtype:
    # summation order (the engine accumulates in float64) and log/exp rounding
    ("engine_loss", np.float64): dict(rtol=1e-11, atol_scale=1e-13),
    ("engine_loss", np.float32): dict(rtol=1e-5, atol_scale=1e-6),
    # the numbers a deterministic corpus program prints (tests/programs/, float32, at most
    # a few epochs, printed to 6 decimals) vs those Keras 3 printed running it: float32
    # rounding of the training steps, and a last printed digit that rounds the other way
    ("keras_program", np.float32): dict(rtol=1e-5, atol=5e-6),
}


def tol(kind, dtype):
    return TOLERANCES[(kind, np.dtype(dtype).type)]


def assert_close(actual, expected, kind, dtype, err_msg=""):
    """Compare with the table's tolerance for (kind, dtype)."""
    t = dict(tol(kind, dtype))
    expected = np.asarray(expected, dtype=np.float64)
    if "atol_scale" in t:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        t["atol"] = t.pop("atol_scale") * max(scale, 1.0)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               err_msg=err_msg, **t)
