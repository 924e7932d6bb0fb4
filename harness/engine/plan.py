"""The one planner: trial requests -> groups -> variants -> compiled programs.

1. Groups (`plan_requests`, what an executor runs): trials of one variant, submission and batch
   size; with `share_variants`, variants that differ only in runtime knobs are one group, each
   trial naming its knobs; with curvature, one group per variant and hyperparameters (a
   snapshot reads the trial's own hyperparameters); timed alone, one group per trial.
2. Variants (`variant_pieces`): a group whose trials cannot share one program across variants
   (AlgoPerf-format submissions, curvature snapshots, or knobs naming one variant) runs
   variant by variant.
3. Programs (`plan_programs`): trials whose non-numeric hyperparameters agree share one
   compiled program, seeds and numeric hyperparameters on its trial axis. A submission that
   needs a numeric hyperparameter as a Python value while tracing (`if hparams["warmup"]:`)
   gets one program per distinct hyperparameter set (seeds still mapped), with the reason in
   each TrialResult and a log line. AlgoPerf-format submissions are grouped by their full
   hyperparameter point (static values; the adapter keeps the optimizer's Python objects
   outside the traced state); one that needs a concrete Python int step, or has
   prepare_for_eval, runs in concrete-step mode (`concrete_reason`). `max_group_size` caps the
   trials per program; programs are shared by the pieces they are cut into, so trials run one
   after the other still compile once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness.algoperf.adapter import TRACER_ERRORS, EagerReason, NeedsConcreteStep
from harness.engine.context import GroupContext, Piece
from harness.engine.program import Program
from harness.engine.trial_axis import traced_names
from harness.records.sweep import CurvatureRequest, TrialGroup, TrialRequest
from harness.records.trial import TrialOptions, TrialSpec
from harness.spec import SpecError, Workload
from harness.submissions import Submission
from workloads import get_workload

log = logging.getLogger(__name__)


def _group_key(request: TrialRequest, *, curvature: bool, alone: bool, index: int,
               share_variants: bool) -> tuple:
    key = (request.workload, request.submission, request.hparams.get("batch_size"))
    if alone:
        return (*key, index)
    if curvature:  # a snapshot's stability metrics read the trial's own hparams (learning rate)
        return (*key, json.dumps(dict(request.hparams), sort_keys=True, default=str))
    if share_variants:
        return (_shape_spec(request.workload), *key[1:])
    return key


@functools.lru_cache(maxsize=256)
def _shape_spec(spec: str) -> str:
    """Variants that differ only in runtime knobs (Workload.runtime_knobs) share a group."""
    return get_workload(spec).shape_spec


def _trial_knobs(group_spec: str, spec: str) -> dict[str, Any]:
    """The runtime knobs of variant `spec` that differ from the group's variant."""
    group, own = get_workload(group_spec).variant, get_workload(spec).variant
    return {k: v for k, v in own.items() if v != group[k]}


def plan_requests(requests: Sequence[TrialRequest], options: TrialOptions, *, data_dir: str | None,
          data_source: str | None, curvature: CurvatureRequest | None, timed_alone: bool,
          compile_cache: str | None) -> list[tuple[TrialGroup, list[int]]]:
    """Groups in first-seen order, each with the indices of its requests."""
    members: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        key = _group_key(r, curvature=curvature is not None, alone=timed_alone, index=i,
                         share_variants=options.share_variants)
        members.setdefault(key, []).append(i)
    planned = []
    for indices in members.values():
        first = requests[indices[0]]
        trials = tuple(TrialSpec(seed=requests[i].seed, hparams=dict(requests[i].hparams),
                                 knobs=_trial_knobs(first.workload, requests[i].workload))
                       for i in indices)
        planned.append((TrialGroup(workload=first.workload, submission=first.submission,
                                   trials=trials, options=options, data_dir=data_dir,
                                   data_source=data_source, curvature=curvature,
                                   compile_cache=compile_cache), indices))
    return planned


def plan_groups(requests: Sequence[TrialRequest], options: TrialOptions = TrialOptions(), *,
                data_dir: str | None = None, data_source: str | None = None,
                curvature: CurvatureRequest | None = None, timed_alone: bool = False,
                compile_cache: str | None = None) -> list[TrialGroup]:
    """Group trial requests by (variant, submission, batch size), keeping first-seen order;
    with options.share_variants, variants that differ only in runtime knobs
    (Workload.runtime_knobs, e.g. mnist_mlp's activation) are one group, each trial naming its
    knobs (TrialSpec.knobs) and computed bit for bit as alone; with curvature, by variant and
    hparams; with timed_alone, one group per trial."""
    return [g for g, _ in plan_requests(requests, options, data_dir=data_dir, data_source=data_source,
                                curvature=curvature, timed_alone=timed_alone,
                                compile_cache=compile_cache)]


def variant_pieces(workload: Workload, submission: Submission, trials: Sequence[TrialSpec],
                   snapshots: bool) -> list[tuple[Workload, list[int], list[TrialSpec]]]:
    """The variants a group runs as, each with the indices of its trials and those trials
    (knobs cleared where the variant names them): one piece, the group as it is, unless its
    trials name runtime knobs and cannot share one program across variants — they name a
    single variant, the submission is in AlgoPerf's format, or snapshots read the variant."""
    variants = trial_variants(workload, trials)
    by_variant: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        by_variant.setdefault(v.spec, []).append(i)
    if not any(t.knobs for t in trials) or not (
            len(by_variant) == 1 or submission.capabilities.one_variant_per_program or snapshots):
        return [(workload, list(range(len(trials))), list(trials))]
    return [(variants[idx[0]], idx, [dataclasses.replace(trials[i], knobs={}) for i in idx])
            for idx in by_variant.values()]


def trial_variants(workload: Workload, trials: Sequence[TrialSpec]) -> list[Workload]:
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


def _split_by(indices: Sequence[int], hparams: Sequence[Mapping[str, Any]],
              names: Iterable[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    names = sorted(names)
    for i in indices:
        out.setdefault(json.dumps([[k, hparams[i][k]] for k in names], default=str), []).append(i)
    return out


def plan_programs(ctx: GroupContext, in_loop: bool) -> list[Piece]:
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
    pieces: list[Piece] = []
    first = ctx.hparams[0]
    caps = ctx.submission.capabilities
    if caps.static_hparams:
        for same in _split_by(range(len(ctx.trials)), ctx.hparams, all_names).values():
            if switched(same) and caps.one_variant_per_program:
                raise SpecError(f"submission {ctx.submission.name} trains one workload variant "
                                "per compiled program: its trials cannot share a program across "
                                "workload variants; run each variant as its own group")
            shared = program(ctx.hparams[same[0]], (), switched(same))
            pieces.append(Piece(shared, same, None, concrete_reason(ctx, shared, fed)))
    for indices in ([] if pieces else _split_by(
            range(len(ctx.trials)), ctx.hparams,
            [k for k in all_names if k not in traced_names(first)]).values()):
        hp = ctx.hparams[indices[0]]
        traced = traced_names(hp)
        shared = program({k: v for k, v in hp.items() if k not in traced}, traced,
                         switched(indices))
        why = shared.probe(ctx.train_data, fed, hp) if traced else None
        if why is None:
            pieces.append(Piece(shared, list(indices)))
            continue
        note = (f"submission {ctx.submission.name} needs a hyperparameter as a Python value "
                f"({why}); one compiled program per distinct hyperparameter set")
        log.warning("%s: %s", ctx.workload.spec, note)
        for same in _split_by(indices, ctx.hparams, all_names).values():
            pieces.append(Piece(program(ctx.hparams[same[0]], (), switched(same)), same, note))
    size = ctx.options.max_group_size
    if size is None:
        return pieces
    return [Piece(p.program, p.indices[i:i + size], p.note, p.concrete)
            for p in pieces for i in range(0, len(p.indices), size)]


def concrete_reason(ctx: GroupContext, program: Program, fed: Any) -> str | None:
    """Why a submission cannot train in compiled chunks, or None: one that may need a concrete
    step (Capabilities.may_need_concrete_step) raises NeedsConcreteStep when its initial state
    or one step is traced with a traced step count, or its trace fails where Python reads an
    array's value (concrete steps run such code, as AlgoPerf's runner does); prepare_for_eval
    runs on the host before each eval, between steps."""
    caps = ctx.submission.capabilities
    if not caps.may_need_concrete_step:
        return "PREPARE_FOR_EVAL" if caps.prepare_for_eval else None
    hp = ctx.hparams[0]
    keys = jax.random.split(jax.random.PRNGKey(0))
    key = jax.ShapeDtypeStruct((1, 2), jnp.uint32)
    try:
        carry = jax.eval_shape(lambda: program.init([{"init": keys[0], "optimizer": keys[1]}], [hp]))
        jax.eval_shape(lambda c, f, k, step: program._step(c, step, ctx.train_data, f, {}, k),
                       carry, fed, key, jax.ShapeDtypeStruct((), jnp.int32))
    except NeedsConcreteStep as e:
        return e.reason.name
    except TRACER_ERRORS:  # Python on array values: fine in concrete steps, as AlgoPerf calls it
        return EagerReason.HOST_VALUES.name
    if ctx.submission.capabilities.prepare_for_eval:
        return "PREPARE_FOR_EVAL"
    return None


