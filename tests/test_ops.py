"""The compiled, checked API (fastrnn.ops) against the NumPy reference.

float64 kernels must match the float64 reference tightly; float32 kernels are
compared with the float64 reference run on the same (float32-rounded) inputs.
Tolerances come from the one table in tests/tolerances.py.
"""
import re
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastrnn import ops
from fastrnn import reference as ref

from problems import make_rnn_problem
from tolerances import assert_close

DTYPES = (np.float64, np.float32)
GRAD_NAMES = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0")
MAX_ELEMENTS = 60_000  # bound on B*T*max(D, H) in the sweep, to keep it fast


def cast(problem, dtype):
    return {k: None if v is None else v.astype(dtype) for k, v in problem.items()}


def forward(p, activation="tanh", fn=ops.rnn_forward):
    return fn(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"], activation)


def backward(p, h, activation="tanh", fn=ops.rnn_backward):
    return fn(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"], p["h0"], activation)


def check_parity(problem, dtype, activation):
    """ops in ``dtype`` vs the float64 reference on the same rounded inputs."""
    p = cast(problem, dtype)
    p64 = cast(p, np.float64)  # exactly the values the kernel sees
    h = forward(p, activation)
    assert h.dtype == dtype and h.shape == p["dh"].shape
    h_ref = forward(p64, activation, ref.rnn_forward)
    assert_close(h, h_ref, "forward", dtype, err_msg="h")
    grads = backward(p, h, activation)
    # the reference backward gets the kernel's own h, so only BPTT is compared
    grads_ref = backward(p64, h.astype(np.float64), activation, ref.rnn_backward)
    for name, g, g_ref in zip(GRAD_NAMES, grads, grads_ref):
        assert g.dtype == dtype and g.shape == g_ref.shape, name
        assert_close(g, g_ref, "backward", dtype, err_msg=name)


@st.composite
def rnn_shapes(draw):
    B = draw(st.integers(1, 16))
    D = draw(st.integers(1, 64))
    H = draw(st.integers(1, 64))
    T = draw(st.integers(1, 200))
    T = max(1, min(T, MAX_ELEMENTS // (B * max(D, H))))
    return B, T, D, H


@given(shape=rnn_shapes(), seed=st.integers(0, 2**31),
       activation=st.sampled_from(ref.ACTIVATIONS),
       with_h0=st.sampled_from([True, True, False]))  # mostly a non-zero h0
@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_matches_reference(dtype, shape, seed, activation, with_h0):
    check_parity(make_rnn_problem(*shape, seed, with_h0), dtype, activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (32, 3, 1, 20), (2, 200, 3, 5),
                                   (16, 1, 64, 64), (1, 7, 2, 3),
                                   (16, 200, 64, 64)])
def test_rnn_matches_reference_at_edges(dtype, activation, shape):
    check_parity(make_rnn_problem(*shape, seed=sum(shape)), dtype, activation)


# Mid-sized products run as single-thread pieces (_kernels.gemm): along the summed
# dimension (dW_h: H x H over B*T rows), the rows (x W over B*T rows) and the
# columns (dx = dz W^T with many features).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(20, 32, 1, 64),      # dW_h: 64 x 64 x 640, split along k
                                   (40, 50, 32, 64),     # x W: 2000 x 64 x 32, split along m
                                   (2, 32, 1000, 64)])   # dx: 64 x 1000 x 64, split along n
def test_rnn_matches_reference_where_products_are_split(dtype, shape):
    from fastrnn import _kernels
    B, T, D, H = shape
    mnk = [H * H * B * T, B * T * H * D, B * T * D * H]
    assert any(_kernels.SINGLE_THREAD_PRODUCT < v <= _kernels.SPLIT_PRODUCTS_UP_TO for v in mnk)
    check_parity(make_rnn_problem(*shape, seed=7), dtype, "tanh")


@pytest.mark.parametrize("with_h0", [False, True])
def test_drecurrent_kernel_is_exact_when_gradients_differ_hugely_over_time(with_h0):
    # dz_0 is ~1e12 times the other steps'. dW_h must not mix pairs
    # (h[b, T-1], dz[b+1, 0]) in and out again: that cancels catastrophically.
    p = make_rnn_problem(6, 5, 3, 4, seed=21, with_h0=with_h0)
    p["dh"][:, 0] *= 1e12
    h = forward(p)
    grads = backward(p, h)
    grads_ref = backward(p, h, fn=ref.rnn_backward)
    assert_close(grads[2], grads_ref[2], "backward", np.float64)


def test_rnn_backward_gradient_is_not_trivially_zero():
    # guards the parity tests against comparing two all-zero results
    p = make_rnn_problem(3, 4, 2, 5, seed=1)
    grads = backward(p, forward(p))
    assert all(np.abs(g).max() > 1e-3 for g in grads)


# ---------------------------------------------------------------- layouts

def layouts(a):
    """The same values as ``a`` in other memory layouts."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    yield "strided", view
    rev = np.ascontiguousarray(a[::-1])[::-1]  # negative stride on axis 0
    yield "negative", rev
    ro = a.copy()
    ro.setflags(write=False)
    yield "read-only", ro


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "read-only"])
def test_rnn_layouts_give_identical_results(dtype, layout):
    p = cast(make_rnn_problem(4, 6, 3, 5, seed=7), dtype)
    h = forward(p)
    grads = backward(p, h)
    q = {k: dict(layouts(v))[layout] for k, v in p.items()}
    if layout != "read-only":
        assert not all(v.flags.c_contiguous for v in q.values())
    saved = {k: v.copy() for k, v in q.items()}
    h2 = forward(q)
    grads2 = backward(q, dict(layouts(h))[layout])
    np.testing.assert_array_equal(h2, h)
    for name, g, g2 in zip(GRAD_NAMES, grads, grads2):
        np.testing.assert_array_equal(g2, g, err_msg=name)
    for k, v in q.items():
        np.testing.assert_array_equal(v, saved[k], err_msg=f"{k} was modified")


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_share_no_memory_with_inputs(dtype):
    p = cast(make_rnn_problem(3, 4, 2, 5, seed=3), dtype)
    h = forward(p)
    outputs = [h, *backward(p, h)]
    inputs = list(p.values()) + [h]
    for i, out in enumerate(outputs):
        for j, arr in enumerate(inputs):
            if out is not arr:
                assert not np.shares_memory(out, arr), (i, j)
    x, kernel, bias = p["x"], p["kernel"], p["bias"]
    y = ops.dense_forward(x, kernel, bias)
    for out in [y, *ops.dense_backward(x, kernel, y)]:
        for arr in (x, kernel, bias, y):
            assert out is arr or not np.shares_memory(out, arr)


def test_inputs_are_not_modified():
    p = make_rnn_problem(3, 5, 2, 4, seed=11)
    saved = {k: v.copy() for k, v in p.items()}
    h = forward(p)
    h_saved = h.copy()
    backward(p, h)
    for k, v in p.items():
        np.testing.assert_array_equal(v, saved[k], err_msg=k)
    np.testing.assert_array_equal(h, h_saved)


def test_non_native_byte_order_is_accepted():
    p = make_rnn_problem(2, 3, 2, 3, seed=6)
    swapped = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in p.items()}
    np.testing.assert_array_equal(forward(swapped), forward(p))


def test_lists_are_accepted():
    p = make_rnn_problem(2, 3, 2, 3, seed=5)
    h = forward(p)
    h_list = forward({k: v.tolist() for k, v in p.items()})
    np.testing.assert_array_equal(h_list, h)


# ---------------------------------------------------------------- threads

def test_threads_give_bitwise_the_serial_results():
    problems = [cast(make_rnn_problem(16, 40, 8, 48, seed=s), dt)
                for s, dt in zip(range(8), DTYPES * 4)]
    serial = [(forward(p), backward(p, forward(p))) for p in problems]
    results = [None] * len(problems)
    barrier = threading.Barrier(len(problems))

    def work(i):
        barrier.wait()
        for _ in range(5):
            h = forward(problems[i])
            results[i] = (h, backward(problems[i], h))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (h, grads), (h_s, grads_s) in zip(results, serial):
        np.testing.assert_array_equal(h, h_s)
        for g, g_s in zip(grads, grads_s):
            np.testing.assert_array_equal(g, g_s)


# ---------------------------------------------------------------- bad input

def good_args(dtype=np.float64, B=2, T=3, D=4, H=5):
    p = cast(make_rnn_problem(B, T, D, H, seed=0), dtype)
    return p, ref.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"], p["bias"], p["h0"])


def call_forward(p, **change):
    q = {**p, **change}
    return ops.rnn_forward(q["x"], q["kernel"], q["recurrent_kernel"], q["bias"], q["h0"],
                           q.get("activation", "tanh"))


def call_backward(p, h_, **change):
    q = {**p, "h": h_, **change}
    return ops.rnn_backward(q["x"], q["h"], q["kernel"], q["recurrent_kernel"], q["dh"],
                            q["h0"], q.get("activation", "tanh"))


BAD_SHAPES = [  # argument, bad value builder, the expected shape in the message
    ("x", lambda p: p["x"][..., 0], r"\(B, T, D\)"),
    ("kernel", lambda p: p["kernel"][:-1], r"\(4, 5\)"),
    ("kernel", lambda p: p["kernel"][0], r"\(D, H\)"),
    ("recurrent_kernel", lambda p: p["recurrent_kernel"][:, :-1], r"\(5, 5\)"),
    ("bias", lambda p: p["bias"][:-1], r"\(5,\)"),
    ("bias", lambda p: p["bias"][None], r"\(5,\)"),
    ("h0", lambda p: p["h0"][:-1], r"\(2, 5\)"),
    ("h0", lambda p: p["h0"][:, :, None], r"\(2, 5\)"),
]


@pytest.mark.parametrize("name, bad, expected", BAD_SHAPES)
def test_wrong_shape_is_a_value_error_naming_the_argument(name, bad, expected):
    p, h = good_args()
    value = bad(p)
    pattern = rf"^{name} .*{expected}.*got {re.escape(str(value.shape))}"
    with pytest.raises(ValueError, match=pattern):
        call_forward(p, **{name: value})
    if name != "bias":
        with pytest.raises(ValueError, match=pattern):
            call_backward(p, h, **{name: value})


@pytest.mark.parametrize("name", ["h", "dh"])
@pytest.mark.parametrize("cut", [lambda a: a[:, :-1], lambda a: a[..., :-1], lambda a: a[0]])
def test_backward_h_and_dh_shapes_are_checked(name, cut):
    p, h = good_args()
    value = cut(h if name == "h" else p["dh"])
    with pytest.raises(ValueError, match=rf"^{name} must have shape \(B, T, H\) = \(2, 3, 5\) "
                                         rf"\(B, T from x, H: the units of kernel\), "
                                         rf"got {re.escape(str(value.shape))}"):
        call_backward(p, h, **{name: value})


@pytest.mark.parametrize("name", ["x", "kernel", "recurrent_kernel", "bias", "h0"])
@pytest.mark.parametrize("bad_dtype", [np.int64, np.int32, np.bool_, np.complex128, object,
                                       np.float16])
def test_non_float_dtype_is_a_type_error_naming_the_argument(name, bad_dtype):
    p, h = good_args()
    value = p[name].astype(bad_dtype)
    with pytest.raises(TypeError, match=rf"^{name} "):
        call_forward(p, **{name: value})
    if name != "bias":
        with pytest.raises(TypeError, match=rf"^{name} "):
            call_backward(p, h, **{name: value})


@pytest.mark.parametrize("name", ["kernel", "recurrent_kernel", "bias", "h0", "h", "dh"])
def test_mixed_float_dtypes_are_a_type_error_naming_the_argument(name):
    p, h = good_args(np.float32)
    h = h.astype(np.float32)
    value = (h if name == "h" else p[name]).astype(np.float64)
    with pytest.raises(TypeError, match=rf"^{name} has dtype float64, but x has float32"):
        if name in ("h", "dh"):
            call_backward(p, h, **{name: value})
        else:
            call_forward(p, **{name: value})


def test_list_of_other_precision_is_a_type_error():
    p, _ = good_args(np.float32)
    with pytest.raises(TypeError, match="^kernel has dtype float64"):
        call_forward(p, kernel=p["kernel"].tolist())


def test_none_bias_is_a_type_error():
    p, _ = good_args()
    with pytest.raises(TypeError, match="^bias "):
        call_forward(p, bias=None)


@pytest.mark.parametrize("activation", ["sigmoid", "TANH", None, 0])
def test_unknown_activation_is_a_value_error(activation):
    p, h = good_args()
    with pytest.raises(ValueError, match="^activation must be one of"):
        call_forward(p, activation=activation)
    with pytest.raises(ValueError, match="^activation must be one of"):
        call_backward(p, h, activation=activation)


def test_zero_time_steps_is_a_value_error():
    p, h = good_args(T=1)
    p = {**p, "x": p["x"][:, :0], "dh": p["dh"][:, :0]}
    with pytest.raises(ValueError, match=r"^x must have at least one time step"):
        call_forward(p)
    with pytest.raises(ValueError, match=r"^x must have at least one time step"):
        call_backward(p, h[:, :0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_gives_empty_results_of_the_right_shapes(dtype):
    p, h = good_args(dtype)
    p = {k: v[:0] if k in ("x", "h0", "dh") else v for k, v in p.items()}
    h = call_forward(p)
    assert h.shape == (0, 3, 5) and h.dtype == dtype
    dx, dk, drk, db, dh0 = call_backward(p, h)
    assert dx.shape == (0, 3, 4) and dh0.shape == (0, 5)
    for g, shape in ((dk, (4, 5)), (drk, (5, 5)), (db, (5,))):
        assert g.shape == shape and g.dtype == dtype
        np.testing.assert_array_equal(g, 0)


@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_zero_input_features_match_the_reference(activation):
    p, _ = good_args(D=0)
    h = call_forward(p, activation=activation)
    np.testing.assert_allclose(h, ref.rnn_forward(p["x"], p["kernel"], p["recurrent_kernel"],
                                                  p["bias"], p["h0"], activation), rtol=1e-12)
    grads = call_backward(p, h, activation=activation)
    grads_ref = ref.rnn_backward(p["x"], h, p["kernel"], p["recurrent_kernel"], p["dh"],
                                 p["h0"], activation)
    for g, g_ref in zip(grads, grads_ref):
        assert g.shape == g_ref.shape
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-14)


def test_zero_units_give_empty_states_and_zero_input_gradient():
    p = dict(x=np.ones((2, 3, 4)), kernel=np.ones((4, 0)), recurrent_kernel=np.ones((0, 0)),
             bias=np.ones(0), h0=np.ones((2, 0)), dh=np.ones((2, 3, 0)))
    h = call_forward(p)
    assert h.shape == (2, 3, 0)
    dx, dk, drk, db, dh0 = call_backward(p, h)
    assert (dk.shape, drk.shape, db.shape, dh0.shape) == ((4, 0), (0, 0), (0,), (2, 0))
    np.testing.assert_array_equal(dx, np.zeros((2, 3, 4)))


# ---------------------------------------------------------------- dense

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lead", [(), (1,), (7,), (3, 4), (2, 3, 2), (0,)])
@pytest.mark.parametrize("D, U", [(1, 1), (5, 3), (20, 1), (3, 17)])
def test_dense_matches_reference(dtype, lead, D, U):
    rng = np.random.default_rng(len(lead) * 100 + D * 10 + U)
    x = rng.standard_normal(lead + (D,)).astype(dtype)
    kernel = rng.standard_normal((D, U)).astype(dtype)
    bias = rng.standard_normal(U).astype(dtype)
    dy = rng.standard_normal(lead + (U,)).astype(dtype)
    c64 = lambda a: a.astype(np.float64)  # noqa: E731
    y = ops.dense_forward(x, kernel, bias)
    assert y.dtype == dtype and y.shape == lead + (U,)
    assert_close(y, ref.dense_forward(c64(x), c64(kernel), c64(bias)), "forward", dtype)
    grads = ops.dense_backward(x, kernel, dy)
    grads_ref = ref.dense_backward(c64(x), c64(kernel), c64(dy))
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == dtype and g.shape == g_ref.shape
        assert_close(g, g_ref, "backward", dtype)


def test_dense_layouts_and_bad_input():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4))
    kernel, bias = rng.standard_normal((4, 3)), rng.standard_normal(3)
    y = ops.dense_forward(x, kernel, bias)
    np.testing.assert_array_equal(ops.dense_forward(np.asfortranarray(x), kernel[::-1][::-1],
                                                    bias), y)
    np.testing.assert_array_equal(ops.dense_forward(x.T.copy().T, kernel, bias), y)
    with pytest.raises(ValueError, match=r"^kernel must have shape \(D, U\) with D = 4"):
        ops.dense_forward(x, kernel[:3], bias)
    with pytest.raises(ValueError, match=r"^bias must have shape \(U,\) = \(3,\) \(U: the units of kernel\), got \(2,\)"):
        ops.dense_forward(x, kernel, bias[:2])
    with pytest.raises(ValueError, match=r"^dy must have shape"):
        ops.dense_backward(x, kernel, y[:, :2])
    with pytest.raises(TypeError, match=r"^kernel has dtype float32"):
        ops.dense_forward(x, kernel.astype(np.float32), bias)
    with pytest.raises(TypeError, match=r"^x must be a float32 or float64 array"):
        ops.dense_forward(x.astype(int), kernel, bias)


# ---------------------------------------------------------------- losses

@pytest.mark.parametrize("loss", ["mse", "mae"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_match_reference(loss, dtype):
    rng = np.random.default_rng(4)
    y_pred = rng.standard_normal((10, 1)).astype(dtype)
    for y_true in (rng.standard_normal((10, 1)), rng.standard_normal(10), np.arange(10)):
        value, grad = getattr(ops, loss)(y_true, y_pred)
        value_ref, grad_ref = getattr(ref, loss)(y_true, y_pred)
        assert isinstance(value, float) and grad.dtype == dtype and grad.shape == y_pred.shape
        assert_close(value, value_ref, "forward", dtype)
        assert_close(grad, grad_ref, "forward", dtype)


@pytest.mark.parametrize("loss", [ops.mse, ops.mae])
def test_losses_validate(loss):
    y = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"^y_true must have shape \(4, 1\)"):
        loss(np.zeros(3), y)
    with pytest.raises(TypeError, match=r"^y_pred must be a float32 or float64"):
        loss(y, y.astype(int))
    with pytest.raises(TypeError, match=r"^y_true must be a real numeric"):
        loss(np.array(["a"] * 4), y)
    with pytest.raises(ValueError, match=r"^y_pred is empty"):
        loss(np.zeros((0, 1)), np.zeros((0, 1)))


# ---------------------------------------------------------------- Adam

@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_reference_over_several_steps(dtype):
    rng = np.random.default_rng(9)
    param = rng.standard_normal(461).astype(dtype)
    start = param.copy()
    m, v = np.zeros_like(param), np.zeros_like(param)
    param_r, m_r, v_r = param.copy(), m.copy(), v.copy()
    for step in range(1, 8):
        grad = rng.standard_normal(param.shape).astype(dtype)
        ops.adam_update(param, grad, m, v, step, 0.01, 0.9, 0.999, 1e-7)
        ref.adam_update(param_r, grad, m_r, v_r, step, 0.01, 0.9, 0.999, 1e-7)
    assert param.dtype == dtype
    for a, b in ((param, param_r), (m, m_r), (v, v_r)):
        assert_close(a, b, "forward", dtype)
    assert np.all(param != start)  # every parameter moved


def test_adam_updates_a_multidimensional_buffer_in_place():
    param = np.ones((3, 4))
    before = param.copy()
    m, v = np.zeros_like(param), np.zeros_like(param)
    ops.adam_update(param, np.ones((3, 4)), m, v, 1)
    np.testing.assert_allclose(param, before - 0.001, rtol=1e-6)


def test_adam_validates():
    p, g = np.zeros(4), np.ones(4)
    m, v = np.zeros(4), np.zeros(4)
    with pytest.raises(ValueError, match="^step must be >= 1"):
        ops.adam_update(p, g, m, v, 0)
    with pytest.raises(TypeError, match="^step must be an integer"):
        ops.adam_update(p, g, m, v, 1.5)
    with pytest.raises(TypeError, match="^grad has dtype float32"):
        ops.adam_update(p, g.astype(np.float32), m, v, 1)
    with pytest.raises(ValueError, match=r"^m must have shape"):
        ops.adam_update(p, g, m[:3], v, 1)
    with pytest.raises(ValueError, match="^param must be C-contiguous"):
        ops.adam_update(np.zeros(8)[::2], g, m, v, 1)
    ro = np.zeros(4)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="^v is read-only"):
        ops.adam_update(p, g, m, ro, 1)
    with pytest.raises(TypeError, match="^param must be a NumPy array"):
        ops.adam_update([0.0] * 4, g, m, v, 1)
    with pytest.raises(TypeError, match="^param must be a float32 or float64"):
        ops.adam_update(np.zeros(4, dtype=int), g, m, v, 1)
