"""Record Keras 3 (JAX backend) values of losses, reductions and metrics.

Run in a throwaway environment that has Keras 3 and JAX (never a fastrnn
dependency)::

    python -m venv keras-venv && keras-venv/bin/pip install keras jax jaxlib
    KERAS_BACKEND=jax keras-venv/bin/python tools/keras_fixtures/losses_metrics.py

It writes ``tests/fixtures/keras/losses_metrics.npz`` (relative to the
repository root).  The parent process builds the inputs (seeded NumPy, every
value exactly representable in float32) and starts two workers: one with Keras's
defaults (float32) and one with ``JAX_ENABLE_X64=1`` and ``floatx="float64"``,
so that the fastrnn reference can be compared with Keras tightly in float64 and
with Keras's real float32 numbers.  (In the float64 worker ``ops.mean`` is
patched to accumulate in float64: Keras 3.15 computes it in float32 even for
float64 input; see ``patch_mean_to_float64``.)

File layout (read by ``tests/keras_loss_fixtures.py``): ``__meta__`` is UTF-8
JSON -- versions; one record per case (id, kind, function, options, input
names, and per dtype the messages of the outputs Keras refused); the string
resolution tables; the ``evaluate``/``fit`` records; and ``arrays``, mapping a
key to ``[buffer, offset, shape]`` in the flat ``values64``/``values32``
buffers.  Keys: ``<case id>/<input>`` (float64 inputs, all float32-exact) and
``<case id>/<dtype>/<output>`` (Keras's results; float32 ones in ``values32``).

Case kinds: ``loss`` (per-sample value, reduced value and ``jax.grad`` w.r.t.
``y_pred``, also with weights ``linspace(0.25, 2, N)`` of shape (N, 1)),
``fused_sigmoid``/``fused_softmax`` (the same for ``loss(y, sigmoid(z))`` etc.,
gradient w.r.t. the logits ``z``), ``weighted`` (given sample weights and a mask
on ``y_pred``), ``reduce`` (``reduce_weighted_values`` alone), ``metric``
(per-sample metric functions) and ``stream`` (metric objects over 3 batches).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, os.pardir, os.pardir, "tests", "fixtures", "keras",
                   "losses_metrics.npz")


# --------------------------------------------------------------------------
# Inputs (built identically in every process)
# --------------------------------------------------------------------------

def f32(a):
    """Round to float32 and back: both workers see the very same numbers."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def one_hot(labels, n):
    return np.eye(n)[np.asarray(labels)]


def build_cases():
    rng = np.random.default_rng(20240611)
    cases = []

    def add(kind, fn, inputs, options=None, tags=()):
        cid = f"{kind}/{fn}/{len(cases):03d}"
        cases.append(dict(id=cid, kind=kind, fn=fn, options=options or {},
                          inputs={k: (None if v is None else f32(v)) for k, v in inputs.items()},
                          tags=list(tags)))

    normal = lambda *s: f32(rng.standard_normal(s))
    uniform = lambda lo, hi, *s: f32(rng.uniform(lo, hi, s))

    # ---- regression-type losses -------------------------------------------
    reg2d = dict(y_true=normal(5, 3), y_pred=normal(5, 3))
    reg_col = dict(y_true=normal(5), y_pred=normal(5, 1))
    reg3d = dict(y_true=normal(4, 3, 2), y_pred=normal(4, 3, 2))
    yt = normal(4, 3)
    yp = yt.copy()
    yp[0] = yt[0]                       # exact ties (kinks of abs/max)
    yp[1] = yt[1] + np.array([1.0, -1.0, 0.3])      # |e| == delta (huber 1.0, 0.3)
    yp[2] = yt[2] + np.array([1e4, -1e4, 50.0])     # huge errors
    yp[3] = np.array([-2.0, 1e-7, 0.0])             # negative / eps / zero preds
    yt[3] = np.array([0.0, -3.0, 1e-7])             # zero / negative targets
    reg_edge = dict(y_true=f32(yt), y_pred=f32(yp))
    regression = ["mean_squared_error", "mean_absolute_error",
                  "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
                  "log_cosh", "cosine_similarity"]
    for name in regression:
        for inp in (reg2d, reg_col, reg3d, reg_edge):
            add("loss", name, inp)
    for delta in (1.0, 0.3):
        for inp in (reg2d, reg_col, reg3d, reg_edge):
            add("loss", "huber", inp, dict(delta=delta))
    # cosine: zero vectors
    add("loss", "cosine_similarity",
        dict(y_true=np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]),
             y_pred=np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])))

    counts = dict(y_true=f32(rng.integers(0, 4, (5, 3))), y_pred=uniform(0.05, 3.0, 5, 3))
    counts_edge = dict(y_true=np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 1.0]]),
                       y_pred=np.array([[0.0, 1e-7, 5.0], [2.0, 1e-3, 1e4]]))
    for inp in (counts, counts_edge):
        add("loss", "poisson", inp)
    probs = dict(y_true=uniform(0, 1, 5, 3), y_pred=uniform(0.01, 1, 5, 3))
    probs_edge = dict(y_true=np.array([[0.0, 0.5, 1.0], [1.0, 0.0, 0.2]]),
                      y_pred=np.array([[0.0, 1.0, 1.5], [1e-8, -0.2, 1e-7]]))
    for inp in (probs, probs_edge):
        add("loss", "kl_divergence", inp)

    # ---- hinge family -------------------------------------------------------
    yp = normal(5, 3)
    for labels in (rng.integers(0, 2, (5, 3)),                 # {0,1}: converted
                   2.0 * rng.integers(0, 2, (5, 3)) - 1.0,     # {-1,1}
                   rng.integers(-1, 2, (5, 3)),                # {-1,0,1}: left as is
                   np.ones((5, 3))):                           # one-class batch
        for name in ("hinge", "squared_hinge"):
            add("loss", name, dict(y_true=labels, y_pred=yp))
    ties = dict(y_true=np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
                y_pred=np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 2.0]]))
    for name in ("hinge", "squared_hinge"):
        add("loss", name, ties)
        add("loss", name, dict(y_true=f32(rng.integers(0, 2, 5)), y_pred=normal(5, 1)))
    oh = one_hot(rng.integers(0, 4, 5), 4)
    add("loss", "categorical_hinge", dict(y_true=oh, y_pred=normal(5, 4)))
    add("loss", "categorical_hinge",
        dict(y_true=one_hot([0, 1, 2], 3),
             y_pred=np.array([[0.5, 0.5, 0.5], [2.0, 1.0, 2.0], [-1.0, 3.0, 0.0]])))
    add("loss", "categorical_hinge", dict(y_true=one_hot(rng.integers(0, 3, (4, 2)), 3),
                                          y_pred=normal(4, 2, 3)))

    # ---- binary crossentropy ------------------------------------------------
    b_labels = f32(rng.integers(0, 2, (5, 3)))
    bprob = dict(y_true=b_labels, y_pred=uniform(0.01, 0.99, 5, 3))
    bprob_edge = dict(
        y_true=np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.3, 1.0], [0.0, 1.0, 0.7, 0.5]]),
        y_pred=np.array([[0.0, 1.0, 1.0, 0.0], [1e-8, 1.0 - 1e-8, 1e-7, 1.0 - 1e-7],
                         [-0.5, 1.5, 0.5, 2e-7]]))
    bprob_col = dict(y_true=f32(rng.integers(0, 2, 5)), y_pred=uniform(0.01, 0.99, 5, 1))
    bprob3d = dict(y_true=f32(rng.integers(0, 2, (4, 3, 2))), y_pred=uniform(0.01, 0.99, 4, 3, 2))
    bprob_one = dict(y_true=np.ones((4, 1)), y_pred=uniform(0.01, 0.99, 4, 1))
    blog = dict(y_true=b_labels, y_pred=f32(3 * rng.standard_normal((5, 3))))
    blog_ext = dict(
        y_true=np.array([[0.0, 1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 1.0, 0.0, 0.5],
                         [0.0, 1.0, 0.0, 1.0, 0.2]]),
        y_pred=np.array([[50.0, 50.0, -50.0, -50.0, 50.0],
                         [1e4, 1e4, -1e4, -1e4, -1e4],
                         [15.9, 16.2, -16.2, -15.9, 0.0]]))
    for inp in (bprob, bprob_edge, bprob_col, bprob3d, bprob_one):
        for opts in (dict(), dict(label_smoothing=0.2)):
            add("loss", "binary_crossentropy", inp, opts)
    add("loss", "binary_crossentropy", bprob3d, dict(axis=1))
    for inp in (blog, blog_ext):
        for opts in (dict(from_logits=True), dict(from_logits=True, label_smoothing=0.2)):
            add("loss", "binary_crossentropy", inp, opts)
        for opts in (dict(), dict(label_smoothing=0.2)):
            add("fused_sigmoid", "binary_crossentropy", inp, opts)
    add("fused_sigmoid", "binary_crossentropy",
        dict(y_true=f32(rng.integers(0, 2, (4, 3, 1))), y_pred=normal(4, 3, 1)))

    # ---- categorical crossentropy -------------------------------------------
    c_labels = one_hot(rng.integers(0, 4, 5), 4)
    raw = rng.uniform(0.05, 1, (5, 4))
    cprob = dict(y_true=c_labels, y_pred=f32(raw / raw.sum(1, keepdims=True)))
    cprob_unnorm = dict(y_true=c_labels, y_pred=uniform(0.05, 3, 5, 4))
    cprob_edge = dict(
        y_true=one_hot([0, 1, 0, 2, 3], 4),
        y_pred=np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                         [0.5, -0.2, 0.4, 0.3], [0.2, 0.3, 1e-8, 0.5],
                         [0.0, 0.0, 0.0, 2.0]]))
    soft = rng.uniform(0, 1, (5, 4))
    cprob_soft = dict(y_true=f32(np.vstack([soft[:3] / soft[:3].sum(1, keepdims=True), soft[3:]])),
                      y_pred=cprob["y_pred"])
    cprob_one = dict(y_true=one_hot([2, 2, 2, 2], 4), y_pred=cprob["y_pred"][:4])
    c3 = rng.uniform(0.05, 1, (4, 3, 5))
    cprob3d = dict(y_true=one_hot(rng.integers(0, 5, (4, 3)), 5),
                   y_pred=f32(c3 / c3.sum(-1, keepdims=True)))
    cprob_axis1 = dict(y_true=np.moveaxis(one_hot(rng.integers(0, 3, (4, 2)), 3), -1, 1),
                       y_pred=f32(np.moveaxis(c3[:, :2, :3] / c3[:, :2, :3].sum(-1, keepdims=True), -1, 1)))
    clog = dict(y_true=c_labels, y_pred=f32(2 * rng.standard_normal((5, 4))))
    clog_ext = dict(
        y_true=np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0.25, 0.25, 0.25, 0.25],
                         [0, 0, 0, 1.0]]),
        y_pred=np.array([[50.0, -50.0, 0.0, 0.0], [50.0, -50.0, 0.0, 0.0],
                         [1e4, -1e4, 0.0, 1e4], [1e4, -1e4, 0.0, 0.0],
                         [0.0, 0.0, 0.0, 16.5]]))
    for inp in (cprob, cprob_unnorm, cprob_edge, cprob_soft, cprob_one, cprob3d):
        for opts in (dict(), dict(label_smoothing=0.1)):
            add("loss", "categorical_crossentropy", inp, opts)
    add("loss", "categorical_crossentropy", cprob_axis1, dict(axis=1))
    add("loss", "categorical_crossentropy", cprob_axis1, dict(axis=1, from_logits=True))
    for inp in (clog, clog_ext, cprob3d):
        for opts in (dict(from_logits=True), dict(from_logits=True, label_smoothing=0.1)):
            add("loss", "categorical_crossentropy", inp, opts)
    for inp in (clog, clog_ext):
        for opts in (dict(), dict(label_smoothing=0.1)):
            add("fused_softmax", "categorical_crossentropy", inp, opts)
    add("fused_softmax", "categorical_crossentropy",
        dict(y_true=cprob3d["y_true"], y_pred=normal(4, 3, 5)))

    # ---- sparse categorical crossentropy ------------------------------------
    s_labels = f32(rng.integers(0, 4, 5))
    s_cases = [
        dict(y_true=s_labels, y_pred=cprob["y_pred"]),
        dict(y_true=s_labels[:, None], y_pred=cprob["y_pred"]),
        dict(y_true=np.array([0.0, 3.0, 0.0, 3.0, 1.0]), y_pred=cprob_edge["y_pred"]),
        dict(y_true=np.array([4.0, -1.0, 7.0, 0.0, 3.0]), y_pred=cprob["y_pred"]),   # out of range
        dict(y_true=f32(rng.integers(0, 5, (4, 3))), y_pred=cprob3d["y_pred"]),
        dict(y_true=np.array([2.0, 2.0, 2.0, 2.0]), y_pred=cprob["y_pred"][:4]),  # one class
    ]
    for inp in s_cases:
        add("loss", "sparse_categorical_crossentropy", inp)
    s_logit_cases = [
        dict(y_true=s_labels, y_pred=clog["y_pred"]),
        dict(y_true=np.array([0.0, 1.0, 3.0, 1.0, 3.0]), y_pred=clog_ext["y_pred"]),
        dict(y_true=np.array([4.0, -1.0, 7.0, 0.0, 3.0]), y_pred=clog["y_pred"]),
        dict(y_true=f32(rng.integers(0, 5, (4, 3))), y_pred=normal(4, 3, 5)),
    ]
    for inp in s_logit_cases:
        add("loss", "sparse_categorical_crossentropy", inp, dict(from_logits=True))
        add("fused_softmax", "sparse_categorical_crossentropy", inp)
    ign = dict(y_true=np.array([-1.0, 2.0, -1.0, 0.0, 3.0]), y_pred=cprob["y_pred"])
    add("loss", "sparse_categorical_crossentropy", ign, dict(ignore_class=-1))
    add("loss", "sparse_categorical_crossentropy", ign, dict(ignore_class=2))
    add("loss", "sparse_categorical_crossentropy", dict(y_true=-np.ones(5), y_pred=cprob["y_pred"]),
        dict(ignore_class=-1))
    ign3 = dict(y_true=np.array([[0.0, -1.0, 4.0], [-1.0, -1.0, 1.0], [2.0, 3.0, -1.0],
                                 [1.0, 1.0, 1.0]]), y_pred=normal(4, 3, 5))
    add("loss", "sparse_categorical_crossentropy", ign3, dict(ignore_class=-1, from_logits=True))

    # ---- reductions (Keras's reduce_weighted_values) -------------------------
    v5 = uniform(0, 2, 5)
    v43 = uniform(0, 2, 4, 3)
    v33 = uniform(0, 2, 3, 3)
    mask43 = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float)
    red = [
        dict(values=v5),
        dict(values=v5, sample_weight=uniform(0, 2, 5)),
        dict(values=v5, sample_weight=uniform(0, 2, 5, 1)),
        dict(values=v5, sample_weight=np.zeros(5)),
        dict(values=v5, sample_weight=np.array([0.0, 1.0, 0.0, 3.0, 0.0])),
        dict(values=v43),
        dict(values=v43, sample_weight=uniform(0, 2, 4, 3)),
        dict(values=v43, sample_weight=uniform(0, 2, 4, 1)),
        dict(values=v43, sample_weight=uniform(0, 2, 4)),         # (N,) vs (N,T): Keras?
        dict(values=v33, sample_weight=np.array([1.0, 2.0, 0.0])),  # N == T: broadcasts on T
        dict(values=v43, mask=mask43),
        dict(values=v43, mask=mask43, sample_weight=uniform(0, 2, 4, 3)),
        dict(values=v43, mask=mask43, sample_weight=uniform(0, 2, 4, 1)),
        dict(values=v43, mask=np.zeros((4, 3))),
        dict(values=v43, sample_weight=np.zeros((4, 3))),
        dict(values=np.zeros(0)),
        dict(values=np.zeros((0, 3))),
        dict(values=np.array(2.5)),
        dict(values=np.zeros((0, 3)), sample_weight=np.zeros((0, 3))),
    ]
    for r in red:
        add("reduce", "sum_over_batch_size", r)

    # ---- whole losses with weights and masks (Loss.__call__ + jax.grad) -----
    yt3 = normal(4, 3, 2)
    yp3 = normal(4, 3, 2)
    for sw in (uniform(0, 2, 4, 3), uniform(0, 2, 4, 1), np.zeros((4, 3)), None):
        for mask in (None, mask43, np.zeros((4, 3))):
            add("weighted", "mean_squared_error",
                dict(y_true=yt3, y_pred=yp3, sample_weight=sw, mask=mask))
    yt2 = normal(5, 3)
    yp2 = normal(5, 3)
    for sw in (uniform(0, 2, 5), uniform(0, 2, 5, 1), np.zeros(5)):
        add("weighted", "mean_squared_error", dict(y_true=yt2, y_pred=yp2, sample_weight=sw))
        add("weighted", "binary_crossentropy", dict(y_true=bprob["y_true"], y_pred=bprob["y_pred"],
                                                    sample_weight=sw))
        add("weighted", "categorical_crossentropy", dict(y_true=cprob["y_true"], y_pred=cprob["y_pred"],
                                                         sample_weight=sw))
    add("weighted", "sparse_categorical_crossentropy",
        dict(y_true=s_cases[4]["y_true"], y_pred=s_cases[4]["y_pred"], sample_weight=uniform(0, 2, 4, 3)))
    add("weighted", "sparse_categorical_crossentropy",
        dict(y_true=ign3["y_true"], y_pred=ign3["y_pred"], sample_weight=uniform(0, 2, 4, 3)),
        dict(ignore_class=-1, from_logits=True))
    add("weighted", "sparse_categorical_crossentropy",
        dict(y_true=ign3["y_true"], y_pred=ign3["y_pred"], mask=mask43),
        dict(ignore_class=-1, from_logits=True))
    # y_true (N, T) against y_pred (N, T, 1): ranks are aligned by squeezing y_pred
    add("weighted", "mean_squared_error",
        dict(y_true=normal(4, 3), y_pred=normal(4, 3, 1), sample_weight=uniform(0, 2, 4, 3)))

    # ---- metric functions (per-sample values) --------------------------------
    ba_true = f32(rng.integers(0, 2, (5, 3)))
    ba_pred = uniform(0, 1, 5, 3)
    ba_pred[0] = [0.5, 0.7, 0.75]
    ba_true_soft = ba_true.copy()
    ba_true_soft[1] = [0.3, 1.0, 0.0]
    for th in (0.5, 0.7):
        add("metric", "binary_accuracy", dict(y_true=ba_true, y_pred=ba_pred), dict(threshold=th))
    add("metric", "binary_accuracy", dict(y_true=ba_true_soft, y_pred=ba_pred))
    add("metric", "binary_accuracy", dict(y_true=ba_true[:, 0], y_pred=ba_pred[:, :1]))
    add("metric", "binary_accuracy", dict(y_true=ba_true[:, :1], y_pred=ba_pred[:, 0]))
    add("metric", "binary_accuracy", dict(y_true=f32(rng.integers(0, 2, (4, 3, 1))),
                                          y_pred=uniform(0, 1, 4, 3, 1)))
    add("metric", "accuracy", dict(y_true=np.array([1.0, 2.0, 3.0, 0.0]),
                                   y_pred=np.array([[1.0], [2.5], [3.0], [0.0]])))
    add("metric", "accuracy", dict(y_true=ba_true, y_pred=np.round(ba_pred)))
    ca_pred = normal(5, 4)
    ca_pred[0] = [1.0, 1.0, 0.0, 0.0]             # tie: first index wins
    ca_pred[1] = [0.0, 2.0, 2.0, 2.0]
    ca_true = one_hot([1, 2, 0, 3, 1], 4)
    add("metric", "categorical_accuracy", dict(y_true=ca_true, y_pred=ca_pred))
    add("metric", "categorical_accuracy", dict(y_true=cprob_soft["y_true"], y_pred=ca_pred))
    add("metric", "categorical_accuracy", dict(y_true=cprob3d["y_true"], y_pred=cprob3d["y_pred"]))
    sl = np.array([1.0, 2.0, 0.0, 3.0, 1.0])
    add("metric", "sparse_categorical_accuracy", dict(y_true=sl, y_pred=ca_pred))
    add("metric", "sparse_categorical_accuracy", dict(y_true=sl[:, None], y_pred=ca_pred))
    add("metric", "sparse_categorical_accuracy", dict(y_true=np.array([4.0, -1.0, 1.5, 0.0, 1.0]),
                                                      y_pred=ca_pred))
    add("metric", "sparse_categorical_accuracy", dict(y_true=s_cases[4]["y_true"],
                                                      y_pred=cprob3d["y_pred"]))
    add("metric", "sparse_categorical_accuracy", dict(y_true=s_cases[4]["y_true"][..., None],
                                                      y_pred=cprob3d["y_pred"]))
    for k in (1, 2, 3, 5):
        add("metric", "top_k_categorical_accuracy", dict(y_true=ca_true, y_pred=ca_pred), dict(k=k))
        add("metric", "sparse_top_k_categorical_accuracy", dict(y_true=sl, y_pred=ca_pred), dict(k=k))
    add("metric", "top_k_categorical_accuracy", dict(y_true=cprob3d["y_true"], y_pred=cprob3d["y_pred"]),
        dict(k=2))
    add("metric", "sparse_top_k_categorical_accuracy",
        dict(y_true=s_cases[4]["y_true"], y_pred=cprob3d["y_pred"]), dict(k=2))
    add("metric", "sparse_top_k_categorical_accuracy",
        dict(y_true=np.array([4.0, -1.0, 7.0, 0.0, 3.0]), y_pred=ca_pred), dict(k=2))
    add("metric", "sparse_top_k_categorical_accuracy",
        dict(y_true=np.array([4.0, -1.0, 7.0, 0.0, 3.0]), y_pred=ca_pred), dict(k=4))
    nan_pred = ca_pred.copy()
    nan_pred[2, 0] = np.nan
    nan_pred[3, 1] = np.nan
    add("metric", "sparse_top_k_categorical_accuracy",
        dict(y_true=np.array([1.0, 2.0, 0.0, 3.0, 1.0]), y_pred=nan_pred), dict(k=2))

    # ---- streaming metrics ----------------------------------------------------
    def batches(make, sizes, weights):
        out = {}
        for i, (n, w) in enumerate(zip(sizes, weights)):
            yt, yp = make(n)
            out[f"y_true_{i}"] = yt
            out[f"y_pred_{i}"] = yp
            out[f"sample_weight_{i}"] = None if w is None else w(n)
        return out

    mk_bin = lambda n: (f32(rng.integers(0, 2, (n, 1))), uniform(0, 1, n, 1))
    mk_cat = lambda n: (one_hot(rng.integers(0, 4, n), 4), normal(n, 4))
    mk_sp3 = lambda n: (f32(rng.integers(0, 4, (n, 3))), normal(n, 3, 4))
    mk_reg = lambda n: (normal(n, 2), normal(n, 2))
    mk_reg3 = lambda n: (normal(n, 3, 2), normal(n, 3, 2))
    mk_spk = lambda n: (f32(rng.integers(0, 5, n)), normal(n, 5))
    wN = lambda n: uniform(0, 2, n)
    wN1 = lambda n: uniform(0, 2, n, 1)
    wNT = lambda n: uniform(0, 2, n, 3)
    w0 = lambda n: np.zeros(n)
    sizes = (4, 4, 2)
    streams = [
        ("BinaryAccuracy", {}, mk_bin, (None, None, None)),
        ("BinaryAccuracy", dict(threshold=0.3), mk_bin, (wN, w0, wN1)),
        ("Accuracy", {}, lambda n: (f32(rng.integers(0, 3, n)), f32(rng.integers(0, 3, n))), (None, wN, None)),
        ("CategoricalAccuracy", {}, mk_cat, (wN, wN1, None)),
        ("SparseCategoricalAccuracy", {}, mk_sp3, (wNT, None, wN1)),
        ("TopKCategoricalAccuracy", dict(k=2), mk_cat, (None, wN, None)),
        ("SparseTopKCategoricalAccuracy", dict(k=3), mk_spk, (wN, None, None)),
        ("MeanSquaredError", {}, mk_reg, (None, wN, None)),
        ("MeanSquaredError", {}, mk_reg3, (wNT, wN1, None)),
        ("MeanAbsoluteError", {}, mk_reg, (wN, None, w0)),
        ("MeanAbsolutePercentageError", {}, mk_reg, (None, wN, None)),
        ("MeanSquaredLogarithmicError", {}, lambda n: (uniform(0, 3, n, 2), uniform(0, 3, n, 2)), (None, None, wN)),
        ("RootMeanSquaredError", {}, mk_reg, (None, wN, None)),
        ("RootMeanSquaredError", {}, mk_reg3, (wNT, None, None)),
        ("MeanSquaredError", {}, mk_reg, (w0, w0, w0)),
    ]
    for cls, opts, make, weights in streams:
        add("stream", cls, batches(make, sizes, weights), opts)
    # Mean over raw values (the loss tracker: weights = batch sizes)
    add("stream", "Mean", dict(values_0=np.array(0.5), values_1=np.array(0.25), values_2=np.array(1.0),
                               sample_weight_0=np.array(32.0), sample_weight_1=np.array(32.0),
                               sample_weight_2=np.array(4.0)))
    return cases


RESOLVE_METRICS = ["accuracy", "acc", "ACC", "Accuracy", "binary_accuracy", "categorical_accuracy",
                   "sparse_categorical_accuracy", "top_k_categorical_accuracy",
                   "sparse_top_k_categorical_accuracy", "mse", "MSE", "mae", "mape", "msle",
                   "mean_squared_error", "MeanSquaredError", "root_mean_squared_error", "rmse",
                   "RootMeanSquaredError", "crossentropy", "ce", "bce", "binary_crossentropy",
                   "categorical_crossentropy", "sparse_categorical_crossentropy", "kld",
                   "kl_divergence", "hinge", "log_cosh", "logcosh", "huber", "poisson",
                   "cosine_similarity", "auc", "AUC"]
RESOLVE_LOSSES = ["crossentropy", "ce", "CE", "Crossentropy", "mse", "MSE", "mae", "mape", "msle",
                  "mean_squared_error", "MeanSquaredError", "huber", "Huber", "huber_loss",
                  "log_cosh", "logcosh", "LogCosh", "kld", "kl_divergence", "bce",
                  "binary_crossentropy", "categorical_crossentropy",
                  "sparse_categorical_crossentropy", "hinge", "squared_hinge", "categorical_hinge",
                  "poisson", "cosine_similarity", "rmse"]
RESOLVE_SHAPES = [((8,), (8, 1)), ((8, 1), (8, 1)), ((8,), (8, 4)), ((8, 1), (8, 4)),
                  ((8, 4), (8, 4)), ((8, 2), (8, 2)), ((8,), (8,)), ((8, 3), (8, 3, 4)),
                  ((8, 3, 1), (8, 3, 1)), ((8, 3), (8, 3, 1)), ((8, 3, 4), (8, 3, 4)),
                  ((8, 3, 1), (8, 3, 4))]


# --------------------------------------------------------------------------
# Worker: run Keras
# --------------------------------------------------------------------------

def worker(dtype_name, out_path):
    import keras
    import jax
    import jax.numpy as jnp
    from keras.src import backend
    from keras.src.losses import loss as loss_module
    from keras.src.trainers import compile_utils
    from keras.src.losses.losses import LossFunctionWrapper
    from keras.src.metrics import accuracy_metrics

    keras.config.set_floatx(dtype_name)
    dtype = np.dtype(dtype_name)
    if dtype_name == "float64":
        patch_mean_to_float64()
    arrays = {}
    meta = {}

    def J(a):
        return None if a is None else jnp.asarray(np.asarray(a, dtype=dtype))

    def record(cid, name, value):
        arrays[f"{cid}/{dtype_name}/{name}"] = np.asarray(value, dtype=np.float64)

    for case in build_cases():
        cid, kind, fn, opts, inp = case["id"], case["kind"], case["fn"], case["options"], case["inputs"]
        info = meta.setdefault(cid, {"errors": {}})

        def attempt(name, thunk):
            """Record one output, or the message of Keras's exception."""
            try:
                record(cid, name, thunk())
            except Exception as exc:
                info["errors"][name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"

        if kind in ("loss", "fused_sigmoid", "fused_softmax", "weighted"):
            loss_fn = getattr(keras.losses, fn)
            wrap = lambda red: LossFunctionWrapper(
                loss_fn, reduction=red, dtype=dtype_name, **opts)
            unreduced, reduced = wrap(None), wrap("sum_over_batch_size")
            yt, x = J(inp["y_true"]), J(inp["y_pred"])
            sw = J(inp.get("sample_weight"))
            mask = inp.get("mask")
            act = {"fused_sigmoid": keras.activations.sigmoid,
                   "fused_softmax": keras.activations.softmax}.get(kind, lambda z: z)

            def total(z, weight):
                yp = act(z)
                if mask is not None:
                    backend.set_keras_mask(yp, jnp.asarray(mask.astype(bool)))
                return reduced(yt, yp, sample_weight=weight)

            attempt("per_sample", lambda: unreduced(yt, act(x)))
            attempt("loss", lambda: total(x, sw))
            attempt("grad", lambda: jax.grad(total)(x, sw))
            if kind != "weighted":
                n = inp["y_pred"].shape[0]
                w = J(np.linspace(0.25, 2.0, n).reshape(n, 1))
                attempt("loss_weighted", lambda: total(x, w))
                attempt("grad_weighted", lambda: jax.grad(total)(x, w))
        elif kind == "reduce":
            mask = inp.get("mask")
            attempt("loss", lambda: loss_module.reduce_weighted_values(
                J(inp["values"]), sample_weight=J(inp.get("sample_weight")),
                mask=None if mask is None else jnp.asarray(mask.astype(bool)),
                reduction="sum_over_batch_size", dtype=dtype_name))
        elif kind == "metric":
            f = getattr(keras.metrics, fn, None) or getattr(accuracy_metrics, fn)
            attempt("values", lambda: f(J(inp["y_true"]), J(inp["y_pred"]), **opts))
        elif kind == "stream":
            m = getattr(keras.metrics, fn)(dtype=dtype_name, **opts)
            info["name"] = m.name
            for i in range(3):
                if fn == "Mean":
                    m.update_state(J(inp[f"values_{i}"]), sample_weight=J(inp[f"sample_weight_{i}"]))
                else:
                    m.update_state(J(inp[f"y_true_{i}"]), J(inp[f"y_pred_{i}"]),
                                   sample_weight=J(inp[f"sample_weight_{i}"]))
                attempt(f"result_{i}", m.result)
            m.reset_state()
            attempt("result_reset", m.result)

    # ---- resolution of strings ------------------------------------------------
    resolve = {"metrics": [], "losses": []}
    for yts, yps in RESOLVE_SHAPES:
        yt, yp = np.zeros(yts, dtype), np.zeros(yps, dtype)
        for ident in RESOLVE_METRICS:
            try:
                m = compile_utils.get_metric(ident, yt, yp)
                inner = getattr(m, "_fn", None)
                resolve["metrics"].append(dict(
                    identifier=ident, y_true_shape=yts, y_pred_shape=yps, name=m.name,
                    cls=type(m).__name__, fn=getattr(inner, "__name__", None),
                    config={k: v for k, v in m.get_config().items() if k in ("threshold", "k")}))
            except Exception as exc:
                resolve["metrics"].append(dict(identifier=ident, y_true_shape=yts, y_pred_shape=yps,
                                               error=f"{type(exc).__name__}: {exc}"))
        for ident in RESOLVE_LOSSES:
            try:
                lo = compile_utils.get_loss(ident, yt, yp)
                resolve["losses"].append(dict(
                    identifier=ident, y_true_shape=yts, y_pred_shape=yps, name=lo.name,
                    cls=type(lo).__name__, fn=getattr(getattr(lo, "fn", None), "__name__", None)))
            except Exception as exc:
                resolve["losses"].append(dict(identifier=ident, y_true_shape=yts, y_pred_shape=yps,
                                              error=f"{type(exc).__name__}: {exc}"))

    # ---- end to end: evaluate / fit on a tiny model ---------------------------
    # Only with Keras's defaults: in float64 Keras 3.15's SimpleRNN fails on JAX
    # (its scan carry comes back float32).
    e2e = end_to_end(keras, dtype, arrays, dtype_name) if dtype_name == "float32" else {}

    np.savez_compressed(out_path, **arrays)
    with open(out_path + ".json", "w") as fh:
        json.dump({"cases": meta, "resolve": resolve, "e2e": e2e,
                   "versions": {"keras": keras.__version__, "jax": jax.__version__,
                                "numpy": np.__version__}}, fh)


def patch_mean_to_float64():
    """Make Keras's JAX ``ops.mean`` accumulate float64 input in float64.

    Keras 3.15 computes ``ops.mean`` in ``result_type(x.dtype, "float32")``,
    which its type lattice makes float32 even for float64 input, so every
    mean-based loss of a float64 Keras is only float32-accurate.  The float64
    record is meant as an exact evaluation of Keras's formulas (to compare the
    reference tightly), hence this patch in the float64 worker only; the
    float32 record is Keras as it ships.
    """
    import jax.numpy as jnp
    from keras.src.backend.jax import numpy as jax_numpy

    original = jax_numpy.mean

    def mean(x, axis=None, keepdims=False):
        x = jax_numpy.convert_to_tensor(x)
        if x.dtype == jnp.float64:
            return jnp.mean(x, axis=axis, keepdims=keepdims)
        return original(x, axis=axis, keepdims=keepdims)

    jax_numpy.mean = mean


def end_to_end(keras, dtype, arrays, dtype_name):
    """evaluate()/fit() numbers and history names from real models."""
    rng = np.random.default_rng(7)
    out = {}

    def put(name, value):
        arrays[f"e2e/{name}/{dtype_name}"] = np.asarray(value, dtype=np.float64)

    def seq_model(masking):
        layers = [keras.Input((3, 2))]
        if masking:
            layers.append(keras.layers.Masking(0.0))
        layers += [keras.layers.SimpleRNN(4, return_sequences=True), keras.layers.Dense(1)]
        model = keras.Sequential(layers)
        wrng = np.random.default_rng(11)
        model.set_weights([f32(0.5 * wrng.standard_normal(w.shape)).astype(dtype)
                           for w in model.get_weights()])
        return model

    x = f32(rng.standard_normal((6, 3, 2)))
    y = f32(rng.standard_normal((6, 3, 1)))
    x_masked = x.copy()
    x_masked[1, 2] = 0.0
    x_masked[4, 1:] = 0.0
    arrays["e2e/x"] = x
    arrays["e2e/y"] = y
    arrays["e2e/x_masked"] = x_masked
    weights = {"none": None, "n": f32(rng.uniform(0, 2, 6)), "n1": f32(rng.uniform(0, 2, (6, 1))),
               "nt": f32(rng.uniform(0, 2, (6, 3)))}
    for k, w in weights.items():
        if w is not None:
            arrays[f"e2e/sw_{k}"] = w
    for masking in (False, True):
        xin = (x_masked if masking else x).astype(dtype)
        tag = "masked" if masking else "plain"
        put(f"{tag}/y_pred", seq_model(masking).predict(xin, verbose=0))
        for wname, w in weights.items():
            for bs in (6, 4):
                # A fresh model each time: after a failed evaluate() Keras 3.15
                # leaves the model unusable ("'NoneType' object is not callable").
                model = seq_model(masking)
                model.compile(optimizer="sgd", loss="mse", metrics=["mae"], weighted_metrics=["mae"])
                key = f"{tag}/evaluate_sw_{wname}_bs{bs}"
                try:
                    res = model.evaluate(xin, y.astype(dtype), batch_size=bs, verbose=0,
                                         sample_weight=None if w is None else w.astype(dtype),
                                         return_dict=True)
                    out[key] = {k: float(v) for k, v in res.items()}
                except Exception as exc:
                    out[key] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}

    # Classification: which accuracy, and the history/evaluate names.
    xc = f32(rng.standard_normal((8, 3, 2)))
    configs = {
        "binary": (1, "sigmoid", "binary_crossentropy", f32(rng.integers(0, 2, (8, 1))),
                   ["accuracy", "acc", "mse", "mse", keras.metrics.BinaryAccuracy(),
                    keras.metrics.binary_accuracy, keras.metrics.MeanSquaredError(),
                    lambda yt, yp: yp * 0]),
        "sparse": (3, "softmax", "sparse_categorical_crossentropy", f32(rng.integers(0, 3, 8)),
                   ["accuracy", "sparse_top_k_categorical_accuracy"]),
        "categorical": (3, "softmax", "categorical_crossentropy",
                        np.eye(3)[rng.integers(0, 3, 8)], ["acc", "Accuracy"]),
        "multilabel_bce": (3, "sigmoid", "binary_crossentropy",
                           f32(rng.integers(0, 2, (8, 3))), ["accuracy"]),
        "crossentropy_sparse": (3, "softmax", "crossentropy", f32(rng.integers(0, 3, 8)),
                                ["accuracy"]),
        "crossentropy_binary": (1, "sigmoid", "ce", f32(rng.integers(0, 2, (8, 1))), ["acc"]),
    }
    for name, (units, act, loss, yc, metrics) in configs.items():
        model = keras.Sequential([keras.Input((3, 2)), keras.layers.SimpleRNN(4),
                                  keras.layers.Dense(units, activation=act)])
        wrng = np.random.default_rng(5)
        model.set_weights([f32(0.5 * wrng.standard_normal(w.shape)).astype(dtype)
                           for w in model.get_weights()])
        try:
            model.compile(optimizer="sgd", loss=loss, metrics=metrics,
                          weighted_metrics=["mse"] if name == "binary" else None)
            pred = model.predict(xc.astype(dtype), verbose=0)
            ev = model.evaluate(xc.astype(dtype), yc.astype(dtype), batch_size=8, verbose=0,
                                return_dict=True)
            hist = model.fit(xc.astype(dtype), yc.astype(dtype), batch_size=4, epochs=1, verbose=0,
                             validation_data=(xc.astype(dtype), yc.astype(dtype)))
            out[f"classify/{name}"] = {
                "evaluate": {k: float(v) for k, v in ev.items()},
                "history_keys": list(hist.history.keys()),
                "compiled_metrics": [(m.name, type(m).__name__) for m in model.metrics]}
            put(f"classify/{name}/y_pred", pred)
            arrays[f"e2e/classify/{name}/y_true"] = yc
        except Exception as exc:
            out[f"classify/{name}"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    arrays["e2e/classify/x"] = xc
    return out


# --------------------------------------------------------------------------
# Parent: inputs, workers, merge
# --------------------------------------------------------------------------

def pack(arrays, meta):
    """All arrays in two flat buffers (one zip entry each keeps the file small).

    ``meta["arrays"][key] = [buffer, offset, shape]``; float32 results go in
    ``values32`` (they are float32 numbers), everything else in ``values64``.
    """
    buffers = {"values32": [], "values64": []}
    sizes = {"values32": 0, "values64": 0}
    index = {}
    for key in sorted(arrays):
        a = np.asarray(arrays[key], dtype=np.float64)
        buf = "values32" if "/float32/" in key or key.endswith("/float32") else "values64"
        index[key] = [buf, sizes[buf], list(a.shape)]
        buffers[buf].append(a.astype(np.float32 if buf == "values32" else np.float64).ravel())
        sizes[buf] += a.size
    meta = dict(meta, arrays=index)
    out = {name: np.concatenate(parts) for name, parts in buffers.items()}
    out["__meta__"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    return out


def main():
    cases = build_cases()
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for dtype_name in ("float32", "float64"):
            path = os.path.join(tmp, f"{dtype_name}.npz")
            env = dict(os.environ, KERAS_BACKEND="jax")
            if dtype_name == "float64":
                env["JAX_ENABLE_X64"] = "1"
            subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", dtype_name, path],
                           check=True, env=env)
            with np.load(path) as data:
                arrays.update({k: data[k] for k in data.files})
            with open(path + ".json") as fh:
                results[dtype_name] = json.load(fh)
    meta_cases = []
    for case in cases:
        for name, value in case["inputs"].items():
            if value is not None:
                arrays[f"{case['id']}/{name}"] = value
        record = {k: case[k] for k in ("id", "kind", "fn", "options")}
        record["inputs"] = sorted(k for k, v in case["inputs"].items() if v is not None)
        record["keras"] = {d: results[d]["cases"][case["id"]] for d in results}
        meta_cases.append(record)
    meta = {"versions": results["float32"]["versions"], "cases": meta_cases,
            "resolve": results["float32"]["resolve"],
            "resolve_float64_same": results["float32"]["resolve"] == results["float64"]["resolve"],
            "e2e": {d: results[d]["e2e"] for d in results}}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    np.savez_compressed(OUT, **pack(arrays, meta))
    print(f"wrote {os.path.normpath(OUT)}: {len(meta_cases)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
