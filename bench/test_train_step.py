"""Benchmark group `train_step` (see fastrnn.benchmark for what it times)."""
import pytest

from fastrnn import benchmark as fb
from _cases import run_case

SHAPES = [s for s in fb.SHAPES if "train_step" in fb.shape_operations(s)]


@pytest.mark.benchmark(group="train_step")
@pytest.mark.parametrize("backend", fb.BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_train_step(benchmark, shape, backend, smoke):
    run_case(benchmark, "train_step", shape, backend, smoke)
