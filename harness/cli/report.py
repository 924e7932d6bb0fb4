"""`curvebench report` (an offline HTML report of stored runs) and `curvebench analyze` (an
analysis's grid, its verdicts per claim, optionally as a report)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from harness.cli.app import CommandLineError, app, err, open_db, out, styled
from harness.cli.options import DbOpt, ForceOpt, MlflowOpt, QuietOpt
from harness.cli.output import make_table, split_ids
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
    density_steps: Annotated[Optional[str], typer.Option(
        help="steps at which to draw SLQ densities, comma-separated (default: 5 spread)")] = None,
    db: DbOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write an offline HTML report (index.html + one SVG per figure) of the selected runs.

    A database or filter with no runs gives a page saying which filter matched nothing (exit 0).
    """
    from harness.report import Filters, build_report

    try:
        steps = [int(s) for s in split_ids([density_steps])] if density_steps else None
    except ValueError:
        raise CommandLineError(f"--density-steps takes comma-separated integers, got "
                               f"{density_steps!r}") from None
    from harness import output_dir

    output_dir.check_folder(out_dir)
    database = open_db(db, create=True)  # a new database's report is a page saying it is empty
    filters = Filters(runs=tuple(split_ids(runs)), sweep=sweep, workload=workload,
                      submission=submission)
    from harness.analyses import sections_for_sweep

    extra = sections_for_sweep(database, sweep) if sweep else []
    result = build_report(database, filters, out_dir, density_steps=steps, extra_sections=extra,
                          force=force)
    if result.empty_reason:
        err.print(styled("nothing to report:", "yellow", result.empty_reason), highlight=False)
    out.print(f"{result.index} ({result.runs} runs, {result.figures} figures)", highlight=False,
              soft_wrap=True)


@app.command()
def analyze(
    name: Annotated[str, typer.Argument(help="the analysis: catapult, ablation, break-even, quadratic")],
    tiny: Annotated[bool, typer.Option(help="the test's tiny grid instead of the default")] = False,
    seeds: Annotated[Optional[str], typer.Option(help="comma-separated seeds (default: the "
                                                 "analysis's)")] = None,
    report_dir: Annotated[Optional[str], typer.Option("--report", help="also write an HTML "
                                                      "report of the analysis to this directory")] = None,
    data_source: Annotated[Optional[str], typer.Option(help="data source for the workloads")] = None,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    mlflow: MlflowOpt = None,
    force: ForceOpt = False,
) -> None:
    """Run an analysis's grid (origin `analysis`), print a verdict per claim, store them in its sweep."""
    import dataclasses

    from harness.analyses import analysis_module
    from harness.report import write_report

    try:
        module = analysis_module(name)
    except ValueError as e:  # its message names the valid analyses
        raise CommandLineError(str(e)) from None
    config = module.TINY if tiny else type(module.TINY)()
    if seeds:
        try:
            config = dataclasses.replace(config, seeds=tuple(int(s) for s in split_ids([seeds])))
        except ValueError:
            raise CommandLineError(f"--seeds takes comma-separated integers, got "
                                   f"{seeds!r}") from None
        from harness.grid import seed_range

        for s in config.seeds:
            seed_range(s, 1, "--seeds")
    if report_dir is not None:  # checked before the analysis runs, not after
        from harness import output_dir

        output_dir.claim(report_dir, ["index.html"], force=force, option="--report")
    database = open_db(db, create=True)
    mirror = mlflow_mirror(mlflow, database.url)
    try:
        with progress(quiet) as display:
            result = module.run(config, database.url, data_source=data_source,
                                on_event=also_mirrored(display, mirror))
    except ValueError as e:  # what the analysis cannot do with its runs (harness.analyses)
        raise CommandLineError(str(e)) from e
    if mirror is not None:
        from harness.runs_query import RunFilter, find_runs

        mirror_report(mirror, [r.id for r in find_runs(database, RunFilter(sweep=result.sweep_id))])
    table = make_table(f"{name}: sweep {result.sweep_id}", ("claim", "verdict", "reason"))
    for c in result.claims:
        table.add_row(f"{c.name}: {c.statement}", c.outcome.value, c.reason)
    out.print(table)
    if report_dir:
        index = write_report(report_dir, f"curvebench analyze {name}",
                             [module.section(result, database)],
                             meta=[f"sweep {result.sweep_id}: `curvebench report --sweep "
                                   f"{result.sweep_id}` adds the runs' standard figures"],
                             force=force)
        out.print(str(index), highlight=False, soft_wrap=True)
