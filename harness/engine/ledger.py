"""A trial's ledger: its TrialResult and its database rows, written as the trial runs.

The run row is written when the trial starts (everything needed to reproduce and compare it),
eval rows with the training losses before each as segments finish (one transaction per
segment, so evaluating every step costs no commit per step), and the outcome when it stops.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import numpy as np

from harness import checkpoint, environment, interrupt, progress
from harness.algoperf.hooks import PREPARE_RNG_DERIVATION
from harness.db.database import EvalWrite
from harness.db.models import utcnow
from harness.engine.context import GroupContext
from harness.progress import Phase
from harness.records.status import RunOrigin, RunStatus
from harness.records.trial import RNG_DERIVATION, TrialResult, TrialSpec

if TYPE_CHECKING:
    from harness.db import Database


class TrialLedger:
    """One trial's host-side record: its TrialResult, its database rows, pending losses."""

    def __init__(self, result: TrialResult, db: Database | None, split: str,
                 on_eval: Callable[[int, dict[str, float]], None] | None, *,
                 index: int | None = None):
        self.result, self.db, self.split, self.on_eval = result, db, split, on_eval
        #: the trial's index in the group, named in its harness.progress events (None: none)
        self.index = index
        self.pending: list[np.ndarray] = []
        self.queued: list[EvalWrite] = []
        self.pending_start = 0
        self.t_start = time.perf_counter()

    @property
    def running(self) -> bool:
        return self.result.status == RunStatus.RUNNING

    def losses(self, values: np.ndarray) -> None:
        self.pending.append(np.asarray(values, np.float32))

    def record(self, trial: TrialSpec) -> checkpoint.TrialRecord:
        """This trial's part of a checkpoint; its pending losses are written first."""
        if self.db is not None and (rest := self._flush()) is not None:
            self.db.add_losses(self.result.run_id, *rest)
        return checkpoint.TrialRecord(trial={"seed": trial.seed, "hparams": dict(trial.hparams),
                                             "knobs": dict(trial.knobs)},
                                      result=dataclasses.asdict(self.result),
                                      losses_from=self.pending_start,
                                      wall_s=time.perf_counter() - self.t_start)

    def _flush(self) -> tuple[int, np.ndarray] | None:
        if not self.pending:
            return None
        values = np.concatenate(self.pending)
        start, self.pending_start = self.pending_start, self.pending_start + values.size
        self.pending.clear()
        return start, values

    def evaluated(self, step: int, metrics: dict[str, float], reached: bool, train_s: float) -> None:
        r = self.result
        r.evals.append((step, metrics))
        r.train_s = train_s
        if reached and r.steps_to_target is None:
            r.steps_to_target, r.time_to_target_s = step, train_s
        if self.db is not None:
            self.queued.append(EvalWrite(step, metrics, wall_s=time.perf_counter() - self.t_start,
                                         train_s=train_s, losses=self._flush()))
        if self.on_eval is not None:
            self.on_eval(step, metrics)

    def write(self) -> None:
        """Write the queued evals (and the losses before each) in one transaction: the runner
        calls this after each compiled segment, whose every-step evals would otherwise cost
        one commit each."""
        r = self.result
        if self.db is not None and self.queued:
            self.db.add_evals(r.run_id, self.split, self.queued, final_step=self.queued[-1].step,
                              steps_to_target=r.steps_to_target,
                              time_to_target_s=r.time_to_target_s)
        self.queued.clear()

    def finish(self, status: RunStatus, error: str | None, compile_s: float, compiles: int) -> None:
        """Record the outcome. AlgoPerf's time-to-target of a trial in compiled chunks is its
        training time plus the compilation (concrete-step trials set it as they go). From the
        moment the outcome is set until its row is written a Ctrl-C waits (interrupt.deferred):
        cut in between, the trial would no longer be running, yet its row would say it is."""
        self.write()
        r = self.result
        trials = () if self.index is None else (self.index,)
        with interrupt.deferred():
            r.status, r.error, r.compile_s, r.compiles = status, error, compile_s, compiles
            if r.algoperf_time_to_target_s is None and r.time_to_target_s is not None:
                r.algoperf_time_to_target_s = r.time_to_target_s + compile_s
            if self.db is not None:
                progress.emit(Phase.WRITING, trials, step=r.final_step)
                self._write_outcome(r, status, error)
        progress.emit(Phase.DONE, trials, step=r.final_step, status=status,
                      target_step=r.steps_to_target, error=error)

    def _write_outcome(self, r: TrialResult, status: RunStatus, error: str | None) -> None:
        """The trial's last losses and its outcome in its run row."""
        if (rest := self._flush()) is not None:
            self.db.add_losses(r.run_id, *rest)
        self.db.update_run(r.run_id, status=status, error=error, compile_s=r.compile_s,
                           compiles=r.compiles, train_s=r.train_s, eval_s=r.eval_s,
                           final_step=r.final_step, steps_to_target=r.steps_to_target,
                           time_to_target_s=r.time_to_target_s,
                           algoperf_time_to_target_s=r.algoperf_time_to_target_s,
                           finished_at=utcnow())


def start_ledger(ctx: GroupContext, index: int, group_size: int, mode: str, note: str | None,
           concrete: str | None = None) -> TrialLedger:
    w, sub, trial = ctx.workloads[index], ctx.submission, ctx.trials[index]
    hparams = ctx.hparams[index]
    hooks = sub.capabilities.eval_hooks
    # the folder's search point, when these are its hyperparameters (a sweep may override them)
    point = sub.search_point if dict(hparams) == dict(sub.hparams) else None
    ignored = (sub.module.ignored_hparams(w, hparams) or None) if sub.capabilities.eval_hooks else None
    result = TrialResult(run_id=str(uuid.uuid4()), workload=w.spec, submission=sub.name,
                         seed=trial.seed, chunk_mode=mode, group_size=group_size,
                         vectorise_note=note, hparams=dict(hparams), concrete_reason=concrete,
                         search_point=None if point is None else tuple(point),
                         ignored_hparams=ignored)
    if ctx.db is not None:
        if ctx.env is None:
            ctx.env = environment.fingerprint()
        env, o = ctx.env, ctx.options
        ctx.db.start_run(
            id=result.run_id, workload=w.name, variant=w.spec, workload_version=w.version,
            submission=sub.name, submission_path=str(sub.path), submission_hash=sub.code_hash,
            hparams=hparams, seed=trial.seed,
            rng_derivation=(f"{RNG_DERIVATION}; {PREPARE_RNG_DERIVATION}" if hooks
                            else RNG_DERIVATION),
            search_point=None if point is None else {"k": int(point[0]), "seed": int(point[1])},
            ignored_hparams=ignored,
            batch_size=ctx.batch_size, max_steps=ctx.resolved.max_steps,
            eval_every=ctx.resolved.eval_every, chunk_mode=mode,
            data_source=ctx.dataset.source, data_fingerprint=ctx.dataset.fingerprint,
            jax_version=env["jax_version"], jaxlib_version=env["jaxlib_version"],
            backend=env["backend"], device_kind=env["device_kind"], xla_flags=env["xla_flags"],
            git_commit=env["git_commit"], environment=env, status=RunStatus.RUNNING,
            host=socket.gethostname(), pid=os.getpid(), origin=RunOrigin(o.origin),
            tag=o.tag, sweep_id=o.sweep_id, group_size=group_size,
            stop_at_target=o.stop_at_target, divergence_factor=o.divergence_factor)
    on_eval = None if ctx.on_eval is None else (lambda s, m, i=index: ctx.on_eval(i, s, m))
    return TrialLedger(result, ctx.db, w.target.split, on_eval, index=index)


def resumed_ledger(ctx: GroupContext, index: int, saved: checkpoint.Saved, record: checkpoint.TrialRecord
             ) -> TrialLedger:
    """A trial's ledger as a checkpoint left it. A trial still running then is running again
    (same run id, this process's pid, started_at now: what tells a live run from a dead one),
    and the rows its killed process wrote after the checkpoint are deleted."""
    fields = dict(record.result)
    fields["evals"] = [(int(step), metrics) for step, metrics in fields["evals"]]
    if fields["search_point"] is not None:
        fields["search_point"] = tuple(fields["search_point"])
    result = TrialResult(**fields)
    on_eval = None if ctx.on_eval is None else (lambda s, m, i=index: ctx.on_eval(i, s, m))
    ledger = TrialLedger(result, ctx.db, ctx.workload.target.split, on_eval, index=index)
    ledger.pending_start = record.losses_from
    ledger.t_start = time.perf_counter() - record.wall_s
    if ledger.running:
        result.resumed_from_step = saved.step
        if ctx.db is not None:
            checkpoint.discard_after(ctx.db, result.run_id, saved.step, record.losses_from)
            ctx.db.update_run(result.run_id, status=RunStatus.RUNNING, error=None, finished_at=None,
                              host=socket.gethostname(), pid=os.getpid(), started_at=utcnow(),
                              resumed_from_step=saved.step, final_step=result.final_step,
                              steps_to_target=result.steps_to_target,
                              time_to_target_s=result.time_to_target_s, train_s=result.train_s)
    return ledger


def versions(ctx: GroupContext) -> dict[str, str]:
    """What a checkpoint's state depends on besides the trials: resumed only where all agree."""
    return {"workload_version": ctx.workload.version, "submission_hash": ctx.submission.code_hash,
            "data_fingerprint": ctx.dataset.fingerprint, "backend": jax.default_backend(),
            "chunk_mode": ctx.mode}


