"""The packed-weight step kernel (csrc/packed_step.c, issue 15).

Large layers run the recurrence on W_h packed into column panels, with
register tiles of MR x NR (AVX-512 8 x 48 float / 8 x 24 double, AVX2 4 x 24 /
4 x 12, portable C 4 x 16 / 4 x 8), on a team of threads.  Tested here:

- the micro-kernels over every tile edge (M, N, K not multiples of the tile)
  against an exact product, on every ISA path this CPU runs;
- forward and backward (the BPTT carry) against fastrnn.reference, float64
  tight and float32 loose, with h0, step masks, go_backwards, both layouts,
  input and recurrent dropout and every elementwise activation;
- bitwise equal results on 1, 2 and 3 threads;
- the routing: softmax-like activations and the forward with recurrent
  dropout stay on the BLAS path, "never" is bitwise the BLAS path, small H
  never reaches the dispatch in "auto" mode; the engine takes the kernel;
- set_num_threads / get_num_threads and the environment switches.

The kernel is forced on with ``_kernels._set_packed_mode("always")`` and the
team kept at its requested size with ``_set_load_check(False)``.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import _kernels
from fastrnn.reference import recurrence as rec

from tolerances import assert_close, tol

ISA_ORDER = ("generic", "avx2", "avx512")
ISAS = ISA_ORDER[:ISA_ORDER.index(_kernels._packed_info()["isa_supported"]) + 1]
DTYPES = (np.float64, np.float32)
# the elementwise activations of the kernels (softmax and log_softmax work on
# whole rows and stay on the BLAS path)
ELEMENTWISE = ("linear", "tanh", "relu", "sigmoid", "softplus", "softsign", "elu", "selu",
               "hard_sigmoid", "relu6", "leaky_relu")
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")


@pytest.fixture(autouse=True)
def packed_always():
    """Force the packed kernel for every H; restore the defaults afterwards."""
    info = _kernels._packed_info()
    threads = fastrnn.get_num_threads()
    _kernels._set_packed_mode("always")
    _kernels._set_load_check(False)
    yield
    _kernels._set_packed_mode(info["mode"])
    _kernels._set_isa(info["isa"])
    _kernels._set_load_check(True)
    fastrnn.set_num_threads(threads)


def problem(B, T, D, H, seed, h0=True, mask=None, dropout=False, recurrent_dropout=False):
    """A random float64 problem; W_h scaled to a spectral radius near 0.9."""
    rng = np.random.default_rng(seed)
    p = dict(x=rng.standard_normal((B, T, D)),
             kernel=rng.uniform(-1, 1, (D, H)) / np.sqrt(max(D, 1)),
             recurrent_kernel=rng.standard_normal((H, H)) * (0.9 / np.sqrt(H)),
             bias=rng.uniform(-0.5, 0.5, H),
             h0=rng.standard_normal((B, H)) * 0.5 if h0 else None,
             dh=rng.standard_normal((B, T, H)))
    if mask == "random":
        m = rng.random((B, T)) < 0.6
        m[0] = False                 # a sequence masked entirely
        p["mask"] = m
    else:
        p["mask"] = None
    p["dropout_mask"] = rec.dropout_mask((B, D), 0.3, rng) if dropout else None
    p["recurrent_dropout_mask"] = (rec.dropout_mask((B, H), 0.4, rng)
                                   if recurrent_dropout else None)
    return p


def swap(a):
    return None if a is None else np.ascontiguousarray(np.swapaxes(a, 0, 1))


def kernels_run(p, activation, dtype, go_backwards=False, time_major=False):
    """_kernels.rnn_forward and rnn_backward (any activation code) on problem p;
    results batch-major."""
    c = {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
         for k, v in p.items()}
    B, T, D = c["x"].shape
    H = c["kernel"].shape[1]
    x, dh = c["x"], c["dh"]
    mask = None if c["mask"] is None else c["mask"].astype(np.uint8)
    if time_major:
        x, dh, mask = swap(x), swap(dh), swap(mask)
    code = _kernels.ACTIVATION_CODES[activation]
    masks = dict(mask=mask, dropout_mask=c["dropout_mask"],
                 recurrent_dropout_mask=c["recurrent_dropout_mask"],
                 x_work=np.empty(B * T * D, dtype), time_major=time_major,
                 reverse=go_backwards)
    h = np.empty(x.shape[:2] + (H,), dtype)
    _kernels.rnn_forward(x, c["kernel"], c["recurrent_kernel"], c["bias"], c["h0"], h, None,
                         code, h_work=np.empty(B * H, dtype), **masks)
    dx = np.empty(x.shape, dtype)
    dk, drk = np.empty((D, H), dtype), np.empty((H, H), dtype)
    db, dh0 = np.empty(H, dtype), np.empty((B, H), dtype)
    _kernels.rnn_backward(x, h, c["kernel"], c["recurrent_kernel"], dh, c["h0"],
                          np.empty(h.shape, dtype), dx, dk, drk, db, dh0,
                          np.empty((B, H), dtype), np.empty((H, H), dtype), code,
                          h_work=np.empty(B * T * H, dtype), **masks)
    if time_major:
        h, dx = swap(h), swap(dx)
    return h, (dx, dk, drk, db, dh0)


def check_against_reference(p, activation, dtype, go_backwards=False, time_major=False):
    h, grads = kernels_run(p, activation, dtype, go_backwards, time_major)
    # the reference on exactly the values the kernels saw
    p64 = {k: (v.astype(dtype).astype(np.float64) if isinstance(v, np.ndarray) and
               v.dtype.kind == "f" else v) for k, v in p.items()}
    kw = dict(mask=p64["mask"], go_backwards=go_backwards, dropout_mask=p64["dropout_mask"],
              recurrent_dropout_mask=p64["recurrent_dropout_mask"])
    h_ref = rec.recurrence_forward(p64["x"], p64["kernel"], p64["recurrent_kernel"],
                                   p64["bias"], p64["h0"], activation, **kw)
    assert_close(h, h_ref, "forward", dtype, err_msg="h")
    # the reference backward gets the kernel's own states: only BPTT is compared
    grads_ref = rec.recurrence_backward(p64["x"], h.astype(np.float64), p64["kernel"],
                                        p64["recurrent_kernel"], p64["dh"], p64["bias"],
                                        p64["h0"], activation, **kw)
    for name, g, g_ref in zip(GRAD_NAMES, grads, grads_ref):
        assert_close(g, g_ref, "backward", dtype, err_msg=name)
    return h, grads


# ---------------------------------------------------------------- micro-kernels

@settings(max_examples=25)
@given(M=st.integers(1, 70), N=st.integers(1, 600), K=st.integers(0, 130),
       accumulate=st.booleans(), seed=st.integers(0, 2**31))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_tiles_match_an_exact_product(isa, dtype, M, N, K, accumulate, seed):
    _kernels._set_isa(isa)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(dtype)
    w = rng.standard_normal((K, N)).astype(dtype)
    c0 = rng.standard_normal((M, N)).astype(dtype)
    c = c0.copy()
    _kernels._packed_gemm(a, w, c, accumulate)
    a64, w64 = a.astype(np.float64), w.astype(np.float64)
    exact = a64 @ w64 + (c0.astype(np.float64) if accumulate else 0)
    # the standard error bound of a sum of K products: rtol times sum |a_ik w_kj| (+ |c|)
    bound = np.abs(a64) @ np.abs(w64) + (np.abs(c0) if accumulate else 0)
    t = tol("forward", dtype)
    err = np.abs(c.astype(np.float64) - exact)
    assert np.all(err <= t["rtol"] * bound + t["atol"]), float(np.max(err - t["rtol"] * bound))


# ---------------------------------------------------------------- the team GEMM

def team_gemm(a, b, c, trans_a, trans_b, accumulate, kgroup=0, a_gstride=0, b_gstride=0,
              K=None):
    """Run _team_gemm_run on 2-D operands (op(A) = a.T with trans_a, ...); c in place.
    With kgroup, a and b are the flat storage and K the summed length."""
    M, N = c.shape
    if K is None:
        K = a.shape[0] if trans_a else a.shape[1]
    flat = c.reshape(-1)
    _kernels._team_gemm_run(trans_a, trans_b, M, N, K, a.reshape(-1), a.shape[-1],
                            b.reshape(-1), b.shape[-1], flat, N, accumulate, kgroup,
                            a_gstride, b_gstride)


def assert_within_sum_bound(c, exact, bound, dtype):
    """|c - exact| within the error bound of a sum of products: rtol sum |a_ik b_kj| + atol."""
    t = tol("forward", dtype)
    err = np.abs(c.astype(np.float64) - exact)
    assert np.all(err <= t["rtol"] * bound + t["atol"]), float(np.max(err - t["rtol"] * bound))


# M, N, K across the tile edges (8/4 rows, 48/24/16/12/8 columns) and the k
# blocks of 256 (K = 255, 256, 257, 513, ...)
@settings(max_examples=30)
@given(M=st.integers(1, 300), N=st.integers(1, 300),
       K=st.one_of(st.integers(0, 600), st.sampled_from([1, 255, 256, 257, 512, 513])),
       trans_a=st.booleans(), trans_b=st.booleans(), accumulate=st.booleans(),
       threads=st.integers(1, 3), seed=st.integers(0, 2**31))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_team_gemm_matches_numpy(isa, dtype, M, N, K, trans_a, trans_b, accumulate, threads,
                                 seed):
    _kernels._set_isa(isa)
    fastrnn.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    op_a = rng.standard_normal((M, K)).astype(dtype)
    op_b = rng.standard_normal((K, N)).astype(dtype)
    a = np.ascontiguousarray(op_a.T) if trans_a else op_a
    b = np.ascontiguousarray(op_b.T) if trans_b else op_b
    c0 = rng.standard_normal((M, N)).astype(dtype)
    if K == 0:          # the flat buffers must not be empty; K = 0 reads nothing
        a, b = np.zeros((1, 1), dtype), np.zeros((1, 1), dtype)
    c = c0.copy()
    team_gemm(a, b, c, trans_a, trans_b, accumulate, K=K)
    a64, b64 = op_a.astype(np.float64), op_b.astype(np.float64)
    exact = a64 @ b64 + (c0.astype(np.float64) if accumulate else 0)
    bound = np.abs(a64) @ np.abs(b64) + (np.abs(c0) if accumulate else 0)
    assert_within_sum_bound(c, exact, bound, dtype)


@pytest.mark.parametrize("trans_a, trans_b", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_team_gemm_is_bitwise_equal_on_1_2_and_3_threads(isa, dtype, trans_a, trans_b):
    _kernels._set_isa(isa)
    rng = np.random.default_rng(7)
    # tall (split by rows), wide (split by columns), several k blocks, partial tiles
    for M, N, K in [(301, 77, 530), (13, 290, 700), (97, 101, 257)]:
        a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
        b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
        c0 = rng.standard_normal((M, N)).astype(dtype)
        runs = []
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            c = c0.copy()
            team_gemm(a, b, c, trans_a, trans_b, True)
            assert _kernels._packed_info()["last_threads"] == n
            runs.append(c)
        np.testing.assert_array_equal(runs[0], runs[1])
        np.testing.assert_array_equal(runs[0], runs[2])


@pytest.mark.parametrize("trans_a, trans_b", [(True, False), (False, True)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_team_gemm_with_k_groups(dtype, trans_a, trans_b):
    """kgroup: the summed index runs over the first T - 1 rows (or columns) of each
    of B blocks of T, as the batch-major dW_h pairs h[b, t-1] with dz[b, t]."""
    rng = np.random.default_rng(3)
    fastrnn.set_num_threads(2)
    for B, T, M, N in [(5, 70, 33, 50), (3, 2, 9, 61), (40, 9, 100, 20)]:
        kg = T - 1
        # op(A)[:, (b, t)] for t < T - 1 from a (B*T, M) array (trans_a) or (M, B*T)
        if trans_a:
            a = rng.standard_normal((B * T, M)).astype(dtype)
            op_a = a.reshape(B, T, M)[:, :kg].reshape(-1, M).T
            a_gs = T * M
        else:
            a = rng.standard_normal((M, B * T)).astype(dtype)
            op_a = a.reshape(M, B, T)[:, :, 1:].reshape(M, -1)   # start one column in
            a_gs = T
        if trans_b:
            b = rng.standard_normal((N, B * T)).astype(dtype)
            op_b = b.reshape(N, B, T)[:, :, :kg].reshape(N, -1).T
            b_gs = T
        else:
            b = rng.standard_normal((B * T, N)).astype(dtype)
            op_b = b.reshape(B, T, N)[:, 1:].reshape(-1, N)      # start one row in
            b_gs = T * N
        c = np.full((M, N), np.nan, dtype)
        M_, N_ = c.shape
        flat_a = a.reshape(-1) if trans_a else a.reshape(-1)[1:]
        flat_b = b.reshape(-1)[N:] if not trans_b else b.reshape(-1)
        _kernels._team_gemm_run(trans_a, trans_b, M_, N_, B * kg, flat_a, a.shape[1],
                                flat_b, b.shape[1], c.reshape(-1), N_, False, kg, a_gs, b_gs)
        a64, b64 = op_a.astype(np.float64), op_b.astype(np.float64)
        assert_within_sum_bound(c, a64 @ b64, np.abs(a64) @ np.abs(b64), dtype)


def test_a_packed_recurrence_makes_no_blas_call(monkeypatch):
    """Forward and backward on the packed path (h0, step masks, both directions and
    layouts, input and recurrent dropout) call no BLAS product: no BLAS thread pool
    wakes beside the team (the forward with recurrent dropout takes the BLAS path;
    its backward does not).  The BLAS path counts its calls (the check can fail)."""
    fastrnn.set_num_threads(2)
    calls = {}

    def counted(name):
        original = getattr(_kernels, name)

        def run(*args, **kwargs):
            before = _kernels._blas_call_count()
            original(*args, **kwargs)
            calls[name] = _kernels._blas_call_count() - before
        monkeypatch.setattr(_kernels, name, run)

    counted("rnn_forward")
    counted("rnn_backward")
    p = problem(7, 5, 6, 60, seed=4, mask="random", dropout=True)
    for time_major in (False, True):
        for go_backwards in (False, True):
            kernels_run(p, "tanh", np.float32, go_backwards, time_major)
            assert calls == {"rnn_forward": 0, "rnn_backward": 0}
    for h0 in (False, True):
        kernels_run(problem(7, 5, 6, 60, seed=4, recurrent_dropout=True, h0=h0), "relu",
                    np.float64, go_backwards=h0)
        assert calls["rnn_forward"] > 0 and calls["rnn_backward"] == 0
    _kernels._set_packed_mode("never")
    kernels_run(p, "tanh", np.float32)
    assert calls["rnn_forward"] > 0 and calls["rnn_backward"] > 0


@pytest.mark.parametrize("bad", [np.inf, np.nan, 1e6])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_drecurrent_kernel_pairs_only_steps_of_one_sequence(dtype, go_backwards, bad):
    """Batch-major dW_h on the team sums h_p^T dz_t over the (T - 1) pairs of each
    sequence (k groups): the state no step reads (the last processed one) stays out,
    be it huge (a pair across sequences would show) or inf / NaN (relu: the
    reference's dW_h is finite, so must ours be)."""
    from fastrnn import ops
    fastrnn.set_num_threads(2)
    p = problem(5, 6, 3, 70, seed=9)
    kw = dict(activation="relu", go_backwards=go_backwards)
    h = ops.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], **kw)
    last = 0 if go_backwards else -1
    h[1, last, 2] = bad
    h[3, last] *= 1e6
    args = [a.astype(dtype) for a in (p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"],
                                      p["h0"])]
    got = ops.rnn_backward(*args, **kw)
    want = rec.recurrence_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"],
                                   p["bias"], p["h0"], "relu", go_backwards=go_backwards)
    assert np.isfinite(got[2]).all()
    for name, g, g_ref in zip(GRAD_NAMES, got, want):
        assert_close(g, g_ref, "backward", dtype, err_msg=name)


# ---------------------------------------------------------------- recurrence vs reference

@st.composite
def shapes(draw):
    return dict(B=draw(st.integers(1, 70)), T=draw(st.integers(1, 3)),
                D=draw(st.integers(0, 5)), H=draw(st.integers(1, 600)),
                seed=draw(st.integers(0, 2**31)), h0=draw(st.booleans()),
                mask=draw(st.sampled_from([None, "random"])))


@settings(max_examples=12)
@given(s=shapes(), activation=st.sampled_from(["tanh", "relu"]), go_backwards=st.booleans(),
       time_major=st.booleans())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_recurrence_matches_the_reference(isa, dtype, s, activation, go_backwards,
                                          time_major):
    _kernels._set_isa(isa)
    check_against_reference(problem(**s), activation, dtype, go_backwards, time_major)


@pytest.mark.parametrize("activation", ELEMENTWISE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_elementwise_activation(dtype, activation):
    p = problem(9, 3, 4, 53, seed=len(activation), mask="random")
    check_against_reference(p, activation, dtype, go_backwards=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_dropout_masks(isa, dtype):
    """Input and recurrent dropout (the forward with recurrent dropout takes the BLAS
    path, its backward the packed one)."""
    _kernels._set_isa(isa)
    p = problem(11, 4, 3, 101, seed=3, mask="random", dropout=True, recurrent_dropout=True)
    for go_backwards, time_major in [(False, False), (True, True)]:
        check_against_reference(p, "tanh", dtype, go_backwards, time_major)


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_results_are_bitwise_equal_on_1_2_and_3_threads(isa, dtype):
    _kernels._set_isa(isa)
    # H: several panels per thread on every path, the last one partial
    p = problem(67, 4, 5, 173, seed=5, mask="random", dropout=True)
    runs = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        h, grads = kernels_run(p, "tanh", dtype, go_backwards=True)
        assert _kernels._packed_info()["last_threads"] == n
        runs.append((h,) + grads)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_thread_counts_changing_from_call_to_call():
    """Workers that sat out a call (fewer threads, fewer panels) take the next
    job once, not the one before it again."""
    rng = np.random.default_rng(0)
    p_wide = problem(3, 2, 2, 150, seed=1)
    p_narrow = problem(3, 2, 2, 20, seed=2)     # one panel: one thread
    expected = {id(p): kernels_run(p, "tanh", np.float64)[0] for p in (p_wide, p_narrow)}
    for n in rng.integers(1, 4, 150):
        fastrnn.set_num_threads(int(n))
        p = p_wide if n != 2 else p_narrow
        np.testing.assert_array_equal(kernels_run(p, "tanh", np.float64)[0], expected[id(p)])


def test_fewer_panels_than_threads_uses_fewer_threads():
    fastrnn.set_num_threads(3)
    check_against_reference(problem(5, 2, 2, 3, seed=1), "tanh", np.float64)
    assert _kernels._packed_info()["last_threads"] == 1


def test_concurrent_calls_agree_with_serial_ones():
    """Calls from several Python threads at once (one gets the team, the others
    run on their own thread): each result is bitwise the serial one."""
    import threading
    fastrnn.set_num_threads(2)
    problems = [problem(8, 3, 4, 97, seed=s) for s in range(4)]
    serial = [kernels_run(p, "tanh", np.float64)[0] for p in problems]
    results = [None] * len(problems)

    def work(i):
        for _ in range(5):
            results[i] = kernels_run(problems[i], "tanh", np.float64)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


def test_no_thread_sees_another_threads_blas_setting():
    """A packed backward (its merged products on the team) on a worker thread
    leaves the BLAS thread count every other thread reads as it was: the BLAS's
    per-thread setter is used only where it really is per thread."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import threading
    fastrnn.set_num_threads(2)

    def counts():
        return sorted((i["filepath"], i["num_threads"])
                      for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")

    before = counts()
    p = problem(16, 20, 300, 300, seed=3)
    done = threading.Event()

    def work():
        for _ in range(3):
            kernels_run(p, "tanh", np.float32)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    seen = set()
    while not done.is_set():
        seen.add(tuple(counts()))
    worker.join()
    assert seen <= {tuple(before)}
    assert counts() == before


def test_set_num_threads_checks_its_argument():
    fastrnn.set_num_threads(np.int64(2))
    assert fastrnn.get_num_threads() == 2
    with pytest.raises(TypeError, match="n must be an int"):
        fastrnn.set_num_threads(1.5)
    with pytest.raises(TypeError, match="n must be an int"):
        fastrnn.set_num_threads(True)
    with pytest.raises(ValueError, match="at least 1"):
        fastrnn.set_num_threads(0)


# ---------------------------------------------------------------- routing

def blas_and_packed(p, activation, dtype=np.float64):
    # the portable kernel: its sums (no FMA) differ from BLAS's, which the
    # AVX-512 kernel can match bit for bit
    _kernels._set_isa("generic")
    _kernels._set_packed_mode("never")
    blas = kernels_run(p, activation, dtype)
    _kernels._set_packed_mode("always")
    packed = kernels_run(p, activation, dtype)
    return blas, packed


def same(run_a, run_b):
    (ha, ga), (hb, gb) = run_a, run_b
    return np.array_equal(ha, hb) and all(np.array_equal(a, b) for a, b in zip(ga, gb))


@pytest.mark.parametrize("activation", ["softmax", "log_softmax"])
def test_row_wise_activations_stay_on_the_blas_path(activation):
    blas, packed = blas_and_packed(problem(6, 3, 4, 150, seed=2), activation)
    assert same(blas, packed)


def test_forward_with_recurrent_dropout_stays_on_the_blas_path():
    p = problem(6, 3, 4, 150, seed=2, recurrent_dropout=True)
    (h_blas, _), (h_packed, _) = blas_and_packed(p, "tanh")
    np.testing.assert_array_equal(h_blas, h_packed)


def test_the_packed_path_differs_from_blas_where_it_runs():
    """The routing tests above can fail: where the kernel runs, the summation
    order differs from BLAS's somewhere in a large problem."""
    blas, packed = blas_and_packed(problem(6, 3, 40, 150, seed=2), "tanh")
    assert not same(blas, packed)


def test_engine_gradients_on_the_packed_kernel():
    """A model's training gradients (time-major, go_backwards, last state only):
    the packed kernel against the BLAS path, float64."""
    from fastrnn.layers import Dense, SimpleRNN
    rng = np.random.default_rng(0)
    x = rng.standard_normal((13, 5, 7))
    y = rng.standard_normal((13, 3))
    grads = {}
    _kernels._set_isa("generic")
    for mode in ("never", "always"):
        _kernels._set_packed_mode(mode)
        fastrnn.set_random_seed(1)
        model = fastrnn.Sequential([fastrnn.Input((5, 7), dtype="float64"),
                                    SimpleRNN(70, go_backwards=True, return_sequences=True),
                                    SimpleRNN(61, activation="relu"), Dense(3)])
        model.compile(optimizer="sgd", loss="mse")
        model._loss_and_gradients(x, y)
        grads[mode] = model.grads.copy()
    assert not np.array_equal(grads["never"], grads["always"])
    assert_close(grads["always"], grads["never"], "backward", np.float64)


SUBPROCESS = """
import fastrnn, numpy as np
from fastrnn import _kernels, ops
info = _kernels._packed_info()
x = np.ones((4, 3, 2)); k = np.ones((2, 20)) * 0.1; rk = np.eye(20) * 0.5; b = np.zeros(20)
ops.rnn_forward(x, k, rk, b)
after_small = _kernels._packed_info()["crossover"]
print(info["num_threads"], info["isa"], info["mode"], after_small)
"""


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("FASTRNN_NUM_THREADS", "FASTRNN_ISA", "FASTRNN_PACKED")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                         text=True, check=True)
    return out.stdout.split(), out.stderr


def test_environment_switches_and_small_layers_never_reach_the_dispatch():
    (threads, isa, mode, crossover), _ = run_python(SUBPROCESS)
    assert mode == "auto"
    assert crossover == "None"      # H = 20: no calibration, no team
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count())
    assert int(threads) == cores
    (threads, isa, mode, _), _ = run_python(SUBPROCESS, FASTRNN_NUM_THREADS="3",
                                            FASTRNN_ISA="generic", FASTRNN_PACKED="never")
    assert (threads, isa, mode) == ("3", "generic", "never")
    (threads, _, mode, _), err = run_python(SUBPROCESS, FASTRNN_NUM_THREADS="zero",
                                            FASTRNN_PACKED="sometimes")
    assert "FASTRNN_NUM_THREADS" in err and "FASTRNN_PACKED" in err
    assert mode == "auto"
