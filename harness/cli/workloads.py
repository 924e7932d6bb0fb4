"""`curvebench workloads`: the registered workloads (built-in and installed through the
`curvebench.workloads` entry point) with their knobs, targets and budgets."""

from __future__ import annotations

import json

import typer

from harness.cli.app import app, err, out
from harness.cli.options import JsonOpt
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
        print(json.dumps(items, indent=2))
    else:
        table = make_table("workloads", ("name", "target", "batch", "max steps", "eval every", "knobs"))
        table.show_lines = True
        for i in items:
            table.add_row(i["name"], i["target"], str(i["batch_size"]), str(i["max_steps"]),
                          str(i["eval_every"]), i["knobs"])
        out.print(table)
    for name, why in sorted(BROKEN.items()):
        err.print(f"warning: workload {name!r} not registered: {why}", highlight=False, soft_wrap=True)
