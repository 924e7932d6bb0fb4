"""Find stored runs and read one back whole: filters -> typed records for `curvebench runs`,
`runs show`, `compare`, `export` and the MLflow mirror.

`RunFilter` selects runs by workload (name or variant), variant, submission, status, origin,
sweep (name or id) and tag; every given filter must hold. `find_runs` returns the runs,
oldest first. `run_detail` reads one run (by id or unique id prefix) with its eval curve,
a summary of its training losses and its curvature snapshots, as `RunDetail`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.db import Database, Run
from harness.db.models import RUN_STATUSES, RunOrigin
from harness.errors import QueryError


@dataclasses.dataclass(frozen=True)
class RunFilter:
    """Which runs to take; None means "any". `workload` matches the workload name or the
    full variant; `variant` matches a variant (canonicalised: knob order and defaults do not
    matter); `submission` a submission name or folder; `sweep` a sweep's name or id (prefix)."""

    workload: str | None = None
    variant: str | None = None
    submission: str | None = None
    status: str | None = None
    origin: str | None = None
    sweep: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        given = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                 if getattr(self, f.name) is not None]
        return ", ".join(given) or "no filter"


def _canonical_variant(db: Database, variant: str) -> str:
    """The stored spelling of `variant`: as given when a run has it, else the registry's
    canonical name (knobs sorted, defaults dropped)."""
    if any(r.variant == variant for r in db.runs(variant=variant)):
        return variant
    from harness.spec import SpecError
    from workloads import get_workload

    try:
        return get_workload(variant).spec
    except SpecError as e:
        raise QueryError(str(e)) from None


#: what a run id (a UUID) is made of: a prefix of any other character can match no run
_ID_CHARS = frozenset("0123456789abcdef-")


def check_id_prefixes(prefixes: Any, option: str) -> tuple[str, ...]:
    """The run ids (or prefixes) as given; QueryError (one line) for one that no run id can
    start with (empty, or a character outside 0-9, a-f and '-': '%', '_', ...)."""
    prefixes = tuple(prefixes)
    bad = next((p for p in prefixes if not p or not set(p) <= _ID_CHARS), None)
    if bad is not None:
        raise QueryError(f"{option} {bad!r} is no run id: run ids are lowercase hexadecimal "
                         "digits and dashes (copy one from `curvebench runs`)")
    return prefixes


def sweeps_named(db: Database, name: str) -> list[str]:
    """Ids of the sweeps `name` would resolve to (harness.score.resolve_sweep): those of that
    name and those whose id starts with it."""
    from sqlalchemy import or_, select

    from harness.db import Sweep

    with db.session() as s:
        return list(s.scalars(select(Sweep.id).where(or_(
            Sweep.name == name, Sweep.id.startswith(name, autoescape=True)))))


def find_runs(db: Database, filters: RunFilter = RunFilter()) -> list[Run]:
    """The runs matching every given filter, oldest first (QueryError for a status or origin
    outside the closed sets, or a sweep the database does not hold)."""
    if filters.status is not None and filters.status not in RUN_STATUSES:
        raise QueryError(f"unknown status {filters.status!r}; valid: {', '.join(RUN_STATUSES)}")
    if filters.origin is not None and filters.origin not in {o.value for o in RunOrigin}:
        raise QueryError(f"unknown origin {filters.origin!r}; valid: "
                         f"{', '.join(o.value for o in RunOrigin)}")
    variant = _canonical_variant(db, filters.variant) if filters.variant else None
    sweep_id = None
    if filters.sweep is not None:
        from harness.score import SelectionError, resolve_sweep

        try:
            sweep_id = resolve_sweep(db, filters.sweep)
        except SelectionError as e:
            raise QueryError(str(e)) from None
    submission = Path(filters.submission).name if filters.submission else None
    runs = db.runs(submission=submission, variant=variant, status=filters.status)
    return [r for r in runs
            if (filters.workload is None or filters.workload in (r.workload, r.variant))
            and (filters.origin is None or r.origin == filters.origin)
            and (sweep_id is None or r.sweep_id == sweep_id)
            and (filters.tag is None or r.tag == filters.tag)]


def varying_hparams(runs: list[Run]) -> tuple[list[str], dict[str, Any]]:
    """(names whose value differs between the runs, in first-seen order; the name -> value
    of those every run shares). A name some runs lack counts as differing."""
    names = list(dict.fromkeys(k for r in runs for k in r.hparams))
    varying, common = [], {}
    for k in names:
        values = {json.dumps(r.hparams.get(k, None), sort_keys=True, default=str) for r in runs}
        if len(values) > 1 or any(k not in r.hparams for r in runs):
            varying.append(k)
        else:
            common[k] = runs[0].hparams[k]
    return varying, common


@dataclasses.dataclass(frozen=True)
class LossSummary:
    """The per-step training losses of a run, summarised: how many, first and last, the
    lowest (and its step), and how many were not finite."""

    count: int
    first_step: int | None
    last_step: int | None
    first: float | None
    last: float | None
    min: float | None
    min_step: int | None
    non_finite: int

    @classmethod
    def of(cls, steps: np.ndarray, losses: np.ndarray) -> LossSummary:
        if losses.size == 0:
            return cls(0, None, None, None, None, None, None, 0)
        finite = np.isfinite(losses)
        best = int(np.argmin(np.where(finite, losses, np.inf))) if finite.any() else None
        return cls(count=int(losses.size), first_step=int(steps[0]), last_step=int(steps[-1]),
                   first=_float(losses[0]), last=_float(losses[-1]),
                   min=None if best is None else float(losses[best]),
                   min_step=None if best is None else int(steps[best]),
                   non_finite=int((~finite).sum()))


@dataclasses.dataclass(frozen=True)
class EvalPoint:
    """One evaluation: step, training seconds so far, and every metric of every split
    ("split/metric" -> value; None where the value was not finite)."""

    step: int
    train_s: float
    values: dict[str, float | None]


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """One curvature snapshot of a run: where, which matrix, what it cost, its metrics."""

    step: int
    kind: str
    config: dict[str, Any]
    compute_s: float
    includes_compile: bool
    metrics: dict[str, float | None]


#: the run row's fields `runs show` prints as settings (the rest are environment or outcome)
SETTINGS = ("workload", "variant", "workload_version", "submission", "submission_path",
            "submission_hash", "seed", "rng_derivation", "batch_size", "max_steps", "eval_every",
            "chunk_mode", "stop_at_target", "divergence_factor", "group_size", "data_source",
            "data_fingerprint", "origin", "tag", "sweep_id", "search_point")
OUTCOME = ("status", "steps_to_target", "time_to_target_s", "algoperf_time_to_target_s",
           "final_step", "compile_s", "compiles", "compile_cache_hit", "train_s", "eval_s",
           "started_at", "finished_at", "error")
ENVIRONMENT = ("backend", "device_kind", "jax_version", "jaxlib_version", "xla_flags",
               "git_commit", "host", "pid")


@dataclasses.dataclass(frozen=True)
class RunDetail:
    """Everything stored about one run, read back: settings, hparams, outcome, environment,
    eval curve, training-loss summary and curvature snapshots."""

    id: str
    settings: dict[str, Any]
    hparams: dict[str, Any]
    outcome: dict[str, Any]
    environment: dict[str, Any]
    evals: list[EvalPoint]
    losses: LossSummary
    snapshots: list[SnapshotInfo]
    sweep_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_detail(db: Database, run_id: str) -> RunDetail:
    """The run with this id or unique id prefix, read back whole (DatabaseError: no such run,
    or an ambiguous prefix)."""
    run = db.get_run(run_id)
    evals: dict[int, EvalPoint] = {}
    for row in run.evals:
        point = evals.setdefault(row.step, EvalPoint(row.step, row.train_s, {}))
        point.values[f"{row.split}/{row.metric}"] = row.value
    environment = {f: getattr(run, f) for f in ENVIRONMENT}
    environment.update({k: v for k, v in (run.environment or {}).items() if k not in environment})
    snapshots = [SnapshotInfo(step=x["step"], kind=x["kind"], config=x["config"],
                              compute_s=x["compute_s"], includes_compile=x["includes_compile"],
                              metrics=x["metrics"]) for x in db.snapshots(run.id)]
    return RunDetail(id=run.id, settings={f: getattr(run, f) for f in SETTINGS},
                     hparams=dict(run.hparams), outcome={f: getattr(run, f) for f in OUTCOME},
                     environment=environment, evals=[evals[s] for s in sorted(evals)],
                     losses=LossSummary.of(*db.losses(run.id)), snapshots=snapshots,
                     sweep_name=_sweep_name(db, run.sweep_id))


def _sweep_name(db: Database, sweep_id: str | None) -> str | None:
    if sweep_id is None:
        return None
    from harness.db.models import Sweep

    with db.session() as s:
        sweep = s.get(Sweep, sweep_id)
        return None if sweep is None else sweep.name


def _float(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


__all__ = ["EvalPoint", "LossSummary", "QueryError", "RunDetail", "RunFilter",
           "SnapshotInfo", "find_runs", "run_detail", "varying_hparams"]
