"""Options several commands share, each declared once as a `typing.Annotated` alias, and the
curvature option set (13 options) that every training command takes as one group.

Defaults of the library are repeated here so that --help needs no JAX import;
tests/test_sweep.py checks each against its source (harness.runner, harness.curvature).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from harness.records.sweep import CurvatureRequest
    from harness.records.trial import TrialOptions

CHUNK_MODES = ("auto", "scan", "unroll", "step")
DIVERGENCE_FACTOR = 1e5
CURVATURE_EVERY = "init,log:4:1000,every:1000"

DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite path "
                                              "(default $CURVEBENCH_DB, else ./curvebench.db)")]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace files in the output folder that "
                                       "curvebench did not write (default: refuse)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
QuietOpt = Annotated[bool, typer.Option(help="no progress output: only the results and errors")]
DataDirOpt = Annotated[Optional[str], typer.Option(help="directory with the dataset files")]
DataSourceOpt = Annotated[Optional[str], typer.Option(help="dataset source (workload-specific)")]
SeedStartOpt = Annotated[int, typer.Option(min=0, help="first seed")]
HparamOpt = Annotated[list[str], typer.Option(help="override a hyperparameter: name=value")]
TagOpt = Annotated[Optional[str], typer.Option(help="label stored with every run")]
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
MlflowOpt = Annotated[Optional[str], typer.Option(
    "--mlflow", metavar="URI", help="also mirror each finished run (params, hparams, eval and "
    "loss curves, curvature, tags) to this MLflow tracking URI, e.g. sqlite:///mlflow.db or "
    "http://host:5000 (pip install -e '.\\[mlflow]')")]
RefsDirOpt = Annotated[Optional[str], typer.Option(
    "--refs", help="directory of reference set files (default: the sets shipped with curvebench)")]
# filters of stored runs (runs, compare, export)
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

#: the curvature options: command-line parameter -> (its declaration, the field of
#: harness.curvature.settings.CurvatureOptions it sets). That module owns their meaning and
#: defaults; None here means not given, so a sweep's config file may set them.
CURVATURE_OPTIONS: dict[str, tuple[Any, str]] = {
    "curvature": (Annotated[Optional[str], typer.Option(
        help="curvature snapshots: comma-separated hessian, ggn, cov (each may be "
             "KIND@PARAM_PATTERN)")], "kinds"),
    "curvature_every": (Annotated[Optional[str], typer.Option(
        help=f"snapshot steps: init | every:N | log:K:END | at:S1/S2, comma-separated "
             f"(default {CURVATURE_EVERY})")], "every"),
    "curvature_batch": (Annotated[Optional[str], typer.Option(
        help="examples in the fixed curvature batch, or 'all' (the whole split, in one product; "
             "default 2048)")], "batch"),
    "curvature_split": (Annotated[Optional[str], typer.Option(
        help="split the curvature batch comes from (default train)")], "split"),
    "lanczos_order": (Annotated[Optional[str], typer.Option(
        help="Lanczos steps per snapshot (default 20; at most the parameter count, lowered to "
             "it on smaller variants of a grid), or auto[:CAP]: until the top-10 Ritz values "
             "converge")], "lanczos_order"),
    "lanczos_probes": (Annotated[Optional[int], typer.Option(
        min=1, help="Lanczos probes (SLQ density, PNR; default 1)")], "probes"),
    "ritz_tol": (Annotated[Optional[float], typer.Option(
        min=0.0, help="Ritz residual / |θ| below which a value converged (default 1e-3)")],
        "ritz_tol"),
    "trace": (Annotated[Optional[str], typer.Option(
        help="trace estimator for TER-K: krylov | hutchpp | hutchinson (default krylov)")],
        "trace"),
    "trace_probes": (Annotated[Optional[int], typer.Option(
        min=0, help="trace estimator probes/products (0: none; default 10)")], "trace_probes"),
    "cov_batches": (Annotated[Optional[int], typer.Option(
        min=2, help="L: mini-batch gradients for cov (default 25)")], "cov_batches"),
    "cov_batch_size": (Annotated[Optional[str], typer.Option(
        help="M: examples per cov mini-batch (keep fixed when comparing batch sizes), or 'train' "
             "(default 128)")], "cov_batch_size"),
    "cov_centered": (Annotated[Optional[bool], typer.Option(
        "--cov-centered/--cov-uncentered",
        help="cov spectrum of the centered K, not Σ (default uncentered)")], "cov_centered"),
    "curvature_vectors": (Annotated[Optional[int], typer.Option(
        min=0, help="store the top K Ritz vectors of each hessian/ggn snapshot (float32; "
                    "default 0: none)", metavar="K")], "ritz_vectors"),
}
#: what a command declaring `curvature_flags: CurvatureFlags` receives: each curvature option's
#: value by parameter name (None: not given)
CurvatureFlags = dict[str, Any]


def given(ctx, *params: str) -> list[str]:
    """Which of `params` (parameter names) the user gave, on the command line or from the
    environment — not left at their defaults."""
    return [p for p in params
            if getattr(ctx.get_parameter_source(p), "name", None) in ("COMMANDLINE", "ENVIRONMENT")]


def refuse_with(ctx, option: str, others: tuple[str, ...], why: str) -> None:
    """CommandLineError when `option` was given together with any of `others`, which it
    would silently ignore."""
    from harness.errors import CommandLineError

    clash = given(ctx, *others)
    if clash and given(ctx, option):
        names = ", ".join("--" + p.replace("_", "-") for p in clash)
        raise CommandLineError(f"--{option.replace('_', '-')} cannot be combined with {names}: "
                               f"{why}")


def with_curvature_options(command):
    """Declare the curvature options on `command` in place of its `curvature_flags` parameter
    (so they keep that place in --help and in the stored command line); the command receives
    them as one CurvatureFlags dict."""
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        if p.name != "curvature_flags":
            params.append(p)
            continue
        params += [inspect.Parameter(name, p.kind, default=None, annotation=declaration)
                   for name, (declaration, _) in CURVATURE_OPTIONS.items()]

    @functools.wraps(command)
    def expanded(*args, **kwargs):
        flags = {name: kwargs.pop(name) for name in CURVATURE_OPTIONS}
        return command(*args, curvature_flags=flags, **kwargs)

    expanded.__signature__ = signature.replace(parameters=params)
    expanded.__annotations__ = {p.name: p.annotation for p in params}
    return expanded


def curvature_request(flags: CurvatureFlags) -> CurvatureRequest | None:
    """The curvature options given as a request for run_sweep; None without --curvature.
    SpecError if a setting is invalid."""
    if not flags.get("curvature"):
        stray = [k for k, v in flags.items() if v is not None and k != "curvature"]
        if stray:
            from harness.errors import CommandLineError

            raise CommandLineError(f"{', '.join('--' + k.replace('_', '-') for k in stray)} "
                                   "set(s) curvature snapshots, which need --curvature KINDS "
                                   "(e.g. --curvature hessian); add it or drop them")
        return None
    from harness.curvature.settings import CurvatureOptions
    from harness.records.sweep import CurvatureRequest

    options = CurvatureOptions(**{CURVATURE_OPTIONS[k][1]: v for k, v in flags.items()
                                  if v is not None})
    return CurvatureRequest(config=options.config().to_json(), every=options.every)


def trial_options(origin: str, *, max_steps: int | None = None, eval_every: int | None = None,
                  chunk_mode: str | None = None, stop_at_target: bool | None = None,
                  divergence_factor: float | None = None, tag: str | None = None,
                  max_group_size: int | None = None, share_variants: bool = False) -> TrialOptions:
    """TrialOptions from the options given (None: the library's default)."""
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
