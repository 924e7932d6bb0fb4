"""What every remote executor shares: telling trials apart in the results database, finding the
finished ones, marking lost ones interrupted, and retrying lost groups without redoing a trial.

A trial is identified by (sweep id, workload variant, submission, full hyperparameters, seed)
(`TrialKey` plus the sweep id): the same identity whichever process, host or attempt ran it.
A trial is finished when its run reached a final status (`FINISHED`); `failed` (the trial's code
raised) and `interrupted` (its process died) are not, so a re-run does them again.

Remote engines (Ray, submitit) do not know which trials of a group finished before a worker
died, so their own retries (which re-run a whole task) would duplicate finished trials. The
executors here turn those off and use `run_with_retries`, which on a lost group marks its
unfinished runs interrupted, reads back the finished ones, and resubmits only the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select

from harness.db import Database, open_database
from harness.db.models import EvalRow, Run, utcnow
from harness.experiment import TrialGroup, TrialRequest
from harness.runner import TrialResult

#: run statuses that are a trial's result; anything else (running, failed, interrupted) is redone
FINISHED = ("reached", "not_reached", "diverged")
#: how many times a lost group is resubmitted before the sweep gives up (executors' default)
DEFAULT_MAX_RETRIES = 3


class ExecutorError(RuntimeError):
    """A sweep cannot go on as asked; the message says why and what to do."""


class Lost(Exception):
    """A group's worker, node or job died before it returned (not an error in the trial code)."""


@dataclasses.dataclass(frozen=True)
class TrialKey:
    """A trial's identity within a sweep, as stored in its run row."""

    variant: str
    submission: str
    hparams: str  # canonical JSON of the full hyperparameters (submission defaults + overrides)
    seed: int


def canonical_hparams(hparams: Mapping[str, Any]) -> str:
    return json.dumps(dict(hparams), sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def _variant(workload: str) -> str:
    from workloads import get_workload

    return get_workload(workload).spec


@functools.lru_cache(maxsize=256)
def _submission(path: str) -> tuple[str, str]:
    """(name, default hyperparameters as canonical JSON) of a submission folder."""
    from harness.submissions import load_submission

    sub = load_submission(path)
    return sub.name, canonical_hparams(sub.hparams)


def trial_key(workload: str, submission: str, hparams: Mapping[str, Any], seed: int) -> TrialKey:
    """The identity a trial's run row will have: canonical variant, submission name, the
    submission's hyperparameters with `hparams` applied, seed."""
    name, defaults = _submission(str(submission))
    return TrialKey(_variant(workload), name,
                    canonical_hparams({**json.loads(defaults), **hparams}), int(seed))


def request_key(request: TrialRequest) -> TrialKey:
    return trial_key(request.workload, request.submission, request.hparams, request.seed)


def group_keys(group: TrialGroup) -> list[TrialKey]:
    return [trial_key(group.workload, group.submission, t.hparams, t.seed) for t in group.trials]


def run_key(run: Run) -> TrialKey:
    return TrialKey(run.variant, run.submission, canonical_hparams(run.hparams), run.seed)


def result_from_run(run: Run, evals: Iterable[EvalRow]) -> TrialResult:
    """The TrialResult a finished run's rows hold (NULL metrics, stored for non-finite values,
    come back as NaN)."""
    curve: dict[int, dict[str, float]] = {}
    for row in sorted(evals, key=lambda r: (r.step, r.metric)):
        curve.setdefault(row.step, {})[row.metric] = float("nan") if row.value is None else row.value
    return TrialResult(run_id=run.id, workload=run.variant, submission=run.submission,
                       seed=run.seed, status=run.status, steps_to_target=run.steps_to_target,
                       time_to_target_s=run.time_to_target_s, compile_s=run.compile_s,
                       compiles=run.compiles, train_s=run.train_s, eval_s=run.eval_s,
                       final_step=run.final_step, chunk_mode=run.chunk_mode, error=run.error,
                       evals=sorted(curve.items()))


def finished_trials(db: Database, sweep_id: str) -> dict[TrialKey, TrialResult]:
    """The finished trials of a sweep, by identity; the first finished run of each identity."""
    with db.session() as s:
        runs = s.scalars(select(Run).where(Run.sweep_id == sweep_id, Run.status.in_(FINISHED))
                         .order_by(Run.started_at, Run.id)).all()
        evals: dict[str, list[EvalRow]] = {}
        if runs:
            for row in s.scalars(select(EvalRow).join(Run).where(Run.sweep_id == sweep_id,
                                                                 Run.status.in_(FINISHED))):
                evals.setdefault(row.run_id, []).append(row)
        done: dict[TrialKey, TrialResult] = {}
        for run in runs:
            done.setdefault(run_key(run), result_from_run(run, evals.get(run.id, ())))
    return done


def pending_requests(db: Database, sweep_id: str,
                     requests: Sequence[TrialRequest]) -> list[TrialRequest]:
    """The requests of a sweep that have no finished run yet, in the order given: what a
    re-run of an interrupted sweep (same sweep id) still has to do."""
    done = finished_trials(db, sweep_id)
    return [r for r in requests if request_key(r) not in done]


def mark_lost(db: Database, sweep_id: str, keys: Iterable[TrialKey], why: str) -> list[str]:
    """Mark the still-`running` runs of these trials interrupted (their worker is gone, wherever
    it ran: this does not wait for the stale-heartbeat rule). Returns their ids."""
    wanted = set(keys)
    marked = []
    with db.session() as s:
        for run in s.scalars(select(Run).where(Run.sweep_id == sweep_id, Run.status == "running")):
            if run_key(run) in wanted:
                run.status, run.error, run.finished_at = "interrupted", why, utcnow()
                marked.append(run.id)
    return marked


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
                     max_retries: int) -> list[list[TrialResult]]:
    """Run every group through `backend`; a lost group is resubmitted (at most `max_retries`
    times) with only its trials that have no finished run, after its runs left `running` are
    marked interrupted. Results come back per group, in the groups' and trials' order."""
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

    try:
        launch([(g, list(range(len(group.trials)))) for g, group in enumerate(groups)])
        while inflight:
            handle, outcome = backend.wait_one(list(inflight))
            g, idx = inflight.pop(handle)
            if not isinstance(outcome, Lost):
                for i, result in zip(idx, outcome, strict=True):
                    results[g][i] = result
                continue
            rest = _recover(db_url, sweep_id, keys[g], idx, results[g], f"worker lost: {outcome}")
            retries[g] += 1
            if rest and retries[g] > max_retries:
                raise ExecutorError(f"group {groups[g].workload} x {groups[g].submission} was lost "
                                    f"{retries[g]} times (last: {outcome}); max_retries={max_retries}. "
                                    "Re-run the sweep with the same sweep id to finish the rest")
            if rest:
                launch([(g, rest)])
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
