"""The experiment layer: a sweep is a list of trials; trials that share a compiled shape form a
group, the unit of work an executor runs (in this process, or on a cluster's workers).

A trial is (workload variant, submission, hyperparameters, seed). `plan_groups` puts trials of
the same variant, submission and batch size into one group; `execute_group` runs one group in
any process that can open the results database, so a group is all a remote worker needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from harness.runner import TrialOptions, TrialResult, TrialSpec


@dataclasses.dataclass(frozen=True)
class TrialRequest:
    """One cell x seed of a grid, before anything is loaded."""

    workload: str
    submission: str
    hparams: Mapping[str, Any]
    seed: int


@dataclasses.dataclass(frozen=True)
class TrialGroup:
    """Trials of one workload variant and submission with the same batch size: one compiled
    program. Plain data (strings, numbers, dicts), so it can be sent to another process."""

    workload: str
    submission: str
    trials: tuple[TrialSpec, ...]
    options: TrialOptions = TrialOptions()
    data_dir: str | None = None
    data_source: str | None = None


def _batch_key(hparams: Mapping[str, Any]) -> Any:
    return hparams.get("batch_size")


def plan_groups(requests: Sequence[TrialRequest], options: TrialOptions = TrialOptions(), *,
                data_dir: str | None = None, data_source: str | None = None) -> list[TrialGroup]:
    """Group trial requests by (variant, submission, batch size), keeping first-seen order."""
    groups: dict[tuple, list[TrialSpec]] = {}
    for r in requests:
        key = (r.workload, r.submission, _batch_key(r.hparams))
        groups.setdefault(key, []).append(TrialSpec(seed=r.seed, hparams=dict(r.hparams)))
    return [TrialGroup(workload=w, submission=s, trials=tuple(trials), options=options,
                       data_dir=data_dir, data_source=data_source)
            for (w, s, _), trials in groups.items()]


def execute_group(group: TrialGroup, db_url: str | None, *,
                  on_eval: Callable[[int, int, dict[str, float]], None] | None = None
                  ) -> list[TrialResult]:
    """Load what the group needs and run it, writing every trial's rows to `db_url`."""
    from harness.db import open_database
    from harness.runner import run_group
    from harness.submissions import load_submission
    from workloads import get_workload

    workload = get_workload(group.workload)
    submission = load_submission(group.submission)
    dataset = workload.load_data(group.data_dir, group.data_source)
    db = open_database(db_url) if db_url is not None else None
    return run_group(workload, submission, dataset, group.trials, db=db, options=group.options,
                     on_eval=on_eval)


class Executor(Protocol):
    """Runs groups somewhere and hands back each group's results, in the order given."""

    def run(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[list[TrialResult]]:
        ...


class LocalExecutor:
    """Every group in this process, one after the other."""

    def run(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[list[TrialResult]]:
        return [execute_group(g, db_url) for g in groups]
