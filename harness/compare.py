"""Two sets of runs side by side, per workload variant: `curvebench compare A B`.

A side (`Side`) is written as one word: a submission name (`adam`), `sweep:NAME_OR_ID`,
`tag:TAG`, or `runs:ID,ID,...` (ids or unique prefixes). On each workload variant either side
ran, a side's sample is what `score` would compare (harness.score.declared_set): its newest
code + hparams there, one finished run per seed — except `runs:`, which takes exactly the
runs named. Runs of a different workload version or data than the side's newest run on that
variant are left out, as in `score`.

Per variant (`Row`): runs that reached the target out of the sample, the median
steps-to-target (a miss counts as infinite), the median time-to-target over the runs timed
alone (`runs.group_size == 1`, as `score` does: a vectorised group's wall time is no single
trial's), the ratios B/A, and the verdict of `curvebench check`'s steps-to-target test
(harness.check.statistics.steps_test: pooled Yuen trimmed-mean t-test, a miss counted as the step
budget, failing only beyond the workload's relative tolerance) with A as the reference. Where
the two sides ran different workload versions or data, or different step budgets or eval
intervals, steps do not mean the same thing: the numbers are shown, the verdict says so.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from harness import score as scoring
from harness.check.statistics import steps_of, steps_test
from harness.db import Database, Run
from harness.errors import CompareError
from harness.runs_query import RunFilter, find_runs
from harness.records.status import RunStatus


class SideKind(enum.Enum):
    SUBMISSION = "submission"
    SWEEP = "sweep"
    TAG = "tag"
    RUNS = "runs"


SIDE_FORM = "SUBMISSION | sweep:NAME_OR_ID | tag:TAG | runs:ID,ID,..."


@dataclasses.dataclass(frozen=True)
class Side:
    """One side of a comparison, parsed from `SUBMISSION`, `sweep:X`, `tag:X` or `runs:X,Y`."""

    kind: SideKind
    value: str

    @classmethod
    def parse(cls, text: str) -> Side:
        prefix, sep, rest = text.partition(":")
        if sep and prefix in {k.value for k in SideKind} - {SideKind.SUBMISSION.value}:
            if not rest.strip():
                raise CompareError(f"side {text!r} names nothing after '{prefix}:'; form: {SIDE_FORM}")
            return cls(SideKind(prefix), rest.strip())
        if sep:
            raise CompareError(f"unknown side kind {prefix!r} in {text!r}; form: {SIDE_FORM}")
        return cls(SideKind.SUBMISSION, text.strip())

    def describe(self) -> str:
        return self.value if self.kind is SideKind.SUBMISSION else f"{self.kind.value}:{self.value}"


@dataclasses.dataclass(frozen=True)
class SideStats:
    """One side on one variant: its sample of runs and what they measured."""

    run_ids: tuple[str, ...]
    submission: str
    hparams: dict[str, Any]
    reached: int
    median_steps: float | None
    median_time_s: float | None
    timed_alone: int


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The steps-to-target test's outcome, B against A as reference."""

    text: str
    p: float | None = None
    relative_difference: float | None = None
    tolerance: float | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    """One workload variant both sides ran (or only one: the other is None)."""

    variant: str
    a: SideStats | None
    b: SideStats | None
    steps_ratio: float | None
    time_ratio: float | None
    verdict: Verdict


@dataclasses.dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    rows: list[Row]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _side_runs(db: Database, side: Side, base: RunFilter) -> list[Run]:
    if side.kind is SideKind.RUNS:
        wanted = [p.strip() for p in side.value.split(",") if p.strip()]
        allowed = {r.id for r in find_runs(db, base)}
        runs = db.get_runs(wanted)
        return [r for r in runs if r.id in allowed]
    fields = {SideKind.SUBMISSION: "submission", SideKind.SWEEP: "sweep", SideKind.TAG: "tag"}
    field = fields[side.kind]
    if getattr(base, field) is not None:
        raise CompareError(f"--{field} cannot be combined with a {field} side ({side.describe()})")
    return find_runs(db, dataclasses.replace(base, **{field: side.value}))


def _sample(side: Side, runs: list[Run]) -> list[Run]:
    """The runs a side compares on one variant (module docstring)."""
    finished = [r for r in runs if r.status in scoring.FINISHED]
    if not finished:
        return []
    newest = max(finished, key=lambda r: r.started_at)
    same_definition = [r for r in finished if (r.workload_version, r.data_fingerprint)
                       == (newest.workload_version, newest.data_fingerprint)]
    if side.kind is SideKind.RUNS:
        return sorted(same_definition, key=lambda r: r.seed)
    return scoring.declared_set(same_definition)


def _stats(runs: list[Run]) -> SideStats:
    alone = [r for r in runs if r.group_size == 1]
    steps = scoring.median_or_inf(r.steps_to_target if r.status == RunStatus.REACHED else None
                                  for r in runs)
    time_s = scoring.median_time_to_target(alone) if alone else math.inf
    return SideStats(run_ids=tuple(r.id for r in runs), submission=runs[0].submission,
                     hparams=dict(runs[0].hparams), reached=sum(r.status == RunStatus.REACHED for r in runs),
                     median_steps=_finite(steps), median_time_s=_finite(time_s),
                     timed_alone=len(alone))


def _record(run: Run) -> dict[str, Any]:
    return {"run": {"status": run.status, "steps_to_target": run.steps_to_target,
                    "max_steps": run.max_steps}}


def _verdict(a: list[Run], b: list[Run]) -> Verdict:
    """check's steps-to-target test of B (candidate) against A (reference)."""
    if not any(r.status == RunStatus.REACHED for r in a + b):
        return Verdict("no run reached the target")
    if len({(r.workload_version, r.data_fingerprint) for r in a + b}) > 1:
        return Verdict("not comparable: workload versions or data differ")
    if len({(r.max_steps, r.eval_every) for r in a + b}) > 1:
        return Verdict("not comparable: step budgets or eval intervals differ")
    from workloads import REGISTRY

    workload = REGISTRY.get(a[0].workload)
    tolerance = workload.steps_tolerance if workload is not None else 0.15
    result = steps_test([steps_of(_record(r))[0] for r in b], [steps_of(_record(r))[0] for r in a],
                        eval_every=a[0].eval_every, tolerance=tolerance)
    if result.fail:
        text = "B slower" if result.relative_difference > 0 else "B faster"
    elif result.significant:
        text = "same (within tolerance)"
    else:
        text = "no significant difference"
    return Verdict(text, result.p, result.relative_difference, result.tolerance)


def compare(db: Database, a: Side, b: Side, base: RunFilter = RunFilter()) -> Comparison:
    """Side A against side B on every workload variant either ran (module docstring); `base`
    narrows both sides (e.g. to one workload). CompareError when a side has no runs."""
    per_side = []
    for side in (a, b):
        runs = _side_runs(db, side, base)
        if not runs:
            raise CompareError(f"side {side.describe()} has no runs in {db.url}"
                               + (f" matching {base.describe()}" if base != RunFilter() else "")
                               + f"; form of a side: {SIDE_FORM}")
        by_variant: dict[str, list[Run]] = {}
        for r in runs:
            by_variant.setdefault(r.variant, []).append(r)
        per_side.append({v: _sample(side, rs) for v, rs in by_variant.items()})
    rows = []
    for variant in sorted(set(per_side[0]) | set(per_side[1])):
        sample_a, sample_b = per_side[0].get(variant, []), per_side[1].get(variant, [])
        stats_a = _stats(sample_a) if sample_a else None
        stats_b = _stats(sample_b) if sample_b else None
        if stats_a is None or stats_b is None:
            missing = "A" if stats_a is None else "B"
            rows.append(Row(variant, stats_a, stats_b, None, None,
                            Verdict(f"{missing} has no finished run here")))
            continue
        rows.append(Row(variant, stats_a, stats_b,
                        _ratio(stats_b.median_steps, stats_a.median_steps),
                        _ratio(stats_b.median_time_s, stats_a.median_time_s),
                        _verdict(sample_a, sample_b)))
    return Comparison(a.describe(), b.describe(), rows)


def _ratio(b: float | None, a: float | None) -> float | None:
    return None if a is None or b is None or a == 0 else b / a


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


__all__ = ["Comparison", "CompareError", "Row", "SIDE_FORM", "Side", "SideKind", "SideStats",
           "Verdict", "compare"]
