"""Figures of curvature: the chosen metrics over steps, one line per configuration, per
workload (one version of it) and snapshot kind (2/η beside the Hessian's λ_max), with every
stored metric as a collapsed table; and the SLQ spectral density at chosen steps, log scale.

The comparison figure follows Young, Snider & Feng (seed 000, Fig. 5): the variants of one
workload, the submissions and the hyperparameter settings of a selection share one panel per
metric, their colours grouped by the knob that varies most coarsely (warm shades for one
value, cold for the other), so a family of runs reads as one hue. A point whose estimate is
not certified (its stored `*_converged` flag is 0 for a seed) is a hollow marker on its line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.lines import Line2D

from harness.db import Run
from harness.errors import ReportError
from harness.report.data import RunSeries
from harness.report.plotting import (COLORS, Config, band, decimation_note, draw_band, new_plot,
                                     origins)
from harness.report.plotting import older, version_generations
from harness.report.records import Figure, Provenance, Table, mark_data

#: the metric set of seed 000 drawn by default (`report --metrics` chooses others)
DEFAULT_METRICS = ("max_eig", "min_eig", "mer_10", "ter_10", "pnr", "pgr_10")
#: panel titles of the metrics docs/curvature.md names in the papers' notation
METRIC_TITLES = {"max_eig": "λ_max", "min_eig": "λ_min", "mer_10": "MER-10", "ter_10": "TER-10",
                 "pnr": "PNR (log)", "pgr_10": "PGR-10", "trace": "trace",
                 "gram_lambda_1": "λ_K^1", "gram_lambda_star": "λ_K*",
                 "gram_condition": "λ_K*/λ_K^1", "gram_trace": "Tr K"}
#: metrics drawn on a log axis whatever their spread
LOG_METRICS = frozenset({"pnr"})
#: panels per row of a comparison figure (each ~370 px wide in a 1,400 px page)
COLUMNS = 3
#: one colour map per family of configurations: warm first, then cold, then the rest
FAMILY_MAPS = ("Oranges", "Blues", "Greens", "Purples", "Reds", "Greys")
#: SLQ densities at this many snapshot steps when none are chosen
DENSITY_STEPS = 5
#: densities are drawn down to this fraction of the highest peak in their panel (log scale)
DENSITY_FLOOR = 1e-7
#: configurations drawn in one density figure, at most
DENSITY_PANELS = 6


def _kinds(configs: Sequence[Config], series: dict[str, RunSeries]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c.variant, s.kind) for c in configs for r in c.runs
                              for s in series[r.id].snapshots))


def variant_knobs(variant: str) -> dict[str, str]:
    """A variant's knob values as written (`mnist_mlp:width=64,depth=2` -> width, depth)."""
    _, _, rest = variant.partition(":")
    return dict(part.partition("=")[::2] for part in rest.split(",") if part)


def _dimensions(config: Config) -> dict[str, str]:
    import json

    dims = {f"knob {k}": v for k, v in variant_knobs(config.variant).items()}
    dims["submission"] = config.submission
    dims.update({f"hparam {k}": json.dumps(v, default=str) for k, v in config.hparams.items()})
    return dims


def config_styles(configs: Sequence[Config]) -> tuple[list[tuple[str, str]], str | None]:
    """(colour, label) per configuration, and the dimension whose values make the colour
    families (None: at most one dimension varies, and each configuration has its own colour).

    A dimension is a variant knob, the submission or an hparam; the family dimension is the
    varying one with the fewest values (ties: knobs, then submission, then hparams), each of
    its values one colour map, the configurations inside a family its shades."""
    import matplotlib

    dims = [_dimensions(c) for c in configs]
    names = list(dict.fromkeys(n for d in dims for n in d))
    varying = [n for n in names if len({d.get(n) for d in dims}) > 1]
    labels = []
    for config, d in zip(configs, dims):
        knobs = [f"{n[5:]}={d[n]}" for n in varying if n.startswith("knob ") and n in d]
        labels.append(", ".join(knobs + [config.label]) if knobs else config.label)
    if len(varying) < 2:
        return [(COLORS[i % len(COLORS)], label) for i, label in enumerate(labels)], None
    family = min(varying, key=lambda n: len({d.get(n) for d in dims}))
    values = list(dict.fromkeys(d.get(family) for d in dims))
    members = {v: [i for i, d in enumerate(dims) if d.get(family) == v] for v in values}
    colours = [""] * len(configs)
    for f, value in enumerate(values):
        cmap = matplotlib.colormaps[FAMILY_MAPS[f % len(FAMILY_MAPS)]]
        group = members[value]
        for j, i in enumerate(group):
            colours[i] = matplotlib.colors.to_hex(cmap(0.9 - 0.45 * j / max(1, len(group) - 1)))
    return list(zip(colours, labels)), family


def comparison_groups(configs: Sequence[Config], series: dict[str, RunSeries]
                      ) -> list[tuple[str, str, list[tuple[Config, list[list]]]]]:
    """(name, kind, [(config, per-seed snapshots of that kind)]) per workload, kind and version
    generation (`version_generations`): one version of each variant per figure. `name` is the
    variant if the group has one, else the workload; "older version N" when not the newest."""
    generation = version_generations([r for c in configs for r in c.runs])
    keys: dict[tuple[str, int, str], list[Config]] = {}
    for config in configs:
        for run in config.runs:
            for kind in dict.fromkeys(s.kind for s in series[run.id].snapshots):
                group = keys.setdefault((run.workload, generation[run.id], kind), [])
                if config not in group:
                    group.append(config)
    out = []
    first = {k: i for i, k in reversed(list(enumerate((w, k) for w, _, k in keys)))}
    for (workload, gen, kind), group in sorted(keys.items(), key=lambda i: (first[i[0][0], i[0][2]],
                                                                          i[0][1])):
        per_config = []
        for config in group:
            runs = [r for r in config.runs if generation[r.id] == gen]
            snaps = [[s for s in series[r.id].snapshots if s.kind == kind] for r in runs]
            if any(snaps):
                per_config.append((Config(config.variant, config.submission, config.hparams,
                                          [r for r, s in zip(runs, snaps) if s], config.label),
                                   [s for s in snaps if s]))
        variants = {c.variant for c, _ in per_config}
        name = variants.pop() if len(variants) == 1 else workload
        out.append((older(name, gen), kind, per_config))
    return out


def _series_of(snaps_per_seed: list[list], name: str):
    """Per seed (steps, values) of metric `name` where finite, and the steps at which some
    seed's estimate is flagged not converged."""
    curves, unconverged = [], set()
    for snaps in snaps_per_seed:
        pts = [(s.step, s.metrics.get(name)) for s in snaps]
        xs = np.array([p for p, v in pts if v is not None and math.isfinite(v)], float)
        ys = np.array([v for p, v in pts if v is not None and math.isfinite(v)], float)
        if xs.size:
            curves.append((xs, ys))
        unconverged.update(s.step for s in snaps if s.metrics.get(f"{name}_converged") == 0.0)
    return curves, unconverged


def _stored_names(per_config) -> list[str]:
    return sorted({n for _, seeds in per_config for snaps in seeds for s in snaps for n in s.metrics})


def check_metrics(metrics: Sequence[str], series: dict[str, RunSeries]) -> None:
    """ReportError if a chosen metric is stored by no selected run (naming the stored ones)."""
    stored = {n for s in series.values() for snap in s.snapshots for n in snap.metrics}
    missing = [m for m in metrics if m not in stored]
    if stored and missing:
        raise ReportError(f"--metrics: {', '.join(missing)} not stored by any selected run's "
                          f"curvature snapshots; stored: {', '.join(sorted(stored))}")


def all_metrics_table(per_config, labels: Sequence[str]) -> Table:
    """Every stored metric (rows) per configuration (columns): the median over seeds at the
    configuration's last snapshot step, `?` where a seed's estimate there is not converged."""
    columns, cells = ["metric"], {}
    for index, ((config, seeds), label) in enumerate(zip(per_config, labels)):
        last = max(s.step for snaps in seeds for s in snaps)
        at = [s for snaps in seeds for s in snaps if s.step == last]
        columns.append(f"{label}, step {last}")
        for name in _stored_names([(config, seeds)]):
            values = [s.metrics.get(name) for s in at]
            values = [v for v in values if v is not None]
            text = f"{float(np.median(values)):.4g}" if values else "-"
            if any(s.metrics.get(f"{name}_converged") == 0.0 for s in at):
                text += "?"
            cells.setdefault(name, {})[index] = text
    rows = tuple((name, *(cells[name].get(i, "-") for i in range(len(per_config))))
                 for name in sorted(cells))
    return Table(tuple(columns), rows)


def curvature_figures(configs: Sequence[Config], series: dict[str, RunSeries],
                      metrics: Sequence[str] | None = None) -> list[Figure]:
    """Per workload version and snapshot kind: `metrics` (default `DEFAULT_METRICS`, those
    stored) over steps, one line per configuration (median over seeds, band min..max),
    hollow markers where an estimate is not converged, 2/η beside λ_max where η is known."""
    chosen = tuple(metrics) if metrics else DEFAULT_METRICS
    figures = []
    for title, kind, per_config in comparison_groups(configs, series):
        stored = _stored_names(per_config)
        names = [n for n in chosen if any(_series_of(seeds, n)[0] for _, seeds in per_config)]
        if not names:
            continue
        styles, family = config_styles([c for c, _ in per_config])
        cols = min(COLUMNS, len(names))
        rows = math.ceil(len(names) / cols)
        legend_rows = math.ceil((len(per_config) + 2) / 3)
        fig, axes = new_plot(rows, cols, width=4.2, height=2.8, top=0.7,
                             bottom=0.75 + 0.22 * legend_rows)
        for ax in axes.ravel()[len(names):]:
            ax.set_visible(False)
        edges: list[str] = []
        adaptive: list[str] = []
        decimated = hollow = False
        for ax, name in zip(axes.ravel(), names):
            for (config, seeds), (color, label) in zip(per_config, styles):
                curves, unconverged = _series_of(seeds, name)
                if not curves:
                    continue
                grid = np.unique(np.concatenate([x for x, _ in curves]))
                decimated |= draw_band(ax, curves, grid, color, label)
                mid = band(curves, grid)[0]
                if grid.size == 1 or np.isfinite(mid).sum() == 1:
                    mark_data(ax.plot(grid, mid, "o", color=color, ms=3))
                bad = np.isin(grid, sorted(unconverged)) & np.isfinite(mid)
                if bad.any():
                    hollow = True
                    mark_data(ax.plot(grid[bad], mid[bad], "o", ms=6, mfc="none", mec=color, mew=1.3,
                                      ls="none", label="_unconverged"))
                eta = config.hparams.get("learning_rate")
                if name == "max_eig" and kind == "hessian" and isinstance(eta, (int, float)) and eta > 0:
                    if "beta2" in config.hparams:
                        adaptive.append(label)
                    else:
                        ax.axhline(2.0 / eta, color=color, ls="--", lw=1, label="_edge")
                        edges.append(f"{label}: 2/η = {2.0 / eta:.4g}")
            ax.set_title(METRIC_TITLES.get(name, name), fontsize=9)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            values = [line.get_ydata() for line in ax.get_lines()]
            flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
            flat = flat[np.isfinite(flat)]
            if flat.size and (flat > 0).all() and (name in LOG_METRICS or
                                                    (name == "max_eig" and flat.max() / flat.min() > 20)):
                ax.set_yscale("log")
        for ax in axes[-1]:
            ax.set_xlabel("step", fontsize=8)
        handles = [Line2D([], [], color=color, lw=1.6, label=label) for color, label in styles]
        if edges:
            handles.append(Line2D([], [], color="#555", ls="--", lw=1, label="2/η (λ_max panel)"))
        if hollow:
            handles.append(Line2D([], [], color="#555", marker="o", mfc="none", ls="none",
                                  label="not converged"))
        fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
        runs = [r for c, _ in per_config for r in c.runs]
        colours = (f" Colours: one hue per value of {family}, shades within it." if family else "")
        note = (" Dashed on λ_max: the stability edge 2/η of gradient descent at the learning-rate "
                "hparam η (" + "; ".join(edges) + "; heavy-ball momentum β moves the edge to "
                "2(1+β)/η, see stability_ratio)." if edges else "")
        if adaptive:
            note += (f" No 2/η line for {', '.join(adaptive)}: an adaptive method's edge concerns "
                     "the preconditioned Hessian, which is not measured.")
        if hollow:
            note += " Hollow markers: a seed's estimate at that step is not converged (its `*_converged` flag is 0)."
        absent = [n for n in chosen if n not in names]
        if absent:
            note += f" Not stored (or never finite) for these runs: {', '.join(absent)}."
        fig.suptitle(f"{title}: {kind} curvature over steps")
        figures.append(Figure(
            title=f"Curvature over steps: {title}, {kind}",
            description=(f"{', '.join(METRIC_TITLES.get(n, n) for n in names)} of the {kind} "
                         f"snapshots (definitions in docs/curvature.md) against the step (symmetric-log "
                         f"axis), one line per configuration: "
                         f"{'; '.join(label for _, label in styles)}. Line: median over seeds; band: "
                         f"min to max.{colours}{note} Every stored metric ({len(stored)}) is in the "
                         f"table below the figure.{decimation_note(decimated)}"),
            provenance=Provenance.of(runs, f"curvature_snapshots / curvature_values ({kind}) of runs "
                                           f"made by {origins(runs)} with --curvature"),
            plot=fig, slug=f"curvature-{title}-{kind}", table=all_metrics_table(per_config, [label for _, label in styles])))
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

