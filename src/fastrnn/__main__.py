"""Command line: ``python -m fastrnn demo [--epochs N] [--plot FILE.png]`` and
``python -m fastrnn bench [--shapes ...] [--threads N] [--plot FILE.png]``.

Each subcommand is a function ``f(args) -> exit code`` registered in
:func:`build_parser` with ``set_defaults(func=f)``; :func:`main` dispatches.
"""
import argparse
import sys
import time

import numpy as np

from . import benchmark


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _require_matplotlib():
    """pyplot, or None after printing how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib, which is not installed; install it with "
              "pip install 'fastrnn[plot]' (or pip install matplotlib)", file=sys.stderr)
        return None
    return plt


def demo(args):
    """The tutorial end to end: data, model summary, training, predictions, timing."""
    import fastrnn as keras
    from fastrnn.callbacks import Callback
    from fastrnn.data import make_sequences

    plt = None
    if args.plot:
        plt = _require_matplotlib()
        if plt is None:
            return 1

    X, Y = make_sequences()
    print(f"Tutorial data: X {X.shape}, Y {Y.shape}  (X[i] = [i, i+1, i+2]/10, Y[i] = (i+3)/10)")
    for i in (0, 1, 80, 99):
        print(f"  X[{i}] = {X[i, :, 0]}  ->  Y[{i}] = {Y[i]:.1f}")
    print()

    keras.clear_session()
    keras.set_random_seed(args.seed)
    model = keras.Sequential([
        keras.layers.SimpleRNN(units=20, input_shape=[3, 1], return_sequences=False),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.summary()
    print()

    class EpochBar(Callback):
        """One progress bar over all epochs, showing the latest epoch loss."""

        def on_train_begin(self, logs=None):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=args.epochs, desc="Training", unit="epoch", file=sys.stdout,
                            dynamic_ncols=True, mininterval=0.1)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix(loss=f"{logs['loss']:.5f}", refresh=False)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    start = time.perf_counter()
    history = model.fit(X, Y, epochs=args.epochs, batch_size=32, verbose=0,
                        callbacks=[EpochBar()])
    elapsed = time.perf_counter() - start
    losses = history.history["loss"]
    print(f"\nTrained {args.epochs} epochs in {elapsed:.2f} s "
          f"({elapsed / args.epochs * 1e3:.2f} ms/epoch)")
    print(f"Final training loss (MSE, last epoch): {losses[-1]:.6f}")
    print(f"MSE over all {len(X)} sequences after training: "
          f"{model.evaluate(X, Y, verbose=0):.6f}")

    print("\nPredictions:")
    picks = (0, 25, 80, 99)
    predictions = model.predict(X[list(picks)], verbose=0)[:, 0]
    for i, p in zip(picks, predictions):
        inputs = ", ".join(f"{v:.1f}" for v in X[i, :, 0])
        print(f"  [{inputs}] -> {p:.4f}   (target {Y[i]:.1f}, error {p - Y[i]:+.4f})")

    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(losses) + 1), losses)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (MSE)")
        ax.set_title("fastrnn: SimpleRNN(20) + Dense(1) on the tutorial data")
        fig.tight_layout()
        fig.savefig(args.plot)
        plt.close(fig)
        print(f"\nLoss curve written to {args.plot}")
    return 0


def build_parser():
    """The argument parser; add a subcommand with ``sub.add_parser(...).set_defaults(func=...)``."""
    parser = argparse.ArgumentParser(prog="python -m fastrnn")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the tutorial end to end")
    p.add_argument("--epochs", type=_positive_int, default=1000,
                   help="training epochs (default 1000)")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="write the loss curve to this image (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=demo)
    p = sub.add_parser("bench", help="time fastrnn against the NumPy reference and PyTorch",
                       description="Median times and ratios per shape and operation; "
                                   "see bench/RESULTS.md.")
    benchmark.add_arguments(p)
    p.set_defaults(func=bench)
    return parser


def bench(args):
    """``python -m fastrnn bench``: see :mod:`fastrnn.benchmark`."""
    return benchmark.run_args(args, sys.argv[2:] if args.argv is None else args.argv)


def main(argv=None):
    """Entry point of ``python -m fastrnn`` and the ``fastrnn`` script."""
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
