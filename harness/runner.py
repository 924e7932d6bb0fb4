"""Run trials: a group of trials that share a compiled shape, or one trial alone.

A trial is workload variant x submission (+hparams) x seed. `run_group` plans the group's
compiled programs (harness/vectorised.py runs them) and writes every trial's rows as they
happen: the run row when it starts, an eval row (with the training losses since the last
one) per eval, the outcome when it stops. Compile time is measured separately
(ahead-of-time compilation), so time-to-target counts training (and in-loop evaluation) only.

Planning: trials whose non-numeric hyperparameters agree share one program, their seeds and
numeric hyperparameters vmapped. A submission that needs a numeric hyperparameter as a
Python value while tracing (`if hparams["warmup"]:`, `int(hparams["steps"])`) cannot take it
traced: its trials fall back to one program per distinct hyperparameter set (seeds still
vmapped), with the reason in each TrialResult and a log line. `max_group_size` caps the
trials per program; programs are shared by the pieces they are cut into, so trials run
one after the other (max_group_size=1) still compile once.

AlgoPerf-format submissions (harness/algoperf) get AlgoPerf's runner hooks, as
harness/algoperf/hooks.py specifies: their trials are grouped by their full hyperparameter
point, passed as static Python values (the adapter keeps the optimizer's Python objects outside
the traced state, so a program holds seeds of one point). A submission that needs a concrete
Python int `global_step` (it branches on it, reads eval_results/train_state, raises
TrainingCompleteError) is found by tracing one step (`NeedsConcreteStep`); it and a submission
with `prepare_for_eval` run in concrete-step mode (`ConcreteSteps`, chunk_mode "concrete", the
reason in TrialResult.concrete_reason) with host evaluation: prepare_for_eval (timed) before
each eval, eval_results handed back after it, TrainingCompleteError ending the trial with a
final eval. Both times are kept: the suite's training-only time_to_target_s and AlgoPerf's
(training + its compilation + prepare_for_eval), algoperf_time_to_target_s, for every trial
(a suite submission's is its training time plus its program's compilation).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness import checkpoint, environment, guards, progress
from harness.progress import Phase
from harness.algoperf.adapter import AlgoPerfSubmission, NeedsConcreteStep
from harness.algoperf.hooks import (PREPARE_RNG_DERIVATION, AlgoPerfClock, ConcreteSteps,
                                    record_eval, timed_prepare_for_eval)
from harness.data.prefetch import prefetch
from harness.db import Database
from harness.db.database import EvalWrite
from harness.db.models import RunOrigin, utcnow
from harness.spec import Dataset, SpecError, Workload
from harness.submissions import Submission, apply_overrides
from harness.trial import (CHUNK_MODES, DIVERGENCE_FACTOR, HOST_CHUNK_STEPS, HOST_PREFETCH,
                           RNG_DERIVATION, CompileCache, TrialOptions, TrialResult, TrialSpec,
                           pick_chunk_mode, trial_keys)
from harness.vectorised import (EVAL_IN_LOOP_MAX_BYTES, SEGMENT_STEPS, Batching, Carry, Options,
                                Program,
                                Stop, hparam_arrays, stacked_eval_data, take, traced_names)

__all__ = ["CHUNK_MODES", "DIVERGENCE_FACTOR", "HOST_CHUNK_STEPS", "HOST_PREFETCH",
           "RNG_DERIVATION", "CompileCache", "Evaluator", "TrialOptions", "TrialResult", "TrialSpec",
           "pick_chunk_mode", "run_group", "run_trial", "trial_keys"]

log = logging.getLogger(__name__)


def _is_algoperf(submission: Submission) -> bool:
    return isinstance(submission.module, AlgoPerfSubmission)


class Evaluator:
    """Host evaluation of one trial's parameters on a split (or on given eval batches): the
    workload's eval_batch compiled once, finalize_metrics over the batches."""

    def __init__(self, workload: Workload, split: Any = None, eval_batches: Sequence[Any] | None = None):
        if eval_batches is None:
            eval_batches = [jax.device_put(b) for b in workload.eval_batches(split, workload.eval_batch_size)]
        self.workload, self.batches = workload, list(eval_batches)
        self._eval = jax.jit(workload.eval_batch)

    def __call__(self, params: Any, model_state: Any) -> dict[str, float]:
        outs = jax.device_get([self._eval(params, model_state, b) for b in self.batches])
        return self.workload.finalize_metrics(outs)


class _Ledger:
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
        return self.result.status == "running"

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

    def finish(self, status: str, error: str | None, compile_s: float, compiles: int) -> None:
        """Record the outcome. AlgoPerf's time-to-target of a trial in compiled chunks is its
        training time plus the compilation (concrete-step trials set it as they go)."""
        self.write()
        r = self.result
        r.status, r.error, r.compile_s, r.compiles = status, error, compile_s, compiles
        if r.algoperf_time_to_target_s is None and r.time_to_target_s is not None:
            r.algoperf_time_to_target_s = r.time_to_target_s + compile_s
        trials = () if self.index is None else (self.index,)
        if self.db is not None:
            progress.emit(Phase.WRITING, trials, step=r.final_step)
            if (rest := self._flush()) is not None:
                self.db.add_losses(r.run_id, *rest)
            self.db.update_run(r.run_id, status=status, error=error, compile_s=r.compile_s,
                               compiles=r.compiles, train_s=r.train_s, eval_s=r.eval_s,
                               final_step=r.final_step, steps_to_target=r.steps_to_target,
                               time_to_target_s=r.time_to_target_s,
                               algoperf_time_to_target_s=r.algoperf_time_to_target_s,
                               finished_at=utcnow())
        progress.emit(Phase.DONE, trials, step=r.final_step, status=status,
                      target_step=r.steps_to_target, error=error)


@dataclasses.dataclass
class _Piece:
    """Trials (indices into the group) run as one compiled program."""

    program: Program
    indices: list[int]
    note: str | None = None
    #: why these (AlgoPerf-format) trials run in concrete-step mode; None: compiled chunks
    concrete: str | None = None


@dataclasses.dataclass
class _Context:
    """What every piece of a group shares."""

    workload: Workload
    submission: Submission
    dataset: Dataset
    trials: Sequence[TrialSpec]
    hparams: list[dict[str, Any]]
    #: each trial's workload variant (the group's, with the trial's runtime knobs)
    workloads: list[Workload]
    options: TrialOptions
    resolved: Options
    mode: str
    batch_size: int
    batching: Batching
    train_data: Any
    eval_batches: list[Any]
    eval_stacked: Any
    db: Database | None
    snapshot_steps: list[int]
    on_snapshot: Callable[[str, int, Any, Any], None] | None
    on_eval: Callable[[int, int, dict[str, float]], None] | None
    checkpointing: checkpoint.Checkpointing | None = None
    #: environment.fingerprint(), taken once per group (it runs git) for every trial's row
    env: dict[str, Any] | None = None


def _eval_is_sums(workload: Workload, batch: Any) -> bool:
    """True when the workload's eval metrics are sums over batches divided by a count (the
    default `finalize_metrics`, scalar `eval_batch` outputs with a "count"): the device can
    then decide the target inside the compiled loop."""
    if type(workload).finalize_metrics is not Workload.finalize_metrics:
        return False
    params, model_state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    outs = jax.eval_shape(workload.eval_batch, params, model_state, batch)
    return "count" in outs and all(o.shape == () for o in outs.values())


def _split_by(indices: Sequence[int], hparams: Sequence[Mapping[str, Any]],
              names: Iterable[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    names = sorted(names)
    for i in indices:
        out.setdefault(json.dumps([[k, hparams[i][k]] for k in names], default=str), []).append(i)
    return out


def _plan(ctx: _Context, in_loop: bool) -> list[_Piece]:
    """Programs and the trials each runs; see the module docstring."""
    programs: dict[str, Program] = {}

    def program(static: Mapping[str, Any], traced: tuple[str, ...],
                switch: tuple[str, ...] = ()) -> Program:
        key = json.dumps([sorted(static.items()), traced, switch], default=str)
        if key not in programs:
            programs[key] = Program(ctx.workload, ctx.submission, static, traced, ctx.batch_size,
                                    ctx.mode, ctx.resolved, in_loop, ctx.batching, switch)
        return programs[key]

    def switched(indices: Sequence[int]) -> tuple[str, ...]:
        """The runtime knobs whose values differ among these trials: selected per trial."""
        return tuple(k for k in ctx.workload.runtime_knobs
                     if len({ctx.workloads[i].variant[k] for i in indices}) > 1)

    fed = None
    if ctx.workload.input_mode == "host":
        batches = ctx.workload.train_batches(ctx.dataset, ctx.batch_size, ctx.trials[0].seed)
        fed = jax.tree_util.tree_map(lambda x: np.asarray(x)[None], next(iter(batches)))
    all_names = sorted(ctx.hparams[0])
    pieces: list[_Piece] = []
    first = ctx.hparams[0]
    if _is_algoperf(ctx.submission):
        for same in _split_by(range(len(ctx.trials)), ctx.hparams, all_names).values():
            if switched(same):
                raise SpecError(f"submission {ctx.submission.name} is in the AlgoPerf format: "
                                "its trials cannot share a program across workload variants; "
                                "run each variant as its own group")
            shared = program(ctx.hparams[same[0]], ())
            pieces.append(_Piece(shared, same, None, _concrete_reason(ctx, shared, fed)))
    for indices in ([] if pieces else _split_by(
            range(len(ctx.trials)), ctx.hparams,
            [k for k in all_names if k not in traced_names(first)]).values()):
        hp = ctx.hparams[indices[0]]
        traced = traced_names(hp)
        shared = program({k: v for k, v in hp.items() if k not in traced}, traced,
                         switched(indices))
        why = shared.probe(ctx.train_data, fed, hp) if traced else None
        if why is None:
            pieces.append(_Piece(shared, list(indices)))
            continue
        note = (f"submission {ctx.submission.name} needs a hyperparameter as a Python value "
                f"({why}); one compiled program per distinct hyperparameter set")
        log.warning("%s: %s", ctx.workload.spec, note)
        for same in _split_by(indices, ctx.hparams, all_names).values():
            pieces.append(_Piece(program(ctx.hparams[same[0]], (), switched(same)), same, note))
    size = ctx.options.max_group_size
    if size is None:
        return pieces
    return [_Piece(p.program, p.indices[i:i + size], p.note, p.concrete)
            for p in pieces for i in range(0, len(p.indices), size)]


def _concrete_reason(ctx: _Context, program: Program, fed: Any) -> str | None:
    """Why an AlgoPerf-format submission cannot train in compiled chunks, or None: tracing one
    step with a traced step count raises NeedsConcreteStep; prepare_for_eval runs on the host
    before each eval, between steps."""
    hp = ctx.hparams[0]
    keys = jax.random.split(jax.random.PRNGKey(0))
    carry = jax.eval_shape(lambda: program.init([{"init": keys[0], "optimizer": keys[1]}], [hp]))
    key = jax.ShapeDtypeStruct((1, 2), jnp.uint32)
    try:
        jax.eval_shape(lambda c, f, k, step: program._step(c, step, ctx.train_data, f, {}, k),
                       carry, fed, key, jax.ShapeDtypeStruct((), jnp.int32))
    except NeedsConcreteStep as e:
        return e.reason.name
    if ctx.submission.module.has_prepare_for_eval:
        return "PREPARE_FOR_EVAL"
    return None


def _start(ctx: _Context, index: int, group_size: int, mode: str, note: str | None,
           concrete: str | None = None) -> _Ledger:
    w, sub, trial = ctx.workloads[index], ctx.submission, ctx.trials[index]
    hparams = ctx.hparams[index]
    algoperf = _is_algoperf(sub)
    # the folder's search point, when these are its hyperparameters (a sweep may override them)
    point = sub.module.search_point if algoperf and dict(hparams) == dict(sub.hparams) else None
    result = TrialResult(run_id=str(uuid.uuid4()), workload=w.spec, submission=sub.name,
                         seed=trial.seed, chunk_mode=mode, group_size=group_size,
                         vectorise_note=note, hparams=dict(hparams), concrete_reason=concrete,
                         search_point=None if point is None else tuple(point))
    if ctx.db is not None:
        if ctx.env is None:
            ctx.env = environment.fingerprint()
        env, o = ctx.env, ctx.options
        ctx.db.start_run(
            id=result.run_id, workload=w.name, variant=w.spec, workload_version=w.version,
            submission=sub.name, submission_path=str(sub.path), submission_hash=sub.code_hash,
            hparams=hparams, seed=trial.seed,
            rng_derivation=(f"{RNG_DERIVATION}; {PREPARE_RNG_DERIVATION}" if algoperf
                            else RNG_DERIVATION),
            search_point=None if point is None else {"k": int(point[0]), "seed": int(point[1])},
            batch_size=ctx.batch_size, max_steps=ctx.resolved.max_steps,
            eval_every=ctx.resolved.eval_every, chunk_mode=mode,
            data_source=ctx.dataset.source, data_fingerprint=ctx.dataset.fingerprint,
            jax_version=env["jax_version"], jaxlib_version=env["jaxlib_version"],
            backend=env["backend"], device_kind=env["device_kind"], xla_flags=env["xla_flags"],
            git_commit=env["git_commit"], environment=env, status="running",
            host=socket.gethostname(), pid=os.getpid(), origin=RunOrigin(o.origin).value,
            tag=o.tag, sweep_id=o.sweep_id, group_size=group_size,
            stop_at_target=o.stop_at_target, divergence_factor=o.divergence_factor)
    on_eval = None if ctx.on_eval is None else (lambda s, m, i=index: ctx.on_eval(i, s, m))
    return _Ledger(result, ctx.db, w.target.split, on_eval, index=index)


def _resumed(ctx: _Context, index: int, saved: checkpoint.Saved, record: checkpoint.TrialRecord
             ) -> _Ledger:
    """A trial's ledger as a checkpoint left it. A trial still running then is running again
    (same run id, this process's pid, started_at now: what tells a live run from a dead one),
    and the rows its killed process wrote after the checkpoint are deleted."""
    fields = dict(record.result)
    fields["evals"] = [(int(step), metrics) for step, metrics in fields["evals"]]
    if fields["search_point"] is not None:
        fields["search_point"] = tuple(fields["search_point"])
    result = TrialResult(**fields)
    on_eval = None if ctx.on_eval is None else (lambda s, m, i=index: ctx.on_eval(i, s, m))
    ledger = _Ledger(result, ctx.db, ctx.workload.target.split, on_eval, index=index)
    ledger.pending_start = record.losses_from
    ledger.t_start = time.perf_counter() - record.wall_s
    if ledger.running:
        result.resumed_from_step = saved.step
        if ctx.db is not None:
            checkpoint.discard_after(ctx.db, result.run_id, saved.step, record.losses_from)
            ctx.db.update_run(result.run_id, status="running", error=None, finished_at=None,
                              host=socket.gethostname(), pid=os.getpid(), started_at=utcnow(),
                              resumed_from_step=saved.step, final_step=result.final_step,
                              steps_to_target=result.steps_to_target,
                              time_to_target_s=result.time_to_target_s, train_s=result.train_s)
    return ledger


def _versions(ctx: _Context) -> dict[str, str]:
    """What a checkpoint's state depends on besides the trials: resumed only where all agree."""
    return {"workload_version": ctx.workload.version, "submission_hash": ctx.submission.code_hash,
            "data_fingerprint": ctx.dataset.fingerprint, "backend": jax.default_backend(),
            "chunk_mode": ctx.mode}


def _divergence_error(code: int, loss: float, loss0: float, step: int, factor: float | None) -> str:
    if code == Stop.LOSS_DIVERGED and not np.isfinite(loss):
        return f"loss became {loss:.4g} at step {step}"
    return f"loss exceeded {factor:g} x the step-0 loss {loss0:.4g}: {loss:.4g} at step {step}"


def _run_piece(ctx: _Context, piece: _Piece) -> list[TrialResult]:
    """Run one program's trials to their stops; every trial's rows written as it goes."""
    program, idx = piece.program, piece.indices
    o, w = ctx.resolved, ctx.workload
    t = len(idx)
    cp = ctx.checkpointing
    saved = None if cp is None or cp.resume is None else checkpoint.read(cp.resume)
    if saved is None:
        ledgers = [_start(ctx, i, t, ctx.mode, piece.note) for i in idx]
        compile0, compiles0 = program.compile_s, program.compiles
    else:
        changed = {k: (v, _versions(ctx).get(k)) for k, v in saved.versions.items()
                   if _versions(ctx).get(k) != v}
        if changed:
            raise checkpoint.CheckpointError(
                f"checkpoint {saved.path} was written with other "
                + ", ".join(f"{k} ({a} then, {b} now)" for k, (a, b) in changed.items())
                + "; resuming would mix the two: rerun the trials")
        ledgers = [_resumed(ctx, i, saved, rec) for i, rec in zip(idx, saved.trials)]
        compile0, compiles0 = program.compile_s - saved.compile_s, program.compiles - saved.compiles
    writer = None if cp is None else checkpoint.Writer(
        cp, cp.resume or cp.root / ledgers[0].result.run_id, _versions(ctx),
        0 if saved is None else saved.step)

    def finish(j: int, status: str, error: str | None = None) -> None:
        ledgers[j].finish(status, error, program.compile_s - compile0, program.compiles - compiles0)

    def save(step: int, clock: float, carry: Carry) -> None:
        _checkpoint(writer, ledgers, [ctx.trials[i] for i in idx], step, clock, carry, program,
                    compile0, compiles0)

    host_batches = None
    try:
        progress.emit(Phase.PREPARING, idx)
        keys = [trial_keys(ctx.trials[i].seed) for i in idx]
        train_keys = jnp.stack([k["train"] for k in keys])
        hp = hparam_arrays([ctx.hparams[i] for i in idx], program.traced,
                           [ctx.workloads[i] for i in idx], program.switch)
        # init runs on resume too: its structure is checked, and a submission's init side
        # effects (an AlgoPerf adapter's optimizer objects) happen as in the first run
        carry = program.init(keys, [ctx.hparams[i] for i in idx], [ctx.workloads[i] for i in idx])
        if saved is not None:
            carry = saved.carry(carry)
        step, clock = (0, 0.0) if saved is None else (saved.step, saved.clock)
        if program.host:
            host_batches = [prefetch(w.train_batches(ctx.dataset, ctx.batch_size, ctx.trials[i].seed),
                                     HOST_PREFETCH) for i in idx]
            for it in host_batches:  # the data position of a resumed trial: replayed
                for _ in range(step):
                    next(it)
        snaps = ctx.snapshot_steps
        if ctx.on_snapshot is not None and snaps and snaps[0] == 0 and step == 0:
            for j, ledger in enumerate(ledgers):
                progress.emit(Phase.SNAPSHOT, (idx[j],), step=0, snapshot=1, snapshots=len(snaps))
                ctx.on_snapshot(ledger.result.run_id, 0, take(carry.state[0], j),
                                take(carry.state[1], j))
        while step < o.max_steps and any(ledger.running for ledger in ledgers):
            k = bisect.bisect_right(snaps, step)
            next_snap = snaps[k] if k < len(snaps) else o.max_steps
            progress.emit(Phase.TRAINING, [i for i, lg in zip(idx, ledgers) if lg.running],
                          step=step)
            t0, c0 = time.perf_counter(), program.compile_s
            evals: dict[int, list[tuple[int, dict[str, float], bool]]] = {}
            if program.in_loop_eval:
                stop = min(step + SEGMENT_STEPS, next_snap, o.max_steps)
                carry, losses, seen, outs = program.segment(carry, ctx.train_data, ctx.eval_stacked,
                                                            hp, train_keys, step, stop)
                losses, seen, outs, flags = jax.device_get((losses, seen, outs, carry[1:]))
                flags = Carry(None, *flags)
                seg_s = time.perf_counter() - t0 - (program.compile_s - c0)
                for off, j in zip(*np.nonzero(seen)):
                    per_batch = [{k: v[off, b, j] for k, v in outs.items()}
                                 for b in range(len(ctx.eval_batches))]
                    at = step + int(off) + 1
                    evals.setdefault(int(j), []).append(
                        (at, w.finalize_metrics(per_batch), int(flags.reached_step[j]) == at))
                eval_s = 0.0
            else:
                stop = min((step // o.eval_every + 1) * o.eval_every, next_snap, o.max_steps)
                carry, losses = program.chunks(carry, ctx.train_data, hp, train_keys, step,
                                               stop - step, host_batches)
                losses, flags = jax.device_get((losses, carry[1:]))
                flags = Carry(None, *flags)
                seg_s = time.perf_counter() - t0 - (program.compile_s - c0)
                eval_s = 0.0
                if (stop % o.eval_every == 0 or stop == o.max_steps) and flags.active.any():
                    progress.emit(Phase.EVALUATING, [idx[j] for j in np.flatnonzero(flags.active)],
                                  step=stop)
                    t1, c1 = time.perf_counter(), program.compile_s
                    per_batch = program.evaluate(carry, ctx.eval_batches, hp)
                    active, stop_code = flags.active.copy(), flags.stop.copy()
                    reached_step = flags.reached_step.copy()
                    for j in np.flatnonzero(flags.active):
                        metrics = w.finalize_metrics([take(b, j) for b in per_batch])
                        met = w.target.reached(metrics)
                        evals[int(j)] = [(stop, metrics, met)]
                        if met and reached_step[j] < 0:
                            reached_step[j] = stop
                        if not np.all(np.isfinite(list(metrics.values()))):
                            active[j], stop_code[j] = False, Stop.EVAL_NOT_FINITE
                        elif met and o.stop_at_target:
                            active[j], stop_code[j] = False, Stop.REACHED
                    flags = flags._replace(active=active, stop=stop_code, reached_step=reached_step)
                    carry = carry._replace(active=jnp.asarray(active), stop=jnp.asarray(stop_code),
                                           reached_step=jnp.asarray(reached_step))
                    eval_s = time.perf_counter() - t1 - (program.compile_s - c1)
            ran = max([int(flags.final_step[j]) - step for j, lg in enumerate(ledgers) if lg.running]
                      + [1])
            for j, ledger in enumerate(ledgers):
                if not ledger.running:
                    continue
                r = ledger.result
                last = int(flags.final_step[j])
                done_losses = step
                for at, metrics, met in evals.get(j, []):
                    ledger.losses(losses[done_losses - step:at - step, j])
                    done_losses = at
                    r.eval_s += eval_s
                    ledger.evaluated(at, metrics, met, clock + seg_s * min(1.0, (at - step) / ran))
                ledger.losses(losses[done_losses - step:last - step, j])
                r.final_step = last
                code = int(flags.stop[j])
                if (ctx.on_snapshot is not None and stop in snaps and last == stop
                        and code != Stop.LOSS_DIVERGED):
                    progress.emit(Phase.SNAPSHOT, (idx[j],), step=stop,
                                  snapshot=snaps.index(stop) + 1, snapshots=len(snaps))
                    ctx.on_snapshot(r.run_id, stop, take(carry.state[0], j), take(carry.state[1], j))
                if code == Stop.RUNNING:
                    r.train_s = clock + seg_s
                    continue
                r.train_s = clock + seg_s * min(1.0, (last - step) / ran)
                if code == Stop.REACHED:
                    finish(j, "reached")
                elif code == Stop.EVAL_NOT_FINITE:
                    finish(j, "diverged", f"eval metrics not finite at step {last}: {r.evals[-1][1]}")
                else:
                    finish(j, "diverged", _divergence_error(
                        code, float(losses[last - 1 - step, j]), float(flags.loss0[j]), last,
                        o.divergence_factor))
            for ledger in ledgers:
                ledger.write()
            clock += seg_s
            step = stop
            if (writer is not None and step < o.max_steps and writer.due(step)
                    and any(ledger.running for ledger in ledgers)):
                save(step, clock, carry)
        for j, ledger in enumerate(ledgers):
            if ledger.running:
                finish(j, "not_reached" if ledger.result.steps_to_target is None else "reached")
        if writer is not None and writer.cfg.keep:
            save(step, clock, carry)
        elif writer is not None:
            writer.remove()
            if ctx.db is not None and (writer.written or saved is not None):
                for ledger in ledgers:
                    ctx.db.update_run(ledger.result.run_id, checkpoint_path=None)
        return [ledger.result for ledger in ledgers]
    except KeyboardInterrupt:
        for j, ledger in enumerate(ledgers):
            if ledger.running:
                finish(j, "interrupted", "interrupted by the user")
        raise
    except Exception:
        error = traceback.format_exc().strip()  # the full traceback, for the rows
        for j, ledger in enumerate(ledgers):
            if ledger.running:
                finish(j, "failed", error)
        raise
    finally:
        for it in host_batches or ():
            it.close()  # stops the prefetch thread


def _checkpoint(writer: checkpoint.Writer, ledgers: Sequence[_Ledger], trials: Sequence[TrialSpec],
                step: int, clock: float, carry: Carry, program: Program, compile0: float,
                compiles0: int) -> None:
    """Write the program's checkpoint at `step`; the first one is recorded in every run row."""
    first = not writer.written
    writer.write(step, clock, carry, [ledger.record(t) for ledger, t in zip(ledgers, trials)],
                 program.compile_s - compile0, program.compiles - compiles0)
    if first:
        for ledger in ledgers:
            if ledger.db is not None:
                ledger.db.update_run(ledger.result.run_id, checkpoint_path=str(writer.folder))


def _run_concrete(ctx: _Context, index: int, reason: str) -> TrialResult:
    """One AlgoPerf-format trial in concrete-step mode (module docstring): AlgoPerf's runner
    loop with the suite's keys, schedule, stops and rows."""
    w, o, trial = ctx.workloads[index], ctx.resolved, ctx.trials[index]
    if w.input_mode == "host":
        raise SpecError(f"{w.spec} feeds batches from the host; concrete-step mode (needed by "
                        f"submission {ctx.submission.name}: {reason}) samples on the device: "
                        "use a device-input workload")
    sub = dataclasses.replace(ctx.submission, hparams=ctx.hparams[index])
    module: AlgoPerfSubmission = sub.module
    module.eval_results.clear()
    module.train_state.update(validation_goal_reached=False, training_complete=False,
                              accumulated_submission_time=0.0)
    log.info("%s: submission %s runs in concrete-step mode (%s)", w.spec, sub.name, reason)
    progress.emit(Phase.PREPARING, (index,))
    ledger = _start(ctx, index, 1, "concrete", None, reason)
    r = ledger.result
    evaluate = Evaluator(w, eval_batches=ctx.eval_batches)
    clock = AlgoPerfClock()
    snaps = ctx.snapshot_steps
    compile_s = 0.0
    try:
        keys = trial_keys(trial.seed)
        params, model_state = w.init(keys["init"])
        state = (params, model_state, module.init_optimizer_state(w, params, model_state, sub.hparams,
                                                                  keys["optimizer"]))
        if ctx.on_snapshot is not None and snaps and snaps[0] == 0:
            progress.emit(Phase.SNAPSHOT, (index,), step=0, snapshot=1, snapshots=len(snaps))
            ctx.on_snapshot(r.run_id, 0, state[0], state[1])
        stepper = ConcreteSteps(w, sub, ctx.batch_size)
        step, loss0 = 0, None
        while step < o.max_steps:
            k = bisect.bisect_right(snaps, step)
            next_snap = snaps[k] if k < len(snaps) else o.max_steps
            stop = min((step // o.eval_every + 1) * o.eval_every, next_snap, o.max_steps)
            first = stepper.first_call_s
            # the submission's own jit compiles on its first call (ConcreteSteps.first_call_s)
            progress.emit(Phase.TRAINING if first else Phase.COMPILING, (index,), step=step)
            t0 = time.perf_counter()
            state, losses, completed = stepper.run(state, ctx.train_data, step, stop - step,
                                                   keys["train"])
            jax.block_until_ready(state)
            first_now = stepper.first_call_s - first
            clock.train_s += time.perf_counter() - t0 - first_now
            clock.first_call_s += first_now
            compile_s += first_now
            r.train_s = clock.train_s
            last = stop if completed is None else completed
            r.final_step = last
            ledger.losses(losses)
            if losses.size and loss0 is None:
                loss0 = float(losses[0])
            bad = ~np.isfinite(losses)
            if o.divergence_factor is not None and loss0 is not None and np.isfinite(loss0):
                bad |= losses > o.divergence_factor * loss0
            if bad.any():
                first_bad = int(np.argmax(bad))
                r.final_step = step + first_bad + 1
                ledger.finish("diverged", _divergence_error(
                    Stop.LOSS_DIVERGED, float(losses[first_bad]), loss0, r.final_step,
                    o.divergence_factor), compile_s, 0)
                return r
            done = completed is not None
            if done is not None or last % o.eval_every == 0 or last == o.max_steps:
                if module.has_prepare_for_eval:
                    state, prepare_s = timed_prepare_for_eval(sub, w, state, last, trial.seed)
                    clock.prepare_s += prepare_s
                progress.emit(Phase.EVALUATING, (index,), step=last)
                t1 = time.perf_counter()
                metrics = evaluate(state[0], state[1])
                r.eval_s += time.perf_counter() - t1
                met = w.target.reached(metrics)
                if met and r.algoperf_time_to_target_s is None:
                    r.algoperf_time_to_target_s = clock.total_s
                ledger.evaluated(last, metrics, met, clock.train_s)
                ledger.write()
                record_eval(sub, last, w.target.split, metrics, clock, met)
                if not np.all(np.isfinite(list(metrics.values()))):
                    ledger.finish("diverged", f"eval metrics not finite at step {last}: {metrics}",
                                  compile_s, 0)
                    return r
                done = done or (met and o.stop_at_target)
            if ctx.on_snapshot is not None and last in snaps:
                progress.emit(Phase.SNAPSHOT, (index,), step=last,
                              snapshot=snaps.index(last) + 1, snapshots=len(snaps))
                ctx.on_snapshot(r.run_id, last, state[0], state[1])
            module.train_state["training_complete"] = completed is not None
            if done:
                break
            step = last
        ledger.finish("not_reached" if r.steps_to_target is None else "reached", None,
                      compile_s, int(stepper.first_call_s > 0))
        return r
    except KeyboardInterrupt:
        ledger.finish("interrupted", "interrupted by the user", compile_s, 0)
        raise
    except Exception:
        ledger.finish("failed", traceback.format_exc().strip(), compile_s, 0)
        raise


def run_group(workload: Workload, submission: Submission, dataset: Dataset,
              trials: Sequence[TrialSpec], *, db: Database | None = None,
              options: TrialOptions = TrialOptions(),
              snapshot_steps: Iterable[int] = (),
              on_snapshot: Callable[[str, int, Any, Any], None] | None = None,
              on_eval: Callable[[int, int, dict[str, float]], None] | None = None,
              checkpointing: checkpoint.Checkpointing | None = None
              ) -> list[TrialResult]:
    """Run trials that share a compiled shape (variant, submission, batch size), vectorised
    where they can be (see the module docstring); results in the order of `trials`.

    checkpointing: write checkpoints of every compiled program's trials (harness/checkpoint.py);
    with `resume`, the trials are those of the one program that wrote that checkpoint, and
    they continue from it. Trials in concrete-step mode write none.

    A trial's hparams override the submission's (known names only). Each trial trains until
    its first eval that meets the target (unless options.stop_at_target is off), divergence
    or the step budget. on_eval(trial_index, step, metrics); on_snapshot(run_id, step,
    params, model_state) with that trial's own parameters."""
    if not trials:
        return []
    variants = _trial_variants(workload, trials)
    by_variant: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        by_variant.setdefault(v.spec, []).append(i)
    snapshot_steps = list(snapshot_steps)
    if any(t.knobs for t in trials) and (len(by_variant) == 1 or _is_algoperf(submission)
                                          or snapshot_steps):
        # one variant (named by the trials' knobs), or trials that cannot share a program
        # across variants (AlgoPerf format, snapshots reading the workload): variant by variant
        results: list[TrialResult | None] = [None] * len(trials)
        for indices in by_variant.values():
            remap = None if on_eval is None else (
                lambda j, step, m, indices=indices: on_eval(indices[j], step, m))
            for i, r in zip(indices, run_group(
                    variants[indices[0]], submission, dataset,
                    [dataclasses.replace(trials[i], knobs={}) for i in indices], db=db,
                    options=options, snapshot_steps=snapshot_steps, on_snapshot=on_snapshot,
                    on_eval=remap)):
                results[i] = r
        return results
    max_steps = int(workload.max_steps if options.max_steps is None else options.max_steps)
    eval_every = int(workload.eval_every if options.eval_every is None else options.eval_every)
    if max_steps < 1 or eval_every < 1:
        raise SpecError(f"max_steps ({max_steps}) and eval_every ({eval_every}) must be >= 1")
    if options.max_group_size is not None and options.max_group_size < 1:
        raise SpecError(f"max_group_size ({options.max_group_size}) must be >= 1 (or None: no limit)")
    target = workload.target
    if target.split not in dataset.splits:
        raise SpecError(f"dataset {dataset.name} has no {target.split!r} split for the target")
    hparams = [apply_overrides(submission.name, submission.hparams, trial.hparams)
               for trial in trials]
    sizes = {dataclasses.replace(submission, hparams=h).batch_size(workload.name, workload.batch_size)
             for h in hparams}
    if len(sizes) > 1:
        raise SpecError(f"a group's trials must share one batch size, got {sorted(sizes)}; "
                        "run each batch size as its own group")
    batch_size = sizes.pop()
    progress.emit(Phase.PREPARING, range(len(trials)))
    guards.check_trial_fits(workload, dataset, batch_size, max_steps, eval_every,
                            trials=min(len(trials), options.max_group_size or len(trials)))
    mode = pick_chunk_mode(workload, options.chunk_mode)
    try:
        batching = Batching(options.batching)
    except ValueError:
        raise SpecError(f"unknown batching {options.batching!r}; valid: "
                        + ", ".join(b.value for b in Batching)) from None
    eval_batches = [jax.device_put(b) for b in workload.eval_batches(dataset.splits[target.split],
                                                                     workload.eval_batch_size)]
    if not eval_batches:
        raise SpecError(f"{workload.name}: evaluation split is empty")
    in_loop = (mode == "scan" and workload.input_mode == "device"
               and _eval_is_sums(workload, eval_batches[0]))
    eval_stacked = None
    if in_loop:
        eval_stacked, nbytes = stacked_eval_data(jax.device_get(eval_batches))
        in_loop = nbytes <= EVAL_IN_LOOP_MAX_BYTES
        eval_stacked = jax.device_put(eval_stacked) if in_loop else None
    train_data = (None if workload.input_mode == "host"
                  else jax.device_put(dict(dataset.splits["train"])))
    ctx = _Context(workload=workload, submission=submission, dataset=dataset, trials=trials,
                   hparams=hparams, workloads=variants, options=options,
                   resolved=Options(max_steps, eval_every, options.stop_at_target,
                                    options.divergence_factor),
                   mode=mode, batch_size=batch_size, batching=batching, train_data=train_data,
                   eval_batches=eval_batches, eval_stacked=eval_stacked, db=db,
                   snapshot_steps=sorted({int(s) for s in snapshot_steps if 0 <= int(s) <= max_steps}),
                   on_snapshot=on_snapshot, on_eval=on_eval, checkpointing=checkpointing)
    results: list[TrialResult | None] = [None] * len(trials)
    pieces = _plan(ctx, in_loop)
    if checkpointing is not None and checkpointing.resume is not None and (
            len(pieces) != 1 or pieces[0].concrete is not None):
        raise checkpoint.CheckpointError(
            f"the trials of checkpoint {checkpointing.resume} no longer run as one compiled "
            "program with this code; rerun them")
    first = pieces[0].indices[:1] if pieces[0].concrete is not None else pieces[0].indices
    progress.emit(Phase.QUEUED, [i for p in pieces for i in p.indices if i not in first])
    for piece in pieces:
        if piece.concrete is not None:
            for i in piece.indices:
                results[i] = _run_concrete(ctx, i, piece.concrete)
            continue
        for i, result in zip(piece.indices, _run_piece(ctx, piece)):
            results[i] = result
    return results


def _trial_variants(workload: Workload, trials: Sequence[TrialSpec]) -> list[Workload]:
    """Each trial's workload variant: the group's, with the trial's runtime knobs."""
    out = []
    for trial in trials:
        bad = sorted(set(trial.knobs) - set(workload.runtime_knobs))
        if bad:
            raise SpecError(f"a trial of {workload.spec} sets {', '.join(bad)}, which are not "
                            f"runtime knobs of {workload.name} (runtime knobs: "
                            f"{', '.join(workload.runtime_knobs) or '(none)'}); give each "
                            "such variant its own group")
        out.append(type(workload)(**{**workload.variant, **trial.knobs}) if trial.knobs
                   else workload)
    return out


def run_trial(workload: Workload, submission: Submission, dataset: Dataset, seed: int, *,
              db: Database | None = None, max_steps: int | None = None,
              eval_every: int | None = None, chunk_mode: str = "auto",
              stop_at_target: bool = True, divergence_factor: float | None = DIVERGENCE_FACTOR,
              origin: RunOrigin = RunOrigin.RUN, tag: str | None = None,
              sweep_id: str | None = None,
              snapshot_steps: Iterable[int] = (),
              on_snapshot: Callable[[str, int, Any, Any], None] | None = None,
              on_eval: Callable[[int, dict[str, float]], None] | None = None) -> TrialResult:
    """One trial alone (a group of one): train until the first eval that meets the target
    (unless stop_at_target is off), divergence, or the step budget. The keyword arguments
    after `db` are TrialOptions' fields."""
    options = TrialOptions(max_steps=max_steps, eval_every=eval_every, chunk_mode=chunk_mode,
                           stop_at_target=stop_at_target, divergence_factor=divergence_factor,
                           origin=origin, tag=tag, sweep_id=sweep_id)
    (result,) = run_group(workload, submission, dataset, [TrialSpec(seed=seed, hparams={})],
                          db=db, options=options, snapshot_steps=snapshot_steps,
                          on_snapshot=on_snapshot,
                          on_eval=None if on_eval is None else (lambda _i, s, m: on_eval(s, m)))
    return result
