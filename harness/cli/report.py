"""`curvebench report` (an offline HTML report of stored runs) and `curvebench analyze` (an
analysis's grid, its verdicts per claim, optionally as a report)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from harness.cli.app import CommandLineError, app, err, open_db, out, styled
from harness.cli.options import (CurvatureFlags, DbOpt, ForceOpt, JsonOpt, MlflowOpt, QuietOpt,
                                 with_curvature_options)
from harness.cli.output import make_table, print_json, split_ids
from harness.cli.training import also_mirrored, mirror_report, mlflow_mirror, progress


@app.command()
def report(
    out_dir: Annotated[str, typer.Option("--out", help="directory for index.html and the figures' "
                                         "SVG files")] = "curvebench-report",
    runs: Annotated[list[str], typer.Option("--runs", help="run ids or prefixes (repeat or "
                                            "comma-separate)")] = [],
    sweep: Annotated[Optional[str], typer.Option(help="sweep name or id")] = None,
    workload: Annotated[Optional[str], typer.Option(help="workload name or variant")] = None,
    submission: Annotated[Optional[str], typer.Option(help="submission name or folder")] = None,
    tag: Annotated[Optional[str], typer.Option(help="runs with this tag")] = None,
    workload_version: Annotated[Optional[str], typer.Option(
        help="workload version (or prefix) to show (default: each variant's newest among the "
             "selected runs; the page names the others)")] = None,
    density_steps: Annotated[Optional[str], typer.Option(
        help="steps at which to draw SLQ densities, comma-separated (default: 5 spread)")] = None,
    metrics: Annotated[Optional[str], typer.Option(
        help="curvature metrics to draw, comma-separated (default: max_eig,min_eig,mer_10,"
             "ter_10,pnr,pgr_10)")] = None,
    db: DbOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write an offline HTML report (index.html + one SVG per figure) of the selected runs.

    A database or filter with no runs gives a page saying which filter matched nothing (exit 0);
    a --db path where no database is creates nothing (the page says no run is held).
    """
    from harness.report import Filters, build_empty_report, build_report

    try:
        steps = [int(s) for s in split_ids([density_steps])] if density_steps else None
    except ValueError:
        raise CommandLineError(f"--density-steps takes comma-separated integers, got "
                               f"{density_steps!r}") from None
    from harness import output_dir

    from harness.runs_query import check_id_prefixes

    if runs and not split_ids(runs):
        raise CommandLineError(f"--runs {' '.join(runs)!r} names no run id: give ids or prefixes "
                               "(comma-separated), or drop --runs for every run")
    ids = check_id_prefixes(split_ids(runs), "--runs")
    output_dir.check_folder(out_dir)
    from harness.errors import NoDatabase

    filters = Filters(runs=ids, sweep=sweep, workload=workload,
                      submission=submission, tag=tag, workload_version=workload_version)
    try:
        database = open_db(db)
    except NoDatabase as e:  # nothing is created there: the page says which path holds nothing
        result = build_empty_report(filters, out_dir, f"--db {db} holds no runs: {e}", force=force)
    else:
        from harness.analyses import sections_for_selection

        extra = sections_for_selection(database, filters)  # analyses that judged these runs' sweeps
        result = build_report(database, filters, out_dir, density_steps=steps,
                              metrics=split_ids([metrics]) if metrics else None,
                              extra_sections=extra, force=force)
    if result.empty_reason:
        err.print(styled("nothing to report:", "yellow", result.empty_reason), highlight=False)
    for line in result.left_out:
        err.print(line, highlight=False, soft_wrap=True)
    out.print(f"{result.index} ({result.runs} runs, {result.figures} figures)", highlight=False,
              soft_wrap=True)


@app.command()
@with_curvature_options
def analyze(
    name: Annotated[str, typer.Argument(help="the analysis: catapult, ablation, break-even, quadratic")],
    tiny: Annotated[bool, typer.Option(help="the test's tiny grid instead of the default")] = False,
    workload: Annotated[list[str], typer.Option(
        help="workload grid in place of the analysis's, as `sweep` takes it: "
             "NAME[:KNOB=V1|V2,...] (repeat to add grids)")] = [],
    submission: Annotated[Optional[str], typer.Option(
        help="built-in submission name or folder (default: the analysis's)")] = None,
    hparam: Annotated[list[str], typer.Option(
        help="fixed hyperparameter NAME=VALUE (not one the analysis sets, e.g. catapult's η)")] = [],
    seeds: Annotated[Optional[str], typer.Option(help="comma-separated seeds (default: the "
                                                 "analysis's)")] = None,
    max_steps: Annotated[Optional[int], typer.Option(
        min=1, help="steps per run (catapult: the early-training window)")] = None,
    curvature_flags: CurvatureFlags = None,
    sweep: Annotated[Optional[str], typer.Option(
        help="judge the stored runs of this sweep (name or id) instead of training the "
             "analysis's grid, e.g. a `curvebench sweep` with the options it needs")] = None,
    report_dir: Annotated[Optional[str], typer.Option("--report", help="also write an HTML "
                                                      "report of the analysis to this directory")] = None,
    data_source: Annotated[Optional[str], typer.Option(help="data source for the workloads")] = None,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    mlflow: MlflowOpt = None,
    as_json: JsonOpt = False,
    force: ForceOpt = False,
) -> None:
    """Run an analysis's grid (origin `analysis`), print a verdict per claim, store them in its sweep.

    --workload, --submission, --hparam, --seeds, --max-steps and the curvature options an
    analysis takes replace its defaults; one it cannot use is a one-line error naming those it
    takes. A claim the chosen setting cannot test is `undecidable`, saying why. --sweep S judges
    the stored runs of sweep S instead (nothing trains; the verdicts are stored on S, and
    `curvebench report --sweep S` draws the analysis's figures). --json prints
    {analysis, sweep_id, claims, result} (the measured numbers and run ids as stored)."""
    from harness.analyses import analysis_module
    from harness.analyses.settings import AnalysisSetting
    from harness.grid import parse_hparam_grid, parse_workload_list
    from harness.report import write_report

    try:
        module = analysis_module(name)
    except ValueError as e:  # its message names the valid analyses
        raise CommandLineError(str(e)) from None
    try:
        seed_list = tuple(int(s) for s in split_ids([seeds])) if seeds else ()
    except ValueError:
        raise CommandLineError(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    from harness.grid import seed_range

    for s in seed_list:
        seed_range(s, 1, "--seeds")
    setting = AnalysisSetting(
        workloads=tuple(parse_workload_list(workload)), submission=submission,
        hparams=tuple(parse_hparam_grid(hparam)) if hparam else (), seeds=seed_list,
        max_steps=max_steps, curvature={k: v for k, v in curvature_flags.items() if v is not None})
    if sweep is not None:
        given = (setting.given() + (["--tiny"] if tiny else []) + (["--data-source"] if data_source else [])
                 + (["--mlflow"] if mlflow else []))
        if given:
            raise CommandLineError(f"analyze {name} --sweep judges that sweep's stored runs; "
                                   f"{', '.join(given)} apply to a grid it trains: drop them or --sweep")
    else:
        config = module.configure(module.TINY if tiny else type(module.TINY)(), setting)
    if report_dir is not None:  # checked before the analysis runs, not after
        from harness import output_dir

        output_dir.claim(report_dir, ["index.html"], force=force, option="--report")
    database = open_db(db, create=True)
    mirror = mlflow_mirror(mlflow, database.url)
    left_out: list[str] = []  # runs of a sweep not judged (older workload versions)
    try:
        if sweep is not None:
            from harness.analyses import analyze_sweep

            result, left_out = analyze_sweep(database, name, sweep)
            for line in left_out:
                err.print(line, highlight=False, soft_wrap=True)
        else:
            with progress(quiet or as_json) as display:
                result = module.run(config, database.url, data_source=data_source,
                                    on_event=also_mirrored(display, mirror))
    except ValueError as e:  # what the analysis cannot do with its runs (harness.analyses)
        raise CommandLineError(str(e)) from e
    if mirror is not None:
        from harness.runs_query import RunFilter, find_runs

        mirror_report(mirror, [r.id for r in find_runs(database, RunFilter(sweep=result.sweep_id))])
    index = None
    if report_dir:
        index = write_report(report_dir, f"curvebench analyze {name}",
                             [module.section(result, database)],
                             meta=[f"sweep {result.sweep_id}: `curvebench report --sweep "
                                   f"{result.sweep_id}` adds the runs' standard figures"],
                             force=force)
    if as_json:
        document = result.to_json()
        print_json({"analysis": name, "sweep_id": result.sweep_id, "claims": document.pop("claims"),
                    "result": document, "report": str(index) if index else None,
                    "left_out": left_out})
        return
    table = make_table(f"{name}: sweep {result.sweep_id}", ("claim", "verdict", "reason"))
    for c in result.claims:
        table.add_row(f"{c.name}: {c.statement}", c.outcome.value, c.reason)
    out.print(table)
    if index:
        out.print(str(index), highlight=False, soft_wrap=True)
