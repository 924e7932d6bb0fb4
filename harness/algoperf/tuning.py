"""AlgoPerf's external-tuning ruleset on the sweep engine.

A submission folder's `tuning_search_space.json` gives each study `trials` points: a list's first
points, or quasi-random points of the ranges (`SearchSpace.sample`) under the study's own
recorded seed `search_seed + study` (AlgoPerf draws each study's points independently). Study s
trains each point once, with trial seed s, as one sweep tagged `{tag}-study{s}` (every trial timed
alone). Per workload, a study's time is its fastest trial's time-to-target, the workload's the
median over studies (`scoring.external_tuning_times`); performance profiles then compare the
submissions scored (this one, and any `others` given as time tables) with both integrals: the
suite's exact one and AlgoPerf's trapezoid rule (harness/algoperf/scoring.py says how they differ).
"""

from __future__ import annotations

import dataclasses
import json
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
         run: Callable[[list, str], Any], *, timing: str = "algoperf",
         search_seed: int = SEARCH_SEED,
         others: Mapping[str, Mapping[str, float]] | None = None) -> TuningResult:
    """Run the external-tuning ruleset; `run(requests, tag)` runs one study's TrialRequests as a
    sweep (harness.experiment.run_sweep, timed alone) and returns its SweepResult.
    timing: "algoperf" (AlgoPerf's time-to-target, the ruleset's) or "training"."""
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
        submission=name, timing=timing, studies=studies, trials_per_study=trials,
        search_seed=search_seed, trials=rows,
        study_times={w: [scoring.study_time(s) for s in per_study[w]] for w in workloads},
        times=table, suite_scores=_suite_scores(table, workloads),
        algoperf_scores=scoring.algoperf_scores(table, list(workloads)))


def _suite_scores(times: Mapping[str, Mapping[str, float]], workloads: Sequence[str]) -> dict[str, float]:
    from harness.score import performance_profile_scores

    return performance_profile_scores(times, workloads)
