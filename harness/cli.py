"""The `curvebench` command line: parse, call the harness, print (tables or --json)."""

from __future__ import annotations

import json
import math
import statistics
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import score as scoring
from harness.db import Database, DatabaseError, open_database
from harness.runner import CHUNK_MODES, TrialResult, run_trial
from harness.spec import Dataset, DataUnavailable, SpecError
from harness.submissions import load_submission
from workloads import REGISTRY, get_workload

app = typer.Typer(help="curvebench: score training algorithms, check reruns, record curvature.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Results database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path "
                                              "(default $CURVEBENCH_DB, else ./curvebench.db)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _open(db: str | None) -> Database:
    try:
        return open_database(db)
    except DatabaseError as e:
        _fail(str(e))


def _table(title: str, columns: tuple[str, ...] | list[str]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _fmt_s(x: float | None) -> str:
    return "-" if x is None or math.isinf(x) else f"{x:.2f}"


def _fmt_steps(x: float | None) -> str:
    return "-" if x is None or math.isinf(x) else f"{x:g}"


def _median(values: list[float | None]) -> float | None:
    return statistics.median([math.inf if v is None else v for v in values]) if values else None


def _train(workload_spec: str, submission_path: str, seeds: list[int], database: Database, *,
           hparams: list[str], data_dir: str | None, data_source: str | None, max_steps: int | None,
           eval_every: int | None, chunk_mode: str, quiet: bool,
           dataset: Dataset | None = None) -> list[TrialResult]:
    try:
        workload = get_workload(workload_spec)
        submission = load_submission(submission_path, hparams)
        dataset = dataset or workload.load_data(data_dir, data_source)
    except (SpecError, DataUnavailable, ValueError) as e:
        _fail(str(e))
    results = []
    budget = max_steps or workload.max_steps
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[metric]}"), TimeElapsedColumn(),
                  console=err, disable=quiet or not err.is_terminal) as progress:
        for seed in seeds:
            task = progress.add_task(f"{workload.spec} / {submission.name} / seed {seed}",
                                     total=budget, metric="")

            def on_eval(step, metrics, task=task):
                shown = f"{workload.target.metric}={metrics[workload.target.metric]:.4f}"
                progress.update(task, completed=step, metric=shown)

            try:
                results.append(run_trial(workload, submission, dataset, seed, db=database,
                                         max_steps=max_steps, eval_every=eval_every,
                                         chunk_mode=chunk_mode, on_eval=on_eval))
            except SpecError as e:
                _fail(str(e))
            progress.update(task, completed=results[-1].final_step)
    return results


@app.command()
def run(
    workload: Annotated[str, typer.Option(help="workload[:knob=value,...], e.g. mnist_mlp:width=200")],
    submission: Annotated[str, typer.Option(help="submission folder (submission.py + hparams.json)")],
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds: 0..N-1 from --seed-start")] = 1,
    seed_start: Annotated[int, typer.Option(min=0, help="first seed")] = 0,
    db: DbOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="directory with the dataset files")] = None,
    data_source: Annotated[Optional[str], typer.Option(help="dataset source (workload-specific)")] = None,
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")] = [],
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="step budget")] = None,
    eval_every: Annotated[Optional[int], typer.Option(min=1, help="steps between evals")] = None,
    chunk_mode: Annotated[str, typer.Option(help=f"one of {', '.join(CHUNK_MODES)}")] = "auto",
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train a submission on one workload for N seeds; print steps and time to target."""
    database = _open(db)
    results = _train(workload, submission, list(range(seed_start, seed_start + seeds)), database,
                     hparams=hparam, data_dir=data_dir, data_source=data_source,
                     max_steps=max_steps, eval_every=eval_every, chunk_mode=chunk_mode,
                     quiet=quiet or as_json)
    if as_json:
        print(json.dumps([r.to_json() for r in results], indent=2))
        return
    table = _table(f"{results[0].workload} / {results[0].submission}",
                   ("seed", "status", "steps to target", "time to target (s)", "compile (s)",
                    "chunk mode", "run id"))
    for r in results:
        table.add_row(str(r.seed), r.status, _fmt_steps(r.steps_to_target),
                      _fmt_s(r.time_to_target_s), f"{r.compile_s:.2f}", r.chunk_mode, r.run_id[:8])
    table.add_row("median", "", _fmt_steps(_median([r.steps_to_target for r in results])),
                  _fmt_s(_median([r.time_to_target_s for r in results])),
                  _fmt_s(_median([r.compile_s for r in results])), "", "", style="bold")
    out.print(table)
    out.print(f"results in {database.url}")


def _load_available(names: list[str], data_dir: str | None) -> tuple[dict[str, Dataset], dict[str, str]]:
    """Datasets of the workloads whose data is here, and why the others were skipped."""
    found, skipped = {}, {}
    for name in names:
        try:
            found[name] = get_workload(name).load_data(data_dir)
        except DataUnavailable as e:
            skipped[name] = str(e)
    return found, skipped


@app.command("score")
def score_cmd(
    submission: Annotated[str, typer.Argument(help="submission folder")],
    workloads: Annotated[Optional[str], typer.Option(
        help="comma-separated workload variants (default: every registered workload whose data is here)")] = None,
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    db: DbOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="dataset directory (single-workload scoring)")] = None,
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")] = [],
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """The main job: run a submission on each workload, then score it against the database."""
    database = _open(db)
    datasets: dict[str, Dataset] = {}
    skipped: dict[str, str] = {}
    if workloads:
        specs = [w.strip() for w in workloads.split(",") if w.strip()]
    else:
        datasets, skipped = _load_available(sorted(REGISTRY), data_dir)
        specs = list(datasets)
        for name, why in skipped.items():
            err.print(f"[yellow]skipping {name}:[/] {why}", highlight=False)
    if not specs:
        _fail("no workload to score: none has its data here (see the messages above)")
    per_workload: dict[str, list[TrialResult]] = {}
    for spec in specs:
        per_workload[spec] = _train(spec, submission, list(range(seeds)), database, hparams=hparam,
                                    data_dir=data_dir, data_source=None, max_steps=None,
                                    eval_every=None, chunk_mode="auto", quiet=quiet or as_json,
                                    dataset=datasets.get(spec))
    identity = {}
    for results in per_workload.values():
        run = database.get_run(results[0].run_id)
        identity[run.variant] = (run.workload_version, run.data_fingerprint)
    variants = list(identity)
    times = scoring.time_table(database, identity)
    name = per_workload[specs[0]][0].submission
    scores = scoring.performance_profile_scores(times, variants)
    rows = []
    for spec, results in per_workload.items():
        rows.append({"workload": results[0].workload, "seeds": len(results),
                     "reached": sum(r.status == "reached" for r in results),
                     "median_steps_to_target": _median([r.steps_to_target for r in results]),
                     "median_time_to_target_s": _median([r.time_to_target_s for r in results]),
                     "run_ids": [r.run_id for r in results]})
    if as_json:
        payload = {"submission": name, "workloads": rows, "skipped": skipped,
                   "performance_profile": {"tau_max": scoring.TAU_MAX, "scores": scores,
                                           "times": times}}
        print(json.dumps(payload, indent=2, default=lambda x: None))
        return
    table = _table(f"score: {name}", ("workload", "reached", "median steps to target",
                                       "median time to target (s)"))
    for row in rows:
        table.add_row(row["workload"], f"{row['reached']}/{row['seeds']}",
                      _fmt_steps(row["median_steps_to_target"]), _fmt_s(row["median_time_to_target_s"]))
    out.print(table)
    if len(scores) > 1:
        prof = _table(f"performance-profile score (tau_max={scoring.TAU_MAX:g}; 1 = fastest everywhere)",
                      ("submission", "score"))
        for sub, value in sorted(scores.items(), key=lambda kv: -kv[1]):
            prof.add_row(sub, f"{value:.3f}", style="bold" if sub == name else None)
        out.print(prof)
    else:
        out.print("no other submission has results on these workloads yet: "
                  "score other submissions into the same --db to get performance profiles")
    out.print(f"results in {database.url}")


@app.command()
def runs(
    db: DbOpt = None,
    workload: Annotated[Optional[str], typer.Option(help="filter by workload name")] = None,
    submission: Annotated[Optional[str], typer.Option(help="filter by submission name")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored runs."""
    database = _open(db)
    rows = database.runs(workload=workload, submission=submission)
    fields = ("id", "variant", "submission", "seed", "status", "steps_to_target",
              "time_to_target_s", "compile_s", "backend", "started_at")
    if as_json:
        print(json.dumps([{f: getattr(r, f) for f in fields} for r in rows], indent=2, default=str))
        return
    table = _table(f"runs in {database.url}", fields)
    for r in rows:
        table.add_row(*(str(getattr(r, f))[:19] if f != "id" else r.id[:8] for f in fields))
    out.print(table)


@app.command()
def workloads(as_json: JsonOpt = False) -> None:
    """List registered workloads with their knobs, targets and budgets."""
    items = []
    for name, cls in sorted(REGISTRY.items()):
        t = cls.target
        items.append({"name": name, "target": f"{t.split} {t.metric} {'>=' if t.direction == 'max' else '<='} {t.value}",
                      "batch_size": cls.batch_size, "max_steps": cls.max_steps,
                      "eval_every": cls.eval_every, "knobs": cls.describe_knobs(),
                      "doc": (cls.__doc__ or "").strip().splitlines()[0]})
    if as_json:
        print(json.dumps(items, indent=2))
        return
    table = _table("workloads", ("name", "target", "batch", "max steps", "eval every", "knobs"))
    table.show_lines = True
    for i in items:
        table.add_row(i["name"], i["target"], str(i["batch_size"]), str(i["max_steps"]),
                      str(i["eval_every"]), i["knobs"])
    out.print(table)


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Migrate the results database to this curvebench's schema revision."""
    try:
        database = open_database(db, upgrade=True)
    except DatabaseError as e:
        _fail(str(e))
    out.print(f"{database.url} is at schema revision {database.revision()}")
