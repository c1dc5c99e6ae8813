"""The masked recurrence reference: finite differences, Keras 3, unpadded runs, outputs.

``fastrnn.reference.recurrence`` is the oracle of the compiled masked
recurrence; here it is pinned to central finite differences (every gradient,
kinks handled), to values recorded from Keras 3 with the JAX and the
TensorFlow backends, and to running each sequence alone, unpadded.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn.reference import recurrence as rec

from finite_diff import check_gradient, kink_regions
from recurrence_cases import (BACKEND_RULES, keras_cases, mask_kwargs, masked_problem,
                              padding_mask, run_each_alone)
from tolerances import assert_close, tol

REL = tol("finite_difference", np.float64)["rel"]
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")


def preactivations(p, h, activation, go_backwards):
    """z_t of every kept step (0 elsewhere), recomputed from the states h."""
    B, T, _ = p["x"].shape
    H = p["kernel"].shape[1]
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    keep = np.ones((B, T), bool) if p["mask"] is None else p["mask"]
    z = np.zeros((B, T, H))
    prev = np.zeros((B, H)) if p["h0"] is None else p["h0"]
    for t in order:
        x_in = p["x"][:, t] * (1 if p["dropout_mask"] is None else p["dropout_mask"])
        h_in = prev * (1 if p["recurrent_dropout_mask"] is None else p["recurrent_dropout_mask"])
        z[:, t] = np.where(keep[:, t, None],
                           x_in @ p["kernel"] + h_in @ p["recurrent_kernel"] + p["bias"], 0)
        prev = h[:, t]
    return z


@given(shape=st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4),
                       st.integers(1, 4)),
       seed=st.integers(0, 2**31),
       activation=st.sampled_from(["tanh", "relu", "sigmoid", "silu", "elu"]),
       mask=st.sampled_from([None, "random", "post", "pre"]),
       with_h0=st.booleans(), go_backwards=st.booleans(),
       dropout=st.booleans(), recurrent_dropout=st.booleans())
def test_masked_backward_matches_finite_differences(shape, seed, activation, mask, with_h0,
                                                    go_backwards, dropout, recurrent_dropout):
    p = masked_problem(*shape, seed, with_h0, mask, dropout, recurrent_dropout)
    kwargs = mask_kwargs(p, go_backwards)
    x, kernel, recurrent_kernel, bias, dh = (p[k] for k in ("x", "kernel", "recurrent_kernel",
                                                           "bias", "dh"))
    h0 = p["h0"] if with_h0 else np.zeros((shape[0], shape[3]))   # dh0 is checked either way

    def forward():
        return rec.recurrence_forward(x, kernel, recurrent_kernel, bias, h0, activation, **kwargs)

    def loss():  # a scalar whose dLoss/dh is exactly dh
        return float(np.sum(forward() * dh))

    def regions():
        return kink_regions(activation, preactivations({**p, "h0": h0}, forward(), activation,
                                                       go_backwards))

    h = forward()
    grads = rec.recurrence_backward(x, h, kernel, recurrent_kernel, dh, bias, h0, activation,
                                    **kwargs)
    for name, array, grad in zip(("x", "kernel", "recurrent_kernel", "bias", "h0"),
                                 (x, kernel, recurrent_kernel, bias, h0), grads):
        assert grad.shape == array.shape, name
        check_gradient(loss, array, grad, REL, name=name, regions=regions)


def test_masked_steps_get_no_input_gradient_and_ignore_their_input():
    p = masked_problem(4, 6, 3, 5, seed=3, mask="random", dropout=True, recurrent_dropout=True)
    kwargs = mask_kwargs(p, go_backwards=True)
    args = (p["kernel"], p["recurrent_kernel"])
    h = rec.recurrence_forward(p["x"], *args, p["bias"], p["h0"], "tanh", **kwargs)
    grads = rec.recurrence_backward(p["x"], h, *args, p["dh"], p["bias"], p["h0"], "tanh",
                                    **kwargs)
    masked = ~p["mask"]
    assert masked.any() and not grads[0][masked].any()
    # whatever sits at the masked steps changes nothing
    x2 = p["x"].copy()
    x2[masked] = 1e3
    h2 = rec.recurrence_forward(x2, *args, p["bias"], p["h0"], "tanh", **kwargs)
    np.testing.assert_array_equal(h2, h)


def test_all_ones_mask_is_no_mask_and_all_zeros_carries_h0():
    p = masked_problem(3, 4, 2, 3, seed=5, mask=None)
    args = (p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], "tanh")
    for go_backwards in (False, True):
        plain = rec.recurrence_forward(*args, go_backwards=go_backwards)
        ones = rec.recurrence_forward(*args, mask=np.ones((3, 4), bool), go_backwards=go_backwards)
        np.testing.assert_array_equal(ones, plain)
        zeros = rec.recurrence_forward(*args, mask=np.zeros((3, 4), bool),
                                       go_backwards=go_backwards)
        np.testing.assert_array_equal(zeros, np.broadcast_to(p["h0"][:, None], zeros.shape))
        dh = p["dh"]
        g = rec.recurrence_backward(p["x"], zeros, p["kernel"], p["recurrent_kernel"], dh,
                                    p["bias"], p["h0"], "tanh", mask=np.zeros((3, 4), bool),
                                    go_backwards=go_backwards)
        np.testing.assert_allclose(g[4], dh.sum(axis=1), rtol=1e-15)   # every step passes on
        assert not any(a.any() for a in g[:4])


# ---------------------------------------------------------------- unpadded, one by one

@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_padded_batch_equals_each_sequence_run_alone(padding, go_backwards, activation):
    B, T, D, H = 6, 7, 3, 4
    p = masked_problem(B, T, D, H, seed=11, mask=None)
    lengths = np.array([7, 0, 3, 1, 5, 6])
    mask = padding_mask(lengths, T, padding)
    p["dh"][~mask] = 0      # masked steps count in no loss

    def fwd(x, kernel, recurrent_kernel, bias, h0, activation, **kw):
        return rec.recurrence_forward(x, kernel, recurrent_kernel, bias, h0, activation, **kw)

    def bwd(x, h, kernel, recurrent_kernel, dh, h0, activation, **kw):
        return rec.recurrence_backward(x, h, kernel, recurrent_kernel, dh, None, h0, activation,
                                       **kw)

    h_alone, grads_alone = run_each_alone(p, lengths, padding, go_backwards, activation, fwd, bwd)
    h = rec.recurrence_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"],
                               activation, mask=mask, go_backwards=go_backwards)
    np.testing.assert_allclose(h, h_alone, rtol=1e-13, atol=1e-15)
    grads = rec.recurrence_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"],
                                    None, p["h0"], activation, mask=mask,
                                    go_backwards=go_backwards)
    for name, g, g_alone in zip(GRAD_NAMES, grads, grads_alone):
        np.testing.assert_allclose(g, g_alone, rtol=1e-12, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------- Keras 3

@pytest.mark.parametrize("backend", sorted(BACKEND_RULES))
def test_reference_matches_keras(backend):
    """Outputs, final states and every gradient, both backends' output rules."""
    leading = BACKEND_RULES[backend]
    cases = keras_cases(backend)
    assert len(cases) >= 30
    for name, a, o in cases:
        kwargs = dict(mask=a.get("mask"), go_backwards=o["go_backwards"],
                      dropout_mask=a.get("dropout_mask"),
                      recurrent_dropout_mask=a.get("recurrent_dropout_mask"))
        h = rec.recurrence_forward(a["x"], a["kernel"], a["recurrent_kernel"], a["bias"],
                                   a.get("h0"), o["activation"], **kwargs)
        output, state = rec.keras_rnn_output(h, o["go_backwards"], o["return_sequences"],
                                             a.get("mask"), leading)
        assert_close(output, a["output"], "keras_fixture", np.float64, err_msg=f"{name} output")
        assert_close(state, a["state"], "keras_fixture", np.float64, err_msg=f"{name} state")
        dh = rec.keras_rnn_output_gradient(a["R"], h.shape[1], o["go_backwards"],
                                           o["return_sequences"], a.get("mask"), leading)
        grads = rec.recurrence_backward(a["x"], h, a["kernel"], a["recurrent_kernel"], dh,
                                        a["bias"], a.get("h0"), o["activation"], **kwargs)
        for key, g in zip(GRAD_NAMES, grads):
            if key in a:
                assert_close(g, a[key], "keras_fixture", np.float64, err_msg=f"{name} {key}")


def test_the_backends_differ_only_before_the_first_unmasked_step():
    """The recorded outputs of the two backends agree except where the module
    docstring says: nonzero h0 and steps before a sequence's first unmasked one."""
    jax_cases = {name: (a, o) for name, a, o in keras_cases("jax")}
    differing = []
    for name, a, o in keras_cases("tensorflow"):
        a_jax, _ = jax_cases[name]
        np.testing.assert_array_equal(a["x"], a_jax["x"])
        np.testing.assert_allclose(a["state"], a_jax["state"], rtol=1e-12, atol=1e-14)
        if not np.allclose(a["output"], a_jax["output"], rtol=1e-12, atol=1e-14):
            differing.append(name)
            assert o["h0"] and "mask" in a
    assert differing and all("_h0" in name for name in differing)


# ---------------------------------------------------------------- outputs and dropout masks

def test_keras_output_and_its_gradient_are_adjoint():
    rng = np.random.default_rng(0)
    B, T, H = 3, 5, 2
    h = rng.normal(size=(B, T, H))
    mask = padding_mask([5, 2, 0], T, "pre")
    for go_backwards in (False, True):
        for seq in (False, True):
            for leading in ("state", "zeros"):
                out, _ = rec.keras_rnn_output(h, go_backwards, seq, mask, leading)
                r = rng.normal(size=out.shape)
                dh = rec.keras_rnn_output_gradient(r, T, go_backwards, seq, mask, leading)
                # <output(h), r> is linear in h with gradient dh
                assert np.isclose(np.sum(out * r), np.sum(h * dh))
    out, state = rec.keras_rnn_output(h, True, True)
    np.testing.assert_array_equal(out, h[:, ::-1])
    np.testing.assert_array_equal(state, h[:, 0])
    out, _ = rec.keras_rnn_output(h, False, False, mask, "zeros")
    np.testing.assert_array_equal(out, [h[0, -1], h[1, -1], np.zeros(H)])
    with pytest.raises(ValueError, match="leading"):
        rec.keras_rnn_output(h, leading="nope")


def test_dropout_mask_is_inverted_and_has_the_rate():
    rng = np.random.default_rng(0)
    m = rec.dropout_mask((200, 300), 0.25, rng)
    assert set(np.unique(m)) == {0.0, 1 / 0.75}
    assert abs((m == 0).mean() - 0.25) < 0.01
    assert abs(m.mean() - 1) < 0.02                    # inverted: the expectation is kept
    assert not rec.dropout_mask((3, 4), 1.0, rng).any()
    np.testing.assert_array_equal(rec.dropout_mask((3, 4), 0.0, rng), 1)
    assert rec.dropout_mask((2, 2), 0.5, rng, "float32").dtype == np.float32
