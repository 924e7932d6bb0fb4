"""The pytest-benchmark suite (benchmarks/bench_*.py) and the GPU figures script run end to end
at tiny sizes (--quick) and write what a later run is compared with; timings are not judged."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCHMARKS = {"test_runner_speed", "test_vmap_seeds", "test_sweep_grid", "test_curvature_overhead",
              "test_startup", "test_first_snapshot"}


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow  # ~1 min even at --quick: every benchmark's programs compile
def test_benchmark_suite_runs_and_saves_its_ratios(tmp_path):
    saved = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "--benchmark-only",
                           "--quick", f"--benchmark-json={saved}", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    benchmarks = json.loads(saved.read_text())["benchmarks"]
    assert {b["name"] for b in benchmarks} == BENCHMARKS
    for b in benchmarks:
        ratios = b["extra_info"]["ratios"]
        assert ratios, b["name"]
        assert all(finite_positive(v) for v in ratios.values()), (b["name"], ratios)
        assert finite_positive(b["stats"]["mean"])


def test_gpu_figures_quick_writes_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_figures.py", "--quick", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(out.read_text())
    assert set(record) == {"date", "backend", "device_kind", "jax_version", "quick", "load", "wall_s",
                           "figures"}
    assert record["quick"] is True and record["backend"] and record["device_kind"]
    assert set(record["figures"]) == {"runner_speed", "vmap_seeds", "sweep_grid", "curvature_overhead"}
    for script, figures in record["figures"].items():
        assert figures, script
        bad = {name: value for name, value in figures.items() if not finite_positive(value)}
        assert not bad, (script, bad)
    assert "ratios: cold sweep / its floor" in record["figures"]["sweep_grid"]
    assert "hessian/scan: ratio" in record["figures"]["curvature_overhead"]


def test_compile_clock_counts_nested_spans_once():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from compile_clock import union_s

    assert union_s([(0.0, 2.0), (0.5, 1.0), (3.0, 4.0), (3.5, 5.0)]) == 4.0
    assert union_s([]) == 0.0
