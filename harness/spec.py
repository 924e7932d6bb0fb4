"""The contract between workloads, submissions and the runner.

A *workload* (model + data + loss + target) subclasses `Workload`; a
*submission* is a module with the four AlgoPerf functions described by
`SubmissionModule`. Nothing here knows about the runner, the database or any
concrete workload: this file is the whole interface (cf. AlgoPerf's spec.py).
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from harness.errors import DataUnavailable, SpecError  # noqa: F401 - the contract's errors, re-exported
from harness.provenance import scoped_source_hash, source_hash, version_modules

Params = Any  # a pytree of arrays
ModelState = Any  # a pytree of arrays (e.g. batch-norm statistics); {} when none
OptState = Any
Batch = dict[str, Any]  # "inputs", "targets", "mask" (1.0 real example, 0.0 padding)
Hparams = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Target:
    """What a trial must reach: `metric` on `split` at least (max) or at most (min) `value`."""

    metric: str
    value: float
    direction: Literal["max", "min"] = "max"
    split: str = "validation"

    def reached(self, metrics: Mapping[str, float]) -> bool:
        x = metrics[self.metric]
        return bool(x >= self.value) if self.direction == "max" else bool(x <= self.value)


@dataclasses.dataclass(frozen=True)
class Knob:
    """One architecture knob of a workload variant: its type, default and allowed values."""

    type: type
    default: Any
    choices: tuple | None = None
    doc: str = ""
    minimum: float | None = None

    def parse(self, name: str, raw: Any) -> Any:
        try:
            if self.type is bool:
                text = str(raw).strip().lower()
                if text not in {"0", "1", "true", "false"}:
                    raise ValueError(raw)
                value = text in {"1", "true"}
            else:
                value = self.type(raw)
        except (TypeError, ValueError):
            raise SpecError(f"knob {name!r}: {raw!r} is not a valid {self.type.__name__}; "
                            f"{self.describe()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"knob {name!r}: {raw!r} is not a finite number; {self.describe()}")
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"knob {name!r}: {raw!r} is not allowed; {self.describe()}")
        if self.minimum is not None and value < self.minimum:
            raise SpecError(f"knob {name!r}: {raw!r} is below {self.minimum}; {self.describe()}")
        return value

    def describe(self) -> str:
        if self.choices is not None:
            allowed = ", ".join(str(_fmt(c)) for c in self.choices)
            return f"valid values: {allowed} (default {_fmt(self.default)})"
        low = f" >= {self.minimum}" if self.minimum is not None else ""
        return f"a {self.type.__name__}{low} (default {_fmt(self.default)})"


def _fmt(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else v


@dataclasses.dataclass
class Dataset:
    """Splits of one dataset as host arrays (or, for graph workloads, host structures).

    `splits[name]` is a dict with at least "inputs" and "targets" for array
    workloads. `source` says where the data came from; `fingerprint` identifies
    its exact content, so that results on different data are never compared.
    """

    name: str
    source: str
    splits: dict[str, Any]
    fingerprint: str = ""

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = fingerprint_arrays(self.splits)

    def size(self, split: str) -> int:
        return len(jax.tree_util.tree_leaves(self.splits[split])[0])


def fingerprint_arrays(tree: Any) -> str:
    """sha256 over the shapes, dtypes and bytes of every array in a pytree (sorted keys)."""
    h = hashlib.sha256()
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    h.update(str(treedef).encode())
    for leaf in leaves:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


#: What of this module a workload's version leaves out (`contract_source_hash`; the rule is in
#: harness/provenance.py): top-level names of the contract's plumbing, which decides no
#: number a workload computes: type aliases, error classes, the Target/Knob/Dataset records
#: (target and variant values enter the version as values), the submission protocol.
CONTRACT_PLUMBING = frozenset({
    "Params", "ModelState", "OptState", "Batch", "Hparams",
    "Target", "Knob", "_fmt", "Dataset", "fingerprint_arrays", "CONTRACT_PLUMBING",
    "CONTRACT_NUMERIC", "WORKLOAD_PLUMBING", "WORKLOAD_NUMERIC", "contract_source_hash",
    "SubmissionModule"})
#: top-level names of the contract's numeric code: in every workload's version
CONTRACT_NUMERIC = frozenset({"Workload", "check_per_example", "accuracy_per_example", "_pad_rows"})
#: `Workload` members that are plumbing: naming, variants, runtime-knob selection, the version
#: itself, the check's tolerance, scoring defaults, the knob-validation hook; the
#: class attributes a workload must set enter the version as values (`Workload.version`)
WORKLOAD_PLUMBING = frozenset({
    "name", "knobs", "target", "batch_size", "max_steps", "eval_every", "scored_by_default",
    "steps_tolerance", "runtime_knobs", "__init__", "selected", "selecting", "shape_spec",
    "describe_knobs", "spec", "version", "validate_variant"})
#: `Workload` members that are numeric defaults: in the version of a workload that inherits them
WORKLOAD_NUMERIC = frozenset({
    "eval_batch_size", "input_mode", "slow_in_cpu_loops", "for_curvature", "load_data",
    "sample_batch", "train_batches", "eval_batches", "synthetic_dataset", "init", "apply",
    "loss_per_example", "loss_normalizer", "loss", "eval_batch", "finalize_metrics",
    "metric_ranges"})


def contract_source_hash(workload_class: type[Workload]) -> str:
    """The hash of this module's part in `workload_class`'s version: its code less the
    plumbing declared above and less the `Workload` members the class overrides (it never
    runs them); unclassified code counts."""
    overridden = {n for n in vars(Workload)
                  if next(c for c in workload_class.__mro__ if n in vars(c)) is not Workload}
    excluded = CONTRACT_PLUMBING | {f"Workload.{n}" for n in WORKLOAD_PLUMBING | overridden}
    return scoped_source_hash(sys.modules[__name__], frozenset(excluded))


class Workload(abc.ABC):
    """A model, its data, loss, evaluation and target; one subclass per workload family.

    Subclasses set the class attributes and implement `load_data`, `synthetic_dataset`,
    `init`, `apply` and `loss_per_example`. Inputs and targets are arrays of any shape and
    dtype (or pytrees); outputs any array. Architecture knobs make *variants*, addressed as
    ``name:knob=value,...`` and validated on construction (`Knob`, then `validate_variant`).
    The guide: docs/adding-a-workload.md.
    """

    name: ClassVar[str]
    knobs: ClassVar[dict[str, Knob]] = {}
    target: ClassVar[Target]
    batch_size: ClassVar[int]
    max_steps: ClassVar[int]
    eval_every: ClassVar[int]
    eval_batch_size: ClassVar[int] = 1024
    #: part of `curvebench score`'s default workload set only where a workload declares it
    #: True: a new workload, built-in or installed, joins everyone's default score by a
    #: deliberate line, never silently (outside every version: provenance.PLUMBING_CLASS_ATTRIBUTES)
    scored_by_default: ClassVar[bool] = False
    #: relative steps-to-target difference the regression check tolerates (harness/check/)
    steps_tolerance: ClassVar[float] = 0.15
    #: "device": the train split lives on the device and batches are sampled there;
    #: "host": `train_batches` yields fixed-shape host batches (graphs).
    input_mode: ClassVar[Literal["device", "host"]] = "device"
    #: True for conv nets: XLA:CPU runs convolutions inside a rolled loop ~36x slower,
    #: so on CPU the runner dispatches one compiled step per call instead of a scan.
    slow_in_cpu_loops: ClassVar[bool] = False
    #: knobs (each with `choices`) that change no parameter shape and that the model can take
    #: from a traced index at run time (`selecting`): variants that differ only in them train
    #: in one compiled program, each trial selecting its own value (harness/engine/program.py)
    runtime_knobs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **variant: Any):
        unknown = sorted(set(variant) - set(self.knobs))
        if unknown:
            raise SpecError(f"workload {self.name!r} has no knob {', '.join(map(repr, unknown))}; "
                            f"valid knobs: {self.describe_knobs()}")
        self.variant = {k: knob.default for k, knob in self.knobs.items()}
        for k, raw in variant.items():
            self.variant[k] = self.knobs[k].parse(k, raw)
        self.validate_variant()

    def validate_variant(self) -> None:
        """The knob-validation hook: refuse a variant the model cannot build by raising
        `SpecError` with what to change (the user sees its message as the one-line error).
        Called on construction, after each knob passed its own `Knob` checks (type,
        `choices`, `minimum`); override it for rules beyond those, e.g. a width the number of
        heads must divide, or knobs that constrain each other. Default: nothing more."""

    #: traced indices into `knobs[k].choices` of the runtime knobs a program selects per
    #: trial (set by `selecting`; empty: the variant's own values)
    selected: Mapping[str, Any] = {}

    def selecting(self, indices: Mapping[str, Any]) -> Workload:
        """This workload whose runtime knobs take the values at `indices` (traced int32
        scalars into each knob's choices) instead of the variant's: what one trial of a
        program shared by several variants trains (see `runtime_knobs`)."""
        unknown = sorted(set(indices) - set(self.runtime_knobs))
        if unknown:
            raise SpecError(f"workload {self.name!r}: {', '.join(unknown)} cannot be selected at "
                            f"run time; runtime knobs: {', '.join(self.runtime_knobs) or '(none)'}")
        other = copy.copy(self)
        other.selected = dict(indices)
        return other

    def for_curvature(self) -> Workload:
        """The workload whose loss the curvature operators (harness/curvature) differentiate:
        this one, unless an override computes the same function, with the same parameters, by
        ops that make Hessian/GGN products faster on the current backend (values then agree
        with this workload's to float rounding, not bit for bit)."""
        return self

    @property
    def shape_spec(self) -> str:
        """The spec of this variant with its runtime knobs at their defaults: variants with
        the same shape_spec can share one compiled program."""
        fixed = {k: v for k, v in self.variant.items() if k not in self.runtime_knobs}
        return type(self)(**fixed).spec

    @classmethod
    def describe_knobs(cls) -> str:
        if not cls.knobs:
            return "(none)"
        return "; ".join(f"{k}: {knob.describe()}" for k, knob in cls.knobs.items())

    @property
    def spec(self) -> str:
        """Canonical name of this variant: knobs that differ from their defaults, sorted."""
        changed = {k: v for k, v in self.variant.items() if v != self.knobs[k].default}
        if not changed:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in sorted(changed.items()))

    @property
    def version(self) -> str:
        """Changes whenever the workload's definition changes: the code (prose excluded) of
        every project module its class hierarchy's modules import, transitively — models,
        metrics, shared helpers, data loaders — found by walking their import statements
        (`version_modules`), the numeric code it inherits from this contract
        (`contract_source_hash`), plus target, budget and variant; never the contract's
        plumbing or the error classes (the rule: harness/provenance.py)."""
        parts = [contract_source_hash(type(self)) if m.__name__ == __name__ else source_hash(m)
                 for m in version_modules(type(self))]
        parts.append(json.dumps({"target": dataclasses.asdict(self.target),
                                  "batch_size": self.batch_size, "max_steps": self.max_steps,
                                  "eval_every": self.eval_every,
                                  "variant": {k: _fmt(v) for k, v in sorted(self.variant.items())}},
                                 sort_keys=True, default=str))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    # -- data ---------------------------------------------------------------------------

    @abc.abstractmethod
    def load_data(self, data_dir: str | None = None, source: str | None = None) -> Dataset:
        """Load train/validation(/test) splits; raise DataUnavailable with instructions if absent."""

    def sample_batch(self, train: Mapping[str, jax.Array], rng: jax.Array,
                     batch_size: int) -> Batch:
        """Draw a batch on the device, uniformly with replacement (jit- and scan-friendly)."""
        n = jax.tree_util.tree_leaves(train)[0].shape[0]
        idx = jax.random.randint(rng, (batch_size,), 0, n)
        batch = jax.tree_util.tree_map(lambda a: a[idx], dict(train))
        batch["mask"] = jnp.ones((batch_size,), jnp.float32)
        return batch

    def train_batches(self, dataset: Dataset, batch_size: int, seed: int) -> Iterator[Batch]:
        """Host-mode workloads: an endless iterator of fixed-shape numpy batches."""
        raise NotImplementedError(f"{self.name} samples its batches on the device")

    def eval_batches(self, split_data: Any, batch_size: int) -> Iterator[Batch]:
        """Fixed-shape batches covering a split once; the last one padded with mask 0."""
        n = len(jax.tree_util.tree_leaves(split_data)[0])
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch = {k: _pad_rows(np.asarray(v[start:stop]), batch_size)
                     for k, v in split_data.items()}
            mask = np.zeros((batch_size,), np.float32)
            mask[: stop - start] = 1.0
            batch["mask"] = mask
            yield batch

    @abc.abstractmethod
    def synthetic_dataset(self, sizes: Mapping[str, int], seed: int = 0) -> Dataset:
        """Random data of the real shapes and dtypes (contract tests, benchmarks); no files."""

    # -- model --------------------------------------------------------------------------

    @abc.abstractmethod
    def init(self, rng: jax.Array) -> tuple[Params, ModelState]:
        """Initial parameters and model state ({} when the model has none)."""

    @abc.abstractmethod
    def apply(self, params: Params, model_state: ModelState, inputs: Any, *, train: bool,
              rng: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
        """Outputs (logits) and the new model state (batch statistics update only if train)."""

    @abc.abstractmethod
    def loss_per_example(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        """Loss of each example, shape (batch,), exactly 0 where batch["mask"] is 0."""

    def loss_normalizer(self, batch: Batch) -> jax.Array:
        """What the summed per-example losses are divided by: the number of real examples by
        default; e.g. the number of measured labels where examples carry several."""
        return batch["mask"].sum()

    def loss(self, params: Params, model_state: ModelState, batch: Batch, *, train: bool = True,
             rng: jax.Array | None = None) -> tuple[jax.Array, ModelState]:
        """Summed per-example loss over `loss_normalizer(batch)`, and the new model state."""
        outputs, new_state = self.apply(params, model_state, batch["inputs"], train=train, rng=rng)
        per_example = check_per_example(self, self.loss_per_example(outputs, batch), batch)
        return per_example.sum() / jnp.maximum(self.loss_normalizer(batch), 1.0), new_state

    # -- evaluation ---------------------------------------------------------------------

    def eval_batch(self, params: Params, model_state: ModelState, batch: Batch) -> dict[str, jax.Array]:
        """Per-batch eval quantities (jit-compiled by the runner); default: masked sums of the
        loss, of each example's accuracy when `metric_ranges` names "accuracy"
        (`accuracy_per_example`: logits over the outputs' last axis, integer targets of any
        shape, per-token ones included) and the example count. Outputs and targets of any
        other kind (regression, multi-label) need only `metric_ranges` without "accuracy".
        Workloads whose metric does not decompose into sums (mAP) return per-example outputs
        and override `finalize_metrics`."""
        outputs, _ = self.apply(params, model_state, batch["inputs"], train=False)
        mask = batch["mask"]
        sums = {"loss": check_per_example(self, self.loss_per_example(outputs, batch), batch).sum()}
        if "accuracy" in self.metric_ranges():
            sums["accuracy"] = (accuracy_per_example(self, outputs, batch["targets"]) * mask).sum()
        sums["count"] = mask.sum()
        return sums

    def finalize_metrics(self, per_batch: list[dict[str, np.ndarray]]) -> dict[str, float]:
        """Combine the `eval_batch` results of one split into metrics; default: sum / count."""
        sums = {k: float(np.sum([b[k] for b in per_batch])) for k in per_batch[0]}
        count = max(sums.pop("count"), 1.0)
        return {k: v / count for k, v in sums.items()}

    def metric_ranges(self) -> dict[str, tuple[float, float]]:
        """The eval metrics and the valid range of each (checked by `workloads check`); the
        default `eval_batch` computes "accuracy" only when this names it."""
        return {"loss": (0.0, float("inf")), "accuracy": (0.0, 1.0)}


def check_per_example(workload: Workload, losses: jax.Array, batch: Batch) -> jax.Array:
    """`loss_per_example` must give one loss per example, shape (batch,): a (batch, 1) or
    scalar result would broadcast silently into a wrong loss. Checked while tracing (free)."""
    expected = np.shape(batch["mask"])
    if np.shape(losses) != expected:
        raise SpecError(f"workload {workload.name}: loss_per_example returned shape "
                        f"{np.shape(losses)}, expected {expected} (one loss per example: reduce "
                        f"per-token or per-label losses over their other axes, e.g. .mean(-1))")
    return losses


def accuracy_per_example(workload: Workload, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Each example's accuracy for the default `eval_batch`: argmax over the outputs' last axis
    against integer targets of the outputs' shape less that axis, averaged over an example's
    positions (per-token targets); one correct/incorrect per example for class labels. Other
    outputs get a one-line error naming what to override. Checked while tracing (free)."""
    if not jnp.issubdtype(targets.dtype, jnp.integer) or np.shape(outputs)[:-1] != np.shape(targets):
        raise SpecError(
            f"workload {workload.name}: the default eval_batch's accuracy needs logits over the "
            f"outputs' last axis and integer targets of the outputs' shape less that axis; got "
            f"outputs {np.shape(outputs)}, targets {np.shape(targets)} {targets.dtype}: override "
            f"metric_ranges to leave 'accuracy' out (regression, multi-label), or eval_batch")
    correct = jnp.argmax(outputs, -1) == targets
    return correct if correct.ndim == 1 else correct.mean(axis=tuple(range(1, correct.ndim)))


def _pad_rows(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) == n:
        return a
    pad = np.zeros((n - len(a),) + a.shape[1:], a.dtype)
    return np.concatenate([a, pad])


class SubmissionModule(Protocol):
    """What a submission module provides (AlgoPerf's submission API, compiled-chunk form).

    `update_params` and `data_selection` must be pure functions of their array
    arguments: the runner traces them once into a compiled chunk of steps.
    `hparams` is the submission's hparams.json after overrides. Inside a compiled program its
    numbers (not bools, not batch_size) arrive as traced scalars, so trials that differ only in
    them share the program; the other values arrive as Python values. A submission that needs a
    number as a Python value while tracing gets one program per value instead
    (`harness/runner.py`).
    """

    def init_optimizer_state(self, workload: Workload, params: Params, model_state: ModelState,
                             hparams: Hparams, rng: jax.Array) -> OptState: ...

    def update_params(self, workload: Workload, params: Params, model_state: ModelState,
                      opt_state: OptState, batch: Batch, hparams: Hparams, step: jax.Array,
                      rng: jax.Array) -> tuple[Params, ModelState, OptState, dict[str, jax.Array]]:
        """One training step; the returned metrics must include "loss" (the batch loss)."""

    def get_batch_size(self, workload_name: str) -> int | None:
        """Batch size for a workload; None means the workload's default.

        A "batch_size" entry in the hparams overrides both.
        """

    def data_selection(self, workload: Workload, next_batch: Callable[[jax.Array], Batch],
                       opt_state: OptState, params: Params, model_state: ModelState,
                       hparams: Hparams, step: jax.Array, rng: jax.Array) -> Batch:
        """Choose the batch for this step; `next_batch(rng)` is the workload's own sampler."""
