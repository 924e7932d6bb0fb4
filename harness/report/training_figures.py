"""Figures of training: curves per workload variant, steps to target per workload family and
the submissions' performance profiles.

* training curves: the target metric on the target split and the training loss, each
  against steps and against training seconds, the target as a line; against time, each
  step is drawn at the median over seeds of its training seconds, so seeds that ran at
  different speeds still make one band;
* steps to target: every seed's point per variant and submission (Young et al.'s ablation
  tables as a figure), misses at their final step;
* performance profiles ρ_s(τ) of the submissions, as `curvebench score` computes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from harness import score as scoring
from harness.db import Run
from harness.report.data import RunSeries
from harness.report.plotting import (COLORS, LOSS_BINS, Config, band, binned, by_version,
                                     decimation_note, draw_band, log_if_positive, new_plot, older,
                                     origins, target_of)
from harness.report.records import Figure, Provenance, mark_data
from harness.spec import Target
from harness.records.status import RunStatus

def curve_figures(configs: Sequence[Config], series: dict[str, RunSeries]) -> list[Figure]:
    """Per workload variant and version (`plotting.by_version`: one version per figure, the
    newest first): target metric and training loss vs steps and vs training seconds."""
    return [figure for generation, part in by_version(configs)
            for figure in _curve_figures(part, series, generation)]


def _curve_figures(configs: Sequence[Config], series: dict[str, RunSeries], generation: int) -> list[Figure]:
    figures = []
    for variant in dict.fromkeys(c.variant for c in configs):
        group = [c for c in configs if c.variant == variant]
        runs = [r for c in group for r in c.runs]
        target = target_of(variant)
        split, metric = _eval_metric(target, [series[r.id] for r in runs])
        if metric is None and not any(series[r.id].losses.size for r in runs):
            continue
        fig, axes = new_plot(2, 2)
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
                    decimated |= draw_band(axes[0, 0], curves, steps, color, config.label)
                    decimated |= draw_band(axes[0, 1], curves, steps, color, config.label, x=seconds)
            with_losses = [s for s in kept if s.losses.size]
            if with_losses:
                losses = [binned(s.loss_steps, s.losses) for s in with_losses]
                steps = np.unique(np.concatenate([x for x, _ in losses]))
                seconds = _monotone(band([(x, s.train_seconds(x)) for s, (x, _) in
                                          zip(with_losses, losses)], steps)[0])
                decimated |= draw_band(axes[1, 0], losses, steps, color, config.label)
                decimated |= draw_band(axes[1, 1], losses, steps, color, config.label, x=seconds)
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
            log_if_positive(ax, values, spread=100.0)
        for ax in axes[1]:
            ax.set_ylabel("training loss")
            lines = [line.get_ydata() for line in ax.get_lines()]
            log_if_positive(ax, lines, spread=10.0)
        if axes[0, 0].get_legend_handles_labels()[0]:
            axes[0, 0].legend(fontsize=8)
        fig.suptitle(f"{older(variant, generation)}: {split} {metric} and training loss")
        loss_note = (f"Training losses are those `update_params` reported each step, averaged in at "
                     f"most {LOSS_BINS} bins per seed; their training seconds are interpolated "
                     "between evals (the runner times training per compiled chunk).")
        target_note = (f"Dashed black: the target ({target.split} {target.metric} "
                       f"{'≥' if target.direction == 'max' else '≤'} {target.value:g})."
                       if target is not None else "The workload variant is not registered now: no target line.")
        figures.append(Figure(
            title=f"Training curves: {older(variant, generation)}",
            description=(f"{split} {metric} (top) and training loss (bottom) against steps (left) and "
                         "training seconds, compiles and evals excluded (right; each step at the "
                         "median over seeds of its training seconds, as a running maximum), for "
                         f"{len(group)} configuration(s) and {len(runs)} run(s). Line: median over "
                         f"seeds; band: min to max over seeds. {target_note} {loss_note}"
                         f"{decimation_note(decimated)}"),
            provenance=Provenance.of(runs, f"eval_rows ({split}/{metric}, train_s) and train_losses "
                                           f"of runs made by {origins(runs)}"),
            plot=fig, slug=f"curves-{variant}" + (f"-older{generation}" if generation else "")))
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
    """Per workload family and version (`plotting.by_version`: one version of each variant per
    figure, the newest first): every seed's steps to target per variant and configuration."""
    return [figure for generation, part in by_version(configs)
            for figure in _steps_figures(part, generation)]


def _steps_figures(configs: Sequence[Config], generation: int) -> list[Figure]:
    figures = []
    for family in dict.fromkeys(c.runs[0].workload for c in configs):
        group = [c for c in configs if c.runs[0].workload == family]
        finished = [c for c in group if any(r.status in scoring.FINISHED for r in c.runs)]
        if not finished:
            continue
        variants = list(dict.fromkeys(c.variant for c in finished))
        labels = list(dict.fromkeys(c.label for c in finished))
        rotate = len(variants) > 3
        fig, axes = new_plot(1, 1, width=min(16.0, max(6.0, 1.2 * len(variants) * len(labels) ** 0.5)),
                              height=4.0, bottom=1.6 if rotate else 0.55)
        ax = axes[0, 0]
        width = 0.8 / len(labels)
        labelled: set[str] = set()
        for config in finished:
            j = labels.index(config.label)
            x0 = variants.index(config.variant) - 0.4 + width * (j + 0.5)
            color = COLORS[j % len(COLORS)]
            runs = [r for r in config.runs if r.status in scoring.FINISHED]
            hit = [r.steps_to_target for r in runs if r.status == RunStatus.REACHED and r.steps_to_target]
            miss = [r.final_step for r in runs if not (r.status == RunStatus.REACHED and r.steps_to_target)]
            jitter = np.linspace(-0.25, 0.25, len(runs)) * width if len(runs) > 1 else np.zeros(1)
            if hit:
                mark_data(ax.scatter(x0 + jitter[:len(hit)], hit, color=color, s=22, zorder=3,
                                     label=config.label if config.label not in labelled else None))
                labelled.add(config.label)
                median = scoring.median_or_inf([r.steps_to_target if r.status == RunStatus.REACHED else None
                                                for r in runs])
                if math.isfinite(median):
                    mark_data(ax.hlines(median, x0 - width * 0.4, x0 + width * 0.4, color=color, lw=2))
            if miss:
                mark_data(ax.scatter(x0 + jitter[len(hit):], miss, color=color, marker="x", s=28,
                                     zorder=3, label=config.label if config.label not in labelled else None))
                labelled.add(config.label)
        if any(r.status != RunStatus.REACHED or not r.steps_to_target for c in finished for r in c.runs
               if r.status in scoring.FINISHED):
            ax.scatter([], [], color="black", marker="x", s=28, label="not reached (at its final step)")
        ax.set_xticks(range(len(variants)), variants, rotation=25 if rotate else 0,
                      ha="right" if rotate else "center", fontsize=8)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set_ylabel("steps to target")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        runs = [r for c in finished for r in c.runs if r.status in scoring.FINISHED]
        fig.suptitle(f"{older(family, generation)}: steps to target per variant")
        figures.append(Figure(
            title=f"Steps to target: {older(family, generation)}",
            description=(f"Each finished run's steps to target, per workload variant (x) and "
                         f"configuration (colour): dots reached the target, crosses did not (drawn at "
                         f"the step they stopped), the bar is the median over seeds counting misses as "
                         f"infinite (absent when most seeds missed). Young et al.'s ablation tables "
                         f"compare variants this way. {len(runs)} run(s)."),
            provenance=Provenance.of(runs, f"runs.steps_to_target, runs.status and runs.final_step of "
                                           f"runs made by {origins(runs)}"),
            plot=fig, slug=f"steps-{family}" + (f"-older{generation}" if generation else "")))
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
    fig, axes = new_plot(1, 1, width=6.5, height=4.0)
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
                                            f"of runs made by {origins(data.runs)}"),
        plot=fig, slug="performance-profiles")]


# -- curvature -----------------------------------------------------------------------------


