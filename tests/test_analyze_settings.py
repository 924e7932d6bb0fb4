"""`curvebench analyze NAME` on a workload, grid and submission of the user's choosing, with
--json: each analysis through the CLI on a toy it does not use by default returns a verdict
per claim with the run ids; a claim the setting cannot test is undecidable saying why; an
option an analysis sets itself is a one-line error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.analyses import Outcome
from harness.analyses import ablation as A
from harness.analyses import catapult as C
from harness.analyses.store import stored_result
from harness.cli import app
from harness.db import open_database

CLI = CliRunner()


def _analyze(db_path, *args: str) -> dict:
    res = CLI.invoke(app, ["analyze", *args, "--db", db_path, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["claims"] and all(c["outcome"] in {o.value for o in Outcome} for c in doc["claims"])
    stored = stored_result(open_database(db_path), doc["sweep_id"])
    assert stored["claims"] == doc["claims"]  # the verdicts stored as before
    return doc


def _run_ids(db_path, sweep_id) -> set[str]:
    return {r.id for r in open_database(db_path).runs() if r.sweep_id == sweep_id}


def test_catapult_on_other_uv_widths_seeds_and_window(tmp_path):
    db = str(tmp_path / "r.db")
    doc = _analyze(db, "catapult", "--tiny", "--workload", "uv:width=3|64", "--seeds", "1",
                   "--max-steps", "40", "--lanczos-order", "12")
    assert [c["name"] for c in doc["claims"]] == ["uv_c_loss_2", "uv_c_max_4",
                                                  "c_loss_grows_small_width/uv", "c_order",
                                                  "catapult_flattens"]
    config = doc["result"]["config"]
    assert (config["models"], config["seeds"], config["steps"], config["lanczos_order"]) == \
        (["uv:width=3", "uv:width=64"], [1], 40, 12)
    assert {p["run_id"] for p in doc["result"]["phases"]} == _run_ids(db, doc["sweep_id"])
    assert len(doc["result"]["phases"]) == 2 * len(C.TINY.c_grid)


def test_catapult_claims_a_setting_cannot_test_are_undecidable_with_the_reason():
    """No uv model: the uv claims cannot be tested; cross-entropy models: c's thresholds are
    stated for MSE, so c_order is undecidable rather than failed."""
    phases = [C.RunPhase(f"m{w}-{c}", f"mnist_mlp:width={w}", 0, c, c, 1.0,
                         C.Phase.MONOTONE if c < 1.5 else C.Phase.CATAPULT, 1.2, 0.5, 0.1, True)
              for w in (16, 256) for c in (1.0, 1.5, 2.0)]
    claims = {c.name: c for c in C.judge(phases, (1.0, 1.5, 2.0))}
    for name in ("uv_c_loss_2", "uv_c_max_4"):
        assert claims[name].outcome == Outcome.UNDECIDABLE and "uv" in claims[name].reason
    assert claims["c_order"].outcome == Outcome.UNDECIDABLE
    assert "stated for MSE" in claims["c_order"].reason
    assert "mnist_mlp:width=16" in claims["c_order"].reason


def test_ablation_on_a_toy_reports_every_ordering_it_cannot_test(tmp_path):
    db = str(tmp_path / "r.db")
    doc = _analyze(db, "ablation", "--workload", "lowrank:bad_init=false|true", "--submission", "gd",
                   "--hparam", "learning_rate=0.5", "--seeds", "0,1", "--max-steps", "20")
    assert [c["name"] for c in doc["claims"]] == [o.name for o in A.ORDERINGS]
    assert all(c["outcome"] == "undecidable" and "lacks" in c["reason"] for c in doc["claims"])
    assert set(doc["result"]["steps"]) == {"lowrank", "lowrank:bad_init=1"}
    assert set(doc["result"]["run_ids"]) == _run_ids(db, doc["sweep_id"])
    runs = open_database(db).runs()
    assert {r.submission for r in runs} == {"gd"} and {r.hparams["learning_rate"] for r in runs} == {0.5}


def test_break_even_on_a_toy(tmp_path):
    db = str(tmp_path / "r.db")
    doc = _analyze(db, "break-even", "--tiny", "--workload", "lowrank", "--max-steps", "20",
                   "--curvature-batch", "100", "--cov-batch-size", "20")
    assert {c["name"].split("/")[1] for c in doc["claims"]} == {"η"}
    assert len(doc["claims"]) == 4
    assert {r["run_id"] for r in doc["result"]["runs"]} == _run_ids(db, doc["sweep_id"])
    assert doc["result"]["config"]["workload"] == "lowrank"


@pytest.mark.slow
def test_quadratic_on_a_workload_without_a_prediction(tmp_path):
    db = str(tmp_path / "r.db")
    doc = _analyze(db, "quadratic", "--tiny", "--workload", "lowrank", "--submission", "gd",
                   "--max-steps", "40")
    equilibrium = [c for c in doc["claims"] if c["name"].startswith("equilibrium/")]
    assert len(equilibrium) == 1 and equilibrium[0]["outcome"] == "undecidable"
    assert "not a noisy quadratic" in equilibrium[0]["reason"]
    assert len(doc["claims"]) > 1  # the rotation claims, on their own workload


@pytest.mark.parametrize("args, message", [
    (["catapult", "--hparam", "learning_rate=0.1"], "learning_rate is set by the analysis"),
    (["catapult", "--curvature-batch", "64"], "--curvature-batch does not apply"),
    (["catapult", "--workload", "lowrank"], "no width knob"),
    (["break-even", "--workload", "uv:width=2|4"], "one workload variant"),
    (["ablation", "--hparam", "learning_rate=0.1|0.2"], "one value per name"),
    (["quadratic", "--lanczos-order", "4"], "--lanczos-order does not apply"),
])
def test_options_an_analysis_cannot_use_are_one_line_errors(tmp_path, args, message):
    res = CLI.invoke(app, ["analyze", *args, "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "r.db").exists() or not open_database(str(tmp_path / "r.db")).runs()
