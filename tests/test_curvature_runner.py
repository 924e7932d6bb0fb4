"""Curvature snapshots inside real trials: runner callback, database rows, and the CLI."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from harness.cli import app
from harness.curvature import SnapshotConfig, snapshot_callback, snapshot_steps
from harness.runner import run_trial
from harness.submissions import load_submission
from tests.conftest import SUBMISSIONS
from workloads import get_workload


def test_trial_stores_snapshots_with_metrics_arrays_and_time(db):
    workload = get_workload("lowrank:bad_init=1")
    dataset = workload.load_data()
    submission = load_submission(SUBMISSIONS / "gd_warmup")
    config = SnapshotConfig(kinds=("hessian", "hessian@L"), lanczos_order=12, top_k=(1, 10))
    steps = snapshot_steps("init,at:50/200", workload.max_steps)
    callback = snapshot_callback(workload, dataset, config, db=db, hparams=submission.hparams,
                                 batch_size=workload.batch_size)
    result = run_trial(workload, submission, dataset, seed=0, db=db, max_steps=200,
                       snapshot_steps=steps, on_snapshot=callback)
    snaps = db.snapshots(result.run_id)
    assert [(s["step"], s["kind"]) for s in snaps] == [
        (step, kind) for step in (0, 50, 200) for kind in ("hessian", "hessian@L")]
    for s in snaps:
        assert s["compute_s"] > 0 and s["config"]["lanczos_order"] == 12
        assert {"max_eig", "min_eig", "mer_10", "ter_10", "pgr_10", "pnr", "loss"} <= set(s["metrics"])
        assert s["arrays"]["tridiag_alpha"].shape == (1, 12)
        assert s["arrays"]["tridiag_beta"].shape == (1, 11)
        assert np.trapezoid(s["arrays"]["density"], s["arrays"]["density_grid"]) == 1.0 or \
            abs(np.trapezoid(s["arrays"]["density"], s["arrays"]["density_grid"]) - 1.0) < 1e-3
    first = snaps[0]["metrics"]
    assert "normalized_sharpness" in first and "stability_ratio" in first
    lr = submission.hparams["learning_rate"]
    assert first["normalized_sharpness"] == lr * first["max_eig"] / 2
    # warmup escapes the sharp bad initialization (Young, Snider & Feng §3): sharpness drops by step 200
    by_step = {s["step"]: s["metrics"]["max_eig"] for s in snaps if s["kind"] == "hessian"}
    assert by_step[200] < by_step[0]


def test_cli_run_with_curvature_then_curvature_report(tmp_path):
    cli = CliRunner()
    db = str(tmp_path / "c.db")
    res = cli.invoke(app, ["run", "--workload", "uv:width=8", "--submission", str(SUBMISSIONS / "gd"),
                           "--curvature", "hessian,ggn,cov", "--curvature-every", "init,every:10",
                           "--lanczos-order", "8", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)[0]["run_id"]
    report = cli.invoke(app, ["curvature", run_id[:8], "--db", db, "--json"])
    assert report.exit_code == 0, report.output
    payload = json.loads(report.stdout)
    kinds = {(s["step"], s["kind"]) for s in payload["snapshots"]}
    assert {(0, "hessian"), (0, "ggn"), (0, "cov"), (10, "hessian")} <= kinds
    cov = next(s for s in payload["snapshots"] if s["kind"] == "cov")
    assert "gram_trace" in cov["metrics"] and cov["arrays"]["gram_eigenvalues"]["shape"] == [25]
    assert cov["config"]["cov_batch_size"] == 128 and not cov["config"]["cov_centered"]
    hess = next(s for s in payload["snapshots"] if s["kind"] == "hessian")
    assert {"trace", "trace_stderr", "ter_5", "ter_tridiag_5", "max_eig_converged", "pnr_converged",
            "pnr_relative_error"} <= set(hess["metrics"])
    assert hess["metrics"]["pnr_converged"] == 0.0, "one probe: PNR's probe spread is unmeasured"
    assert hess["metrics"]["lanczos_order"] == 8
    assert hess["arrays"]["ritz_residuals"]["shape"] == [8]
    table = cli.invoke(app, ["curvature", run_id, "--db", db])
    assert table.exit_code == 0, table.output
    for label in ("λ_max (row matrix)", "λ_K^1 (centered K)", "Σ (uncentered cov)", "GGN"):
        assert label in table.stdout
    res = cli.invoke(app, ["run", "--workload", "uv:width=8", "--submission", str(SUBMISSIONS / "gd"),
                           "--curvature", "hessian,cov", "--curvature-every", "init", "--max-steps", "2",
                           "--lanczos-order", "auto:30", "--curvature-batch", "all", "--trace", "hutchpp",
                           "--trace-probes", "6", "--cov-batches", "5", "--cov-batch-size", "train",
                           "--cov-centered", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)[0]["run_id"]
    snaps = json.loads(cli.invoke(app, ["curvature", run_id, "--db", db, "--json"]).stdout)["snapshots"]
    cov = next(s for s in snaps if s["kind"] == "cov")
    assert cov["config"]["cov_centered"] and cov["config"]["cov_batch_size"] is None
    assert cov["config"]["curvature_batch"] is None and cov["config"]["trace_method"] == "hutchpp"
    assert cov["config"]["lanczos_max_order"] == 30
    hess = next(s for s in snaps if s["kind"] == "hessian")
    assert hess["metrics"]["lanczos_order"] == 16, "auto: capped at the dimension (uv:width=8)"
    assert cov["metrics"]["gram_lambda_1"] == cov["metrics"]["max_eig"], "centered: λ_K^1 = K's top"
    for option, value, why in (("--curvature-batch", "most", "positive integer or 'all'"),
                               ("--trace", "exact", "unknown trace estimator"),
                               ("--lanczos-order", "auto:5", "'auto' or 'auto:CAP'"),
                               ("--cov-batch-size", "0", "positive integer or 'train'")):
        bad = cli.invoke(app, ["run", "--workload", "uv", "--submission", str(SUBMISSIONS / "gd"),
                               "--curvature", "hessian", option, value, "--db", db])
        assert bad.exit_code == 2 and why in bad.output, bad.output
    bad = cli.invoke(app, ["run", "--workload", "uv", "--submission", str(SUBMISSIONS / "gd"),
                           "--curvature", "hessian", "--curvature-every", "sometimes", "--db", db])
    assert bad.exit_code == 2 and "bad schedule item" in bad.output
    bad = cli.invoke(app, ["run", "--workload", "uv", "--submission", str(SUBMISSIONS / "gd"),
                           "--curvature", "fisher", "--db", db])
    assert bad.exit_code == 2 and "unknown curvature kind" in bad.output
