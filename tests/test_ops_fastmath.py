"""Accuracy of the vectorised tanh in fastmath.h (through _kernels.tanh_inplace).

Errors are measured in units in the last place (ulp) of the dtype against
NumPy's float64 tanh, over a dense grid, tiny and subnormal values, large
|x| and the special values.
"""
import numpy as np
import pytest

from fastrnn import _kernels

# Measured on the development machine: 3.0 ulp (float64), 2.25 ulp (float32).
MAX_ULP = {np.float64: 4.0, np.float32: 3.0}


def fast_tanh(x):
    out = np.array(x, copy=True)
    _kernels.tanh_inplace(out)
    return out


def grid(dtype):
    info = np.finfo(dtype)
    low = -300 if dtype == np.float64 else -37
    g = np.concatenate([
        np.linspace(-25, 25, 1_000_001),              # where tanh bends and saturates
        np.logspace(low, 1.5, 100_001),               # tiny to large magnitudes
        np.random.default_rng(0).standard_normal(200_000) * 3,
    ]).astype(dtype)
    sub = info.smallest_subnormal * np.array([1, 3, 1000, 2**20], dtype=dtype)
    g = np.concatenate([g, sub, [info.tiny, info.max, 9.0, 9.02, 19.0, 19.1, 22.0]])
    return np.concatenate([g, -g]).astype(dtype)


def ulp_error(actual, x, dtype):
    exact = np.tanh(x.astype(np.float64))
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_is_accurate_to_a_few_ulp(dtype):
    x = grid(dtype)
    y = fast_tanh(x)
    assert y.dtype == dtype
    err = ulp_error(y, x, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= MAX_ULP[dtype], f"{err[worst]:.2f} ulp at x = {x[worst]!r}"
    assert np.all(np.abs(y) <= 1)  # tanh' = 1 - h^2 must never go negative


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 50.0, -50.0, 1e300 if dtype == np.float64
                  else 3e38], dtype=dtype)
    y = fast_tanh(x)
    assert y[0] == 0 and not np.signbit(y[0])
    assert y[1] == 0 and np.signbit(y[1])
    assert y[2] == 1 and y[3] == -1
    assert np.isnan(y[4])
    assert y[5] == 1 and y[6] == -1 and y[7] == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_of_subnormals_is_exact(dtype):
    x = np.finfo(dtype).smallest_subnormal * np.arange(-50, 51, dtype=dtype)
    np.testing.assert_array_equal(fast_tanh(x), x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 3, 7, 8, 9, 17, 33])
def test_tanh_every_length_and_tail(dtype, n):
    # vector loops have remainder paths: each element must come out right
    x = np.linspace(-3, 3, n).astype(dtype)
    err = ulp_error(fast_tanh(x), x, dtype)
    assert err.size == 0 or err.max() <= MAX_ULP[dtype]
