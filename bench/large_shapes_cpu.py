"""Large shapes on one thread, in CPU seconds (robust to a loaded machine).

    python bench/large_shapes_cpu.py [L S5]        (FASTRNN_ISA=avx2 to force that path)

Per shape and operation (forward, forward+backward): fastrnn on its packed
kernel, fastrnn on its BLAS path (the same build, packed mode "never") and
PyTorch, every library on one thread (this process holds OpenBLAS to one
thread through OPENBLAS_NUM_THREADS, set before NumPy loads it), timed in CPU
seconds of the process (``time.process_time``), the least of 5 interleaved
calls, against the 2048^3 float32 matmul on one thread measured the same way.
CPU time leaves out the time other processes hold the cores, so the ratios
hold on a busy machine where wall-clock figures do not.
"""
import os
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

from fastrnn import _kernels  # noqa: E402
from fastrnn import benchmark as fb  # noqa: E402


def main(shapes):
    import torch
    torch.set_num_threads(1)
    _kernels.set_num_threads(1)
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    c = np.empty_like(a)
    times = []
    for _ in range(3):
        t0 = time.process_time()
        np.matmul(a, a, out=c)
        times.append(time.process_time() - t0)
    peak = 2 * 2048 ** 3 / min(times)
    print(f"ISA {_kernels._packed_info()['isa']}; sgemm 2048^3 on one thread: "
          f"{peak / 1e9:.0f} GFLOP/s (CPU time); load {os.getloadavg()[0]:.1f}")
    cases = {"fastrnn packed": ("fastrnn", "always"), "fastrnn blas": ("fastrnn", "never"),
             "torch": ("torch", None)}
    for shape in shapes:
        for op in ("rnn_backward", "rnn_forward"):
            fns = {k: fb.make_case(backend, op, shape) for k, (backend, _) in cases.items()}
            res = {k: [] for k in cases}
            for _ in range(5):
                for k, (_, mode) in cases.items():
                    if mode:
                        _kernels._set_packed_mode(mode)
                    fns[k]()
                    t0 = time.process_time()
                    fns[k]()
                    res[k].append(time.process_time() - t0)
            work = fb.flops(op, shape)
            torch_t = min(res["torch"])
            for k, v in res.items():
                t = min(v)
                print(f"{shape} {op:12s} {k:15s} {t * 1e3:8.1f} ms CPU  "
                      f"{work / t / 1e9:5.0f} GFLOP/s  {100 * work / t / peak:4.0f}% of "
                      f"1-thread sgemm  {torch_t / t:.2f}x torch")
        print("load", os.getloadavg())


if __name__ == "__main__":
    main(sys.argv[1:] or ["L", "S5"])
