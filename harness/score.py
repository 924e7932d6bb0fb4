"""Benchmark score: per-workload time-to-target and AlgoPerf's performance-profile score.

`score` compares *declared* sets of runs, never "whatever is newest": by default the runs that
`curvebench score` itself made (origin "score"), or the runs of one named sweep, or of one tag
(`RunSelection`). Within the selection, submission s on workload w contributes one set: all
seeds of one code hash + hparams (the most recent such set, one run per seed), and
t[s][w] is the median time-to-target over them (a miss counts as infinite). Ad-hoc `run`
runs and `check` reruns are left out unless their origin is asked for. Each time carries
its `RunSet`, so the caller can print which runs and how many seeds it comes from.

With r[s][w] = t[s][w] / min_s t[s][w], the performance profile is
rho_s(tau) = |{w : r[s][w] <= tau}| / |W| and the score is its normalised
integral (1 / (tau_max - 1)) * int_1^tau_max rho_s(tau) dtau, computed exactly.

Only trials timed alone count (runs.group_size == 1): a vectorised group's wall time is shared
by all its trials and is no single trial's time-to-target, so runs trained in a group of
several (`curvebench sweep`, `run --seeds N`) never enter t[s][w]. `curvebench score` runs
every trial alone for this reason.

Which time (`Timing`, `score --timing`): `training` (the default) is the suite's time-to-target,
the wall time of the training steps up to the first eval that met the target, compilation and
host-side evaluation excluded. `algoperf` is AlgoPerf's: its runner's accumulated submission
time at that eval, which also counts JIT compilation of the training program (or, for an
AlgoPerf-format submission in concrete-step mode, its own first-call compilation) and
`prepare_for_eval`, evals still excluded (runs.algoperf_time_to_target_s; for runs stored before
that column, time_to_target_s + compile_s).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from harness.db import Database, Run, RunOrigin, Sweep
from harness.errors import SelectionError
from harness.records.status import FINISHED, RunStatus
from harness.records.sweep import median_or_inf


class Timing(enum.Enum):
    """Which time-to-target `score` compares (module docstring)."""

    TRAINING = "training"
    ALGOPERF = "algoperf"
TAU_MAX = 4.0


@dataclasses.dataclass(frozen=True)
class RunSelection:
    """Which stored runs `score` compares: runs of these origins (default: made by `score`),
    or of one sweep (its id), or of one tag. A sweep or a tag replaces the origin filter."""

    origins: tuple[RunOrigin, ...] = (RunOrigin.SCORE,)
    sweep_id: str | None = None
    tag: str | None = None

    def admits(self, run: Run) -> bool:
        if self.sweep_id is not None:
            return run.sweep_id == self.sweep_id
        if self.tag is not None:
            return run.tag == self.tag
        return run.origin in {RunOrigin(o).value for o in self.origins}

    def describe(self) -> str:
        if self.sweep_id is not None:
            return f"sweep {self.sweep_id}"
        if self.tag is not None:
            return f"tag {self.tag!r}"
        return "runs made by " + " / ".join(f"`{RunOrigin(o).value}`" for o in self.origins)


@dataclasses.dataclass(frozen=True)
class RunSet:
    """The runs one time comes from: one submission's code + hparams on one variant, one run
    per seed (the newest), and the median time-to-target over them."""

    submission: str
    variant: str
    submission_hash: str
    hparams: dict[str, Any]
    run_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    time_s: float
    timing: str = Timing.TRAINING.value

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _code_key(run: Run) -> tuple[str, str]:
    return run.submission_hash, json.dumps(run.hparams, sort_keys=True, default=str)


def declared_set(runs: Iterable[Run]) -> list[Run]:
    """Of one submission's selected finished runs on one variant: the most recent
    code hash + hparams, all its seeds, one run per seed (the newest)."""
    finished = sorted((r for r in runs if r.status in FINISHED), key=lambda r: r.started_at)
    if not finished:
        return []
    key = _code_key(finished[-1])
    by_seed = {r.seed: r for r in finished if _code_key(r) == key}
    return [by_seed[s] for s in sorted(by_seed)]


def resolve_sweep(db: Database, name_or_id: str) -> str:
    """The id of the sweep with this id (or unique id prefix) or name (the newest of that name)."""
    with db.session() as s:
        sweeps = list(s.scalars(select(Sweep).order_by(Sweep.created_at)))
    by_id = [w for w in sweeps if w.id.startswith(name_or_id)]
    by_name = [w for w in sweeps if w.name == name_or_id]
    if by_name:
        return by_name[-1].id
    if len(by_id) == 1:
        return by_id[0].id
    known = ", ".join(f"{w.name or '-'} ({w.id[:8]})" for w in sweeps[-10:]) or "none"
    why = "is ambiguous" if by_id else "is not in the database"
    raise SelectionError(f"sweep {name_or_id!r} {why}; sweeps in {db.url}: {known}")


def compared_runs(db: Database, variants: Mapping[str, tuple[str, str]],
                  selection: RunSelection = RunSelection(),
                  timing: Timing = Timing.TRAINING) -> dict[str, dict[str, RunSet]]:
    """sets[submission][variant]: the declared set of each submission on each variant, over
    selected runs of the given workload version and data fingerprint.

    `variants` maps each workload variant to its (workload_version, data_fingerprint), so that
    runs of an older definition of a workload, or on other data, are never compared.
    """
    sets: dict[str, dict[str, RunSet]] = {}
    for variant, (version, fingerprint) in variants.items():
        by_submission: dict[str, list[Run]] = {}
        for run in db.runs(variant=variant):
            if ((run.workload_version, run.data_fingerprint) == (version, fingerprint)
                    and run.group_size == 1 and selection.admits(run)):
                by_submission.setdefault(run.submission, []).append(run)
        for submission, runs in by_submission.items():
            chosen = declared_set(runs)
            if chosen:
                sets.setdefault(submission, {})[variant] = RunSet(
                    submission=submission, variant=variant,
                    submission_hash=chosen[0].submission_hash, hparams=dict(chosen[0].hparams),
                    run_ids=tuple(r.id for r in chosen), seeds=tuple(r.seed for r in chosen),
                    time_s=median_time_to_target(chosen, timing), timing=timing.value)
    return sets


def selected_variants(db: Database, selection: RunSelection) -> dict[str, tuple[str, str]]:
    """(workload_version, data_fingerprint) of each variant among the selected runs: the
    newest run's, so a sweep or tag made before a workload changed is scored on its own terms."""
    newest: dict[str, Run] = {}
    for run in db.runs():
        if selection.admits(run) and run.status in FINISHED:
            newest[run.variant] = run  # runs come oldest first
    return {v: (r.workload_version, r.data_fingerprint) for v, r in sorted(newest.items())}


def time_to_target(run: Run, timing: Timing = Timing.TRAINING) -> float | None:
    """The run's time-to-target under `timing` (module docstring); None when it has none."""
    if run.time_to_target_s is None:
        return None
    if timing is Timing.TRAINING:
        return run.time_to_target_s
    if run.algoperf_time_to_target_s is not None:
        return run.algoperf_time_to_target_s
    return run.time_to_target_s + (run.compile_s or 0.0)


def median_time_to_target(runs: Iterable[Run], timing: Timing = Timing.TRAINING) -> float:
    """Median over runs of time-to-target, misses as +inf; +inf when there are no runs."""
    return median_or_inf(time_to_target(r, timing) if r.status == RunStatus.REACHED else None for r in runs)


def time_table(db: Database, variants: Mapping[str, tuple[str, str]],
               selection: RunSelection = RunSelection(),
               timing: Timing = Timing.TRAINING) -> dict[str, dict[str, float]]:
    """t[submission][variant]: the median time of each declared set (see `compared_runs`)."""
    return score_table(db, variants, selection, timing).times


def performance_profile_scores(times: Mapping[str, Mapping[str, float]], workloads: Iterable[str],
                               tau_max: float = TAU_MAX) -> dict[str, float]:
    """Exact integral of each submission's performance profile over [1, tau_max], in [0, 1]."""
    workloads = list(workloads)
    if not workloads:
        return {s: 0.0 for s in times}
    best = {w: min((t.get(w, math.inf) for t in times.values()), default=math.inf) for w in workloads}
    scores = {}
    for submission, t in times.items():
        total = 0.0
        for w in workloads:
            tw = t.get(w, math.inf)
            if math.isinf(tw) or math.isinf(best[w]):
                continue
            ratio = tw / best[w] if best[w] > 0 else 1.0
            total += max(0.0, tau_max - max(ratio, 1.0))
        scores[submission] = total / ((tau_max - 1.0) * len(workloads))
    return scores


@dataclasses.dataclass(frozen=True)
class WorkloadSummary:
    """The trials `curvebench score` just ran on one workload variant: seeds, how many reached
    the target, median steps and time to target (a miss counts as +inf) and their run ids."""

    workload: str
    seeds: int
    reached: int
    median_steps_to_target: float
    median_time_to_target_s: float
    run_ids: list[str]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarize_trials(results: Iterable[Any]) -> list[WorkloadSummary]:
    """One summary per workload variant of trial results (anything with workload, status,
    steps_to_target, time_to_target_s and run_id), in the order the results first name it."""
    by_workload: dict[str, list[Any]] = {}
    for r in results:
        by_workload.setdefault(r.workload, []).append(r)
    return [WorkloadSummary(workload=w, seeds=len(rs),
                            reached=sum(r.status == "reached" for r in rs),
                            median_steps_to_target=median_or_inf(r.steps_to_target for r in rs),
                            median_time_to_target_s=median_or_inf(r.time_to_target_s for r in rs),
                            run_ids=[r.run_id for r in rs])
            for w, rs in by_workload.items()]


def summarized_variants(db: Database,
                        summaries: Iterable[WorkloadSummary]) -> dict[str, tuple[str, str]]:
    """(workload_version, data_fingerprint) of each summarized variant, from its first run:
    the definition and data the new runs are compared on (see `compared_runs`)."""
    variants = {}
    for summary in summaries:
        run = db.get_run(summary.run_ids[0])
        variants[run.variant] = (run.workload_version, run.data_fingerprint)
    return variants


@dataclasses.dataclass(frozen=True)
class ScoreTable:
    """What `curvebench score` compares: each submission's declared set of runs on each
    variant (`sets`), its median times, and the performance-profile scores over the variants."""

    selection: RunSelection
    timing: Timing
    sets: list[RunSet]
    times: dict[str, dict[str, float]]
    scores: dict[str, float]
    #: AlgoPerf v0.6's benchmark score of the same times: the profile sampled at 100 points of
    #: [1, tau_max], trapezoid rule, normalised (harness/algoperf/scoring.py: how it differs)
    algoperf_scores: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from harness.algoperf.scoring import NUM_POINTS

        return {"compared": {"selection": self.selection.describe(),
                             "sets": [rs.to_json() for rs in self.sets]},
                "performance_profile": {"tau_max": TAU_MAX, "timing": self.timing.value,
                                        "scores": self.scores, "times": self.times},
                "algoperf_v06_score": {"tau_max": TAU_MAX, "num_points": NUM_POINTS,
                                       "scores": self.algoperf_scores}}


def score_table(db: Database, variants: Mapping[str, tuple[str, str]],
                selection: RunSelection = RunSelection(),
                timing: Timing = Timing.TRAINING) -> ScoreTable:
    """Compare the selected runs on `variants` (variant -> (workload_version,
    data_fingerprint)) and score every submission that has runs on any of them."""
    compared = compared_runs(db, variants, selection, timing)
    from harness.algoperf.scoring import algoperf_scores  # numpy only: no JAX

    times = {sub: {v: rs.time_s for v, rs in per.items()} for sub, per in compared.items()}
    return ScoreTable(selection=selection, timing=timing,
                      sets=[rs for per in compared.values() for rs in per.values()],
                      times=times, scores=performance_profile_scores(times, list(variants)),
                      algoperf_scores=algoperf_scores(times, list(variants)))
