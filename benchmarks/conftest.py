"""The speed suite as pytest-benchmark tests (benchmarks/bench_*.py), apart from the tests:

    python3 -m pytest benchmarks/ --benchmark-only --benchmark-autosave
    python3 -m pytest benchmarks/ --benchmark-only --benchmark-compare   # against the last save

Each test measures once (one pytest-benchmark round: the ratios come from side-by-side
repeats inside it) and records its figures in `extra_info` ("ratios": the side-by-side
ratios), so they are in the saved JSON. `--quick`: tiny sizes, to check that every benchmark
still runs (tests/test_benchmark_suite.py); its figures mean nothing.
"""

from __future__ import annotations

import json

import pytest


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true",
                     help="tiny sizes: every benchmark runs, its figures mean nothing")


def pytest_collect_file(file_path, parent):
    """bench_*.py are this folder's test modules (test_*.py stays the tests' pattern)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture
def quick(request) -> bool:
    return request.config.getoption("--quick")


@pytest.fixture
def measured(benchmark):
    """measured(fn, **kwargs): fn(**kwargs) once under pytest-benchmark's clock; its figures
    (a dict with "ratios") go to extra_info and are returned."""

    def run(fn, **kwargs):
        figures = benchmark.pedantic(fn, kwargs=kwargs, rounds=1, iterations=1, warmup_rounds=0)
        # only what JSON holds: the saved run must load again for --benchmark-compare
        benchmark.extra_info.update(json.loads(json.dumps(figures, default=str)))
        return figures

    return run
