"""What the commands that train share: the stored command line, the progress display, the
MLflow mirror, and run_sweep with both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from harness import grid as grids
from harness.cli.app import CommandLineError, err, styled
from harness.cli.options import CHUNK_MODES

if TYPE_CHECKING:
    from harness.records.sweep import SweepResult


def command_line(ctx: typer.Context) -> str:
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


def check_chunk_mode(chunk_mode: str | None) -> None:
    if chunk_mode is not None and chunk_mode not in CHUNK_MODES:
        raise CommandLineError(f"unknown chunk mode {chunk_mode!r}; valid: "
                               f"{', '.join(CHUNK_MODES)}")


def parse_single(workload: str, hparam: list[str], command: str) -> dict[str, Any]:
    """The hparam overrides of a command that takes one value per option (not a grid)."""
    grids.single_values([workload, *hparam], command)
    [overrides] = grids.parse_hparam_grid(hparam)
    return overrides


def progress(quiet: bool):
    """The sweep's progress display on stderr: bars on a terminal, plain lines in a log,
    nothing with --quiet (harness.progress_display)."""
    from harness.progress_display import Mode, ProgressDisplay

    return ProgressDisplay(err, Mode.choose(quiet, err))


def sweep_with_progress(requests, options, db_url: str, *, quiet: bool, mirror=None,
                        **kwargs) -> SweepResult:
    """run_sweep with progress bars (and each finished trial mirrored to MLflow when `mirror`
    is given)."""
    from harness.experiment import run_sweep

    with progress(quiet) as display:
        return run_sweep(requests, options, db_url, on_event=also_mirrored(display, mirror),
                         **kwargs)


def mlflow_mirror(uri: str | None, db_url: str):
    """The MLflow mirror for --mlflow URI (None without it); a URI MLflow refuses exits 2
    before anything trains."""
    if uri is None:
        return None
    from harness.tracking.mlflow import MlflowMirror

    return MlflowMirror(uri, db_url)


def also_mirrored(display, mirror):
    """A sweep's event callback: the progress display, and each finished group's trials
    mirrored to MLflow when a mirror is given."""
    if mirror is None:
        return display

    def on_event(event) -> None:
        display(event)
        mirror(event)
    return on_event


def mirror_report(mirror, run_ids=()) -> None:
    """Mirror `run_ids` too (runs already mirrored are skipped) and say what went where."""
    if mirror is None:
        return
    for run_id in run_ids:
        mirror.mirror_safely(run_id)
    for run_id, why in mirror.failures:
        err.print(styled("warning:", "yellow", f"run {run_id[:8]} not mirrored to MLflow: {why} (it "
                         "is in the results database; `curvebench runs --mlflow URI ...` retries)"),
                  highlight=False)
    err.print(f"{len(mirror.mirrored)} runs mirrored to MLflow {mirror.uri} (experiment "
              f"{mirror.experiment})", highlight=False)
