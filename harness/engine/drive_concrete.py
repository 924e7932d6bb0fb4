"""Driving one AlgoPerf-format trial in concrete-step mode: AlgoPerf's runner loop (a Python
int global_step per step, prepare_for_eval (timed) before each host eval, eval_results handed
back after it, TrainingCompleteError ending the trial with a final eval), with the suite's
keys, schedule, rows and the one stop rule (harness.engine.stop). Both times are kept: the
suite's training-only time_to_target_s and AlgoPerf's (training + its compilation +
prepare_for_eval)."""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
import traceback

import jax
import numpy as np

from harness import interrupt, progress
from harness.algoperf.hooks import (AlgoPerfClock, ConcreteSteps, record_eval,
                                    timed_prepare_for_eval)
from harness.data.prefetch import prefetch
from harness.engine import stop as stop_rule
from harness.engine.context import GroupContext
from harness.engine.evaluator import Evaluator
from harness.engine.ledger import start_ledger
from harness.engine.stop import Stop
from harness.progress import Phase
from harness.records.status import RunStatus
from harness.records.trial import HOST_PREFETCH, TrialResult
from harness.trial import trial_keys

log = logging.getLogger(__name__)


def run_concrete(ctx: GroupContext, index: int, reason: str) -> TrialResult:
    """One AlgoPerf-format trial in concrete-step mode (module docstring): AlgoPerf's runner
    loop with the suite's keys, schedule, stops and rows."""
    w, o, trial = ctx.workloads[index], ctx.resolved, ctx.trials[index]
    sub = dataclasses.replace(ctx.submission, hparams=ctx.hparams[index])
    module = sub.module
    hooks = sub.capabilities.eval_hooks
    if hooks:
        module.eval_results.clear()
        module.train_state.update(validation_goal_reached=False, training_complete=False,
                                  accumulated_submission_time=0.0)
    log.info("%s: submission %s runs in concrete-step mode (%s)", w.spec, sub.name, reason)
    progress.emit(Phase.PREPARING, (index,))
    ledger = start_ledger(ctx, index, 1, "concrete", None, reason)
    r = ledger.result
    evaluate = Evaluator(w, eval_batches=ctx.eval_batches)
    clock = AlgoPerfClock()
    snaps = ctx.snapshot_steps
    compile_s = 0.0
    host_batches = None
    try:
        keys = trial_keys(trial.seed)
        params, model_state = w.init(keys["init"])
        state = (params, model_state, module.init_optimizer_state(w, params, model_state, sub.hparams,
                                                                  keys["optimizer"]))
        if ctx.on_snapshot is not None and snaps and snaps[0] == 0:
            progress.emit(Phase.SNAPSHOT, (index,), step=0, snapshot=1, snapshots=len(snaps))
            ctx.on_snapshot(r.run_id, 0, state[0], state[1])
        if w.input_mode == "host":  # the trial's own batch stream, as in compiled chunks
            host_batches = prefetch(w.train_batches(ctx.dataset, ctx.batch_size, trial.seed),
                                    HOST_PREFETCH)
        stepper = ConcreteSteps(w, sub, ctx.batch_size, host_batches)
        step, loss0 = 0, None
        while step < o.max_steps:
            interrupt.check()  # a Ctrl-C swallowed where it came (harness.interrupt) stops here
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
            bad = stop_rule.loss_diverged(losses, np.nan if loss0 is None else loss0,
                                          o.divergence_factor, np)
            if bad.any():
                first_bad = int(np.argmax(bad))
                r.final_step = step + first_bad + 1
                ledger.finish(RunStatus.DIVERGED, stop_rule.stop_error(
                    Stop.LOSS_DIVERGED, r.final_step, float(losses[first_bad]),
                    np.nan if loss0 is None else loss0, o.divergence_factor), compile_s, 0)
                return r
            done = completed is not None
            if done or last % o.eval_every == 0 or last == o.max_steps:
                if sub.capabilities.prepare_for_eval:
                    state, prepare_s = timed_prepare_for_eval(sub, w, state, last, trial.seed)
                    clock.prepare_s += prepare_s
                progress.emit(Phase.EVALUATING, (index,), step=last)
                t1 = time.perf_counter()
                metrics = evaluate(state[0], state[1])
                r.eval_s += time.perf_counter() - t1
                finite = bool(np.all(np.isfinite(list(metrics.values()))))
                met = bool(w.target.reached(metrics)) and finite
                active, code, _ = stop_rule.after_eval(
                    np.bool_(True), np.bool_(met), np.bool_(finite), int(Stop.RUNNING), -1, last,
                    o.stop_at_target, np)
                if met and r.algoperf_time_to_target_s is None:
                    r.algoperf_time_to_target_s = clock.total_s
                ledger.evaluated(last, metrics, met, clock.train_s)
                ledger.write()
                if hooks:
                    record_eval(sub, last, w.target.split, metrics, clock, met)
                if code == Stop.EVAL_NOT_FINITE:
                    ledger.finish(RunStatus.DIVERGED,
                                  stop_rule.stop_error(code, last, 0.0, 0.0, None, metrics),
                                  compile_s, 0)
                    return r
                done = done or not active
            if ctx.on_snapshot is not None and last in snaps:
                progress.emit(Phase.SNAPSHOT, (index,), step=last,
                              snapshot=snaps.index(last) + 1, snapshots=len(snaps))
                ctx.on_snapshot(r.run_id, last, state[0], state[1])
            if hooks:
                module.train_state["training_complete"] = completed is not None
            if done:
                break
            step = last
        ledger.finish(stop_rule.status(Stop.RUNNING, r.steps_to_target), None,
                      compile_s, int(stepper.first_call_s > 0))
        return r
    except KeyboardInterrupt:
        if ledger.running:  # an outcome already written stays (it was whole: ledger.finish)
            ledger.finish(RunStatus.INTERRUPTED, "interrupted by the user", compile_s, 0)
        raise
    except (Exception, SystemExit):  # SystemExit: sys.exit() in a submission's code
        if ledger.running:
            ledger.finish(RunStatus.FAILED, traceback.format_exc().strip(), compile_s, 0)
        raise
    finally:
        if host_batches is not None:
            host_batches.close()  # stops the prefetch thread


