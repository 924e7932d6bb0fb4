"""The statistics of the check's convergence and steps-to-target tiers (harness/check/tiers.py).

Steps-to-target: a two-sided pooled trimmed-mean t-test (Yuen 1974, pooled form) at
alpha = 0.05 of candidate vs reference steps-to-target; it fails only when significant *and*
the relative difference of the trimmed means exceeds the set's tolerance (never below one
eval interval), so both too-slow and suspiciously fast reruns fail. Spread: the pooled
20%-winsorized standard deviation, floored at eval_every/sqrt(12).
Why: the trimmed mean drops the fastest and slowest seeds as MLPerf's reference convergence
points do, and the winsorized variance is the spread that belongs to a trimmed mean (one
straggling seed cannot inflate it); pooling borrows the references' many seeds for the
candidate's few, which is right under the null hypothesis that both come from one
distribution; the floor is the rounding error of a target that is only observed every
eval_every steps (uniform over one interval), which keeps a set whose seeds all hit the
target at the same eval from having zero spread. A miss counts as the step budget (a lower
bound on its steps).

The false-reject rate of the convergence + steps rule is estimated by resampling: candidate
and reference samples of the real sizes are drawn with replacement from the references and
the rule is applied to each draw.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from harness.records.status import RunStatus

ALPHA = 0.05
TRIM = 0.2
MAX_MISSES = 1
RESAMPLES = 2000


def trim_count(n: int, trim: float = TRIM) -> int:
    return int(math.floor(trim * n))


def trimmed_mean(x: Sequence[float], trim: float = TRIM) -> float:
    x = np.sort(np.asarray(x, float))
    g = trim_count(len(x), trim)
    return float(x[g:len(x) - g].mean())


def winsorized_ss(x: Sequence[float], trim: float = TRIM) -> float:
    """Sum of squared deviations of the winsorized sample: (n - 1) * winsorized variance."""
    x = np.sort(np.asarray(x, float))
    g = trim_count(len(x), trim)
    w = np.clip(x, x[g], x[len(x) - g - 1])
    return float(((w - w.mean()) ** 2).sum())


@dataclasses.dataclass
class StepsTest:
    """Outcome of the steps-to-target rule on one candidate/reference pair of samples."""

    candidate_mean: float
    reference_mean: float
    relative_difference: float
    spread: float
    t: float
    df: int
    p: float
    tolerance: float
    significant: bool
    fail: bool


def steps_test(candidate: Sequence[float], reference: Sequence[float], *, eval_every: int,
               tolerance: float, alpha: float = ALPHA, trim: float = TRIM) -> StepsTest:
    """Pooled Yuen t-test of trimmed means, failing only beyond the relative tolerance."""
    nc, nr = len(candidate), len(reference)
    hc, hr = nc - 2 * trim_count(nc, trim), nr - 2 * trim_count(nr, trim)
    mc, mr = trimmed_mean(candidate, trim), trimmed_mean(reference, trim)
    df = max(hc + hr - 2, 1)
    pooled = (winsorized_ss(candidate, trim) + winsorized_ss(reference, trim)) / df
    spread = max(math.sqrt(pooled), eval_every / math.sqrt(12.0))
    t = (mc - mr) / (spread * math.sqrt(1.0 / hc + 1.0 / hr))
    p = float(2.0 * stats.t.sf(abs(t), df))
    rel = (mc - mr) / mr
    tol = max(tolerance, eval_every / mr)
    significant = p < alpha
    return StepsTest(mc, mr, rel, spread, t, df, p, tol, significant,
                     bool(significant and abs(rel) > tol))


def steps_of(record: dict[str, Any]) -> tuple[float, bool]:
    """Steps to target of a run (a miss counts as its step budget) and whether it missed."""
    run = record["run"]
    if run["status"] == RunStatus.REACHED and run["steps_to_target"] is not None:
        return float(run["steps_to_target"]), False
    return float(run["max_steps"]), True


def convergence_fails(misses: int, n: int) -> bool:
    """At most one miss in n, and at least one run reaching the target."""
    return misses > min(MAX_MISSES, n - 1)


def false_reject_rate(ref_steps: Sequence[float], ref_missed: Sequence[bool], n_candidate: int, *,
                      eval_every: int, tolerance: float, resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """Share of resampled null draws (candidate and references both drawn from the references)
    that the convergence + steps rule rejects."""
    steps, missed = np.asarray(ref_steps, float), np.asarray(ref_missed, bool)
    rng = np.random.default_rng(seed)
    rejects = 0
    for _ in range(resamples):
        ci = rng.integers(0, len(steps), n_candidate)
        ri = rng.integers(0, len(steps), len(steps))
        if convergence_fails(int(missed[ci].sum()), n_candidate):
            rejects += 1
        elif steps_test(steps[ci], steps[ri], eval_every=eval_every, tolerance=tolerance).fail:
            rejects += 1
    upper = float(stats.beta.ppf(0.95, rejects + 1, resamples - rejects)) if rejects < resamples else 1.0
    return {"rate": rejects / resamples, "upper_95": upper, "rejects": rejects, "resamples": resamples,
            "n_candidate": n_candidate, "n_reference": len(steps),
            "method": "bootstrap: candidate and reference samples drawn with replacement "
                      "from the reference runs, convergence + steps-to-target rule applied"}
