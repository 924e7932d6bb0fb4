"""Read what a report plots from the results database into typed records.

`select_runs` applies the report's filters one after another and, when the selection
becomes empty, says which filter emptied it (`Selection.empty_reason`). `load_series`
then reads the selected runs' eval rows, training losses and curvature snapshots in a
few bulk queries (chunks of ids, not one query per run), so a report of hundreds of runs
reads the database in well under a second of queries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness.db import Database, DatabaseError, Run
from harness.db.models import CurvatureArray, CurvatureSnapshot, EvalRow, Sweep, TrainLosses

#: ids per IN (...) query: below SQLite's default limit on bound parameters
ID_CHUNK = 500
#: snapshot arrays no standard figure draws, left in the database (Ritz vectors: k x parameters
#: floats per snapshot, more than everything else a report reads)
UNPLOTTED_ARRAYS = ("ritz_vectors",)


@dataclasses.dataclass(frozen=True)
class Filters:
    """What to report on; every given filter must hold (AND). Empty means "everything"."""

    runs: tuple[str, ...] = ()
    sweep: str | None = None
    workload: str | None = None
    submission: str | None = None
    tag: str | None = None
    #: a workload version (or prefix) to show; None: each variant's newest in the selection
    workload_version: str | None = None

    def describe(self) -> str:
        parts = []
        if self.runs:
            parts.append(f"--runs {','.join(self.runs)}")
        if self.sweep:
            parts.append(f"--sweep {self.sweep}")
        if self.workload:
            parts.append(f"--workload {self.workload}")
        if self.submission:
            parts.append(f"--submission {self.submission}")
        if self.tag:
            parts.append(f"--tag {self.tag}")
        if self.workload_version:
            parts.append(f"--workload-version {self.workload_version}")
        return " ".join(parts) or "no filter (every run)"


@dataclasses.dataclass
class Selection:
    """The runs a report covers, or why there are none."""

    runs: list[Run]
    filters: Filters
    empty_reason: str | None = None
    #: the workload versions left out (one line each, with how to show them)
    left_out: list[str] = dataclasses.field(default_factory=list)


def _names(values: Iterable[str], limit: int = 8) -> str:
    values = sorted(set(values))
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def select_runs(db: Database, filters: Filters) -> Selection:
    """The runs matching `filters`, oldest first. A run id prefix matching several runs is
    bad input (DatabaseError); a filter that matches nothing gives an empty selection whose
    `empty_reason` names the filter and what it could have matched."""
    runs = db.runs()
    if not runs:
        return Selection([], filters, f"the results database {db.url} holds no runs yet "
                                      "(curvebench run / score write them)")

    def empty(why: str) -> Selection:
        return Selection([], filters, why)

    if filters.runs:
        chosen: dict[str, Run] = {}
        missing = []
        for prefix in filters.runs:
            hits = [r for r in runs if r.id.startswith(prefix)]
            if len(hits) > 1:
                raise DatabaseError(f"run id prefix {prefix!r} is ambiguous ({len(hits)} runs); "
                                    "give more characters")
            if hits:
                chosen[hits[0].id] = hits[0]
            else:
                missing.append(prefix)
        if missing:
            return empty(f"--runs: no run with id {', '.join(missing)} in {db.url}")
        runs = [r for r in runs if r.id in chosen]
    if filters.sweep:
        from harness.score import SelectionError, resolve_sweep

        with db.session() as s:
            known = [x.name or x.id for x in s.scalars(select(Sweep)).all()]
        try:  # resolved as every command resolves it: an id (prefix), or the newest of a name
            ids = {resolve_sweep(db, filters.sweep)}
        except SelectionError:
            return empty(f"--sweep: no sweep named or with id {filters.sweep!r}"
                         + (f" (sweeps: {_names(known)})" if known else " (the database has no sweeps)"))
        kept = [r for r in runs if r.sweep_id in ids]
        if not kept:
            return empty(f"--sweep {filters.sweep}: the sweep has no runs"
                         + (" among the runs selected by the other filters" if filters.runs else ""))
        runs = kept
    if filters.workload:
        kept = [r for r in runs if filters.workload in (r.workload, r.variant)]
        if not kept:
            return empty(f"--workload: no selected run is of workload {filters.workload!r} "
                         f"(they are of {_names(r.variant for r in runs)})")
        runs = kept
    if filters.submission:
        name = Path(filters.submission).name or filters.submission
        kept = [r for r in runs if r.submission == name]
        if not kept:
            return empty(f"--submission: no selected run is of submission {name!r} "
                         f"(they are of {_names(r.submission for r in runs)})")
        runs = kept
    if filters.tag:
        kept = [r for r in runs if r.tag == filters.tag]
        if not kept:
            return empty(f"--tag: no selected run has tag {filters.tag!r} "
                         f"(tags: {_names(r.tag for r in runs if r.tag) or 'none'})")
        runs = kept
    return _one_version_per_variant(runs, filters)


def _one_version_per_variant(runs: list[Run], filters: Filters) -> Selection:
    """The runs of one workload version per variant, so no figure mixes curves of an edited
    workload's old and new code: `filters.workload_version`'s, else each variant's newest (the
    version of its most recently started run); the others are named with how to show them."""
    if filters.workload_version:
        kept = [r for r in runs if r.workload_version.startswith(filters.workload_version)]
        if not kept:
            return Selection([], filters, f"--workload-version: no selected run has workload version "
                                          f"{filters.workload_version!r} (they have "
                                          f"{_names(r.workload_version for r in runs)})")
        return Selection(kept, filters)
    newest = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        newest[run.variant] = run.workload_version
    kept = [r for r in runs if r.workload_version == newest[r.variant]]
    older: dict[tuple[str, str], int] = {}
    for run in runs:
        if run.workload_version != newest[run.variant]:
            older[(run.variant, run.workload_version)] = older.get((run.variant, run.workload_version), 0) + 1
    left_out = [f"left out {n} run(s) of {variant} at older workload version {version} (shown: "
                f"{newest[variant]}); show them with --workload-version {version}"
                for (variant, version), n in sorted(older.items())]
    return Selection(kept, filters, left_out=left_out)


@dataclasses.dataclass
class Snapshot:
    """One curvature snapshot: scalar metrics and arrays by name."""

    step: int
    kind: str
    metrics: dict[str, float | None]
    arrays: dict[str, np.ndarray]


@dataclasses.dataclass
class RunSeries:
    """What a run recorded over training."""

    #: split -> metric -> (steps, values, train seconds at each eval); None values as NaN
    evals: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]
    loss_steps: np.ndarray
    losses: np.ndarray
    snapshots: list[Snapshot]

    def train_seconds(self, steps: np.ndarray) -> np.ndarray:
        """Training seconds at `steps`, linear between evals (the runner times training per
        chunk; the step at which a loss was seen is timed only at eval boundaries)."""
        known: dict[int, float] = {}
        for by_metric in self.evals.values():
            for s, _, t in by_metric.values():
                known.update(zip(s.tolist(), t.tolist()))
        if not known:
            return np.full(np.shape(steps), np.nan)
        xs = np.array([0, *sorted(known)], float)
        ts = np.array([0.0, *(known[k] for k in sorted(known))])
        return np.interp(steps, xs, ts, right=np.nan)


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), ID_CHUNK):
        yield list(ids[i:i + ID_CHUNK])


def load_series(db: Database, runs: Sequence[Run]) -> dict[str, RunSeries]:
    """Eval rows, training losses and curvature snapshots of `runs`, by run id."""
    ids = [r.id for r in runs]
    evals: dict[str, dict[str, dict[str, list[tuple[int, float, float]]]]] = {i: {} for i in ids}
    losses: dict[str, list[tuple[int, np.ndarray]]] = {i: [] for i in ids}
    snaps: dict[str, list[Snapshot]] = {i: [] for i in ids}
    with db.session() as s:
        for chunk in _chunks(ids):
            for row in s.execute(select(EvalRow.run_id, EvalRow.split, EvalRow.metric, EvalRow.step,
                                        EvalRow.value, EvalRow.train_s)
                                 .where(EvalRow.run_id.in_(chunk)).order_by(EvalRow.step)):
                value = np.nan if row.value is None else row.value
                evals[row.run_id].setdefault(row.split, {}).setdefault(row.metric, []).append(
                    (row.step, value, row.train_s))
            for row in s.scalars(select(TrainLosses).where(TrainLosses.run_id.in_(chunk))
                                 .order_by(TrainLosses.start_step)):
                losses[row.run_id].append((row.start_step, np.frombuffer(row.data, "<f4", count=row.count)))
            for x in s.scalars(select(CurvatureSnapshot)
                               .options(selectinload(CurvatureSnapshot.values),
                                        selectinload(CurvatureSnapshot.arrays.and_(
                                            CurvatureArray.name.not_in(UNPLOTTED_ARRAYS))))
                               .where(CurvatureSnapshot.run_id.in_(chunk))
                               .order_by(CurvatureSnapshot.step, CurvatureSnapshot.kind)):
                snaps[x.run_id].append(Snapshot(
                    x.step, x.kind, {v.name: v.value for v in x.values},
                    {a.name: np.frombuffer(a.data, a.dtype).reshape(a.shape) for a in x.arrays}))
    out = {}
    for run_id in ids:
        curves = {split: {metric: tuple(np.array(col, float) for col in zip(*rows))
                          for metric, rows in by_metric.items()}
                  for split, by_metric in evals[run_id].items()}
        chunks = losses[run_id]
        if chunks:
            steps = np.concatenate([start + np.arange(v.size) for start, v in chunks])
            values = np.concatenate([v for _, v in chunks]).astype(np.float64)
        else:
            steps, values = np.zeros(0, np.int64), np.zeros(0)
        out[run_id] = RunSeries(curves, steps, values, snaps[run_id])
    return out
