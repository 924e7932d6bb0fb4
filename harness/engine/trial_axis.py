"""The trial axis: T trials of one program as a leading axis of every array of the state.

A program's trials (seeds, and numeric hyperparameters) are mapped over this axis by
`trial_map` (`Batching`: `jax.vmap`, or `lax.map` inside the program, the CPU default, which
computes each trial bit for bit as alone). A trial alone (T = 1) is computed by the unbatched
ops: the program it ran before vectorisation. `Carry` is a program's training state with each
trial's stopping bookkeeping (harness.engine.stop).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from harness.spec import Workload

#: prefix of the traced hyperparameter entries that carry a trial's runtime knob indices
KNOB = "knob:"
#: in-loop mode returns to the host (rows written, progress visible) at least this often
SEGMENT_STEPS = 256
#: in-loop evaluation keeps the whole eval split on the device: only up to this size
EVAL_IN_LOOP_MAX_BYTES = 1 << 30
#: errors that mean the submission needs a hyperparameter as a Python value while tracing
TRACE_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError,
                jax.errors.TracerArrayConversionError)


class Carry(NamedTuple):
    """Training state of T trials (leading axis T on every leaf) and their stopping bookkeeping."""

    state: Any  # (params, model_state, opt_state)
    active: jax.Array  # bool[T]
    loss0: jax.Array  # f32[T]: the step-0 loss (NaN before step 0 ran)
    final_step: jax.Array  # i32[T]: steps completed
    reached_step: jax.Array  # i32[T]: first step whose eval met the target, -1 none
    stop: jax.Array  # i32[T]: a harness.engine.stop.Stop code


def traced_names(hparams: Mapping[str, Any]) -> tuple[str, ...]:
    """Hyperparameters passed as traced scalars: numbers (not bools); batch_size is a shape."""
    return tuple(sorted(k for k, v in hparams.items() if k != "batch_size"
                        and isinstance(v, (int, float)) and not isinstance(v, bool)))


def select(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per trial: `new` where mask, else `old` (leaves with leading axis T)."""
    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)
    return jax.tree_util.tree_map(pick, new, old)


class Batching(enum.Enum):
    """How a program computes its T trials.

    VMAP: `jax.vmap` over the trial axis: batched ops, the fast way on accelerators; on XLA:CPU
    some batched reductions (e.g. an eval's sum over examples) round differently from the
    unbatched op, so a trial in a group can differ from itself alone in the last bits.
    MAP: `lax.map` over the trial axis inside the one compiled program: each trial is computed
    by the unbatched ops, bit for bit what it computes alone, one trial after the other (in the
    loop-free "step"/"unroll" chunk modes of conv nets on XLA:CPU: one traced copy per trial).
    AUTO: MAP on CPU (where batching T small matmuls gains little), VMAP elsewhere.
    In both, one trial (T = 1) is computed unbatched (its result given the axis back): XLA:CPU
    computes some ops with a batch of one (e.g. the transposed matmul of a weight gradient)
    differently from the unbatched op, so a trial alone runs exactly its unbatched program.
    """

    AUTO = "auto"
    VMAP = "vmap"
    MAP = "map"

    def resolve(self) -> Batching:
        if self is not Batching.AUTO:
            return self
        return Batching.MAP if jax.default_backend() == "cpu" else Batching.VMAP


def trial_map(fn: Callable, in_axes: Sequence[int | None], batching: Batching,
              loop: bool = True) -> Callable:
    """fn over the trial axis (leading axis of the arguments whose in_axes is 0), as `batching`
    says; arguments with in_axes None are shared by every trial. MAP with loop=False traces fn
    once per trial with no loop (for conv nets on XLA:CPU, slow inside any loop).

    `active` (bool[T], optional, a keyword of the returned function): in MAP with a loop, a
    trial whose flag is off is not computed (a `lax.cond` in the loop body gives zeros in its
    place), so trials that already stopped cost nothing while the others go on; callers
    discard those outputs. VMAP computes every trial (a batched cond computes both branches).
    The in-loop eval uses it; the training step does not: inside a cond, XLA:CPU computes the
    step differently from the trial alone (not bit for bit), while the eval stays bit-exact."""
    in_axes = tuple(in_axes)

    def call(*args, active=None):
        sizes = {jax.tree_util.tree_leaves(a)[0].shape[0]
                 for a, ax in zip(args, in_axes) if ax is not None and jax.tree_util.tree_leaves(a)}
        if sizes == {1}:
            one = [take(a, 0) if ax is not None else a for a, ax in zip(args, in_axes)]
            return jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), fn(*one))
        if batching is Batching.VMAP:
            return jax.vmap(fn, in_axes=in_axes)(*args)
        if not loop:
            size = sizes.pop()
            outs = [fn(*[take(a, i) if ax is not None else a for a, ax in zip(args, in_axes)])
                    for i in range(size)]
            return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)
        mapped = tuple(a for a, ax in zip(args, in_axes) if ax is not None)

        def one(xs):
            it = iter(xs)
            return fn(*[next(it) if ax is not None else a for a, ax in zip(args, in_axes)])

        if active is None:
            return jax.lax.map(one, mapped)
        shapes = jax.eval_shape(one, take(mapped, 0))

        def one_if_active(xs):
            on, xs = xs
            return jax.lax.cond(on, one, lambda _: jax.tree_util.tree_map(
                lambda s: jnp.zeros(s.shape, s.dtype), shapes), xs)

        return jax.lax.map(one_if_active, (active, mapped))

    return call


def stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def take(tree: Any, i: int) -> Any:
    """Trial i's slice of a stacked pytree."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


@dataclasses.dataclass
class Options:
    """What a program needs of TrialOptions, resolved."""

    max_steps: int
    eval_every: int
    stop_at_target: bool
    divergence_factor: float | None


def hparam_arrays(hparams: Sequence[Mapping[str, Any]], names: Sequence[str],
                  workloads: Sequence[Workload] = (), switch: Sequence[str] = ()
                  ) -> dict[str, jax.Array]:
    """The traced hyperparameters of T trials: {name: array (T,)} (float32 or int32); with
    `switch`, also each trial's index into the choices of each runtime knob it names
    ({KNOB + knob: int32 (T,)}, from the trials' `workloads`)."""
    out = {}
    for k in names:
        values = [h[k] for h in hparams]
        dtype = jnp.int32 if all(isinstance(v, int) for v in values) else jnp.float32
        out[k] = jnp.asarray(np.asarray(values), dtype)
    for k in switch:
        out[KNOB + k] = jnp.asarray([w.knobs[k].choices.index(w.variant[k]) for w in workloads],
                                    jnp.int32)
    return out


def stacked_eval_data(batches: Sequence[Any]) -> tuple[Any, int]:
    """Eval batches stacked on a leading axis (for the in-loop eval), and their size in bytes."""
    stacked = stack(list(batches))
    nbytes = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(stacked))
    return stacked, nbytes
