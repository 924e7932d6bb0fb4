"""Benchmark score: per-workload time-to-target and AlgoPerf's performance-profile score.

For submission s and workload w, t[s][w] is the median time-to-target over the
finished runs of s's latest code+hparams on w (a miss counts as infinite). With
r[s][w] = t[s][w] / min_s t[s][w], the performance profile is
rho_s(tau) = |{w : r[s][w] <= tau}| / |W| and the score is its normalised
integral (1 / (tau_max - 1)) * int_1^tau_max rho_s(tau) dtau, computed exactly.

Only trials timed alone count (runs.group_size == 1): a vectorised group's wall time is shared
by all its trials and is no single trial's time-to-target, so runs trained in a group of
several (`curvebench sweep`, `run --seeds N`) never enter t[s][w]. `curvebench score` runs
every trial alone for this reason.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

from harness.db import Database, Run

FINISHED = ("reached", "not_reached", "diverged")
TAU_MAX = 4.0


def latest_runs(runs: Iterable[Run]) -> list[Run]:
    """The finished runs of the most recent (code hash, hparams) of one submission on one workload."""
    finished = [r for r in runs if r.status in FINISHED]
    if not finished:
        return []
    newest = max(finished, key=lambda r: r.started_at)
    key = (newest.submission_hash, repr(sorted(newest.hparams.items())))
    return [r for r in finished if (r.submission_hash, repr(sorted(r.hparams.items()))) == key]


def median_or_inf(values: Iterable[float | None]) -> float:
    """Median with None (a miss) counted as +inf; +inf when there are no values."""
    values = [math.inf if v is None else v for v in values]
    return statistics.median(values) if values else math.inf


def median_time_to_target(runs: Iterable[Run]) -> float:
    """Median over runs of time-to-target, misses as +inf; +inf when there are no runs."""
    return median_or_inf(r.time_to_target_s if r.status == "reached" else None for r in runs)


def time_table(db: Database, variants: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, float]]:
    """t[submission][variant] over runs timed alone, of the same workload version and data
    fingerprint.

    `variants` maps each workload variant to its (workload_version, data_fingerprint), so that
    runs of an older definition of a workload, or on other data, are never compared.
    """
    table: dict[str, dict[str, float]] = {}
    for variant, (version, fingerprint) in variants.items():
        by_submission: dict[str, list[Run]] = {}
        for run in db.runs(variant=variant):
            if ((run.workload_version, run.data_fingerprint) == (version, fingerprint)
                    and run.group_size == 1):
                by_submission.setdefault(run.submission, []).append(run)
        for submission, runs in by_submission.items():
            chosen = latest_runs(runs)
            if chosen:
                table.setdefault(submission, {})[variant] = median_time_to_target(chosen)
    return table


def performance_profile_scores(times: Mapping[str, Mapping[str, float]], workloads: Iterable[str],
                               tau_max: float = TAU_MAX) -> dict[str, float]:
    """Exact integral of each submission's performance profile over [1, tau_max], in [0, 1]."""
    workloads = list(workloads)
    if not workloads:
        return {s: 0.0 for s in times}
    best = {w: min((t.get(w, math.inf) for t in times.values()), default=math.inf) for w in workloads}
    scores = {}
    for submission, t in times.items():
        total = 0.0
        for w in workloads:
            tw = t.get(w, math.inf)
            if math.isinf(tw) or math.isinf(best[w]):
                continue
            ratio = tw / best[w] if best[w] > 0 else 1.0
            total += max(0.0, tau_max - max(ratio, 1.0))
        scores[submission] = total / ((tau_max - 1.0) * len(workloads))
    return scores
