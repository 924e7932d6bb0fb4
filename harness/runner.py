"""Run one trial: compiled chunks of training steps between evals, rows written as they happen.

A trial is workload variant x submission (+hparams) x seed. Steps run in compiled
chunks (a rolled `lax.scan`, or one dispatched step per call where XLA:CPU is slow in
loops); the loop stops at eval steps, snapshot steps and the step budget. Compile time
is measured separately (ahead-of-time compilation), so time-to-target counts training only.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness import environment, guards
from harness.data.prefetch import prefetch
from harness.db import Database
from harness.db.models import RunOrigin, utcnow
from harness.spec import Dataset, SpecError, Workload
from harness.submissions import Submission

CHUNK_MODES = ("auto", "scan", "unroll", "step")
RNG_DERIVATION = ("key = fold_in(PRNGKey(0), seed); init = fold_in(key, 0); "
                  "optimizer = fold_in(key, 1); step t: (data, update) = split(fold_in(fold_in(key, 2), t))")
HOST_PREFETCH = 8
#: host-mode chunks stack one host batch per step: cap their length so memory stays bounded.
HOST_CHUNK_STEPS = 32
#: a trial diverges when its training loss exceeds this multiple of its step-0 loss (the rule of
#: Kalra & Barkeshli, "Phase diagram of early training dynamics in deep neural networks", 2023)
DIVERGENCE_FACTOR = 1e5


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial of a group that shares a compiled shape: its seed and its full hyperparameters."""

    seed: int
    hparams: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class TrialOptions:
    """How trials run and how their rows are labelled; the same for every trial of a group.

    stop_at_target=False trains the whole budget and still records the first step that met the
    target. divergence_factor=None: only a non-finite loss counts as divergence.
    """

    max_steps: int | None = None
    eval_every: int | None = None
    chunk_mode: str = "auto"
    stop_at_target: bool = True
    divergence_factor: float | None = DIVERGENCE_FACTOR
    origin: RunOrigin = RunOrigin.RUN
    tag: str | None = None
    sweep_id: str | None = None


@dataclasses.dataclass
class TrialResult:
    """What a trial measured; the same numbers are in the database row of `run_id`."""

    run_id: str
    workload: str
    submission: str
    seed: int
    status: str = "running"
    steps_to_target: int | None = None
    time_to_target_s: float | None = None
    compile_s: float = 0.0
    compiles: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    final_step: int = 0
    chunk_mode: str = ""
    error: str | None = None
    evals: list[tuple[int, dict[str, float]]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["evals"] = [{"step": s, **m} for s, m in self.evals]
        return d


def trial_keys(seed: int) -> dict[str, jax.Array]:
    """All randomness of a trial, derived from the seed as RNG_DERIVATION says."""
    key = jax.random.fold_in(jax.random.PRNGKey(0), seed)
    return {"init": jax.random.fold_in(key, 0), "optimizer": jax.random.fold_in(key, 1),
            "train": jax.random.fold_in(key, 2)}


def pick_chunk_mode(workload: Workload, requested: str = "auto") -> str:
    """scan everywhere, except one dispatched step per call for conv nets on XLA:CPU."""
    if requested not in CHUNK_MODES:
        raise SpecError(f"unknown chunk mode {requested!r}; valid: {', '.join(CHUNK_MODES)}")
    if requested != "auto":
        return requested
    if jax.default_backend() == "cpu" and workload.slow_in_cpu_loops:
        return "step"
    return "scan"


def _signature(args: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return (treedef, tuple((np.shape(x), np.result_type(x).str) for x in leaves))


class CompileCache:
    """Ahead-of-time compiled functions keyed by argument shapes; counts compiles and their time."""

    def __init__(self, fn: Callable, donate_argnums: tuple[int, ...] = (), **jit_kwargs: Any):
        self._jitted = jax.jit(fn, donate_argnums=donate_argnums, **jit_kwargs)
        self._compiled: dict[tuple, Any] = {}
        self.compile_s = 0.0
        self.compiles = 0

    def __call__(self, *args: Any) -> Any:
        sig = _signature(args)
        compiled = self._compiled.get(sig)
        if compiled is None:
            t0 = time.perf_counter()
            compiled = self._jitted.lower(*args).compile()
            self.compile_s += time.perf_counter() - t0
            self.compiles += 1
            self._compiled[sig] = compiled
        return compiled(*args)


class StepChunks:
    """The compiled training chunks of one trial: n steps of data_selection + update_params."""

    def __init__(self, workload: Workload, submission: Submission, batch_size: int, mode: str):
        self.workload, self.submission = workload, submission
        self.batch_size, self.mode = batch_size, mode
        self.host = workload.input_mode == "host"
        self._caches: dict[int, CompileCache] = {}

    def _body(self, data: Any, train_key: jax.Array) -> Callable:
        w, sub, hp = self.workload, self.submission.module, self.submission.hparams

        def body(state, xs):
            params, model_state, opt_state = state
            step, fed_batch = xs
            data_rng, update_rng = jax.random.split(jax.random.fold_in(train_key, step))
            if self.host:
                def next_batch(_rng):
                    return fed_batch
            else:
                def next_batch(rng):
                    return w.sample_batch(data, rng, self.batch_size)
            batch = sub.data_selection(w, next_batch, opt_state, params, model_state, hp, step, data_rng)
            params, model_state, opt_state, metrics = sub.update_params(
                w, params, model_state, opt_state, batch, hp, step, update_rng)
            return (params, model_state, opt_state), metrics["loss"]

        return body

    def _chunk_fn(self, n: int) -> Callable:
        """n steps in one compiled call: a rolled lax.scan ("scan"), or the body traced n times
        with no loop at all ("step", "unroll") — XLA:CPU runs convolutions inside any loop,
        even a one-trip scan, on a slow path."""

        def chunk(state, data, start_step, train_key):
            steps = start_step + jnp.arange(n, dtype=jnp.int32)
            fed = data if self.host else jnp.zeros((n,))
            body = self._body(data, train_key)
            if self.mode == "scan":
                return jax.lax.scan(body, state, (steps, fed))
            losses = []
            for i in range(n):
                state, loss = body(state, (steps[i], jax.tree_util.tree_map(lambda x: x[i], fed)))
                losses.append(loss)
            return state, jnp.stack(losses)

        return chunk

    def run(self, state: Any, data: Any, start_step: int, n: int, train_key: jax.Array,
            host_batches: Iterator | None = None) -> tuple[Any, jax.Array]:
        """Advance `n` steps from `start_step`; returns the new state and the n losses (on device)."""
        per_call = 1 if self.mode == "step" else min(n, HOST_CHUNK_STEPS) if self.host else n
        losses = []
        for offset in range(0, n, per_call):
            cache = self._caches.get(per_call)
            if cache is None:
                cache = self._caches[per_call] = CompileCache(self._chunk_fn(per_call), donate_argnums=(0,))
            if self.host:
                data = _stack([next(host_batches) for _ in range(per_call)])
            state, loss = cache(state, data, jnp.int32(start_step + offset), train_key)
            losses.append(loss)
        return state, jnp.concatenate(losses) if len(losses) > 1 else losses[0]

    @property
    def compile_s(self) -> float:
        return sum(c.compile_s for c in self._caches.values())

    @property
    def compiles(self) -> int:
        return sum(c.compiles for c in self._caches.values())


def _stack(batches: list[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *batches)


class Evaluator:
    """Compiled evaluation of one split: device-resident batches, one host sync per eval."""

    def __init__(self, workload: Workload, split_data: Any):
        self.workload = workload
        self.batches = [jax.device_put(b) for b in workload.eval_batches(split_data,
                                                                        workload.eval_batch_size)]
        if not self.batches:
            raise SpecError(f"{workload.name}: evaluation split is empty")
        self.cache = CompileCache(workload.eval_batch)

    def __call__(self, params: Any, model_state: Any) -> dict[str, float]:
        outs = [self.cache(params, model_state, b) for b in self.batches]
        return self.workload.finalize_metrics(jax.device_get(outs))


def run_trial(workload: Workload, submission: Submission, dataset: Dataset, seed: int, *,
              db: Database | None = None, max_steps: int | None = None,
              eval_every: int | None = None, chunk_mode: str = "auto",
              stop_at_target: bool = True, divergence_factor: float | None = DIVERGENCE_FACTOR,
              origin: RunOrigin = RunOrigin.RUN, tag: str | None = None,
              sweep_id: str | None = None,
              snapshot_steps: Iterable[int] = (),
              on_snapshot: Callable[[str, int, Any, Any], None] | None = None,
              on_eval: Callable[[int, dict[str, float]], None] | None = None) -> TrialResult:
    """Train until the first eval that meets the target (unless stop_at_target is off),
    divergence, or the step budget. The keyword arguments after `db` are TrialOptions' fields."""
    max_steps = int(workload.max_steps if max_steps is None else max_steps)
    eval_every = int(workload.eval_every if eval_every is None else eval_every)
    if max_steps < 1 or eval_every < 1:
        raise SpecError(f"max_steps ({max_steps}) and eval_every ({eval_every}) must be >= 1")
    target = workload.target
    if target.split not in dataset.splits:
        raise SpecError(f"dataset {dataset.name} has no {target.split!r} split for the target")
    mode = pick_chunk_mode(workload, chunk_mode)
    batch_size = submission.batch_size(workload.name, workload.batch_size)
    guards.check_trial_fits(workload, dataset, batch_size, max_steps, eval_every)
    run_id = str(uuid.uuid4())
    result = TrialResult(run_id=run_id, workload=workload.spec, submission=submission.name,
                         seed=seed, chunk_mode=mode)
    env = environment.fingerprint()
    if db is not None:
        db.start_run(
            id=run_id, workload=workload.name, variant=workload.spec,
            workload_version=workload.version, submission=submission.name,
            submission_path=str(submission.path), submission_hash=submission.code_hash,
            hparams=submission.hparams, seed=seed, rng_derivation=RNG_DERIVATION,
            batch_size=batch_size, max_steps=max_steps, eval_every=eval_every, chunk_mode=mode,
            data_source=dataset.source, data_fingerprint=dataset.fingerprint,
            jax_version=env["jax_version"], jaxlib_version=env["jaxlib_version"],
            backend=env["backend"], device_kind=env["device_kind"], xla_flags=env["xla_flags"],
            git_commit=env["git_commit"], environment=env, status="running",
            host=socket.gethostname(), pid=os.getpid(), origin=RunOrigin(origin).value, tag=tag,
            sweep_id=sweep_id, group_size=1, stop_at_target=stop_at_target,
            divergence_factor=divergence_factor)

    pending_losses: list[np.ndarray] = []
    pending_start = 0

    def flush_losses() -> tuple[int, np.ndarray] | None:
        nonlocal pending_start
        if not pending_losses:
            return None
        values = np.concatenate(pending_losses)
        start, pending_start = pending_start, pending_start + values.size
        pending_losses.clear()
        return start, values

    def finish(status: str, error: str | None = None) -> TrialResult:
        result.status, result.error = status, error
        if db is not None and (rest := flush_losses()) is not None:
            db.add_losses(run_id, *rest)
        eval_caches = [evaluator.cache] if evaluator is not None else []
        result.compile_s = chunks.compile_s + sum(c.compile_s for c in eval_caches)
        result.compiles = chunks.compiles + sum(c.compiles for c in eval_caches)
        if db is not None:
            db.update_run(run_id, status=status, error=error, compile_s=result.compile_s,
                          compiles=result.compiles, train_s=result.train_s, eval_s=result.eval_s,
                          final_step=result.final_step, steps_to_target=result.steps_to_target,
                          time_to_target_s=result.time_to_target_s,
                          finished_at=utcnow())
        return result

    chunks = StepChunks(workload, submission, batch_size, mode)
    evaluator = host_batches = None
    try:
        keys = trial_keys(seed)
        evaluator = Evaluator(workload, dataset.splits[target.split])
        params, model_state = workload.init(keys["init"])
        opt_state = submission.module.init_optimizer_state(workload, params, model_state,
                                                           submission.hparams, keys["optimizer"])
        state = (params, model_state, opt_state)
        if workload.input_mode == "host":
            train_data = None
            host_batches = prefetch(workload.train_batches(dataset, batch_size, seed), HOST_PREFETCH)
        else:
            train_data = jax.device_put(dict(dataset.splits["train"]))
        snapshot_steps = sorted({int(s) for s in snapshot_steps if 0 <= int(s) <= max_steps})
        eval_steps = set(range(eval_every, max_steps + 1, eval_every)) | {max_steps}
        stops = sorted(eval_steps | set(snapshot_steps) - {0})
        if on_snapshot is not None and 0 in snapshot_steps:
            on_snapshot(run_id, 0, state[0], state[1])
        t_start = time.perf_counter()
        step = 0
        initial_loss = float("nan")
        for stop in stops:
            t0 = time.perf_counter()
            compile_before = chunks.compile_s
            state, losses = chunks.run(state, train_data, step, stop - step, keys["train"],
                                       host_batches)
            losses = np.asarray(jax.device_get(losses))
            result.train_s += time.perf_counter() - t0 - (chunks.compile_s - compile_before)
            if step == 0:
                initial_loss = float(losses[0])
            too_high = (losses > divergence_factor * initial_loss
                        if divergence_factor is not None and np.isfinite(initial_loss)
                        else np.zeros(losses.shape, bool))
            bad = np.flatnonzero(~np.isfinite(losses) | too_high)
            if bad.size:
                pending_losses.append(losses[:bad[0] + 1])
                result.final_step = step + int(bad[0]) + 1
                why = ("became" if not np.isfinite(losses[bad[0]]) else
                       f"exceeded {divergence_factor:g} x the step-0 loss {initial_loss:.4g}:")
                return finish("diverged", f"loss {why} {losses[bad[0]]:.4g} at step {result.final_step}")
            pending_losses.append(losses)
            step = result.final_step = stop
            if on_snapshot is not None and stop in snapshot_steps:
                on_snapshot(run_id, stop, state[0], state[1])
            if stop not in eval_steps:
                continue
            t0 = time.perf_counter()
            compile_before = evaluator.cache.compile_s
            metrics = evaluator(state[0], state[1])
            result.eval_s += time.perf_counter() - t0 - (evaluator.cache.compile_s - compile_before)
            result.evals.append((stop, metrics))
            reached = target.reached(metrics)
            if reached and result.steps_to_target is None:
                result.steps_to_target, result.time_to_target_s = stop, result.train_s
            if db is not None:
                db.add_eval(run_id, stop, target.split, metrics,
                            wall_s=time.perf_counter() - t_start, train_s=result.train_s,
                            losses=flush_losses(), final_step=stop,
                            steps_to_target=result.steps_to_target,
                            time_to_target_s=result.time_to_target_s)
            if on_eval is not None:
                on_eval(stop, metrics)
            if not np.all(np.isfinite(list(metrics.values()))):
                return finish("diverged", f"eval metrics not finite at step {stop}: {metrics}")
            if reached and stop_at_target:
                return finish("reached")
        return finish("not_reached" if result.steps_to_target is None else "reached")
    except KeyboardInterrupt:
        finish("interrupted", "interrupted by the user")
        raise
    except Exception:
        finish("failed", traceback.format_exc().strip())  # the full traceback, for the row
        raise
    finally:
        if host_batches is not None:
            host_batches.close()  # stops the prefetch thread



def run_group(workload: Workload, submission: Submission, dataset: Dataset,
              trials: Sequence[TrialSpec], *, db: Database | None = None,
              options: TrialOptions = TrialOptions(),
              snapshot_steps: Iterable[int] = (),
              on_snapshot: Callable[[str, int, Any, Any], None] | None = None,
              on_eval: Callable[[int, int, dict[str, float]], None] | None = None
              ) -> list[TrialResult]:
    """Run trials that share a compiled shape (variant, submission, batch size), one after the
    other. A trial's hparams override the submission's (known names only);
    on_eval(trial_index, step, metrics)."""
    results = []
    for index, trial in enumerate(trials):
        unknown = sorted(set(trial.hparams) - set(submission.hparams))
        if unknown:
            raise SpecError(f"submission {submission.name} has no hyperparameter "
                            f"{', '.join(unknown)}; valid: {', '.join(sorted(submission.hparams))}")
        hparams = {**submission.hparams, **trial.hparams}
        results.append(run_trial(
            workload, dataclasses.replace(submission, hparams=hparams), dataset,
            trial.seed, db=db, **vars(options), snapshot_steps=snapshot_steps,
            on_snapshot=on_snapshot,
            on_eval=None if on_eval is None else functools.partial(on_eval, index)))
    return results
