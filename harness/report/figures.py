"""The report's standard sections, in order, from selected runs and their recorded series:
training curves, steps to target, performance profiles (harness/report/training_figures.py),
curvature over steps and spectral densities (harness/report/curvature_figures.py); the
figures share harness/report/plotting.py."""

from __future__ import annotations

from collections.abc import Sequence

from harness import score as scoring
from harness.db import Run
from harness.report.curvature_figures import check_metrics, curvature_figures, density_figures
from harness.report.data import RunSeries
from harness.report.plotting import group_configs
from harness.report.records import Section
from harness.report.training_figures import curve_figures, profile_figures, steps_to_target_figures


def standard_sections(runs: Sequence[Run], series: dict[str, RunSeries],
                      density_steps: Sequence[int] | None = None,
                      metrics: Sequence[str] | None = None) -> list[Section]:
    """The report's standard sections; one whose data is absent says what would fill it.
    `metrics`: the curvature metrics drawn (default: seed 000's set); one no selected run
    stored is a ReportError naming the stored ones."""
    if metrics:
        check_metrics(metrics, series)
    configs = group_configs(runs)
    return [
        Section("Training curves", figures=curve_figures(configs, series),
                text="" if any(series[r.id].evals or series[r.id].losses.size for r in runs)
                else "No selected run has eval rows or training losses."),
        Section("Steps to target", figures=steps_to_target_figures(configs),
                text="" if any(r.status in scoring.FINISHED for r in runs)
                else "No selected run has finished."),
        Section("Performance profiles", figures=profile_figures(runs),
                text="" if any(r.status in scoring.FINISHED for r in runs)
                else "No selected run has finished."),
        Section("Curvature over steps", figures=curvature_figures(configs, series, metrics),
                text="" if any(series[r.id].snapshots for r in runs) else
                "No selected run has curvature snapshots (`curvebench run ... --curvature hessian,ggn,cov` "
                "records them)."),
        Section("Spectral densities", figures=density_figures(configs, series, density_steps),
                text="" if any(series[r.id].snapshots for r in runs) else
                "No selected run has curvature snapshots."),
    ]
