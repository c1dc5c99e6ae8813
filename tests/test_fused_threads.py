"""FusedTrainer(blas_threads=...): BLAS threads set for the compiled calls, then restored."""
import ctypes

import numpy as np
import pytest

from fastrnn import fused
from fastrnn.fused import FusedTrainer, param_count


def make(units=4, **kw):
    n = param_count(2, units)
    bufs = [np.full(n, 0.1), np.zeros(n), np.zeros(n), np.zeros(n)]
    return FusedTrainer(*bufs, input_dim=2, units=units, **kw)


def blas_threads():
    fset, fget = fused._blas_thread_functions()
    if not fset:
        pytest.skip("no OpenBLAS found behind scipy.linalg.cython_blas")
    return (ctypes.CFUNCTYPE(None, ctypes.c_int)(fset), ctypes.CFUNCTYPE(ctypes.c_int)(fget))


@pytest.mark.parametrize("setting", ["auto", 1, 2, None])
def test_the_blas_thread_count_is_restored_after_every_call(setting):
    fset, fget = blas_threads()
    before = fget()
    try:
        fset(2)
        tr = make(blas_threads=setting)
        x, y = np.ones((3, 4, 2)), np.ones(3)
        tr.step(x, y)
        tr.predict(x)
        tr.bind_data(x, y)
        tr.run_epoch(np.arange(3), 2)
        assert fget() == 2
    finally:
        fset(before)


def test_bad_blas_threads_are_refused():
    with pytest.raises(TypeError, match="blas_threads"):
        make(blas_threads="many")
    with pytest.raises(ValueError, match="blas_threads"):
        make(blas_threads=0)


def test_the_results_do_not_depend_on_the_thread_setting():
    x = np.random.default_rng(0).standard_normal((5, 3, 2))
    y = np.random.default_rng(1).standard_normal(5)
    out = []
    for setting in ("auto", None, 2):
        tr = make(blas_threads=setting)
        out.append((tr.step(x, y), tr.params.copy()))
    for loss, params in out[1:]:
        assert loss == pytest.approx(out[0][0], rel=1e-12)
        np.testing.assert_allclose(params, out[0][1], rtol=1e-12, atol=1e-15)
