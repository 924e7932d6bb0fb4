"""`curvebench analyze catapult`: the early-training phase diagram of Kalra & Barkeshli (2023).

What it does. For every model (a workload variant) and seed it measures λ_H^0, the top
eigenvalue of the full-batch training-loss Hessian at the seed's initial parameters
(Lanczos, harness.curvature.Snapshotter), then trains at η = c/λ_H^0 for every c of a grid
with constant-learning-rate SGD (`sgd`: full batch on `uv`,
mini-batches of the workload's batch size elsewhere) for a short early-training window,
all through the sweep engine (runs with origin `analysis`, tag `catapult`, one sweep). Each
run is classified from its stored per-step training losses L_t (Definition 1 of the paper):

* DIVERGES: the run diverged (a loss non-finite or above 10⁵ L_0, the runner's
  divergence_factor, the paper's fixed large constant) or the loss has not come back below
  L_0 by the end of the window;
* CATAPULT: max_t L_t/L_0, rounded to two decimals as in the paper, exceeds 1 and the loss
  ends below L_0; the sharpness at the end of the window (a snapshot) is compared to 2/η;
* MONOTONE: otherwise (the loss never rises above L_0).

From any sweep's stored runs (`analyze catapult --sweep S`, nothing trained: `from_runs`):
models with a `width` knob, a `learning_rate` per run, and Hessian snapshots at step 0 (λ_H^0,
so c = η λ_H^0 is each run's own) and at the window's end, e.g. `curvebench sweep --workload
'uv:width=2|512' --submission sgd --hparam 'learning_rate=0.25|0.75|1.25|1.75|2.25'
--max-steps 40 --curvature hessian --curvature-every init,at:40 --name cat`; the grid step a
verdict allows is the coarsest gap between one model and seed's c values.

Any models with a `width` knob, any submission (fixed hparams besides η), seeds, window and
Lanczos order can replace the defaults (`analyze catapult --workload 'uv:width=3|64'
--submission momentum --hparam momentum=0.5 --seeds 0,1 --max-steps 60 --lanczos-order 12`;
`configure`); without a uv model, claims 1 and 2 are undecidable, saying so. Measured
(`analyze catapult --tiny --workload 'uv:width=3|64' --seeds 1 --max-steps 40 --quiet`, load
average 12-16 on the shared 2-core machine): 118 s wall, 6.9 s user CPU; every claim decided
but c_loss_grows_small_width (widths 3 and 64: 3.5 vs 2.5, within the grid step 1.5).

Per model and seed, c_loss is the smallest c of the grid whose loss rises (catapult or
divergence) and c_max the largest c that does not diverge; both are only known to within
the grid step. Claims judged (their numbers are in each verdict's reason):

1. `uv_c_loss_2`: at large width the loss starts to catapult at c_loss ≈ 2 (uv, the widest
   width; within one grid step);
2. `uv_c_max_4`: at large width the uv model trains up to c_max ≈ 4 (App. B);
3. `c_loss_grows_small_width`: c_loss increases as the width decreases (the opening of the
   sharpness-reduction phase), per model family; undecidable when the difference is within
   one grid step;
4. `c_order`: 2 ≤ c_loss ≤ c_max for every model and seed whose loss is a squared error
   (`MSE_FAMILIES`: the paper states its thresholds for MSE; other models are named in the
   reason, not judged; undecidable when no chosen model has an MSE loss, the grid does
   not reach c_loss or c_max, or the loss jumps from monotone straight to divergent
   between neighbouring c values: c_loss > c_max by one grid step, a finer grid decides);
5. `catapult_flattens`: every catapulting run ends with sharpness below 2/η (undecidable
   when a final sharpness estimate did not converge).

Outcome of the default (uv at widths 4, 32, 512 and mnist_mlp at widths 16 and 256 on the
offline MNIST sample, c from 0.5 to 5.0 in steps of 0.5, seeds 0 and 1, 100 steps), rerun
since `c_order` judges the MSE models only (`curvebench analyze catapult --json --quiet`,
2026-12-05, 2 cores, load average 0.3 at the start and 9 at the end as other jobs started,
programs from a warm compilation cache): 3 min 23 s wall, 91 s user CPU. `uv_c_loss_2` holds
(c_loss 2.5 for both seeds), `uv_c_max_4` holds (c_max 4); `c_loss_grows_small_width` is
undecidable for uv (2.5 at widths 4 and 512: the grid is too coarse there; width 2
separates, see TINY) and for mnist_mlp (1.5 at width 16, 2 at width 256, within the step
0.5); `c_order` holds on the 6 uv model × seed pairs and names the MLPs as not judged;
`catapult_flattens` fails on mnist_mlp only (12 of its 27 "catapults" end above 2/η, e.g.
width 16 seed 0 at c = 1.5: λ_max 4.22 ≥ 2/η = 2.74): with cross-entropy and mini-batch
losses the per-step batch loss rises above L_0 by more than the paper's 2-decimal rounding.
The paper's claims are for MSE (its App. F says cross-entropy is noisier, c_loss larger than
2); read the MLP's verdicts as that caveat measured, not as a refutation. Run again after the
runs were judged through `from_runs` (the same command, load average 9.5-12 throughout):
every verdict and reason identical, 9 min 9 s wall, 111 s user CPU — the wall time is the
machine's load, the CPU time about the same. (Measured first,
before `c_order` left the MLPs out: 7 min 44 s wall, 224 s user CPU, load average 4-7; then
`c_order` failed on the MLPs, the other verdicts as now.)
Measured again (`curvebench analyze catapult`, no flags, same verdicts) on 2 quiet cores
(load 1.7), programs from the warm compilation cache: 142 s wall. Where a run's wall time goes (runs.train_s, compile_s and
the snapshots' compute_s against started_at/finished_at): for mnist_mlp at width 256 each
run is 30-55 s wall = 10-20 s training (100 steps at batch 1,024) + 1-5 s compiling + 15-32 s
for the final full-batch Hessian snapshot (20 Lanczos products over the whole training
split, as the paper's λ_H is full-batch), with nothing left over; the first 2 min go to
imports and λ_H^0 of the 10 (model, seed) pairs. No run took minutes on its own: a run whose
wall time is many times its train_s is its snapshot plus a loaded machine, not waste. With
curvature, trials group by hyperparameters (a snapshot reads its trial's η), so each c is
its own compiled program; the persistent compilation cache serves repeats.
`TINY` (uv at widths 2 and 512, c ∈ {1, 2.5, 3.5, 4.5}, seed 0, 60 steps; the
test's) gives: claims 1, 2, 3 and 5 hold; claim 4 is undecidable (width 2's loss never rises
on the grid: the sharpness-reduction phase covers all of it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.analyses.catapult_figures import section
from harness.analyses.catapult_judge import (LOSS_RISE_DECIMALS, MSE_FAMILIES, Phase, RunPhase, classify,
                                             critical_constants, family, judge, width)
from harness.analyses.settings import AnalysisSetting
from harness.analyses.verdict import Claim, some_runs
from harness.records.status import FINISHED, RunStatus

if TYPE_CHECKING:
    from harness.db import Run
    from harness.records.sweep import SweepEvent

__all__ = ["LOSS_RISE_DECIMALS", "MSE_FAMILIES", "NAME", "OPTIONS", "TAG", "TINY", "CatapultConfig",
           "CatapultResult", "Phase", "RunPhase", "classify", "configure", "critical_constants",
           "family", "from_runs", "initial_sharpness", "judge", "result_from_json", "run", "section",
           "width"]

NAME = "catapult"
TAG = "catapult"
#: the options `configure` takes
OPTIONS = ("--workload", "--submission", "--hparam", "--seeds", "--max-steps", "--lanczos-order")


@dataclasses.dataclass(frozen=True)
class CatapultConfig:
    """The grid. `models`: workload variants, each `family` (its name) at a width knob."""

    models: tuple[str, ...] = ("uv:width=4", "uv:width=32", "uv:width=512",
                               "mnist_mlp:width=16", "mnist_mlp:width=256")
    c_grid: tuple[float, ...] = tuple(round(0.5 * i, 2) for i in range(1, 11))
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 100
    submission: str = "sgd"
    lanczos_order: int = 20
    #: fixed hyperparameters besides η (which c sets), e.g. a chosen submission's momentum
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def snapshot_config(self) -> dict[str, Any]:
        """Full-batch Hessian, top eigenvalue only (harness.curvature.SnapshotConfig fields)."""
        return {"kinds": ["hessian"], "curvature_batch": None, "lanczos_order": self.lanczos_order,
                "top_k": [1], "trace_probes": 0}


TINY = CatapultConfig(models=("uv:width=2", "uv:width=512"),
                      c_grid=(1.0, 2.5, 3.5, 4.5), seeds=(0,), steps=60)


def configure(config: CatapultConfig, setting: AnalysisSetting) -> CatapultConfig:
    """`config` with the user's models (each needs a `width` knob: the diagram's y axis),
    submission, fixed hparams (never η), seeds, window (`--max-steps`) and Lanczos order."""
    from harness.errors import AnalysisSettingError

    setting.refuse_others(NAME, OPTIONS)
    for model in setting.workloads:
        if not _has_width(model):
            raise AnalysisSettingError(f"analyze catapult: {model} has no width knob (the phase "
                                       f"diagram is c × width); choose a workload with one, e.g. uv:width=8|64")
    order = setting.curvature.get("lanczos_order")
    if order is not None and not str(order).isdigit():
        raise AnalysisSettingError(f"analyze catapult: --lanczos-order takes an integer here, got {order!r}")
    return dataclasses.replace(
        config, models=tuple(setting.workloads) or config.models,
        submission=setting.submission or config.submission,
        hparams=setting.fixed_hparams(NAME, owned=("learning_rate",)) or config.hparams,
        seeds=tuple(setting.seeds) or config.seeds, steps=setting.max_steps or config.steps,
        lanczos_order=int(order) if order is not None else config.lanczos_order)


def get_spec(model: str) -> str:
    """The variant's canonical spec, as its runs store it (runs.variant)."""
    from workloads import get_workload

    return get_workload(model).spec


def _has_width(model: str) -> bool:
    from workloads import get_workload

    return "width" in get_workload(model).variant


def initial_sharpness(config: CatapultConfig, data_source: str | None = None,
                      data_dir: str | None = None) -> dict[tuple[str, int], tuple[float, bool]]:
    """λ_H^0 and its Lanczos convergence flag per (model, seed), at the parameters the runner
    initialises that seed with (harness.trial.trial_keys)."""
    from harness.curvature import SnapshotConfig, Snapshotter
    from harness.experiment import load_dataset
    from harness.submissions import load_submission
    from harness.trial import trial_keys
    from workloads import get_workload

    submission = load_submission(config.submission)
    snap_config = SnapshotConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in config.snapshot_config().items()})
    out = {}
    for model in config.models:
        workload = get_workload(model)
        dataset = load_dataset(workload, data_dir, data_source)
        snapper = Snapshotter(workload, dataset, snap_config,
                              batch_size=submission.batch_size(workload.name, workload.batch_size))
        for seed in config.seeds:
            params, state = workload.init(trial_keys(seed)["init"])
            metrics = snapper.snapshot(params, state)[0].metrics
            out[(model, seed)] = (float(metrics["max_eig"]), bool(metrics["max_eig_converged"]))
    return out


@dataclasses.dataclass
class CatapultResult:
    """The analysis sweep's id, every run's phase and the verdicts."""

    sweep_id: str
    config: CatapultConfig
    phases: list[RunPhase]
    claims: list[Claim]

    def to_json(self) -> dict[str, Any]:
        return {"name": NAME, "config": dataclasses.asdict(self.config),
                "phases": [p.to_json() for p in self.phases],
                "claims": [c.to_json() for c in self.claims]}

    @classmethod
    def from_json(cls, sweep_id: str, d: Mapping[str, Any]) -> CatapultResult:
        cfg = CatapultConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in d["config"].items()})
        return cls(sweep_id, cfg, [RunPhase.from_json(p) for p in d["phases"]],
                   [Claim.from_json(c) for c in d["claims"]])


def result_from_json(sweep_id: str, document: Mapping[str, Any]) -> CatapultResult:
    """The result stored in an analysis sweep's spec."""
    return CatapultResult.from_json(sweep_id, document)


def _window_sharpness(snapshots: Sequence[Mapping[str, Any]], step: int) -> tuple[float | None, bool]:
    """λ_max of the Hessian snapshot at `step` (the window's end) and whether it converged."""
    last = [x["metrics"] for x in snapshots if x["kind"] == "hessian" and x["step"] == step]
    if not last:
        return None, False
    return last[0].get("max_eig"), bool(last[0].get("max_eig_converged"))


def from_runs(db, sweep_id: str, runs: Sequence[Run], config: CatapultConfig | None = None,
              lambda0: Mapping[tuple[str, int], float] | None = None) -> CatapultResult:
    """Every run's phase from its stored training losses, c = η λ_H^0, its final sharpness
    (the Hessian snapshot at the end of the window), and the verdicts. `lambda0` per (model,
    seed): the analysis's own measurement; without it (any sweep's runs) λ_H^0 is each run's
    Hessian snapshot at step 0, and the window, c values and submission are read off the runs.
    ValueError when a model has no width knob, a run has no learning_rate, no training losses,
    or (without `lambda0`) no Hessian snapshot at step 0, saying which sweep options record it."""
    from harness.errors import AnalysisSettingError

    done = [r for r in runs if r.status in FINISHED]
    if not done:
        raise ValueError(f"sweep {sweep_id[:8]}: none of its {len(runs)} run(s) has finished")
    for model in dict.fromkeys(r.variant for r in done):
        if not _has_width(model):
            raise AnalysisSettingError(f"analyze catapult: {model} has no width knob (the phase "
                                       f"diagram is c × width); analyze a sweep of models with one")
    no_lr = [r.id for r in done if "learning_rate" not in r.hparams]
    if no_lr:
        raise ValueError(f"{some_runs(no_lr)} have no learning_rate hyperparameter (c = η λ_H^0)")
    phases = []
    for r in done:
        snaps = db.snapshots(r.id)
        if lambda0 is not None:
            lam = lambda0[(r.variant, r.seed)]
        else:
            init = [x["metrics"].get("max_eig") for x in snaps if x["kind"] == "hessian" and x["step"] == 0]
            if not init or init[0] is None or not (math.isfinite(init[0]) and init[0] > 0):
                raise ValueError(f"run {r.id[:8]} has no positive Hessian λ_max at step 0 (λ_H^0, "
                                 f"for c = η λ_H^0): sweep with --curvature hessian --curvature-every "
                                 f"init,at:STEPS (STEPS = --max-steps, the window's end)")
            lam = float(init[0])
        _, losses = db.losses(r.id)
        if not len(losses):
            raise ValueError(f"run {r.id[:8]} has no stored training losses to classify")
        phase, peak, final = classify(losses, r.status == RunStatus.DIVERGED.value)
        lr = float(r.hparams["learning_rate"])
        sharp, converged = _window_sharpness(snaps, r.max_steps)
        c = lr * lam  # the grid's c it was trained at, or (a sweep's run) its own, to 3 decimals
        c = min(config.c_grid, key=lambda g: abs(g - c)) if config is not None else round(c, 3)
        phases.append(RunPhase(r.id, r.variant, r.seed, c, lr, lam, phase, peak, final, sharp, converged))
    if config is None:
        first = done[0]
        config = CatapultConfig(
            models=tuple(dict.fromkeys(r.variant for r in done)),
            c_grid=tuple(sorted({p.c for p in phases})), seeds=tuple(sorted({r.seed for r in done})),
            steps=max(r.max_steps for r in done), submission=first.submission,
            hparams={k: v for k, v in first.hparams.items() if k != "learning_rate"})
    return CatapultResult(sweep_id, config, phases,
                          judge(phases, config.c_grid if lambda0 is not None else None))


def run(config: CatapultConfig, db_url: str, *, data_source: str | None = None,
        data_dir: str | None = None, command: str = "curvebench analyze catapult",
        on_event: Callable[[SweepEvent], None] | None = None) -> CatapultResult:
    """Measure λ_H^0, train the c grid through the sweep engine, classify and judge its runs
    (`from_runs`), store.
    on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.analyses.store import store_result
    from harness.db.models import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.progress import Phase as ProgressPhase
    from harness.records.sweep import CurvatureRequest, SweepPhase, TrialRequest
    from harness.records.trial import TrialOptions

    if on_event is not None:
        on_event(SweepPhase(ProgressPhase.SNAPSHOT, "λ_H^0 at initialisation, per model and seed"))
    measured = initial_sharpness(config, data_source, data_dir)
    bad = [f"{m} seed {s}: {lam:g}" for (m, s), (lam, _) in measured.items()
           if not (math.isfinite(lam) and lam > 0)]
    if bad:
        raise ValueError(f"λ_H^0 must be positive to set η = c/λ_H^0; got {', '.join(bad)}")
    requests = [TrialRequest(model, config.submission,
                             {**config.hparams, "learning_rate": c / measured[(model, seed)][0]}, seed)
                for model in config.models for seed in config.seeds for c in config.c_grid]
    options = TrialOptions(max_steps=config.steps, eval_every=config.steps, stop_at_target=False,
                           origin=RunOrigin.ANALYSIS, tag=TAG)
    curvature = CurvatureRequest(config.snapshot_config(), f"at:{config.steps}")
    sweep = run_sweep(requests, options, db_url, name=f"analysis-{NAME}", command=command,
                      data_source=data_source, data_dir=data_dir, curvature=curvature,
                      on_event=on_event)
    db = database(db_url)
    runs = db.get_runs([t.result.run_id for t in sweep.trials])
    lambda0 = {(get_spec(model), seed): measured[(model, seed)][0]
               for model in config.models for seed in config.seeds}
    result = from_runs(db, sweep.sweep_id, runs, config, lambda0)
    store_result(db, sweep.sweep_id, result.to_json())
    return result
