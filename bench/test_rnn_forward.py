"""Benchmark group `rnn_forward` (see fastrnn.benchmark for what it times)."""
import pytest

from fastrnn import benchmark as fb
from _cases import run_case

SHAPES = [s for s in fb.SHAPES if "rnn_forward" in fb.shape_operations(s)]


@pytest.mark.benchmark(group="rnn_forward")
@pytest.mark.parametrize("backend", fb.BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_forward(benchmark, shape, backend, smoke):
    run_case(benchmark, "rnn_forward", shape, backend, smoke)
