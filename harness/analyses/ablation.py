"""`curvebench analyze ablation`: the orderings of Young, Snider & Feng's Tab. 2–3 on mnist_mlp.

From any sweep's stored runs (`analyze ablation --sweep S`, nothing trained: `from_runs`):
its finished runs' steps to target per variant, every seed's point, one submission and
hparam point per variant (several are a one-line error), e.g. after `curvebench sweep
--workload 'mnist_mlp:activation=relu|gelu,width=100|200' --submission adam --seeds 3
--eval-every 1 --name abl`; `curvebench report --sweep S` then draws this figure in place
of the standard steps-to-target one.

Any workload grid, submission, fixed hparams, seeds and budget can replace the defaults
(`analyze ablation --workload 'lowrank:bad_init=false|true' --submission gd --hparam
learning_rate=0.5`; `configure`): steps to target per variant with every seed's point are
measured on it, and every ordering of the paper whose variants the chosen grid lacks is
UNDECIDABLE, naming them. Measured (that command with `--seeds 0,1 --max-steps 20 --quiet`,
load average 16-22 on the shared 2-core machine): 119 s wall, 4.3 s user CPU; all 15
orderings undecidable (no mnist_mlp variant in the grid).

What it does. Trains every variant of the paper's MNIST MLP grid (Tab. 2: activation ×
width at depth 3; Tab. 3: batch norm × depth at width 100; Adam at its default learning
rate, batch 1024, as the paper) for a few seeds through the sweep engine (runs with origin
`analysis`, tag `ablation`, one sweep), reads each trial's steps to the target (0.87
validation accuracy; a seed that never reaches it counts as above the budget) and judges
every ordering the paper's text and tables state, "A reaches the target in fewer steps than
B":

* HOLDS: every seed of A is faster than every seed of B (the seeds' ranges do not overlap),
  with at least `min_seeds` seeds per variant;
* FAILS: every seed of B is faster than every seed of A, with at least `min_seeds` seeds;
* UNDECIDABLE otherwise, saying why: too few seeds (ranges apart but fewer than `min_seeds`),
  the seeds' spreads overlap, or evals too coarse (the medians closer than the eval
  interval, which is the resolution of steps-to-target).

The orderings (steps from the paper's tables in brackets): width 200 faster than width 100
for each activation ("roughly half the time"; 4 claims); sigmoid slowest at width 200
(89 vs 41–59); ReLU and GELU at width 100 faster than sigmoid at width 200 ("even with a
smaller model width", 81/82 vs 89); GELU faster than ReLU at width 200 (41 vs 46); batch norm
faster than none at every depth (45/62/76 vs 82/104/84; 3 claims); with batch norm, deeper is
slower (45 < 62 < 76; 2 claims).

Outcome of the default (the 13 variants, seeds 0–2, at most 400 steps, an eval every step,
on the offline MNIST sample; measured once: 4 min 22 s wall, 100 s user CPU, load average
7-10 on a shared 2-core machine): 12 of the 15 orderings hold — width 200 faster for every
activation, sigmoid slowest at width 200, ReLU/GELU at width 100 faster than sigmoid at 200,
batch norm faster at depths 3 and 5, depth 5 faster than 7 with batch norm; undecidable
(the seeds' ranges overlap by a step or two): GELU vs ReLU at width 200 (22 [21–23] vs
20 [20–22]), batch norm at depth 7 (25 [23–26] vs 31 [26–35]), depth 3 vs 5 with batch norm
(18 [16–20] vs 21 [20–22]). None fails. Measured again (`curvebench analyze ablation`, no
flags, same verdicts) on 2 quiet cores (load 1.2), programs from the warm compilation cache:
58 s wall. The sample is not the paper's full MNIST, so steps
are fewer than in Tab. 2–3 (18–125 here vs 41–183 there).
`TINY`
(ReLU at widths 100 and 200, two seeds, the test's) gives: "width 200 faster than 100 (relu)"
undecidable, too few seeds (2 < 3).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.analyses.settings import AnalysisSetting
from harness.analyses.verdict import Claim, Outcome
from harness.records.status import FINISHED, RunStatus

if TYPE_CHECKING:
    from harness.db import Run
    from harness.records.sweep import SweepEvent

NAME = "ablation"
TAG = "ablation"
ACTIVATIONS = ("relu", "gelu", "sigmoid", "hard_tanh")


def tab2(activation: str, width: int) -> str:
    return f"mnist_mlp:activation={activation},width={width}"


def tab3(batchnorm: bool, depth: int) -> str:
    return f"mnist_mlp:batchnorm={int(batchnorm)},depth={depth}"


@dataclasses.dataclass(frozen=True)
class Ordering:
    """A stated ordering: `faster` reaches the target in fewer steps than `slower`
    (each a workload variant; `slower` may list several, all of which must be slower)."""

    name: str
    statement: str
    faster: str
    slower: tuple[str, ...]


ORDERINGS: tuple[Ordering, ...] = (
    *(Ordering(f"width/{a}", f"{a}: width 200 faster than width 100", tab2(a, 200), (tab2(a, 100),))
      for a in ACTIVATIONS),
    *(Ordering(f"sigmoid_slowest/{a}", f"width 200: {a} faster than sigmoid", tab2(a, 200),
               (tab2("sigmoid", 200),)) for a in ("relu", "gelu", "hard_tanh")),
    *(Ordering(f"narrow_beats_sigmoid/{a}", f"{a} at width 100 faster than sigmoid at width 200",
               tab2(a, 100), (tab2("sigmoid", 200),)) for a in ("relu", "gelu")),
    Ordering("gelu_beats_relu", "width 200: gelu faster than relu", tab2("gelu", 200),
             (tab2("relu", 200),)),
    *(Ordering(f"batchnorm/depth{d}", f"depth {d}: batch norm faster than none", tab3(True, d),
               (tab3(False, d),)) for d in (3, 5, 7)),
    Ordering("batchnorm_depth/3<5", "batch norm: depth 3 faster than depth 5", tab3(True, 3), (tab3(True, 5),)),
    Ordering("batchnorm_depth/5<7", "batch norm: depth 5 faster than depth 7", tab3(True, 5), (tab3(True, 7),)),
)


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    variants: tuple[str, ...] = (*(tab2(a, w) for a in ACTIVATIONS for w in (100, 200)),
                                 *(tab3(b, d) for b in (False, True) for d in (3, 5, 7)))
    seeds: tuple[int, ...] = (0, 1, 2)
    max_steps: int = 400
    eval_every: int = 1
    submission: str = "adam"
    min_seeds: int = 3
    #: fixed hyperparameter overrides of the submission's (every variant alike)
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: a chosen grid: every ordering it cannot test is reported undecidable, saying which
    #: variants it needs (the built-in grids report only the orderings they were made for)
    all_claims: bool = False


TINY = AblationConfig(variants=(tab2("relu", 100), tab2("relu", 200)), seeds=(0, 1), max_steps=150)
#: the options `configure` takes
OPTIONS = ("--workload", "--submission", "--hparam", "--seeds", "--max-steps")


def configure(config: AblationConfig, setting: AnalysisSetting) -> AblationConfig:
    """`config` with the user's variants (any workload: steps to target per variant with every
    seed's point; the paper's orderings need its mnist_mlp variants), submission, fixed hparams,
    seeds and step budget."""
    setting.refuse_others(NAME, OPTIONS)
    return dataclasses.replace(
        config, variants=tuple(setting.workloads) or config.variants,
        submission=setting.submission or config.submission,
        hparams=setting.fixed_hparams(NAME) or config.hparams,
        seeds=tuple(setting.seeds) or config.seeds, max_steps=setting.max_steps or config.max_steps,
        all_claims=config.all_claims or bool(setting.workloads))


def untested(steps: Mapping[str, Sequence[float]], orderings: Sequence[Ordering] = ORDERINGS) -> list[Claim]:
    """Undecidable verdicts on the orderings whose variants were not all run, naming them."""
    claims = []
    for o in orderings:
        missing = [v for v in (o.faster, *o.slower) if canonical(v) not in steps]
        if missing:
            claims.append(Claim(o.name, o.statement, Outcome.UNDECIDABLE,
                                f"the chosen grid lacks {', '.join(missing)}: add them with --workload"))
    return claims


def canonical(variant: str) -> str:
    from workloads import get_workload

    return get_workload(variant).spec


def judge(steps: Mapping[str, Sequence[float]], eval_every: int, min_seeds: int,
          orderings: Sequence[Ordering] = ORDERINGS) -> list[Claim]:
    """Verdicts on the orderings whose variants were all run; `steps` maps a canonical variant
    to its seeds' steps to target (inf: never reached)."""
    claims = []
    for o in orderings:
        fast_key, slow_keys = canonical(o.faster), [canonical(s) for s in o.slower]
        if fast_key not in steps or any(k not in steps for k in slow_keys):
            continue
        fast = list(steps[fast_key])
        slow = [v for k in slow_keys for v in steps[k]]
        label = f"{_range(fast)} vs {_range(slow)} steps"
        n = min(len(steps[k]) for k in (fast_key, *slow_keys))
        if max(fast) < min(slow):
            direction = Outcome.HOLDS
        elif max(slow) < min(fast):
            direction = Outcome.FAILS
        else:
            direction = None
        if abs(statistics.median(fast) - statistics.median(slow)) < eval_every:
            outcome, why = Outcome.UNDECIDABLE, f"too coarse evals (every {eval_every} steps)"
        elif direction is None:
            outcome, why = Outcome.UNDECIDABLE, "the seeds' spreads overlap; more seeds"
        elif n < min_seeds:
            outcome, why = Outcome.UNDECIDABLE, f"too few seeds ({n} < {min_seeds})"
        else:
            outcome, why = direction, f"{n} seeds each, ranges apart"
        claims.append(Claim(o.name, o.statement, outcome, f"{label}; {why}"))
    return claims


def _range(values: Sequence[float]) -> str:
    lo, hi, med = min(values), max(values), statistics.median(values)
    return f"{med:g} [{lo:g}–{hi:g}]"


@dataclasses.dataclass
class AblationResult:
    sweep_id: str
    config: AblationConfig
    steps: dict[str, list[float]]
    run_ids: list[str]
    claims: list[Claim]

    def to_json(self) -> dict[str, Any]:
        return {"name": NAME, "config": dataclasses.asdict(self.config), "steps": self.steps,
                "run_ids": self.run_ids, "claims": [c.to_json() for c in self.claims]}

    @classmethod
    def from_json(cls, sweep_id: str, d: Mapping[str, Any]) -> AblationResult:
        cfg = AblationConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in d["config"].items()})
        return cls(sweep_id, cfg, {k: [float(x) for x in v] for k, v in d["steps"].items()},
                   list(d["run_ids"]), [Claim.from_json(c) for c in d["claims"]])


def result_from_json(sweep_id: str, document: Mapping[str, Any]) -> AblationResult:
    """The result stored in an analysis sweep's spec."""
    return AblationResult.from_json(sweep_id, document)


def from_runs(db, sweep_id: str, runs: Sequence[Run],
              config: AblationConfig | None = None) -> AblationResult:
    """Steps to target per variant (every seed's; inf: never reached) from stored runs, and the
    verdicts. Unfinished runs (failed, interrupted, running) are left out. Without `config`
    (any sweep's runs) it is read off the runs: their variants, seeds, largest budget and eval
    interval, every ordering judged (those whose variants are absent undecidable, naming them).
    ValueError when a variant has runs of several configurations (submission or hparams):
    the orderings compare variants of one configuration."""
    done = [r for r in runs if r.status in FINISHED]
    if not done:
        raise ValueError(f"sweep {sweep_id[:8]}: none of its {len(runs)} run(s) has finished; "
                         "steps to target need finished runs")
    settings: dict[str, set[str]] = {}
    for r in done:
        settings.setdefault(r.variant, set()).add(f"{r.submission} {json.dumps(r.hparams, sort_keys=True)}")
    mixed = [v for v, cfgs in settings.items() if len(cfgs) > 1]
    if mixed:
        raise ValueError(f"sweep {sweep_id[:8]} has runs of several submissions or hyperparameter "
                         f"settings for {', '.join(mixed)}; the ablation compares variants of one "
                         f"setting: analyze a sweep with one submission and hparam point per variant")
    if config is None:
        config = AblationConfig(
            variants=tuple(dict.fromkeys(r.variant for r in done)),
            seeds=tuple(sorted({r.seed for r in done})), max_steps=max(r.max_steps for r in done),
            eval_every=max(r.eval_every for r in done), submission=done[0].submission,
            hparams=dict(done[0].hparams), all_claims=True)
    steps: dict[str, list[float]] = {}
    for r in sorted(done, key=lambda r: r.seed):
        s = r.steps_to_target if r.status == RunStatus.REACHED.value else None
        steps.setdefault(r.variant, []).append(float("inf") if s is None else float(s))
    return AblationResult(sweep_id, config, steps, [r.id for r in done],
                          judge(steps, config.eval_every, config.min_seeds)
                          + (untested(steps) if config.all_claims else []))


def run(config: AblationConfig, db_url: str, *, data_source: str | None = None,
        data_dir: str | None = None, command: str = "curvebench analyze ablation",
        on_event: Callable[[SweepEvent], None] | None = None) -> AblationResult:
    """Train the grid through the sweep engine, judge the orderings on its runs
    (`from_runs`), store the verdicts.
    on_event: the sweep's events (harness.experiment.run_sweep), e.g. for progress."""
    from harness.analyses.store import store_result
    from harness.db import RunOrigin
    from harness.experiment import database, run_sweep
    from harness.records.sweep import TrialRequest
    from harness.records.trial import TrialOptions

    variants = dict.fromkeys(canonical(v) for v in config.variants)  # the shared baseline once
    requests = [TrialRequest(v, config.submission, dict(config.hparams), s)
                for v in variants for s in config.seeds]
    options = TrialOptions(max_steps=config.max_steps, eval_every=config.eval_every,
                           origin=RunOrigin.ANALYSIS, tag=TAG)
    sweep = run_sweep(requests, options, db_url, name=f"analysis-{NAME}", command=command,
                      data_source=data_source, data_dir=data_dir, on_event=on_event)
    db = database(db_url)
    result = from_runs(db, sweep.sweep_id, db.get_runs([t.result.run_id for t in sweep.trials]), config)
    store_result(db, sweep.sweep_id, result.to_json())
    return result


def section(result: AblationResult, db):
    """The report section: verdicts and steps to target per variant with every seed's point."""
    from matplotlib.figure import Figure as PlotFigure

    from harness.analyses.verdict import claims_table
    from harness.report import Figure, Provenance, Section, Table, mark_data

    runs = db.get_runs(result.run_ids)
    names = list(result.steps)
    plot = PlotFigure(figsize=(7, 0.35 * len(names) + 1.2), layout="constrained")
    ax = plot.subplots()
    cap = result.config.max_steps * 1.05
    for y, name in enumerate(names):
        vals = [min(v, cap) for v in result.steps[name]]
        mark_data(ax.scatter(vals, [y] * len(vals), color="tab:blue", s=18))
        mark_data(ax.plot([statistics.median(vals)], [y], marker="|", ms=14, color="black"))
    ax.axvline(result.config.max_steps, color="grey", ls="--", lw=1)
    ax.set_yticks(range(len(names)), [n.removeprefix("mnist_mlp") or "baseline" for n in names],
                  fontsize=7)
    ax.set(xlabel="steps to the variant's target (dashed: budget; beyond it: not reached)")
    fig = Figure("Steps to target per variant (Young, Snider & Feng Tab. 2–3)",
                 "Every seed's steps to its variant's target (dots; the mnist_mlp target is 0.87 "
                 "validation accuracy) and the median (bar) per variant; a seed that never reached "
                 "it is drawn past the budget (dashed).",
                 Provenance.of(runs, f"runs.steps_to_target of sweep {result.sweep_id}"),
                 plot, slug="ablation-steps")
    steps_table = Table(("variant", "steps to target per seed", "median [min–max]"),
                        tuple((name, ", ".join("—" if math.isinf(v) else f"{v:g}" for v in values),
                               _range(values)) for name, values in result.steps.items()))
    return Section(f"Architecture ablations (Young, Snider & Feng) — sweep {result.sweep_id[:8]}",
                   text=f"`{result.config.submission}`, seeds {', '.join(map(str, result.config.seeds))}, "
                        f"an eval every {result.config.eval_every} step(s), at most "
                        f"{result.config.max_steps} steps.",
                   figures=[fig], tables=[claims_table(result.claims), steps_table],
                   replaces="Steps to target")
