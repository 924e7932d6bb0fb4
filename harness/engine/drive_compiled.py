"""Driving a compiled program's trials to their stops: segments of steps with in-loop
evaluation (the eval and the stop decisions inside one compiled `lax.while_loop`, back on the
host every SEGMENT_STEPS steps and at snapshot steps), or compiled chunks of steps up to each
host evaluation. Both apply the one stop rule (harness.engine.stop), write each trial's rows
after every segment (harness.engine.ledger), take snapshots and write checkpoints where the
loop returns to the host."""

from __future__ import annotations

import bisect
import time
import traceback
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from harness import checkpoint, interrupt, progress
from harness.data.prefetch import prefetch
from harness.engine import stop as stop_rule
from harness.engine.context import GroupContext, Piece
from harness.engine.ledger import TrialLedger, resumed_ledger, start_ledger, versions
from harness.engine.program import Program
from harness.engine.stop import Stop
from harness.engine.trial_axis import SEGMENT_STEPS, Carry, hparam_arrays, take
from harness.progress import Phase
from harness.records.status import RunStatus
from harness.records.trial import HOST_PREFETCH, TrialResult, TrialSpec
from harness.trial import trial_keys


def run_compiled(ctx: GroupContext, piece: Piece) -> list[TrialResult]:
    """Run one program's trials to their stops; every trial's rows written as it goes."""
    program, idx = piece.program, piece.indices
    o, w = ctx.resolved, ctx.workload
    t = len(idx)
    cp = ctx.checkpointing
    saved = None if cp is None or cp.resume is None else checkpoint.read(cp.resume)
    if saved is None:
        ledgers = [start_ledger(ctx, i, t, ctx.mode, piece.note) for i in idx]
        compile0, compiles0 = program.compile_s, program.compiles
    else:
        changed = {k: (v, versions(ctx).get(k)) for k, v in saved.versions.items()
                   if versions(ctx).get(k) != v}
        if changed:
            raise checkpoint.CheckpointError(
                f"checkpoint {saved.path} was written with other "
                + ", ".join(f"{k} ({a} then, {b} now)" for k, (a, b) in changed.items())
                + "; resuming would mix the two: rerun the trials")
        ledgers = [resumed_ledger(ctx, i, saved, rec) for i, rec in zip(idx, saved.trials)]
        compile0, compiles0 = program.compile_s - saved.compile_s, program.compiles - saved.compiles
    writer = None if cp is None else checkpoint.Writer(
        cp, cp.resume or cp.root / ledgers[0].result.run_id, versions(ctx),
        0 if saved is None else saved.step)

    def finish(j: int, status: RunStatus, error: str | None = None) -> None:
        ledgers[j].finish(status, error, program.compile_s - compile0, program.compiles - compiles0)

    def save(step: int, clock: float, carry: Carry) -> None:
        checkpoint_program(writer, ledgers, [ctx.trials[i] for i in idx], step, clock, carry, program,
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
            interrupt.check()  # a Ctrl-C swallowed where it came (harness.interrupt) stops here
            k = bisect.bisect_right(snaps, step)
            next_snap = snaps[k] if k < len(snaps) else o.max_steps
            progress.emit(Phase.TRAINING, [i for i, lg in zip(idx, ledgers) if lg.running],
                          step=step)
            t0, c0 = time.perf_counter(), program.blocked_s
            evals: dict[int, list[tuple[int, dict[str, float], bool]]] = {}
            if program.in_loop_eval:
                stop = min(step + SEGMENT_STEPS, next_snap, o.max_steps)
                carry, losses, seen, outs = program.segment(carry, ctx.train_data, ctx.eval_stacked,
                                                            hp, train_keys, step, stop)
                losses, seen, outs, flags = jax.device_get((losses, seen, outs, carry[1:]))
                flags = Carry(None, *flags)
                seg_s = time.perf_counter() - t0 - (program.blocked_s - c0)
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
                seg_s = time.perf_counter() - t0 - (program.blocked_s - c0)
                eval_s = 0.0
                if (stop % o.eval_every == 0 or stop == o.max_steps) and flags.active.any():
                    progress.emit(Phase.EVALUATING, [idx[j] for j in np.flatnonzero(flags.active)],
                                  step=stop)
                    t1, c1 = time.perf_counter(), program.blocked_s
                    per_batch = program.evaluate(carry, ctx.eval_batches, hp)
                    met, finite = np.zeros(t, bool), np.ones(t, bool)
                    for j in np.flatnonzero(flags.active):
                        metrics = w.finalize_metrics([take(b, j) for b in per_batch])
                        met[j] = w.target.reached(metrics)
                        finite[j] = np.all(np.isfinite(list(metrics.values())))
                        evals[int(j)] = [(stop, metrics, bool(met[j] and finite[j]))]
                    active, stop_code, reached_step = stop_rule.after_eval(
                        flags.active, met, finite, flags.stop, flags.reached_step, stop,
                        o.stop_at_target, np)
                    flags = flags._replace(active=active, stop=stop_code, reached_step=reached_step)
                    carry = carry._replace(active=jnp.asarray(active),
                                           stop=jnp.asarray(stop_code, jnp.int32),
                                           reached_step=jnp.asarray(reached_step, jnp.int32))
                    eval_s = time.perf_counter() - t1 - (program.blocked_s - c1)
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
                loss = float(losses[last - 1 - step, j]) if code == Stop.LOSS_DIVERGED else 0.0
                finish(j, stop_rule.status(code, r.steps_to_target), stop_rule.stop_error(
                    code, last, loss, float(flags.loss0[j]), o.divergence_factor,
                    r.evals[-1][1] if r.evals else None))
            for ledger in ledgers:
                ledger.write()
            clock += seg_s
            step = stop
            if (writer is not None and step < o.max_steps and writer.due(step)
                    and any(ledger.running for ledger in ledgers)):
                save(step, clock, carry)
        for j, ledger in enumerate(ledgers):
            if ledger.running:
                finish(j, stop_rule.status(Stop.RUNNING, ledger.result.steps_to_target))
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
                finish(j, RunStatus.INTERRUPTED, "interrupted by the user")
        raise
    except (Exception, SystemExit):  # SystemExit: sys.exit() in a submission's code
        error = traceback.format_exc().strip()  # the full traceback, for the rows
        for j, ledger in enumerate(ledgers):
            if ledger.running:
                finish(j, RunStatus.FAILED, error)
        raise
    finally:
        for it in host_batches or ():
            it.close()  # stops the prefetch thread


def checkpoint_program(writer: checkpoint.Writer, ledgers: Sequence[TrialLedger], trials: Sequence[TrialSpec],
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


