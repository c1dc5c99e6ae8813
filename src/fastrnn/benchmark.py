"""Side-by-side benchmarks: fastrnn against the NumPy reference and PyTorch.

``python -m fastrnn bench [--shapes S1 S2 ...] [--threads N] [--plot FILE.png]``
prints a table of median times per shape and operation for

* ``fastrnn``   -- :mod:`fastrnn.ops` for the recurrence, the model's
  compiled engine (:mod:`fastrnn.engine`) for ``train_step`` and ``predict``;
* ``reference`` -- :mod:`fastrnn.reference` (pure NumPy);
* ``torch1`` / ``torch`` -- ``torch.nn.RNN`` + ``Linear`` + ``Adam`` doing the
  same work at 1 thread and at PyTorch's default thread count, when importable;

and the ratios against the reference and against the better of the two
PyTorch results.  It also measures the float32 GEMM peak (NumPy, 2048^3).

Operations (float32, batch-major, h0 = 0):

``rnn_forward``   the recurrence forward, every state returned.
``rnn_backward``  forward + backward (BPTT) of the recurrence, given dLoss/dh
                  for every step: the work of one training pass without the
                  output layer and the optimizer.  The weight gradients only:
                  no dLoss/dx (PyTorch's x does not require grad; fastrnn
                  passes ``input_grad=False``).
``train_step``    SimpleRNN -> Dense(1) -> mse -> gradients -> Adam update.
``predict``       SimpleRNN -> Dense(1), forward only.

The case builders here are shared with the pytest-benchmark suite in
``bench/``.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

__all__ = ["SHAPES", "OPERATIONS", "BACKENDS", "make_case", "gemm_peak", "main",
           "add_arguments", "set_blas_threads", "torch_available"]

#: name -> (T, B, D, H)
SHAPES = {
    "S1": (3, 32, 1, 20),
    "S2": (50, 32, 1, 20),
    "S3": (25, 32, 64, 128),
    "L": (50, 64, 512, 512),
    "S5": (50, 32, 1760, 1760),
    "latency": (3, 1, 1, 20),
}
OPERATIONS = ("rnn_forward", "rnn_backward", "train_step", "predict")
BACKENDS = ("fastrnn", "reference", "torch1", "torch")


def shape_operations(shape):
    """The operations benchmarked at a shape (``latency`` is predict only)."""
    return ("predict",) if shape == "latency" else OPERATIONS


class Unavailable(Exception):
    """A backend cannot run here (e.g. torch is not installed)."""


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------
# Problem data

def make_problem(shape, dtype=np.float32, seed=0):
    """Inputs and weights of one benchmark shape.

    Returns
    -------
    dict
        ``x`` (B, T, D), ``y`` (B, 1), ``kernel`` (D, H), ``recurrent_kernel``
        (H, H) with spectral radius ~0.9, ``bias`` (H,), ``dense_kernel``
        (H, 1), ``dense_bias`` (1,), ``dh`` (B, T, H).
    """
    T, B, D, H = SHAPES[shape] if isinstance(shape, str) else shape
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    p = dict(
        x=rng.uniform(-1, 1, (B, T, D)),
        y=rng.uniform(-1, 1, (B, 1)),
        kernel=rng.uniform(-1, 1, (D, H)) * np.sqrt(6 / (D + H)),
        recurrent_kernel=0.9 * q,
        bias=rng.uniform(-0.1, 0.1, H),
        dense_kernel=rng.uniform(-1, 1, (H, 1)) * np.sqrt(6 / (H + 1)),
        dense_bias=np.zeros(1),
        dh=rng.standard_normal((B, T, H)) / (B * T),
    )
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in p.items()}


# ---------------------------------------------------------------------------
# Cases: make_case(...) returns a zero-argument callable doing one operation.

def make_case(backend, operation, shape, dtype=np.float32):
    """A callable that runs ``operation`` once on ``shape`` with ``backend``.

    Parameters
    ----------
    backend : {"fastrnn", "reference", "torch1", "torch"}
        ``torch1`` and ``torch`` build the same case; the caller sets the
        thread count (:func:`torch_threads`).
    operation : {"rnn_forward", "rnn_backward", "train_step", "predict"}
    shape : str
        A key of :data:`SHAPES`.

    Returns
    -------
    callable
        Each call does the operation once (the training step keeps training).

    Raises
    ------
    Unavailable
        torch is not installed.
    """
    p = make_problem(shape, dtype)
    if backend == "fastrnn":
        return _fastrnn_case(operation, p)
    if backend == "reference":
        return _reference_case(operation, p)
    if backend in ("torch1", "torch"):
        return _torch_case(operation, p)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _fastrnn_case(operation, p):
    from . import ops

    x, k, rk, b = p["x"], p["kernel"], p["recurrent_kernel"], p["bias"]
    if operation == "rnn_forward":
        return lambda: ops.rnn_forward(x, k, rk, b)
    if operation == "rnn_backward":
        dh = p["dh"]

        def fwd_bwd():
            h = ops.rnn_forward(x, k, rk, b)
            return ops.rnn_backward(x, h, k, rk, dh, input_grad=False)
        return fwd_bwd
    from . import Input, Sequential, layers
    B, T, D = x.shape
    model = Sequential([Input((T, D), dtype=x.dtype), layers.SimpleRNN(k.shape[1]),
                        layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.set_weights([p[n] for n in ("kernel", "recurrent_kernel", "bias", "dense_kernel",
                                      "dense_bias")])
    if operation == "train_step":     # one compiled engine call: what fit does per batch
        engine = model._trainer()
        y = p["y"]
        return lambda: engine.train_step(x, y, 0.001)
    if operation == "predict":
        engine = model._runner().predictor()
        out = np.empty((B, 1), x.dtype)
        return lambda: engine.predict(x, out, B)
    raise ValueError(f"unknown operation {operation!r}")


def _reference_case(operation, p):
    from . import reference as ref

    x, k, rk, b = p["x"], p["kernel"], p["recurrent_kernel"], p["bias"]
    if operation == "rnn_forward":
        return lambda: ref.rnn_forward(x, k, rk, b)
    if operation == "rnn_backward":
        dh = p["dh"]

        def fwd_bwd():
            h = ref.rnn_forward(x, k, rk, b)
            return ref.rnn_backward(x, h, k, rk, dh)
        return fwd_bwd
    wd, bd = p["dense_kernel"], p["dense_bias"]
    if operation == "predict":
        return lambda: ref.dense_forward(ref.rnn_forward(x, k, rk, b)[:, -1], wd, bd)
    if operation == "train_step":
        params = [a.copy() for a in (k, rk, b, wd, bd)]
        moments = [(np.zeros_like(a), np.zeros_like(a)) for a in params]
        step = [0]
        y = p["y"]

        def train_step():
            k_, rk_, b_, wd_, bd_ = params
            h = ref.rnn_forward(x, k_, rk_, b_)
            y_pred = ref.dense_forward(h[:, -1], wd_, bd_)
            loss, dy = ref.mse(y, y_pred)
            dhl, dwd, dbd = ref.dense_backward(h[:, -1], wd_, dy)
            dh = np.zeros_like(h)
            dh[:, -1] = dhl
            _, dk, drk, db, _ = ref.rnn_backward(x, h, k_, rk_, dh)
            step[0] += 1
            for a, g, (m, v) in zip(params, (dk, drk, db, dwd, dbd), moments):
                ref.adam_update(a, g, m, v, step[0])
            return loss
        return train_step
    raise ValueError(f"unknown operation {operation!r}")


def _torch_case(operation, p):
    try:
        import torch
    except ImportError:
        raise Unavailable("torch not installed") from None
    x_np = p["x"]
    B, T, D = x_np.shape
    H = p["kernel"].shape[1]
    torch.manual_seed(0)
    rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)
    dense = torch.nn.Linear(H, 1)
    with torch.no_grad():           # same weights; torch keeps (H, D) and two biases
        rnn.weight_ih_l0.copy_(torch.from_numpy(p["kernel"].T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(p["recurrent_kernel"].T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(p["bias"]))
        rnn.bias_hh_l0.zero_()
        dense.weight.copy_(torch.from_numpy(p["dense_kernel"].T.copy()))
        dense.bias.copy_(torch.from_numpy(p["dense_bias"]))
    x = torch.from_numpy(x_np)
    if operation == "rnn_forward":
        def forward():
            with torch.no_grad():
                return rnn(x)[0]
        return forward
    if operation == "rnn_backward":
        dh = torch.from_numpy(p["dh"])

        def fwd_bwd():
            rnn.zero_grad(set_to_none=True)
            out, _ = rnn(x)
            out.backward(dh)
        return fwd_bwd
    if operation == "predict":
        def predict():
            with torch.no_grad():
                return dense(rnn(x)[0][:, -1])
        return predict
    if operation == "train_step":
        y = torch.from_numpy(p["y"])
        params = list(rnn.parameters()) + list(dense.parameters())
        opt = torch.optim.Adam(params, lr=0.001, betas=(0.9, 0.999), eps=1e-7)
        loss_fn = torch.nn.MSELoss()

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(dense(rnn(x)[0][:, -1]), y)
            loss.backward()
            opt.step()
            return loss
        return train_step
    raise ValueError(f"unknown operation {operation!r}")


class torch_threads:
    """Context manager: torch at 1 thread (``torch1``) or its default (``torch``)."""

    def __init__(self, backend):
        self.backend = backend

    def __enter__(self):
        if self.backend in ("torch1", "torch"):
            import torch
            self._old = torch.get_num_threads()
            torch.set_num_threads(1 if self.backend == "torch1" else _torch_default_threads())
        return self

    def __exit__(self, *exc):
        if self.backend in ("torch1", "torch"):
            import torch
            torch.set_num_threads(self._old)


_TORCH_DEFAULT = []


def _torch_default_threads():
    if not _TORCH_DEFAULT:
        import torch
        _TORCH_DEFAULT.append(torch.get_num_threads())
    return _TORCH_DEFAULT[0]


# ---------------------------------------------------------------------------
# BLAS threads for fastrnn

def set_blas_threads(n):
    """Limit the BLAS libraries loaded in this process to ``n`` threads.

    Uses threadpoolctl when it is importable; otherwise calls OpenBLAS's own
    ``*openblas_set_num_threads*`` in every OpenBLAS library the process has
    loaded (NumPy's and SciPy's -- fastrnn's kernels use SciPy's).  Returns a
    description of what was done.
    """
    import scipy.linalg.cython_blas  # noqa: F401  (make sure SciPy's BLAS is loaded)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        global _LIMITER
        _LIMITER = threadpool_limits(limits=n, user_api="blas")
        return f"threadpoolctl: BLAS limited to {n} thread(s)"
    import ctypes
    done = []
    for path in _loaded_libraries():
        if "openblas" not in os.path.basename(path).lower():
            continue
        lib = ctypes.CDLL(path)
        for sym in ("openblas_set_num_threads", "openblas_set_num_threads64_",
                    "scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn(int(n))
                done.append(os.path.basename(path))
                break
    if not done:
        return f"could not set BLAS threads to {n} (no OpenBLAS found; set OPENBLAS_NUM_THREADS)"
    return f"OpenBLAS set to {n} thread(s) in {', '.join(sorted(set(done)))}"


_LIMITER = None


def _loaded_libraries():
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if ".so" in line.split()[-1]})
    except OSError:
        return []


# ---------------------------------------------------------------------------
# Timing

def median_time(fn, repeats=5, min_time=0.05, max_calls=100000):
    """Median seconds per call of ``fn`` over ``repeats`` timed rounds.

    Each round runs enough calls to last about ``min_time`` seconds (at least
    one call); one untimed warm-up call comes first.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    calls = max(1, min(max_calls, int(min_time / max(once, 1e-9))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def gemm_peak(n=2048, repeats=3):
    """FLOP/s NumPy reaches on a float32 (n x n) @ (n x n) product (median)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    t = median_time(lambda: np.matmul(a, b, out=c), repeats=repeats, min_time=0.0)
    return 2.0 * n ** 3 / t


def flops(operation, shape):
    """Nominal floating-point operations of one call (the GEMM-shaped work)."""
    T, B, D, H = SHAPES[shape]
    fwd = 2 * T * B * (D * H + H * H)
    if operation in ("rnn_forward", "predict"):
        return fwd
    bwd = 2 * T * B * (D * H + 2 * H * H)       # dW_x, dW_h, carry (no dx)
    return fwd + bwd


def machine_info():
    """CPU model, core count, library versions (a dict of strings)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "numpy": np.__version__}
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except ImportError:
        pass
    try:
        import torch
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads default)"
    except ImportError:
        info["torch"] = "not installed"
    from . import __version__
    info["fastrnn"] = __version__
    return info


# ---------------------------------------------------------------------------
# Command line

def add_arguments(parser):
    """Add the ``bench`` options to an argparse parser."""
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), metavar="SHAPE",
                        choices=list(SHAPES),
                        help=f"shapes to run (default: all of {', '.join(SHAPES)})")
    parser.add_argument("--operations", nargs="+", default=list(OPERATIONS),
                        choices=list(OPERATIONS), metavar="OP",
                        help="operations to run (default: all)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS),
                        metavar="BACKEND", help="backends to run (default: all available)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="BLAS threads for fastrnn and the reference, and fastrnn's "
                             "large-layer kernel threads (default: BLAS's own, all cores)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed rounds per case; the median is reported (default 5)")
    parser.add_argument("--min-time", type=float, default=0.05,
                        help="seconds per timed round (default 0.05)")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="write a bar chart of the times (needs matplotlib)")
    parser.add_argument("--fit-epochs", type=int, default=1000, metavar="E",
                        help="with S1: also time E tutorial epochs through Sequential.fit "
                             "(default 1000; 0 skips)")
    parser.add_argument("--models", nargs="*", default=None, metavar="MODEL",
                        choices=["a", "b", "c", "d", "e", "f", "g"],
                        help="run the models group instead: whole models through fit vs "
                             "PyTorch, per epoch (no names: all of a..g; see "
                             "fastrnn.benchmark_models)")
    parser.add_argument("--many", action="store_true",
                        help="run the many group instead: fit_many vs a plain loop (and PyTorch)")
    parser.add_argument("--many-models", type=int, default=200, metavar="N")
    parser.add_argument("--many-epochs", type=int, default=50, metavar="E")
    parser.add_argument("--dask", action="store_true",
                        help="with --many: also a LocalCluster of 2 worker processes")
    parser.add_argument("--model-epochs", type=int, default=200, metavar="E",
                        help="epochs per timed models run (default 200)")
    parser.add_argument("--gemm-size", type=int, default=2048, metavar="N",
                        help="size of the float32 matmul that measures the GEMM peak "
                             "(default 2048)")
    return parser


def tutorial_fit_time(epochs=1000, repeats=5):
    """Median seconds of ``epochs`` tutorial epochs through :meth:`Sequential.fit`.

    The tutorial model (SimpleRNN(20) -> Dense(1), Adam, mse, float32) on
    :func:`fastrnn.data.make_sequences` (100 samples, batch 32: 4 steps per
    epoch), ``verbose=0``, shuffled; a fresh model per round.

    Returns
    -------
    float
    """
    from . import Sequential, layers, set_random_seed
    from .data import make_sequences

    X, Y = make_sequences()
    times = []
    for r in range(max(1, repeats)):
        set_random_seed(r)
        model = Sequential([layers.SimpleRNN(20, input_shape=[3, 1]), layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        model.fit(X, Y, epochs=1, verbose=0)         # builds the trainer; warm-up
        t0 = time.perf_counter()
        model.fit(X, Y, epochs=epochs, verbose=0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def model_predict_time(repeats=5, min_time=0.05):
    """Median seconds of ``Sequential.predict`` on one tutorial sequence (B=1)."""
    from . import Sequential, layers, set_random_seed

    set_random_seed(0)
    model = Sequential([layers.SimpleRNN(20, input_shape=[3, 1]), layers.Dense(1)])
    x = np.linspace(0.0, 0.2, 3, dtype=np.float32).reshape(1, 3, 1)
    return median_time(lambda: model.predict(x, verbose=0), repeats, min_time)


def _fmt_time(t):
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _fmt_ratio(a, b):
    return "-" if a is None or b is None else f"{b / a:.1f}x"


def run(shapes, operations, backends, repeats=5, min_time=0.05, log=print):
    """Time every (shape, operation, backend); returns {(shape, op, backend): s or None}."""
    have_torch = torch_available()
    results = {}
    for shape in shapes:
        for op in shape_operations(shape):
            if op not in operations:
                continue
            for backend in backends:
                key = (shape, op, backend)
                if backend.startswith("torch") and not have_torch:
                    results[key] = None
                    continue
                with torch_threads(backend):
                    fn = make_case(backend, op, shape)
                    results[key] = median_time(fn, repeats, min_time)
                log(f"  {shape:8s} {op:13s} {backend:10s} {_fmt_time(results[key])}")
    return results


def table(results, shapes, operations, backends):
    """The results as a text table with ratios vs reference and vs best torch."""
    head = ["shape", "operation"] + list(backends) + ["vs reference", "vs torch"]
    rows = [head]
    for shape in shapes:
        for op in shape_operations(shape):
            if op not in operations:
                continue
            t = {b: results.get((shape, op, b)) for b in backends}
            torch_best = min((v for b, v in t.items() if b.startswith("torch") and v),
                             default=None)
            rows.append([shape, op] + [_fmt_time(t[b]) for b in backends] +
                        [_fmt_ratio(t.get("fastrnn"), t.get("reference")),
                         _fmt_ratio(t.get("fastrnn"), torch_best)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def plot(results, shapes, operations, backends, path):
    """Bar chart of median times (log scale), one group per (shape, operation)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = [(s, o) for s in shapes for o in shape_operations(s) if o in operations]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) * len(backends) / 2), 4.5))
    width = 0.8 / len(backends)
    for i, b in enumerate(backends):
        vals = [results.get((s, o, b)) or 0 for s, o in groups]
        ax.bar([g + i * width for g in range(len(groups))], vals, width, label=b)
    ax.set_yscale("log")
    ax.set_ylabel("median time per call (s)")
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    ax.set_xticklabels([f"{s}\n{o}" for s, o in groups], fontsize=7)
    ax.legend()
    ax.set_title("fastrnn benchmarks (float32)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    """``python -m fastrnn bench``: print the table; see :func:`add_arguments`.

    Parameters
    ----------
    argv : list of str, optional
        The options (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = add_arguments(argparse.ArgumentParser(prog="python -m fastrnn bench"))
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_args(parser.parse_args(argv), argv)


def run_args(args, argv=()):
    """Run the benchmark for parsed options (``python -m fastrnn bench`` calls this).

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`add_arguments`.
    argv : sequence of str
        The options as typed, echoed as the exact command.

    Returns
    -------
    int
        The exit status.
    """
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("--plot needs matplotlib: pip install 'fastrnn[plot]'", file=sys.stderr)
            return 2
    if args.many:
        from . import benchmark_many
        print(f"many group: {' '.join(argv) or '(defaults)'}; {machine_info()}")
        return benchmark_many.run(args.many_models, args.many_epochs, args.repeats, args.dask)
    if args.models is not None:
        from . import benchmark_models
        names = args.models or list(benchmark_models.MODELS)
        info = machine_info()
        print(f"models group: {' '.join(argv) or '(defaults)'}; {info}")
        results = benchmark_models.run_models(names, repeats=args.repeats,
                                              epochs=args.model_epochs,
                                              torch=torch_available())
        benchmark_models.print_table(results)
        return 0
    backends = list(args.backends)
    info = machine_info()
    print("fastrnn bench:", " ".join(["python -m fastrnn bench"] + list(argv)))
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items()))
    print("date:", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    if args.threads is not None:
        from . import set_num_threads
        set_num_threads(args.threads)
        print("threads:", set_blas_threads(args.threads),
              f"; fastrnn's large-layer kernel: {args.threads}")
    from . import _kernels
    info = _kernels._packed_info()
    print(f"large-layer kernel: ISA {info['isa']}, {info['num_threads']} thread(s), "
          f"mode {info['mode']} (the crossover is measured at the first layer of "
          f"{_kernels.PACKED_CALIBRATION_FLOOR}+ units)")
    if not torch_available():
        print("torch not installed: the torch columns are empty")
    print("timing (median of", args.repeats, "rounds) ...")
    results = run(args.shapes, args.operations, backends, args.repeats, args.min_time)
    peak = gemm_peak(args.gemm_size)
    print()
    print(table(results, args.shapes, args.operations, backends))
    print()
    print(f"GEMM peak (NumPy float32 {args.gemm_size}^3 matmul): {peak / 1e9:.1f} GFLOP/s")
    for shape in args.shapes:
        for op in ("rnn_backward", "train_step"):
            t = results.get((shape, op, "fastrnn"))
            if t and shape in ("L", "S5"):
                rate = flops(op, shape) / t
                print(f"  fastrnn {shape} {op}: {rate / 1e9:.1f} GFLOP/s = "
                      f"{100 * rate / peak:.0f}% of the GEMM peak")
    if "S1" in args.shapes and args.fit_epochs > 0:
        t = tutorial_fit_time(args.fit_epochs, args.repeats)
        step = t / (4 * args.fit_epochs)
        torch_best = min((v for b, v in ((b, results.get(("S1", "train_step", b)))
                                         for b in ("torch1", "torch")) if v), default=None)
        vs = f", {torch_best / step:.0f}x PyTorch's S1 train_step" if torch_best else ""
        print(f"tutorial fit: {args.fit_epochs} epochs in {t:.4f} s "
              f"({step * 1e6:.2f} us per training step through Sequential.fit{vs})")
    if "latency" in args.shapes:
        t = model_predict_time(args.repeats, args.min_time)
        print(f"Sequential.predict of one tutorial sequence: {_fmt_time(t)}")
    if args.plot:
        plot(results, args.shapes, args.operations, backends, args.plot)
        print("plot written to", args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
