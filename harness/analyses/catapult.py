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
   reason, not judged; undecidable when no chosen model has an MSE loss or the grid does
   not reach c_loss or c_max);
5. `catapult_flattens`: every catapulting run ends with sharpness below 2/η (undecidable
   when a final sharpness estimate did not converge).

Outcome of the default (uv at widths 4, 32, 512 and mnist_mlp at widths 16 and 256 on the
offline MNIST sample, c from 0.5 to 5.0 in steps of 0.5, seeds 0 and 1, 100 steps; measured
once, 7 min 44 s wall, 224 s user CPU, load average 4-7 on a shared 2-core machine):
`uv_c_loss_2` holds (c_loss 2.5 for both seeds), `uv_c_max_4` holds (c_max 4);
`c_loss_grows_small_width` is undecidable for uv (widths 4 and 512 both 2.5: the grid is too
coarse there; width 2 separates, see TINY) and for mnist_mlp; `c_order` and
`catapult_flattens` fail on mnist_mlp only: with cross-entropy and mini-batch losses the
per-step batch loss rises above L_0 by more than the paper's 2-decimal rounding at c = 1.5,
and those "catapults" end above 2/η (since then `c_order` judges the MSE models only, uv here,
and names the MLPs in its reason; the default was not rerun after that change). The paper's claims are for MSE (its App. F says
cross-entropy is noisier, c_loss larger than 2); read the MLP's verdicts as that caveat
measured, not as a refutation.
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
import enum
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.analyses.settings import AnalysisSetting
from harness.analyses.verdict import Claim, Outcome
from harness.records.status import RunStatus

if TYPE_CHECKING:
    from harness.records.sweep import SweepEvent

NAME = "catapult"
TAG = "catapult"
LOSS_RISE_DECIMALS = 2
#: workload families whose loss is a squared error: the paper's c thresholds are stated for
#: MSE (its App. F: cross-entropy is noisier, c_loss larger than 2)
MSE_FAMILIES = ("uv", "lowrank", "noisy_quadratic")
#: the options `configure` takes
OPTIONS = ("--workload", "--submission", "--hparam", "--seeds", "--max-steps", "--lanczos-order")


class Phase(str, enum.Enum):
    """How the loss of one run behaves in the early-training window."""

    MONOTONE = "monotone"
    CATAPULT = "catapult"
    DIVERGES = "diverges"


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


def _has_width(model: str) -> bool:
    from workloads import get_workload

    return "width" in get_workload(model).variant


@dataclasses.dataclass(frozen=True)
class RunPhase:
    """One run's classification, with the numbers it rests on."""

    run_id: str
    model: str
    seed: int
    c: float
    learning_rate: float
    lambda0: float
    phase: Phase
    peak_ratio: float
    final_ratio: float
    final_sharpness: float | None
    final_sharpness_converged: bool

    @property
    def below_edge(self) -> bool | None:
        """Final sharpness < 2/η (None: not measured)."""
        if self.final_sharpness is None:
            return None
        return self.final_sharpness < 2.0 / self.learning_rate

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["phase"] = self.phase.value
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunPhase:
        return cls(**{**d, "phase": Phase(d["phase"])})


def family(model: str) -> str:
    return model.split(":", 1)[0]


def width(model: str) -> int:
    """The variant's width knob (the phase diagram's y axis)."""
    from workloads import get_workload

    return int(get_workload(model).variant["width"])


def classify(losses: np.ndarray, diverged: bool) -> tuple[Phase, float, float]:
    """Phase, max_t L_t/L_0 and L_T/L_0 of a run's per-step training losses (L_0 first)."""
    losses = np.asarray(losses, np.float64)
    if losses.size == 0:
        raise ValueError("a run without stored training losses cannot be classified")
    l0 = losses[0]
    ratios = losses / l0
    finite = np.isfinite(ratios)
    peak = float(np.max(ratios[finite])) if finite.any() else math.inf
    final = float(ratios[-1]) if finite[-1] else math.inf
    if diverged or not finite.all() or final >= 1.0:
        return Phase.DIVERGES, peak, final
    if round(peak, LOSS_RISE_DECIMALS) > 1.0:
        return Phase.CATAPULT, peak, final
    return Phase.MONOTONE, peak, final


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


def critical_constants(phases: Sequence[RunPhase]) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """(c_loss, c_max) per (model, seed): the smallest c whose loss rises, the largest c that
    does not diverge (None: not reached by the grid)."""
    by_key: dict[tuple[str, int], list[RunPhase]] = {}
    for p in phases:
        by_key.setdefault((p.model, p.seed), []).append(p)
    out = {}
    for key, runs in by_key.items():
        rising = [p.c for p in runs if p.phase != Phase.MONOTONE]
        trained = [p.c for p in runs if p.phase != Phase.DIVERGES]
        out[key] = (min(rising) if rising else None, max(trained) if trained else None)
    return out


def _grid_step(config_grid: Sequence[float]) -> float:
    grid = sorted(config_grid)
    return max(b - a for a, b in zip(grid, grid[1:])) if len(grid) > 1 else math.inf


def _fmt(values: Sequence[float | None]) -> str:
    return ", ".join("—" if v is None else f"{v:g}" for v in values)


def judge(phases: Sequence[RunPhase], c_grid: Sequence[float]) -> list[Claim]:
    """The verdict on each claim of the module docstring."""
    step = _grid_step(c_grid)
    crit = critical_constants(phases)
    models = list(dict.fromkeys(p.model for p in phases))
    claims: list[Claim] = []

    uv = sorted((m for m in models if family(m) == "uv"), key=width)
    if not uv:
        for name, what in (("uv_c_loss_2", "the loss starts to catapult at c_loss ≈ 2"),
                           ("uv_c_max_4", "training converges up to c_max ≈ 4")):
            claims.append(Claim(name, f"at large width (uv) {what}", Outcome.UNDECIDABLE,
                                f"stated for the paper's uv model (MSE); the chosen models "
                                f"({', '.join(models)}) have none: add a wide uv variant"))
    if uv:
        widest = uv[-1]
        for name, index, target, what in (("uv_c_loss_2", 0, 2.0, "the loss starts to catapult at c_loss ≈ 2"),
                                          ("uv_c_max_4", 1, 4.0, "training converges up to c_max ≈ 4")):
            values = [v[index] for (m, _), v in crit.items() if m == widest]
            statement = f"at large width (uv, n={width(widest)}) {what}"
            if any(v is None for v in values):
                claims.append(Claim(name, statement, Outcome.UNDECIDABLE,
                                    f"the c grid does not reach it for every seed ({_fmt(values)}); "
                                    f"widen the grid"))
                continue
            off = max(abs(v - target) for v in values)
            outcome = Outcome.HOLDS if off <= step + 1e-9 else Outcome.FAILS
            claims.append(Claim(name, statement, outcome,
                                f"per seed {_fmt(values)} (grid step {step:g}; |c − {target:g}| ≤ "
                                f"{off:g})"))

    for fam in dict.fromkeys(family(m) for m in models):
        members = sorted((m for m in models if family(m) == fam), key=width)
        statement = f"{fam}: c_loss increases as the width decreases"
        if len(members) < 2:
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, Outcome.UNDECIDABLE,
                                "one width only; give two or more"))
            continue
        narrow, wide = ([crit[k][0] for k in crit if k[0] == m] for m in (members[0], members[-1]))
        label = f"width {width(members[0])}: {_fmt(narrow)}; width {width(members[-1])}: {_fmt(wide)}"
        if None in wide:
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, Outcome.UNDECIDABLE,
                                f"c_loss not reached by the grid at the widest width ({label}); "
                                f"extend the c grid"))
            continue
        if None in narrow:  # the narrow width's loss never rose: its c_loss is above the grid
            top = max(c_grid)
            outcome = Outcome.HOLDS if all(v is None for v in narrow) and max(wide) < top else Outcome.UNDECIDABLE
            claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, outcome,
                                f"{label}; — means c_loss > {top:g}, the grid's top"))
            continue
        gap = statistics.mean(narrow) - statistics.mean(wide)
        spread = max(max(narrow) - min(narrow), max(wide) - min(wide))
        if gap > max(step, spread) + 1e-9:
            outcome, why = Outcome.HOLDS, "mean gap above the grid step and the seeds' spread"
        elif gap < -max(step, spread) - 1e-9:
            outcome, why = Outcome.FAILS, "c_loss is larger at the larger width"
        else:
            outcome = Outcome.UNDECIDABLE
            why = (f"gap {gap:g} within the grid step {step:g} / seeds' spread {spread:g}: "
                   f"too coarse a c grid or too few seeds")
        claims.append(Claim(f"c_loss_grows_small_width/{fam}", statement, outcome,
                            f"{label}; {why}"))

    other = sorted({m for m, _ in crit if family(m) not in MSE_FAMILIES})
    crit_mse = {k: v for k, v in crit.items() if family(k[0]) in MSE_FAMILIES}
    missing = [f"{m} seed {s}" for (m, s), (cl, cm) in crit_mse.items() if cl is None or cm is None]
    bad = [f"{m} seed {s}: c_loss {cl:g}, c_max {cm:g}" for (m, s), (cl, cm) in crit_mse.items()
           if cl is not None and cm is not None and not (2.0 - 1e-9 <= cl <= cm + 1e-9)]
    statement = "2 ≤ c_loss ≤ c_max for every model and seed (MSE losses)"
    not_mse = (f"; not judged: {', '.join(other)} (not a squared-error loss: the thresholds are "
               f"stated for MSE)" if other else "")
    if not crit_mse:
        claims.append(Claim("c_order", statement, Outcome.UNDECIDABLE,
                            f"the c thresholds are stated for MSE losses; no chosen model has one"
                            f"{not_mse}"))
    elif bad:
        claims.append(Claim("c_order", statement, Outcome.FAILS, "; ".join(bad) + not_mse))
    elif missing:
        claims.append(Claim("c_order", statement, Outcome.UNDECIDABLE,
                            f"the c grid does not reach c_loss or c_max for {', '.join(missing)}"
                            f"{not_mse}"))
    else:
        claims.append(Claim("c_order", statement, Outcome.HOLDS,
                            f"{len(crit_mse)} model × seed pairs, all in order{not_mse}"))

    cats = [p for p in phases if p.phase == Phase.CATAPULT]
    statement = "a catapulting run ends with sharpness below 2/η"
    above = [p for p in cats if p.below_edge is False and p.final_sharpness_converged]
    unsure = [p for p in cats if p.below_edge is None or not p.final_sharpness_converged]
    if not cats:
        claims.append(Claim("catapult_flattens", statement, Outcome.UNDECIDABLE,
                            "no run catapulted; extend the c grid above 2"))
    elif above:
        claims.append(Claim("catapult_flattens", statement, Outcome.FAILS,
                            "; ".join(f"{p.model} seed {p.seed} c={p.c:g}: λ_max {p.final_sharpness:.4g}"
                                      f" ≥ 2/η = {2 / p.learning_rate:.4g}" for p in above)))
    elif unsure:
        claims.append(Claim("catapult_flattens", statement, Outcome.UNDECIDABLE,
                            f"{len(unsure)} of {len(cats)} final sharpness estimates missing or not "
                            f"converged; raise lanczos_order"))
    else:
        ratio = max(p.final_sharpness * p.learning_rate / 2 for p in cats)
        claims.append(Claim("catapult_flattens", statement, Outcome.HOLDS,
                            f"{len(cats)} catapult runs, largest η λ_max/2 at the end {ratio:.3g}"))
    return claims


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


def run(config: CatapultConfig, db_url: str, *, data_source: str | None = None,
        data_dir: str | None = None, command: str = "curvebench analyze catapult",
        on_event: Callable[[SweepEvent], None] | None = None) -> CatapultResult:
    """Measure λ_H^0, train the c grid through the sweep engine, classify, judge, store.
    on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.analyses.store import store_result
    from harness.db.models import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.records.sweep import CurvatureRequest, SweepPhase, TrialRequest
    from harness.progress import Phase
    from harness.records.trial import TrialOptions

    if on_event is not None:
        on_event(SweepPhase(Phase.SNAPSHOT, "λ_H^0 at initialisation, per model and seed"))
    lambda0 = initial_sharpness(config, data_source, data_dir)
    bad = [f"{m} seed {s}: {lam:g}" for (m, s), (lam, _) in lambda0.items()
           if not (math.isfinite(lam) and lam > 0)]
    if bad:
        raise ValueError(f"λ_H^0 must be positive to set η = c/λ_H^0; got {', '.join(bad)}")
    requests, meta = [], []
    for model in config.models:
        for seed in config.seeds:
            for c in config.c_grid:
                lr = c / lambda0[(model, seed)][0]
                requests.append(TrialRequest(model, config.submission,
                                             {**config.hparams, "learning_rate": lr}, seed))
                meta.append((model, seed, c, lr))
    options = TrialOptions(max_steps=config.steps, eval_every=config.steps, stop_at_target=False,
                           origin=RunOrigin.ANALYSIS, tag=TAG)
    curvature = CurvatureRequest(config.snapshot_config(), f"at:{config.steps}")
    sweep = run_sweep(requests, options, db_url, name=f"analysis-{NAME}", command=command,
                      data_source=data_source, data_dir=data_dir, curvature=curvature,
                      on_event=on_event)
    db = database(db_url)
    phases = []
    for (model, seed, c, lr), outcome in zip(meta, sweep.trials):
        run_id = outcome.result.run_id
        _, losses = db.losses(run_id)
        phase, peak, final = classify(losses, outcome.result.status == RunStatus.DIVERGED)
        last = [s["metrics"] for s in db.snapshots(run_id) if s["step"] == config.steps]
        sharp = last[0].get("max_eig") if last else None
        converged = bool(last and last[0].get("max_eig_converged"))
        phases.append(RunPhase(run_id, model, seed, c, lr, lambda0[(model, seed)][0], phase, peak,
                               final, sharp, converged))
    result = CatapultResult(sweep.sweep_id, config, phases, judge(phases, config.c_grid))
    store_result(db, sweep.sweep_id, result.to_json())
    return result


def section(result: CatapultResult, db):
    """The report section: verdicts, the phase diagram per family, loss ratios of the widest uv."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.analyses.verdict import claims_table
    from harness.report import Figure, Provenance, Section, Table, mark_data

    runs = [db.get_run(p.run_id) for p in result.phases]
    prov = Provenance.of(runs, f"sweep {result.sweep_id} (curvebench analyze {NAME}); "
                               f"training losses and final Hessian snapshots")
    families = list(dict.fromkeys(family(p.model) for p in result.phases))
    colours = {Phase.MONOTONE: "tab:blue", Phase.CATAPULT: "tab:orange", Phase.DIVERGES: "tab:red"}
    plot = PlotFigure(figsize=(5 * len(families), 3.6), layout="constrained")
    axes = plot.subplots(1, len(families), squeeze=False)[0]
    crit = critical_constants(result.phases)
    for ax, fam in zip(axes, families):
        members = [p for p in result.phases if family(p.model) == fam]
        for phase in Phase:
            pts = [(p.c + 0.06 * (p.seed % 3 - 1), width(p.model)) for p in members if p.phase == phase]
            if pts:
                mark_data(ax.scatter(*zip(*pts), c=colours[phase], label=phase.value, s=28))
        for index, marker, label in ((0, "<", "mean c_loss"), (1, ">", "mean c_max")):
            per_model: dict[str, list[float]] = {}
            for (m, _), v in crit.items():
                if family(m) == fam and v[index] is not None:
                    per_model.setdefault(m, []).append(v[index])
            if per_model:
                ws = sorted(per_model, key=width)
                mark_data(ax.plot([statistics.mean(per_model[m]) for m in ws], [width(m) for m in ws],
                                  marker=marker, color="black", lw=1, label=label))
        ax.axvline(2.0, color="grey", ls=":", lw=1)
        ax.axvline(4.0, color="grey", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set(xlabel="c = η λ_H^0", ylabel="width", title=fam)
        ax.legend(fontsize=7)
    uv = sorted({p.model for p in result.phases if family(p.model) == "uv"}, key=width)
    figures = [Figure("Early-training phase diagram (c × width)",
                      "Each run's phase from its training losses (monotone / catapult / diverges; "
                      "seeds side by side), with the mean c_loss and c_max per width; dotted: c = 2, "
                      "dashed: c = 4.", prov, plot, slug="catapult-phases")]
    show = uv[-1] if uv else result.phases[0].model
    curves = PlotFigure(figsize=(6, 3.6), layout="constrained")
    ax = curves.subplots()
    seed = min(p.seed for p in result.phases)
    for p in (q for q in result.phases if q.model == show and q.seed == seed):
        _, losses = db.losses(p.run_id)
        ratio = np.asarray(losses, np.float64) / float(losses[0])
        mark_data(ax.plot(np.arange(ratio.size), np.clip(ratio, 1e-12, 1e6), label=f"c={p.c:g}", lw=1))
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="L_t / L_0", title=f"{show}, seed {seed}")
    ax.legend(fontsize=6, ncol=2)
    figures.append(Figure("Training loss relative to step 0 over the c grid",
                          f"{show}: L_t/L_0 per c (a catapult rises above 1 then falls).",
                          prov, curves, slug="catapult-losses"))
    rows = tuple((m, str(s), _fmt([cl]), _fmt([cm]),
                  f"{next(p.lambda0 for p in result.phases if p.model == m and p.seed == s):.4g}")
                 for (m, s), (cl, cm) in crit.items())
    return Section(f"Catapult phase diagram (Kalra & Barkeshli, 2023) — sweep {result.sweep_id[:8]}",
                   text=f"η = c/λ_H^0 over c ∈ {{{_fmt(result.config.c_grid)}}}, "
                        f"{result.config.steps} steps of `{result.config.submission}`, seeds "
                        f"{_fmt(result.config.seeds)}.",
                   figures=figures,
                   tables=[claims_table(result.claims),
                           Table(("model", "seed", "c_loss", "c_max", "λ_H^0"), rows)])
