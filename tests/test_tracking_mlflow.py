"""The MLflow mirror against a real local MLflow file store, read back with MlflowClient."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.db import open_database
from tests.conftest import SUBMISSIONS
from tests.stored_runs import add_curves, add_run

mlflow = pytest.importorskip("mlflow", reason="MLflow is an extra: pip install -e '.[mlflow]'")
cli = CliRunner()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A file: store in tmp_path (MLflow 3 asks for the opt-in to its file store)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def _runs(uri: str, experiment: str = "curvebench"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client, client.search_runs([found.experiment_id])


def test_mirror_equals_the_stored_run_and_is_not_repeated(tmp_path, store):
    from harness.records.sweep import GroupFinished, TrialOutcome, TrialRequest
    from harness.tracking.mlflow import MlflowMirror
    from harness.records.trial import TrialResult

    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    db = open_database(db_url)
    db.add_sweep("sweep-1", "curvebench sweep ...", {}, name="lr-grid")
    run_id = add_run(db, status="reached", steps=3, time_s=0.5, sweep_id="sweep-1", tag="t1",
                     origin="sweep", hparams={"learning_rate": 0.003, "batch_size": 64})
    add_curves(db, run_id)
    mirror = MlflowMirror(store, db_url)
    result = TrialResult(run_id=run_id, workload="mnist_mlp", submission="adam", seed=0)
    outcome = TrialOutcome(request=TrialRequest("mnist_mlp", "adam", {}, 0), result=result,
                           sweep_id="sweep-1")
    mirror(GroupFinished(0, (outcome,)))
    assert mirror.failures == [] and list(mirror.mirrored) == [run_id]

    client, [run] = _runs(store)
    assert run.info.status == "FINISHED" and run.info.run_id == mirror.mirrored[run_id]
    params, tags = run.data.params, run.data.tags
    assert params["learning_rate"] == "0.003" and params["batch_size"] == "64"
    assert params["setting.batch_size"] == "128" and params["setting.variant"] == "mnist_mlp"
    assert {k: tags[f"curvebench.{k}"] for k in ("run_id", "workload", "variant", "submission",
                                                  "sweep", "sweep_id", "origin", "status", "tag")} \
        == {"run_id": run_id, "workload": "mnist_mlp", "variant": "mnist_mlp", "submission": "adam",
            "sweep": "lr-grid", "sweep_id": "sweep-1", "origin": "sweep", "status": "reached",
            "tag": "t1"}

    def history(key):
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]

    curve = db.eval_curve(run_id)
    assert history("validation/accuracy") == [(s, m["accuracy"]) for s, m in curve.items()]
    assert history("validation/loss") == [(s, m["loss"]) for s, m in curve.items()
                                          if m["loss"] is not None]
    steps, losses = db.losses(run_id)
    mirrored = history("train/loss")
    assert [s for s, _ in mirrored] == steps.tolist()
    assert [v for _, v in mirrored][:-1] == pytest.approx(losses[:-1].tolist())
    assert math.isinf(mirrored[-1][1])
    assert history("curvature/hessian_Dense_0/_/max_eig") == [(2, 12.5)]
    assert history("steps_to_target") == [(0, 3.0)]

    again = MlflowMirror(store, db_url)  # another process: found by its run-id tag
    assert again.mirror(run_id[:8]) == run.info.run_id
    assert len(_runs(store)[1]) == 1


def test_runs_mlflow_mirrors_the_listed_runs_and_a_refused_uri_is_one_line(tmp_path, store):
    db_path = tmp_path / "r.db"
    db = open_database(f"sqlite:///{db_path}")
    failed = add_run(db, status="failed", steps=None, tag="x")
    add_run(db, tag="y")
    res = cli.invoke(app, ["runs", "--db", str(db_path), "--tag", "x", "--mlflow", store])
    assert res.exit_code == 0, res.output
    assert "1 runs mirrored to MLflow" in res.output
    _, [run] = _runs(store)
    assert run.data.tags["curvebench.run_id"] == failed and run.info.status == "FAILED"
    bad = cli.invoke(app, ["runs", "--db", str(db_path), "--mlflow", "nosuchscheme://x"])
    assert bad.exit_code == 2 and "MLflow at nosuchscheme://x" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_run_with_mlflow_mirrors_each_trained_trial(tmp_path, store):
    """End to end: `curvebench run --mlflow` trains two seeds and mirrors both as they finish."""
    db_path = tmp_path / "r.db"
    res = cli.invoke(app, ["run", "--workload", "mnist_mlp:width=32", "--submission",
                           str(SUBMISSIONS / "adam"), "--seeds", "2", "--max-steps", "3",
                           "--db", str(db_path), "--mlflow", store, "--quiet"])
    assert res.exit_code == 0, res.output
    client, runs = _runs(store)
    db = open_database(f"sqlite:///{db_path}")
    assert {r.data.tags["curvebench.run_id"] for r in runs} == {r.id for r in db.runs()}
    for r in runs:
        curve = db.eval_curve(r.data.tags["curvebench.run_id"])
        history = client.get_metric_history(r.info.run_id, "validation/accuracy")
        assert [(m.step, m.value) for m in history] == [(s, m["accuracy"]) for s, m in curve.items()]
