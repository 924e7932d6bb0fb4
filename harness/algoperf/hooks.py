"""The runner hooks AlgoPerf has, as library pieces, and the spec of how the runner uses them.

AlgoPerf's runner (its `submission_runner.py`) calls a submission once per step in Python:
`data_selection`, then `update_params(..., eval_results, global_step, ...)`; when an eval is due
it first calls `prepare_for_eval` (timed), then evaluates (untimed) and appends
`(global_step, metrics)` to `eval_results`; `update_params` may raise `TrainingCompleteError` to
end training with a final eval. Its score is the accumulated *submission time*: the wall time
of data_selection + update_params (JIT compilation included, since the submission compiles on
its first call) + prepare_for_eval, excluding evals and logging.

Spec for `harness/runner.py`, which implements it (deviations noted in item 3 and at the end):

1. `prepare_for_eval` before each eval. When `submission.capabilities.prepare_for_eval` (the
   adapter's `has_prepare_for_eval`) is true, before every eval at step t call
   `state, prepare_s = timed_prepare_for_eval(submission, workload, state, t, seed)`.
   The returned state is what is evaluated *and* what training continues from (AlgoPerf's
   semantics). `prepare_s` is added to the AlgoPerf clock (item 4), not to `train_s`.
   Curvature snapshots at an eval step are taken after it.
2. `eval_results` passed in. After every eval at step t with metrics m on split s, call
   `record_eval(submission, t, s, m, clock)`; the adapter hands `eval_results` (and
   `train_state`) to `update_params`/`prepare_for_eval` from then on. Inside a compiled chunk a
   submission that *reads* them raises `NeedsConcreteStep` (item 3): their values would be
   frozen into the compiled program.
3. Concrete-step mode. Tracing a step may raise `NeedsConcreteStep` (from
   `harness.algoperf.adapter`; its `.reason` is an `EagerReason`). The runner traces one step
   (shapes only) before the trial's first row is written, so a trial never starts in one mode
   and restarts in the other; when it raises, the trial trains with `ConcreteSteps` (below)
   for all its steps (chunk_mode "concrete", the reason recorded with the run, e.g.
   `reason.name`): `state, losses, completed_at = ConcreteSteps(workload, submission,
   batch_size).run(state, data, start_step, n, train_key)`. Each step gets a Python int `global_step`; the
   submission's own `jax.jit` compiles on its first call, which `ConcreteSteps.first_call_s`
   reports (the runner adds it to `compile_s` and subtracts it from `train_s`; AlgoPerf's clock
   keeps it). The same data/update keys as the compiled chunks are used (RNG_DERIVATION), so a
   submission that runs in both modes trains identically. The state returned owns its buffers
   (`own_buffers`), so the runner's donation is safe.
4. `TrainingCompleteError` ends a trial cleanly. `ConcreteSteps.run` stops at the step whose
   `update_params` raised it and returns `completed_at` (the number of steps done, the
   raising step not counted, as AlgoPerf does not apply it). The runner then evaluates at that
   step (a final eval even off the eval schedule), records it, and finishes the trial:
   status "reached" if that eval meets the target, else "not_reached" (AlgoPerf scores a run
   that stopped early without reaching the target as infinite). Raised in a compiled chunk it
   is `NeedsConcreteStep(TRAINING_COMPLETE)` (item 3).
5. AlgoPerf's time. Keep an `AlgoPerfClock` per trial: `train_s` and `compile_s` of the training
   chunks (not of evals), `prepare_s`, and in concrete mode the submission's first-call time.
   `clock.total_s` at the first eval that meets the target is AlgoPerf's time-to-target; store it
   beside the suite's training-only `time_to_target_s` (a new runs column,
   `algoperf_time_to_target_s`, with its own migration), and let `score` choose
   (`--timing algoperf|training`).
6. The run record also stores which search point the hyperparameters came from:
   `submission.search_point` (and the adapter's `search_point`) is `(k, seed)` or None
   (hparams.json).

7. Groups (harness/engine/plan.py). An AlgoPerf submission's optimizer state usually holds
   Python objects built from the hyperparameters in `init_optimizer_state` (optax's update
   function closing over a schedule); the adapter keeps them outside the traced state, one set
   per adapter. So a compiled program may hold several *seeds* of one hyperparameter point, not
   several points: group AlgoPerf trials by their full hparams, and pass those hparams as static
   Python values (submissions compute Python ints from them, e.g. warmup steps). Submissions
   with `prepare_for_eval`, or in concrete-step mode, need host evaluation (not the in-loop
   eval), since prepare_for_eval runs on the host before each eval.

`prepare_for_eval` and `ConcreteSteps` derive their keys from the trial seed like the runner:
`key = fold_in(PRNGKey(0), seed)`; prepare_for_eval at step t: `fold_in(fold_in(key, 3), t)`
(stored in runs.rng_derivation of AlgoPerf-format runs, after RNG_DERIVATION). A submission with
prepare_for_eval runs in concrete-step mode too (reason "PREPARE_FOR_EVAL"), so that
prepare_for_eval and the host eval sit between steps; one whose prepare_for_eval is AlgoPerf's
no-op (returns its inputs: `adapter.returns_its_inputs`) does not declare it. On a host-fed
workload (ogbg_molpcba) `ConcreteSteps` draws each batch from the trial's own batch stream
(`workload.train_batches`), as the compiled chunks do.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness.algoperf.adapter import AlgoPerfSubmission
from harness.algoperf.api.spec import TrainingCompleteError
from harness.spec import Workload

PREPARE_RNG_DERIVATION = "prepare_for_eval at step t: fold_in(fold_in(key, 3), t)"


@dataclasses.dataclass
class AlgoPerfClock:
    """AlgoPerf's submission time of one trial, in parts (seconds)."""

    train_s: float = 0.0
    compile_s: float = 0.0
    prepare_s: float = 0.0
    first_call_s: float = 0.0

    @property
    def total_s(self) -> float:
        """What AlgoPerf's runner accumulates: training, its compilation, prepare_for_eval."""
        return self.train_s + self.compile_s + self.prepare_s + self.first_call_s


def prepare_key(seed: int, step: int) -> jax.Array:
    """The key prepare_for_eval gets at `step` (PREPARE_RNG_DERIVATION)."""
    key = jax.random.fold_in(jax.random.PRNGKey(0), seed)
    return jax.random.fold_in(jax.random.fold_in(key, 3), step)


def own_buffers(tree: Any) -> Any:
    """The same pytree with every array that appears twice copied, so donating it is safe."""
    seen: set[int] = set()

    def owned(x):
        if isinstance(x, jax.Array) and id(x) in seen:
            return jnp.copy(x)
        seen.add(id(x))
        return x

    return jax.tree_util.tree_map(owned, tree)


def _block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def timed_prepare_for_eval(submission: Any, workload: Workload, state: tuple, step: int,
                           seed: int) -> tuple[tuple, float]:
    """Run the submission's prepare_for_eval on the runner's (params, model_state, opt_state);
    returns the new state and its wall time (as AlgoPerf times it: until the results are ready)."""
    module: AlgoPerfSubmission = submission.module
    params, model_state, opt_state = state
    t0 = time.perf_counter()
    new = module.prepare_for_eval(workload, params, model_state, opt_state, submission.hparams,
                                  int(step), prepare_key(seed, step))
    new = _block(own_buffers(new))
    return new, time.perf_counter() - t0


def algoperf_eval_result(split: str, metrics: Mapping[str, float], clock: AlgoPerfClock) -> dict[str, float]:
    """Metrics as AlgoPerf's eval_results carry them: `split/metric`, plus the times so far."""
    out = {f"{split}/{k}": float(v) for k, v in metrics.items()}
    out["score"] = out["accumulated_submission_time"] = clock.total_s
    return out


def record_eval(submission: Any, step: int, split: str, metrics: Mapping[str, float],
                clock: AlgoPerfClock, reached: bool = False) -> None:
    """Append (step, metrics) to the eval_results the submission sees; update its train_state."""
    module: AlgoPerfSubmission = submission.module
    module.eval_results.append((int(step), algoperf_eval_result(split, metrics, clock)))
    module.train_state["accumulated_submission_time"] = clock.total_s
    module.train_state["validation_goal_reached"] |= bool(reached)


class ConcreteSteps:
    """Training steps with a Python int global_step, outside any compiled chunk, as AlgoPerf's
    runner calls a submission: the suite's batch sampler is compiled once; data_selection and
    update_params run eagerly (the submission's own jit does the compiling)."""

    def __init__(self, workload: Workload, submission: Any, batch_size: int,
                 host_batches: Iterator[Any] | None = None):
        self.workload, self.submission, self.batch_size = workload, submission, batch_size
        self.first_call_s = 0.0
        self._calls = 0
        self._sample = jax.jit(lambda data, rng: workload.sample_batch(data, rng, batch_size))
        #: a host-fed workload's batches (`workload.train_batches`): each draw takes the next
        self.host_batches = host_batches

    def _next_batch(self, data: Any, rng: jax.Array) -> Any:
        if self.host_batches is not None:
            return next(self.host_batches)
        return self._sample(data, rng)

    def run(self, state: tuple, data: Any, start_step: int, n: int, train_key: jax.Array
            ) -> tuple[tuple, np.ndarray, int | None]:
        """Advance up to n steps; returns (state, losses of the steps done, completed_at), where
        completed_at is the step count at which the submission raised TrainingCompleteError, or
        None when all n steps ran."""
        module: AlgoPerfSubmission = self.submission.module
        hparams, w = self.submission.hparams, self.workload
        params, model_state, opt_state = state
        losses = []
        for step in range(start_step, start_step + n):
            t0 = time.perf_counter()
            data_rng, update_rng = jax.random.split(jax.random.fold_in(train_key, step))
            try:
                batch = module.data_selection(w, lambda rng: self._next_batch(data, rng), opt_state,
                                              params, model_state, hparams, step, data_rng)
                params, model_state, opt_state, metrics = module.update_params(
                    w, params, model_state, opt_state, batch, hparams, step, update_rng)
            except TrainingCompleteError:
                return (params, model_state, opt_state), np.asarray(losses, np.float32), step
            losses.append(metrics["loss"])
            if self._calls == 0:
                _block(params)
                self.first_call_s = time.perf_counter() - t0
            self._calls += 1
        state = own_buffers((params, model_state, opt_state))
        return state, np.asarray(jax.device_get(losses), np.float32), None
