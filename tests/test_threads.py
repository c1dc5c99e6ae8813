"""Threads: concurrent calls give bitwise the serial results, and the kernels
release the GIL (Python code runs in another thread while a kernel works)."""
import threading
import time

import numpy as np
import pytest

import fastrnn as keras
from fastrnn import ops

from concurrency import run_in_threads


def trained_model(seed=0):
    keras.set_random_seed(seed)
    model = keras.Sequential([keras.layers.SimpleRNN(units=16, input_shape=[5, 2]),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(seed)
    model.fit(rng.standard_normal((64, 5, 2)), rng.standard_normal(64), epochs=2, verbose=0)
    return model


def test_eight_threads_predicting_with_one_model_match_serial():
    model = trained_model()
    rng = np.random.default_rng(1)
    # pairs of equal batch sizes: a shared per-shape buffer would be raced on
    inputs = [rng.standard_normal((n, 5, 2)) for n in (3, 3, 8, 8, 17, 17, 32, 32)]
    serial = [model.predict(x, verbose=0) for x in inputs]
    concurrent = run_in_threads(lambda x: model.predict(x, verbose=0), inputs)
    for s, c in zip(serial, concurrent):
        assert s.dtype == c.dtype and np.array_equal(s, c)


def test_threads_sharing_inputs_leave_them_untouched():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 30, 4))
    kernel = rng.standard_normal((4, 16)) * 0.3
    recurrent_kernel = np.linalg.qr(rng.standard_normal((16, 16)))[0] * 0.9
    bias = rng.standard_normal(16) * 0.1
    snapshot = [a.copy() for a in (x, kernel, recurrent_kernel, bias)]
    serial = ops.rnn_forward(x, kernel, recurrent_kernel, bias)
    results = run_in_threads(lambda _: ops.rnn_forward(x, kernel, recurrent_kernel, bias), range(8))
    assert all(np.array_equal(r, serial) for r in results)
    assert all(np.array_equal(a, b) for a, b in zip(snapshot, (x, kernel, recurrent_kernel, bias)))


@pytest.mark.parametrize("which", ["rnn_forward", "rnn_backward"])
def test_kernels_release_the_gil(which):
    """While one thread is inside a long kernel call, the main thread runs Python.

    The main thread stamps the time in a loop while the worker makes ONE long
    call. Had the kernel held the GIL, no stamp could fall in the middle of
    the call (the main thread could not run a bytecode until it returned);
    with the GIL released, the stamps cover it.
    """
    rng = np.random.default_rng(3)
    B, T, D, H = 32, 400, 64, 256
    x = rng.standard_normal((B, T, D))
    kernel = rng.standard_normal((D, H)) * 0.05
    recurrent_kernel = np.linalg.qr(rng.standard_normal((H, H)))[0] * 0.9
    bias = np.zeros(H)
    h = ops.rnn_forward(x, kernel, recurrent_kernel, bias)
    dh = rng.standard_normal(h.shape)
    if which == "rnn_forward":
        def call():
            ops.rnn_forward(x, kernel, recurrent_kernel, bias)
    else:
        def call():
            ops.rnn_backward(x, h, kernel, recurrent_kernel, dh)
    span = {}

    def worker():
        span["start"] = time.perf_counter()
        call()
        span["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    stamps = []
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.0005)
    thread.join()
    start, end = span["start"], span["end"]
    middle = [t for t in stamps if start + 0.3 * (end - start) < t < start + 0.7 * (end - start)]
    assert middle, (f"the main thread did not run during the middle of a "
                    f"{end - start:.3f}s kernel call ({len(stamps)} stamps)")
