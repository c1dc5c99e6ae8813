"""The activation reference against Keras 3, finite differences and its own contract."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn.reference import activations as act

from finite_diff import numeric_gradient, relative_error
from keras_fixture import json_entry, load
from tolerances import tol

REL = tol("finite_difference", np.float64)["rel"]
KERAS = tol("keras_fixture", np.float64)
FIXTURE = load("activations")
ROW_WISE = ("softmax", "log_softmax", "sparsemax")
ELEMENT_WISE = tuple(n for n in act.ACTIVATION_NAMES if n not in ROW_WISE)
# Where each kinked element-wise activation is not differentiable.
KINKS = dict(act.ACTIVATION_KINKS, hard_swish=act.ACTIVATION_KINKS["hard_silu"])
# The documented exceptions to "kinks take JAX's slope": (name, z, JAX's slope).
KINK_DEVIATIONS = [("hard_tanh", -1.0, 1.0), ("hard_tanh", 1.0, 1.0),
                   ("sparse_sigmoid", -1.0, 0.25), ("sparse_sigmoid", 1.0, 0.25)]


def _fixture_mask(name, z):
    """Elements where Keras's recorded values are the truth for the reference."""
    keep = np.ones(z.shape, dtype=bool)
    for dev_name, point, _ in KINK_DEVIATIONS:
        if dev_name == name:
            keep &= z != point
    if name == "sparsemax":
        # Keras 3.15's sparsemax takes tau from the sum of the cumulative sums
        # over the support instead of the k-th one (keras-team/keras#23425, fixed
        # upstream by #23469): it agrees with the definition only on rows whose
        # support has one element.
        keep &= (np.sum(act.activate("sparsemax", z) > 0, axis=-1) == 1)[:, None]
    return keep


@pytest.mark.parametrize("name", json_entry(FIXTURE["names"]))
def test_matches_keras(name):
    z, dh = FIXTURE["z"], FIXTURE["dh"]
    h = act.activate(name, z)
    dz = act.activation_grad(name, z, h, dh)
    keep = _fixture_mask(name, z)
    assert keep.sum() >= 6, "the fixture must still check something"
    np.testing.assert_allclose(h[keep], FIXTURE[f"{name}/h"][keep], **KERAS)
    np.testing.assert_allclose(dz[keep], FIXTURE[f"{name}/dz"][keep], **KERAS)


def test_kink_values_that_differ_from_jax_are_the_documented_ones():
    z, dh = FIXTURE["z"], FIXTURE["dh"]
    for name, point, jax_slope in KINK_DEVIATIONS:
        where = z == point
        assert where.any()
        np.testing.assert_allclose(FIXTURE[f"{name}/dz"][where], jax_slope * dh[where])
        dz = act.activation_grad(name, z, act.activate(name, z), dh)
        np.testing.assert_array_equal(dz[where], 0)


def test_kinks_match_jax_on_every_other_kinked_activation():
    # The fixture's first two rows are the kink points themselves.
    z, dh = FIXTURE["z"][:2], FIXTURE["dh"][:2]
    for name in KINKS:
        keep = _fixture_mask(name, z)
        dz = act.activation_grad(name, z, act.activate(name, z), dh)
        np.testing.assert_allclose(dz[keep], FIXTURE[f"{name}/dz"][:2][keep], **KERAS,
                                   err_msg=name)


def _away_from_kinks(name, z, margin=1e-3):
    for kink in KINKS.get(name, ()):
        near = np.abs(z - kink) < margin
        z = np.where(near, kink + np.where(z >= kink, margin, -margin), z)
    return z


@given(name=st.sampled_from(ELEMENT_WISE), seed=st.integers(0, 2**31), scale=st.sampled_from([0.5, 3.0, 8.0]))
def test_element_wise_grad_matches_finite_differences(name, seed, scale):
    rng = np.random.default_rng(seed)
    z = _away_from_kinks(name, rng.standard_normal(40) * scale)
    dh = rng.standard_normal(40)
    eps = 1e-6
    numeric = (act.activate(name, z + eps) - act.activate(name, z - eps)) / (2 * eps) * dh
    analytic = act.activation_grad(name, z, act.activate(name, z), dh)
    err = relative_error(analytic, numeric)
    assert err <= REL, f"{name}: relative error {err:.3g}"


@given(name=st.sampled_from(ROW_WISE), seed=st.integers(0, 2**31), rows=st.integers(1, 4),
       width=st.integers(1, 6), scale=st.sampled_from([0.3, 1.0, 4.0]))
def test_row_wise_grad_matches_finite_differences(name, seed, rows, width, scale):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, width)) * scale
    dh = rng.standard_normal((rows, width))
    if name == "sparsemax":  # keep clear of the points where the support changes
        h = act.activate(name, z)
        tau = np.max(z - h, axis=-1, keepdims=True, where=h > 0, initial=-np.inf)
        if np.min(np.abs(z - tau)) < 1e-4:
            return
    analytic = act.activation_grad(name, z, act.activate(name, z), dh)
    diff = numeric_gradient(lambda: float(np.sum(act.activate(name, z) * dh)), z)
    indices, numeric = diff.indices, diff.values
    picked = analytic.reshape(-1)[indices]
    # A flat row (sparsemax with one element in its support) has gradient 0:
    # there the differences are rounding noise and only their size is checked.
    err = relative_error(picked, numeric)
    assert err <= REL or np.max(np.abs(picked - numeric)) < 1e-9, f"{name}: {err:.3g}"


@given(seed=st.integers(0, 2**31), width=st.integers(1, 8), scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_sparsemax_is_the_projection_onto_the_simplex(seed, width, scale):
    z = np.random.default_rng(seed).standard_normal((3, width)) * scale
    h = act.activate("sparsemax", z)
    assert np.all(h >= 0)
    np.testing.assert_allclose(h.sum(axis=-1), 1, rtol=1e-12)
    # Optimality: h = z - tau on the support, z <= tau off it, one tau a row.
    tau = z - h
    for row in range(3):
        support = h[row] > 0
        np.testing.assert_allclose(tau[row, support], tau[row, support][0], atol=1e-12)
        assert np.all(z[row, ~support] <= tau[row, support][0] + 1e-12)


def test_sparsemax_by_hand():
    # The example of keras-team/keras#23425: [0, 0.5, 1] -> [0, 0.25, 0.75].
    np.testing.assert_allclose(act.activate("sparsemax", np.array([[0.0, 0.5, 1.0]])),
                               [[0.0, 0.25, 0.75]], atol=1e-15)


def test_keras3_definitions_by_hand():
    z = np.array([-4.0, -1.5, 0.0, 1.5, 4.0])
    # hard_sigmoid is Keras 3's relu6(z + 3) / 6, not Keras 2's 0.2 z + 0.5.
    np.testing.assert_allclose(act.activate("hard_sigmoid", z), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(act.activate("leaky_relu", z), [-0.8, -0.3, 0, 1.5, 4])
    np.testing.assert_allclose(act.activate("hard_silu", z), z * np.array([0, 0.25, 0.5, 0.75, 1]))
    # gelu by name is the exact erf form (the tanh form differs by ~1e-3 here).
    from math import erf, sqrt
    np.testing.assert_allclose(act.activate("gelu", z),
                               [0.5 * v * (1 + erf(v / sqrt(2))) for v in z], rtol=1e-14)
    np.testing.assert_allclose(act.activate("selu", np.array([1.0, -1.0])),
                               [1.0507009873554805, 1.0507009873554805 * 1.6732632423543772 * (np.exp(-1) - 1)])


def test_aliases_and_none():
    z = np.linspace(-4, 4, 9)
    np.testing.assert_array_equal(act.activate("swish", z), act.activate("silu", z))
    np.testing.assert_array_equal(act.activate("hard_swish", z), act.activate("hard_silu", z))
    np.testing.assert_array_equal(act.activate(None, z), z)
    assert act.canonical_activation(None) == "linear"
    assert act.canonical_activation("swish") == "silu"


def test_derivative_from_output_is_honoured():
    z = np.linspace(-5, 5, 12).reshape(2, 6)
    dh = np.cos(z)
    needs_z = {n for n in act.ACTIVATION_NAMES if not act.derivative_from_output(n)}
    assert needs_z == {"silu", "swish", "gelu", "mish", "hard_silu", "hard_swish", "tanh_shrink"}
    for name in act.ACTIVATION_NAMES:
        h = act.activate(name, z)
        full = act.activation_grad(name, z, h, dh)
        if act.derivative_from_output(name):
            np.testing.assert_array_equal(act.activation_grad(name, None, h, dh), full)
        else:
            np.testing.assert_array_equal(act.activation_grad(name, z, None, dh), full)
            with pytest.raises(ValueError, match="z is required"):
                act.activation_grad(name, None, h, dh)


@pytest.mark.parametrize("name", act.ACTIVATION_NAMES)
def test_dtype_is_kept(name):
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    h = act.activate(name, z)
    assert h.dtype == np.float32
    assert act.activation_grad(name, z, h, np.ones_like(z)).dtype == np.float32


@pytest.mark.parametrize("name", [n for n in act.ACTIVATION_NAMES if n != "exponential"])
def test_extreme_inputs_stay_finite(name):
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        h = act.activate(name, z)
        dz = act.activation_grad(name, z, h, np.ones_like(z))
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(dz))


def test_unknown_names_are_refused():
    for bad in ("glu", "threshold", "Tanh", 3):
        with pytest.raises(ValueError, match="activation"):
            act.activate(bad, np.zeros(3))
    with pytest.raises(ValueError, match="rows"):
        act.activation_slope("softmax", h=np.zeros(3))
