"""How much of a tutorial model's training holds the GIL: the ceiling on fit_many's thread scaling.

    python bench/fit_many_gil_share.py [--models 200] [--epochs 100]

Measures CPU time (not wall time, so other processes on the machine barely
matter) per tutorial model (``SimpleRNN(20) -> Dense(1)``, 100 samples, batch
32), in one thread:

- one by one: building and compiling each model, then its ``fit``, and the
  part of that ``fit`` spent in the compiled, GIL-free epoch call;
- ``fit_many(n_jobs=1)``, which builds the models of a chunk and runs all of
  their epochs in one GIL-free call (``fastrnn._engine.run_epochs_many``),
  timed from inside.

Everything else holds the GIL.  The GIL-held parts of all threads take
turns while the GIL-free parts run beside anything, so with a GIL-held share
``g`` a pool of ``n`` threads is at most ``min(n, 1 / g)`` times faster than
one; Amdahl's ``1 / (g + (1 - g) / n)``, printed too, is what it would be if
no GIL-held part ever overlapped another thread's GIL-free part.  Hand-offs
of the GIL (up to ``sys.getswitchinterval()``, 5 ms, when a thread leaving a
compiled call finds another running Python) cost some of that in practice.  The one-by-one figures call the model's engine directly
(``model._trainer()`` and its ``run_epoch``, the GIL-free call ``fit`` makes).
"""
import argparse
import time

import numpy as np

import fastrnn
import fastrnn.data
from fastrnn import _engine


def build():
    model = fastrnn.Sequential([fastrnn.layers.SimpleRNN(20, input_shape=[3, 1]),
                                fastrnn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def compiled_epoch(model, x, y):
    """A function running one GIL-free compiled epoch of ``model`` on (x, y)."""
    engine = model._trainer()
    engine.bind_data(np.ascontiguousarray(x, np.float32),
                     np.ascontiguousarray(y.reshape(-1, 1), np.float32))
    order, losses = np.arange(len(x), dtype=np.int64), np.empty(-(-len(x) // 32))
    rates = np.full(len(losses), 0.001)
    return lambda: engine.run_epoch(order, 32, rates, losses)


def ceiling(held):
    """What a GIL-held share allows 2 threads, at best and under Amdahl's law."""
    return (f"GIL-held share {held:.2f}: 2 threads <= {min(2.0, 1 / held):.2f}x one "
            f"({1 / (held + (1 - held) / 2):.2f}x if no GIL-held part overlapped)")


def one_by_one(x, y, models, epochs):
    c0 = time.process_time()
    built = [build() for _ in range(models)]
    c1 = time.process_time()
    for model in built:
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    c2 = time.process_time()
    epoch = compiled_epoch(built[0], x, y)
    c3 = time.process_time()
    for _ in range(models * epochs):
        epoch()
    c4 = time.process_time()
    build_ms, fit_ms, free_ms = ((c1 - c0) * 1e3 / models, (c2 - c1) * 1e3 / models,
                                 (c4 - c3) * 1e3 / models)
    print(f"  one by one: build+compile {build_ms:.2f} ms, fit {fit_ms:.2f} ms (GIL-free "
          f"compiled epochs {free_ms:.2f} ms): "
          f"{ceiling(1 - free_ms / (build_ms + fit_ms))}")


#: the engine calls fit_many makes with the GIL released (timed from inside)
GIL_FREE = ("run_epochs_many", "shuffled_orders")


def batched(x, y, models, epochs):
    inside = [0.0]
    originals = {name: getattr(_engine, name) for name in GIL_FREE}

    def timed(function):
        def call(*args):
            c = time.process_time()
            try:
                return function(*args)
            finally:
                inside[0] += time.process_time() - c
        return call

    for name, function in originals.items():
        setattr(_engine, name, timed(function))
    try:
        c0 = time.process_time()
        fastrnn.fit_many(build, (x, y), seeds=list(range(models)), epochs=epochs,
                         batch_size=32, n_jobs=1)
        total = time.process_time() - c0
    finally:
        for name, function in originals.items():
            setattr(_engine, name, function)
    total_ms, free_ms = total * 1e3 / models, inside[0] * 1e3 / models
    print(f"  fit_many (batched): {total_ms:.2f} ms per model, of which GIL-free compiled "
          f"calls (epochs, shuffles) {free_ms:.2f} ms: {ceiling(1 - free_ms / total_ms)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    x, y = fastrnn.data.make_sequences(100, 3)
    print(f"CPU time per tutorial model ({args.epochs} epochs), {args.models} models, "
          f"{args.rounds} rounds:")
    for _ in range(args.rounds):
        one_by_one(x, y, args.models, args.epochs)
        batched(x, y, args.models, args.epochs)


if __name__ == "__main__":
    main()
