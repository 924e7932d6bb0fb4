"""What a sweep is and what it produced: trial requests, groups (the unit an executor runs),
outcomes, per-cell summaries and the events a sweep reports as it goes. Plain data: a group
can be sent to another process."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from harness.progress import Phase, PhaseChange
from harness.records.status import RunStatus
from harness.records.trial import TrialOptions, TrialResult, TrialSpec


def median_or_inf(values: Iterable[float | None]) -> float:
    """Median with None (a miss) counted as +inf; +inf when there are no values. The one rule
    for medians of per-trial figures (steps, times) over seeds."""
    values = [math.inf if v is None else v for v in values]
    return statistics.median(values) if values else math.inf


def median_or_none(values: Iterable[float | None]) -> float | None:
    """`median_or_inf`, with None where the median is a miss (or there are no values)."""
    m = median_or_inf(values)
    return None if math.isinf(m) else m


@dataclasses.dataclass(frozen=True)
class TrialRequest:
    """One cell x seed of a grid, before anything is loaded. `hparams` are overrides of the
    submission's defaults (names it declares); the full set is the result's."""

    workload: str
    submission: str
    hparams: Mapping[str, Any]
    seed: int


@dataclasses.dataclass(frozen=True)
class CurvatureRequest:
    """Curvature snapshots for every trial of a group, as plain data: `config` holds
    harness.curvature.SnapshotConfig's fields, `every` the snapshot schedule SPEC."""

    config: Mapping[str, Any]
    every: str


@dataclasses.dataclass(frozen=True)
class TrialGroup:
    """Trials of one workload variant (or of variants differing only in runtime knobs, each
    trial naming its own: TrialSpec.knobs) and submission with the same batch size: one compiled
    program. Plain data (strings, numbers, dicts), so it can be sent to another process.
    `compile_cache`: the persistent compilation cache option (harness.compile_cache.resolve;
    None: the environment's or the default directory)."""

    workload: str
    submission: str
    trials: tuple[TrialSpec, ...]
    options: TrialOptions = TrialOptions()
    data_dir: str | None = None
    data_source: str | None = None
    curvature: CurvatureRequest | None = None
    compile_cache: str | None = None
    #: harness.guards already judged this group with its data loaded (run_sweep's preflight)
    checked: bool = False


@dataclasses.dataclass
class TrialOutcome:
    """A finished trial of a sweep: what was asked (`request`: overrides only) and what it
    measured and how it ran (`result`, the engine's own record: full hyperparameters, the
    trials in its compiled program, whether its programs came from the persistent cache)."""

    request: TrialRequest
    result: TrialResult
    sweep_id: str

    @property
    def hparams(self) -> dict[str, Any]:
        """The full hyperparameters: the submission's defaults with the request's overrides."""
        return self.result.hparams

    @property
    def group_size(self) -> int:
        return self.result.group_size

    @property
    def compile_cache_hit(self) -> bool | None:
        return self.result.compile_cache_hit

    def to_json(self) -> dict[str, Any]:
        return {**self.result.to_json(), "sweep_id": self.sweep_id}


@dataclasses.dataclass(frozen=True)
class CellSummary:
    """One grid cell (variant, submission, hparams) over its seeds. Steps over the trials
    that reached the target; the median time over all, a miss counting as infinite (so it
    is None when half or more missed)."""

    workload: str
    submission: str
    hparams: dict[str, Any]
    seeds: int
    reached: int
    median_steps: float | None
    min_steps: int | None
    max_steps: int | None
    median_time_s: float | None
    group_sizes: tuple[int | None, ...]


@dataclasses.dataclass
class SweepResult:
    """Every trial of a sweep in request order (duplicates of an earlier request dropped)."""

    sweep_id: str
    name: str | None
    trials: list[TrialOutcome]
    dropped_duplicates: int = 0

    def cells(self) -> list[CellSummary]:
        by_cell: dict[tuple, list[TrialOutcome]] = {}
        for t in self.trials:
            key = (t.result.workload, t.result.submission, json.dumps(t.hparams, sort_keys=True))
            by_cell.setdefault(key, []).append(t)
        out = []
        for (workload, submission, _), trials in by_cell.items():
            steps = [t.result.steps_to_target for t in trials if t.result.status == RunStatus.REACHED]
            out.append(CellSummary(
                workload=workload, submission=submission, hparams=trials[0].hparams,
                seeds=len(trials), reached=len(steps),
                median_steps=median_or_none([t.result.steps_to_target if t.result.status == RunStatus.REACHED
                                              else None for t in trials]),
                min_steps=min(steps, default=None), max_steps=max(steps, default=None),
                median_time_s=median_or_none([t.result.time_to_target_s if t.result.status == RunStatus.REACHED
                                               else None for t in trials]),
                group_sizes=tuple(sorted({t.group_size for t in trials}, key=lambda g: g or 0))))
        return out


@dataclasses.dataclass(frozen=True)
class GroupStarted:
    """A group is about to run (remote executors: handed over, every group at once): its
    index and the requests it holds, in its trial order."""

    index: int
    group: TrialGroup
    requests: tuple[TrialRequest, ...]


@dataclasses.dataclass(frozen=True)
class TrialEvaluated:
    """One eval of one trial (only from executors that report evals, e.g. the local one)."""

    group_index: int
    request: TrialRequest
    step: int
    metrics: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class TrialPhase:
    """One trial entered a phase (harness.progress; only from executors that report phases,
    e.g. the local one): `change` holds the phase and its step, snapshot or outcome."""

    group_index: int
    request: TrialRequest
    change: PhaseChange


@dataclasses.dataclass(frozen=True)
class SweepPhase:
    """The sweep itself is in a phase before any group runs (loading a workload's data to
    check it is there); `detail` says what (the workload variant)."""

    phase: Phase
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class GroupFinished:
    """A group's trials are finished, their rows written."""

    index: int
    outcomes: tuple[TrialOutcome, ...]


SweepEvent = SweepPhase | GroupStarted | TrialEvaluated | TrialPhase | GroupFinished


class GroupEvents(Protocol):
    """What an executor reports of the groups it runs, by group index (and trial index within
    the group), as it happens: every executor reports each group's start and finish; one that
    runs groups in this process also reports evals and phase changes."""

    def started(self, index: int) -> None: ...

    def evaluated(self, index: int, trial: int, step: int, metrics: Mapping[str, float]) -> None: ...

    def phase(self, index: int, change: PhaseChange) -> None: ...

    def finished(self, index: int, results: list[TrialResult]) -> None: ...
