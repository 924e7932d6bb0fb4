"""The speed suite's benchmarks (collected by benchmarks/conftest.py): each calls one ratio
script's `measure` (the figures its `python3 benchmarks/X.py` prints) at its default sizes, or
at its QUICK ones with --quick, and prints its report."""

from __future__ import annotations

import curvature_overhead
import first_snapshot
import runner_speed
import startup
import sweep_grid
import vmap_seeds


def sizes(script, quick: bool) -> dict:
    return script.QUICK if quick else {}


def test_runner_speed(measured, quick):
    runner_speed.report(measured(runner_speed.measure, **sizes(runner_speed, quick)))


def test_vmap_seeds(measured, quick):
    vmap_seeds.report(measured(vmap_seeds.measure, **sizes(vmap_seeds, quick)))


def test_sweep_grid(measured, quick):
    """The grid's cold and warm sweep against their floors (the whole comparison of modes:
    python3 benchmarks/sweep_grid.py)."""
    sweep_grid.report(measured(sweep_grid.measure, quick=quick, full=False,
                               **sizes(sweep_grid, quick)), quick)


def test_curvature_overhead(measured, quick):
    curvature_overhead.report(measured(curvature_overhead.measure, **sizes(curvature_overhead, quick)))


def test_startup(measured, quick):
    startup.report(measured(startup.measure, **sizes(startup, quick)))


def test_first_snapshot(measured, quick):
    first_snapshot.report(measured(first_snapshot.measure, **sizes(first_snapshot, quick)),
                          "python3 -m pytest benchmarks/ --benchmark-only -k first_snapshot")
