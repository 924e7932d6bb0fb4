"""`curvebench workloads`: the registered workloads with their knobs, targets and budgets."""

from __future__ import annotations

import json

from harness.cli.app import app, out, emit
from harness.cli.options import JsonOpt
from harness.cli.output import make_table


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
        emit(json.dumps(items, indent=2))
        return
    table = make_table("workloads", ("name", "target", "batch", "max steps", "eval every", "knobs"))
    table.show_lines = True
    for i in items:
        table.add_row(i["name"], i["target"], str(i["batch_size"]), str(i["max_steps"]),
                      str(i["eval_every"]), i["knobs"])
    out.print(table)
