"""The speed suite's benchmarks (collected by benchmarks/conftest.py): each calls one ratio
script's `measure` (the figures its `python3 benchmarks/X.py` prints) at its default sizes, or
at tiny ones with --quick, and prints its report."""

from __future__ import annotations

import curvature_overhead
import first_snapshot
import runner_speed
import startup
import sweep_grid
import vmap_seeds


def test_runner_speed(measured, quick):
    runner_speed.report(measured(runner_speed.measure, **(
        {"workload_name": "mnist_mlp:width=16", "steps": 4, "eval_every": 2, "repeats": 1} if quick else {})))


def test_vmap_seeds(measured, quick):
    vmap_seeds.report(measured(vmap_seeds.measure, **(
        {"workload_spec": "mnist_mlp:width=16", "n_seeds": 2, "steps": 2, "eval_every": 2,
         "repeats": 1} if quick else {})))


def test_sweep_grid(measured, quick):
    """The grid's cold and warm sweep against their floors (the whole comparison of modes:
    python3 benchmarks/sweep_grid.py)."""
    sweep_grid.report(measured(sweep_grid.measure, quick=quick, full=False,
                               **({"grid": ["mnist_mlp:width=16"], "seeds": 1, "max_steps": 2}
                                  if quick else {})), quick)


def test_curvature_overhead(measured, quick):
    curvature_overhead.report(measured(curvature_overhead.measure, **(
        {"order": 4, "batch": 64, "repeats": 1, "max_steps": 1, "pairs": (("hessian", "scan"),)} if quick else {})))


def test_startup(measured, quick):
    startup.report(measured(startup.measure, **({"workload": "mnist_mlp:width=16", "runs": 1} if quick else {})))


def test_first_snapshot(measured, quick):
    first_snapshot.report(measured(first_snapshot.measure, **(
        {"workloads": ("mnist_mlp:width=16",), "order": 4, "batch": 64, "warm_cache": False}
        if quick else {})), "python3 -m pytest benchmarks/ --benchmark-only -k first_snapshot")
