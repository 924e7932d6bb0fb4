"""`curvebench sweep`: a grid of workload variants x submissions x hparams x seeds, from the
command line and/or a TOML config file (options given on the command line win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness import grid as grids
from harness.cli.app import CommandLineError, app, open_db, out
from harness.cli.options import (CURVATURE_OPTIONS, ChunkModeOpt, CompileCacheOpt, CurvatureFlags,
                                 DataDirOpt, DataSourceOpt, DbOpt, DivergenceOpt, EvalEveryOpt,
                                 JsonOpt, MaxStepsOpt, MlflowOpt, QuietOpt, SeedStartOpt, StopOpt,
                                 TagOpt, curvature_request, given, trial_options,
                                 with_curvature_options)
from harness.cli.output import fmt_s, fmt_steps, print_json, make_table, time_note
from harness.cli.training import (check_chunk_mode, command_line, mirror_report, mlflow_mirror,
                                  sweep_with_progress)


#: the options of `sweep` that only some executors use: option -> the executors that take it
EXECUTOR_OPTIONS = {"address": ("ray",), "cpus_per_group": ("ray", "submitit"),
                    "gpus_per_group": ("ray", "submitit"), "partition": ("submitit",),
                    "time_limit_min": ("submitit",), "max_retries": ("ray", "submitit")}


@app.command()
@with_curvature_options
def sweep(
    ctx: typer.Context,
    workload: Annotated[list[str], typer.Option(
        help="workload grid NAME[:KNOB=V1|V2,...] ('|' between values, the product over knobs; "
             "repeat to add grids), e.g. 'mnist_mlp:activation=relu|gelu,width=100|200'")] = [],
    submission: Annotated[list[str], typer.Option(help="built-in submission name or folder (repeat for several)")] = [],
    hparam: Annotated[list[str], typer.Option(
        help="hyperparameter grid NAME=V1|V2 (product over options), e.g. 'learning_rate=1e-3|3e-3'")] = [],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="seeds per cell: N from --seed-start (default 1)")] = None,
    seed_start: SeedStartOpt = 0,
    config: Annotated[Optional[Path], typer.Option(
        help="TOML file with the grid and options (see examples/mnist_ablations.toml); "
             "options given here win")] = None,
    name: Annotated[Optional[str], typer.Option(help="name stored with the sweep")] = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    data_source: DataSourceOpt = None,
    max_steps: MaxStepsOpt = None,
    eval_every: EvalEveryOpt = None,
    chunk_mode: ChunkModeOpt = None,
    stop_at_target: StopOpt = None,
    divergence_factor: DivergenceOpt = None,
    compile_cache: CompileCacheOpt = None,
    curvature_flags: CurvatureFlags = None,
    max_group_size: Annotated[Optional[int], typer.Option(
        min=1, help="at most this many trials in one compiled program (default: a whole group; "
                    "1: each trial alone, still compiled once)")] = None,
    share_variants: Annotated[bool, typer.Option(
        help="variants differing only in runtime knobs (mnist_mlp's activation) share one "
             "compiled program: fewer compiles, but stopped trials' steps are still computed")] = False,
    executor: Annotated[str, typer.Option(
        help="where groups run: local (this process), ray (a Ray cluster), submitit (Slurm)")] = "local",
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster address (HOST:PORT, auto, ray://...); none: Ray on this machine")] = None,
    cpus_per_group: Annotated[float, typer.Option(min=0, help="CPUs per Ray task / Slurm task")] = 1,
    gpus_per_group: Annotated[float, typer.Option(min=0, help="GPUs per Ray task / Slurm node")] = 0,
    partition: Annotated[Optional[str], typer.Option(help="Slurm partition (submitit)")] = None,
    time_limit_min: Annotated[int, typer.Option(min=1, help="Slurm job time limit, minutes")] = 60,
    max_retries: Annotated[int, typer.Option(
        min=0, help="resubmissions of a group whose worker was lost (ray, submitit)")] = 3,
    resume: Annotated[Optional[str], typer.Option(
        help="continue this sweep (name or id): its finished trials are kept, the rest run")] = None,
    mlflow: MlflowOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a grid: workload variants x submissions x hyperparameters x seeds, one row per cell.

    Trials sharing a compiled shape run together; every trial is a run row of this sweep.
    """
    from harness.executors import ExecutorKind, ExecutorSettings, make_executor

    try:
        kind = ExecutorKind(executor)
    except ValueError:
        raise CommandLineError(f"unknown --executor {executor!r}; valid: "
                               f"{', '.join(k.value for k in ExecutorKind)}") from None
    unused = [p for p in given(ctx, *EXECUTOR_OPTIONS) if kind.value not in EXECUTOR_OPTIONS[p]]
    if unused:
        names = ", ".join("--" + p.replace("_", "-") for p in unused)
        takes = " or ".join(sorted({k for p in unused for k in EXECUTOR_OPTIONS[p]}))
        raise CommandLineError(f"{names} set(s) the {takes} executor, not --executor "
                               f"{kind.value}, and would be ignored: drop it or give --executor "
                               f"{takes.split(' or ')[0]}")
    runner = make_executor(ExecutorSettings(
        kind=kind, address=address, cpus=cpus_per_group, gpus=gpus_per_group,
        partition=partition, time_limit_min=time_limit_min, max_retries=max_retries))
    plan = grids.plan_sweep(
            grids.load_config(config) if config is not None else grids.SweepConfig(),
            workloads=workload, submissions=submission, hparams=hparam, seeds=seeds,
            seed_start=seed_start, name=name, tag=tag,
            options={"max_steps": max_steps, "eval_every": eval_every, "chunk_mode": chunk_mode,
                     "stop_at_target": stop_at_target, "divergence_factor": divergence_factor,
                     "data_dir": data_dir, "data_source": data_source, "db": db,
                     **curvature_flags, "compile_cache": compile_cache,
                     "max_group_size": max_group_size})
    o = plan.options
    check_chunk_mode(o.get("chunk_mode"))
    database = open_db(o.get("db"), create=True)
    from harness.experiment import requests_for

    try:  # a config file's [options] may hold a value of the wrong type
        curv = curvature_request({k: o.get(k) for k in CURVATURE_OPTIONS})
        options = trial_options("sweep", max_steps=o.get("max_steps"),
                                eval_every=o.get("eval_every"), chunk_mode=o.get("chunk_mode"),
                                stop_at_target=o.get("stop_at_target"),
                                divergence_factor=o.get("divergence_factor"),
                                tag=plan.tag, max_group_size=o.get("max_group_size"),
                                share_variants=share_variants)
    except (TypeError, ValueError) as e:
        raise CommandLineError(str(e)) from e
    if plan.name is not None and resume is None:
        from harness.runs_query import sweeps_named

        taken = sweeps_named(database, plan.name)
        if taken:
            raise CommandLineError(f"--name {plan.name!r} already names sweep {taken[0][:8]} in "
                                   f"{database.url} (or starts its id): choose another name, or "
                                   f"--resume {plan.name} to continue that sweep")
    resumed = None
    if resume is not None:
        from harness.score import resolve_sweep

        resumed = resolve_sweep(database, resume)
    mirror = mlflow_mirror(mlflow, database.url)
    result = sweep_with_progress(
        requests_for(plan.workloads, plan.submissions, plan.hparams, plan.seeds), options,
        database.url, quiet=quiet or as_json, name=plan.name, command=command_line(ctx),
        data_dir=o.get("data_dir"), data_source=o.get("data_source"), curvature=curv,
        compile_cache=o.get("compile_cache"), executor=runner, resume=resumed, mirror=mirror)
    mirror_report(mirror)
    if as_json:
        print_json([t.to_json() for t in result.trials])
        return
    varying = grids.grid_axes([c.hparams for c in result.cells()])
    rows = make_table(f"sweep {result.name or result.sweep_id[:8]}: {len(result.trials)} trials",
                      ("workload", "submission", *varying, "reached", "median steps",
                       "[min-max] steps", "median time (s)", "group"))
    for c in result.cells():
        span = "-" if c.min_steps is None else f"[{c.min_steps}-{c.max_steps}]"
        rows.add_row(c.workload, c.submission, *(str(c.hparams.get(k)) for k in varying),
                     f"{c.reached}/{c.seeds}", fmt_steps(c.median_steps), span,
                     fmt_s(c.median_time_s), ",".join(str(g) for g in c.group_sizes))
    out.print(rows)
    if result.dropped_duplicates:
        out.print(f"{result.dropped_duplicates} trials repeated earlier cells and ran once",
                  highlight=False)
    time_note(result.trials)
    out.print(f"sweep {result.sweep_id} in {database.url}", highlight=False)

