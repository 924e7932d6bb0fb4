"""The real-workload half of `curvebench analyze quadratic`: does the top Hessian subspace stay put?

Ciuca (2020), "Eigenvectors are changing throughout training": "the eigenvectors are
changing, but they're mostly rotating into other vectors of similar eigenvalue! The high λ
subspace is remarkably consistent, but the low λ directions shift into each other a lot"
(a thin ResNet on CIFAR-10, SGD with momentum 0.97 and gradient clipping). His stochastic
quadratic model treats each top direction as a fixed quadratic, which is only a fair picture
if the top subspace does not rotate away between the times it is looked at.

What it does. Trains a real workload (`mnist_mlp` with the built-in `momentum`: momentum
0.97, gradient clipping, as Ciuca's setup; through the sweep engine, a second sweep of the
analysis named `analysis-quadratic-rotation`) with Hessian snapshots that store the top-k
Ritz vectors (`SnapshotConfig.ritz_vectors`), then measures the overlap ‖U_aᵀU_b‖_F²/k
(harness.analyses.subspace) between consecutive snapshots and against the first, with each
snapshot's subspace error estimated by Davis–Kahan from its Ritz residuals.

Claims (per seed; all seeds must agree):

* `rotation/stable`: from `early_fraction` of training on, every consecutive pair of
  snapshots has overlap ≥ `stable_overlap`. HOLDS when every pair's lower bound is above it,
  FAILS when some pair's upper bound is below it, UNDECIDABLE when the Ritz subspaces are too
  inaccurate to tell (raise the Lanczos order or the curvature batch) or there are too few
  snapshots after the early phase.
* `rotation/settles_early`: the subspace at the first snapshot past `early_fraction` of
  training already overlaps the last snapshot's by ≥ `stable_overlap` (same three-way rule).

A random k-dimensional subspace of the D parameters overlaps another by k/D on average;
every verdict quotes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analyses import subspace
from harness.analyses.verdict import Claim, Outcome

if TYPE_CHECKING:
    from harness.records.sweep import SweepEvent

KIND = "hessian"


@dataclasses.dataclass(frozen=True)
class RotationSettings:
    """The real-workload run and the judging thresholds (QuadraticConfig's rotation_* fields)."""

    workload: str
    submission: str
    seeds: tuple[int, ...]
    steps: int
    snapshots: str
    k: int
    curvature_batch: int
    lanczos_order: int
    stable_overlap: float
    early_fraction: float

    def snapshot_config(self) -> dict[str, Any]:
        """Hessian snapshots storing the top-k Ritz vectors (SnapshotConfig fields)."""
        return {"kinds": [KIND], "curvature_batch": self.curvature_batch,
                "lanczos_order": self.lanczos_order, "top_k": [1], "trace_probes": 0,
                "ritz_vectors": self.k}

    @property
    def early_step(self) -> int:
        return int(round(self.early_fraction * self.steps))


@dataclasses.dataclass
class RotationRun:
    """One seed's snapshots: steps, top-k Ritz values, subspace errors and overlaps."""

    run_id: str
    seed: int
    dim: int
    steps: list[int]
    #: per snapshot: the top-k Ritz values, descending
    top_values: list[list[float]]
    #: per snapshot: Davis–Kahan estimate of its subspace's ‖sin Θ‖_F
    errors: list[float]
    #: overlap of snapshot i+1 with snapshot i; of snapshot i+1 with snapshot 0; of snapshot i
    #: with the last one
    consecutive: list[float]
    from_first: list[float]
    to_last: list[float]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RotationRun:
        return cls(**d)


def measure(run_id: str, seed: int, snapshots: Sequence[Mapping[str, Any]], k: int) -> RotationRun:
    """Overlaps of one run's stored Ritz vectors (`Database.snapshots` records of kind KIND)."""
    snaps = [s for s in snapshots if s["kind"] == KIND and "ritz_vectors" in s["arrays"]]
    if len(snaps) < 2:
        raise ValueError(f"run {run_id} has {len(snaps)} {KIND} snapshot(s) with Ritz vectors; "
                         "the rotation needs at least 2 (a schedule with more steps)")
    vectors = [s["arrays"]["ritz_vectors"] for s in snaps]
    values = [np.sort(np.asarray(s["arrays"]["ritz_values"], np.float64))[::-1][:k] for s in snaps]
    errors = [subspace.davis_kahan(s["arrays"]["ritz_values"], s["arrays"]["ritz_residuals"], k)
              for s in snaps]
    return RotationRun(
        run_id, seed, int(vectors[0].shape[1]), [int(s["step"]) for s in snaps],
        [v.tolist() for v in values], errors,
        [subspace.overlap(a, b) for a, b in zip(vectors[:-1], vectors[1:])],
        [subspace.overlap(vectors[0], b) for b in vectors[1:]],
        [subspace.overlap(a, vectors[-1]) for a in vectors])


def _judge_pairs(name: str, statement: str, pairs: list[tuple[int, int, subspace.OverlapRange]],
                 threshold: float, baseline: float, why_none: str) -> Claim:
    """HOLDS if every pair's lower bound ≥ threshold, FAILS if one's upper bound is below it."""
    if not pairs:
        return Claim(name, statement, Outcome.UNDECIDABLE, why_none)
    shown = "; ".join(f"{a}→{b}: {r.measured:.3f} [{r.low:.2f}, {r.high:.2f}]" for a, b, r in pairs)
    numbers = (f"overlap of steps a→b, measured and the range its Ritz residuals allow: {shown}; "
               f"threshold {threshold:g}, a random subspace {baseline:.2g}")
    if all(r.low >= threshold for _, _, r in pairs):
        return Claim(name, statement, Outcome.HOLDS, numbers)
    if any(r.high < threshold for _, _, r in pairs):
        return Claim(name, statement, Outcome.FAILS, numbers)
    return Claim(name, statement, Outcome.UNDECIDABLE,
                 f"{numbers}; the Ritz subspaces are too inaccurate to tell: raise the Lanczos "
                 "order or the curvature batch")


def _worst(claims: list[Claim], name: str, statement: str) -> Claim:
    """One claim over seeds: fails if any seed fails, holds if all hold, else undecidable."""
    for outcome in (Outcome.FAILS, Outcome.UNDECIDABLE):
        bad = [c for c in claims if c.outcome == outcome]
        if bad:
            return Claim(name, statement, outcome, " | ".join(c.reason for c in bad))
    return Claim(name, statement, Outcome.HOLDS, " | ".join(c.reason for c in claims))


def judge(runs: Sequence[RotationRun], settings: RotationSettings) -> list[Claim]:
    """The two claims of the module docstring, over every seed's run."""
    thr, k, early = settings.stable_overlap, settings.k, settings.early_step
    stable_statement = (f"the top-{k} Hessian subspace is consistent between snapshots: overlap "
                        f"≥ {thr:g} between consecutive snapshots from step {early} on")
    early_statement = (f"the top-{k} subspace is stable early: the subspace at step ≥ {early} "
                       f"overlaps the last snapshot's by ≥ {thr:g}")
    stable, settled = [], []
    for run in runs:
        baseline = k / run.dim
        pairs = [(run.steps[i], run.steps[i + 1],
                  subspace.overlap_range(run.consecutive[i], k, run.errors[i], run.errors[i + 1]))
                 for i in range(len(run.consecutive)) if run.steps[i] >= early]
        stable.append(_judge_pairs("rotation/stable", stable_statement, pairs, thr, baseline,
                                   f"seed {run.seed}: fewer than two snapshots from step {early} on "
                                   "(a schedule with more late steps)"))
        first = next((i for i, s in enumerate(run.steps) if s >= early), None)
        last = len(run.steps) - 1
        pair = []
        if first is not None and first < last:
            pair = [(run.steps[first], run.steps[last], subspace.overlap_range(
                run.to_last[first], k, run.errors[first], run.errors[last]))]
        settled.append(_judge_pairs("rotation/settles_early", early_statement, pair, thr, baseline,
                                    f"seed {run.seed}: no snapshot between step {early} and the last"))
    return [_worst(stable, "rotation/stable", stable_statement),
            _worst(settled, "rotation/settles_early", early_statement)]



def run(settings: RotationSettings, db_url: str, *, tag: str, name: str, command: str,
        data_source: str | None = None, data_dir: str | None = None,
        on_event: Callable[[SweepEvent], None] | None = None) -> tuple[str, list[RotationRun]]:
    """Train the workload with Ritz-vector snapshots (one sweep); its id and every seed's
    overlaps. on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.db import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.records.sweep import CurvatureRequest, TrialRequest
    from harness.records.trial import TrialOptions

    requests = [TrialRequest(settings.workload, settings.submission, {}, s) for s in settings.seeds]
    options = TrialOptions(max_steps=settings.steps, eval_every=max(1, settings.steps // 10),
                           stop_at_target=False, origin=RunOrigin.ANALYSIS, tag=tag)
    curvature = CurvatureRequest(settings.snapshot_config(), settings.snapshots)
    sweep = run_sweep(requests, options, db_url, name=name, command=command, curvature=curvature,
                      data_source=data_source, data_dir=data_dir, on_event=on_event)
    db = database(db_url)
    runs = [measure(t.result.run_id, r.seed, db.snapshots(t.result.run_id), settings.k)
            for r, t in zip(requests, sweep.trials)]
    return sweep.sweep_id, runs


def figure(runs: Sequence[RotationRun], settings: RotationSettings, provenance):
    """Overlaps over steps (consecutive, from the first, to the last) and the top-k Ritz values."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.report import Figure, mark_data

    plot = PlotFigure(figsize=(11, 4), layout="constrained")
    left, right = plot.subplots(1, 2)
    for n, r in enumerate(runs):
        steps = np.asarray(r.steps, float)
        ranges = [subspace.overlap_range(o, settings.k, r.errors[i], r.errors[i + 1])
                  for i, o in enumerate(r.consecutive)]
        seed = f" (seed {r.seed})" if len(runs) > 1 else ""
        mark_data(left.plot(steps[1:], r.consecutive, "o-", color="C0", alpha=1 - 0.3 * n,
                            label=f"with the previous snapshot{seed}"))
        mark_data(left.fill_between(steps[1:], [x.low for x in ranges], [x.high for x in ranges],
                                    color="C0", alpha=0.15, lw=0))
        mark_data(left.plot(steps[1:], r.from_first, "s--", color="C1", alpha=1 - 0.3 * n, ms=4,
                            label=f"with the first (step {r.steps[0]}){seed}"))
        mark_data(left.plot(steps, r.to_last, "^:", color="C2", alpha=1 - 0.3 * n, ms=4,
                            label=f"with the last (step {r.steps[-1]}){seed}"))
        values = np.asarray(r.top_values)
        for j in range(values.shape[1]):
            mark_data(right.plot(steps, values[:, j], color=f"C{j}", lw=1.2, alpha=1 - 0.3 * n,
                                 label=f"θ_{j + 1}" if n == 0 else None))
    dim = runs[0].dim
    left.axhline(settings.stable_overlap, color="black", ls="--", lw=1,
                 label=f"threshold {settings.stable_overlap:g}")
    left.axhline(settings.k / dim, color="grey", ls=":", lw=1, label="random subspace (k/D)")
    left.axvline(settings.early_step, color="grey", lw=0.8)
    for ax in (left, right):
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=0)  # steps are never negative (the margin would show a negative decade)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    left.set_ylim(-0.02, 1.02)
    left.set_ylabel(f"overlap ‖U_aᵀU_b‖²_F / {settings.k}")
    left.legend(fontsize=7)
    right.set_yscale("log")
    right.set_ylabel(f"top-{settings.k} Hessian Ritz values")
    right.legend(fontsize=7)
    return Figure(
        f"Top-{settings.k} Hessian subspace over training: {settings.workload}",
        (f"Left: overlap ‖U_aᵀU_b‖²_F/k of the top-{settings.k} Hessian Ritz vectors (stored "
         f"float32, curvature batch {settings.curvature_batch}, Lanczos order "
         f"{settings.lanczos_order}) between consecutive snapshots (blue, at the later step; band: "
         "the range the Davis–Kahan estimate of both snapshots' subspace errors allows), with the "
         "first snapshot (orange) and with the last (green); dashed: the threshold of the "
         f"verdicts; dotted: a random subspace (k/D = {settings.k / dim:.2g}); grey vertical: "
         f"step {settings.early_step}, where the verdicts start. Right: the top-{settings.k} Ritz "
         f"values (θ_1 the largest). `{settings.submission}` on `{settings.workload}`, "
         f"{settings.steps} steps."),
        provenance, plot, slug="quadratic-rotation")
