"""A group's compiled functions: trials that share a compiled shape run as ONE program.

A program's trials (seeds, and numeric hyperparameters) are a leading axis of length T of
every array of the training state; the step (`data_selection` + `update_params`) and the
evaluation are mapped over it (`Batching`: `jax.vmap`, or `lax.map` inside the program, the
CPU default, which computes each trial bit for bit as alone), so hyperparameters reach
`update_params` as traced scalars and one compile serves every seed and every value. A trial
alone (T = 1) is computed by the unbatched ops: the program it ran before vectorisation.
Initial states are computed per trial as alone (op by op, hyperparameters as Python values)
and stacked.

Each trial stops on its own: a per-trial `active` flag is cleared by its first target-reaching
eval (unless stop_at_target is off), by divergence (a non-finite loss, or a loss above
divergence_factor x its step-0 loss: Kalra & Barkeshli, 2023) or by non-finite eval metrics.
A finished trial's state is frozen by `jnp.where` selects, so its final parameters are those
of its stop step; the program ends when every trial has stopped or at the budget.

Two ways to drive a program, chosen per workload (`Program.in_loop_eval`):

* in-loop evaluation (device-mode workloads in "scan" chunk mode whose metrics are sums over
  eval batches, the default `finalize_metrics`, with the eval split stacked on the device up
  to EVAL_IN_LOOP_MAX_BYTES): the training loop, the evaluations and the stopping decisions
  all run inside one compiled `lax.while_loop` over steps, so evaluating every step costs no
  host round trip and steps-to-target is exact to the step. The loop returns to the host every
  SEGMENT_STEPS steps (and at snapshot steps) to write rows. The stop decision compares the
  float32 metric (sum over batches / count) with the target on the device; the recorded
  metrics are `finalize_metrics` of the same per-batch values. Training and eval time are one
  compiled loop here: a trial's train_s includes its evals (eval_s is 0).
* host evaluation (host-mode graph workloads, whose mAP is computed on the host; conv nets on
  XLA:CPU, whose "step"/"unroll" chunk modes have no loop to put an eval in): compiled chunks of
  masked steps up to each eval, then a mapped eval and the decision on the host.

Host-mode (graph) workloads are vectorised too: their batcher yields fixed-shape padded
batches, so one batch iterator per seed (each the iterator that seed has alone) is stacked
along the trial axis.

Where vmapping changes how XLA computes an operation (batched reductions and convolutions
on XLA:CPU), a trial in a group can differ from the same trial alone at float rounding; the
run row's `group_size` says which programs were shared, so bit-exact comparisons compare like
with like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from harness.engine import stop as stop_rule
from harness.engine.stop import Stop
from harness.engine.trial_axis import (KNOB, SEGMENT_STEPS, TRACE_ERRORS, Batching, Carry, Options,
                                       hparam_arrays, select, stack, trial_map)
from harness.spec import SpecError, Workload
from harness.submissions import Submission
from harness.trial import HOST_CHUNK_STEPS, CompileCache

def _checked_update(returned: Any, params: Any, model_state: Any, name: str) -> tuple:
    """update_params' (params, model_state, opt_state, metrics), refused while tracing if it is
    not that tuple or its params/model_state differ in structure, shape or dtype from what was
    given (a wrong shape would otherwise broadcast and train as if nothing were wrong)."""
    fix = ("update_params must return (params, model_state, opt_state, metrics) with params "
           "and model_state of the structure, shapes and dtypes it was given")
    if not isinstance(returned, (tuple, list)) or len(returned) != 4:
        raise SpecError(f"submission {name}: update_params returned {type(returned).__name__}; {fix}")
    for what, given, got in (("params", params, returned[0]), ("model_state", model_state, returned[1])):
        given_leaves, given_tree = jax.tree_util.tree_flatten(given)
        got_leaves, got_tree = jax.tree_util.tree_flatten(got)
        if given_tree != got_tree:
            raise SpecError(f"submission {name}: update_params returned {what} of another "
                            f"structure ({got_tree} for {given_tree}); {fix}")
        for a, b in zip(given_leaves, got_leaves):
            if jnp.shape(a) != jnp.shape(b) or jnp.result_type(a) != jnp.result_type(b):
                raise SpecError(f"submission {name}: update_params returned {what} with a "
                                f"{jnp.result_type(b)}{list(jnp.shape(b))} array for a "
                                f"{jnp.result_type(a)}{list(jnp.shape(a))} one; {fix}")
    if not isinstance(returned[3], dict) or "loss" not in returned[3]:
        raise SpecError(f"submission {name}: update_params' metrics must be a dict with 'loss'")
    return tuple(returned)


class Program:
    """The compiled functions of one (workload variant, submission, batch size, static
    hyperparameters, chunk mode): shared by every piece of trials run with them, so trials
    run one after the other compile once (the trial axis length is part of the shape)."""

    def __init__(self, workload: Workload, submission: Submission, static: Mapping[str, Any],
                 traced: Sequence[str], batch_size: int, mode: str, options: Options,
                 in_loop_eval: bool, batching: Batching = Batching.AUTO,
                 switch: Sequence[str] = ()):
        self.workload, self.module, self.name = workload, submission.module, submission.name
        self.switch = tuple(switch)
        self.static, self.traced = dict(static), tuple(traced)
        self.batch_size, self.mode, self.options = batch_size, mode, options
        self.host = workload.input_mode == "host"
        self.in_loop_eval = in_loop_eval
        self.batching = batching.resolve()
        self._segment = CompileCache(self._segment_fn, donate_argnums=(0,))
        self._eval = CompileCache(trial_map(self._eval_batch, (0, 0, 0, None), self.batching,
                                            loop=mode == "scan"))
        self._chunks: dict[int, CompileCache] = {}

    # -- traced functions ------------------------------------------------------------------

    def hparams(self, hp: Mapping[str, jax.Array]) -> dict[str, Any]:
        return {**self.static, **{k: v for k, v in hp.items() if not k.startswith(KNOB)}}

    def trial_workload(self, hp: Mapping[str, jax.Array]) -> Workload:
        """The workload one trial trains: with the runtime knobs this program switches
        (`switch`) selected by the trial's indices in `hp`, else the program's own."""
        if not self.switch:
            return self.workload
        return self.workload.selecting({k: hp[KNOB + k] for k in self.switch})

    def _eval_batch(self, params, model_state, hp, batch):
        return self.trial_workload(hp).eval_batch(params, model_state, batch)

    def _step(self, carry: Carry, step, data, fed, hp, train_keys) -> tuple[Carry, jax.Array]:
        """One training step of every active trial; finished trials keep their state."""
        sub = self.module

        def one(state, hp_i, key_i, fed_i):
            w = self.trial_workload(hp_i)
            params, model_state, opt_state = state
            data_rng, update_rng = jax.random.split(jax.random.fold_in(key_i, step))
            if self.host:
                def next_batch(_rng):
                    return fed_i
            else:
                def next_batch(rng):
                    return w.sample_batch(data, rng, self.batch_size)
            hparams = self.hparams(hp_i)
            batch = sub.data_selection(w, next_batch, opt_state, params, model_state, hparams,
                                       step, data_rng)
            returned = sub.update_params(
                w, params, model_state, opt_state, batch, hparams, step, update_rng)
            params, model_state, opt_state, metrics = _checked_update(
                returned, params, model_state, self.name)
            return (params, model_state, opt_state), metrics["loss"]

        new_state, loss = trial_map(one, (0, 0, 0, 0 if self.host else None), self.batching,
                                   loop=self.mode == "scan")(
            carry.state, hp, train_keys, fed)
        loss0 = jnp.where(step == 0, loss, carry.loss0)
        bad = stop_rule.loss_diverged(loss, loss0, self.options.divergence_factor, jnp)
        active = carry.active
        return Carry(state=select(active, new_state, carry.state), active=active & ~bad,
                     loss0=loss0, final_step=jnp.where(active, step + 1, carry.final_step),
                     reached_step=carry.reached_step,
                     stop=jnp.where(active & bad, int(Stop.LOSS_DIVERGED), carry.stop)), loss

    def _eval_all(self, state, eval_data, hp, active=None):
        """eval_batch of every trial on every (stacked) eval batch: leaves (batches, T);
        trials not `active` are skipped where trial_map can (their outputs unused)."""
        params, model_state, _ = state

        def per_batch(_, batch):
            return None, trial_map(self._eval_batch, (0, 0, 0, None), self.batching)(
                params, model_state, hp, batch, active=active)

        return jax.lax.scan(per_batch, None, eval_data)[1]

    def _after_eval(self, carry: Carry, outs, step) -> tuple[Carry, jax.Array]:
        """The device's stop decision after an eval at `step`; returns which trials it saw."""
        target = self.workload.target
        seen = carry.active
        sums = {k: v.sum(0) for k, v in outs.items()}
        finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in sums.values()]), axis=0)
        value = sums[target.metric] / jnp.maximum(sums["count"], 1.0)
        met = value >= target.value if target.direction == "max" else value <= target.value
        active, stop, reached_step = stop_rule.after_eval(
            seen, met, finite, carry.stop, carry.reached_step, step,
            self.options.stop_at_target, jnp)
        return carry._replace(active=active, reached_step=reached_step, stop=stop), seen

    def _segment_fn(self, carry: Carry, data, eval_data, hp, train_keys, start, stop,
                    eval_every, max_steps):
        """Steps start..stop-1 (fewer if every trial stops) with in-loop evals: the carry, the
        losses (SEGMENT_STEPS, T), which trials each step's eval saw, and its per-batch outputs."""
        t = carry.active.shape[0]
        out_shapes = jax.eval_shape(self._eval_all, carry.state, eval_data, hp)
        empty_outs = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), out_shapes)
        buffers = (jnp.full((SEGMENT_STEPS, t), jnp.nan, jnp.float32),
                   jnp.zeros((SEGMENT_STEPS, t), bool),
                   jax.tree_util.tree_map(lambda s: jnp.zeros((SEGMENT_STEPS,) + s.shape, s.dtype),
                                          out_shapes))

        def cond(loop):
            step, carry, _ = loop
            return (step < stop) & jnp.any(carry.active)

        def body(loop):
            step, carry, (losses, seen, outs) = loop
            carry, loss = self._step(carry, step, data, None, hp, train_keys)
            offset = step - start

            def evaluate(carry):
                o = self._eval_all(carry.state, eval_data, hp, carry.active)
                carry, seen_now = self._after_eval(carry, o, step + 1)
                return carry, seen_now, o

            def skip(carry):
                return carry, jnp.zeros((t,), bool), empty_outs

            is_eval = ((step + 1) % eval_every == 0) | (step + 1 == max_steps)
            carry, seen_now, o = jax.lax.cond(is_eval & jnp.any(carry.active), evaluate, skip, carry)
            losses = losses.at[offset].set(loss)
            seen = seen.at[offset].set(seen_now)
            outs = jax.tree_util.tree_map(lambda b, x: b.at[offset].set(x), outs, o)
            return step + 1, carry, (losses, seen, outs)

        _, carry, buffers = jax.lax.while_loop(cond, body, (start, carry, buffers))
        return (carry,) + buffers

    def _chunk_fn(self, n: int) -> Callable:
        """n masked steps in one compiled call: a rolled lax.scan ("scan"), or the body traced
        n times with no loop at all ("step", "unroll") — XLA:CPU runs convolutions inside any
        loop, even a one-trip scan, on a slow path."""

        def chunk(carry, data, fed, hp, train_keys, start):
            steps = start + jnp.arange(n, dtype=jnp.int32)
            if fed is None:
                fed = jnp.zeros((n,))

            def body(c, xs):
                step, fed_step = xs
                return self._step(c, step, data, fed_step if self.host else None, hp, train_keys)

            if self.mode == "scan":
                return jax.lax.scan(body, carry, (steps, fed))
            losses = []
            for i in range(n):
                carry, loss = body(carry, (steps[i], jax.tree_util.tree_map(lambda x: x[i], fed)))
                losses.append(loss)
            return carry, jnp.stack(losses)

        return chunk

    # -- host side -------------------------------------------------------------------------

    def init(self, keys: Sequence[Mapping[str, jax.Array]],
             hparams: Sequence[Mapping[str, Any]],
             workloads: Sequence[Workload] | None = None) -> Carry:
        """Each trial's initial state, computed as a trial alone computes it (op by op, with its
        hyperparameters as Python values, by its own variant `workloads[i]`), stacked on the
        trial axis."""
        sub = self.module
        states = []
        for i, (k, hp) in enumerate(zip(keys, hparams)):
            w = self.workload if workloads is None else workloads[i]
            params, model_state = w.init(k["init"])
            states.append((params, model_state,
                           sub.init_optimizer_state(w, params, model_state, hp, k["optimizer"])))
        t = len(states)
        return Carry(state=jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states),
                     active=jnp.ones((t,), bool), loss0=jnp.full((t,), jnp.nan, jnp.float32),
                     final_step=jnp.zeros((t,), jnp.int32),
                     reached_step=jnp.full((t,), -1, jnp.int32), stop=jnp.zeros((t,), jnp.int32))

    def segment(self, carry, data, eval_data, hp, train_keys, start: int, stop: int):
        return self._segment(carry, data, eval_data, hp, train_keys, jnp.int32(start),
                             jnp.int32(stop), jnp.int32(self.options.eval_every),
                             jnp.int32(self.options.max_steps))

    def chunks(self, carry: Carry, data, hp, train_keys, start: int, n: int,
               host_batches: Sequence[Iterator] | None) -> tuple[Carry, jax.Array]:
        """Advance n masked steps from `start`; the new carry and the (n, T) losses."""
        per_call = 1 if self.mode == "step" else min(n, HOST_CHUNK_STEPS) if self.host else n
        losses = []
        for offset in range(0, n, per_call):
            cache = self._chunks.get(per_call)
            if cache is None:
                cache = self._chunks[per_call] = CompileCache(self._chunk_fn(per_call),
                                                              donate_argnums=(0,))
            fed = None
            if self.host:
                fed = stack([stack([next(it) for it in host_batches]) for _ in range(per_call)])
            carry, loss = cache(carry, data, fed, hp, train_keys, jnp.int32(start + offset))
            losses.append(loss)
        return carry, jnp.concatenate(losses) if len(losses) > 1 else losses[0]

    def evaluate(self, carry: Carry, eval_batches: Sequence[Any], hp: Mapping[str, jax.Array]
                 ) -> list[Any]:
        """Per-batch eval outputs of every trial (leading axis T), on the host."""
        params, model_state, _ = carry.state
        return jax.device_get([self._eval(params, model_state, hp, b) for b in eval_batches])

    def probe(self, data: Any, fed: Any, example: Mapping[str, Any]) -> str | None:
        """Trace (without compiling) one training step with the hyperparameters traced,
        `example` giving their dtypes; the error text if the submission needs one of them as a
        Python value (it branches on it), else None. Other errors are left to the run, which
        records them in the trials' rows."""
        hp = jax.eval_shape(lambda: hparam_arrays([example], self.traced, [self.workload],
                                                  self.switch))
        key = jax.ShapeDtypeStruct((1, 2), jnp.uint32)
        keys = jax.random.split(jax.random.PRNGKey(0))
        carry = jax.eval_shape(lambda: self.init([{"init": keys[0], "optimizer": keys[1]}],
                                                 [example]))
        try:
            jax.eval_shape(lambda c, f, h, k: self._step(c, jnp.int32(0), data, f, h, k),
                           carry, fed, hp, key)
        except TRACE_ERRORS as e:
            return f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
        except Exception:  # noqa: BLE001 - any other error recurs in the run, which records it
            return None
        return None

    def compile_ahead(self, keys: Sequence[Mapping[str, jax.Array]],
                      hparams: Sequence[Mapping[str, Any]], workloads: Sequence[Workload],
                      data: Any, eval_data: Any) -> None:
        """Compile the in-loop segment for these trials (their keys, hyperparameters and
        variants, as `init` and the driver get them) before it first runs: from abstract
        shapes (nothing trained or initialised), so it can run in a background thread while
        another program trains. Other programs compile on first use."""
        if not self.in_loop_eval:
            return
        carry = jax.eval_shape(lambda: self.init(keys, hparams, workloads))
        hp = jax.eval_shape(lambda: hparam_arrays(hparams, self.traced, workloads, self.switch))
        train_keys = jax.eval_shape(lambda: jnp.stack([k["train"] for k in keys]))
        scalar = jax.ShapeDtypeStruct((), jnp.int32)
        self._segment.ahead(carry, data, eval_data, hp, train_keys, scalar, scalar, scalar, scalar)

    @property
    def blocked_s(self) -> float:
        """Seconds calls waited for compiles (CompileCache.blocked_s)."""
        return sum(c.blocked_s for c in self._caches())

    @property
    def compile_s(self) -> float:
        return sum(c.compile_s for c in self._caches())

    @property
    def compiles(self) -> int:
        return sum(c.compiles for c in self._caches())

    def _caches(self) -> list[CompileCache]:
        return [self._segment, self._eval, *self._chunks.values()]


