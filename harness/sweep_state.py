"""A sweep's state in the results database: telling trials apart, finding the finished ones,
marking lost ones interrupted. Used by `run_sweep --resume` and by every remote executor.

A trial is identified by (sweep id, workload variant, submission, full hyperparameters, seed)
(`TrialKey` plus the sweep id): the same identity whichever process, host or attempt ran it.
A trial is finished when its run reached a final status (`FINISHED`); `failed` (the trial's code
raised) and `interrupted` (its process died) are not, so a re-run does them again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from harness.db import Database
from harness.db.models import EvalRow, Run, utcnow
from harness.records.status import FINISHED, RunStatus
from harness.records.sweep import TrialGroup, TrialRequest
from harness.records.trial import TrialResult
from harness.submissions import load_submission
from workloads import get_workload


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
    return get_workload(workload).spec


@functools.lru_cache(maxsize=256)
def _submission(path: str) -> tuple[str, str]:
    """(name, default hyperparameters as canonical JSON) of a submission folder."""
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
    return [trial_key(_trial_variant(group.workload, json.dumps(dict(t.knobs), sort_keys=True)),
                      group.submission, t.hparams, t.seed) for t in group.trials]


@functools.lru_cache(maxsize=256)
def _trial_variant(workload: str, knobs: str) -> str:
    """The variant a group's trial trains: the group's, with the trial's runtime knobs."""
    w = get_workload(workload)
    return type(w)(**{**w.variant, **json.loads(knobs)}).spec


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
                       group_size=run.group_size, compile_cache_hit=run.compile_cache_hit,
                       hparams=dict(run.hparams), evals=sorted(curve.items()))


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
        for run in s.scalars(select(Run).where(Run.sweep_id == sweep_id, Run.status == RunStatus.RUNNING)):
            if run_key(run) in wanted:
                run.status, run.error, run.finished_at = RunStatus.INTERRUPTED, why, utcnow()
                marked.append(run.id)
    return marked
