"""The `curvebench` command line: parse, call the harness, print (tables or --json).

Only typer and rich are imported at start-up: JAX, Flax, SQLAlchemy, the runner and the
workloads are imported inside the commands that need them, so `--help` and malformed input
answer at once. Training goes through the experiment layer (harness.experiment.run_sweep).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from harness import grid as grids

if TYPE_CHECKING:
    from harness.db import Database
    from harness.records.sweep import CurvatureRequest, SweepResult

app = typer.Typer(help="curvebench: score training algorithms, check reruns, record curvature. "
                  "Any failure prints one line `error: ...` (exit 2: bad input; 3: internal); "
                  "--debug (or CURVEBENCH_DEBUG=1) before or after the command adds the traceback.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Results database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

#: defaults of the library, repeated here so that --help needs no JAX import; tests/test_cli.py
#: checks each against its source (harness.runner, harness.curvature)
CHUNK_MODES = ("auto", "scan", "unroll", "step")
DIVERGENCE_FACTOR = 1e5
CURVATURE_EVERY = "init,log:4:1000,every:1000"

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path "
                                              "(default $CURVEBENCH_DB, else ./curvebench.db)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
QuietOpt = Annotated[bool, typer.Option(help="no progress output: only the results and errors")]
DataDirOpt = Annotated[Optional[str], typer.Option(help="directory with the dataset files")]
DataSourceOpt = Annotated[Optional[str], typer.Option(help="dataset source (workload-specific)")]
MaxStepsOpt = Annotated[Optional[int], typer.Option(min=1, help="step budget (default: the workload's)")]
EvalEveryOpt = Annotated[Optional[int], typer.Option(
    min=1, help="steps between evals (default: the workload's)")]
ChunkModeOpt = Annotated[Optional[str], typer.Option(help=f"one of {', '.join(CHUNK_MODES)} (default auto)")]
StopOpt = Annotated[Optional[bool], typer.Option(
    "--stop-at-target/--no-stop-at-target",
    help="stop at the first eval that meets the target (default), or train the whole budget and "
         "still record the first step that met it")]
DivergenceOpt = Annotated[Optional[float], typer.Option(
    min=0.0, help=f"diverged when the training loss exceeds K x its step-0 loss (default "
                  f"{DIVERGENCE_FACTOR:g}, the rule of Kalra & Barkeshli 2023); 0: only a "
                  "non-finite loss diverges", metavar="K")]
CompileCacheOpt = Annotated[Optional[str], typer.Option(
    help="persistent compilation cache directory, or 'off' (default $CURVEBENCH_COMPILE_CACHE, "
         "else $XDG_CACHE_HOME/curvebench/jax)", metavar="DIR|off")]
# Curvature options, shared by every command that trains; harness.curvature.settings owns their
# meaning and defaults (None here: not given, so a sweep's config file may set them).
CurvatureOpt = Annotated[Optional[str], typer.Option(
    help="curvature snapshots: comma-separated hessian, ggn, cov (each may be KIND@PARAM_PATTERN)")]
CurvatureEveryOpt = Annotated[Optional[str], typer.Option(
    help=f"snapshot steps: init | every:N | log:K:END | at:S1/S2, comma-separated "
         f"(default {CURVATURE_EVERY})")]
CurvatureBatchOpt = Annotated[Optional[str], typer.Option(
    help="examples in the fixed curvature batch, or 'all' (the whole split, in one product; "
         "default 2048)")]
CurvatureSplitOpt = Annotated[Optional[str], typer.Option(
    help="split the curvature batch comes from (default train)")]
LanczosOrderOpt = Annotated[Optional[str], typer.Option(
    help="Lanczos steps per snapshot (default 20), or auto[:CAP]: until the top-10 Ritz values converge")]
LanczosProbesOpt = Annotated[Optional[int], typer.Option(
    min=1, help="Lanczos probes (SLQ density, PNR; default 1)")]
RitzTolOpt = Annotated[Optional[float], typer.Option(
    min=0.0, help="Ritz residual / |θ| below which a value converged (default 1e-3)")]
TraceOpt = Annotated[Optional[str], typer.Option(
    help="trace estimator for TER-K: krylov | hutchpp | hutchinson (default krylov)")]
TraceProbesOpt = Annotated[Optional[int], typer.Option(
    min=0, help="trace estimator probes/products (0: none; default 10)")]
CovBatchesOpt = Annotated[Optional[int], typer.Option(min=2, help="L: mini-batch gradients for cov (default 25)")]
CovBatchSizeOpt = Annotated[Optional[str], typer.Option(
    help="M: examples per cov mini-batch (keep fixed when comparing batch sizes), or 'train' "
         "(default 128)")]
CurvatureVectorsOpt = Annotated[Optional[int], typer.Option(
    min=0, help="store the top K Ritz vectors of each hessian/ggn snapshot (float32; default 0: none)",
    metavar="K")]
CovCenteredOpt = Annotated[Optional[bool], typer.Option(
    "--cov-centered/--cov-uncentered", help="cov spectrum of the centered K, not Σ (default uncentered)")]
#: command-line option name -> harness.curvature.settings.CurvatureOptions field
CURVATURE_OPTIONS = {"curvature": "kinds", "curvature_every": "every", "curvature_batch": "batch",
                     "curvature_split": "split", "lanczos_order": "lanczos_order",
                     "lanczos_probes": "probes", "ritz_tol": "ritz_tol", "trace": "trace",
                     "trace_probes": "trace_probes", "cov_batches": "cov_batches",
                     "cov_batch_size": "cov_batch_size", "cov_centered": "cov_centered",
                     "curvature_vectors": "ritz_vectors"}


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _open(db: str | None) -> Database:
    from harness.db import DatabaseError, open_database

    try:
        return open_database(db)
    except DatabaseError as e:
        _fail(str(e))


def _table(title: str, columns: tuple[str, ...] | list[str]):
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _fmt_s(x: float | None) -> str:
    return "-" if x is None or math.isinf(x) else f"{x:.2f}"


def _fmt_steps(x: float | None) -> str:
    return "-" if x is None or math.isinf(x) else f"{x:g}"


def _median(values: list[float | None]) -> float:
    """Median with None (a miss) counted as +inf."""
    from harness import score as scoring

    return scoring.median_or_inf(values)


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _jsonable(obj):
    """Replace non-finite floats (misses as infinity) by null: JSON has no Infinity."""
    if isinstance(obj, float):
        return _finite_or_none(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _command_line(ctx: typer.Context) -> str:
    """The running command with the options it was given, as stored with the sweep row."""
    import shlex

    parts = ["curvebench", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        flag = [] if param.param_type_name == "argument" else [param.opts[0]]
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is True:
                parts += flag
            elif v is False and param.secondary_opts:
                parts.append(param.secondary_opts[0])
            elif v not in (None, False):
                parts += [*flag, shlex.quote(str(v))]
    return " ".join(parts)


def _trial_options(origin: str, *, max_steps: int | None = None, eval_every: int | None = None,
                   chunk_mode: str | None = None, stop_at_target: bool | None = None,
                   divergence_factor: float | None = None, tag: str | None = None,
                   max_group_size: int | None = None, share_variants: bool = False):
    from harness.db import RunOrigin
    from harness.records.trial import TrialOptions

    fields: dict[str, Any] = {"origin": RunOrigin(origin), "tag": tag, "max_steps": max_steps,
                              "eval_every": eval_every, "max_group_size": max_group_size,
                              "share_variants": share_variants}
    if chunk_mode is not None:
        fields["chunk_mode"] = chunk_mode
    if stop_at_target is not None:
        fields["stop_at_target"] = stop_at_target
    if divergence_factor is not None:
        fields["divergence_factor"] = divergence_factor or None
    return TrialOptions(**fields)


def _curvature_request(given: dict[str, Any]) -> CurvatureRequest | None:
    """The curvature options given (CURVATURE_OPTIONS names; None: not given) as a request
    for run_sweep; None without --curvature. SpecError if a setting is invalid."""
    if not given.get("curvature"):
        return None
    from harness.curvature.settings import CurvatureOptions
    from harness.records.sweep import CurvatureRequest

    options = CurvatureOptions(**{CURVATURE_OPTIONS[k]: v for k, v in given.items()
                                  if v is not None})
    return CurvatureRequest(config=options.config().to_json(), every=options.every)


def _check_chunk_mode(chunk_mode: str | None) -> None:
    if chunk_mode is not None and chunk_mode not in CHUNK_MODES:
        _fail(f"unknown chunk mode {chunk_mode!r}; valid: {', '.join(CHUNK_MODES)}")


def _progress(quiet: bool):
    """The sweep's progress display on stderr: bars on a terminal, plain lines in a log,
    nothing with --quiet (harness.progress_display)."""
    from harness.progress_display import Mode, ProgressDisplay

    return ProgressDisplay(err, Mode.choose(quiet, err))


def _sweep(requests, options, db_url: str, *, quiet: bool, mirror=None, **kwargs) -> SweepResult:
    """run_sweep with progress bars (and each finished trial mirrored to MLflow when `mirror`
    is given); bad input (unknown workload, knob, hparam, data) exits 2."""
    from harness.curvature import ScheduleError
    from harness.experiment import run_sweep
    from harness.spec import DataUnavailable, SpecError

    try:
        with _progress(quiet) as progress:
            return run_sweep(requests, options, db_url, on_event=_also_mirrored(progress, mirror),
                             **kwargs)
    except (SpecError, DataUnavailable, ScheduleError) as e:
        _fail(str(e))


MlflowOpt = Annotated[Optional[str], typer.Option(
    "--mlflow", metavar="URI", help="also mirror each finished run (params, hparams, eval and "
    "loss curves, curvature, tags) to this MLflow tracking URI, e.g. sqlite:///mlflow.db or "
    "http://host:5000 (pip install -e '.\\[mlflow]')")]


def _mlflow_mirror(uri: str | None, db_url: str):
    """The MLflow mirror for --mlflow URI (None without it); a URI MLflow refuses exits 2
    before anything trains."""
    if uri is None:
        return None
    from harness.tracking.mlflow import MlflowMirror, TrackingError

    try:
        return MlflowMirror(uri, db_url)
    except TrackingError as e:
        _fail(str(e))


def _also_mirrored(progress, mirror):
    """A sweep's event callback: the progress display, and each finished group's trials
    mirrored to MLflow when a mirror is given."""
    if mirror is None:
        return progress

    def on_event(event) -> None:
        progress(event)
        mirror(event)
    return on_event


def _mirror_report(mirror, run_ids=()) -> None:
    """Mirror `run_ids` too (runs already mirrored are skipped) and say what went where."""
    if mirror is None:
        return
    for run_id in run_ids:
        mirror.mirror_safely(run_id)
    for run_id, why in mirror.failures:
        err.print(f"[yellow]warning:[/] run {run_id[:8]} not mirrored to MLflow: {why} (it is in "
                  f"the results database; `curvebench runs --mlflow URI ...` retries)",
                  highlight=False)
    err.print(f"{len(mirror.mirrored)} runs mirrored to MLflow {mirror.uri} (experiment "
              f"{mirror.experiment})", highlight=False)


def _parse_single(workload: str, hparam: list[str], command: str) -> dict[str, Any]:
    try:
        grids.single_values([workload, *hparam], command)
        [overrides] = grids.parse_hparam_grid(hparam)
    except grids.GridError as e:
        _fail(str(e))
    return overrides


CheckpointEveryOpt = Annotated[Optional[str], typer.Option(
    help="checkpoint a trial's state every N steps, or every 90s / 10m / 2h of wall time, at its "
         "next return to the host; off: never (default 10m)", metavar="N|TIME|off")]


@app.command()
def run(
    ctx: typer.Context,
    workload: Annotated[Optional[str], typer.Option(
        help="workload[:knob=value,...], e.g. mnist_mlp:width=200 (required unless --resume)")] = None,
    submission: Annotated[Optional[str], typer.Option(
        help="submission: a built-in name (adam, sgd, ...) or a folder with submission.py (required unless --resume)")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="number of seeds: 0..N-1 from --seed-start")] = 1,
    seed_start: Annotated[int, typer.Option(min=0, help="first seed")] = 0,
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
    tag: Annotated[Optional[str], typer.Option(help="label stored with every run")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    curvature: CurvatureOpt = None,
    curvature_every: CurvatureEveryOpt = None,
    curvature_batch: CurvatureBatchOpt = None,
    curvature_split: CurvatureSplitOpt = None,
    lanczos_order: LanczosOrderOpt = None,
    lanczos_probes: LanczosProbesOpt = None,
    ritz_tol: RitzTolOpt = None,
    trace: TraceOpt = None,
    trace_probes: TraceProbesOpt = None,
    cov_batches: CovBatchesOpt = None,
    cov_batch_size: CovBatchSizeOpt = None,
    cov_centered: CovCenteredOpt = None,
    curvature_vectors: CurvatureVectorsOpt = None,
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
            _fail("--resume continues a recorded run with its own workload, submission and "
                  "options: drop --workload/--submission")
        _resume_run(resume, db, cadence, as_json=as_json, quiet=quiet)
        return
    if workload is None or submission is None:
        _fail("run needs --workload and --submission (or --resume RUN_ID)")
    overrides = _parse_single(workload, hparam, "run")
    _check_chunk_mode(chunk_mode)
    database = _open(db)
    from harness.records.sweep import TrialRequest
    from harness.spec import SpecError

    try:
        config = _curvature_request(dict(
            curvature=curvature, curvature_every=curvature_every, curvature_batch=curvature_batch,
            curvature_split=curvature_split, lanczos_order=lanczos_order,
            lanczos_probes=lanczos_probes, ritz_tol=ritz_tol, trace=trace,
            trace_probes=trace_probes, cov_batches=cov_batches, cov_batch_size=cov_batch_size,
            cov_centered=cov_centered, curvature_vectors=curvature_vectors))
    except SpecError as e:
        _fail(str(e))
    options = dataclasses.replace(
        _trial_options("run", max_steps=max_steps, eval_every=eval_every, chunk_mode=chunk_mode,
                       stop_at_target=stop_at_target, divergence_factor=divergence_factor,
                       tag=tag), **cadence)
    point: dict[str, Any] = {}
    if search_point:  # point 0 is what the folder loads to by default
        from harness.submissions import load_submission

        try:
            point = load_submission(submission, search_point=search_point).hparams
        except SpecError as e:
            _fail(str(e))
    requests = [TrialRequest(workload, submission, {**point, **overrides}, seed)
                for seed in range(seed_start, seed_start + seeds)]
    mirror = _mlflow_mirror(mlflow, database.url)
    sweep = _sweep(requests, options, database.url, quiet=quiet or as_json,
                   command=_command_line(ctx), data_dir=data_dir, data_source=data_source,
                   curvature=config, compile_cache=compile_cache, mirror=mirror)
    _mirror_report(mirror)
    _print_trials(sweep.trials, database.url, as_json)


def _checkpoint_fields(every: str | None, directory: str | None, keep: bool) -> dict[str, Any]:
    """TrialOptions' checkpoint fields the options give (only those given)."""
    fields: dict[str, Any] = {}
    if every is not None:
        from harness.checkpoint import parse_cadence

        try:
            fields["checkpoint_every"], fields["checkpoint_every_s"] = parse_cadence(every)
        except ValueError as e:
            _fail(str(e))
    if directory is not None:
        fields["checkpoint_dir"] = directory
    if keep:
        fields["keep_checkpoints"] = True
    return fields


def _resume_run(run_id: str, db: str | None, options: dict[str, Any], *, as_json: bool,
                quiet: bool) -> None:
    """`run --resume`: the run's program continues from its checkpoint; say which trials."""
    database = _open(db)
    from harness.experiment import resume_run
    from harness.spec import DataUnavailable, SpecError

    try:
        with _progress(quiet or as_json) as progress:
            result = resume_run(run_id, database.url, options=options, on_event=progress)
    except (SpecError, DataUnavailable) as e:
        _fail(str(e))
    resumed = [t.result for t in result.trials if t.result.resumed_from_step is not None]
    if not as_json and resumed:
        err.print(f"resumed {len(resumed)} trial(s) from step {resumed[0].resumed_from_step}: "
                  + ", ".join(r.run_id[:8] for r in resumed), highlight=False)
    _print_trials(result.trials, database.url, as_json)


def _print_trials(trials, db_url: str, as_json: bool) -> None:
    """`run`'s output: every trial as JSON, or a table with the median."""
    if as_json:
        print(json.dumps(_jsonable([t.to_json() for t in trials]), indent=2))
        return
    table = _table(f"{trials[0].result.workload} / {trials[0].result.submission}",
                   ("seed", "status", "steps to target", "time to target (s)", "compile (s)",
                    "group", "chunk mode", "resumed from", "run id"))
    for t in trials:
        r = t.result
        table.add_row(str(r.seed), r.status, _fmt_steps(r.steps_to_target),
                      _fmt_s(r.time_to_target_s), _fmt_compile(r.compile_s, t.compile_cache_hit),
                      str(t.group_size), r.chunk_mode,
                      "-" if r.resumed_from_step is None else str(r.resumed_from_step),
                      r.run_id[:8])
    table.add_row("median", "", _fmt_steps(_median([t.result.steps_to_target for t in trials])),
                  _fmt_s(_median([t.result.time_to_target_s for t in trials])),
                  _fmt_s(_median([t.result.compile_s for t in trials])), "", "", "", "",
                  style="bold")
    out.print(table)
    _time_note(trials)
    out.print(f"results in {db_url}")


def _fmt_compile(seconds: float, hit: bool | None) -> str:
    return f"{seconds:.2f}" + (" (cache hit)" if hit else "")


def _time_note(trials) -> None:
    if any((t.group_size or 1) > 1 for t in trials):
        out.print("time to target of a trial in a group > 1 is its group's training time "
                  "(score counts only trials timed alone)", highlight=False)


@app.command()
def sweep(
    ctx: typer.Context,
    workload: Annotated[list[str], typer.Option(
        help="workload grid NAME[:KNOB=V1|V2,...] ('|' between values, the product over knobs; "
             "repeat to add grids), e.g. 'mnist_mlp:activation=relu|gelu,width=100|200'")] = [],
    submission: Annotated[list[str], typer.Option(help="built-in submission name or folder (repeat for several)")] = [],
    hparam: Annotated[list[str], typer.Option(
        help="hyperparameter grid NAME=V1|V2 (product over options), e.g. 'learning_rate=1e-3|3e-3'")] = [],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="seeds per cell: N from --seed-start (default 1)")] = None,
    seed_start: Annotated[int, typer.Option(min=0, help="first seed")] = 0,
    config: Annotated[Optional[Path], typer.Option(
        help="TOML file with the grid and options (see examples/mnist_ablations.toml); "
             "options given here win")] = None,
    name: Annotated[Optional[str], typer.Option(help="name stored with the sweep")] = None,
    tag: Annotated[Optional[str], typer.Option(help="label stored with every run")] = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    data_source: DataSourceOpt = None,
    max_steps: MaxStepsOpt = None,
    eval_every: EvalEveryOpt = None,
    chunk_mode: ChunkModeOpt = None,
    stop_at_target: StopOpt = None,
    divergence_factor: DivergenceOpt = None,
    compile_cache: CompileCacheOpt = None,
    curvature: CurvatureOpt = None,
    curvature_every: CurvatureEveryOpt = None,
    curvature_batch: CurvatureBatchOpt = None,
    curvature_split: CurvatureSplitOpt = None,
    lanczos_order: LanczosOrderOpt = None,
    lanczos_probes: LanczosProbesOpt = None,
    ritz_tol: RitzTolOpt = None,
    trace: TraceOpt = None,
    trace_probes: TraceProbesOpt = None,
    cov_batches: CovBatchesOpt = None,
    cov_batch_size: CovBatchSizeOpt = None,
    cov_centered: CovCenteredOpt = None,
    curvature_vectors: CurvatureVectorsOpt = None,
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
    from harness.executors import ExecutorError, ExecutorKind, ExecutorSettings, make_executor

    try:
        runner = make_executor(ExecutorSettings(
            kind=ExecutorKind(executor), address=address, cpus=cpus_per_group,
            gpus=gpus_per_group, partition=partition, time_limit_min=time_limit_min,
            max_retries=max_retries))
    except ValueError:
        _fail(f"unknown --executor {executor!r}; valid: {', '.join(k.value for k in ExecutorKind)}")
    except ExecutorError as e:
        _fail(str(e))
    try:
        cfg = grids.load_config(config) if config is not None else grids.SweepConfig()
        specs = grids.parse_workload_list(workload) or list(cfg.workloads)
        hparams = grids.parse_hparam_grid(hparam) if hparam else list(cfg.hparams)
    except grids.GridError as e:
        _fail(str(e))
    subs = list(submission) or list(cfg.submissions)
    if not specs:
        _fail(f"no workload: give --workload {grids.WORKLOAD_FORM!r} or a --config file")
    if not subs:
        _fail("no submission: give --submission FOLDER (repeat for several) or a --config file")
    seed_list = (tuple(range(seed_start, seed_start + seeds)) if seeds is not None
                 else cfg.seeds or (seed_start,))
    given = {"max_steps": max_steps, "eval_every": eval_every, "chunk_mode": chunk_mode,
             "stop_at_target": stop_at_target, "divergence_factor": divergence_factor,
             "data_dir": data_dir, "data_source": data_source, "db": db,
             "curvature": curvature, "curvature_every": curvature_every,
             "curvature_batch": curvature_batch, "curvature_split": curvature_split,
             "lanczos_order": lanczos_order, "lanczos_probes": lanczos_probes,
             "ritz_tol": ritz_tol, "trace": trace, "trace_probes": trace_probes,
             "cov_batches": cov_batches, "cov_batch_size": cov_batch_size,
             "cov_centered": cov_centered, "curvature_vectors": curvature_vectors,
             "compile_cache": compile_cache,
             "max_group_size": max_group_size}
    o = {**cfg.options, **{k: v for k, v in given.items() if v is not None}}
    _check_chunk_mode(o.get("chunk_mode"))
    database = _open(o.get("db"))
    from harness.experiment import requests_for
    from harness.spec import SpecError

    try:
        curv = _curvature_request({k: o.get(k) for k in CURVATURE_OPTIONS})
        options = _trial_options("sweep", max_steps=o.get("max_steps"),
                                 eval_every=o.get("eval_every"), chunk_mode=o.get("chunk_mode"),
                                 stop_at_target=o.get("stop_at_target"),
                                 divergence_factor=o.get("divergence_factor"),
                                 tag=tag or cfg.tag, max_group_size=o.get("max_group_size"),
                                 share_variants=share_variants)
    except (SpecError, TypeError, ValueError) as e:
        _fail(str(e))
    resumed = None
    if resume is not None:
        from harness.score import SelectionError, resolve_sweep

        try:
            resumed = resolve_sweep(database, resume)
        except SelectionError as e:
            _fail(str(e))
    mirror = _mlflow_mirror(mlflow, database.url)
    result = _sweep(requests_for(specs, subs, hparams, seed_list), options, database.url,
                    quiet=quiet or as_json, name=name or cfg.name, command=_command_line(ctx),
                    data_dir=o.get("data_dir"), data_source=o.get("data_source"),
                    curvature=curv, compile_cache=o.get("compile_cache"), executor=runner,
                    resume=resumed, mirror=mirror)
    _mirror_report(mirror)
    if as_json:
        print(json.dumps(_jsonable([t.to_json() for t in result.trials]), indent=2))
        return
    varying = _varying_hparams([c.hparams for c in result.cells()])
    table = _table(f"sweep {result.name or result.sweep_id[:8]}: {len(result.trials)} trials",
                   ("workload", "submission", *varying, "reached", "median steps",
                    r"\[min-max] steps", "median time (s)", "group"))
    for c in result.cells():
        span = "-" if c.min_steps is None else f"[{c.min_steps}-{c.max_steps}]"
        table.add_row(c.workload, c.submission, *(str(c.hparams.get(k)) for k in varying),
                      f"{c.reached}/{c.seeds}", _fmt_steps(c.median_steps), span,
                      _fmt_s(c.median_time_s), ",".join(str(g) for g in c.group_sizes))
    out.print(table)
    if result.dropped_duplicates:
        out.print(f"{result.dropped_duplicates} trials repeated earlier cells and ran once",
                  highlight=False)
    _time_note(result.trials)
    out.print(f"sweep {result.sweep_id} in {database.url}", highlight=False)


def _varying_hparams(hparams: list[dict[str, Any]]) -> list[str]:
    """Hyperparameter names whose value differs between cells (the grid's axes)."""
    keys = dict.fromkeys(k for h in hparams for k in h)
    return [k for k in keys if len({json.dumps(h.get(k), default=str) for h in hparams}) > 1]


@app.command("score")
def score_cmd(
    ctx: typer.Context,
    submission: Annotated[str, typer.Argument(help="built-in submission name (adam, sgd, ...) or folder")],
    workloads: Annotated[list[str], typer.Option(
        help="workload variants: repeat the option or separate them with ';' (',' separates one "
             "variant's knobs), e.g. 'mnist_mlp:width=200,activation=gelu;fashion_mnist_mlp' "
             "(default: every registered workload whose data is here, toy problems excepted)")] = [],
    seeds: Annotated[int, typer.Option(min=1)] = 3,
    db: DbOpt = None,
    data_dir: Annotated[Optional[str], typer.Option(help="dataset directory (single-workload scoring)")] = None,
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")] = [],
    compile_cache: CompileCacheOpt = None,
    sweep: Annotated[Optional[str], typer.Option(
        help="score the runs of this sweep (name or id) instead of training")] = None,
    tag: Annotated[Optional[str], typer.Option(
        help="tag the runs made now, and compare only runs with this tag")] = None,
    origins: Annotated[str, typer.Option(
        help="which runs to compare (no --sweep/--tag): comma-separated origins among "
             "score, run, sweep, check, analysis")] = "score",
    timing: Annotated[str, typer.Option(
        help="which time-to-target to compare: 'training' (training steps only) or 'algoperf' "
             "(AlgoPerf's: + compilation and prepare_for_eval; see harness/score.py)")] = "training",
    mlflow: MlflowOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The main job: run a submission on each workload (each trial timed alone), then score
    it against the database.

    Compares declared sets of runs: by default those `score` made (all seeds of one
    code+hparams per submission), or a --sweep, or a --tag; prints where each time comes from.
    """
    try:
        specs = grids.parse_workload_list(workloads)
    except grids.GridError as e:
        _fail(str(e))
    overrides = _parse_single("", hparam, "score")
    database = _open(db)
    from harness import score as scoring
    from harness.db import RunOrigin
    from harness.experiment import available_workloads, requests_for
    from workloads import REGISTRY

    try:
        chosen = tuple(RunOrigin(o.strip()) for o in origins.split(",") if o.strip())
    except ValueError as e:
        _fail(f"--origins: {e}; valid: {', '.join(o.value for o in RunOrigin)}")
    try:
        sweep_id = scoring.resolve_sweep(database, sweep) if sweep else None
    except scoring.SelectionError as e:
        _fail(str(e))
    selection = scoring.RunSelection(origins=chosen, sweep_id=sweep_id, tag=tag)
    try:
        clock = scoring.Timing(timing)
    except ValueError:
        _fail(f"--timing {timing!r}: valid: {', '.join(t.value for t in scoring.Timing)}")
    skipped: dict[str, str] = {}
    per_workload: dict[str, list] = {}
    mirror = _mlflow_mirror(mlflow, database.url)
    if sweep:
        identity = scoring.selected_variants(database, selection)
        name = Path(submission).name
    else:
        if not specs:
            specs, skipped = available_workloads(
                sorted(n for n, cls in REGISTRY.items() if cls.scored_by_default), data_dir)
            for skipped_name, why in skipped.items():
                err.print(f"[yellow]skipping {skipped_name}:[/] {why}", highlight=False)
        if not specs:
            _fail("no workload to score: none has its data here (see the messages above)")
        result = _sweep(requests_for(specs, [submission], [overrides], range(seeds)),
                        _trial_options("score", tag=tag), database.url, quiet=quiet or as_json,
                        command=_command_line(ctx), data_dir=data_dir, timed_alone=True,
                        compile_cache=compile_cache, mirror=mirror)
        for t in result.trials:
            per_workload.setdefault(t.result.workload, []).append(t.result)
        identity = {}
        for results in per_workload.values():
            run = database.get_run(results[0].run_id)
            identity[run.variant] = (run.workload_version, run.data_fingerprint)
        name = result.trials[0].result.submission
    if not identity:
        _fail(f"no finished runs of {selection.describe()} in {database.url}")
    variants = list(identity)
    compared = scoring.compared_runs(database, identity, selection, clock)
    times = {sub: {v: rs.time_s for v, rs in per.items()} for sub, per in compared.items()}
    scores = scoring.performance_profile_scores(times, variants)
    rows = []
    for variant, results in per_workload.items():
        rows.append({"workload": variant, "seeds": len(results),
                     "reached": sum(r.status == "reached" for r in results),
                     "median_steps_to_target": _median([r.steps_to_target for r in results]),
                     "median_time_to_target_s": _median([r.time_to_target_s for r in results]),
                     "run_ids": [r.run_id for r in results]})
    sources = [rs for per in compared.values() for rs in per.values()]
    _mirror_report(mirror, [run_id for rs in sources for run_id in rs.run_ids])
    if as_json:
        payload = {"submission": name, "workloads": rows, "skipped": skipped,
                   "compared": {"selection": selection.describe(),
                                "sets": [rs.to_json() for rs in sources]},
                   "performance_profile": {"tau_max": scoring.TAU_MAX, "timing": clock.value,
                                           "scores": scores,
                                           "times": times}}
        print(json.dumps(_jsonable(payload), indent=2))
        return
    if rows:
        table = _table(f"score: {name}", ("workload", "reached", "median steps to target",
                                           "median time to target (s)"))
        for row in rows:
            table.add_row(row["workload"], f"{row['reached']}/{row['seeds']}",
                          _fmt_steps(row["median_steps_to_target"]),
                          _fmt_s(row["median_time_to_target_s"]))
        out.print(table)
    compared_table = _table(f"{clock.value} times compared ({selection.describe()}; one code+hparams per "
                            "submission, one run per seed)",
                            ("submission", "workload", "median time (s)", "seeds", "code", "hparams",
                             "runs"))
    for rs in sorted(sources, key=lambda rs: (rs.variant, rs.submission)):
        compared_table.add_row(rs.submission, rs.variant, _fmt_s(rs.time_s), str(len(rs.seeds)),
                               rs.submission_hash[:8], json.dumps(rs.hparams, sort_keys=True),
                               ", ".join(r[:8] for r in rs.run_ids))
    out.print(compared_table)
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
def tune(
    ctx: typer.Context,
    submission: Annotated[str, typer.Argument(help="AlgoPerf-format submission folder "
                                              "(submission.py + tuning_search_space.json)")],
    workloads: Annotated[list[str], typer.Option(
        help="workload variants: repeat the option or separate them with ';'")] = [],
    trials: Annotated[int, typer.Option(min=1, help="search-space points per study")] = 5,
    studies: Annotated[int, typer.Option(min=1, help="studies (study s: trial seed s, points "
                                         "drawn under search seed + s)")] = 1,
    search_seed: Annotated[int, typer.Option(min=0, help="seed of the quasi-random points")] = 0,
    timing: Annotated[str, typer.Option(help="'algoperf' (AlgoPerf's time-to-target) or 'training'")] = "algoperf",
    max_steps: MaxStepsOpt = None,
    eval_every: EvalEveryOpt = None,
    tag: Annotated[str, typer.Option(help="runs of study s are tagged TAG-studyS")] = "tune",
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """AlgoPerf's external-tuning ruleset: per study, N points of the search space trained once
    each (timed alone); per workload the fastest trial of each study, the median over studies,
    and performance-profile scores by the suite's exact integral and AlgoPerf's trapezoid rule."""
    try:
        specs = grids.parse_workload_list(workloads)
    except grids.GridError as e:
        _fail(str(e))
    database = _open(db)
    from harness.algoperf.tuning import tune as run_tuning
    from harness.spec import SpecError

    def run_study(requests, study):
        return _sweep(requests, _trial_options("sweep", max_steps=max_steps, eval_every=eval_every,
                                               tag=f"{tag}-{study}"),
                      database.url, quiet=quiet or as_json, command=_command_line(ctx),
                      name=f"{tag}-{study}", data_dir=data_dir, timed_alone=True)

    try:
        result = run_tuning(submission, specs, trials, studies, run_study, timing=timing,
                            search_seed=search_seed)
    except SpecError as e:
        _fail(str(e))
    if as_json:
        print(json.dumps(_jsonable(result.to_json()), indent=2))
        return
    table = _table(f"tune: {result.submission} ({timing} time; {studies} studies x {trials} trials)",
                   ("workload", "fastest trial per study (s)", "median over studies (s)"))
    for w, per_study in result.study_times.items():
        table.add_row(w, ", ".join(_fmt_s(t) for t in per_study),
                      _fmt_s(result.times[result.submission][w]))
    out.print(table)
    prof = _table("performance-profile score (suite: exact integral; AlgoPerf: trapezoid rule)",
                  ("submission", "suite", "AlgoPerf"))
    for sub, value in result.suite_scores.items():
        prof.add_row(sub, f"{value:.3f}", f"{result.algoperf_scores[sub]:.3f}")
    out.print(prof)
    out.print(f"results in {database.url} (tags {tag}-study0..{studies - 1})")


# -- finding, showing, comparing and exporting stored runs --------------------------------

runs_app = typer.Typer(help="List stored runs (filters below), or `runs show RUN_ID` for one.",
                       invoke_without_command=True)
app.add_typer(runs_app, name="runs")
WorkloadFilterOpt = Annotated[Optional[str], typer.Option(
    "--workload", help="workload name or variant, e.g. mnist_mlp or mnist_mlp:width=200")]
VariantFilterOpt = Annotated[Optional[str], typer.Option(
    "--variant", help="exactly this workload variant (knob order and defaults do not matter)")]
SubmissionFilterOpt = Annotated[Optional[str], typer.Option(
    "--submission", help="submission name or folder")]
StatusFilterOpt = Annotated[Optional[str], typer.Option(
    "--status", help="reached, not_reached, diverged, failed, interrupted or running")]
OriginFilterOpt = Annotated[Optional[str], typer.Option(
    "--origin", help="the command that made the runs: run, sweep, score, check, analysis")]
SweepFilterOpt = Annotated[Optional[str], typer.Option("--sweep", help="sweep name or id")]
TagFilterOpt = Annotated[Optional[str], typer.Option("--tag", help="runs with this tag")]
#: the run columns `curvebench runs --json` prints besides hparams
RUN_LIST_FIELDS = ("id", "workload", "variant", "submission", "seed", "status", "steps_to_target",
                   "time_to_target_s", "compile_s", "group_size", "origin", "tag", "sweep_id",
                   "backend", "started_at")


def _num(x: Any) -> str:
    """A number to read: ints as they are, floats to 3 significant digits, '—' if missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return "inf" if math.isinf(x) else f"{x:.3g}"


def _hparams_text(hparams: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{k}={_num(hparams[k]) if k in hparams else '—'}" for k in names)


def _run_filter(**given: Any):
    from harness.runs_query import RunFilter

    return RunFilter(**given)


def _query(call):
    """Run a library query; bad input (unknown run, filter, side) is a one-line error."""
    from harness.errors import UserError

    try:
        return call()
    except UserError as e:
        _fail(str(e))


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

    database = _open(db)
    filters = _run_filter(workload=workload, variant=variant, submission=submission,
                          status=status, origin=origin, sweep=sweep, tag=tag)
    rows = _query(lambda: find_runs(database, filters))
    if mlflow is not None:
        _mirror_report(_mlflow_mirror(mlflow, database.url), [r.id for r in rows])
    if as_json:
        print(json.dumps(_jsonable([{**{f: getattr(r, f) for f in RUN_LIST_FIELDS},
                                     "hparams": r.hparams} for r in rows]), indent=2, default=str))
        return
    if not rows:
        out.print(f"no runs in {database.url} match {filters.describe()}", highlight=False,
                  soft_wrap=True)
        return
    varying, common = varying_hparams(rows)
    table = _table(f"{len(rows)} runs in {database.url}",
                   ("id", "variant", "submission", *(["hparams"] if varying else []), "seed",
                    "status", "steps", "time (s)", "group", "origin"))
    table.columns[1].no_wrap = True  # full variant names: the other columns wrap instead
    hparams = [_hparams_text(r.hparams, varying).replace(", ", "\n") for r in rows]
    if varying:  # one name=value per line, never split
        table.columns[3].min_width = max(len(line) for h in hparams for line in h.splitlines())
    for r, h in zip(rows, hparams):
        table.add_row(r.id[:8], r.variant, r.submission, *([h] if varying else []), str(r.seed),
                      r.status, _num(r.steps_to_target), _num(r.time_to_target_s),
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
        table.add_row(k, _num(v) if isinstance(v, (int, float)) else str(v))
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

    database = _open(db)
    detail = _query(lambda: run_detail(database, run_id))
    if as_json:
        print(json.dumps(_jsonable(detail.to_json()), indent=2, default=str))
        return
    settings = dict(detail.settings)
    if detail.sweep_name:
        settings["sweep_id"] = f"{settings['sweep_id']} ({detail.sweep_name})"
    out.print(f"[bold]run {detail.id}[/]", highlight=False)
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
                  f"{_num(lo.first)}, last {_num(lo.last)}, lowest {_num(lo.min)} at step "
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
    table = _table(f"eval curve ({len(shown)} of {len(points)} evals)",
                   ("step", "train (s)", *keys))
    for p in shown:
        table.add_row(str(p.step), _num(p.train_s), *(_num(p.values.get(k)) for k in keys),
                      style="bold" if p.step == detail.outcome.get("steps_to_target") else None)
    out.print(table)


def _print_snapshots(detail) -> None:
    if not detail.snapshots:
        out.print("curvature snapshots: none", highlight=False)
        return
    from harness.curvature import report

    table = _table(f"curvature snapshots ({len(detail.snapshots)})",
                   ("step", "matrix", "λ_max", "compute (s)"))
    for x in detail.snapshots:
        table.add_row(str(x.step), report.matrix_label(x.kind, x.config),
                      report.cell(x.metrics, "max_eig"),
                      _num(x.compute_s) + (" *" if x.includes_compile else ""))
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
    database = _open(db)
    from harness import compare as comparing

    filters = _run_filter(workload=workload, submission=submission)
    result = _query(lambda: comparing.compare(database, comparing.Side.parse(a),
                                              comparing.Side.parse(b), filters))
    if as_json:
        print(json.dumps(_jsonable(result.to_json()), indent=2, default=str))
        return
    table = _table(f"A = {result.a}   vs   B = {result.b}",
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
                      _num(ra and ra.median_steps), _num(rb and rb.median_steps),
                      _num(row.steps_ratio), _num(ra and ra.median_time_s),
                      _num(rb and rb.median_time_s), _num(row.time_ratio), verdict)
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
) -> None:
    """Export the selected runs, their evals, training losses and curvature values as CSV or
    Parquet files (columns: docs/results-schema.md)."""
    database = _open(db)
    from harness import export as exporting

    try:
        chosen = exporting.Format(fmt)
    except ValueError:
        _fail(f"--format {fmt!r}: valid: {', '.join(f.value for f in exporting.Format)}")
    filters = _run_filter(workload=workload, variant=variant, submission=submission,
                          status=status, origin=origin, sweep=sweep, tag=tag)
    written = _query(lambda: exporting.export(database, out_dir, chosen, filters))
    for table, path in written.items():
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command("curvature")
def curvature_cmd(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a run's curvature snapshot metrics over steps."""
    from rich.table import Table

    from harness.db import DatabaseError

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
             "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape), "values": _jsonable(a.tolist())}
                        for k, a in x["arrays"].items()},
             "config": x["config"]} for x in snaps]}, indent=2))
        return
    if not snaps:
        out.print(f"run {run_row.id[:8]} has no curvature snapshots "
                  "(curvebench run ... --curvature hessian,ggn,cov records them)")
        return
    from harness.curvature import report

    shown = [(c, h) for c, h in report.COLUMNS if any(c in x["metrics"] for x in snaps)]
    table = Table(title=f"curvature of run {run_row.id[:8]} ({run_row.variant} / {run_row.submission})")
    for col in ("step", "matrix", *(h for _, h in shown), "compute (s)"):
        table.add_column(col, justify="right")
    for x in snaps:
        table.add_row(str(x["step"]), report.matrix_label(x["kind"], x["config"]),
                      *(report.cell(x["metrics"], c) for c, _ in shown),
                      f"{x['compute_s']:.2f}" + (" *" if x["includes_compile"] else ""))
    out.print(table)
    if any(x["includes_compile"] for x in snaps):
        out.print("* includes compiling that kind's operators (its first snapshot in the run)")
    out.print(f"{report.UNCONVERGED_MARK} its Ritz values' residuals exceed the tolerance (not converged); "
              "λ_K^1, λ_K* are of the centered K (Jastrzębski et al.), λ_max of the row's matrix")


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
) -> None:
    """Write an offline HTML report (index.html + one SVG per figure) of the selected runs.

    A database or filter with no runs gives a page saying which filter matched nothing (exit 0).
    """
    from harness.db import DatabaseError
    from harness.report import Filters, ReportError, build_report

    try:
        steps = [int(s) for s in _split_ids([density_steps])] if density_steps else None
    except ValueError:
        _fail(f"--density-steps takes comma-separated integers, got {density_steps!r}")
    database = _open(db)
    filters = Filters(runs=tuple(_split_ids(runs)), sweep=sweep, workload=workload,
                      submission=submission)
    try:
        from harness.analyses import sections_for_sweep

        extra = sections_for_sweep(database, sweep) if sweep else []
        result = build_report(database, filters, out_dir, density_steps=steps, extra_sections=extra)
    except (ReportError, DatabaseError) as e:
        _fail(str(e))
    if result.empty_reason:
        err.print(f"[yellow]nothing to report:[/] {result.empty_reason}", highlight=False)
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
) -> None:
    """Run an analysis's grid (origin `analysis`), print a verdict per claim, store them in its sweep."""
    import dataclasses

    from harness.analyses import analysis_module
    from harness.report import write_report
    from harness.spec import DataUnavailable, SpecError

    try:
        module = analysis_module(name)
    except ValueError as e:
        _fail(str(e))
    config = module.TINY if tiny else type(module.TINY)()
    if seeds:
        try:
            config = dataclasses.replace(config, seeds=tuple(int(s) for s in _split_ids([seeds])))
        except ValueError:
            _fail(f"--seeds takes comma-separated integers, got {seeds!r}")
    database = _open(db)
    mirror = _mlflow_mirror(mlflow, database.url)
    try:
        with _progress(quiet) as progress:
            result = module.run(config, database.url, data_source=data_source,
                                on_event=_also_mirrored(progress, mirror))
    except (SpecError, DataUnavailable, ValueError) as e:
        _fail(str(e))
    if mirror is not None:
        from harness.runs_query import RunFilter, find_runs

        _mirror_report(mirror, [r.id for r in find_runs(database, RunFilter(sweep=result.sweep_id))])
    table = _table(f"{name}: sweep {result.sweep_id}", ("claim", "verdict", "reason"))
    for c in result.claims:
        table.add_row(f"{c.name}: {c.statement}", c.outcome.value, c.reason)
    out.print(table)
    if report_dir:
        index = write_report(report_dir, f"curvebench analyze {name}",
                             [module.section(result, database)],
                             meta=[f"sweep {result.sweep_id}: `curvebench report --sweep "
                                   f"{result.sweep_id}` adds the runs' standard figures"])
        out.print(str(index), highlight=False, soft_wrap=True)


@app.command()
def workloads(as_json: JsonOpt = False) -> None:
    """List registered workloads with their knobs, targets and budgets."""
    from workloads import REGISTRY

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
    from harness.db import DatabaseError, open_database

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
    "--refs", help="directory of reference set files (default: the sets shipped with curvebench)")]


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
    from harness.spec import SpecError
    from workloads import get_workload

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
              "write it to files with `curvebench refs export --out DIR`", soft_wrap=True)


@refs_app.command("export")
def refs_export(
    out_dir: Annotated[str, typer.Option("--out", help="directory to write the files to (required)")],
    set_ids: Annotated[Optional[list[str]], typer.Argument(help="set ids (default: all)")] = None,
    db: DbOpt = None,
) -> None:
    """Write reference sets from the database as JSON Lines files (one run per line)."""
    from harness import refs

    database = _open(db)
    try:
        paths = refs.export_sets(database, out_dir, set_ids or None)
    except refs.RefsError as e:
        _fail(str(e))
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

    database = _open(db)
    try:
        outcome = refs.import_sets(database, paths or [refs.SHIPPED_DIR])
    except refs.RefsError as e:
        _fail(str(e))
    for set_id, what in outcome:
        out.print(f"{set_id}: {what}", highlight=False, soft_wrap=True)


def _reference_sets(database: Database, refs_dir: str | None) -> list:
    """Sets from the reference files and the database; a file wins over a DB set of the same id."""
    from harness import refs

    sets = {s.id: s for s in refs.db_sets(database)}
    sets.update({s.id: s for s in refs.read_sets(refs_dir or refs.SHIPPED_DIR)})
    return list(sets.values())


@refs_app.command("list")
def refs_list(db: DbOpt = None, refs_dir: RefsDirOpt = None, as_json: JsonOpt = False) -> None:
    """List reference sets in the reference directory and the database."""
    from rich.table import Table

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
    from rich.table import Table

    out.print(f"[bold]check[/] {report.workload} / {report.submission}", highlight=False, soft_wrap=True)
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
    out.print(f"verdict: [{style}]{report.verdict}[/] (exit {report.exit_code})")


@app.command()
def check(
    ctx: typer.Context,
    workload: Annotated[str, typer.Option(help="workload variant, e.g. mnist_mlp")],
    submission: Annotated[str, typer.Option(help="submission folder or built-in name")],
    seeds: Annotated[Optional[int], typer.Option(min=1, help="rerun seeds 0..N-1 (default 5)")] = None,
    runs: Annotated[list[str], typer.Option("--runs", help="check these stored runs instead of "
                                            "rerunning (repeat or comma-separate)")] = [],
    hparam: Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")] = [],
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
    run_ids = _split_ids(runs)
    if run_ids and seeds:
        _fail("give --seeds or --runs, not both")
    overrides = _parse_single("", hparam, "check")
    database = _open(db)
    from harness import check as checking
    from harness import refs
    from harness.curvature import ScheduleError
    from harness.db import DatabaseError
    from harness.spec import DataUnavailable, SpecError
    from harness.submissions import load_submission
    from workloads import get_workload

    try:
        w = get_workload(workload)
        sub = load_submission(submission, overrides)
        sets = _reference_sets(database, refs_dir)
        with _progress(quiet or as_json) as progress:
            report = checking.check(database, sets, w, sub,
                                    seeds=() if run_ids else range(seeds or 5), run_ids=run_ids,
                                    data_dir=data_dir, data_source=data_source,
                                    resamples=resamples, skip_bit_exact=skip_bit_exact,
                                    on_event=progress, compile_cache=compile_cache,
                                    command=_command_line(ctx))
    except (checking.CheckError, refs.RefsError, SpecError, DataUnavailable, DatabaseError,
            ScheduleError) as e:
        if as_json:
            print(json.dumps({"verdict": "error", "exit_code": 2, "message": str(e)}))
            raise typer.Exit(2)
        _fail(str(e))
    if as_json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def main() -> None:
    """The `curvebench` script: the app, with every failure reported as one line (harness.errors)."""
    from harness.errors import run_cli

    sys.exit(run_cli(app))


if __name__ == "__main__":
    main()
