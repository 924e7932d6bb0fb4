"""`curvebench workloads`: the registered workloads (built-in and installed through the
`curvebench.workloads` entry point) with their knobs, targets and budgets."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from harness.cli.app import app, emit, err, out
from harness.cli.options import DataDirOpt, DataSourceOpt, JsonOpt
from harness.cli.output import make_table

workloads_app = typer.Typer(help="List the registered workloads (built-in and installed), or check "
                                 "one against the contract (`workloads check NAME`).",
                            invoke_without_command=True)
app.add_typer(workloads_app, name="workloads")


@workloads_app.callback()
def workloads(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List registered workloads with their knobs, targets and budgets."""
    if ctx.invoked_subcommand is not None:
        return
    from workloads import BROKEN, REGISTRY

    items = []
    for name, cls in sorted(REGISTRY.items()):
        t = cls.target
        items.append({"name": name, "target": f"{t.split} {t.metric} {'>=' if t.direction == 'max' else '<='} {t.value}",
                      "batch_size": cls.batch_size, "max_steps": cls.max_steps,
                      "eval_every": cls.eval_every, "knobs": cls.describe_knobs(),
                      "scored_by_default": cls.scored_by_default, "module": cls.__module__,
                      "doc": (cls.__doc__ or "").strip().splitlines()[0]})
    if as_json:
        emit(json.dumps(items, indent=2))
    else:
        table = make_table("workloads", ("name", "target", "batch", "max steps", "eval every", "knobs"))
        table.show_lines = True
        for i in items:
            table.add_row(i["name"], i["target"], str(i["batch_size"]), str(i["max_steps"]),
                          str(i["eval_every"]), i["knobs"])
        out.print(table)
    for name, why in sorted(BROKEN.items()):
        err.print(f"warning: workload {name!r} not registered: {why}", highlight=False, soft_wrap=True)


@workloads_app.command("check")
def workloads_check(
    name: Annotated[str, typer.Argument(help="workload variant, e.g. mnist_mlp:width=200")],
    data_dir: DataDirOpt = None,
    data_source: DataSourceOpt = None,
    synthetic: Annotated[bool, typer.Option(help="skip the real data: check on synthetic data "
                                                 "of the real shapes")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a registered workload (built-in or installed) against the contract: data, loss,
    a few training steps, masking, knobs in the version, evaluation, and whether a short run
    heads for the target within max_steps. Exit 0 when none fails."""
    from harness.contract_checks import run_checks
    from workloads import get_workload

    workload = get_workload(name)
    verdicts = run_checks(workload, data_dir=data_dir, source=data_source, synthetic=synthetic)
    if as_json:
        emit(json.dumps([dataclasses.asdict(v) for v in verdicts], indent=2))
    else:
        for v in verdicts:
            out.print(f"{v.status.upper():>10}  {v.check:<9} {v.detail}", highlight=False, soft_wrap=True)
            if v.status != "pass" and v.fix:
                out.print(f"{'':>10}  {'':<9} -> {v.fix}", highlight=False, soft_wrap=True)
    failed = [v.check for v in verdicts if v.failed]
    if failed:
        err.print(f"{workload.spec}: {len(failed)} check(s) failed: {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)
