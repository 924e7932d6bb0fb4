"""AlgoPerf v0.6's rulesets on the sweep engine: external tuning and self-tuning.

External tuning (the default, `EXTERNAL`: 5 trials x 3 studies):
A submission folder's `tuning_search_space.json` gives each study `trials` points: a list's first
points, or quasi-random points of the ranges (`SearchSpace.sample`) under the study's own
recorded seed `search_seed + study` (AlgoPerf draws each study's points independently). Study s
trains each point once, with trial seed s, as one sweep tagged `{tag}-study{s}` (every trial timed
alone). Per workload, a study's time is its fastest trial's time-to-target, the workload's the
median over studies (`scoring.external_tuning_times`); performance profiles then compare the
submissions scored (this one, and any `others` given as time tables) with both integrals: the
suite's exact one and AlgoPerf's trapezoid rule (harness/algoperf/scoring.py says how they differ).

Self-tuning (`SELF_TUNING`): no search space (the submission's hyperparameters are its own,
`hyperparameters=None`), one trial per study, 3 studies, and 1.5x the step budget: study s
trains each workload once with seed s, a sweep per workload whose runs are given
`budget_factor` 1.5 (`run(requests, tag, budget_factor)`: the caller multiplies the workload's
step budget). A study's time is its one trial's; the workload's the median over studies.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.algoperf import scoring
from harness.algoperf.loading import SEARCH_SPACE_FILE
from harness.algoperf.search_space import SEARCH_SEED, SearchSpace, trial_requests
from harness.spec import SpecError
from harness.submissions import resolve_submission
from harness.records.status import RunStatus


@dataclasses.dataclass(frozen=True)
class Ruleset:
    """An AlgoPerf ruleset: trials per study and studies (defaults), the step-budget factor,
    and whether the submission's search space is tuned."""

    name: str
    trials: int
    studies: int
    budget_factor: float
    tuned: bool


EXTERNAL = Ruleset("external-tuning", trials=5, studies=3, budget_factor=1.0, tuned=True)
SELF_TUNING = Ruleset("self-tuning", trials=1, studies=3, budget_factor=1.5, tuned=False)
RULESETS = {r.name: r for r in (EXTERNAL, SELF_TUNING)}


def budget_steps(workload: str, max_steps: int | None, factor: float) -> int:
    """A ruleset's step budget on `workload` (a variant spec): factor x (max_steps, else the
    workload's own max_steps), rounded up."""
    from workloads import get_workload

    base = get_workload(workload).max_steps if max_steps is None else max_steps
    return math.ceil(factor * base)


def ruleset(name: str) -> Ruleset:
    """The ruleset called `name`; SpecError naming the valid ones otherwise."""
    if name not in RULESETS:
        raise SpecError(f"--ruleset {name!r}: valid: {', '.join(RULESETS)}")
    return RULESETS[name]


@dataclasses.dataclass(frozen=True)
class TrialTime:
    """One tuning trial: its study, search point and run, and its time-to-target (None: missed)."""

    study: int
    point: int
    workload: str
    run_id: str
    status: str
    hparams: dict[str, Any]
    time_s: float | None


@dataclasses.dataclass
class TuningResult:
    """What `tune` measured: every trial, per workload the time of each study and their median,
    and the score of each submission compared under both integrals."""

    submission: str
    timing: str
    ruleset: str
    studies: int
    trials_per_study: int
    search_seed: int
    trials: list[TrialTime]
    study_times: dict[str, list[float]]
    times: dict[str, dict[str, float]]
    suite_scores: dict[str, float]
    algoperf_scores: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def search_space(folder: Path) -> SearchSpace:
    """The folder's tuning_search_space.json; SpecError when it has none."""
    file = Path(folder) / SEARCH_SPACE_FILE
    if not file.is_file():
        raise SpecError(f"{folder} has no {SEARCH_SPACE_FILE}: tuning needs AlgoPerf's search "
                        "space (an hparams.json submission has one fixed point: use `score`)")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise SpecError(f"{file}: not valid JSON ({e})") from None
    return SearchSpace.from_json(data, str(file))


def tune(submission: str, workloads: Sequence[str], trials: int, studies: int,
         run: Callable[..., Any], *, timing: str = "algoperf",
         search_seed: int = SEARCH_SEED,
         others: Mapping[str, Mapping[str, float]] | None = None,
         rules: Ruleset = EXTERNAL) -> TuningResult:
    """Run a ruleset (`EXTERNAL` or `SELF_TUNING`); `run(requests, tag)` runs one study's
    TrialRequests as a sweep (harness.experiment.run_sweep, timed alone) and returns its
    SweepResult; under self-tuning it is called once per study and workload as
    `run(requests, tag, budget_factor)`.
    timing: "algoperf" (AlgoPerf's time-to-target, the ruleset's) or "training"."""
    if not rules.tuned:
        return _self_tune(submission, workloads, studies, run, timing, others, rules)
    if trials < 1 or studies < 1:
        raise SpecError(f"--trials ({trials}) and --studies ({studies}) must be >= 1")
    if timing not in ("algoperf", "training"):
        raise SpecError(f"timing {timing!r}: valid: algoperf, training")
    if not workloads:
        raise SpecError("give at least one workload (--workloads)")
    space = search_space(resolve_submission(submission))
    name = Path(submission).name
    rows: list[TrialTime] = []
    per_study: dict[str, list[list[float | None]]] = {w: [] for w in workloads}
    for study in range(studies):
        requests = [r for w in workloads
                    for r in trial_requests(w, submission, space, trials, [study], search_seed + study)]
        result = run(requests, f"study{study}")
        if len(result.trials) != len(requests):
            raise SpecError(f"{SEARCH_SPACE_FILE} of {name} repeats a point, so study {study} ran "
                            f"{len(result.trials)} of {len(requests)} trials: list distinct points")
        times: dict[str, list[float | None]] = {w: [] for w in workloads}
        for i, (request, outcome) in enumerate(zip(requests, result.trials)):
            r = outcome.result
            t = r.algoperf_time_to_target_s if timing == "algoperf" else r.time_to_target_s
            t = t if r.status == RunStatus.REACHED else None
            times[request.workload].append(t)
            rows.append(TrialTime(study=study, point=i % trials, workload=request.workload,
                                  run_id=r.run_id, status=r.status, hparams=dict(outcome.hparams),
                                  time_s=t))
        for w in workloads:
            per_study[w].append(times[w])
    table = {name: scoring.external_tuning_times({name: per_study})[name], **(others or {})}
    return TuningResult(
        submission=name, timing=timing, ruleset=rules.name, studies=studies, trials_per_study=trials,
        search_seed=search_seed, trials=rows,
        study_times={w: [scoring.study_time(s) for s in per_study[w]] for w in workloads},
        times=table, suite_scores=_suite_scores(table, workloads),
        algoperf_scores=scoring.algoperf_scores(table, list(workloads)))


def _trial_time(result: Any, timing: str) -> float | None:
    t = result.algoperf_time_to_target_s if timing == "algoperf" else result.time_to_target_s
    return t if result.status == RunStatus.REACHED else None


def _self_tune(submission: str, workloads: Sequence[str], studies: int, run: Callable[..., Any],
               timing: str, others: Mapping[str, Mapping[str, float]] | None,
               rules: Ruleset) -> TuningResult:
    """The self-tuning ruleset (module docstring): one trial per study and workload."""
    from harness.records.sweep import TrialRequest

    if studies < 1:
        raise SpecError(f"--studies ({studies}) must be >= 1")
    if timing not in ("algoperf", "training"):
        raise SpecError(f"timing {timing!r}: valid: algoperf, training")
    if not workloads:
        raise SpecError("give at least one workload (--workloads)")
    folder = resolve_submission(submission)
    present = [f for f in ("hparams.json", SEARCH_SPACE_FILE) if (folder / f).is_file()]
    if present:
        raise SpecError(f"the self-tuning ruleset runs submissions without hyperparameters; "
                        f"{folder.name} has {present[0]} (use the external-tuning ruleset)")
    name = Path(submission).name
    rows: list[TrialTime] = []
    per_study: dict[str, list[list[float | None]]] = {w: [] for w in workloads}
    for study in range(studies):
        for w in workloads:
            request = TrialRequest(workload=w, submission=submission, hparams={}, seed=study)
            (outcome,) = run([request], f"study{study}", rules.budget_factor).trials
            t = _trial_time(outcome.result, timing)
            per_study[w].append([t])
            rows.append(TrialTime(study=study, point=0, workload=w, run_id=outcome.result.run_id,
                                  status=outcome.result.status, hparams={}, time_s=t))
    table = {name: scoring.external_tuning_times({name: per_study})[name], **(others or {})}
    return TuningResult(
        submission=name, timing=timing, ruleset=rules.name, studies=studies, trials_per_study=1,
        search_seed=0, trials=rows,
        study_times={w: [scoring.study_time(s) for s in per_study[w]] for w in workloads},
        times=table, suite_scores=_suite_scores(table, workloads),
        algoperf_scores=scoring.algoperf_scores(table, list(workloads)))


def _suite_scores(times: Mapping[str, Mapping[str, float]], workloads: Sequence[str]) -> dict[str, float]:
    from harness.score import performance_profile_scores

    return performance_profile_scores(times, workloads)
