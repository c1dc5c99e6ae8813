"""fastrnn.benchmark: the cases compute the same things, the CLI runs (no timings asserted)."""
import os

import numpy as np
import pytest

from fastrnn import benchmark as fb


@pytest.mark.parametrize("operation", fb.OPERATIONS)
def test_fastrnn_and_reference_cases_agree(operation):
    a = fb.make_case("fastrnn", operation, "S1")()
    b = fb.make_case("reference", operation, "S1")()
    for x, y in zip(np.atleast_1d(a) if operation == "train_step" else
                    (a if isinstance(a, tuple) else (a,)),
                    np.atleast_1d(b) if operation == "train_step" else
                    (b if isinstance(b, tuple) else (b,))):
        if x is None:       # fastrnn's rnn_backward case skips dx (input_grad=False)
            assert operation == "rnn_backward"
            continue
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                   rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("operation", fb.OPERATIONS)
def test_torch_cases_agree_with_reference(operation):
    pytest.importorskip("torch")
    if operation == "rnn_backward":
        pytest.skip("torch's case returns nothing (gradients stay in the module)")
    a = fb.make_case("torch", operation, "S1")()
    b = fb.make_case("reference", operation, "S1")()
    a = a.detach().numpy() if hasattr(a, "detach") else a
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=2e-3, atol=1e-5)


def test_main_prints_a_table(capsys):
    try:
        assert fb.main(["--shapes", "latency", "--backends", "fastrnn", "reference",
                        "--repeats", "1", "--min-time", "0", "--threads", "1"]) == 0
    finally:
        fb.set_blas_threads(os.cpu_count() or 1)
    out = capsys.readouterr().out
    assert "latency" in out and "predict" in out and "GEMM peak" in out
    assert "vs reference" in out and "threads:" in out


def test_unknown_backend_and_shape():
    with pytest.raises(ValueError, match="backend"):
        fb.make_case("jax", "predict", "S1")
    with pytest.raises(SystemExit):
        fb.main(["--shapes", "S9"])
