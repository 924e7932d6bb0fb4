"""Stored runs: `curvebench runs` (list, filtered), `runs show` (one run), `compare` (two
submissions or sets of runs side by side) and `export` (CSV / Parquet tables)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from harness.cli.app import CommandLineError, app, open_db, out, styled, emit
from harness.cli.options import (DbOpt, ForceOpt, JsonOpt, MlflowOpt, OriginFilterOpt, StatusFilterOpt,
                                 SubmissionFilterOpt, SweepFilterOpt, TagFilterOpt,
                                 VariantFilterOpt, WorkloadFilterOpt)
from harness.cli.output import jsonable, num, make_table
from harness.cli.training import mirror_report, mlflow_mirror

runs_app = typer.Typer(help="List stored runs (filters below), or `runs show RUN_ID` for one.",
                       invoke_without_command=True)
app.add_typer(runs_app, name="runs")
RUN_LIST_FIELDS = ("id", "workload", "variant", "submission", "seed", "status", "steps_to_target",
                   "time_to_target_s", "compile_s", "group_size", "origin", "tag", "sweep_id",
                   "backend", "started_at")



def _hparams_text(hparams: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{k}={num(hparams[k]) if k in hparams else '—'}" for k in names)


def _run_filter(**given: Any):
    from harness.runs_query import RunFilter

    return RunFilter(**given)


@runs_app.callback()
def runs(
    ctx: typer.Context,
    workload: WorkloadFilterOpt = None,
    variant: VariantFilterOpt = None,
    submission: SubmissionFilterOpt = None,
    status: StatusFilterOpt = None,
    origin: OriginFilterOpt = None,
    sweep: SweepFilterOpt = None,
    tag: TagFilterOpt = None,
    db: DbOpt = None,
    mlflow: MlflowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored runs, oldest first: every filter given must hold. The hparams column shows
    the hyperparameters that differ between the listed runs (the rest are printed below)."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.runs_query import find_runs, varying_hparams

    database = open_db(db)
    filters = _run_filter(workload=workload, variant=variant, submission=submission,
                          status=status, origin=origin, sweep=sweep, tag=tag)
    rows = find_runs(database, filters)
    if mlflow is not None:
        mirror_report(mlflow_mirror(mlflow, database.url), [r.id for r in rows])
    if as_json:
        emit(json.dumps(jsonable([{**{f: getattr(r, f) for f in RUN_LIST_FIELDS},
                                     "hparams": r.hparams} for r in rows]), indent=2, default=str))
        return
    if not rows:
        out.print(f"no runs in {database.url} match {filters.describe()}", highlight=False,
                  soft_wrap=True)
        return
    varying, common = varying_hparams(rows)
    table = make_table(f"{len(rows)} runs in {database.url}",
                       ("id", "variant", "submission", *(["hparams"] if varying else []), "seed",
                        "status", "steps", "time (s)", "group", "origin"))
    table.columns[1].no_wrap = True  # full variant names: the other columns wrap instead
    hparams = [_hparams_text(r.hparams, varying).replace(", ", "\n") for r in rows]
    if varying:  # one name=value per line, never split
        table.columns[3].min_width = max(len(line) for h in hparams for line in h.splitlines())
    for r, h in zip(rows, hparams):
        table.add_row(r.id[:8], r.variant, r.submission, *([h] if varying else []), str(r.seed),
                      r.status, num(r.steps_to_target), num(r.time_to_target_s),
                      str(r.group_size), r.origin + (f" ({r.tag})" if r.tag else ""))
    out.print(table)
    out.print("oldest first; steps, time: to target (time: the group's when group > 1); "
              "--json adds start times and every hparam", highlight=False)
    if common:
        out.print(f"hparams of every run: {_hparams_text(common, list(common))}", highlight=False,
                  soft_wrap=True)


def _settings_table(title: str, values: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for k, v in values.items():
        if v is None or v == "":
            continue
        if hasattr(v, "strftime"):
            v = f"{v:%Y-%m-%d %H:%M:%S} UTC"
        table.add_row(k, num(v) if isinstance(v, (int, float)) else str(v))
    return table


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    evals: Annotated[int, typer.Option(min=0, help="eval rows to print, spread over the curve "
                                       "(0: all)")] = 12,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One stored run: settings, hyperparameters, outcome, environment, eval curve,
    training-loss summary and curvature snapshots (`curvebench curvature RUN_ID`: all metrics)."""
    from harness.runs_query import run_detail

    database = open_db(db)
    detail = run_detail(database, run_id)
    if as_json:
        emit(json.dumps(jsonable(detail.to_json()), indent=2, default=str))
        return
    settings = dict(detail.settings)
    if detail.sweep_name:
        settings["sweep_id"] = f"{settings['sweep_id']} ({detail.sweep_name})"
    out.print(styled(f"run {detail.id}", "bold"), highlight=False)
    out.print(_settings_table("settings", settings))
    out.print(_settings_table("hparams", detail.hparams))
    outcome = {k: v for k, v in detail.outcome.items() if k != "error"}
    out.print(_settings_table("outcome", outcome))
    if detail.outcome.get("error"):
        out.print(f"error: {detail.outcome['error'].strip().splitlines()[-1]}", highlight=False,
                  soft_wrap=True)
    out.print(_settings_table("environment", detail.environment))
    _print_eval_curve(detail, evals)
    lo = detail.losses
    if lo.count:
        out.print(f"training loss: {lo.count} steps ({lo.first_step}-{lo.last_step}), first "
                  f"{num(lo.first)}, last {num(lo.last)}, lowest {num(lo.min)} at step "
                  f"{lo.min_step}" + (f", {lo.non_finite} not finite" if lo.non_finite else ""),
                  highlight=False)
    else:
        out.print("training loss: none stored", highlight=False)
    _print_snapshots(detail)


def _print_eval_curve(detail, limit: int) -> None:
    points = detail.evals
    if not points:
        out.print("eval curve: none stored", highlight=False)
        return
    shown = points
    if limit and len(points) > limit:
        picks = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)}
                       if limit > 1 else {len(points) - 1})
        target = detail.outcome.get("steps_to_target")
        picks = sorted(set(picks) | {i for i, p in enumerate(points) if p.step == target})
        shown = [points[i] for i in picks]
    keys = list(dict.fromkeys(k for p in points for k in p.values))
    table = make_table(f"eval curve ({len(shown)} of {len(points)} evals)",
                       ("step", "train (s)", *keys))
    for p in shown:
        table.add_row(str(p.step), num(p.train_s), *(num(p.values.get(k)) for k in keys),
                      style="bold" if p.step == detail.outcome.get("steps_to_target") else None)
    out.print(table)


def _print_snapshots(detail) -> None:
    if not detail.snapshots:
        out.print("curvature snapshots: none", highlight=False)
        return
    from harness.curvature import report

    table = make_table(f"curvature snapshots ({len(detail.snapshots)})",
                       ("step", "matrix", "λ_max", "compute (s)"))
    for x in detail.snapshots:
        table.add_row(str(x.step), report.matrix_label(x.kind, x.config),
                      report.cell(x.metrics, "max_eig"),
                      num(x.compute_s) + (" *" if x.includes_compile else ""))
    out.print(table)
    out.print(f"every metric of every snapshot: curvebench curvature {detail.id[:8]}"
              + ("; * includes compiling" if any(x.includes_compile for x in detail.snapshots)
                 else ""), highlight=False)


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="side A (the reference): SUBMISSION, sweep:NAME_OR_ID, "
                                     "tag:TAG or runs:ID,ID,...")],
    b: Annotated[str, typer.Argument(help="side B, in the same forms")],
    workload: WorkloadFilterOpt = None,
    submission: SubmissionFilterOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Two submissions, or two sets of runs, side by side per workload variant: runs reaching
    the target, median steps and time to target (time: runs timed alone), ratios B/A and
    `check`'s steps-to-target test (harness/compare.py)."""
    database = open_db(db)
    from harness import compare as comparing

    filters = _run_filter(workload=workload, submission=submission)
    result = comparing.compare(database, comparing.Side.parse(a), comparing.Side.parse(b),
                               filters)
    if as_json:
        emit(json.dumps(jsonable(result.to_json()), indent=2, default=str))
        return
    table = make_table(f"A = {result.a}   vs   B = {result.b}",
                       ("workload", "A reached", "B reached", "A median steps", "B median steps",
                        "steps B/A", "A median time (s)", "B median time (s)", "time B/A",
                        "steps test (B vs A)"))

    def reached(s) -> str:
        return "—" if s is None else f"{s.reached}/{len(s.run_ids)}"

    for row in result.rows:
        ra, rb = row.a, row.b
        verdict = row.verdict.text
        if row.verdict.p is not None:
            verdict += f" (p={row.verdict.p:.2g}, {row.verdict.relative_difference:+.0%})"
        table.add_row(row.variant, reached(ra), reached(rb),
                      num(ra and ra.median_steps), num(rb and rb.median_steps),
                      num(row.steps_ratio), num(ra and ra.median_time_s),
                      num(rb and rb.median_time_s), num(row.time_ratio), verdict)
    out.print(table)
    out.print("steps: median over one run per seed (a miss counts as infinite); time: runs timed "
              "alone only (group size 1), '—' where a side has none", highlight=False)


@app.command("export")
def export_cmd(
    out_dir: Annotated[str, typer.Option("--out", help="directory for runs, evals, losses and "
                                         "curvature tables")] = "curvebench-export",
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet (either needs the export "
                                     "extra: pip install -e '.\\[export]')")] = "csv",
    workload: WorkloadFilterOpt = None,
    variant: VariantFilterOpt = None,
    submission: SubmissionFilterOpt = None,
    status: StatusFilterOpt = None,
    origin: OriginFilterOpt = None,
    sweep: SweepFilterOpt = None,
    tag: TagFilterOpt = None,
    db: DbOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export the selected runs, their evals, training losses and curvature values as CSV or
    Parquet files (columns: docs/results-schema.md)."""
    database = open_db(db)
    from harness import export as exporting

    try:
        chosen = exporting.Format(fmt)
    except ValueError:
        raise CommandLineError(f"--format {fmt!r}: valid: "
                               f"{', '.join(f.value for f in exporting.Format)}") from None
    filters = _run_filter(workload=workload, variant=variant, submission=submission,
                          status=status, origin=origin, sweep=sweep, tag=tag)
    written = exporting.export(database, out_dir, chosen, filters, force=force)
    for table, path in written.items():
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)

