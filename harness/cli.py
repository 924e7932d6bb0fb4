"""The `curvebench` command line: parse, call the harness, print (tables or --json)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import score as scoring
from harness.curvature import (DEFAULT_SCHEDULE, ScheduleError, SnapshotConfig, snapshot_callback,
                               snapshot_steps)
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


def _median(values: list[float | None]) -> float:
    return scoring.median_or_inf(values)


def _jsonable(obj):
    """Replace non-finite floats (misses as infinity) by null: JSON has no Infinity."""
    if isinstance(obj, float):
        return _finite_or_none(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _train(workload_spec: str, submission_path: str, seeds: list[int], database: Database, *,
           hparams: list[str], data_dir: str | None, data_source: str | None, max_steps: int | None,
           eval_every: int | None, chunk_mode: str, quiet: bool,
           dataset: Dataset | None = None, curvature: SnapshotConfig | None = None,
           curvature_every: str = DEFAULT_SCHEDULE, search_point: int = 0) -> list[TrialResult]:
    try:
        workload = get_workload(workload_spec)
        submission = load_submission(submission_path, hparams, search_point=search_point)
        dataset = dataset or workload.load_data(data_dir, data_source)
    except (SpecError, DataUnavailable, ValueError) as e:
        _fail(str(e))
    results = []
    budget = max_steps or workload.max_steps
    snapshot_kw: dict = {}
    if curvature is not None:
        try:
            steps = snapshot_steps(curvature_every, budget)
            on_snapshot = snapshot_callback(
                workload, dataset, curvature, db=database, hparams=submission.hparams,
                batch_size=submission.batch_size(workload.name, workload.batch_size))
        except (SpecError, ValueError) as e:
            _fail(str(e))
        snapshot_kw = {"snapshot_steps": steps, "on_snapshot": on_snapshot}
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
                                         chunk_mode=chunk_mode, on_eval=on_eval, **snapshot_kw))
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
    curvature: Annotated[Optional[str], typer.Option(
        help="curvature snapshots: comma-separated hessian, ggn, cov (each may be KIND@PARAM_PATTERN)")] = None,
    curvature_every: Annotated[str, typer.Option(
        help="snapshot steps: init | every:N | log:K:END | at:S1/S2, comma-separated")] = DEFAULT_SCHEDULE,
    curvature_batch: Annotated[int, typer.Option(min=1, help="examples in the fixed curvature batch")] = 2048,
    lanczos_order: Annotated[int, typer.Option(min=2, help="Lanczos steps per snapshot")] = 20,
    search_point: Annotated[int, typer.Option(min=0, help=(
        "AlgoPerf-format submission with a tuning_search_space.json: use its point K (listed "
        "points in order; ranges: the K-th quasi-random point)"))] = 0,
) -> None:
    """Train a submission on one workload for N seeds; print steps and time to target."""
    database = _open(db)
    config = None
    if curvature:
        try:
            config = SnapshotConfig(kinds=tuple(k.strip() for k in curvature.split(",") if k.strip()),
                                    curvature_batch=curvature_batch, lanczos_order=lanczos_order,
                                    top_k=tuple(k for k in SnapshotConfig.top_k if k <= lanczos_order))
            snapshot_steps(curvature_every, 1)
        except (SpecError, ScheduleError) as e:
            _fail(str(e))
    results = _train(workload, submission, list(range(seed_start, seed_start + seeds)), database,
                     hparams=hparam, data_dir=data_dir, data_source=data_source,
                     max_steps=max_steps, eval_every=eval_every, chunk_mode=chunk_mode,
                     quiet=quiet or as_json, curvature=config, curvature_every=curvature_every,
                     search_point=search_point)
    if as_json:
        print(json.dumps(_jsonable([r.to_json() for r in results]), indent=2))
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
        help="comma-separated workload variants (default: every registered workload whose data "
             "is here, toy problems excepted)")] = None,
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
        datasets, skipped = _load_available(
            sorted(n for n, cls in REGISTRY.items() if cls.scored_by_default), data_dir)
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
        print(json.dumps(_jsonable(payload), indent=2))
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


CURVATURE_COLUMNS = ("max_eig", "min_eig", "mer_10", "ter_10", "pgr_10", "pnr", "gram_lambda_1",
                     "gram_condition", "gram_trace", "normalized_sharpness")


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@app.command("curvature")
def curvature_cmd(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a run's curvature snapshot metrics over steps."""
    database = _open(db)
    try:
        run_row = database.get_run(run_id)
    except DatabaseError as e:
        _fail(str(e))
    snaps = database.snapshots(run_row.id)
    if as_json:
        print(json.dumps({"run_id": run_row.id, "snapshots": [
            {"step": x["step"], "kind": x["kind"], "compute_s": x["compute_s"],
             "includes_compile": x["includes_compile"], "metrics": {k: _finite_or_none(v) for k, v in x["metrics"].items()},
             "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in x["arrays"].items()},
             "config": x["config"]} for x in snaps]}, indent=2))
        return
    if not snaps:
        out.print(f"run {run_row.id[:8]} has no curvature snapshots "
                  "(curvebench run ... --curvature hessian,ggn,cov records them)")
        return
    shown = [c for c in CURVATURE_COLUMNS if any(c in x["metrics"] for x in snaps)]
    table = Table(title=f"curvature of run {run_row.id[:8]} ({run_row.variant} / {run_row.submission})")
    for col in ("step", "kind", *shown, "compute (s)"):
        table.add_column(col, justify="right")
    for x in snaps:
        values = [x["metrics"].get(c) for c in shown]
        table.add_row(str(x["step"]), x["kind"], *("-" if v is None else f"{v:.4g}" for v in values),
                      f"{x['compute_s']:.2f}" + (" *" if x["includes_compile"] else ""))
    out.print(table)
    if any(x["includes_compile"] for x in snaps):
        out.print("* includes compiling that kind's operators (its first snapshot in the run)")


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


# -- reference sets and the regression check ---------------------------------------------

refs_app = typer.Typer(help="Reference result sets: freeze from the database, export/import as text.",
                       no_args_is_help=True)
app.add_typer(refs_app, name="refs")
RefsDirOpt = Annotated[Optional[str], typer.Option(
    "--refs", help="directory of reference set files (default: the checkout's reference_results/)")]


def _split_ids(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@refs_app.command("freeze")
def refs_freeze(
    workload: Annotated[Optional[str], typer.Option(help="workload variant whose runs to freeze")] = None,
    submission: Annotated[Optional[str], typer.Option(help="submission folder or name")] = None,
    runs: Annotated[list[str], typer.Option("--runs", help="run ids (repeat or comma-separate); "
                                            "default: the newest code+hparams' runs, one per seed")] = [],
    tolerance: Annotated[Optional[float], typer.Option(help="relative steps-to-target tolerance "
                                                       "(default: per workload)")] = None,
    note: Annotated[str, typer.Option(help="free text stored with the set")] = "",
    db: DbOpt = None,
) -> None:
    """Make a reference set from finished runs in the database."""
    from harness import refs

    database = _open(db)
    try:
        ids = _split_ids(runs)
        if not ids:
            if not workload or not submission:
                _fail("give --workload and --submission, or --runs")
            variant = get_workload(workload).spec
            name = Path(submission).resolve().name
            ids, left_out = refs.select_runs(database, variant, name)
            if left_out:
                err.print(left_out, highlight=False, soft_wrap=True)
        refset = refs.freeze(database, ids, tolerance=tolerance, note=note)
    except (refs.RefsError, SpecError) as e:
        _fail(str(e))
    out.print(f"froze {refset.id}: {len(refset.records)} runs (seeds "
              f"{', '.join(str(r['run']['seed']) for r in refset.records)}); "
              "write it to reference_results/ with `curvebench refs export`", soft_wrap=True)


@refs_app.command("export")
def refs_export(
    set_ids: Annotated[Optional[list[str]], typer.Argument(help="set ids (default: all)")] = None,
    out_dir: Annotated[Optional[str], typer.Option("--out", help="directory (default: reference_results/)")] = None,
    db: DbOpt = None,
) -> None:
    """Write reference sets from the database as JSON Lines files (one run per line)."""
    from harness import refs

    database = _open(db)
    try:
        paths = refs.export_sets(database, out_dir or refs.DEFAULT_DIR, set_ids or None)
    except refs.RefsError as e:
        _fail(str(e))
    for p in paths:
        out.print(f"wrote {p}", highlight=False, soft_wrap=True)


@refs_app.command("import")
def refs_import(
    paths: Annotated[Optional[list[str]], typer.Argument(help="set files or directories "
                                                         "(default: reference_results/)")] = None,
    db: DbOpt = None,
) -> None:
    """Load reference set files into the database (all or nothing)."""
    from harness import refs

    database = _open(db)
    try:
        outcome = refs.import_sets(database, paths or [refs.DEFAULT_DIR])
    except refs.RefsError as e:
        _fail(str(e))
    for set_id, what in outcome:
        out.print(f"{set_id}: {what}", highlight=False, soft_wrap=True)


def _reference_sets(database: Database, refs_dir: str | None) -> list:
    """Sets from the reference files and the database; a file wins over a DB set of the same id."""
    from harness import refs

    sets = {s.id: s for s in refs.db_sets(database)}
    sets.update({s.id: s for s in refs.read_sets(refs_dir or refs.DEFAULT_DIR)})
    return list(sets.values())


@refs_app.command("list")
def refs_list(db: DbOpt = None, refs_dir: RefsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List reference sets in the reference directory and the database."""
    from harness import refs

    database = _open(db)
    try:
        sets = _reference_sets(database, refs_dir)
    except refs.RefsError as e:
        _fail(str(e))
    rows = [{"id": s.id, "runs": len(s.records), "hardware": s.hardware, "origin": s.origin,
             "steps_tolerance": s.header["steps_tolerance"], "hparams": s.header["hparams"]}
            for s in sets]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="reference sets")
    for col in ("id", "runs", "hardware", "origin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], str(r["runs"]), r["hardware"], r["origin"])
    out.print(table)


_TIER_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def _print_report(report) -> None:
    out.print(f"[bold]check[/] {report.workload} / {report.submission}", highlight=False, soft_wrap=True)
    if report.reference_set:
        out.print(f"reference set {report.reference_set} ({len(report.reference_runs)} runs, "
                  f"{report.hardware}) from {report.reference_origin}", highlight=False, soft_wrap=True)
    if report.candidate_runs:
        out.print(f"candidate runs: {', '.join(r[:8] for r in report.candidate_runs)}", highlight=False, soft_wrap=True)
    if report.message:
        out.print(report.message, highlight=False, soft_wrap=True)
    if report.tiers:
        table = Table()
        for col in ("tier", "compared", "numbers", "verdict"):
            table.add_column(col, overflow="fold")
        for t in report.tiers:
            table.add_row(t.name, t.compared, t.summary, f"[{_TIER_STYLE.get(t.status, '')}]{t.status}")
        out.print(table)
    frr = report.false_reject_rate
    if frr:
        out.print(f"false-reject rate of the convergence + steps rule: {frr['rate']:.1%}, "
                  f"95% upper bound {frr['upper_95']:.1%} ({frr['rejects']}/{frr['resamples']} bootstrap draws of {frr['n_candidate']} "
                  f"candidate vs {frr['n_reference']} reference runs from the references)",
                  highlight=False, soft_wrap=True)
    style = {"pass": "bold green", "fail": "bold red"}.get(report.verdict, "bold yellow")
    out.print(f"verdict: [{style}]{report.verdict}[/] (exit {report.exit_code})")


@app.command()
def check(
    workload: Annotated[str, typer.Option(help="workload variant, e.g. mnist_mlp")],
    submission: Annotated[str, typer.Option(help="submission folder")],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="rerun seeds 0..N-1 (default 5)")] = None,
    runs: Annotated[list[str], typer.Option("--runs", help="check these stored runs instead of "
                                            "rerunning (repeat or comma-separate)")] = [],
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")] = [],
    db: DbOpt = None,
    refs_dir: RefsDirOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="directory with the dataset files")] = None,
    data_source: Annotated[Optional[str], typer.Option(help="dataset source (workload-specific)")] = None,
    resamples: Annotated[int, typer.Option(min=100, help="bootstrap draws for the false-reject rate")] = 2000,
    skip_bit_exact: Annotated[bool, typer.Option(help="skip the bit-exact tier (a harness change "
                                                 "known to alter floating-point results)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rerun (or take stored runs) and compare with the matching reference set.

    Exit code 0: pass; 1: fail; 2: not comparable, no references, or bad input.
    """
    from harness import check as checking
    from harness import refs

    run_ids = _split_ids(runs)
    if run_ids and seeds:
        _fail("give --seeds or --runs, not both")
    database = _open(db)
    try:
        w = get_workload(workload)
        sub = load_submission(submission, hparam)
        sets = _reference_sets(database, refs_dir)
        dataset = None if run_ids else w.load_data(data_dir, data_source)

        def on_trial(result):
            if not as_json:
                err.print(f"seed {result.seed}: {result.status} at step {result.final_step} "
                          f"(run {result.run_id[:8]})", highlight=False, soft_wrap=True)

        report = checking.check(database, sets, w, sub, dataset,
                                seeds=() if run_ids else range(seeds or 5), run_ids=run_ids,
                                resamples=resamples, skip_bit_exact=skip_bit_exact, on_trial=on_trial)
    except (checking.CheckError, refs.RefsError, SpecError, DataUnavailable, DatabaseError) as e:
        if as_json:
            print(json.dumps({"verdict": "error", "exit_code": 2, "message": str(e)}))
            raise typer.Exit(2)
        _fail(str(e))
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)
