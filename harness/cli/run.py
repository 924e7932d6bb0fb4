"""`curvebench run`: one workload, one submission, N seeds (or `--resume` a killed run)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Optional

import typer

from harness.cli.app import CommandLineError, app, err, open_db, out
from harness.cli.options import (ChunkModeOpt, CompileCacheOpt, CurvatureFlags, DataDirOpt,
                                 DataSourceOpt, DbOpt, DivergenceOpt, EvalEveryOpt, JsonOpt,
                                 MaxStepsOpt, MlflowOpt, QuietOpt, SeedStartOpt, StopOpt, TagOpt,
                                 curvature_request, trial_options, with_curvature_options)
from harness.cli.output import fmt_s, fmt_steps, print_json, make_table, time_note
from harness.cli.training import (check_chunk_mode, command_line, mirror_report, mlflow_mirror,
                                  parse_single, progress, sweep_with_progress)

CheckpointEveryOpt = Annotated[Optional[str], typer.Option(
    help="checkpoint a trial's state every N steps, or every 90s / 10m / 2h of wall time, at its "
         "next return to the host; off: never (default 10m)", metavar="N|TIME|off")]


@app.command()
@with_curvature_options
def run(
    ctx: typer.Context,
    workload: Annotated[Optional[str], typer.Option(
        help="workload[:knob=value,...], e.g. mnist_mlp:width=200 (required unless --resume)")] = None,
    submission: Annotated[Optional[str], typer.Option(
        help="submission: a built-in name (adam, sgd, ...) or a folder with submission.py (required unless --resume)")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds: 0..N-1 from --seed-start")] = 1,
    seed_start: SeedStartOpt = 0,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    data_source: DataSourceOpt = None,
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value "
                                              "(a grid of values: `curvebench sweep`)")] = [],
    max_steps: MaxStepsOpt = None,
    eval_every: EvalEveryOpt = None,
    chunk_mode: ChunkModeOpt = None,
    stop_at_target: StopOpt = None,
    divergence_factor: DivergenceOpt = None,
    compile_cache: CompileCacheOpt = None,
    tag: TagOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    curvature_flags: CurvatureFlags = None,
    search_point: Annotated[int, typer.Option(min=0, help=(
        "AlgoPerf-format submission with a tuning_search_space.json: use its point K (listed "
        "points in order; ranges: the K-th quasi-random point)"))] = 0,
    checkpoint_every: CheckpointEveryOpt = None,
    checkpoint_dir: Annotated[Optional[str], typer.Option(
        help="checkpoint folder (default: beside a SQLite --db, else "
             "$XDG_CACHE_HOME/curvebench/checkpoints)")] = None,
    keep_checkpoints: Annotated[bool, typer.Option(
        help="keep the checkpoints (and the final state) when the trials finish")] = False,
    resume: Annotated[Optional[str], typer.Option(
        help="continue this killed or interrupted run (id or prefix) from its last checkpoint, "
             "with the unfinished trials of its group", metavar="RUN_ID")] = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Train a submission on one workload for N seeds; print steps and time to target."""
    cadence = _checkpoint_fields(checkpoint_every, checkpoint_dir, keep_checkpoints)
    if resume is not None:
        if workload is not None or submission is not None:
            raise CommandLineError("--resume continues a recorded run with its own workload, "
                                   "submission and options: drop --workload/--submission")
        _resume_run(resume, db, cadence, as_json=as_json, quiet=quiet)
        return
    if workload is None or submission is None:
        raise CommandLineError("run needs --workload and --submission (or --resume RUN_ID)")
    overrides = parse_single(workload, hparam, "run")
    check_chunk_mode(chunk_mode)
    database = open_db(db, create=True)
    from harness.records.sweep import TrialRequest

    config = curvature_request(curvature_flags)
    options = dataclasses.replace(
        trial_options("run", max_steps=max_steps, eval_every=eval_every, chunk_mode=chunk_mode,
                      stop_at_target=stop_at_target, divergence_factor=divergence_factor,
                      tag=tag), **cadence)
    point: dict[str, Any] = {}
    if search_point:  # point 0 is what the folder loads to by default
        from harness.submissions import load_submission

        point = load_submission(submission, search_point=search_point).hparams
    from harness.grid import seed_range

    requests = [TrialRequest(workload, submission, {**point, **overrides}, seed)
                for seed in seed_range(seed_start, seeds)]
    mirror = mlflow_mirror(mlflow, database.url)
    sweep = sweep_with_progress(requests, options, database.url, quiet=quiet or as_json,
                                command=command_line(ctx), data_dir=data_dir,
                                data_source=data_source, curvature=config,
                                compile_cache=compile_cache, mirror=mirror)
    mirror_report(mirror)
    _print_trials(sweep.trials, database.url, as_json)


def _checkpoint_fields(every: str | None, directory: str | None, keep: bool) -> dict[str, Any]:
    """TrialOptions' checkpoint fields the options give (only those given)."""
    fields: dict[str, Any] = {}
    if every is not None:
        from harness.checkpoint import parse_cadence

        try:
            fields["checkpoint_every"], fields["checkpoint_every_s"] = parse_cadence(every)
        except ValueError as e:  # parse_cadence's message names the option and its forms
            raise CommandLineError(str(e)) from None
    if directory is not None:
        if every is not None and fields["checkpoint_every"] is None \
                and fields["checkpoint_every_s"] is None and not keep:
            raise CommandLineError("--checkpoint-dir with --checkpoint-every off: no checkpoint "
                                   "is written, so the folder would be ignored; drop one of them "
                                   "(or add --keep-checkpoints to keep the final state there)")
        fields["checkpoint_dir"] = directory
    if keep:
        fields["keep_checkpoints"] = True
    return fields


def _resume_run(run_id: str, db: str | None, options: dict[str, Any], *, as_json: bool,
                quiet: bool) -> None:
    """`run --resume`: the run's program continues from its checkpoint; say which trials."""
    database = open_db(db, create=True)
    from harness.experiment import resume_run

    with progress(quiet or as_json) as display:
        result = resume_run(run_id, database.url, options=options, on_event=display)
    resumed = [t.result for t in result.trials if t.result.resumed_from_step is not None]
    if not as_json and resumed:
        err.print(f"resumed {len(resumed)} trial(s) from step {resumed[0].resumed_from_step}: "
                  + ", ".join(r.run_id[:8] for r in resumed), highlight=False)
    _print_trials(result.trials, database.url, as_json)


def _print_trials(trials, db_url: str, as_json: bool) -> None:
    """`run`'s output: every trial as JSON, or a table with the median."""
    if as_json:
        print_json([t.to_json() for t in trials])
        return
    from harness.records.sweep import median_or_inf

    rows = make_table(f"{trials[0].result.workload} / {trials[0].result.submission}",
                      ("seed", "status", "steps to target", "time to target (s)", "compile (s)",
                       "group", "chunk mode", "resumed from", "run id"))
    for t in trials:
        r = t.result
        rows.add_row(str(r.seed), r.status, fmt_steps(r.steps_to_target),
                     fmt_s(r.time_to_target_s), _fmt_compile(r.compile_s, t.compile_cache_hit),
                     str(t.group_size), r.chunk_mode,
                     "-" if r.resumed_from_step is None else str(r.resumed_from_step),
                     r.run_id[:8])
    rows.add_row("median", "", fmt_steps(median_or_inf([t.result.steps_to_target for t in trials])),
                 fmt_s(median_or_inf([t.result.time_to_target_s for t in trials])),
                 fmt_s(median_or_inf([t.result.compile_s for t in trials])), "", "", "", "",
                 style="bold")
    out.print(rows)
    time_note(trials)
    out.print(f"results in {db_url}")


def _fmt_compile(seconds: float, hit: bool | None) -> str:
    return f"{seconds:.2f}" + (" (cache hit)" if hit else "")
