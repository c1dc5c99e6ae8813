"""Command line: ``python -m fastrnn demo``."""
import argparse
import sys
import time

import numpy as np


def demo(args):
    from . import reference
    from .data import make_sequences

    X, Y = make_sequences()
    print(f"Tutorial data: X {X.shape}, Y {Y.shape}")
    for i in (0, 1, 80, 99):
        print(f"  X[{i}] = {X[i, :, 0]}  ->  Y[{i}] = {Y[i]:.1f}")
    rng = np.random.default_rng(0)
    units = 20
    kernel = rng.uniform(-0.5, 0.5, (1, units))
    recurrent_kernel = np.linalg.qr(rng.standard_normal((units, units)))[0]
    bias = np.zeros(units)
    start = time.perf_counter()
    h = reference.rnn_forward(X, kernel, recurrent_kernel, bias)
    elapsed = time.perf_counter() - start
    print(f"Reference forward pass, SimpleRNN({units}) on all {len(X)} sequences: "
          f"h {h.shape} in {elapsed * 1e3:.2f} ms")
    print(f"  last state of X[80]: {np.array2string(h[80, -1, :5], precision=3)} ...")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastrnn")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the tutorial end to end")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
