"""`curvebench curvature RUN_ID`: a run's curvature snapshot metrics over steps."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from harness.cli.app import app, open_db, out, emit
from harness.cli.options import DbOpt, JsonOpt
from harness.cli.output import finite_or_none, jsonable


@app.command("curvature")
def curvature_cmd(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix)")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a run's curvature snapshot metrics over steps."""
    from rich.table import Table

    database = open_db(db)
    run_row = database.get_run(run_id)
    snaps = database.snapshots(run_row.id)
    if as_json:
        emit(json.dumps({"run_id": run_row.id, "snapshots": [
            {"step": x["step"], "kind": x["kind"], "compute_s": x["compute_s"],
             "includes_compile": x["includes_compile"], "metrics": {k: finite_or_none(v) for k, v in x["metrics"].items()},
             "arrays": {k: {"dtype": str(a.dtype), "shape": list(a.shape), "values": jsonable(a.tolist())}
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
