"""Benchmark group `rnn_backward` (see fastrnn.benchmark for what it times)."""
import pytest

from fastrnn import benchmark as fb
from _cases import run_case

SHAPES = [s for s in fb.SHAPES if "rnn_backward" in fb.shape_operations(s)]


@pytest.mark.benchmark(group="rnn_backward")
@pytest.mark.parametrize("backend", fb.BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_backward(benchmark, shape, backend, smoke):
    run_case(benchmark, "rnn_backward", shape, backend, smoke)
