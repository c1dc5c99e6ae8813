"""Benchmark group `predict` (see fastrnn.benchmark for what it times)."""
import pytest

from fastrnn import benchmark as fb
from _cases import run_case

SHAPES = [s for s in fb.SHAPES if "predict" in fb.shape_operations(s)]


@pytest.mark.benchmark(group="predict")
@pytest.mark.parametrize("backend", fb.BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_predict(benchmark, shape, backend, smoke):
    run_case(benchmark, "predict", shape, backend, smoke)
