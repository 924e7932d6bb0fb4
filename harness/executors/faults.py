"""What every remote executor shares: retrying lost groups without redoing a trial (trial
identity, finished and pending trials, marking lost runs: `harness.sweep_state`).

Remote engines (Ray, submitit) do not know which trials of a group finished before a worker
died, so their own retries (which re-run a whole task) would duplicate finished trials. The
executors here turn those off and use `run_with_retries`, which on a lost group marks its
unfinished runs interrupted, reads back the finished ones, and resubmits only the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Protocol

from harness.db import open_database
from harness.errors import ExecutorError
from harness.records.sweep import GroupEvents, TrialGroup
from harness.records.trial import TrialResult
from harness.sweep_state import TrialKey, finished_trials, group_keys, mark_lost

#: how many times a lost group is resubmitted before the sweep gives up (executors' default)
DEFAULT_MAX_RETRIES = 3


class Lost(Exception):
    """A group's worker, node or job died before it returned (not an error in the trial code)."""


class Backend(Protocol):
    """How an executor hands groups to its engine and hears back."""

    def submit(self, groups: Sequence[TrialGroup], db_url: str | None) -> list[Hashable]:
        """Start every group; one handle per group, in order."""

    def wait_one(self, handles: Sequence[Hashable]) -> tuple[Hashable, list[TrialResult] | Lost]:
        """Block until one of `handles` is done: its results, or Lost. An error in the trial
        code is raised."""

    def cancel(self, handles: Sequence[Hashable]) -> None:
        """Stop whatever of `handles` still runs (best effort)."""


def sweep_id_of(groups: Sequence[TrialGroup]) -> str | None:
    ids = {g.options.sweep_id for g in groups}
    if len(ids) > 1:
        raise ExecutorError(f"groups of one executor call belong to several sweeps {sorted(map(str, ids))}; "
                            "run each sweep on its own")
    return next(iter(ids), None)


def run_with_retries(backend: Backend, groups: Sequence[TrialGroup], db_url: str | None, *,
                     max_retries: int, events: GroupEvents | None = None
                     ) -> list[list[TrialResult]]:
    """Run every group through `backend`; a lost group is resubmitted (at most `max_retries`
    times) with only its trials that have no finished run, after its runs left `running` are
    marked interrupted. Results come back per group, in the groups' and trials' order;
    `events` hears of each group when it is handed over and when all its trials are back."""
    if max_retries < 0:
        raise ExecutorError(f"max_retries must be >= 0, got {max_retries}")
    sweep_id = sweep_id_of(groups)
    if db_url is not None and sweep_id is None and max_retries > 0:
        raise ExecutorError("retrying lost groups needs the sweep id (TrialOptions.sweep_id) to find "
                            "their finished trials: run through run_sweep, or pass max_retries=0")
    keys = [group_keys(g) if db_url is not None else [] for g in groups]
    results: list[list[TrialResult | None]] = [[None] * len(g.trials) for g in groups]
    retries = [0] * len(groups)
    inflight: dict[Hashable, tuple[int, list[int]]] = {}

    def launch(items: list[tuple[int, list[int]]]) -> None:
        parts = [dataclasses.replace(groups[g], trials=tuple(groups[g].trials[i] for i in idx))
                 for g, idx in items]
        for handle, item in zip(backend.submit(parts, db_url), items, strict=True):
            inflight[handle] = item

    def collected(g: int) -> None:
        if events is not None and all(r is not None for r in results[g]):
            events.finished(g, list(results[g]))

    try:
        launch([(g, list(range(len(group.trials)))) for g, group in enumerate(groups)])
        for g in range(len(groups)) if events is not None else ():
            events.started(g)
        while inflight:
            handle, outcome = backend.wait_one(list(inflight))
            g, idx = inflight.pop(handle)
            if not isinstance(outcome, Lost):
                for i, result in zip(idx, outcome, strict=True):
                    results[g][i] = result
                collected(g)
                continue
            rest = _recover(db_url, sweep_id, keys[g], idx, results[g], f"worker lost: {outcome}")
            retries[g] += 1
            if rest and retries[g] > max_retries:
                raise ExecutorError(f"group {groups[g].workload} x {groups[g].submission} was lost "
                                    f"{retries[g]} times (last: {outcome}); max_retries={max_retries}. "
                                    "Re-run the sweep with the same sweep id to finish the rest")
            if rest:
                launch([(g, rest)])
            else:
                collected(g)
    except BaseException:
        backend.cancel(list(inflight))
        if db_url is not None and sweep_id is not None and inflight:
            lost = [keys[g][i] for g, idx in inflight.values() for i in idx]
            mark_lost(open_database(db_url), sweep_id, lost, "sweep driver stopped")
        raise
    return [list(r) for r in results]  # type: ignore[arg-type]


def _recover(db_url: str | None, sweep_id: str | None, keys: list[TrialKey], idx: list[int],
             results: list[TrialResult | None], why: str) -> list[int]:
    """After a lost attempt on trials `idx`: mark their running runs interrupted, take the
    finished ones' results from the database, return the indices still to run."""
    if db_url is None or sweep_id is None:
        return idx
    db = open_database(db_url)
    mark_lost(db, sweep_id, (keys[i] for i in idx), why)
    done = finished_trials(db, sweep_id)
    rest = []
    for i in idx:
        if keys[i] in done:
            results[i] = done[keys[i]]
        else:
            rest.append(i)
    return rest
