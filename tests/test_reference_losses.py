"""fastrnn.reference.losses against Keras 3 (recorded) and against finite differences.

The Keras values come from ``tools/keras_fixtures/losses_metrics.py`` (Keras
3.15, JAX backend), in float32 (Keras as it ships) and float64.
"""
import numpy as np
import pytest

from fastrnn.reference import losses as L
from finite_diff import check_gradient
from keras_loss_fixtures import DTYPES, assert_keras_close, fixtures
from tolerances import tol

F = fixtures()
LOSS_KINDS = ("loss", "fused_sigmoid", "fused_softmax", "weighted")
LOSS_CASES = [c for kind in LOSS_KINDS for c in F.cases(kind)]
OUTPUTS = ("per_sample", "loss", "grad", "loss_weighted", "grad_weighted")


def reference_name(case):
    prefix = {"fused_sigmoid": "sigmoid_", "fused_softmax": "softmax_"}.get(case["kind"], "")
    return prefix + case["fn"]


def reference_output(case, output, dtype):
    """What the reference gives for one recorded Keras output of a case."""
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    y_true = inputs["y_true"].astype(dt)
    y_pred = inputs["y_pred"].astype(dt)
    mask = inputs.get("mask")
    mask = None if mask is None else mask.astype(bool)
    weight = inputs.get("sample_weight")
    if output.endswith("_weighted"):            # the script's extra weights
        n = y_pred.shape[0]
        weight = np.linspace(0.25, 2.0, n).reshape(n, 1)
    weight = None if weight is None else weight.astype(dt)
    name, options = reference_name(case), case["options"]
    with np.errstate(all="ignore"):
        if output == "per_sample":
            return getattr(L, name)(y_true, y_pred, **options)
        if output.startswith("loss"):
            return L.loss_value(name, y_true, y_pred, weight, mask, **options)
        return L.loss_grad(name, y_true, y_pred, weight, mask, **options)


def check_against_keras(case, ref_dtype, keras_dtype, kind):
    checked = 0
    for output in OUTPUTS:
        expected = F.result(case, keras_dtype, output)
        error = F.error(case, keras_dtype, output)
        if expected is None and error is None:
            continue
        if error is not None:
            # Keras refused these shapes; so does the reference (NumPy's broadcasting).
            with pytest.raises(ValueError):
                reference_output(case, output, ref_dtype)
            checked += 1
            continue
        actual = reference_output(case, output, ref_dtype)
        assert np.shape(actual) == expected.shape, (output, np.shape(actual), expected.shape)
        assert np.asarray(actual).dtype == np.dtype(ref_dtype), output
        assert_keras_close(actual, expected, kind, ref_dtype,
                           err_msg=f"{case['id']} {case['options']} {output}")
        checked += 1
    assert checked


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c["id"])
def test_matches_keras_in_the_same_dtype(case, dtype):
    """Per-sample loss, reduced loss and d loss/d y_pred (jax.grad), with and without weights."""
    check_against_keras(case, dtype, dtype, "keras_losses")


def touches_float32_clip_bounds(case):
    """Inputs at which float32 and float64 clip differently (1 - 1e-7 rounds to 1 - 2**-23)."""
    inputs = F.inputs(case)
    y_pred, options, name = inputs["y_pred"], case["options"], reference_name(case)
    near = 3e-7
    if name.startswith("sigmoid_"):
        return bool(np.any(np.abs(y_pred) >= 15.0))          # sigmoid within 3e-7 of 0 or 1
    if name.startswith("softmax_"):
        p = np.exp(y_pred - y_pred.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return bool(np.any((p <= near) | (p >= 1 - near)))
    if name == "kl_divergence":
        both = np.concatenate([y_pred.ravel(), inputs["y_true"].ravel()])
        return bool(np.any((both <= near) | (both >= 1)))
    if name.endswith("crossentropy") and not options.get("from_logits"):
        p = y_pred
        if name != "binary_crossentropy":
            axis = options.get("axis", -1)
            with np.errstate(all="ignore"):
                p = y_pred / y_pred.sum(axis, keepdims=True)
        return bool(np.any(~np.isfinite(p) | (p <= near) | (p >= 1 - near)))
    return False


GENERIC_CASES = [c for c in LOSS_CASES if not touches_float32_clip_bounds(c)]


@pytest.mark.parametrize("case", GENERIC_CASES, ids=lambda c: c["id"])
def test_float64_reference_matches_keras_float32(case):
    """The float64 reference against Keras's shipping (float32) numbers."""
    check_against_keras(case, "float64", "float32", "keras_losses_vs_float32")


def test_the_bound_cases_are_the_only_exclusions():
    """The excluded cases really differ between Keras float32 and float64 (and are few)."""
    excluded = [c for c in LOSS_CASES if touches_float32_clip_bounds(c)]
    assert 5 <= len(excluded) <= 20
    assert len(GENERIC_CASES) > 100


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", F.cases("reduce"), ids=lambda c: c["id"])
def test_reduce_loss_matches_keras(case, dtype):
    inputs = F.inputs(case)
    dt = np.dtype(dtype)
    weight = inputs.get("sample_weight")
    mask = inputs.get("mask")
    args = (inputs["values"].astype(dt), None if weight is None else weight.astype(dt),
            None if mask is None else mask.astype(bool))
    error = F.error(case, dtype, "loss")
    if error is not None:
        with pytest.raises(ValueError):
            L.reduce_loss(*args)
        return
    expected = F.result(case, dtype, "loss")
    actual = L.reduce_loss(*args)
    assert actual.shape == expected.shape and actual.dtype == dt
    assert_keras_close(actual, expected, "keras_losses", dtype)


# ---------------------------------------------------------------------------
# Gradients against central finite differences (float64)
# ---------------------------------------------------------------------------

def _gradient_problems():
    rng = np.random.default_rng(3)
    n, c = 4, 3
    normal = rng.standard_normal
    one_hot = lambda labels, k: np.eye(k)[labels]
    reg = (normal((n, c)), normal((n, c)))
    seq_w = rng.uniform(0.1, 2, (n, 2))
    seq_mask = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=bool)
    problems = [
        ("mean_squared_error", reg, {}),
        ("mean_absolute_error", reg, {}),
        ("mean_absolute_percentage_error", (normal((n, c)) + 3, normal((n, c))), {}),
        ("mean_squared_logarithmic_error",
         (rng.uniform(0.1, 3, (n, c)), rng.uniform(0.1, 3, (n, c))), {}),
        ("huber", reg, dict(delta=0.7)),
        ("log_cosh", reg, {}),
        ("poisson", (rng.uniform(0, 3, (n, c)), rng.uniform(0.1, 3, (n, c))), {}),
        ("kl_divergence", (rng.uniform(0.1, 0.9, (n, c)), rng.uniform(0.05, 0.95, (n, c))), {}),
        ("cosine_similarity", reg, {}),
        ("cosine_similarity", (normal((n, c, 2)), normal((n, c, 2))), dict(axis=1)),
        ("hinge", (2.0 * rng.integers(0, 2, (n, c)) - 1, normal((n, c))), {}),
        ("squared_hinge", (rng.integers(0, 2, (n, c)).astype(float), normal((n, c))), {}),
        ("categorical_hinge", (one_hot(rng.integers(0, c, n), c), normal((n, c))), {}),
        ("binary_crossentropy",
         (rng.integers(0, 2, (n, c)).astype(float), rng.uniform(0.05, 0.95, (n, c))),
         dict(label_smoothing=0.1)),
        ("binary_crossentropy", (rng.uniform(0, 1, (n, c)), 3 * normal((n, c))),
         dict(from_logits=True)),
        ("binary_crossentropy",
         (rng.integers(0, 2, (n, 2, c)).astype(float), rng.uniform(0.05, 0.95, (n, 2, c))),
         dict(axis=1)),
        ("categorical_crossentropy",
         (one_hot(rng.integers(0, c, n), c), rng.uniform(0.1, 2, (n, c))),
         dict(label_smoothing=0.2)),
        ("categorical_crossentropy", (one_hot(rng.integers(0, c, n), c), 2 * normal((n, c))),
         dict(from_logits=True)),
        ("categorical_crossentropy",
         (np.moveaxis(one_hot(rng.integers(0, c, (n, 2)), c), -1, 1), rng.uniform(0.1, 2, (n, c, 2))),
         dict(axis=1)),
        ("sparse_categorical_crossentropy",
         (rng.integers(0, c, n).astype(float), rng.uniform(0.1, 2, (n, c))), {}),
        ("sparse_categorical_crossentropy",
         (np.array([0.0, -1.0, 2.0, 1.0]), 2 * normal((n, c))),
         dict(from_logits=True, ignore_class=-1)),
        ("sigmoid_binary_crossentropy",
         (rng.integers(0, 2, (n, c)).astype(float), 3 * normal((n, c))),
         dict(label_smoothing=0.1)),
        ("sigmoid_binary_crossentropy", (rng.uniform(0, 1, (n, c)), 3 * normal((n, c))),
         dict(clip=False)),
        ("softmax_categorical_crossentropy", (one_hot(rng.integers(0, c, n), c), 2 * normal((n, c))),
         dict(label_smoothing=0.1)),
        ("softmax_sparse_categorical_crossentropy",
         (rng.integers(0, c, n).astype(float), 2 * normal((n, c))), dict(clip=False)),
    ]
    out = []
    for name, (y_true, y_pred), options in problems:
        out.append((name, y_true, y_pred, options, None, None))
        out.append((name, y_true, y_pred, options, rng.uniform(0.1, 2, (n, 1)), None))
    # per-step losses (N, T) with temporal weights and a mask
    y_true3, y_pred3 = normal((n, 2, c)), normal((n, 2, c))
    out.append(("mean_squared_error", y_true3, y_pred3, {}, seq_w, None))
    out.append(("mean_squared_error", y_true3, y_pred3, {}, seq_w, seq_mask))
    out.append(("huber", y_true3, y_pred3, {}, None, seq_mask))
    labels3 = rng.integers(0, c, (n, 2)).astype(float)
    out.append(("softmax_sparse_categorical_crossentropy", labels3, normal((n, 2, c)), {},
                seq_w, seq_mask))
    return out


GRADIENT_PROBLEMS = _gradient_problems()


@pytest.mark.parametrize(
    "name, y_true, y_pred, options, sample_weight, mask", GRADIENT_PROBLEMS,
    ids=[f"{p[0]}-{i}" for i, p in enumerate(GRADIENT_PROBLEMS)])
def test_gradient_matches_finite_differences(name, y_true, y_pred, options, sample_weight, mask):
    y_pred = np.ascontiguousarray(y_pred, dtype=np.float64)
    analytic = L.loss_grad(name, y_true, y_pred, sample_weight, mask, **options)
    assert analytic.shape == y_pred.shape
    assert np.any(analytic != 0)

    def f():
        return float(L.loss_value(name, y_true, y_pred, sample_weight, mask, **options))

    check_gradient(f, y_pred, analytic, name="y_pred", eps=1e-6,
                   **tol("finite_difference", np.float64))


def test_named_grad_functions_are_loss_grad():
    rng = np.random.default_rng(0)
    y_true, y_pred, w = rng.uniform(0, 1, (3, 2)), rng.uniform(0.1, 0.9, (3, 2)), np.ones(3)
    np.testing.assert_array_equal(
        L.binary_crossentropy_grad(y_true, y_pred, w, label_smoothing=0.1),
        L.loss_grad("binary_crossentropy", y_true, y_pred, w, label_smoothing=0.1))
    np.testing.assert_array_equal(L.huber(y_true, y_pred, delta=0.3),
                                  L.LOSSES["huber"](y_true, y_pred, delta=0.3)[0])
    assert L.mse is L.mean_squared_error and L.kld is L.kl_divergence


# ---------------------------------------------------------------------------
# Reduction: weights, masks, empty and zero-weight batches
# ---------------------------------------------------------------------------

def test_reduce_loss_divides_by_the_element_count_not_the_weights():
    per = np.array([1.0, 2.0, 3.0, 4.0])
    assert L.reduce_loss(per, np.array([1.0, 0.0, 0.0, 1.0])) == pytest.approx(5.0 / 4)
    assert L.reduce_loss(per, np.zeros(4)) == 0.0           # a zero-weight batch: 0, not NaN
    np.testing.assert_array_equal(L.reduce_loss(per, np.ones((4, 1))), L.reduce_loss(per))


def test_mask_counts_only_valid_entries():
    rng = np.random.default_rng(1)
    per = rng.uniform(0, 1, (3, 4))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    weight = rng.uniform(0, 2, (3, 4))
    assert L.reduce_loss(per, mask=mask) == pytest.approx(per[mask].mean())
    assert L.reduce_loss(per, weight, mask) == pytest.approx((per * weight)[mask].sum() / mask.sum())
    assert L.reduce_loss(per, mask=np.zeros((3, 4), bool)) == 0.0


def test_zero_step_weight_removes_the_step_value_but_not_its_count():
    """Temporal weights: a 0 weight makes a step's loss irrelevant, yet (as in Keras)
    the step still counts in the "sum_over_batch_size" divisor; a mask drops both."""
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    weight = np.ones((3, 4))
    weight[1, 2] = 0.0
    changed = y_pred.copy()
    changed[1, 2] += 10.0
    base = L.loss_value("mean_squared_error", y_true, y_pred, weight)
    assert L.loss_value("mean_squared_error", y_true, changed, weight) == pytest.approx(base)
    grad = L.mean_squared_error_grad(y_true, y_pred, weight)
    np.testing.assert_array_equal(grad[1, 2], 0.0)
    per = L.mean_squared_error(y_true, y_pred)
    assert base == pytest.approx((per * weight).sum() / per.size)
    masked = L.loss_value("mean_squared_error", y_true, y_pred, mask=weight.astype(bool))
    assert masked == pytest.approx(per[weight.astype(bool)].mean())
    assert masked != pytest.approx(base)


def test_per_sample_weights_against_per_step_losses():
    per = np.arange(12.0).reshape(4, 3)
    with pytest.raises(ValueError):                          # Keras 3: "Incompatible shapes"
        L.reduce_loss(per, np.ones(4))
    np.testing.assert_allclose(L.reduce_loss(per, np.array([[1.0], [0], [0], [0]])), per[0].sum() / 12)
    square = np.arange(9.0).reshape(3, 3)                    # N == T: broadcasts along time
    np.testing.assert_allclose(L.reduce_loss(square, np.array([1.0, 0, 0])), square[:, 0].sum() / 9)


def test_reduce_loss_grad_is_the_derivative_of_reduce_loss():
    rng = np.random.default_rng(4)
    per = rng.uniform(0, 1, (3, 4))
    for weight, mask in [(None, None), (rng.uniform(0, 2, (3, 1)), None),
                         (rng.uniform(0, 2, (3, 4)), rng.uniform(0, 1, (3, 4)) > 0.3)]:
        coeff = L.reduce_loss_grad(per.shape, weight, mask)
        check_gradient(lambda: float(L.reduce_loss(per, weight, mask)), per, coeff, name="per",
                       **tol("finite_difference", np.float64))


def test_empty_and_scalar_inputs_come_back_unreduced():
    assert L.reduce_loss(np.zeros(0)).shape == (0,)
    assert L.reduce_loss(np.zeros((0, 3))) == 0.0
    assert L.reduce_loss(np.array(2.5), np.array(2.0)) == 5.0


# ---------------------------------------------------------------------------
# Edges: labels, clipping, fused forms
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_labels_out_of_range_give_zero_loss_and_gradient(from_logits):
    """Keras on JAX: one_hot of a label outside [0, C) is a zero row -- loss 0, silently."""
    rng = np.random.default_rng(5)
    y_pred = rng.uniform(0.1, 1, (4, 3))
    labels = np.array([3.0, -1.0, 7.0, 1.0])
    per = L.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits)
    np.testing.assert_array_equal(per[:3], 0.0)
    assert per[3] > 0
    grad = L.sparse_categorical_crossentropy_grad(labels, y_pred, from_logits=from_logits)
    np.testing.assert_array_equal(grad[:3], 0.0)
    assert L.loss_value("sparse_categorical_crossentropy", labels, y_pred,
                        from_logits=from_logits) == pytest.approx(per[3] / 4)


def test_ignore_class_masks_the_reduction():
    y_pred = np.random.default_rng(6).standard_normal((4, 3))
    labels = np.array([0.0, 2.0, 2.0, 1.0])
    per = L.sparse_categorical_crossentropy(labels, y_pred, from_logits=True, ignore_class=2)
    np.testing.assert_array_equal(per[1:3], 0.0)
    value = L.loss_value("sparse_categorical_crossentropy", labels, y_pred, from_logits=True,
                         ignore_class=2)
    assert value == pytest.approx((per[0] + per[3]) / 2)     # not / 4
    everything = np.full(4, 2.0)
    assert L.loss_value("sparse_categorical_crossentropy", everything, y_pred,
                        from_logits=True, ignore_class=2) == 0.0
    np.testing.assert_array_equal(
        L.sparse_categorical_crossentropy_grad(everything, y_pred, from_logits=True,
                                               ignore_class=2), 0.0)


def test_hinge_converts_labels_only_when_all_are_binary():
    y_pred = np.array([[0.5, -0.5]])
    np.testing.assert_allclose(L.hinge(np.array([[1.0, 0.0]]), y_pred), [0.5])   # -> +1, -1
    np.testing.assert_allclose(L.hinge(np.array([[1.0, -1.0]]), y_pred), [0.5])
    np.testing.assert_allclose(L.hinge(np.array([[0.0, -1.0]]), y_pred), [0.75])  # 0 kept


@pytest.mark.parametrize("dtype, expected", [(np.float32, -np.log(2.0 ** -23)),
                                             (np.float64, -np.log(1e-7))])
def test_clip_bound_depends_on_dtype(dtype, expected):
    """1 - 1e-7 rounds to 1 - 2**-23 in float32: the saturated loss differs by dtype."""
    value = L.binary_crossentropy(np.zeros((1, 1), dtype), np.ones((1, 1), dtype))
    assert value.dtype == dtype
    np.testing.assert_allclose(value, [expected], rtol=1e-6)
    low = L.binary_crossentropy(np.ones((1, 1), dtype), np.zeros((1, 1), dtype))
    np.testing.assert_allclose(low, [-np.log(dtype(1e-7))], rtol=1e-6)


def test_probability_gradient_is_zero_beyond_the_clip_and_half_on_it():
    y_true = np.array([[0.0, 1.0, 0.0, 1.0]])
    y_pred = np.array([[1.5, -0.2, 1 - 1e-7, 0.5]])
    grad = L.binary_crossentropy_grad(y_true, y_pred)
    np.testing.assert_array_equal(grad[0, :2], 0.0)
    full = 1 / (1 - y_pred[0, 2]) / 4                        # d/dp -log(1 - p), mean over 4
    np.testing.assert_allclose(grad[0, 2], 0.5 * full)       # JAX: a tie on the bound gets 1/2


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_fused_sigmoid_equals_the_probability_path_inside_the_bounds():
    rng = np.random.default_rng(7)
    z = rng.uniform(-8, 8, (5, 3))
    y = rng.uniform(0, 1, (5, 3))
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy(y, z),
                               L.binary_crossentropy(y, sigmoid(z)), rtol=1e-9)
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy(y, z, clip=False),
                               L.binary_crossentropy(y, z, from_logits=True), rtol=1e-12)
    dp = L.binary_crossentropy_grad(y, sigmoid(z))
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy_grad(y, z),
                               dp * sigmoid(z) * (1 - sigmoid(z)), rtol=1e-7)
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy_grad(y, z),
                               (sigmoid(z) - y) / 15, rtol=1e-9)     # / (N * C)


def test_fused_saturation_conventions():
    """clip=True: Keras-on-JAX (bounded loss, no gradient); clip=False: from_logits."""
    y = np.array([[0.0, 1.0]])
    z = np.array([[50.0, -50.0]])
    clipped = L.sigmoid_binary_crossentropy(y, z)
    np.testing.assert_allclose(clipped, [-np.log(1e-7)], rtol=1e-9)
    np.testing.assert_array_equal(L.sigmoid_binary_crossentropy_grad(y, z), 0.0)
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy(y, z, clip=False), [50.0], rtol=1e-12)
    np.testing.assert_allclose(L.sigmoid_binary_crossentropy_grad(y, z, clip=False),
                               [[0.5, -0.5]], rtol=1e-12)
    labels = np.array([[0.0, 1.0, 0.0]])
    logits = np.array([[60.0, 0.0, 0.0]])
    np.testing.assert_allclose(L.softmax_categorical_crossentropy(labels, logits),
                               [-np.log(1e-7)], rtol=1e-9)
    np.testing.assert_array_equal(L.softmax_categorical_crossentropy_grad(labels, logits), 0.0)
    np.testing.assert_allclose(L.softmax_categorical_crossentropy(labels, logits, clip=False),
                               [60.0], rtol=1e-12)


def test_fused_softmax_equals_the_probability_path_inside_the_bounds():
    rng = np.random.default_rng(8)
    z = rng.uniform(-4, 4, (5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    for smoothing in (0.0, 0.1):
        np.testing.assert_allclose(
            L.softmax_categorical_crossentropy(y, z, label_smoothing=smoothing),
            L.categorical_crossentropy(y, p, label_smoothing=smoothing), rtol=1e-10)
        np.testing.assert_allclose(
            L.softmax_categorical_crossentropy_grad(y, z, label_smoothing=smoothing),
            L.categorical_crossentropy_grad(y, z, from_logits=True, label_smoothing=smoothing),
            rtol=1e-10, atol=1e-15)
    labels = rng.integers(0, 4, 5).astype(float)
    np.testing.assert_allclose(L.softmax_sparse_categorical_crossentropy(labels, z),
                               L.sparse_categorical_crossentropy(labels, p), rtol=1e-10)


def test_align_ranks_follows_keras():
    a, b = np.zeros(5), np.zeros((5, 1))
    assert [x.shape for x in L.align_ranks(a, b)] == [(5, 1), (5, 1)]
    assert [x.shape for x in L.align_ranks(b, a)] == [(5, 1), (5, 1)]
    a, b = np.zeros((4, 3)), np.zeros((4, 3, 1))
    assert [x.shape for x in L.align_ranks(a, b)] == [(4, 3), (4, 3)]
    a, b = np.zeros(4), np.zeros((4, 3))
    assert [x.shape for x in L.align_ranks(a, b)] == [(4,), (4, 3)]
    # y_true (N, T) against y_pred (N, T, 1): the gradient keeps y_pred's shape
    grad = L.mean_squared_error_grad(np.ones((4, 3)), np.zeros((4, 3, 1)))
    assert grad.shape == (4, 3, 1)


@pytest.mark.parametrize("name", ["binary_crossentropy", "sigmoid_binary_crossentropy"])
def test_logit_gradient_keeps_float32_precision_when_saturated(name):
    """p - y written as (1 - y) sigmoid(z) - y sigmoid(-z): no cancellation at |z| ~ 17."""
    z = np.array([[17.0, -17.0, 12.0]])
    y = np.array([[1.0, 0.0, 1.0]])
    options = dict(from_logits=True) if name == "binary_crossentropy" else dict(clip=False)
    grad32 = L.loss_grad(name, y.astype(np.float32), z.astype(np.float32), **options)
    grad64 = L.loss_grad(name, y, z, **options)
    assert np.all(grad64 != 0)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-5)
