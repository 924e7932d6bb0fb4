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


@pytest.mark.slow  # ~17 s: four programs compiled
def test_vmap_seeds_prints_every_path_against_one_seed():
    out = run_script("vmap_seeds.py", "--seeds", "2", "--steps", "3", "--eval-every", "3",
                     "--repeats", "1", "--workload", "mnist_mlp:width=16")
    for label in ("1 seed alone", "2 seeds vmapped", "2 seeds mapped in one program",
                  "2 seeds sequential, shared compile", "x alone"):
        assert label in out


@pytest.mark.slow  # ~25 s: five optimizer pairs compiled
def test_algoperf_adapter_prints_every_pair():
    out = run_script("algoperf_adapter.py", "--steps", "5", "--repeats", "1")
    for label in ("adamw native, chunk", "adamw AlgoPerf (jit), chunk", "adamw AlgoPerf, concrete step",
                  "adam AlgoPerf (pmap), chunk", "x native"):
        assert label in out


@pytest.mark.slow
@pytest.mark.parametrize("name,args,expect", [
    ("curvature_overhead.py", ("--repeats", "1"), "snapshot / (m x product)"),
    ("ogbg_pipeline.py", ("--batch-size", "32", "--steps", "2", "--repeats", "1"), "pipeline/step"),
    ("report_build.py", ("--runs", "4", "--small", "2", "--steps", "10"), "ratio 4/2 runs"),
    ("cifar_speed.py", ("--workloads", "cifar_simplecnn", "--steps", "1", "--batch-size", "8",
                        "--modes", "runner:auto,bare-step"), "bare-step"),
    ("sweep_grid.py", ("--quick",), "goal: sweep / one variant's seeds"),
    ("sweep_grid.py", ("--quick", "--breakdown"), "warm, per segment program"),
])
def test_slow_benchmarks_run(name, args, expect):
    assert expect in run_script(name, *args)


@pytest.mark.slow
def test_ray_overhead_runs():
    pytest.importorskip("ray", reason="Ray is an extra: pip install -e '.[ray]'")
    out = run_script("ray_overhead.py", "--groups", "2", "--trials", "1", "--steps", "10",
                     "--empty-tasks", "5")
    for label in ("local executor", "ray, 2 worker nodes (warm)", "empty task round trip"):
        assert label in out
