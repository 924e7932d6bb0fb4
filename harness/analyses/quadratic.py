"""`curvebench analyze quadratic`: Ciuca's stochastic quadratic model at equilibrium.

What it does. On `noisy_quadratic` (f(x) = Σ_i λ_i (x_i + ε_i)², ε ~ N(0, σ²) per example,
Hessian 2 diag(λ)) SGD with step α and batch B moves each coordinate as
x ← (1 − 2αλ) x − 2αλ ε̄ with Var ε̄ = σ²/B, whose stationary second moment gives
E[λ x²] = αλ²σ²/(B (1 − αλ)) — Ciuca's E[λx²] = αλ²σ²/(1−αλ) with the per-step noise
variance σ²/B. The analysis trains at several α (`sgd`, through the sweep engine:
origin `analysis`, tag `quadratic`), averages the stored excess loss Σ_i λ_i x_i² over the
second half of each run (the first half is burn-in: every coordinate's relaxation time
1/(2αλ_min) is far shorter), and compares it with the prediction Σ_i αλ_i²σ²/(B(1−αλ_i)).

Claim `equilibrium/α=…` per step size: HOLDS when the measured mean is within `tolerance`
(relative) of the prediction, FAILS when it is outside by more than twice the measurement's
standard error, UNDECIDABLE when the standard error (batch means over the seeds' evals) is
itself larger than the tolerance: too few evals or seeds.

Another workload, submission (fixed hparams besides α), seeds and steps can replace the α
grid's (`analyze quadratic --workload lowrank --submission gd`; `configure`): on a workload
that is not a noisy quadratic there is no prediction, and each `equilibrium/α` claim is
UNDECIDABLE saying so (the rotation part keeps its own settings). Measured (that command with
`--tiny --max-steps 40 --quiet`, load average 24 on the shared 2-core machine): 178 s wall,
11 s user CPU (the rotation part on mnist_mlp included); equilibrium undecidable (no
prediction), the rotation claims undecidable (Ritz subspaces too inaccurate, as `TINY`).

From any sweep's stored runs (`analyze quadratic --sweep S`, nothing trained: `from_runs`):
the equilibrium on its noisy quadratic runs (one variant; α from `learning_rate`) and the
rotation on its runs whose Hessian snapshots stored Ritz vectors (one variant and setting,
a real workload before the quadratic), e.g. `curvebench sweep --workload mnist_mlp
--submission momentum --max-steps 300 --curvature hessian --curvature-vectors 5
--curvature-every init,log:10:300 --curvature-batch 1024 --name rot`; a sweep with neither
is a one-line error saying which options record them.

Second part, on a real workload (harness.analyses.rotation): Ciuca's "the high λ subspace is
remarkably consistent" — `mnist_mlp` trained with the built-in `momentum` (momentum 0.97,
clipped gradients, as his setup), Hessian snapshots storing the top-k Ritz vectors, the
overlap ‖U_aᵀU_b‖_F²/k between consecutive snapshots, against the first and against the last;
claims `rotation/stable` and `rotation/settles_early` (threshold `stable_overlap`, judged from
`early_fraction` of training on; undecidable when the Davis–Kahan estimate of the Ritz
subspaces' error cannot tell).

Expected outcome of the default (dim 10, power-law spectrum λ_i = 1/i, σ = 1, B = 32,
α ∈ {0.2, 0.5, 0.9}, seeds 0–2, 2,000 steps, an eval every 10; measured once: 46 s wall,
14 s user CPU, load average 6-7 on a shared 2-core machine): every α holds — measured
0.01218 ± 0.00064, 0.04137 ± 0.0025, 0.2973 ± 0.018 vs predicted 0.01152, 0.0418, 0.3049
(5.7%, 1.0%, 2.5% off); the same numbers again this session.
The rotation part (mnist_mlp, width 100: D = 89,610 parameters; momentum 0.97 with clipping;
300 steps; Hessian snapshots at `init,log:10:300` over 1,024 examples, Lanczos order 20, top
5 Ritz vectors) gives `rotation/stable` FAILS and `rotation/settles_early` FAILS at the
threshold 0.8 (ours: Ciuca gives no number): consecutive overlaps from step 30 on are 0.746
(45→84), 0.925 (84→159), 0.835 (159→300), and step 45's subspace overlaps step 300's by
0.715 — against 5.6e-5 for a random 5-dimensional subspace. The Ritz subspaces are accurate
there (Davis–Kahan estimates ≤ 0.04 from step 24 on), so the misses are real: the top
subspace rotates while the sharpness climbs (top Ritz value 1.5 at step 13 → 30 at step
84), then settles (0.83-0.93 once it has). Before step 13 the gap below the 5th Ritz value
is small and the subspace ill-determined (estimates 0.15-1.5).

Whole default, `curvebench analyze quadratic` with no flags, on 2 quiet cores (load 1.0),
programs from the warm compilation cache: 13 s wall.
`TINY` (α = 0.5, one seed; the rotation on mnist_mlp at width 16, 20 steps, snapshots at
0/2/10/20, top 3 of a Lanczos order 12; the test's): the equilibrium holds; both rotation
claims are undecidable (the Ritz subspaces' estimated errors reach 3 at step 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analyses.rotation import RotationRun, RotationSettings
from harness.analyses.settings import AnalysisSetting
from harness.analyses.verdict import Claim, Outcome
from harness.records.status import FINISHED

if TYPE_CHECKING:
    from harness.db import Run
    from harness.records.sweep import SweepEvent

NAME = "quadratic"
TAG = "quadratic"


@dataclasses.dataclass(frozen=True)
class QuadraticConfig:
    workload: str = "noisy_quadratic:dim=10"
    step_sizes: tuple[float, ...] = (0.2, 0.5, 0.9)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 2000
    eval_every: int = 10
    tolerance: float = 0.15
    submission: str = "sgd"
    #: the top-k subspace rotation on a real workload (harness.analyses.rotation); "" skips it
    rotation_workload: str = "mnist_mlp"
    rotation_submission: str = "momentum"
    rotation_seeds: tuple[int, ...] = (0,)
    rotation_steps: int = 300
    rotation_snapshots: str = "init,log:10:300"
    rotation_k: int = 5
    rotation_batch: int = 1024
    rotation_lanczos_order: int = 20
    stable_overlap: float = 0.8
    early_fraction: float = 0.1
    #: fixed hyperparameters besides the step size α
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def rotation(self) -> RotationSettings | None:
        if not self.rotation_workload:
            return None
        return RotationSettings(
            self.rotation_workload, self.rotation_submission, self.rotation_seeds,
            self.rotation_steps, self.rotation_snapshots, self.rotation_k, self.rotation_batch,
            self.rotation_lanczos_order, self.stable_overlap, self.early_fraction)


#: the options `configure` takes
OPTIONS = ("--workload", "--submission", "--hparam", "--seeds", "--max-steps")


def configure(config: QuadraticConfig, setting: AnalysisSetting) -> QuadraticConfig:
    """`config` with the user's workload for the α grid (one variant; the prediction needs a
    noisy quadratic's curvatures, elsewhere its claims are undecidable), submission, fixed
    hparams (never α, the grid), seeds and steps; the rotation part keeps its own settings."""
    from harness.errors import AnalysisSettingError

    setting.refuse_others(NAME, OPTIONS)
    if len(setting.workloads) > 1:
        raise AnalysisSettingError(f"analyze quadratic: one workload variant for the α grid; got "
                                   f"{', '.join(setting.workloads)}")
    return dataclasses.replace(
        config, workload=setting.workloads[0] if setting.workloads else config.workload,
        submission=setting.submission or config.submission,
        hparams=setting.fixed_hparams(NAME, owned=("learning_rate",)) or config.hparams,
        seeds=tuple(setting.seeds) or config.seeds, steps=setting.max_steps or config.steps)


TINY = QuadraticConfig(step_sizes=(0.5,), seeds=(0,), rotation_workload="mnist_mlp:width=16",
                       rotation_steps=20, rotation_snapshots="init,at:2/10/20", rotation_k=3,
                       rotation_batch=256, rotation_lanczos_order=12)


def predicted_excess(curvatures: np.ndarray, alpha: float, sigma: float, batch: int) -> float:
    """Σ_i αλ_i²σ²/(B(1 − αλ_i)): the stationary E[Σ λ_i x_i²] of SGD on the noisy quadratic."""
    lam = np.asarray(curvatures, np.float64)
    if np.any(alpha * lam >= 1.0):
        raise ValueError(f"α λ_max = {alpha * lam.max():g} ≥ 1: SGD has no equilibrium; lower α")
    return float(np.sum(alpha * lam ** 2 * sigma ** 2 / (batch * (1.0 - alpha * lam))))


def equilibrium_mean(curves: list[np.ndarray], blocks: int = 10) -> tuple[float, float]:
    """Mean of the second halves of the seeds' excess-loss curves and its standard error
    from `blocks` batch means per seed (evals are autocorrelated; batch means are not, much)."""
    means = []
    for c in curves:
        tail = np.asarray(c, np.float64)[len(c) // 2:]
        means.extend(np.mean(b) for b in np.array_split(tail, min(blocks, len(tail))))
    if len(means) < 2:
        raise ValueError("need at least two evals in the second half of the runs")
    return float(np.mean(means)), float(np.std(means, ddof=1) / np.sqrt(len(means)))


STATEMENT = "α={a:g}: the excess loss settles at Σ αλ²σ²/(B(1−αλ))"


def judge_one(alpha: float, measured: float, stderr: float, predicted: float, tolerance: float) -> Claim:
    off = abs(measured - predicted) / predicted
    numbers = (f"measured {measured:.4g} ± {stderr:.2g} vs predicted {predicted:.4g} "
               f"({off:.1%} off, tolerance {tolerance:.0%})")
    statement = STATEMENT.format(a=alpha)
    if stderr / predicted > tolerance:
        return Claim(f"equilibrium/α={alpha:g}", statement, Outcome.UNDECIDABLE,
                     f"{numbers}; standard error above the tolerance: too few evals or seeds")
    if off <= tolerance:
        return Claim(f"equilibrium/α={alpha:g}", statement, Outcome.HOLDS, numbers)
    if abs(measured - predicted) > 2 * stderr:
        return Claim(f"equilibrium/α={alpha:g}", statement, Outcome.FAILS, numbers)
    return Claim(f"equilibrium/α={alpha:g}", statement, Outcome.UNDECIDABLE,
                 f"{numbers}; outside the tolerance but within 2 standard errors: more seeds")


@dataclasses.dataclass
class QuadraticResult:
    sweep_id: str
    config: QuadraticConfig
    run_ids: dict[str, list[str]]
    claims: list[Claim]
    #: the rotation part's sweep and runs (None: not run)
    rotation_sweep_id: str | None = None
    rotation: list[RotationRun] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": NAME, "config": dataclasses.asdict(self.config), "run_ids": self.run_ids,
                "claims": [c.to_json() for c in self.claims],
                "rotation_sweep_id": self.rotation_sweep_id,
                "rotation": None if self.rotation is None else [r.to_json() for r in self.rotation]}

    @classmethod
    def from_json(cls, sweep_id: str, d: Mapping[str, Any]) -> QuadraticResult:
        cfg = QuadraticConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in d["config"].items()})
        rotation = d.get("rotation")
        return cls(sweep_id, cfg, {k: list(v) for k, v in d["run_ids"].items()},
                   [Claim.from_json(c) for c in d["claims"]], d.get("rotation_sweep_id"),
                   None if rotation is None else [RotationRun.from_json(r) for r in rotation])


def result_from_json(sweep_id: str, document: Mapping[str, Any]) -> QuadraticResult:
    """The result stored in an analysis sweep's spec."""
    return QuadraticResult.from_json(sweep_id, document)


def _curve(db, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    curve = db.eval_curve(run_id)
    steps = np.array(sorted(curve))
    return steps, np.array([curve[s]["excess_loss"] for s in steps])


def _predictable(workload) -> bool:
    """Whether the equilibrium formula applies: a noisy quadratic (its curvatures and σ)."""
    return hasattr(workload, "curvatures") and "sigma" in workload.variant


def equilibrium(db, runs: Sequence[Run], config: QuadraticConfig) -> tuple[dict[str, list[str]], list[Claim]]:
    """Run ids per step size α (the runs' learning_rate) and the `equilibrium/α` verdicts: the
    stored excess loss's second-half mean against the prediction at the runs' batch size."""
    from workloads import get_workload

    run_ids: dict[str, list[str]] = {}
    batch: dict[str, int] = {}
    for r in runs:
        run_ids.setdefault(str(float(r.hparams["learning_rate"])), []).append(r.id)
        batch[str(float(r.hparams["learning_rate"]))] = r.batch_size
    workload = get_workload(config.workload)
    claims = []
    for alpha, ids in run_ids.items():
        a = float(alpha)
        if _predictable(workload):
            mean, err = equilibrium_mean([_curve(db, i)[1] for i in ids])
            predicted = predicted_excess(workload.curvatures(), a, workload.variant["sigma"], batch[alpha])
            claims.append(judge_one(a, mean, err, predicted, config.tolerance))
        else:
            claims.append(Claim(f"equilibrium/α={a:g}", STATEMENT.format(a=a), Outcome.UNDECIDABLE,
                                f"no prediction: {config.workload} is not a noisy quadratic (the "
                                f"formula needs its curvatures λ_i and noise σ); its runs are "
                                f"{', '.join(i[:8] for i in ids)}"))
    return run_ids, claims


def _ritz_runs(db, runs: Sequence[Run]) -> dict[str, list[dict[str, Any]]]:
    """The runs with Hessian snapshots storing Ritz vectors, with their snapshots."""
    out = {}
    for r in runs:
        snaps = db.snapshots(r.id)
        if any(x["kind"] == "hessian" and "ritz_vectors" in x["arrays"] for x in snaps):
            out[r.id] = snaps
    return out


def from_runs(db, sweep_id: str, runs: Sequence[Run], config: QuadraticConfig | None = None) -> QuadraticResult:
    """The equilibrium verdicts of stored runs, and (any sweep's runs, no `config`) the top
    subspace's rotation of those with Ritz-vector snapshots (`--curvature hessian
    --curvature-vectors K`). With `config` (the analysis's own α grid) every run is an α-grid
    run; the rotation part is its own sweep (`run`). Without it the α grid and the rotation
    settings are read off the runs and their snapshot config; ValueError when the sweep has
    neither a noisy quadratic's runs nor Ritz vectors."""
    from harness.analyses import rotation

    done = [r for r in runs if r.status in FINISHED]
    if not done:
        raise ValueError(f"sweep {sweep_id[:8]}: none of its {len(runs)} run(s) has finished")
    if config is not None:
        run_ids, claims = equilibrium(db, done, config)
        return QuadraticResult(sweep_id, config, run_ids, claims)
    from workloads import get_workload

    ritz = _ritz_runs(db, done)
    quad = [r for r in done if _predictable(get_workload(r.variant)) and "learning_rate" in r.hparams]
    # the rotation is judged on one workload variant: a real one (not the quadratic) if any
    with_ritz = [r for r in done if r.id in ritz]
    real = [r for r in with_ritz if r not in quad] or with_ritz
    ritz = {r.id: ritz[r.id] for r in with_ritz  # and one setting of it (its seeds side by side)
            if (r.variant, r.submission, r.hparams) == (real[0].variant, real[0].submission, real[0].hparams)}
    if not ritz and not quad:
        raise ValueError(f"sweep {sweep_id[:8]} has no noisy_quadratic runs (the equilibrium) and no "
                         "runs with stored Ritz vectors (the rotation: sweep with --curvature hessian "
                         "--curvature-vectors K --curvature-every init,log:N:STEPS)")
    variants = sorted({r.variant for r in quad})
    if len(variants) > 1:
        raise ValueError(f"sweep {sweep_id[:8]} has noisy quadratic runs of {', '.join(variants)}; the "
                         "equilibrium compares α on one variant: analyze a sweep of one")
    fields: dict[str, Any] = {"rotation_workload": ""}
    if quad:
        fields.update(workload=variants[0], step_sizes=tuple(sorted({float(r.hparams["learning_rate"])
                                                                     for r in quad})),
                      seeds=tuple(sorted({r.seed for r in quad})), steps=max(r.max_steps for r in quad),
                      eval_every=max(r.eval_every for r in quad), submission=quad[0].submission)
    if ritz:
        rot = [r for r in done if r.id in ritz]
        hess = [x for x in ritz[rot[0].id] if x["kind"] == "hessian" and "ritz_vectors" in x["arrays"]]
        cfg = hess[0]["config"]
        fields.update(rotation_workload=rot[0].variant, rotation_submission=rot[0].submission,
                      rotation_seeds=tuple(sorted({r.seed for r in rot})),
                      rotation_steps=max(r.max_steps for r in rot),
                      rotation_snapshots="at:" + "/".join(str(x["step"]) for x in hess),
                      rotation_k=int(hess[0]["arrays"]["ritz_vectors"].shape[0]),
                      rotation_batch=cfg.get("curvature_batch") or 0,
                      rotation_lanczos_order=int(cfg.get("lanczos_order") or 0))
    config = QuadraticConfig(**fields)
    run_ids, claims = equilibrium(db, quad, config) if quad else ({}, [])
    rotation_runs = None
    if ritz:
        settings = config.rotation()
        rotation_runs = [rotation.measure(r.id, r.seed, ritz[r.id], settings.k)
                         for r in done if r.id in ritz]
        claims += rotation.judge(rotation_runs, settings)
    return QuadraticResult(sweep_id, config, run_ids, claims, sweep_id if ritz else None, rotation_runs)


def run(config: QuadraticConfig, db_url: str, *, data_source: str | None = None,
        data_dir: str | None = None, command: str = "curvebench analyze quadratic",
        on_event: Callable[[SweepEvent], None] | None = None) -> QuadraticResult:
    """Train every α and judge the equilibrium on its runs (`from_runs`); train the real
    workload with Ritz-vector snapshots and judge the top subspace's rotation; store.
    on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.analyses import rotation
    from harness.analyses.store import store_result
    from harness.db import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.records.sweep import TrialRequest
    from harness.records.trial import TrialOptions

    requests = [TrialRequest(config.workload, config.submission, {**config.hparams, "learning_rate": a}, s)
                for a in config.step_sizes for s in config.seeds]
    options = TrialOptions(max_steps=config.steps, eval_every=config.eval_every,
                           stop_at_target=False, origin=RunOrigin.ANALYSIS, tag=TAG)
    sweep = run_sweep(requests, options, db_url, name=f"analysis-{NAME}", command=command,
                      data_source=data_source, data_dir=data_dir, on_event=on_event)
    db = database(db_url)
    result = from_runs(db, sweep.sweep_id, db.get_runs([t.result.run_id for t in sweep.trials]), config)
    settings = config.rotation()
    if settings is not None:
        result.rotation_sweep_id, result.rotation = rotation.run(
            settings, db_url, tag=TAG, name=f"analysis-{NAME}-rotation", command=command,
            data_source=data_source, data_dir=data_dir, on_event=on_event)
        result.claims.extend(rotation.judge(result.rotation, settings))
    store_result(db, sweep.sweep_id, result.to_json())
    return result


def section(result: QuadraticResult, db):
    """The report section: excess loss over steps per α with the predicted equilibrium."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.analyses.verdict import claims_table
    from harness.report import Figure, Provenance, Section, mark_data
    from workloads import get_workload

    workload = get_workload(result.config.workload)
    runs = db.get_runs([i for ids in result.run_ids.values() for i in ids])
    figures, text = [], ""
    if runs and _predictable(workload):
        batch = runs[0].batch_size
        plot = PlotFigure(figsize=(6.5, 4), layout="constrained")
        ax = plot.subplots()
        for k, (alpha, ids) in enumerate(result.run_ids.items()):
            colour = f"C{k}"
            for i in ids:
                steps, values = _curve(db, i)
                mark_data(ax.plot(steps, values, color=colour, lw=0.6, alpha=0.6))
            pred = predicted_excess(workload.curvatures(), float(alpha), workload.variant["sigma"], batch)
            mark_data(ax.axhline(pred, color=colour, ls="--", lw=1.2, label=f"α={float(alpha):g}: prediction"))
        ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="excess loss Σ λ_i x_i²")
        ax.legend(fontsize=7)
        figures.append(Figure("Noisy quadratic: excess loss vs Ciuca's equilibrium",
                              "Every seed's excess loss over steps per step size α (solid) and the "
                              "predicted stationary Σ αλ²σ²/(B(1−αλ)) (dashed).",
                              Provenance.of(runs, f"eval_rows (excess_loss) of sweep {result.sweep_id}"),
                              plot, slug="quadratic-equilibrium"))
        text = (f"`{result.config.submission}` on `{result.config.workload}`, batch {batch}, "
                f"{result.config.steps} steps; the mean over the second half is compared.")
    settings = result.config.rotation()
    if result.rotation and settings is not None:
        from harness.analyses import rotation

        rot_runs = [db.get_run(r.run_id) for r in result.rotation]
        figures.append(rotation.figure(result.rotation, settings, Provenance.of(
            rot_runs, f"curvature_arrays ritz_vectors, ritz_values, ritz_residuals of sweep "
                      f"{result.rotation_sweep_id}")))
        text += (f"\n\nTop-{settings.k} Hessian subspace rotation (Ciuca: \"the high λ subspace is "
                 f"remarkably consistent\"): `{settings.submission}` on `{settings.workload}`, "
                 f"{settings.steps} steps, snapshots `{settings.snapshots}` storing the top-"
                 f"{settings.k} Ritz vectors (sweep {result.rotation_sweep_id}).")
    return Section(f"Stochastic quadratic model (Ciuca) — sweep {result.sweep_id[:8]}",
                   text=text.strip(), figures=figures, tables=[claims_table(result.claims)])
