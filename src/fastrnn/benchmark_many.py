"""The ``many`` benchmark group: fastrnn.fit_many against a plain loop and PyTorch.

``python -m fastrnn bench --many [--many-models N] [--many-epochs E] [--repeats R] [--dask]``::

    python -m fastrnn bench --many                                     # 200 models, 50 epochs
    python -m fastrnn bench --many --many-models 1000 --many-epochs 100 --repeats 1 --dask

With PyTorch installed it also trains 20 of the same models one after
another in PyTorch (1 thread, a plain loop as in the models group) and
extrapolates to the full count (said so in the output).

Every model is the tutorial's ``SimpleRNN(20) -> Dense(1)`` (Adam, mse,
batch 32) on the tutorial's 100 sequences, seeded 0, 1, 2, ...  Reported:
the median wall time of each mode (fit_many's batched path, and its thread
pool with one ``fit`` per model), the speed-ups of ``n_jobs=2``, the load average before and after (other processes on the
machine make the figures provisional), and a check that every mode gave
bitwise the same weights.  ``--dask`` adds a ``LocalCluster`` of 2 worker
processes (1 thread each), started before the timing.

Not a test: timings are never asserted.
"""
import argparse
import os
import statistics
import time

import numpy as np

import fastrnn
import fastrnn.data


def build():
    model = fastrnn.Sequential([fastrnn.layers.SimpleRNN(20, input_shape=[3, 1]),
                                fastrnn.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def plain_loop(data, seeds, epochs):
    """The baseline: the same models one after another, in Keras style."""
    weights = []
    for seed in seeds:
        fastrnn.set_random_seed(seed)
        model = build()
        model.fit(*data, epochs=epochs, batch_size=32, verbose=0)
        weights.append(model.get_weights())
    return weights


UNBATCHED = "fit_many n_jobs=2, one fit per model (not batched)"


def unbatched(data, seeds, epochs):
    """fit_many's thread pool with every model through its own ``fit`` (no batched calls)."""
    from . import many
    many._BATCHED = False
    try:
        return [r.weights for r in fastrnn.fit_many(build, data, seeds=seeds, epochs=epochs,
                                                    batch_size=32, n_jobs=2)]
    finally:
        many._BATCHED = True


def load():
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def torch_extrapolated(models, epochs, sample=20):
    """Seconds for ``models`` tutorial models in PyTorch, extrapolated from ``sample`` of them."""
    from . import benchmark_models
    import torch
    torch.set_num_threads(1)
    started = time.perf_counter()
    for _ in range(sample):
        benchmark_models._torch_epoch_seconds("a", epochs, 1)
    return (time.perf_counter() - started) / sample * models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dask", action="store_true", help="also time a 2-worker LocalCluster")
    args = parser.parse_args(argv)
    return run(args.models, args.epochs, args.repeats, args.dask)


def run(models, epochs, repeats, dask=False):
    """Time every mode (round robin over ``repeats``) and print the table."""
    args = argparse.Namespace(models=models, epochs=epochs, repeats=repeats, dask=dask)

    data = fastrnn.data.make_sequences(100, 3)
    seeds = list(range(args.models))
    modes = {
        "plain loop": lambda: plain_loop(data, seeds, args.epochs),
        "fit_many n_jobs=1": lambda: [r.weights for r in fastrnn.fit_many(
            build, data, seeds=seeds, epochs=args.epochs, batch_size=32, n_jobs=1)],
        "fit_many n_jobs=2": lambda: [r.weights for r in fastrnn.fit_many(
            build, data, seeds=seeds, epochs=args.epochs, batch_size=32, n_jobs=2)],
        UNBATCHED: lambda: unbatched(
            data, seeds, args.epochs),
    }
    cluster = client = None
    if args.dask:
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        modes["fit_many on LocalCluster(2 processes x 1 thread)"] = lambda: [
            r.weights for r in fastrnn.fit_many(build, data, seeds=seeds, epochs=args.epochs,
                                                batch_size=32, client=client)]

    print(f"{args.models} tutorial models (SimpleRNN(20) -> Dense(1), 100 samples, batch 32, "
          f"{args.epochs} epochs), median of {args.repeats}; {os.cpu_count()} CPUs")
    print(f"before: {load()}")
    samples = {name: [] for name in modes}
    cpu = {name: [] for name in modes}
    reference = None
    try:
        # Round robin (each repeat runs every mode once), so that a change in
        # the machine's load during the run hits all modes alike.
        for _ in range(args.repeats):
            for name, run in modes.items():
                wall0, cpu0 = time.perf_counter(), time.process_time()
                weights = run()
                samples[name].append(time.perf_counter() - wall0)
                cpu[name].append(time.process_time() - cpu0)
                if reference is None:
                    reference = weights
                same = all(np.array_equal(a, b) for wa, wb in zip(weights, reference)
                           for a, b in zip(wa, wb))
                if not same:
                    raise SystemExit(f"{name}: weights differ from the plain loop's")
    finally:
        if client is not None:
            client.close()
            cluster.close()
    times = {name: statistics.median(v) for name, v in samples.items()}
    for name in modes:
        busy = statistics.median(cpu[name]) / times[name]
        print(f"  {name:<50} {times[name]:7.3f} s   (runs: "
              + ", ".join(f"{s:.3f}" for s in samples[name])
              + f"; this process's CPU time / wall: {busy:.2f})")
    print(f"after:  {load()}")
    print(f"speed-up n_jobs=2 over n_jobs=1: "
          f"{times['fit_many n_jobs=1'] / times['fit_many n_jobs=2']:.2f}x; over the plain loop: "
          f"{times['plain loop'] / times['fit_many n_jobs=2']:.2f}x; batched over one fit per "
          f"model (n_jobs=2): {times[UNBATCHED] / times['fit_many n_jobs=2']:.2f}x; "
          f"all modes bitwise equal")
    try:
        seconds = torch_extrapolated(args.models, args.epochs)
    except ImportError:
        print("PyTorch: not installed")
    else:
        print(f"PyTorch, the same {args.models} models one after another (1 thread; "
              f"extrapolated from 20): {seconds:.1f} s, "
              f"{seconds / times['fit_many n_jobs=2']:.0f}x fit_many's time")
    return 0


if __name__ == "__main__":
    main()
