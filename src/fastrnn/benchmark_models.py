"""The ``models`` benchmark group: whole models trained through ``fit``, fastrnn vs PyTorch.

``python -m fastrnn bench --models [a b ...] [--repeats N]`` times, per epoch,
each model below trained on tutorial-scale data (100 samples, batch 32), in
fastrnn through ``Sequential.fit`` and in PyTorch with the same layers, loss
and optimizer (a plain loop: zero_grad, forward, loss, backward, step over a
shuffled batch order), at 1 thread and at PyTorch's default thread count.

Measured fairly: every (library, model, threads) run is its own process; the
runs are interleaved (fastrnn, torch 1 thread, torch default, then again) with
a pause between them (idle OpenBLAS/OpenMP workers spin for ~0.1 s and would
steal the next process's core); medians over the repeats; the ratio uses the
better of PyTorch's two thread settings.

Models (T = 3, D = 1 unless said):

(a) the tutorial, SimpleRNN(20) -> Dense(1), Adam, mse
(b) (a) with SGD          (c) (a) with RMSprop
(d) three stacked SimpleRNN(20) -> Dense(1)
(e) SimpleRNN(20) -> Dense(8, relu) -> Dense(1)
(f) SimpleRNN(20, return_sequences=True) -> Dense(1) per step, T = 20
(g) SimpleRNN(64) -> Dense(10, softmax), T = 20, mse on one-hot targets

For (f) and (g), where arithmetic starts to matter, the report adds each
one's GFLOP/s (a training step's FLOPs / its time) beside the 1-thread sgemm
rate measured at the step's shape ((B x H) @ (H x H)).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

__all__ = ["MODELS", "run_models", "step_flops"]

N_SAMPLES, BATCH = 100, 32

#: name -> (description, T, D, layers, optimizer, output units, per-step output)
#: layers: ("rnn", units, return_sequences) | ("dense", units, activation)
MODELS = {
    "a": ("tutorial, Adam", 3, 1, [("rnn", 20, False), ("dense", 1, None)], "adam", 1, False),
    "b": ("tutorial, SGD", 3, 1, [("rnn", 20, False), ("dense", 1, None)], "sgd", 1, False),
    "c": ("tutorial, RMSprop", 3, 1, [("rnn", 20, False), ("dense", 1, None)], "rmsprop", 1,
          False),
    "d": ("3 stacked SimpleRNN(20)", 3, 1,
          [("rnn", 20, True), ("rnn", 20, True), ("rnn", 20, False), ("dense", 1, None)],
          "adam", 1, False),
    "e": ("SimpleRNN -> Dense(8, relu) -> Dense(1)", 3, 1,
          [("rnn", 20, False), ("dense", 8, "relu"), ("dense", 1, None)], "adam", 1, False),
    "f": ("many-to-many, T=20", 20, 1, [("rnn", 20, True), ("dense", 1, None)], "adam", 1, True),
    "g": ("SimpleRNN(64) -> Dense(10, softmax), T=20", 20, 1,
          [("rnn", 64, False), ("dense", 10, "softmax")], "adam", 10, False),
}


def _data(name):
    _, T, D, _, _, U, seq = MODELS[name]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (N_SAMPLES, T, D)).astype(np.float32)
    if U == 10:                                    # one-hot classes
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, N_SAMPLES)]
    else:
        y = rng.uniform(-1, 1, (N_SAMPLES, T, U) if seq else (N_SAMPLES, U)).astype(np.float32)
    return x, y


def step_flops(name, batch=BATCH):
    """FLOPs of one training step (forward ~1/3, backward ~2/3), counting multiply-adds as 2."""
    _, T, D, layers, _, _, _ = MODELS[name]
    fwd, din, seq = 0, D, True
    for kind, units, extra in layers:
        rows = batch * T if seq else batch
        if kind == "rnn":
            fwd += 2 * batch * T * (din * units + units * units)
            seq = extra
        else:
            fwd += 2 * rows * din * units
        din = units
    return 3 * fwd


# ---------------------------------------------------------------------------
# one run, in its own process

def _fastrnn_epoch_seconds(name, epochs):
    import fastrnn as keras
    _, T, D, layers, opt, _, _ = MODELS[name]
    x, y = _data(name)
    keras.set_random_seed(0)
    stack = [keras.Input((T, D))]
    for kind, units, extra in layers:
        if kind == "rnn":
            stack.append(keras.layers.SimpleRNN(units, return_sequences=extra))
        else:
            stack.append(keras.layers.Dense(units, activation=extra))
    model = keras.Sequential(stack)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, batch_size=BATCH, epochs=max(2, epochs // 10), verbose=0)   # warm-up
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
    return (time.perf_counter() - started) / epochs


def _torch_epoch_seconds(name, epochs, threads):
    import torch
    if threads:
        torch.set_num_threads(threads)
    _, T, D, layers, opt, _, seq_out = MODELS[name]
    x_np, y_np = _data(name)
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            mods, din = [], D
            for kind, units, extra in layers:
                if kind == "rnn":
                    mods.append(torch.nn.RNN(din, units, batch_first=True))
                else:
                    mods.append(torch.nn.Linear(din, units))
                din = units
            self.mods = torch.nn.ModuleList(mods)

        def forward(self, h):
            for (kind, _, extra), mod in zip(layers, self.mods):
                if kind == "rnn":
                    h, _ = mod(h)
                    if not extra:
                        h = h[:, -1]
                else:
                    h = mod(h)
                    if extra == "relu":
                        h = torch.relu(h)
                    elif extra == "softmax":
                        h = torch.softmax(h, dim=-1)
            return h

    net = Net()
    optimizer = {"adam": lambda p: torch.optim.Adam(p, lr=0.001, eps=1e-7),
                 "sgd": lambda p: torch.optim.SGD(p, lr=0.01),
                 "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.001, alpha=0.9, eps=1e-7)}[opt](
        net.parameters())
    loss_fn = torch.nn.MSELoss()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def epoch():
        for idx in torch.randperm(N_SAMPLES).split(BATCH):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            optimizer.step()

    for _ in range(max(2, epochs // 10)):
        epoch()
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - started) / epochs


def _sgemm_gflops(name):
    """1-thread sgemm GFLOP/s at the step shape (B x H) @ (H x H) of the model's first layer."""
    from scipy.linalg.blas import sgemm
    from threadpoolctl import threadpool_limits
    H = MODELS[name][3][0][1]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((BATCH, H)).astype(np.float32)
    b = rng.standard_normal((H, H)).astype(np.float32)
    with threadpool_limits(1, "blas"):
        for _ in range(100):
            sgemm(1.0, a, b)
        n = 20000
        started = time.perf_counter()
        for _ in range(n):
            sgemm(1.0, a, b)
        seconds = (time.perf_counter() - started) / n
    return 2 * BATCH * H * H / seconds / 1e9


def _child(argv):
    lib, name, threads, epochs = argv[0], argv[1], int(argv[2]), int(argv[3])
    if lib == "fastrnn":
        seconds = _fastrnn_epoch_seconds(name, epochs)
    elif lib == "torch":
        seconds = _torch_epoch_seconds(name, epochs, threads)
    else:
        seconds = _sgemm_gflops(name)
    print(json.dumps({"value": seconds}))


def _in_process(lib, name, threads, epochs):
    out = subprocess.run([sys.executable, "-m", "fastrnn.benchmark_models", lib, name,
                          str(threads), str(epochs)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return json.loads(out.stdout.strip().splitlines()[-1])["value"]


def run_models(names, repeats=5, epochs=200, pause=1.0, torch=True):
    """Median seconds per epoch of each model: fastrnn, torch at 1 thread, torch default.

    Returns
    -------
    dict
        name -> {"fastrnn": s, "torch1": s or None, "torch": s or None, "ratio": x or None,
        and for (f)/(g) "gflops" and "sgemm_gflops"}
    """
    results = {}
    for name in names:
        times = {"fastrnn": [], "torch1": [], "torch": []}
        for _ in range(repeats):          # interleaved, each run its own process
            times["fastrnn"].append(_in_process("fastrnn", name, 0, epochs))
            time.sleep(pause)
            if torch:
                times["torch1"].append(_in_process("torch", name, 1, epochs))
                time.sleep(pause)
                times["torch"].append(_in_process("torch", name, 0, epochs))
                time.sleep(pause)
        med = {k: statistics.median(v) if v else None for k, v in times.items()}
        best_torch = min(t for t in (med["torch1"], med["torch"]) if t is not None) if torch \
            else None
        med["ratio"] = best_torch / med["fastrnn"] if best_torch else None
        if name in ("f", "g"):
            steps = -(-N_SAMPLES // BATCH)
            med["gflops"] = step_flops(name) * steps / med["fastrnn"] / 1e9
            med["sgemm_gflops"] = _in_process("sgemm", name, 1, 0)
        results[name] = med
    return results


def print_table(results):
    print(f"{'model':<46} {'fastrnn':>10} {'torch 1t':>10} {'torch':>10} {'ratio':>7}")
    for name, r in results.items():
        def us(v):
            return f"{v * 1e6:8.0f}us" if v is not None else "       n/a"
        ratio = f"{r['ratio']:6.1f}x" if r["ratio"] else "    n/a"
        print(f"({name}) {MODELS[name][0]:<42} {us(r['fastrnn'])} {us(r['torch1'])} "
              f"{us(r['torch'])} {ratio}")
        if "gflops" in r:
            print(f"     {r['gflops']:.2f} GFLOP/s in training; 1-thread sgemm at the step "
                  f"shape: {r['sgemm_gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    _child(sys.argv[1:])
