"""The benchmark scripts still run end to end (tiny sizes; their timings are not judged here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_script(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_runner_speed_prints_all_ratios():
    out = run_script("runner_speed.py", "--steps", "20", "--eval-every", "10", "--repeats", "1")
    for label in ("runner (train chunks)", "bare lax.scan", "per-step dispatch", "x bare scan"):
        assert label in out


def test_algoperf_adapter_prints_every_pair():
    out = run_script("algoperf_adapter.py", "--steps", "5", "--repeats", "1")
    for label in ("adamw native, chunk", "adamw AlgoPerf (jit), chunk", "adamw AlgoPerf, concrete step",
                  "adam AlgoPerf (pmap), chunk", "x native"):
        assert label in out


@pytest.mark.slow
@pytest.mark.parametrize("name,args,expect", [
    ("curvature_overhead.py", ("--repeats", "1"), "snapshot / (m x product)"),
    ("ogbg_pipeline.py", ("--batch-size", "32", "--steps", "2", "--repeats", "1"), "pipeline/step"),
    ("cifar_speed.py", ("--workloads", "cifar_simplecnn", "--steps", "1", "--batch-size", "8",
                        "--modes", "runner:auto,bare-step"), "bare-step"),
])
def test_slow_benchmarks_run(name, args, expect):
    assert expect in run_script(name, *args)
