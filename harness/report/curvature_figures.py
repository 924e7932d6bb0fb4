"""Figures of curvature: every curvature metric over steps per variant and kind (2/η drawn on
the Hessian's λ_max), and the SLQ spectral density at chosen steps, log scale."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.db import Run
from harness.report.data import RunSeries
from harness.report.plotting import (COLORS, Config, band, decimation_note, draw_band,
                                     log_if_positive, new_plot, origins)
from harness.report.records import Figure, Provenance, mark_data

#: SLQ densities at this many snapshot steps when none are chosen
DENSITY_STEPS = 5
#: densities are drawn down to this fraction of the highest peak in their panel (log scale)
DENSITY_FLOOR = 1e-7
#: configurations drawn in one density figure, at most
DENSITY_PANELS = 6


def _kinds(configs: Sequence[Config], series: dict[str, RunSeries]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c.variant, s.kind) for c in configs for r in c.runs
                              for s in series[r.id].snapshots))


def curvature_figures(configs: Sequence[Config], series: dict[str, RunSeries]) -> list[Figure]:
    """Per variant and snapshot kind: every stored metric over steps, 2/η on the Hessian's λ_max."""
    figures = []
    for variant, kind in _kinds(configs, series):
        group = [c for c in configs if c.variant == variant]
        per_config = [(c, [[s for s in series[r.id].snapshots if s.kind == kind] for r in c.runs])
                      for c in group]
        per_config = [(c, snaps) for c, snaps in per_config if any(snaps)]
        stored = sorted({n for _, runs in per_config for snaps in runs for s in snaps for n in s.metrics})
        names = [n for n in stored if any(s.metrics.get(n) is not None
                                          for _, runs in per_config for snaps in runs for s in snaps)]
        if not names:
            continue
        no_values = sorted(set(stored) - set(names))
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = new_plot(rows, cols, width=3.6, height=2.6, top=0.9)
        for ax in axes.ravel()[len(names):]:
            ax.set_visible(False)
        edges: list[str] = []
        adaptive: list[str] = []
        decimated = False
        for ax, name in zip(axes.ravel(), names):
            for i, (config, runs) in enumerate(per_config):
                color = COLORS[i % len(COLORS)]
                curves = []
                for snaps in runs:
                    pts = [(s.step, s.metrics.get(name)) for s in snaps]
                    xs = np.array([p for p, v in pts if v is not None], float)
                    ys = np.array([v for p, v in pts if v is not None], float)
                    if xs.size:
                        curves.append((xs, ys))
                if curves:
                    grid = np.unique(np.concatenate([x for x, _ in curves]))
                    decimated |= draw_band(ax, curves, grid, color, config.label)
                    mid = band(curves, grid)[0]
                    if grid.size == 1 or np.isfinite(mid).sum() == 1:
                        mark_data(ax.plot(grid, mid, "o", color=color, ms=3))
                eta = config.hparams.get("learning_rate")
                if name == "max_eig" and kind == "hessian" and isinstance(eta, (int, float)) and eta > 0:
                    if "beta2" in config.hparams:
                        adaptive.append(config.label)
                    else:
                        ax.axhline(2.0 / eta, color=color, ls="--", lw=1, label=f"2/η, η={eta:g}")
                        edges.append(f"{config.label}: 2/η = {2.0 / eta:.4g}")
            ax.set_title(name, fontsize=9)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if name == "max_eig":
                log_if_positive(ax, [line.get_ydata() for line in ax.get_lines()], spread=20.0)
                ax.legend(fontsize=6)
        for ax in axes[-1]:
            ax.set_xlabel("step", fontsize=8)
        runs = [r for c, snaps in per_config for r, s in zip(c.runs, snaps) if s]
        labels = ", ".join(f"{c.label}" for c, _ in per_config)
        edge_note = (" Dashed on max_eig: the stability edge 2/η of gradient descent at the "
                     "learning-rate hparam η (" + "; ".join(edges) + "; heavy-ball momentum β moves "
                     "the edge to 2(1+β)/η, see stability_ratio)." if edges else "")
        if adaptive:
            edge_note += (f" No 2/η line for {', '.join(adaptive)}: an adaptive method's edge concerns "
                          "the preconditioned Hessian, which is not measured.")
        if no_values:
            edge_note += f" Stored without a finite value at any step (not drawn): {', '.join(no_values)}."
        fig.suptitle(f"{variant}: {kind} curvature over steps")
        figures.append(Figure(
            title=f"Curvature over steps: {variant}, {kind}",
            description=(f"Every metric stored for the {kind} snapshots (definitions in "
                         f"docs/curvature.md) against the step (symmetric-log axis), for {labels}. "
                         f"Line: median over seeds; band: min to max.{edge_note}"
                         f"{decimation_note(decimated)}"),
            provenance=Provenance.of(runs, f"curvature_snapshots / curvature_values ({kind}) of runs "
                                           f"made by {origins(runs)} with --curvature"),
            plot=fig, slug=f"curvature-{variant}-{kind}"))
    return figures


def choose_steps(available: Sequence[int], wanted: Sequence[int] | None,
                 count: int = DENSITY_STEPS) -> list[int]:
    """The snapshot steps nearest to `wanted`, else `count` spread evenly over the available ones."""
    available = sorted(set(available))
    if not available:
        return []
    if wanted:
        return sorted({min(available, key=lambda s: (abs(s - w), s)) for w in wanted})
    picks = np.unique(np.round(np.linspace(0, len(available) - 1, min(count, len(available)))).astype(int))
    return [available[i] for i in picks]


def density_figures(configs: Sequence[Config], series: dict[str, RunSeries],
                    steps: Sequence[int] | None = None) -> list[Figure]:
    """Per variant and kind: the SLQ density of one seed per configuration at chosen steps."""
    import matplotlib

    figures = []
    cmap = matplotlib.colormaps["viridis"]
    for variant, kind in _kinds(configs, series):
        chosen: list[tuple[Config, Run, list]] = []
        for config in (c for c in configs if c.variant == variant):
            for run in config.runs:
                snaps = [s for s in series[run.id].snapshots
                         if s.kind == kind and {"density", "density_grid"} <= set(s.arrays)]
                if snaps:
                    chosen.append((config, run, snaps))
                    break
        if not chosen:
            continue
        shown, hidden = chosen[:DENSITY_PANELS], chosen[DENSITY_PANELS:]
        cols = min(3, len(shown))
        fig, axes = new_plot(math.ceil(len(shown) / cols), cols, width=4.4, height=3.2, top=0.9)
        for ax in axes.ravel()[len(shown):]:
            ax.set_visible(False)
        notes = []
        for ax, (config, run, snaps) in zip(axes.ravel(), shown):
            at = choose_steps([s.step for s in snaps], steps)
            by_step = {s.step: s for s in snaps}
            curves = [(np.asarray(by_step[step].arrays["density_grid"], float).ravel(),
                       np.asarray(by_step[step].arrays["density"], float).ravel()) for step in at]
            floor = DENSITY_FLOOR * max(max(float(np.nanmax(d)) for _, d in curves), 1e-300)
            for k, (step, (grid, dens)) in enumerate(zip(at, curves)):
                mark_data(ax.plot(grid, np.where(dens >= floor, dens, np.nan), lw=1.3,
                                  label=f"step {step}", color=cmap(k / max(1, len(at) - 1))))
            ax.set_yscale("log")
            ax.set_ylim(bottom=floor)
            ax.set_title(f"{config.label}, seed {run.seed}", fontsize=9)
            ax.set_xlabel("eigenvalue", fontsize=8)
            ax.set_ylabel("density", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            notes.append(f"{config.label} seed {run.seed} (run {run.id[:8]}): steps {', '.join(map(str, at))}")
        more = f" {len(hidden)} more configuration(s) not drawn." if hidden else ""
        wanted = (f"the snapshot steps nearest to {', '.join(map(str, steps))}" if steps
                  else f"up to {DENSITY_STEPS} snapshot steps spread over training")
        fig.suptitle(f"{variant}: {kind} spectral density (SLQ)")
        figures.append(Figure(
            title=f"Spectral density: {variant}, {kind}",
            description=(f"The stored SLQ density (Gaussian mixture over the Lanczos nodes, "
                         f"docs/curvature.md) of the {kind} at {wanted}, one seed per configuration, "
                         f"on a log scale down to {DENSITY_FLOOR:g} of the highest peak: "
                         f"{'; '.join(notes)}.{more}"),
            provenance=Provenance.of([run for _, run, _ in shown],
                                     f"curvature_arrays density and density_grid ({kind})"),
            plot=fig, slug=f"density-{variant}-{kind}"))
    return figures

