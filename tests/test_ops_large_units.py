"""ops.rnn_forward at H >= _kernels.TRANSPOSED_STEP_MIN_UNITS, where the step
products use a transposed copy of W_h (the path the L and S5 benchmarks take;
the other kernel tests stay below it)."""
import threading

import numpy as np
import pytest

from fastrnn import _kernels, ops
from fastrnn import reference as ref

from problems import make_rnn_problem
from tolerances import assert_close

H_LARGE = _kernels.TRANSPOSED_STEP_MIN_UNITS
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")


def cast(problem, dtype):
    return {k: None if v is None else v.astype(dtype) for k, v in problem.items()}


def forward(p, activation="tanh", fn=ops.rnn_forward):
    return fn(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], activation)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("H, with_h0", [(H_LARGE, True), (H_LARGE + 45, False)])
def test_forward_and_backward_match_the_reference(dtype, activation, H, with_h0):
    # H_LARGE + 45 is no multiple of the transpose's 32 x 32 tiles
    p = cast(make_rnn_problem(3, 5, 7, H, seed=H, with_h0=with_h0), dtype)
    p64 = cast(p, np.float64)
    h = forward(p, activation)
    assert h.dtype == dtype
    assert_close(h, forward(p64, activation, ref.rnn_forward), "forward", dtype, err_msg="h")
    grads = ops.rnn_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"],
                             p["h0"], activation)
    grads_ref = ref.rnn_backward(p64["x"], h.astype(np.float64), p64["kernel"],
                                 p64["recurrent_kernel"], p64["dh"], p64["h0"], activation)
    for name, g, g_ref in zip(GRAD_NAMES, grads, grads_ref):
        assert_close(g, g_ref, "backward", dtype, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transposed_steps_match_the_plain_ones(dtype):
    """The kernel with and without the work array: the same products."""
    p = cast(make_rnn_problem(4, 6, 3, H_LARGE + 3, seed=1), dtype)
    H = H_LARGE + 3
    plain = np.empty((4, 6, H), dtype)
    transposed = np.empty((4, 6, H), dtype)
    work = np.full((H, H), np.nan, dtype)
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])
    mode = _kernels._packed_info()["mode"]
    _kernels._set_packed_mode("never")   # the BLAS path's copy (the packed kernel needs none)
    try:
        _kernels.rnn_forward(*args, plain, None, 0)
        _kernels.rnn_forward(*args, transposed, work, 0)
    finally:
        _kernels._set_packed_mode(mode)
    np.testing.assert_array_equal(work, p["recurrent_kernel"].T)
    assert_close(transposed, plain, "forward", dtype)


def test_a_work_array_of_the_wrong_shape_is_refused():
    p = make_rnn_problem(2, 3, 2, 4, seed=2)
    with pytest.raises(ValueError, match="recurrent_kernel_t"):
        _kernels.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"],
                             np.empty((2, 3, 4)), np.empty((3, 4)), 0)


def test_repeated_and_concurrent_calls_are_bitwise_equal():
    problems = [cast(make_rnn_problem(4, 6, 5, H_LARGE, seed=s), dt)
                for s, dt in zip(range(4), (np.float64, np.float32) * 2)]
    serial = [forward(p) for p in problems]
    for p, h in zip(problems, serial):
        np.testing.assert_array_equal(forward(p), h)
    results = [None] * len(problems)
    barrier = threading.Barrier(len(problems))

    def work(i):
        barrier.wait()
        for _ in range(5):
            results[i] = forward(problems[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for h, h_s in zip(results, serial):
        np.testing.assert_array_equal(h, h_s)
