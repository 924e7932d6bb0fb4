"""The report's standard figures, built from selected runs and their recorded series.

Runs are grouped into configurations (workload variant x submission x hyperparameters);
the seeds of a configuration are drawn as one line (median over seeds) with a band
(min..max over seeds), each seed interpolated on its own range of steps only. Against
time, each step is drawn at the median over seeds of its training seconds, so seeds that
ran at different speeds still make one band.

* training curves per workload variant: the target metric on the target split and the
  training loss, each against steps and against training seconds, the target as a line;
* steps to target per workload family: every seed's point per variant and submission
  (Young et al.'s ablation tables as a figure), misses at their final step;
* performance profiles ρ_s(τ) of the submissions, as `curvebench score` computes them;
* every curvature metric over steps per variant and kind, with 2/η on the Hessian's λ_max;
* the SLQ density at chosen steps, log scale.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure as PlotFigure
from matplotlib.ticker import MaxNLocator

from harness import score as scoring
from harness.db import Run
from harness.report.data import RunSeries
from harness.report.records import Figure, Provenance, Section, mark_data
from harness.spec import SpecError, Target

#: training losses are averaged in at most this many bins per seed (SVG size stays bounded)
LOSS_BINS = 300
#: curves of at most this many points are drawn with markers
FEW_POINTS = 12
#: longer curves are drawn through each bin's extremes (`decimate`), ~this many points at most
MAX_POINTS = 400
#: SLQ densities at this many snapshot steps when none are chosen
DENSITY_STEPS = 5
#: densities are drawn down to this fraction of the highest peak in their panel (log scale)
DENSITY_FLOOR = 1e-7
#: configurations drawn in one density figure, at most
DENSITY_PANELS = 6
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


def _origins(runs: Sequence[Run]) -> str:
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


def _draw_band(ax, curves, grid, color, label, x: np.ndarray | None = None) -> bool:
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


def _decimation_note(decimated: bool) -> str:
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


def _new_plot(rows: int, cols: int, width: float = 5.2, height: float = 3.4, *,
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


def _log_if_positive(ax, values: Sequence[np.ndarray], axis: str = "y", spread: float = 0.0) -> None:
    flat = np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if flat.size and (flat > 0).all() and flat.max() / flat.min() > spread:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


# -- training curves -----------------------------------------------------------------------


def curve_figures(configs: Sequence[Config], series: dict[str, RunSeries]) -> list[Figure]:
    """Per workload variant: target metric and training loss vs steps and vs training seconds."""
    figures = []
    for variant in dict.fromkeys(c.variant for c in configs):
        group = [c for c in configs if c.variant == variant]
        runs = [r for c in group for r in c.runs]
        target = target_of(variant)
        split, metric = _eval_metric(target, [series[r.id] for r in runs])
        if metric is None and not any(series[r.id].losses.size for r in runs):
            continue
        fig, axes = _new_plot(2, 2)
        decimated = False
        for i, config in enumerate(group):
            color = COLORS[i % len(COLORS)]
            kept = [series[r.id] for r in config.runs]
            if metric is not None:
                evals = [e for e in (s.evals.get(split, {}).get(metric) for s in kept) if e is not None]
                if evals:
                    steps = np.unique(np.concatenate([e[0] for e in evals]))
                    seconds = _monotone(band([(e[0], e[2]) for e in evals], steps)[0])
                    curves = [(e[0], e[1]) for e in evals]
                    decimated |= _draw_band(axes[0, 0], curves, steps, color, config.label)
                    decimated |= _draw_band(axes[0, 1], curves, steps, color, config.label, x=seconds)
            with_losses = [s for s in kept if s.losses.size]
            if with_losses:
                losses = [binned(s.loss_steps, s.losses) for s in with_losses]
                steps = np.unique(np.concatenate([x for x, _ in losses]))
                seconds = _monotone(band([(x, s.train_seconds(x)) for s, (x, _) in
                                          zip(with_losses, losses)], steps)[0])
                decimated |= _draw_band(axes[1, 0], losses, steps, color, config.label)
                decimated |= _draw_band(axes[1, 1], losses, steps, color, config.label, x=seconds)
        for ax, xlabel in ((axes[0, 0], "step"), (axes[0, 1], "training seconds"),
                           (axes[1, 0], "step"), (axes[1, 1], "training seconds")):
            ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(6))
            ax.grid(alpha=0.3)
        for ax in axes[0]:
            ax.set_ylabel(f"{split} {metric}" if metric else "no eval rows")
            values = [line.get_ydata() for line in ax.get_lines()]
            if target is not None and metric == target.metric:
                ax.axhline(target.value, color="black", ls="--", lw=1, label=f"target {target.value:g}")
                values.append(np.array([target.value]))
            _log_if_positive(ax, values, spread=100.0)
        for ax in axes[1]:
            ax.set_ylabel("training loss")
            lines = [line.get_ydata() for line in ax.get_lines()]
            _log_if_positive(ax, lines, spread=10.0)
        axes[0, 0].legend(fontsize=8)
        fig.suptitle(f"{variant}: {split} {metric} and training loss")
        loss_note = (f"Training losses are those `update_params` reported each step, averaged in at "
                     f"most {LOSS_BINS} bins per seed; their training seconds are interpolated "
                     "between evals (the runner times training per compiled chunk).")
        target_note = (f"Dashed black: the target ({target.split} {target.metric} "
                       f"{'≥' if target.direction == 'max' else '≤'} {target.value:g})."
                       if target is not None else "The workload variant is not registered now: no target line.")
        figures.append(Figure(
            title=f"Training curves: {variant}",
            description=(f"{split} {metric} (top) and training loss (bottom) against steps (left) and "
                         "training seconds, compiles and evals excluded (right; each step at the "
                         "median over seeds of its training seconds, as a running maximum), for "
                         f"{len(group)} configuration(s) and {len(runs)} run(s). Line: median over "
                         f"seeds; band: min to max over seeds. {target_note} {loss_note}"
                         f"{_decimation_note(decimated)}"),
            provenance=Provenance.of(runs, f"eval_rows ({split}/{metric}, train_s) and train_losses "
                                           f"of runs made by {_origins(runs)}"),
            plot=fig, slug=f"curves-{variant}"))
    return figures


def _monotone(seconds: np.ndarray) -> np.ndarray:
    """Running maximum (NaN kept): where slower seeds have stopped, the median over the rest
    could step back in time."""
    out = seconds.copy()
    ok = np.isfinite(out)
    out[ok] = np.maximum.accumulate(out[ok])
    return out


def _eval_metric(target: Target | None, series: Sequence[RunSeries]) -> tuple[str, str | None]:
    if target is not None and any(target.metric in s.evals.get(target.split, {}) for s in series):
        return target.split, target.metric
    for s in series:
        for split, by_metric in sorted(s.evals.items()):
            if by_metric:
                return split, sorted(by_metric)[0]
    return "validation", None


# -- steps to target -----------------------------------------------------------------------


def steps_to_target_figures(configs: Sequence[Config]) -> list[Figure]:
    """Per workload family: every seed's steps to target per variant and configuration."""
    figures = []
    for family in dict.fromkeys(c.runs[0].workload for c in configs):
        group = [c for c in configs if c.runs[0].workload == family]
        finished = [c for c in group if any(r.status in scoring.FINISHED for r in c.runs)]
        if not finished:
            continue
        variants = list(dict.fromkeys(c.variant for c in finished))
        labels = list(dict.fromkeys(c.label for c in finished))
        rotate = len(variants) > 3
        fig, axes = _new_plot(1, 1, width=min(16.0, max(6.0, 1.2 * len(variants) * len(labels) ** 0.5)),
                              height=4.0, bottom=1.6 if rotate else 0.55)
        ax = axes[0, 0]
        width = 0.8 / len(labels)
        labelled: set[str] = set()
        for config in finished:
            j = labels.index(config.label)
            x0 = variants.index(config.variant) - 0.4 + width * (j + 0.5)
            color = COLORS[j % len(COLORS)]
            runs = [r for r in config.runs if r.status in scoring.FINISHED]
            hit = [r.steps_to_target for r in runs if r.status == "reached" and r.steps_to_target]
            miss = [r.final_step for r in runs if not (r.status == "reached" and r.steps_to_target)]
            jitter = np.linspace(-0.25, 0.25, len(runs)) * width if len(runs) > 1 else np.zeros(1)
            if hit:
                mark_data(ax.scatter(x0 + jitter[:len(hit)], hit, color=color, s=22, zorder=3,
                                     label=config.label if config.label not in labelled else None))
                labelled.add(config.label)
                median = scoring.median_or_inf([r.steps_to_target if r.status == "reached" else None
                                                for r in runs])
                if math.isfinite(median):
                    mark_data(ax.hlines(median, x0 - width * 0.4, x0 + width * 0.4, color=color, lw=2))
            if miss:
                mark_data(ax.scatter(x0 + jitter[len(hit):], miss, color=color, marker="x", s=28,
                                     zorder=3, label=config.label if config.label not in labelled else None))
                labelled.add(config.label)
        if any(r.status != "reached" or not r.steps_to_target for c in finished for r in c.runs
               if r.status in scoring.FINISHED):
            ax.scatter([], [], color="black", marker="x", s=28, label="not reached (at its final step)")
        ax.set_xticks(range(len(variants)), variants, rotation=25 if rotate else 0,
                      ha="right" if rotate else "center", fontsize=8)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_ylabel("steps to target")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        runs = [r for c in finished for r in c.runs if r.status in scoring.FINISHED]
        fig.suptitle(f"{family}: steps to target per variant")
        figures.append(Figure(
            title=f"Steps to target: {family}",
            description=(f"Each finished run's steps to target, per workload variant (x) and "
                         f"configuration (colour): dots reached the target, crosses did not (drawn at "
                         f"the step they stopped), the bar is the median over seeds counting misses as "
                         f"infinite (absent when most seeds missed). Young et al.'s ablation tables "
                         f"compare variants this way. {len(runs)} run(s)."),
            provenance=Provenance.of(runs, f"runs.steps_to_target, runs.status and runs.final_step of "
                                           f"runs made by {_origins(runs)}"),
            plot=fig, slug=f"steps-{family}"))
    return figures


# -- performance profiles ------------------------------------------------------------------


@dataclasses.dataclass
class ProfileData:
    """t[submission][variant] and the runs behind it, as `curvebench score` chooses them."""

    times: dict[str, dict[str, float]]
    variants: list[str]
    runs: list[Run]
    left_out: int


def profile_data(runs: Sequence[Run]) -> ProfileData:
    """Median time-to-target per submission and variant over the newest workload version and
    data of each variant: each submission's declared set among the selected runs timed alone
    (`harness.score.declared_set`: its newest code+hparams, one run per seed), as `score` does."""
    times: dict[str, dict[str, float]] = {}
    used: list[Run] = []
    left_out = 0
    for variant in dict.fromkeys(r.variant for r in runs):
        of_variant = [r for r in runs if r.variant == variant]
        newest = max(of_variant, key=lambda r: r.started_at)
        identity = (newest.workload_version, newest.data_fingerprint)
        same = [r for r in of_variant if (r.workload_version, r.data_fingerprint) == identity]
        left_out += len(of_variant) - len(same)
        for submission in dict.fromkeys(r.submission for r in same):
            chosen = scoring.declared_set([r for r in same
                                           if r.submission == submission and r.group_size == 1])
            if chosen:
                times.setdefault(submission, {})[variant] = scoring.median_time_to_target(chosen)
                used.extend(chosen)
    variants = sorted({v for t in times.values() for v in t})
    return ProfileData(times, variants, used, left_out)


def performance_profile(times: dict[str, dict[str, float]], variants: Sequence[str],
                        taus: np.ndarray) -> dict[str, np.ndarray]:
    """ρ_s(τ) = |{w : t_s,w / min_s' t_s',w ≤ τ}| / |W| (misses never count)."""
    best = {w: min((t.get(w, math.inf) for t in times.values()), default=math.inf) for w in variants}
    rho = {}
    for submission, t in times.items():
        ratios = np.array([t.get(w, math.inf) / best[w] if math.isfinite(best[w]) and best[w] > 0
                           else (1.0 if math.isfinite(t.get(w, math.inf)) else math.inf)
                           for w in variants])
        rho[submission] = (ratios[None, :] <= taus[:, None]).mean(1) if variants else np.zeros_like(taus)
    return rho


def profile_figures(runs: Sequence[Run], tau_max: float = scoring.TAU_MAX) -> list[Figure]:
    data = profile_data([r for r in runs if r.status in scoring.FINISHED])
    if not data.times:
        return []
    taus = np.linspace(1.0, tau_max, 601)
    rho = performance_profile(data.times, data.variants, taus)
    scores = scoring.performance_profile_scores(data.times, data.variants, tau_max)
    fig, axes = _new_plot(1, 1, width=6.5, height=4.0)
    ax = axes[0, 0]
    for i, (submission, values) in enumerate(sorted(rho.items(), key=lambda kv: -scores[kv[0]])):
        mark_data(ax.step(taus, values, where="post", color=COLORS[i % len(COLORS)], lw=1.8,
                          label=f"{submission} (score {scores[submission]:.3f})"))
    ax.set_xlim(1.0, tau_max)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("τ (time to target / best time to target)")
    ax.set_ylabel("ρ(τ): fraction of workloads")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Performance profiles over {len(data.variants)} workload variant(s)")
    alone = (" Only one submission has results here, so every profile is against itself."
             if len(data.times) == 1 else "")
    older = (f" {data.left_out} run(s) of older workload versions or other data were left out."
             if data.left_out else "")
    return [Figure(
        title="Performance profiles",
        description=(f"ρ_s(τ): the fraction of the {len(data.variants)} workload variant(s) on which "
                     f"submission s's median time to target is within τ of the fastest submission's, "
                     f"for τ in [1, {tau_max:g}] (misses never count); the legend gives the normalised "
                     f"integral, the score `curvebench score` prints. Each submission's newest "
                     f"code+hparams, each variant's newest workload version.{alone}{older}"),
        provenance=Provenance.of(data.runs, "runs.time_to_target_s and runs.status (harness/score.py) "
                                            f"of runs made by {_origins(data.runs)}"),
        plot=fig, slug="performance-profiles")]


# -- curvature -----------------------------------------------------------------------------


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
        fig, axes = _new_plot(rows, cols, width=3.6, height=2.6, top=0.9)
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
                    decimated |= _draw_band(ax, curves, grid, color, config.label)
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
                _log_if_positive(ax, [line.get_ydata() for line in ax.get_lines()], spread=20.0)
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
                         f"{_decimation_note(decimated)}"),
            provenance=Provenance.of(runs, f"curvature_snapshots / curvature_values ({kind}) of runs "
                                           f"made by {_origins(runs)} with --curvature"),
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
        fig, axes = _new_plot(math.ceil(len(shown) / cols), cols, width=4.4, height=3.2, top=0.9)
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


def standard_sections(runs: Sequence[Run], series: dict[str, RunSeries],
                      density_steps: Sequence[int] | None = None) -> list[Section]:
    """The report's standard sections; one whose data is absent says what would fill it."""
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
        Section("Curvature over steps", figures=curvature_figures(configs, series),
                text="" if any(series[r.id].snapshots for r in runs) else
                "No selected run has curvature snapshots (`curvebench run ... --curvature hessian,ggn,cov` "
                "records them)."),
        Section("Spectral densities", figures=density_figures(configs, series, density_steps),
                text="" if any(series[r.id].snapshots for r in runs) else
                "No selected run has curvature snapshots."),
    ]
