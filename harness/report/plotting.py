"""What every report figure shares: configurations of runs, median-and-band curves over seeds,
decimation of long curves, binned losses, a variant's target, new plots and their axes.

Runs are grouped into configurations (workload variant x submission x hyperparameters);
the seeds of a configuration are drawn as one line (median over seeds) with a band
(min..max over seeds), each seed interpolated on its own range of steps only.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as PlotFigure

from harness.db import Run
from harness.report.records import mark_data
from harness.spec import SpecError, Target

#: training losses are averaged in at most this many bins per seed (SVG size stays bounded)
LOSS_BINS = 300
#: curves of at most this many points are drawn with markers
FEW_POINTS = 12
#: longer curves are drawn through each bin's extremes (`decimate`), ~this many points at most
MAX_POINTS = 400
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


@dataclasses.dataclass
class Config:
    """Runs of one workload variant x submission x hparams: the seeds of one setting."""

    variant: str
    submission: str
    hparams: dict
    runs: list[Run]
    label: str = ""


def _hparams_key(hparams: dict) -> str:
    return json.dumps(hparams, sort_keys=True, default=str)


def group_configs(runs: Sequence[Run]) -> list[Config]:
    """Configurations in first-seen order, labelled by submission plus the hparams that differ
    between configurations of the same submission on the same variant."""
    configs: dict[tuple, Config] = {}
    for run in runs:
        key = (run.variant, run.submission, _hparams_key(run.hparams))
        configs.setdefault(key, Config(run.variant, run.submission, dict(run.hparams), [])).runs.append(run)
    for config in configs.values():
        siblings = [c for c in configs.values()
                    if (c.variant, c.submission) == (config.variant, config.submission)]
        varying = sorted(k for k in config.hparams
                         if len({json.dumps(c.hparams.get(k), default=str) for c in siblings}) > 1)
        extra = ", ".join(f"{k}={config.hparams[k]}" for k in varying)
        config.label = config.submission + (f" ({extra})" if extra else "")
        config.runs.sort(key=lambda r: r.seed)
    return list(configs.values())


def version_generations(runs: Sequence[Run]) -> dict[str, int]:
    """Run id -> its version's rank among its variant's versions, newest first (0: the
    variant's newest version, by its runs' latest start). A workload's version hash covers
    the variant's knobs, so every variant has its own; one figure shows one version of each
    variant (generation 0, then 1, ...), never two versions of one variant side by side."""
    latest: dict[tuple[str, str], object] = {}
    for run in runs:
        key = (run.variant, run.workload_version)
        started = run.started_at
        if key not in latest or (started is not None and (latest[key] is None or started > latest[key])):
            latest[key] = started
    ranks: dict[tuple[str, str], int] = {}
    for variant in {v for v, _ in latest}:
        versions = [k for k in latest if k[0] == variant]
        versions.sort(key=lambda k: (latest[k] is not None, latest[k] or 0), reverse=True)
        ranks.update({k: i for i, k in enumerate(versions)})
    return {r.id: ranks[(r.variant, r.workload_version)] for r in runs}


def by_version(configs: Sequence[Config]) -> list[tuple[int, list[Config]]]:
    """The configurations split by version generation (`version_generations`), newest first:
    each part holds only the runs of that generation, so a figure drawn from one part shows
    one version of each variant; empty parts are left out."""
    generation = version_generations([r for c in configs for r in c.runs])
    out = []
    for gen in sorted(set(generation.values())):
        part = [Config(c.variant, c.submission, c.hparams, runs, c.label) for c in configs
                if (runs := [r for r in c.runs if generation[r.id] == gen])]
        out.append((gen, part))
    return out


def older(name: str, generation: int) -> str:
    """A figure's name, marked when it shows an older version than the newest."""
    return name if generation == 0 else f"{name} (older version {generation})"


def origins(runs: Sequence[Run]) -> str:
    return ", ".join(f"`curvebench {o}`" for o in sorted({r.origin for r in runs}))


def band(curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, min, max) over curves on `grid`; each curve counts only within its own x range."""
    stacked = np.full((len(curves), grid.size), np.nan)
    for i, (x, y) in enumerate(curves):
        if x.size == 0:
            continue
        inside = (grid >= x[0]) & (grid <= x[-1])
        stacked[i, inside] = np.interp(grid[inside], x, y)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no seed at that x
        return np.nanmedian(stacked, 0), np.nanmin(stacked, 0), np.nanmax(stacked, 0)


def decimate(x: np.ndarray, *ys: np.ndarray, points: int = MAX_POINTS) -> tuple[np.ndarray, ...]:
    """At most `points` points of the curves (x, y) for drawing: consecutive bins each keep
    their first and last point and, for every y, the points where it is smallest and largest,
    in order, so every spike and dip is still drawn (a min-max decimation; a curve of at most
    `points` points is kept whole). Returns (x, *ys) at the kept indices."""
    n = x.size
    if n <= points:
        return (x, *ys)
    bins = max(1, points // (2 * len(ys) + 2))
    edges = np.linspace(0, n, bins + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            for y in ys:
                part = y[a:b]
                if np.isfinite(part).any():
                    keep.extend((a + int(np.nanargmin(part)), a + int(np.nanargmax(part))))
            keep.extend((a, b - 1))
    idx = np.unique(keep)
    return (x[idx], *(y[idx] for y in ys))


def draw_band(ax, curves, grid, color, label, x: np.ndarray | None = None) -> bool:
    """Median line and min..max band of `curves` on `grid`, drawn at `x` (default: the grid);
    long curves decimated (`decimate`: every bin's extremes kept). True if decimated."""
    mid, lo, hi = band(curves, grid)
    x = grid if x is None else x
    ok = np.isfinite(mid) & np.isfinite(x)
    if not ok.any():
        return False
    decimated = ok.sum() > MAX_POINTS
    x, mid, lo, hi = decimate(x[ok], mid[ok], lo[ok], hi[ok], points=MAX_POINTS)
    few = x.size <= FEW_POINTS  # a short curve (e.g. evals of a trial that stopped early) gets markers
    mark_data(ax.plot(x, mid, color=color, label=label, lw=1.6, marker="o" if few else None, ms=3))
    if len(curves) > 1:
        mark_data(ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0))
    return decimated


def decimation_note(decimated: bool) -> str:
    return (f" Lines of more than {MAX_POINTS} points are drawn through each of their bins' first, "
            "last, lowest and highest points (median and band alike), so every spike and dip "
            "is kept." if decimated else "")


def binned(steps: np.ndarray, values: np.ndarray, bins: int = LOSS_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Mean step and mean value of consecutive bins, at most `bins` of them."""
    if steps.size <= bins:
        return steps.astype(float), values
    edges = np.linspace(0, steps.size, bins + 1).astype(int)
    return (np.array([steps[a:b].mean() for a, b in zip(edges[:-1], edges[1:])]),
            np.array([values[a:b].mean() for a, b in zip(edges[:-1], edges[1:])]))


def target_of(variant: str) -> Target | None:
    """The variant's target as the registered workload defines it now (None if unknown)."""
    from workloads import get_workload

    try:
        return get_workload(variant).target
    except (SpecError, ValueError, TypeError):
        return None


def new_plot(rows: int, cols: int, width: float = 5.2, height: float = 3.4, *,
              bottom: float = 0.55, top: float = 0.6) -> tuple[PlotFigure, np.ndarray]:
    """A figure of rows x cols axes, each `width` x `height` inches with fixed margins (inches).

    Fixed margins, not matplotlib's constrained layout: that lays every figure out twice and
    doubled the time to write a report (measured on the curvature grids)."""
    left, right, gap_w, gap_h = 0.8, 0.25, 0.75, 0.75
    fig_w = left + right + cols * width + (cols - 1) * gap_w
    fig_h = top + bottom + rows * height + (rows - 1) * gap_h
    fig = PlotFigure(figsize=(fig_w, fig_h))
    fig.subplots_adjust(left=left / fig_w, right=1 - right / fig_w, bottom=bottom / fig_h,
                        top=1 - top / fig_h, wspace=gap_w / width, hspace=gap_h / height)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).reshape(rows, cols)
    return fig, axes


def log_if_positive(ax, values: Sequence[np.ndarray], axis: str = "y", spread: float = 0.0) -> None:
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if flat.size and (flat > 0).all() and flat.max() / flat.min() > spread:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


# -- training curves -----------------------------------------------------------------------


