"""`curvebench analyze break-even`: Conjectures 1–2 of Jastrzębski et al. (2020).

What it does. Trains mnist_mlp with constant-learning-rate SGD (`sgd`) at several
learning rates η (at one batch size S) and several batch sizes (at one η), for a few seeds,
through the sweep engine (runs with origin `analysis`, tag `break-even`, one sweep), with
curvature snapshots on a fixed schedule: the Hessian's λ_H^1 (Lanczos) and the gradient
covariance K's λ_K^1, λ_K* and Tr K (Gram metrics `gram_lambda_1`, `gram_lambda_star`,
`gram_trace`; L = 25 mini-batch gradients) measured at ONE fixed mini-batch size M for every
batch size, as the paper does (its §4 uses 128). For every run it takes each quantity's
maximum along the trajectory and judges, separately along η and along S, the conjectures
("a larger η or a smaller S" is "more SGD noise"):

* Conjecture 1 (`c1_lambda_K`, `c1_lambda_H`): max λ_K^1 and max λ_H^1 are smaller with more noise;
* Conjecture 2 (`c2_ratio_K`, `c2_trace_K`): max λ_K*/λ_K^1 is larger, max Tr K smaller with more noise.

Each compares the two extremes of the axis (smallest vs largest η; largest vs smallest S):
HOLDS when every seed of the noisier setting is on the predicted side of every seed of the
other, FAILS when every seed is on the other side, UNDECIDABLE when the seeds' ranges overlap
(more seeds), when fewer than two seeds ran, when a maximum comes from a Hessian snapshot
whose top Ritz value did not converge, or when a run's maximum is at its last snapshot (the
quantity still rising: the paper picks budgets where these properties have converged).

From any sweep's stored runs (`analyze break-even --sweep S`, nothing trained: `from_runs`):
one workload variant, `learning_rate` (and `batch_size`) as the grid, Hessian and covariance
snapshots (e.g. `curvebench sweep --workload mnist_mlp --submission sgd --hparam
'learning_rate=0.01|0.1' --hparam 'batch_size=16|128' --seeds 2 --curvature hessian,cov
--curvature-every init,every:25 --cov-batch-size 128 --name be`): the η axis is the batch
size with the most learning rates, the S axis the learning rate with the most batch sizes.
The figure draws λ_K^1, λ_H^1, λ_K*/λ_K^1 and Tr K against steps at the axes' extremes.

Any one workload variant, submission (fixed hparams besides η and S), seeds, steps and the
curvature / cov batch sizes can replace the defaults (`analyze break-even --workload lowrank
--curvature-batch 100 --cov-batch-size 20`; `configure`). Measured (that command with `--tiny
--max-steps 20 --quiet`, load average 22-24 on the shared 2-core machine): 138 s wall, 5.9 s
user CPU; the 4 claims along η undecidable (one seed).

Outcome of the default (η ∈ {0.01, 0.1} at S = 128; S ∈ {16, 128} at η = 0.01; seeds 0–1;
300 steps; snapshots every 25 steps; M = 128; measured once: 1 min 40 s wall, 76 s user CPU,
load average 5-7 on a shared 2-core machine): every claim undecidable. 300 steps are too few
for η = 0.01: its λ_H^1, λ_K^1 and Tr K are still rising at the last snapshot (λ_H^1 ≈ 10-12
vs 2/η = 200), while η = 0.1 has already climbed to its edge (λ_H^1 ≈ 18-19 ≈ 2/η = 20) —
the early phase before the break-even point, where the noisier run is the sharper one; the
ratio λ_K*/λ_K^1 overlaps between seeds. Deciding the conjectures needs a budget where the
quieter run's maxima are behind it (a few thousand steps here: `BreakEvenConfig(steps=...)`).
Measured again (`curvebench analyze break-even`, no flags, same verdicts) on 2 quiet cores
(load 1.8), programs from the warm compilation cache: 31 s wall.
`TINY` (η ∈ {0.01, 0.1} only, seed 0, 60 steps, snapshots every 20;
the test's) gives every claim undecidable: too few seeds (1 < 2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.analyses.settings import AnalysisSetting
from harness.analyses.verdict import Claim, Outcome, some_runs
from harness.records.status import FINISHED

if TYPE_CHECKING:
    from harness.db import Run
    from harness.records.sweep import SweepEvent

NAME = "break-even"
TAG = "break-even"
#: quantity -> (snapshot kind, metric, convergence flag or None, "smaller" or "larger" with more noise)
QUANTITIES = {"lambda_K": ("cov", "gram_lambda_1", None, "smaller"),
              "lambda_H": ("hessian", "max_eig", "max_eig_converged", "smaller"),
              "ratio_K": ("cov", "ratio", None, "larger"),
              "trace_K": ("cov", "gram_trace", None, "smaller")}
CLAIMS = {"lambda_K": ("c1_lambda_K", "max λ_K^1 is smaller"),
          "lambda_H": ("c1_lambda_H", "max λ_H^1 is smaller"),
          "ratio_K": ("c2_ratio_K", "max λ_K*/λ_K^1 is larger"),
          "trace_K": ("c2_trace_K", "max Tr K is smaller")}


@dataclasses.dataclass(frozen=True)
class BreakEvenConfig:
    workload: str = "mnist_mlp"
    learning_rates: tuple[float, ...] = (0.01, 0.1)
    batch_size: int = 128
    batch_sizes: tuple[int, ...] = (16, 128)
    batch_lr: float = 0.01
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 300
    every: int = 25
    cov_batch_size: int = 128
    curvature_batch: int = 512
    submission: str = "sgd"
    min_seeds: int = 2
    #: fixed hyperparameters besides the axes' η and S
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def cells(self) -> list[tuple[str, float, int]]:
        """(axis, η, S) of every setting: the η axis, then the S axis (a shared cell runs once)."""
        return ([("lr", lr, self.batch_size) for lr in self.learning_rates]
                + [("batch", self.batch_lr, s) for s in self.batch_sizes])


TINY = BreakEvenConfig(batch_sizes=(), seeds=(0,), steps=60, every=20)
#: the options `configure` takes
OPTIONS = ("--workload", "--submission", "--hparam", "--seeds", "--max-steps", "--curvature-batch",
           "--cov-batch-size")


def configure(config: BreakEvenConfig, setting: AnalysisSetting) -> BreakEvenConfig:
    """`config` on the user's workload (one variant: both axes run on it), submission, fixed
    hparams (never η or S, the axes), seeds, steps and curvature / cov batch sizes."""
    from harness.errors import AnalysisSettingError

    setting.refuse_others(NAME, OPTIONS)
    if len(setting.workloads) > 1:
        raise AnalysisSettingError(f"analyze break-even: one workload variant (its η and S axes run "
                                   f"on it); got {', '.join(setting.workloads)}")
    sizes = {}
    for option, field in (("curvature_batch", "curvature_batch"), ("cov_batch_size", "cov_batch_size")):
        value = setting.curvature.get(option)
        if value is not None:
            if not str(value).isdigit():
                raise AnalysisSettingError(f"analyze break-even: --{option.replace('_', '-')} takes "
                                           f"an integer here, got {value!r}")
            sizes[field] = int(value)
    return dataclasses.replace(
        config, workload=setting.workloads[0] if setting.workloads else config.workload,
        submission=setting.submission or config.submission,
        hparams=setting.fixed_hparams(NAME, owned=("learning_rate", "batch_size")) or config.hparams,
        seeds=tuple(setting.seeds) or config.seeds, steps=setting.max_steps or config.steps, **sizes)


@dataclasses.dataclass(frozen=True)
class RunMaxima:
    run_id: str
    learning_rate: float
    batch_size: int
    seed: int
    maxima: dict[str, float]
    #: quantities whose maximum comes from an unconverged estimate
    unconverged: tuple[str, ...]
    #: quantities whose maximum is at the run's last snapshot (still rising: not its maximum yet)
    rising: tuple[str, ...] = ()


def maxima(snapshots: Sequence[Mapping[str, Any]]
           ) -> tuple[dict[str, float], tuple[str, ...], tuple[str, ...]]:
    """Each quantity's maximum along a run's snapshots, which maxima did not converge, and
    which are at the last snapshot of their kind (the quantity may still be rising)."""
    best: dict[str, tuple[float, bool, int]] = {}
    last: dict[str, int] = {}
    for snap in snapshots:
        last[snap["kind"]] = max(last.get(snap["kind"], -1), snap.get("step", 0))
        m = snap["metrics"]
        for q, (kind, metric, flag, _) in QUANTITIES.items():
            if snap["kind"] != kind:
                continue
            if metric == "ratio":
                lam1, star = m.get("gram_lambda_1"), m.get("gram_lambda_star")
                value = star / lam1 if lam1 and star is not None else None
            else:
                value = m.get(metric)
            if value is None or not math.isfinite(value):
                continue
            ok = flag is None or bool(m.get(flag))
            if q not in best or value > best[q][0]:
                best[q] = (value, ok, snap.get("step", 0))
    rising = tuple(q for q, (_, _, step) in best.items()
                   if len([s for s in snapshots if s["kind"] == QUANTITIES[q][0]]) > 1
                   and step == last[QUANTITIES[q][0]])
    return ({q: v for q, (v, _, _) in best.items()},
            tuple(q for q, (_, ok, _) in best.items() if not ok), rising)


def judge(runs: Sequence[RunMaxima], config: BreakEvenConfig) -> list[Claim]:
    claims = []
    axes = []
    if len(set(config.learning_rates)) > 1:
        lo, hi = min(config.learning_rates), max(config.learning_rates)
        axes.append(("η", lambda r, v: r.learning_rate == v and r.batch_size == config.batch_size,
                     hi, lo, f"η={hi:g} vs η={lo:g} (S={config.batch_size})"))
    if len(set(config.batch_sizes)) > 1:
        lo, hi = min(config.batch_sizes), max(config.batch_sizes)
        axes.append(("S", lambda r, v: r.batch_size == v and r.learning_rate == config.batch_lr,
                     lo, hi, f"S={lo} vs S={hi} (η={config.batch_lr:g})"))
    for axis, member, noisy_value, quiet_value, label in axes:
        noisy = [r for r in runs if member(r, noisy_value)]
        quiet = [r for r in runs if member(r, quiet_value)]
        for q, (name, statement) in CLAIMS.items():
            direction = QUANTITIES[q][3]
            a = [r.maxima[q] for r in noisy if q in r.maxima]
            b = [r.maxima[q] for r in quiet if q in r.maxima]
            stmt = f"along {axis}: with more SGD noise {statement}"
            numbers = f"{label}: {_fmt(a)} vs {_fmt(b)}"
            n = min(len(a), len(b))
            if n < config.min_seeds:
                claims.append(Claim(f"{name}/{axis}", stmt, Outcome.UNDECIDABLE,
                                    f"{numbers}; too few seeds ({n} < {config.min_seeds})"))
                continue
            if any(q in r.unconverged for r in noisy + quiet):
                claims.append(Claim(f"{name}/{axis}", stmt, Outcome.UNDECIDABLE,
                                    f"{numbers}; a maximum's Lanczos estimate did not converge"))
                continue
            if any(q in r.rising for r in noisy + quiet):
                claims.append(Claim(f"{name}/{axis}", stmt, Outcome.UNDECIDABLE,
                                    f"{numbers}; a run's maximum is at its last snapshot (still "
                                    f"rising): train longer"))
                continue
            predicted = max(a) < min(b) if direction == "smaller" else min(a) > max(b)
            reversed_ = min(a) > max(b) if direction == "smaller" else max(a) < min(b)
            outcome = Outcome.HOLDS if predicted else Outcome.FAILS if reversed_ else Outcome.UNDECIDABLE
            why = {Outcome.HOLDS: "every seed on the predicted side",
                   Outcome.FAILS: "every seed on the other side",
                   Outcome.UNDECIDABLE: "the seeds' ranges overlap; more seeds"}[outcome]
            claims.append(Claim(f"{name}/{axis}", stmt, outcome, f"{numbers}; {why}"))
    return claims


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


@dataclasses.dataclass
class BreakEvenResult:
    sweep_id: str
    config: BreakEvenConfig
    runs: list[RunMaxima]
    claims: list[Claim]

    def to_json(self) -> dict[str, Any]:
        return {"name": NAME, "config": dataclasses.asdict(self.config),
                "runs": [dataclasses.asdict(r) for r in self.runs],
                "claims": [c.to_json() for c in self.claims]}

    @classmethod
    def from_json(cls, sweep_id: str, d: Mapping[str, Any]) -> BreakEvenResult:
        cfg = BreakEvenConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in d["config"].items()})
        runs = [RunMaxima(**{**r, "unconverged": tuple(r["unconverged"]), "rising": tuple(r["rising"])})
                for r in d["runs"]]
        return cls(sweep_id, cfg, runs, [Claim.from_json(c) for c in d["claims"]])


def result_from_json(sweep_id: str, document: Mapping[str, Any]) -> BreakEvenResult:
    """The result stored in an analysis sweep's spec."""
    return BreakEvenResult.from_json(sweep_id, document)


def _axes_of(settings: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """The η axis (the batch size with the most learning rates) and the S axis (the learning
    rate with the most batch sizes) of a sweep's (η, S) settings, as BreakEvenConfig fields."""
    lrs_at: dict[int, set[float]] = {}
    sizes_at: dict[float, set[int]] = {}
    for lr, size in settings:
        lrs_at.setdefault(size, set()).add(lr)
        sizes_at.setdefault(lr, set()).add(size)
    size = max(sorted(lrs_at), key=lambda k: len(lrs_at[k]))
    lr = max(sorted(sizes_at), key=lambda k: len(sizes_at[k]))
    return {"learning_rates": tuple(sorted(lrs_at[size])), "batch_size": size,
            "batch_sizes": tuple(sorted(sizes_at[lr])) if len(sizes_at[lr]) > 1 else (),
            "batch_lr": lr}


def from_runs(db, sweep_id: str, runs: Sequence[Run],
              config: BreakEvenConfig | None = None) -> BreakEvenResult:
    """Each run's maxima of the four quantities from its stored snapshots, and the verdicts.
    Without `config` (any sweep's runs: one workload variant, `learning_rate` among the
    hparams) the axes are read off the runs' (η, S) settings (`_axes_of`) and the snapshot
    schedule and batch sizes off their stored snapshot config. ValueError when the runs lack
    Hessian or gradient-covariance snapshots, or vary neither η nor S."""
    done = [r for r in runs if r.status in FINISHED]
    if not done:
        raise ValueError(f"sweep {sweep_id[:8]}: none of its {len(runs)} run(s) has finished")
    no_lr = [r.id for r in done if "learning_rate" not in r.hparams]
    if no_lr:
        raise ValueError(f"{some_runs(no_lr)} have no learning_rate hyperparameter (the η axis)")
    snaps = {r.id: db.snapshots(r.id) for r in done}
    for kind, option in (("hessian", "λ_H^1"), ("cov", "K's λ_K^1, λ_K* and Tr K")):
        lacking = [r.id for r in done if not any(x["kind"] == kind for x in snaps[r.id])]
        if lacking:
            raise ValueError(f"{some_runs(lacking)} have no {kind} snapshots ({option}): sweep "
                             f"with --curvature hessian,cov --curvature-every init,every:N")
    variants = sorted({r.variant for r in done})
    if config is None and len(variants) > 1:
        raise ValueError(f"sweep {sweep_id[:8]} has runs of {', '.join(variants)}; break-even compares "
                         "η and S on one workload variant: analyze a sweep of one variant")
    if config is None:
        axes = _axes_of([(float(r.hparams["learning_rate"]), r.batch_size) for r in done])
        if len(axes["learning_rates"]) < 2 and not axes["batch_sizes"]:
            raise ValueError(f"sweep {sweep_id[:8]} has one (η, S) setting; break-even compares "
                             "several η at one S or several S at one η (--hparam learning_rate=A|B)")
        first = done[0]
        cov = next(x for x in snaps[first.id] if x["kind"] == "cov")
        hess = next(x for x in snaps[first.id] if x["kind"] == "hessian")
        steps = sorted({x["step"] for x in snaps[first.id] if x["kind"] == "cov"})
        config = BreakEvenConfig(
            workload=variants[0], seeds=tuple(sorted({r.seed for r in done})),
            steps=max(r.max_steps for r in done),
            every=min((b - a for a, b in zip(steps, steps[1:])), default=first.max_steps),
            cov_batch_size=int(cov["config"].get("cov_batch_size") or 0),
            curvature_batch=hess["config"].get("curvature_batch") or 0,
            submission=first.submission,
            hparams={k: v for k, v in first.hparams.items() if k not in ("learning_rate", "batch_size")},
            **axes)
    out = []
    for r in done:
        best, unconverged, rising = maxima(snaps[r.id])
        out.append(RunMaxima(r.id, float(r.hparams["learning_rate"]), r.batch_size, r.seed,
                             best, unconverged, rising))
    return BreakEvenResult(sweep_id, config, out, judge(out, config))


def run(config: BreakEvenConfig, db_url: str, *, data_source: str | None = None,
        data_dir: str | None = None, command: str = "curvebench analyze break-even",
        on_event: Callable[[SweepEvent], None] | None = None) -> BreakEvenResult:
    """Train the η and S grids with snapshots, then take each run's maxima and judge
    (`from_runs`), store.
    on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.analyses.store import store_result
    from harness.db import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.records.sweep import CurvatureRequest, TrialRequest
    from harness.records.trial import TrialOptions

    settings = list(dict.fromkeys((lr, s) for _, lr, s in config.cells()))
    requests = [TrialRequest(config.workload, config.submission,
                             {**config.hparams, "learning_rate": lr, "batch_size": s}, seed)
                for lr, s in settings for seed in config.seeds]
    options = TrialOptions(max_steps=config.steps, eval_every=config.steps, stop_at_target=False,
                           origin=RunOrigin.ANALYSIS, tag=TAG)
    curvature = CurvatureRequest({"kinds": ["hessian", "cov"], "curvature_batch": config.curvature_batch,
                                  "cov_batch_size": config.cov_batch_size, "top_k": [1],
                                  "trace_probes": 0}, f"init,every:{config.every}")
    sweep = run_sweep(requests, options, db_url, name=f"analysis-{NAME}", command=command,
                      data_source=data_source, data_dir=data_dir, curvature=curvature,
                      on_event=on_event)
    db = database(db_url)
    result = from_runs(db, sweep.sweep_id, db.get_runs([t.result.run_id for t in sweep.trials]), config)
    store_result(db, sweep.sweep_id, result.to_json())
    return result


def extremes(result: BreakEvenResult) -> list[tuple[str, list[tuple[str, list[RunMaxima]]]]]:
    """Per axis the conjectures compare along (η, then S), its two extreme settings with their
    runs (every seed), the quieter first: the smallest and largest η at the η axis's S; the
    largest and smallest S at the S axis's η. An axis with one value is left out."""
    cfg = result.config
    axes = []
    if len(set(cfg.learning_rates)) > 1:
        axes.append((f"η axis (S={cfg.batch_size})",
                     [(lr, cfg.batch_size, f"η={lr:g}") for lr in (min(cfg.learning_rates), max(cfg.learning_rates))]))
    if len(set(cfg.batch_sizes)) > 1:
        axes.append((f"S axis (η={cfg.batch_lr:g})",
                     [(cfg.batch_lr, size, f"S={size}") for size in (max(cfg.batch_sizes), min(cfg.batch_sizes))]))
    out = []
    for title, picks in axes:
        settings = []
        for lr, size, label in picks:
            runs = [r for r in result.runs if r.learning_rate == lr and r.batch_size == size]
            if runs:
                settings.append((label, sorted(runs, key=lambda r: r.seed)))
        out.append((title, settings))
    return out


def section(result: BreakEvenResult, db):
    """The report section: the four quantities (rows) against steps at the extremes of η and of
    S (columns, as the paper's Fig. 4–5 put them side by side), every seed a line, the
    quieter setting in a light colour and the noisier in a dark one; and the verdicts."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.analyses.verdict import claims_table
    from harness.report import Figure, Provenance, Section, mark_data

    shown = extremes(result)
    plot = PlotFigure(figsize=(5.5 * max(1, len(shown)), 11), layout="constrained")
    grid = plot.subplots(len(QUANTITIES), max(1, len(shown)), squeeze=False)
    titles = {"lambda_K": "λ_K^1", "lambda_H": "λ_H^1", "ratio_K": "λ_K*/λ_K^1", "trace_K": "Tr K"}
    colours = (("#fdae61", "#d7191c"), ("#abd9e9", "#2c7bb6"))  # η: warm, S: cold; noisier darker
    run_ids = []
    for col, (axis_title, settings) in enumerate(shown):
        for k, (label, runs) in enumerate(settings):
            colour = colours[col % 2][k % 2]
            for n, r in enumerate(runs):
                run_ids.append(r.run_id)
                snaps = db.snapshots(r.run_id)
                for row, (q, (kind, metric, _, _)) in enumerate(QUANTITIES.items()):
                    values = [x for x in snaps if x["kind"] == kind]
                    m = [x["metrics"] for x in values]
                    if metric == "ratio":
                        ys = [(x.get("gram_lambda_star") or math.nan) / (x.get("gram_lambda_1") or math.nan)
                              for x in m]
                    else:
                        ys = [x.get(metric) if x.get(metric) is not None else math.nan for x in m]
                    mark_data(grid[row, col].plot([x["step"] for x in values], ys, lw=1.2, color=colour,
                                                  marker=".", ms=3, alpha=1.0 if n == 0 else 0.6,
                                                  label=f"{label} (every seed)" if n == 0 else None))
        for row, q in enumerate(QUANTITIES):
            ax = grid[row, col]
            ax.set(xlabel="step", ylabel=titles[q], yscale="log")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(axis_title)
                ax.legend(fontsize=8)
    runs = db.get_runs(list(dict.fromkeys(run_ids)))
    fig = Figure("Break-even quantities over training (Jastrzębski et al., 2020)",
                 f"λ_K^1, λ_H^1, λ_K*/λ_K^1 and Tr K (rows) against steps at the extremes of the "
                 f"learning rate η and of the batch size S (columns; light: less SGD noise, dark: "
                 f"more), every seed a line (K at M={result.config.cov_batch_size} for every batch "
                 f"size); the conjectures compare each quantity's maximum along these trajectories.",
                 Provenance.of(runs, f"curvature snapshots (hessian, cov) of sweep {result.sweep_id}"),
                 plot, slug="break-even")
    return Section(f"Break-even point (Jastrzębski et al., 2020) — sweep {result.sweep_id[:8]}",
                   text=f"`{result.config.submission}` on `{result.config.workload}`, "
                        f"{result.config.steps} steps, snapshots every {result.config.every} steps.",
                   figures=[fig], tables=[claims_table(result.claims)])
