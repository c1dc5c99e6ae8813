"""drecurrent_kernel without a shifted copy of h: the kernel pairs each row of
h with the next row of dz in one product and zeroes the dz rows where a
sequence starts, falling back to one product per sequence when a last state
h[b, T-1] is inf or NaN (0 * inf would otherwise leak NaN into dW_h)."""
import numpy as np
import pytest

from fastrnn import ops
from fastrnn import reference as ref

from problems import make_rnn_problem
from tolerances import assert_close

GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")


def grads(p, h, activation, fn):
    return fn(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"], p["h0"], activation)


def check(p, h, activation, dtype):
    p = {k: None if v is None else v.astype(dtype) for k, v in p.items()}
    h = h.astype(dtype)
    p64 = {k: None if v is None else v.astype(np.float64) for k, v in p.items()}
    got = grads(p, h, activation, ops.rnn_backward)
    want = grads(p64, h.astype(np.float64), activation, ref.rnn_backward)
    for name, g, g_ref in zip(GRAD_NAMES, got, want):
        assert g.dtype == dtype
        assert_close(g, g_ref, "backward", dtype, err_msg=name)
    return got


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("B, T", [(1, 1), (5, 1), (1, 6), (4, 6)])
def test_sequence_boundaries_do_not_mix(dtype, with_h0, B, T):
    # the last states are large, so a pair (h[b, T-1], dz[b+1, 0]) that slipped
    # into dW_h would show far beyond the tolerance
    p = make_rnn_problem(B, T, 3, 5, seed=B * 10 + T, with_h0=with_h0)
    h = ops.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])
    h[:, -1] *= 1e6
    check(p, h, "tanh", dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("with_h0", [True, False])
def test_a_non_finite_last_state_stays_out_of_drecurrent_kernel(dtype, bad, with_h0):
    # relu: act'(h) = [h > 0] stays finite, and h[b, T-1] feeds no W_h product,
    # so the reference's dW_h is finite, and so must ours be
    p = make_rnn_problem(4, 5, 3, 6, seed=7, with_h0=with_h0)
    h = ops.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"],
                        activation="relu")
    h[1, -1, 2] = bad
    got = check(p, h, "relu", dtype)
    assert np.isfinite(got[2]).all()


def test_repeated_calls_are_bitwise_equal():
    p = make_rnn_problem(6, 7, 4, 9, seed=3)
    h = ops.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])
    first = grads(p, h, "tanh", ops.rnn_backward)
    for _ in range(3):
        for a, b in zip(grads(p, h, "tanh", ops.rnn_backward), first):
            np.testing.assert_array_equal(a, b)
