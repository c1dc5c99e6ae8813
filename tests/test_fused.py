"""The fused training step (fastrnn.fused / _train) against fastrnn.reference.

Every output of a step -- the loss, every gradient segment, params/m/v after
Adam -- is compared over several steps with a computation written with
fastrnn.reference (float64 tightly, float32 loosely, per tests/tolerances.py);
run_epoch must equal the same sequence of single steps bitwise; predict must
equal the reference forward + dense; steps after the first allocate nothing;
bad arguments raise TypeError/ValueError naming the argument.
"""
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrnn import reference
from fastrnn.fused import FusedTrainer, param_count
from tolerances import assert_close

DTYPES = (np.float64, np.float32)


# ---------------------------------------------------------------------------
# The oracle: one training step written with fastrnn.reference (float64).

def split(flat, D, H, U, use_bias=True, dense_use_bias=True):
    """Views of the flat buffer in Keras get_weights order (absent biases: zeros)."""
    out, off = [], 0
    for shape, present in (((D, H), True), ((H, H), True), ((H,), use_bias),
                           ((H, U), True), ((U,), dense_use_bias)):
        if present:
            size = int(np.prod(shape))
            out.append(flat[off:off + size].reshape(shape))
            off += size
        else:
            out.append(None)
    assert off == flat.size
    return out


def reference_step(p, m, v, iterations, x, y, cfg):
    """One Keras training step; returns loss, grads and the new p, m, v (float64)."""
    D, H, U = cfg["input_dim"], cfg["units"], cfg["output_units"]
    ub, db = cfg["use_bias"], cfg["dense_use_bias"]
    act, seq = cfg["activation"], cfg["return_sequences"]
    p, m, v = (np.array(a, dtype=np.float64) for a in (p, m, v))
    x = np.asarray(x, np.float64)
    Wx, Wh, b, Wd, bd = split(p, D, H, U, ub, db)
    b = np.zeros(H) if b is None else b
    bd = np.zeros(U) if bd is None else bd
    h = reference.rnn_forward(x, Wx, Wh, b, activation=act)
    hsel = h if seq else h[:, -1]
    y_pred = reference.dense_forward(hsel, Wd, bd)
    loss, dy = getattr(reference, cfg["loss"])(np.asarray(y, np.float64), y_pred)
    _, dWd, dbd = reference.dense_backward(hsel, Wd, dy)
    dh = np.zeros_like(h)
    if seq:
        dh[:] = dy @ Wd.T
    else:
        dh[:, -1] = dy @ Wd.T
    _, dWx, dWh, dbias, _ = reference.rnn_backward(x, h, Wx, Wh, dh, activation=act)
    segs = [dWx, dWh] + ([dbias] if ub else []) + [dWd] + ([dbd] if db else [])
    grads = np.concatenate([s.ravel() for s in segs])
    clipped = keras_clip(segs, cfg)
    update = np.concatenate([s.ravel() for s in clipped])
    reference.adam_update(p, update, m, v, iterations + 1, cfg["learning_rate"],
                          cfg["beta_1"], cfg["beta_2"], cfg["epsilon"])
    return loss, grads, p, m, v


def keras_clip(segs, cfg):
    """Keras 3 optimizer gradient clipping, one of the three (or none)."""
    if cfg.get("clipnorm") is not None:
        c = cfg["clipnorm"]
        out = []
        for g in segs:
            norm = np.sqrt(np.sum(g * g))
            out.append(g * c / max(norm, c))
        return out
    if cfg.get("global_clipnorm") is not None:
        c = cfg["global_clipnorm"]
        norm = np.sqrt(sum(np.sum(g * g) for g in segs))
        with np.errstate(divide="ignore"):
            scale = c * min(1 / norm, 1 / c) + (norm - norm)
        return [g * scale for g in segs]
    if cfg.get("clipvalue") is not None:
        c = cfg["clipvalue"]
        return [np.clip(g, -c, c) for g in segs]
    return segs


# ---------------------------------------------------------------------------
# Helpers

def make_config(D=1, H=20, U=1, **kw):
    cfg = dict(input_dim=D, units=H, output_units=U, activation="tanh", use_bias=True,
               dense_use_bias=True, return_sequences=False, loss="mse",
               learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    cfg.update(kw)
    return cfg


def make_buffers(cfg, dtype, seed=0, scale=0.5):
    n = param_count(cfg["input_dim"], cfg["units"], cfg["output_units"],
                    cfg["use_bias"], cfg["dense_use_bias"])
    rng = np.random.default_rng(seed)
    p = (scale * rng.standard_normal(n)).astype(dtype)
    return p, np.zeros(n, dtype), np.zeros(n, dtype), np.zeros(n, dtype)


def make_batch(rng, B, T, cfg, dtype):
    D, U = cfg["input_dim"], cfg["output_units"]
    x = rng.standard_normal((B, T, D)).astype(dtype)
    yshape = (B, T, U) if cfg["return_sequences"] else (B, U)
    y = rng.standard_normal(yshape).astype(dtype)
    return x, y


def trainer(cfg, bufs, **kw):
    p, g, m, v = bufs
    return FusedTrainer(p, g, m, v, **cfg, **kw)


def check_steps(cfg, dtype, batches, kernel="auto", iterations=0, seed=0):
    """Run the fused trainer and the oracle side by side over several batches."""
    bufs = make_buffers(cfg, dtype, seed)
    p, g, m, v = bufs
    tr = trainer(cfg, bufs, kernel=kernel, iterations=iterations,
                 batch_size=max(x.shape[0] for x, _ in batches))
    rp, rm, rv = (a.astype(np.float64) for a in (p, m, v))
    for k, (x, y) in enumerate(batches):
        # the oracle starts each step from the fused state (float32 drifts otherwise)
        rp, rm, rv = (a.astype(np.float64) for a in (p, m, v))
        loss_ref, g_ref, rp, rm, rv = reference_step(rp, rm, rv, tr.iterations, x, y, cfg)
        if dtype == np.float32:
            # Adam normalises each gradient (m / sqrt(v)), so a float32 gradient
            # that is small or, for mae, flips a sign is amplified into the step:
            # check float32 Adam on the trainer's own gradients (the gradients
            # themselves are compared with the oracle below).
            p0, m0, v0 = (a.astype(np.float64) for a in (p, m, v))
        loss = tr.step(x, y)
        msg = f"step {k}, {cfg}, kernel={kernel}"
        assert_close(loss, loss_ref, "forward", dtype, err_msg="loss " + msg)
        assert_close(g, g_ref, "backward", dtype, err_msg="grads " + msg)
        if dtype == np.float32:
            D, H, U = cfg["input_dim"], cfg["units"], cfg["output_units"]
            segs = [s for s in split(g.astype(np.float64), D, H, U, cfg["use_bias"],
                                     cfg["dense_use_bias"]) if s is not None]
            update = np.concatenate([s.ravel() for s in keras_clip(segs, cfg)])
            reference.adam_update(p0, update, m0, v0, tr.iterations, cfg["learning_rate"],
                                  cfg["beta_1"], cfg["beta_2"], cfg["epsilon"])
            rp, rm, rv = p0, m0, v0
        for got, want, name in ((m, rm, "m"), (v, rv, "v"), (p, rp, "params")):
            assert_close(got, want, "backward", dtype, err_msg=f"{name} " + msg)
    assert tr.iterations == iterations + len(batches)
    return tr


# ---------------------------------------------------------------------------
# Parity with the oracle

CLIPS = (None, ("clipnorm", 0.05), ("global_clipnorm", 0.1), ("clipvalue", 0.01))


@settings(max_examples=150)
@given(B=st.integers(1, 6), T=st.integers(1, 5), D=st.integers(1, 3), H=st.integers(1, 9),
       U=st.integers(1, 3), activation=st.sampled_from(["tanh", "relu"]),
       loss=st.sampled_from(["mse", "mae"]), use_bias=st.booleans(),
       dense_use_bias=st.booleans(), seq=st.booleans(), clip=st.sampled_from(CLIPS),
       kernel=st.sampled_from(["blas", "loops"]), partial=st.integers(0, 5),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_steps_match_reference(B, T, D, H, U, activation, loss, use_bias, dense_use_bias,
                               seq, clip, kernel, partial, dtype, seed):
    cfg = make_config(D, H, U, activation=activation, loss=loss, use_bias=use_bias,
                      dense_use_bias=dense_use_bias, return_sequences=seq)
    if clip:
        cfg[clip[0]] = clip[1]
    rng = np.random.default_rng(seed)
    last = max(1, B - partial)            # a partial last batch
    batches = [make_batch(rng, B, T, cfg, dtype), make_batch(rng, B, T, cfg, dtype),
               make_batch(rng, last, T, cfg, dtype)]
    check_steps(cfg, dtype, batches, kernel=kernel, seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("H", [255, 256])
@pytest.mark.parametrize("seq", [False, True])
def test_steps_match_reference_on_both_sides_of_the_carry_copy(dtype, H, seq):
    # below 256 units the BPTT carry multiplies by a transposed copy of W_h,
    # from 256 on by W_h itself (_train.CARRY_COPY_UNITS)
    cfg = make_config(3, H, 2, return_sequences=seq)
    rng = np.random.default_rng(H)
    batches = [make_batch(rng, 4, 3, cfg, dtype) for _ in range(2)]
    check_steps(cfg, dtype, batches, kernel="blas")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["blas", "loops"])
def test_tutorial_shape_several_steps(dtype, kernel):
    from fastrnn.data import make_sequences
    X, Y = make_sequences()
    X, Y = X.astype(dtype), Y.astype(dtype)
    cfg = make_config(1, 20, 1)
    batches = [(X[i:i + 32], Y[i:i + 32]) for i in (0, 32, 64, 96)]
    check_steps(cfg, dtype, batches, kernel=kernel)


def test_iterations_continue_the_adam_schedule():
    cfg = make_config(2, 5, 1, learning_rate=0.003)
    rng = np.random.default_rng(3)
    check_steps(cfg, np.float64, [make_batch(rng, 4, 3, cfg, np.float64)], iterations=41)


def test_larger_batch_grows_the_buffers():
    cfg = make_config(1, 4, 2)
    rng = np.random.default_rng(4)
    batches = [make_batch(rng, 2, 2, cfg, np.float64), make_batch(rng, 9, 6, cfg, np.float64)]
    check_steps(cfg, np.float64, batches)


def test_target_of_shape_n_against_one_unit():
    cfg = make_config(1, 3, 1)
    rng = np.random.default_rng(5)
    x, y = make_batch(rng, 4, 2, cfg, np.float64)
    a = trainer(cfg, make_buffers(cfg, np.float64))
    b = trainer(cfg, make_buffers(cfg, np.float64))
    assert a.step(x, y) == b.step(x, np.ascontiguousarray(y[:, 0]))
    np.testing.assert_array_equal(a.params, b.params)


# ---------------------------------------------------------------------------
# run_epoch is the same sequence of steps, bitwise

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [False, True])
@pytest.mark.parametrize("kernel", ["blas", "loops"])
def test_run_epoch_equals_single_steps_bitwise(dtype, seq, kernel):
    cfg = make_config(2, 6, 2, return_sequences=seq, clipnorm=0.5)
    rng = np.random.default_rng(7)
    N, T, bs = 23, 4, 5                     # last batch of 3
    X, Y = make_batch(rng, N, T, cfg, dtype)
    a_bufs, b_bufs = make_buffers(cfg, dtype), make_buffers(cfg, dtype)
    a = trainer(cfg, a_bufs, kernel=kernel, batch_size=bs)
    b = trainer(cfg, b_bufs, kernel=kernel, batch_size=bs)
    a.bind_data(X, Y)
    for epoch in range(3):
        order = rng.permutation(N)
        mean, losses = a.run_epoch(order, bs)
        expect = [b.step(np.ascontiguousarray(X[order[i:i + bs]]),
                         np.ascontiguousarray(Y[order[i:i + bs]]))
                  for i in range(0, N, bs)]
        assert losses.tolist() == expect
        sizes = [min(bs, N - i) for i in range(0, N, bs)]
        assert mean == pytest.approx(np.dot(expect, sizes) / N, rel=1e-12)
        for x, y in zip(a_bufs, b_bufs):
            np.testing.assert_array_equal(x, y)
    assert a.iterations == b.iterations == 3 * len(sizes)


def test_run_epoch_losses_buffer_and_errors():
    cfg = make_config(1, 3, 1)
    tr = trainer(cfg, make_buffers(cfg, np.float64))
    with pytest.raises(RuntimeError, match="bind_data"):
        tr.run_epoch(np.arange(4), 2)
    X, Y = make_batch(np.random.default_rng(0), 10, 3, cfg, np.float64)
    tr.bind_data(X, Y)
    out = np.full(8, -1.0)
    mean, losses = tr.run_epoch(np.arange(10), 4, out)
    assert np.shares_memory(losses, out) and losses.shape == (3,)
    assert out[3] == -1.0
    with pytest.raises(ValueError, match="order"):
        tr.run_epoch(np.array([0, 10]), 4)
    with pytest.raises(ValueError, match="order"):
        tr.run_epoch(np.array([-1, 0]), 4)
    with pytest.raises(TypeError, match="order"):
        tr.run_epoch(np.array([0.0, 1.0]), 4)
    with pytest.raises(ValueError, match="losses"):
        tr.run_epoch(np.arange(10), 4, np.empty(2))
    with pytest.raises(TypeError, match="losses"):
        tr.run_epoch(np.arange(10), 4, np.empty(3, np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        tr.run_epoch(np.arange(10), 0)


# ---------------------------------------------------------------------------
# predict

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("N", [1, 7, 70])
def test_predict_matches_reference(dtype, seq, activation, N):
    cfg = make_config(3, 5, 2, return_sequences=seq, activation=activation,
                      use_bias=N != 7)
    bufs = make_buffers(cfg, dtype, seed=N)
    tr = trainer(cfg, bufs, batch_size=16)       # N=70: several chunks
    x = np.random.default_rng(N).standard_normal((N, 4, 3)).astype(dtype)
    Wx, Wh, b, Wd, bd = split(bufs[0].astype(np.float64), 3, 5, 2, cfg["use_bias"])
    b = np.zeros(5) if b is None else b
    h = reference.rnn_forward(x.astype(np.float64), Wx, Wh, b, activation=activation)
    want = reference.dense_forward(h if seq else h[:, -1], Wd, bd)
    got = tr.predict(x)
    assert got.dtype == dtype and got.shape == want.shape
    assert_close(got, want, "forward", dtype)
    out = np.empty_like(got)
    assert tr.predict(x, out) is out
    np.testing.assert_array_equal(out, got)
    assert not bufs[1].any() and tr.iterations == 0      # predict changes nothing


def test_predict_empty_and_bad_out():
    cfg = make_config(1, 3, 1)
    tr = trainer(cfg, make_buffers(cfg, np.float32))
    assert tr.predict(np.empty((0, 3, 1), np.float32)).shape == (0, 1)
    with pytest.raises(ValueError, match="out"):
        tr.predict(np.zeros((2, 3, 1), np.float32), np.empty((3, 1), np.float32))
    with pytest.raises(TypeError, match="out"):
        tr.predict(np.zeros((2, 3, 1), np.float32), np.empty((2, 1), np.float64))
    with pytest.raises(ValueError, match="out"):
        tr.predict(np.zeros((2, 3, 1), np.float32), np.empty((2, 1), np.float32)[::-1])
    with pytest.raises(ValueError, match="out"):
        tr.predict(np.zeros((2, 3, 1), np.float32), tr.params[:2].reshape(2, 1))


# ---------------------------------------------------------------------------
# No allocation after the first step

def net_blocks(fn, repeat):
    fn()                                    # first call: buffers, caches
    tracemalloc.start()
    try:
        fn()
        before = tracemalloc.take_snapshot()
        for _ in range(repeat):
            fn()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    return sum(s.count_diff for s in stats), [s for s in stats if s.count_diff]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["blas", "loops"])
def test_no_allocations_after_first_step(dtype, kernel):
    cfg = make_config(1, 20, 1)
    tr = trainer(cfg, make_buffers(cfg, dtype), kernel=kernel)
    x, y = make_batch(np.random.default_rng(0), 32, 3, cfg, dtype)
    blocks, stats = net_blocks(lambda: tr.step(x, y), 200)
    assert blocks == 0, stats
    X, Y = make_batch(np.random.default_rng(1), 100, 3, cfg, dtype)
    tr.bind_data(X, Y)
    order, losses = np.arange(100), np.empty(4)
    blocks, stats = net_blocks(lambda: tr.run_epoch(order, 32, losses), 50)
    assert blocks == 0, stats
    out = np.empty((1, 1), dtype)
    blocks, stats = net_blocks(lambda: tr.predict(x[:1], out), 200)
    assert blocks == 0, stats


# ---------------------------------------------------------------------------
# Threads: the GIL is released and two trainers do not interfere

def test_two_trainers_in_threads_match_serial():
    cfg = make_config(4, 80, 1)            # BLAS-sized
    X, Y = make_batch(np.random.default_rng(2), 64, 10, cfg, np.float32)
    runs = [make_buffers(cfg, np.float32) for _ in range(3)]
    trs = [trainer(cfg, b, batch_size=16) for b in runs]
    for tr in trs:
        tr.bind_data(X, Y)
    order = np.arange(64)
    for _ in range(5):
        trs[0].run_epoch(order, 16)         # serial reference
    threads = [threading.Thread(target=lambda t=t: [t.run_epoch(order, 16) for _ in range(5)])
               for t in trs[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for bufs in runs[1:]:
        for a, b in zip(runs[0], bufs):
            np.testing.assert_array_equal(a, b)


def test_flush_denormals_off_still_matches():
    cfg = make_config(1, 4, 1)
    rng = np.random.default_rng(6)
    bufs = make_buffers(cfg, np.float64)
    x, y = make_batch(rng, 3, 2, cfg, np.float64)
    tr = trainer(cfg, bufs, flush_denormals=False)
    loss_ref, g_ref, rp, rm, rv = reference_step(*(a.copy() for a in bufs[0:1] + bufs[2:]),
                                                 0, x, y, cfg)
    assert_close(tr.step(x, y), loss_ref, "forward", np.float64)
    assert_close(bufs[0], rp, "backward", np.float64)


# ---------------------------------------------------------------------------
# Bad arguments raise, naming the argument; nothing crashes

def test_bad_constructor_arguments():
    cfg = make_config(1, 3, 1)
    p, g, m, v = make_buffers(cfg, np.float32)
    n = p.size
    ok = dict(input_dim=1, units=3, output_units=1)
    cases = [
        (TypeError, "params", ([0.0] * n, g, m, v), {}),
        (TypeError, "params", (p.astype(np.int32), g, m, v), {}),
        (TypeError, "grads", (p, g.astype(np.float64), m, v), {}),
        (ValueError, "params", (p[:-1], g, m, v), {}),
        (ValueError, "m", (p, g, np.zeros(2 * n, np.float32)[::2], v), {}),
        (ValueError, "v", (p, g, m, np.zeros((n, 1), np.float32)), {}),
        (ValueError, "grads and m", (p, g, g, v), {}),
        (ValueError, "units", (p, g, m, v), dict(units=0)),
        (TypeError, "units", (p, g, m, v), dict(units=3.0)),
        (ValueError, "activation", (p, g, m, v), dict(activation="sigmoid")),
        (ValueError, "loss", (p, g, m, v), dict(loss="huber")),
        (ValueError, "at most one", (p, g, m, v), dict(clipnorm=1.0, clipvalue=1.0)),
        (ValueError, "clipnorm", (p, g, m, v), dict(clipnorm=0.0)),
        (ValueError, "learning_rate", (p, g, m, v), dict(learning_rate=float("nan"))),
        (ValueError, "beta_1", (p, g, m, v), dict(beta_1=1.0)),
        (ValueError, "kernel", (p, g, m, v), dict(kernel="gpu")),
        (ValueError, "iterations", (p, g, m, v), dict(iterations=-1)),
    ]
    for exc, word, bufs, kw in cases:
        with pytest.raises(exc, match=word):
            FusedTrainer(*bufs, **{**ok, **kw})
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="params"):
        FusedTrainer(ro, g, m, v, **ok)


def test_bad_step_arguments():
    cfg = make_config(2, 3, 1)
    tr = trainer(cfg, make_buffers(cfg, np.float32))
    x = np.zeros((4, 3, 2), np.float32)
    y = np.zeros((4, 1), np.float32)
    cases = [
        (TypeError, "xb", (x.tolist(), y)),
        (TypeError, "xb", (x.astype(np.float64), y)),
        (TypeError, "xb", (x.astype(np.int64), y)),
        (ValueError, "xb", (x[..., :1].copy(), y)),
        (ValueError, "xb", (x[0], y)),
        (ValueError, "xb", (np.zeros((0, 3, 2), np.float32), y[:0])),
        (ValueError, "xb", (np.zeros((4, 0, 2), np.float32), y)),
        (ValueError, "xb", (np.zeros((4, 3, 4), np.float32)[..., ::2], y)),
        (ValueError, "yb", (x, y[:3])),
        (ValueError, "yb", (x, np.zeros((4, 2), np.float32))),
        (TypeError, "yb", (x, y.astype(np.float64))),
        (TypeError, "yb", (x, None)),
    ]
    for exc, word, args in cases:
        with pytest.raises(exc, match=word):
            tr.step(*args)
    with pytest.raises(TypeError, match="x"):
        tr.predict(x.astype(np.float64))
    with pytest.raises(ValueError, match="Y"):
        tr.bind_data(np.zeros((5, 3, 2), np.float32), np.zeros((4, 1), np.float32))
    with pytest.raises(TypeError, match="X"):
        tr.bind_data(None, y)
    # nothing was changed by the failed calls
    assert tr.iterations == 0 and not tr.grads.any()


def test_read_only_inputs_are_accepted_and_untouched():
    cfg = make_config(1, 3, 1)
    tr = trainer(cfg, make_buffers(cfg, np.float64))
    x, y = make_batch(np.random.default_rng(0), 4, 3, cfg, np.float64)
    x0, y0 = x.copy(), y.copy()
    x.flags.writeable = y.flags.writeable = False
    tr.step(x, y)
    tr.bind_data(x, y)
    tr.run_epoch(np.arange(4), 3)
    tr.predict(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
