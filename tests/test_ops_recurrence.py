"""The compiled masked recurrence (fastrnn.ops over rnn_*_masked_k) against the reference.

Step masks, go_backwards, initial states, dropout masks, both layouts, both
dtypes: float64 tightly, float32 loosely (tests/tolerances.py), over a
Hypothesis sweep; and against Keras 3's recorded values and unpadded runs.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn import _kernels, ops
from fastrnn import reference as ref
from fastrnn.reference import recurrence as rec

from recurrence_cases import (BACKEND_RULES, keras_cases, mask_kwargs, masked_problem,
                              padding_mask, run_each_alone)
from tolerances import assert_close

DTYPES = (np.float64, np.float32)
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")


def swap(a):
    """(B, T, ...) <-> (T, B, ...), C-contiguous; None stays None."""
    return None if a is None else np.ascontiguousarray(np.swapaxes(a, 0, 1))


def ops_run(p, activation, go_backwards, time_major, dtype):
    """ops forward and backward on problem p (batch-major) in ``dtype``; results batch-major."""
    cast = {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
            for k, v in p.items()}
    kw = mask_kwargs(cast, go_backwards)
    x, dh = cast["x"], cast["dh"]
    if time_major:
        x, dh, kw["mask"] = swap(x), swap(dh), swap(kw["mask"])
    h = ops.rnn_forward(x, cast["kernel"], cast["recurrent_kernel"], cast["bias"], cast["h0"],
                        activation, time_major=time_major, **kw)
    grads = ops.rnn_backward(x, h, cast["kernel"], cast["recurrent_kernel"], dh, cast["h0"],
                             activation, time_major=time_major, **kw)
    if time_major:
        h = swap(h)
        grads = (swap(grads[0]),) + tuple(grads[1:])
    return h, grads


def check_against_reference(p, activation, go_backwards, time_major, dtype):
    h, grads = ops_run(p, activation, go_backwards, time_major, dtype)
    assert h.dtype == dtype and all(g.dtype == dtype for g in grads)
    # the reference on exactly the values the kernels saw
    p64 = {k: (v.astype(dtype).astype(np.float64) if isinstance(v, np.ndarray) and
               v.dtype.kind == "f" else v) for k, v in p.items()}
    kw = mask_kwargs(p64, go_backwards)
    h_ref = ref.rnn_forward(p64["x"], p64["kernel"], p64["recurrent_kernel"], p64["bias"],
                            p64["h0"], activation, **kw)
    assert_close(h, h_ref, "forward", dtype, err_msg="h")
    # the reference backward gets the kernel's own states: only BPTT is compared
    grads_ref = ref.rnn_backward(p64["x"], h.astype(np.float64), p64["kernel"],
                                 p64["recurrent_kernel"], p64["dh"], p64["h0"], activation, **kw)
    for name, g, g_ref in zip(GRAD_NAMES, grads, grads_ref):
        assert g.shape == g_ref.shape, name
        assert_close(g, g_ref, "backward", dtype, err_msg=name)
    return h, grads


@st.composite
def problems(draw):
    B = draw(st.integers(1, 9))
    T = draw(st.integers(1, 12))
    D = draw(st.integers(0, 6))
    H = draw(st.integers(1, 12))
    return masked_problem(B, T, D, H, seed=draw(st.integers(0, 2**31)),
                          with_h0=draw(st.booleans()),
                          mask=draw(st.sampled_from([None, "random", "post", "pre"])),
                          dropout=draw(st.booleans()), recurrent_dropout=draw(st.booleans()))


@given(p=problems(), activation=st.sampled_from(ref.ACTIVATIONS), go_backwards=st.booleans(),
       time_major=st.booleans())
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_recurrence_matches_reference(dtype, p, activation, go_backwards, time_major):
    check_against_reference(p, activation, go_backwards, time_major, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", [256, 300])     # the transposed-W_h step products
def test_masked_recurrence_matches_reference_at_large_units(dtype, H):
    p = masked_problem(3, 4, 5, H, seed=H, mask="random", dropout=True, recurrent_dropout=True)
    for go_backwards, time_major in [(False, False), (True, True)]:
        check_against_reference(p, "tanh", go_backwards, time_major, dtype)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_layouts_agree(go_backwards):
    p = masked_problem(5, 6, 3, 4, seed=2, mask="random", dropout=True, recurrent_dropout=True)
    h_b, g_b = ops_run(p, "tanh", go_backwards, False, np.float64)
    h_t, g_t = ops_run(p, "tanh", go_backwards, True, np.float64)
    np.testing.assert_allclose(h_t, h_b, rtol=1e-14, atol=1e-15)
    for name, a, b in zip(GRAD_NAMES, g_t, g_b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_no_masks_is_bitwise_the_unmasked_path_and_all_ones_mask_is_too():
    """The masked kernels without masks run the old code path exactly."""
    p = masked_problem(4, 5, 3, 6, seed=7, mask=None)
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])
    h = ops.rnn_forward(*args)
    ones = np.ones((4, 5), bool)
    np.testing.assert_array_equal(ops.rnn_forward(*args, mask=ones), h)
    grads = ops.rnn_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"], p["h0"])
    masked = ops.rnn_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"], p["h0"],
                              mask=ones)
    for name, a, b in zip(GRAD_NAMES, masked, grads):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # a dropout mask of ones changes nothing either
    ones_d, ones_h = np.ones((4, 3)), np.ones((4, 6))
    np.testing.assert_array_equal(
        ops.rnn_forward(*args, dropout_mask=ones_d, recurrent_dropout_mask=ones_h), h)


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("time_major", [False, True])
def test_padded_batch_equals_each_sequence_run_alone(padding, go_backwards, time_major):
    """Masked/variable-length results equal running each sequence unpadded, one by one."""
    B, T, D, H = 6, 7, 3, 4
    p = masked_problem(B, T, D, H, seed=13, mask=None)
    lengths = np.array([7, 0, 3, 1, 5, 6])
    p["mask"] = padding_mask(lengths, T, padding)
    p["dh"][~p["mask"]] = 0      # masked steps count in no loss

    def fwd(x, kernel, recurrent_kernel, bias, h0, activation, **kw):
        return ops.rnn_forward(x, kernel, recurrent_kernel, bias, h0, activation, **kw)

    def bwd(x, h, kernel, recurrent_kernel, dh, h0, activation, **kw):
        return ops.rnn_backward(x, h, kernel, recurrent_kernel, dh, h0, activation, **kw)

    h_alone, grads_alone = run_each_alone(p, lengths, padding, go_backwards, "tanh", fwd, bwd)
    h, grads = ops_run(p, "tanh", go_backwards, time_major, np.float64)
    np.testing.assert_allclose(h, h_alone, rtol=1e-13, atol=1e-15)
    for name, g, g_alone in zip(GRAD_NAMES, grads, grads_alone):
        np.testing.assert_allclose(g, g_alone, rtol=1e-12, atol=1e-14, err_msg=name)


def test_the_last_state_gradient_passes_through_trailing_masked_steps():
    """Only the final state feeds the loss (return_sequences=False): right
    padding carries it back to each sequence's last real step."""
    B, T, D, H = 3, 6, 2, 3
    p = masked_problem(B, T, D, H, seed=17, mask=None)
    lengths = [6, 2, 4]
    mask = padding_mask(lengths, T, "post")
    dh = np.zeros((B, T, H))
    dh[:, -1] = p["dh"][:, -1]
    args = (p["kernel"], p["recurrent_kernel"])
    h = ops.rnn_forward(p["x"], *args, p["bias"], p["h0"], mask=mask)
    grads = ops.rnn_backward(p["x"], h, *args, dh, p["h0"], mask=mask)
    for b, L in enumerate(lengths):
        x = p["x"][b:b + 1, :L]
        hb = ops.rnn_forward(x, *args, p["bias"], p["h0"][b:b + 1])
        np.testing.assert_array_equal(h[b, -1], hb[0, -1])
        dhb = np.zeros((1, L, H))
        dhb[0, -1] = dh[b, -1]
        gb = ops.rnn_backward(x, hb, *args, dhb, p["h0"][b:b + 1])
        np.testing.assert_allclose(grads[0][b, :L], gb[0][0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(grads[4][b], gb[4][0], rtol=1e-12, atol=1e-15)
        assert not grads[0][b, L:].any()


@pytest.mark.parametrize("backend", sorted(BACKEND_RULES))
def test_kernels_match_keras(backend):
    """The compiled recurrence against Keras 3's recorded values (float64)."""
    leading = BACKEND_RULES[backend]
    for name, a, o in keras_cases(backend):
        if o["activation"] not in ref.ACTIVATIONS:
            continue
        kw = dict(mask=a.get("mask"), go_backwards=o["go_backwards"],
                  dropout_mask=a.get("dropout_mask"),
                  recurrent_dropout_mask=a.get("recurrent_dropout_mask"))
        h = ops.rnn_forward(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"], a.get("h0"),
                            o["activation"], **kw)
        output, state = rec.keras_rnn_output(h, o["go_backwards"], o["return_sequences"],
                                             a.get("mask"), leading)
        assert_close(output, a["output"], "keras_fixture", np.float64, err_msg=f"{name} output")
        assert_close(state, a["state"], "keras_fixture", np.float64, err_msg=f"{name} state")
        dh = rec.keras_rnn_output_gradient(a["R"], h.shape[1], o["go_backwards"],
                                           o["return_sequences"], a.get("mask"), leading)
        grads = ops.rnn_backward(a["x"], h, a["kernel"], a["recurrent_kernel"], dh, a.get("h0"),
                                 o["activation"], **kw)
        for key, g in zip(GRAD_NAMES, grads):
            if key in a:
                assert_close(g, a[key], "keras_fixture", np.float64, err_msg=f"{name} {key}")


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_zero_unstarted_steps_gives_the_tensorflow_outputs(time_major, go_backwards):
    """The kernel helper that turns states into TensorFlow's outputs."""
    rng = np.random.default_rng(0)
    B, T, H = 5, 6, 3
    h = rng.normal(size=(B, T, H))
    mask = rng.random((B, T)) < 0.4
    mask[0] = False
    mask[1] = True
    mask[2, :3] = False
    zeroed = swap(h) if time_major else h.copy()
    _kernels.zero_unstarted_steps(zeroed, (swap(mask) if time_major else mask).view(np.uint8),
                                  time_major, go_backwards)
    if time_major:
        zeroed = swap(zeroed)
    want, _ = rec.keras_rnn_output(h, go_backwards, True, mask, "zeros")
    np.testing.assert_array_equal(zeroed[:, ::-1] if go_backwards else zeroed, want)
    assert not zeroed[0].any() and np.array_equal(zeroed[1], h[1])
    with pytest.raises(ValueError, match="mask"):
        _kernels.zero_unstarted_steps(h.copy(), np.ones((B, T + 1), np.uint8))


def test_uint8_mask_nonzero_means_processed():
    p = masked_problem(3, 4, 2, 3, seed=1, mask="random")
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])
    as_bool = ops.rnn_forward(*args, mask=p["mask"])
    as_uint8 = ops.rnn_forward(*args, mask=p["mask"].astype(np.uint8) * 7)
    np.testing.assert_array_equal(as_uint8, as_bool)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_are_fresh_and_inputs_untouched(dtype):
    p = masked_problem(3, 4, 2, 3, seed=4, mask="random", dropout=True, recurrent_dropout=True)
    p = {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
         for k, v in p.items()}
    before = {k: v.copy() for k, v in p.items() if isinstance(v, np.ndarray)}
    kw = mask_kwargs(p, go_backwards=True)
    h = ops.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], **kw)
    grads = ops.rnn_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"], p["h0"],
                             **kw)
    for k, v in before.items():
        np.testing.assert_array_equal(p[k], v, err_msg=k)
    inputs = [v for v in p.values() if isinstance(v, np.ndarray)]
    for r in (h, *grads):
        assert not any(np.shares_memory(r, v) for v in inputs)
