"""Run a group of trials (or one trial alone): the engine's entry point below the sweep layer.

A trial is workload variant x submission (+hparams) x seed. `run_group` resolves the group's
budget, batch size and chunk mode, checks its sizes (harness.guards), puts its data on the
device and has the planner (harness.engine.plan) cut it into variants and compiled programs,
which the drivers run: compiled segments (harness.engine.drive_compiled) or AlgoPerf's
concrete steps (harness.engine.drive_concrete). Every trial's rows are written as it runs
(harness.engine.ledger): the run row when it starts, eval rows (with the training losses since
the last one) after each compiled segment, the outcome when it stops. Compile time is measured
apart (ahead-of-time compilation), so time-to-target counts training (and in-loop evaluation)
only; AlgoPerf's time-to-target (training + its compilation + prepare_for_eval) is kept too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax

from harness import checkpoint, guards, progress
from harness.engine.context import GroupContext, Piece
from harness.engine.drive_compiled import run_compiled
from harness.engine.drive_concrete import run_concrete
from harness.engine.evaluator import Evaluator
from harness.engine.plan import plan_programs, trial_variants, variant_pieces
from harness.engine.trial_axis import EVAL_IN_LOOP_MAX_BYTES, Batching, Options, stacked_eval_data
from harness.progress import Phase
from harness.records.status import RunOrigin
from harness.records.trial import (CHUNK_MODES, DIVERGENCE_FACTOR, HOST_CHUNK_STEPS, HOST_PREFETCH,
                                   RNG_DERIVATION, TrialOptions, TrialResult, TrialSpec)
from harness.spec import Dataset, SpecError, Workload
from harness.submissions import Submission, apply_overrides
from harness.trial import CompileCache, pick_chunk_mode, trial_keys

if TYPE_CHECKING:
    from harness.db import Database

__all__ = ["CHUNK_MODES", "DIVERGENCE_FACTOR", "HOST_CHUNK_STEPS", "HOST_PREFETCH",
           "RNG_DERIVATION", "CompileCache", "Evaluator", "TrialOptions", "TrialResult", "TrialSpec",
           "pick_chunk_mode", "run_group", "run_trial", "trial_keys"]


def _eval_is_sums(workload: Workload, batch: Any) -> bool:
    """True when the workload's eval metrics are sums over batches divided by a count (the
    default `finalize_metrics`, scalar `eval_batch` outputs with a "count"): the device can
    then decide the target inside the compiled loop."""
    if type(workload).finalize_metrics is not Workload.finalize_metrics:
        return False
    params, model_state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    outs = jax.eval_shape(workload.eval_batch, params, model_state, batch)
    return "count" in outs and all(o.shape == () for o in outs.values())


@dataclasses.dataclass
class PlannedVariant:
    """A piece of `variant_pieces` planned and ready to drive: its trials' indices in the
    group, their context (sizes checked, data on the device) and compiled programs."""

    indices: list[int]
    ctx: GroupContext
    pieces: list[Piece]


def plan_group(workload: Workload, submission: Submission, dataset: Dataset,
               trials: Sequence[TrialSpec], *, options: TrialOptions = TrialOptions(),
               snapshot_steps: Iterable[int] = (), checked: bool = False
               ) -> list[PlannedVariant]:
    """Everything of `run_group` before the first row is written: variants, sizes, data on
    the device, programs. Writes nothing and trains nothing, so an executor can plan (and
    compile, `compile_ahead`) the next group in a background thread while one trains."""
    return list(_plans(workload, submission, dataset, trials, options, list(snapshot_steps),
                       checked))


def _plans(workload: Workload, submission: Submission, dataset: Dataset,
           trials: Sequence[TrialSpec], options: TrialOptions, snapshot_steps: list[int],
           checked: bool) -> Iterator[PlannedVariant]:
    """The variants planned one at a time (only one's data on the device while it runs)."""
    for variant, indices, own in variant_pieces(workload, submission, trials,
                                                bool(snapshot_steps)):
        yield _plan_variant(variant, submission, dataset, own, indices, options=options,
                            snapshot_steps=snapshot_steps, checked=checked)


def compile_ahead(planned: Sequence[PlannedVariant]) -> None:
    """Compile the planned programs that can be compiled from shapes alone
    (Program.compile_ahead), in this thread."""
    for variant in planned:
        ctx = variant.ctx
        for piece in variant.pieces:
            if piece.concrete is None:
                piece.program.compile_ahead(
                    [trial_keys(ctx.trials[i].seed) for i in piece.indices],
                    [ctx.hparams[i] for i in piece.indices],
                    [ctx.workloads[i] for i in piece.indices], ctx.train_data, ctx.eval_stacked)


def run_group(workload: Workload, submission: Submission, dataset: Dataset,
              trials: Sequence[TrialSpec], *, db: Database | None = None,
              options: TrialOptions = TrialOptions(),
              snapshot_steps: Iterable[int] = (),
              on_snapshot: Callable[[str, int, Any, Any], None] | None = None,
              on_eval: Callable[[int, int, dict[str, float]], None] | None = None,
              checkpointing: checkpoint.Checkpointing | None = None,
              checked: bool = False,
              planned: Iterable[PlannedVariant] | None = None) -> list[TrialResult]:
    """Run trials that share a compiled shape (variant, submission, batch size), vectorised
    where they can be (see the module docstring); results in the order of `trials`.

    checkpointing: write checkpoints of every compiled program's trials (harness/checkpoint.py);
    with `resume`, the trials are those of the one program that wrote that checkpoint, and
    they continue from it. Trials in concrete-step mode write none.

    A trial's hparams override the submission's (known names only). Each trial trains until
    its first eval that meets the target (unless options.stop_at_target is off), divergence
    or the step budget. on_eval(trial_index, step, metrics); on_snapshot(run_id, step,
    params, model_state) with that trial's own parameters. checked: the caller already ran
    harness.guards on this group (run_sweep's preflight), so it is not repeated. planned:
    `plan_group` of these same arguments, done ahead (then used instead of planning here)."""
    if not trials:
        return []
    if planned is None:
        planned = _plans(workload, submission, dataset, trials, options, list(snapshot_steps),
                         checked)
    results: list[TrialResult | None] = [None] * len(trials)
    for variant in planned:
        remap = None if on_eval is None else (
            lambda j, step, m, indices=variant.indices: on_eval(indices[j], step, m))
        ctx = dataclasses.replace(variant.ctx, db=db, on_snapshot=on_snapshot, on_eval=remap,
                                  checkpointing=checkpointing)
        for i, r in zip(variant.indices, _drive(ctx, variant.pieces)):
            results[i] = r
    return results


def _plan_variant(workload: Workload, submission: Submission, dataset: Dataset,
                  trials: Sequence[TrialSpec], indices: list[int], *, options: TrialOptions,
                  snapshot_steps: list[int], checked: bool) -> PlannedVariant:
    """Trials of one piece of `variant_pieces`: sizes checked, data on the device, programs
    planned."""
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
    if not checked:
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
    if submission.capabilities.eval_hooks:
        submission.module.use_dataset({split: dataset.size(split) for split in dataset.splits})
    ctx = GroupContext(workload=workload, submission=submission, dataset=dataset, trials=trials,
                   hparams=hparams, workloads=trial_variants(workload, trials), options=options,
                   resolved=Options(max_steps, eval_every, options.stop_at_target,
                                    options.divergence_factor),
                   mode=mode, batch_size=batch_size, batching=batching, train_data=train_data,
                   eval_batches=eval_batches, eval_stacked=eval_stacked, db=None,
                   snapshot_steps=sorted({int(s) for s in snapshot_steps if 0 <= int(s) <= max_steps}),
                   on_snapshot=None, on_eval=None)
    return PlannedVariant(indices, ctx, plan_programs(ctx, in_loop))


def _drive(ctx: GroupContext, pieces: Sequence[Piece]) -> list[TrialResult]:
    """Run a planned variant's programs, writing every trial's rows."""
    checkpointing = ctx.checkpointing
    results: list[TrialResult | None] = [None] * len(ctx.trials)
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
                results[i] = run_concrete(ctx, i, piece.concrete)
            continue
        for i, result in zip(piece.indices, run_compiled(ctx, piece)):
            results[i] = result
    return results


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
