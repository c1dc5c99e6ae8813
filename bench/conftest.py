"""pytest-benchmark configuration for the side-by-side benchmarks.

``python -m pytest bench --benchmark-only --benchmark-group-by=group,param:shape``
measures; ``python -m pytest bench --benchmark-disable -q`` is the quick smoke
run CI does (each case runs once; heavy shapes are skipped for the slow
backends there).
"""
import pytest

from fastrnn import benchmark as fb


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastrnn"] = fb.machine_info()


@pytest.fixture(scope="session")
def smoke(request):
    """True under --benchmark-disable: run every case once, skip the heavy ones."""
    return bool(request.config.getoption("benchmark_disable", default=False))
