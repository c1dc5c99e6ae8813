"""The engine's compiled losses against the NumPy reference and against Keras 3 (recorded).

``fastrnn._engine.loss_and_gradient`` runs the engine's own loss code
(``engine_losses.pxi``: ``_gather_targets``, ``_loss``, ``_metrics``) on given
outputs, exactly as a training step does after the forward pass.  Every
recorded case of ``tests/fixtures/keras/losses_metrics.npz`` whose class axis
is the last one goes through it: the reduced loss and d loss/d y_pred (d/d the
logits for the fused sigmoid/softmax forms), plain and with Keras's extra
weights, in float32 and float64.  Then the edges: extreme logits, zero weights,
all-masked and one-class batches, out-of-bounds probabilities.
"""
import numpy as np
import pytest

from fastrnn import _engine
from fastrnn.reference import losses as L
from keras_loss_fixtures import DTYPES, assert_keras_close, fixtures
from tolerances import assert_close

F = fixtures()
KINDS = ("loss", "fused_sigmoid", "fused_softmax", "weighted")
FUSED = {"fused_sigmoid": "sigmoid", "fused_softmax": "softmax"}


def _engine_form(case, dtype, weighted=False):
    """(y_true, y_pred, weights, kwargs, reference name, reference y_true, reference weights)
    for the engine, or None when the case is outside what the engine computes
    (another class axis, a Keras mask, weights Keras refuses)."""
    options = dict(case["options"])
    if options.pop("axis", -1) != -1:
        return None
    inputs = F.inputs(case)
    if "mask" in inputs or F.error(case, dtype, "loss") is not None:
        return None              # Keras's mask; or shapes Keras refuses (the engine is laxer)
    dt = np.dtype(dtype)
    yt, yp = inputs["y_true"].astype(dt), inputs["y_pred"].astype(dt)
    sparse = case["fn"].startswith("sparse")
    lead = yp.shape[:-1]
    if sparse:
        yte = yt.reshape(lead + (1,))
        labels = yte[..., 0]
        ignore = options.get("ignore_class")
        bad = (labels < 0) | (labels >= yp.shape[-1]) | (labels != np.floor(labels))
        if ignore is not None:
            bad &= labels != ignore
        if bad.any():
            return None          # fit rejects such labels (tested in test_training_data)
    elif yt.shape != yp.shape:
        if yt.shape + (1,) != yp.shape:
            return None
        yte = yt.reshape(yp.shape)
    else:
        yte = yt
    w = inputs.get("sample_weight")
    if weighted:
        w = np.linspace(0.25, 2.0, yp.shape[0]).reshape(-1, 1)   # the script's extra weights
    ref_w = None if w is None else w.astype(dt)
    if w is not None:
        w = w.astype(dt)
        if w.shape == (yp.shape[0], 1):
            w = np.broadcast_to(w, lead) if yp.ndim == 3 else w[:, 0]
        if w.shape != lead:
            return None
    kwargs = dict(code=_engine.LOSSES[case["fn"]],
                  from_logits=options.get("from_logits", False),
                  label_smoothing=options.get("label_smoothing", 0.0),
                  param=options.get("delta", 0.0), ignore_class=options.get("ignore_class"),
                  fused_activation=FUSED.get(case["kind"]))
    name = {"fused_sigmoid": "sigmoid_", "fused_softmax": "softmax_"}.get(case["kind"], "")
    return (np.ascontiguousarray(yte), yp, None if w is None else np.ascontiguousarray(w),
            kwargs, name + case["fn"], yt, ref_w, options)


CASES = [c for kind in KINDS for c in F.cases(kind) if _engine_form(c, "float64") is not None]


def _zero_output(case):
    """Cosine similarity of an all-zero output: jax.grad (and the reference) give NaN, the
    engine 0 (documented)."""
    return case["fn"] == "cosine_similarity" and bool(
        np.any(np.all(F.inputs(case)["y_pred"] == 0, axis=-1)))


def test_every_engine_loss_has_recorded_cases():
    covered = {c["fn"] for c in CASES}
    assert covered == {name for name in _engine.LOSSES if len(name) > 3}, covered
    assert {c["kind"] for c in CASES} == set(KINDS)
    assert len(CASES) > 100


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_engine_loss_matches_the_reference(case, dtype, weighted):
    """Loss and gradient, float64 tight and float32 loose, against fastrnn.reference.losses."""
    form = _engine_form(case, dtype, weighted)
    if form is None:
        pytest.skip("weights Keras refuses for these shapes")
    yte, yp, w, kwargs, name, yt, ref_w, options = form
    loss, grad, out, _ = _engine.loss_and_gradient(yte, yp, w, **kwargs)
    with np.errstate(all="ignore"):
        ref_loss = L.loss_value(name, yt, yp, ref_w, **options)
        ref_grad = L.loss_grad(name, yt, yp, ref_w, **options).reshape(grad.shape)
    assert grad.dtype == np.dtype(dtype) and grad.shape == yp.shape
    assert_close(loss, ref_loss, "engine_loss", dtype, err_msg="loss")
    if _zero_output(case):
        nan = np.isnan(ref_grad)
        assert nan.any() and np.all(grad[nan] == 0)       # the engine's documented choice
        ref_grad = np.where(nan, 0, ref_grad)
    assert_close(grad, ref_grad, "engine_loss", dtype, err_msg="gradient")
    if kwargs["fused_activation"] == "sigmoid":          # the output is left activated
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(out, 1 / (1 + np.exp(-yp.astype(np.float64))), rtol=1e-6)
    elif kwargs["fused_activation"] == "softmax":
        e = np.exp(yp - yp.max(-1, keepdims=True))
        np.testing.assert_allclose(out, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-12)
    else:
        np.testing.assert_array_equal(out, yp)


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_engine_loss_matches_keras(case, dtype, weighted):
    """Against the values Keras 3 recorded in the same dtype (the table's "keras_losses" tolerance)."""
    form = _engine_form(case, dtype, weighted)
    suffix = "_weighted" if weighted else ""
    expected_loss = F.result(case, dtype, "loss" + suffix)
    expected_grad = F.result(case, dtype, "grad" + suffix)
    if form is None or expected_loss is None:
        pytest.skip("not recorded for these weights")
    yte, yp, w, kwargs, *_ = form
    loss, grad, _, _ = _engine.loss_and_gradient(yte, yp, w, **kwargs)
    assert_keras_close(loss, expected_loss, "keras_losses", dtype, err_msg="loss")
    if _zero_output(case):
        expected_grad = np.where(np.isnan(expected_grad), 0, expected_grad)
    assert_keras_close(grad, expected_grad.reshape(grad.shape), "keras_losses", dtype,
                       err_msg="gradient")


# ---------------------------------------------------------------------------
# Edges
# ---------------------------------------------------------------------------

BCE, CCE, SCCE = (_engine.LOSSES[n] for n in ("binary_crossentropy", "categorical_crossentropy",
                                             "sparse_categorical_crossentropy"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [20.0, 100.0, 1e4, 1e30])
def test_fused_sigmoid_is_finite_and_keras_at_extreme_logits(dtype, scale):
    z = (np.array([[-1.0, 1.0, 0.5], [1.0, -0.3, -1.0]]) * scale).astype(dtype)
    y = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]], dtype)
    loss, grad, out, _ = _engine.loss_and_gradient(y, z, code=BCE, fused_activation="sigmoid")
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(out))
    assert_close(loss, L.loss_value("sigmoid_binary_crossentropy", y, z), "engine_loss", dtype)
    assert_close(grad, L.loss_grad("sigmoid_binary_crossentropy", y, z), "engine_loss", dtype)
    # a saturated wrong prediction costs Keras's clipped -log(eps) and, as jax.grad of the
    # clip, no gradient; a saturated right one costs ~0
    eps = np.dtype(dtype).type(1e-7)
    assert loss <= -np.log(float(eps)) + 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code, labels", [(CCE, np.eye(4)[[0, 3]]), (SCCE, [[0], [3]])])
def test_fused_softmax_at_extreme_logits(dtype, code, labels):
    z = np.array([[1e4, -1e4, 0.0, 3.0], [-50.0, 0.0, 50.0, 49.0]], dtype)
    y = np.asarray(labels, dtype)
    loss, grad, out, _ = _engine.loss_and_gradient(y, z, code=code, fused_activation="softmax")
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    name = "softmax_categorical_crossentropy" if code == CCE else \
        "softmax_sparse_categorical_crossentropy"
    assert_close(loss, L.loss_value(name, np.asarray(labels, dtype).squeeze(), z),
                 "engine_loss", dtype)
    np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fusion_beats_the_unfused_probabilities_in_float32(dtype):
    """At z = 12 float32 sigmoid rounds 1 - p badly; the fused value keeps full precision."""
    z = np.array([[12.0]], dtype)
    y = np.array([[0.0]], dtype)
    fused, _, _, _ = _engine.loss_and_gradient(y, z, code=BCE, fused_activation="sigmoid")
    exact = np.logaddexp(0.0, 12.0)
    assert abs(fused - exact) / exact < (1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("code", [BCE, CCE, SCCE, _engine.LOSSES["mse"], _engine.LOSSES["huber"]])
def test_zero_weights_give_zero_loss_and_gradient(code):
    rng = np.random.default_rng(0)
    yp = rng.uniform(0.1, 0.9, (4, 3, 3))
    yp /= yp.sum(-1, keepdims=True)
    yt = np.eye(3)[rng.integers(0, 3, (4, 3))] if code != SCCE else \
        rng.integers(0, 3, (4, 3, 1)).astype(float)
    loss, grad, _, totals = _engine.loss_and_gradient(
        yt, yp, np.zeros((4, 3)), code=code, param=1.0,
        metrics=[{"code": code, "weighted": True, "param": 1.0}, {"code": code, "param": 1.0}])
    assert loss == 0 and not grad.any()
    (wt, wc), (ut, uc) = totals
    assert wt == wc == 0           # weighted metric: nothing counted (result 0, not NaN)
    assert uc == 4 and ut > 0      # unweighted: every sample counts


def test_a_zero_weight_row_is_skipped_even_if_its_loss_is_not_finite():
    """Poisson of a negative prediction is NaN (as Keras); weight 0 removes it entirely."""
    yp = np.array([[0.5], [-3.0]])
    yt = np.array([[1.0], [1.0]])
    code = _engine.LOSSES["poisson"]
    loss, grad, _, _ = _engine.loss_and_gradient(yt, yp, np.array([1.0, 0.0]), code=code)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and grad[1, 0] == 0
    assert loss == pytest.approx(float(L.poisson(yt[:1], yp[:1])[0]) / 2)
    nan_loss, _, _, _ = _engine.loss_and_gradient(yt, yp, code=code)
    assert np.isnan(nan_loss)          # unweighted: Keras's NaN (fit then stops, clearly)


def test_all_masked_batch_is_zero():
    z = np.random.default_rng(1).standard_normal((3, 2, 4))
    labels = np.full((3, 2, 1), -1.0)
    loss, grad, _, _ = _engine.loss_and_gradient(labels, z, code=SCCE, from_logits=True,
                                                 ignore_class=-1)
    assert loss == 0 and not grad.any()


def test_ignore_class_divides_by_the_valid_steps():
    z = np.random.default_rng(2).standard_normal((2, 3, 4))
    labels = np.array([[[1], [-1], [2]], [[-1], [-1], [0]]], float)
    loss, grad, _, _ = _engine.loss_and_gradient(labels, z, code=SCCE, from_logits=True,
                                                 ignore_class=-1)
    valid = labels[..., 0] != -1
    per = L.sparse_categorical_crossentropy(np.where(valid, labels[..., 0], 0), z,
                                            from_logits=True)
    assert loss == pytest.approx(per[valid].sum() / valid.sum(), rel=1e-12)
    assert not grad[~valid].any()


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_one_class_batches(label):
    """Every target the same class: finite, the reference's numbers (hinge's 0/1 labels
    become -1/+1 only when all of them are 0 or 1: here they are)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, (5, 1))
    y = np.full((5, 1), label)
    for name in ("binary_crossentropy", "hinge", "squared_hinge", "mean_squared_error"):
        loss, grad, _, _ = _engine.loss_and_gradient(y, p, code=_engine.LOSSES[name])
        assert loss == pytest.approx(float(L.loss_value(name, y, p)), rel=1e-12)
        np.testing.assert_allclose(grad, L.loss_grad(name, y, p), rtol=1e-12)
    z = rng.standard_normal((5, 3))
    labels = np.zeros((5, 1))
    loss, _, _, _ = _engine.loss_and_gradient(labels, z, code=SCCE, fused_activation="softmax")
    assert loss == pytest.approx(
        float(L.loss_value("softmax_sparse_categorical_crossentropy", labels[:, 0], z)), rel=1e-12)


def test_hinge_label_conversion_is_batch_wide():
    """Keras converts 0/1 labels to -1/+1 only if every label of the batch is 0 or 1."""
    p = np.array([[0.3], [-0.2]])
    code = _engine.LOSSES["hinge"]
    binary, _, _, _ = _engine.loss_and_gradient(np.array([[0.0], [1.0]]), p, code=code)
    signed, _, _, _ = _engine.loss_and_gradient(np.array([[-1.0], [1.0]]), p, code=code)
    assert binary == pytest.approx(signed, rel=1e-15)
    mixed, _, _, _ = _engine.loss_and_gradient(np.array([[0.0], [0.5]]), p, code=code)
    assert mixed == pytest.approx(float(L.loss_value("hinge", [[0.0], [0.5]], p)), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_outside_0_1_are_clipped_as_keras(dtype):
    """from_logits=False with outputs outside [0, 1] (e.g. a linear layer): Keras clips to
    [1e-7, 1 - 1e-7] (bounded loss, no gradient beyond the bounds); so does the engine."""
    p = np.array([[-0.5, 1.5, 0.0, 1.0, 0.3]], dtype)
    y = np.array([[1.0, 0.0, 1.0, 0.0, 1.0]], dtype)
    loss, grad, _, _ = _engine.loss_and_gradient(y, p, code=BCE)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert_close(loss, L.loss_value("binary_crossentropy", y, p), "engine_loss", dtype)
    assert grad[0, 0] == grad[0, 1] == 0          # beyond the bounds: flat
    assert grad[0, 4] != 0


def test_label_smoothing_and_delta_options_reach_the_engine():
    rng = np.random.default_rng(4)
    yp = rng.uniform(0.05, 0.95, (4, 3))
    yt = rng.integers(0, 2, (4, 3)).astype(float)
    loss, _, _, _ = _engine.loss_and_gradient(yt, yp, code=BCE, label_smoothing=0.3)
    assert loss == pytest.approx(float(L.loss_value("binary_crossentropy", yt, yp,
                                                    label_smoothing=0.3)), rel=1e-12)
    loss, _, _, _ = _engine.loss_and_gradient(yt, yp * 4, code=_engine.LOSSES["huber"],
                                              param=0.2)
    assert loss == pytest.approx(float(L.loss_value("huber", yt, yp * 4, delta=0.2)), rel=1e-12)


def test_the_test_entry_checks_its_arguments():
    with pytest.raises(ValueError, match="y_true"):
        _engine.loss_and_gradient(np.zeros((2, 2)), np.zeros((2, 3)), code=0)
    with pytest.raises(ValueError, match="labels"):
        _engine.loss_and_gradient(np.array([[3.0]]), np.zeros((1, 3)), code=SCCE)
    with pytest.raises(TypeError, match="y_pred"):
        _engine.loss_and_gradient(np.zeros((2, 1)), np.zeros((2, 1), int), code=0)
    with pytest.raises(ValueError, match="unknown loss"):
        _engine.loss_and_gradient(np.zeros((2, 1)), np.zeros((2, 1)), code=99)
