"""Scoring as AlgoPerf does it, as pure functions on time tables, beside the suite's own.

External-tuning ruleset: a submission runs several *studies* on each workload, each study a set
of *trials* (search-space points). A study's time is its fastest trial's time-to-target (a trial
that missed counts as infinite); the workload's time is the median over studies.
(AlgoPerf's scoring code picks, per study, the trial that reached the target at the earliest
eval and takes that trial's time there; with evals at the same times in every trial this is the
fastest trial.)

Performance profiles: with r[s][w] = t[s][w] / min_s t[s][w], rho_s(tau) is the fraction of
workloads with r <= tau; the score is the integral of rho over tau in [1, tau_max], divided by
tau_max - 1. AlgoPerf samples rho at `num_points` (100) evenly spaced tau and integrates with the
trapezoid rule (`algoperf_scores`); the suite integrates the step function exactly
(`harness.score.performance_profile_scores`). Each workload contributes a step at its ratio r;
the trapezoid rule smears that step over one grid interval, so the two differ by at most
1 / (2 (num_points - 1)) (`trapezoid_error_bound`, 0.00505 for 100 points) — half a grid step,
normalised — and agree exactly when every ratio is 1 or lies on the grid midpoint. Two smaller
differences: AlgoPerf divides by its fixed number of base workloads (8), the suite by the number
of workloads scored; AlgoPerf sets times above tau_max x best to infinity first, which changes
nothing inside [1, tau_max].
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

TAU_MAX = 4.0
NUM_POINTS = 100


def _time(t: float | None) -> float:
    return math.inf if t is None or math.isnan(t) else float(t)


def study_time(trial_times: Iterable[float | None]) -> float:
    """A study's time: its fastest trial's time-to-target (None, a miss, counts as +inf)."""
    return min((_time(t) for t in trial_times), default=math.inf)


def workload_time(studies: Sequence[Iterable[float | None]]) -> float:
    """A workload's time under external tuning: the median over studies of each study's time."""
    if not studies:
        return math.inf
    return float(statistics.median(study_time(s) for s in studies))


def external_tuning_times(trials: Mapping[str, Mapping[str, Sequence[Iterable[float | None]]]]
                          ) -> dict[str, dict[str, float]]:
    """t[submission][workload] from trials[submission][workload] = [study][trial] times."""
    return {s: {w: workload_time(studies) for w, studies in per_workload.items()}
            for s, per_workload in trials.items()}


def performance_profiles(times: Mapping[str, Mapping[str, float]], workloads: Sequence[str],
                         tau_max: float = TAU_MAX, num_points: int = NUM_POINTS
                         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(taus, rho[submission] at each tau) sampled as AlgoPerf does (linear grid over [1, tau_max])."""
    taus = np.linspace(1.0, tau_max, num_points)
    workloads = list(workloads)
    best = {w: min((_time(t.get(w)) for t in times.values()), default=math.inf) for w in workloads}
    profiles = {}
    for submission, t in times.items():
        ratios = np.array([_time(t.get(w)) / best[w] if math.isfinite(best[w]) and best[w] > 0
                           else (1.0 if best[w] == 0 and _time(t.get(w)) == 0 else math.inf)
                           for w in workloads])
        ratios[ratios > tau_max] = math.inf
        profiles[submission] = ((ratios[None, :] <= taus[:, None]).sum(axis=1) / max(len(workloads), 1)
                                if workloads else np.zeros_like(taus))
    return taus, profiles


def algoperf_scores(times: Mapping[str, Mapping[str, float]], workloads: Sequence[str],
                    tau_max: float = TAU_MAX, num_points: int = NUM_POINTS) -> dict[str, float]:
    """AlgoPerf's score: trapezoid rule over the sampled profile, divided by tau_max - 1."""
    taus, profiles = performance_profiles(times, workloads, tau_max, num_points)
    return {s: float(np.trapezoid(rho, taus) / (tau_max - 1.0)) for s, rho in profiles.items()}


def trapezoid_error_bound(num_points: int = NUM_POINTS) -> float:
    """Largest |AlgoPerf's trapezoid score - the exact integral|: half a grid step, normalised."""
    return 1.0 / (2.0 * (num_points - 1))
