"""Reference sets (`curvebench refs freeze|export|import|list`) and the regression check
against them (`curvebench check`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.cli.app import CommandLineError, app, err, open_db, out, styled, emit
from harness.cli.options import (CompileCacheOpt, DataDirOpt, DataSourceOpt, DbOpt, HparamOpt, refuse_with,
                                 JsonOpt, QuietOpt, RefsDirOpt)
from harness.cli.output import split_ids
from harness.cli.training import command_line, parse_single, progress

refs_app = typer.Typer(help="Reference result sets: freeze from the database, export/import as text.",
                       no_args_is_help=True)
app.add_typer(refs_app, name="refs")


def _refs_folder(refs_dir: str | None) -> str | None:
    """--refs as given, refused if it names no folder (it would silently mean "no file sets")."""
    if refs_dir is not None and not Path(refs_dir).is_dir():
        raise CommandLineError(f"--refs {refs_dir}: no such folder of reference sets; give a "
                               "folder of *.jsonl sets, or leave --refs out for the shipped ones")
    return refs_dir


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
    from workloads import get_workload

    database = open_db(db)
    ids = split_ids(runs)
    if not ids:
        if not workload or not submission:
            raise CommandLineError("give --workload and --submission, or --runs")
        variant = get_workload(workload).spec
        name = Path(submission).resolve().name
        ids, left_out = refs.select_runs(database, variant, name)
        if left_out:
            err.print(left_out, highlight=False, soft_wrap=True)
    refset = refs.freeze(database, ids, tolerance=tolerance, note=note)
    out.print(f"froze {refset.id}: {len(refset.records)} runs (seeds "
              f"{', '.join(str(r['run']['seed']) for r in refset.records)}); "
              "write it to files with `curvebench refs export --out DIR`", soft_wrap=True)


@refs_app.command("export")
def refs_export(
    out_dir: Annotated[str, typer.Option("--out", help="directory to write the files to (required)")],
    set_ids: Annotated[Optional[list[str]], typer.Argument(help="set ids (default: all)")] = None,
    db: DbOpt = None,
) -> None:
    """Write reference sets from the database as JSON Lines files (one run per line)."""
    from harness import refs

    database = open_db(db)
    paths = refs.export_sets(database, out_dir, set_ids or None)
    for p in paths:
        out.print(f"wrote {p}", highlight=False, soft_wrap=True)


@refs_app.command("import")
def refs_import(
    paths: Annotated[Optional[list[str]], typer.Argument(help="set files or directories "
                                                         "(default: the shipped sets)")] = None,
    db: DbOpt = None,
) -> None:
    """Load reference set files into the database (all or nothing)."""
    from harness import refs

    database = open_db(db, create=True)
    outcome = refs.import_sets(database, paths or [refs.SHIPPED_DIR])
    for set_id, what in outcome:
        out.print(f"{set_id}: {what}", highlight=False, soft_wrap=True)


@refs_app.command("list")
def refs_list(db: DbOpt = None, refs_dir: RefsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List reference sets in the reference directory and the database."""
    from rich.table import Table

    from harness import refs

    database = open_db(db)
    sets = refs.available_sets(database, _refs_folder(refs_dir))
    rows = [{"id": s.id, "runs": len(s.records), "hardware": s.hardware, "origin": s.origin,
             "steps_tolerance": s.header["steps_tolerance"], "hparams": s.header["hparams"]}
            for s in sets]
    if as_json:
        emit(json.dumps(rows, indent=2))
        return
    table = Table(title="reference sets")
    for col in ("id", "runs", "hardware", "origin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], str(r["runs"]), r["hardware"], r["origin"])
    out.print(table)


_TIER_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def _print_report(report) -> None:
    from rich.table import Table

    out.print(styled("check", "bold", f"{report.workload} / {report.submission}"), highlight=False,
              soft_wrap=True)
    if report.reference_set:
        out.print(f"reference set {report.reference_set} ({len(report.reference_runs)} runs, "
                  f"{report.hardware}) from {report.reference_origin}", highlight=False, soft_wrap=True)
    if report.environment:
        out.print(report.environment, highlight=False, soft_wrap=True)
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
    out.print(styled("verdict:", "", "").append(report.verdict, style).append(f" (exit {report.exit_code})"))


@app.command()
def check(
    ctx: typer.Context,
    workload: Annotated[str, typer.Option(help="workload variant, e.g. mnist_mlp")],
    submission: Annotated[str, typer.Option(help="submission folder or built-in name")],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="rerun seeds 0..N-1 (default 5)")] = None,
    runs: Annotated[list[str], typer.Option("--runs", help="check these stored runs instead of "
                                            "rerunning (repeat or comma-separate)")] = [],
    hparam: HparamOpt = [],
    db: DbOpt = None,
    refs_dir: RefsDirOpt = None,
    data_dir: DataDirOpt = None,
    data_source: DataSourceOpt = None,
    resamples: Annotated[int, typer.Option(min=100, help="bootstrap draws for the false-reject rate")] = 2000,
    skip_bit_exact: Annotated[bool, typer.Option(help="skip the bit-exact tier (a harness change "
                                                 "known to alter floating-point results)")] = False,
    compile_cache: CompileCacheOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Rerun (or take stored runs) and compare with the matching reference set.

    Exit code 0: pass; 1: fail; 2: not comparable, no references, or bad input.
    """
    run_ids = split_ids(runs)
    if run_ids and seeds:
        raise CommandLineError("give --seeds or --runs, not both")
    refuse_with(ctx, "runs", ("hparam", "data_dir", "data_source", "compile_cache"),
                "--runs checks stored runs as they were made, nothing is rerun")
    from harness.grid import seed_range

    overrides = parse_single("", hparam, "check")
    database = open_db(db, create=not run_ids)
    from harness import check as checking
    from harness import refs
    from harness.errors import UserError
    from harness.submissions import load_submission
    from workloads import get_workload

    try:
        w = get_workload(workload)
        sub = load_submission(submission, overrides)
        sets = refs.available_sets(database, _refs_folder(refs_dir))
        with progress(quiet or as_json) as display:
            report = checking.check(database, sets, w, sub,
                                    seeds=() if run_ids else seed_range(0, seeds or 5), run_ids=run_ids,
                                    data_dir=data_dir, data_source=data_source,
                                    resamples=resamples, skip_bit_exact=skip_bit_exact,
                                    on_event=display, compile_cache=compile_cache,
                                    command=command_line(ctx))
    except UserError as e:  # --json promises JSON: the error as a verdict
        if not as_json:
            raise
        emit(json.dumps({"verdict": "error", "exit_code": e.exit_code, "message": str(e)}))
        raise typer.Exit(e.exit_code) from None
    if as_json:
        emit(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)
