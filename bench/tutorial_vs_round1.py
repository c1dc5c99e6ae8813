"""The tutorial model on this build against round 1's fused trainer (issue 9's last condition).

Works with either build on the path (round 1: commit c272b5a, installed in its own
virtual environment), so the same file drives both.

Instruction counts (callgrind; the difference of two runs removes start-up)::

    valgrind --tool=callgrind python bench/tutorial_vs_round1.py count fitn 301   # minus ... 1
    valgrind --tool=callgrind python bench/tutorial_vs_round1.py count step 2000  # minus ... 0

modes: ``fit`` (fit(N epochs) as it is; under valgrind its several-epoch calls are
shorter, so it makes more of them than at native speed), ``fitn`` (fit with the
chunking of native speed: one compiled call for the epochs after the first),
``epoch`` (the compiled epoch called from Python on bound data), ``step`` (the
compiled training step called from Python), ``tb`` (the model's per-batch training
call, fit's per-batch path).

Wall clock, interleaved, each run its own process, 1 s pauses::

    python bench/tutorial_vs_round1.py wall NEW_PYTHON OLD_PYTHON --repeats 9 --epochs 300

(set PYTHONPATH for the new build's interpreter beforehand if it runs from a source tree).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def _model():
    import fastrnn as keras
    from fastrnn.data import make_sequences
    X, Y = make_sequences()
    m = keras.Sequential([keras.layers.SimpleRNN(20, input_shape=[3, 1]),
                          keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.fit(X, Y, epochs=1, verbose=0, batch_size=32)
    return m, X, Y


def _step_call(m, X, Y):
    """The compiled training step on the first batch, as a no-argument callable."""
    xb = np.ascontiguousarray(X[:32], m.params.dtype)
    yb = np.ascontiguousarray(np.reshape(Y[:32], (32, 1)), m.params.dtype)
    if hasattr(m, "_fused_trainer"):                      # round 1
        step = m._fused_trainer(32, 3)._core.step
        return lambda: step(xb, yb)
    engine = m._trainer()
    step = engine.train_step
    xl, yl = [xb], [yb]
    return lambda: step(xl, yl, 1e-3)


def count(mode, n):
    m, X, Y = _model()
    old = hasattr(m, "_fused_trainer")
    if mode == "fit":
        m.fit(X, Y, epochs=n, verbose=0, batch_size=32)
    elif mode == "fitn":
        type(m)._CALL_SECONDS = 1e9         # round 1 has no several-epoch calls: no effect
        m.fit(X, Y, epochs=n, verbose=0, batch_size=32)
    elif mode == "epoch":
        order = np.arange(100, dtype=np.int64)
        losses = np.empty(4)
        if old:
            tr = m._fused_trainer(32, 3)
            tr.bind_data(X.astype(m.params.dtype), np.reshape(Y, (100, 1)).astype(m.params.dtype))
            for _ in range(n):
                tr._core.run_epoch(order, 32, losses)
        else:
            xa, ya, wa = m._prepare(X, Y, None, None)
            engine = m._trainer()
            engine.bind_data(xa, ya, wa)
            rates = np.full(4, 1e-3)
            for _ in range(n):
                engine.run_epoch(order, 32, rates, losses)
    elif mode == "step":
        call = _step_call(m, X, Y)
        for _ in range(n):
            call()
    elif mode == "tb":
        xb = np.ascontiguousarray(X[:32], m.params.dtype)
        yb = np.ascontiguousarray(np.reshape(Y[:32], (32, 1)), m.params.dtype)
        if old:
            m._fit_trainer = m._fused_trainer(32, 3)
        for _ in range(n):
            m._train_batch(xb, yb)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def child(epochs):
    """One process's figures: fit seconds per epoch, seconds per compiled step."""
    m, X, Y = _model()
    m.fit(X, Y, batch_size=32, epochs=max(2, epochs // 10), verbose=0)      # warm-up
    started = time.perf_counter()
    m.fit(X, Y, batch_size=32, epochs=epochs, verbose=0)
    fit_epoch = (time.perf_counter() - started) / epochs
    call = _step_call(m, X, Y)
    for _ in range(200):
        call()
    n = 3000
    started = time.perf_counter()
    for _ in range(n):
        call()
    print(json.dumps({"fit_epoch": fit_epoch, "step": (time.perf_counter() - started) / n}))


def wall(new_python, old_python, repeats, epochs):
    runs = {"new": [], "old": []}
    loads = []
    env_old = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for r in range(repeats):
        for name in (("new", "old") if r % 2 == 0 else ("old", "new")):
            python, env = (new_python, os.environ) if name == "new" else (old_python, env_old)
            out = subprocess.run([python, os.path.abspath(__file__), "child", str(epochs)],
                                 env={**env, "PYTHONHASHSEED": "0"}, capture_output=True,
                                 text=True, check=True, cwd=os.path.dirname(os.path.abspath(__file__)))
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            loads.append(os.getloadavg()[0])
            time.sleep(1.0)
    for name, values in runs.items():
        fit = sorted(v["fit_epoch"] * 1e6 for v in values)
        step = sorted(v["step"] * 1e6 for v in values)
        print(f"{name}: fit {statistics.median(fit):.1f} us/epoch ({fit[0]:.1f}-{fit[-1]:.1f}); "
              f"compiled step {statistics.median(step):.2f} us ({step[0]:.2f}-{step[-1]:.2f})")
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("count")
    p.add_argument("mode")
    p.add_argument("n", type=int)
    p = sub.add_parser("child")
    p.add_argument("epochs", type=int)
    p = sub.add_parser("wall")
    p.add_argument("new_python")
    p.add_argument("old_python")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args(argv)
    if args.what == "count":
        count(args.mode, args.n)
    elif args.what == "child":
        child(args.epochs)
    else:
        wall(args.new_python, args.old_python, args.repeats, args.epochs)


if __name__ == "__main__":
    main(sys.argv[1:])
