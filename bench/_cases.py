"""Shared driver of the benchmark tests (the cases live in fastrnn.benchmark)."""
import pytest

from fastrnn import benchmark as fb

HEAVY = ("L", "S5")


def run_case(benchmark, operation, shape, backend, smoke):
    if backend.startswith("torch") and not fb.torch_available():
        pytest.skip("torch not installed")
    if backend == "reference" and shape == "S5":
        pytest.skip("reference at S5 takes seconds per call (python -m fastrnn bench times it)")
    if smoke and shape in HEAVY and (backend != "fastrnn" or shape == "S5"):
        pytest.skip(f"{shape} is skipped for {backend} in the --benchmark-disable smoke run")
    with fb.torch_threads(backend):
        fn = fb.make_case(backend, operation, shape)
        if shape in HEAVY:
            benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
        else:
            benchmark(fn)
