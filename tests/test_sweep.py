"""`curvebench sweep`, the experiment layer behind every command, and the light CLI import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import REPO, SUBMISSIONS

cli = CliRunner()
TRIAL_FIELDS = {"run_id", "workload", "submission", "seed", "status", "steps_to_target",
                "time_to_target_s", "compile_s", "hparams", "group_size", "sweep_id"}


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


def test_sweep_json_has_every_trial_of_the_grid_each_a_run_row_of_the_sweep(tmp_path):
    from harness.db import Sweep, open_database

    db = tmp_path / "s.db"
    res = invoke("sweep", "--workload", "mnist_mlp:width=32|64", "--submission", SUBMISSIONS / "adam",
                 "--hparam", "learning_rate=1e-3|3e-3", "--seeds", 1, "--max-steps", 10,
                 "--eval-every", 5, "--name", "tiny", "--tag", "t1", "--db", db, "--json")
    assert res.exit_code == 0, res.output
    trials = json.loads(res.stdout)
    assert len(trials) == 4 and all(TRIAL_FIELDS <= set(t) for t in trials)
    assert [(t["workload"], t["hparams"]["learning_rate"]) for t in trials] == [
        ("mnist_mlp:width=32", 1e-3), ("mnist_mlp:width=32", 3e-3),
        ("mnist_mlp:width=64", 1e-3), ("mnist_mlp:width=64", 3e-3)]
    [sweep_id] = {t["sweep_id"] for t in trials}
    database = open_database(str(db))
    runs = {r.id: r for r in database.runs()}
    assert sorted(runs) == sorted(t["run_id"] for t in trials)
    assert {(r.sweep_id, r.origin, r.tag) for r in runs.values()} == {(sweep_id, "sweep", "t1")}
    assert all(runs[t["run_id"]].group_size == t["group_size"] >= 1 for t in trials)
    with database.session() as s:
        sweep = s.get(Sweep, sweep_id)
        assert sweep.name == "tiny" and "--hparam 'learning_rate=1e-3|3e-3'" in sweep.command
        assert len(sweep.spec["requests"]) == 4


def test_sweep_from_a_config_file_with_command_line_overrides(tmp_path):
    from harness.db import open_database

    config = tmp_path / "grid.toml"
    config.write_text(f'name = "cfg"\nsubmission = "{SUBMISSIONS / "adam"}"\nseeds = [0, 1]\n'
                      'workloads = [{ name = "mnist_mlp", width = [32] }]\n'
                      '[options]\nmax_steps = 10\neval_every = 5\nstop_at_target = false\n'
                      'divergence_factor = 1e3\n')
    db = tmp_path / "c.db"
    res = invoke("sweep", "--config", config, "--max-steps", 6, "--eval-every", 3, "--db", db)
    assert res.exit_code == 0, res.output
    assert "sweep cfg: 2 trials" in res.stdout and "mnist_mlp:width=32" in res.stdout
    runs = open_database(str(db)).runs()
    assert sorted(r.seed for r in runs) == [0, 1]
    assert {(r.max_steps, r.eval_every, r.stop_at_target, r.divergence_factor, r.final_step)
            for r in runs} == {(6, 3, False, 1e3, 6)}


@pytest.mark.parametrize("args,shown", [
    (["--workload", "mnist_mlp:width=1||2"], "expected NAME[:KNOB=V1|V2,...]"),
    (["--workload", "mnist_mlp", "--hparam", "learning_rate"], "expected NAME=V1|V2|..."),
    (["--workload", "mnist_mlp:depthh=2|3"], "has no knob 'depthh'; valid knobs: width"),
    (["--workload", "mnist_mlp", "--hparam", "momentum=0.9|0.99"], "no hyperparameter momentum"),
    (["--workload", "mnist_mlp", "--chunk-mode", "fast"], "unknown chunk mode 'fast'"),
    (["--workload", "mnist_mlp", "--curvature", "hessain"], "unknown curvature kind"),
    (["--workload", "mnist_mlp", "--curvature", "hessian", "--curvature-every", "often"],
     "expected comma-separated items"),
])
def test_sweep_input_errors_are_one_line_and_run_nothing(tmp_path, args, shown):
    from harness.db import open_database

    db = tmp_path / "e.db"
    res = invoke("sweep", "--submission", SUBMISSIONS / "adam", "--db", db, *args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and shown in lines[0], res.stderr
    assert not db.exists() or open_database(str(db)).runs() == []


def test_run_refuses_a_grid_and_points_to_sweep():
    res = invoke("run", "--workload", "mnist_mlp", "--submission", SUBMISSIONS / "adam",
                 "--hparam", "learning_rate=1e-3|3e-3")
    assert res.exit_code == 2 and "curvebench sweep" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_score_takes_a_two_knob_variant_and_times_each_trial_alone(tmp_path):
    from harness.db import open_database

    db = tmp_path / "k.db"
    res = invoke("score", SUBMISSIONS / "adam", "--workloads", "mnist_mlp:width=200,activation=gelu",
                 "--seeds", 2, "--db", db, "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [w["workload"] for w in payload["workloads"]] == ["mnist_mlp:activation=gelu,width=200"]
    assert payload["workloads"][0]["reached"] == 2
    runs = open_database(str(db)).runs()
    assert {(r.origin, r.group_size) for r in runs} == {("score", 1)}
    res = invoke("score", SUBMISSIONS / "adam", "--workloads", "mnist_mlp,fashion_mnist_mlp",
                 "--db", db)
    assert res.exit_code == 2 and "separate them with ';'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_cli_defaults_shown_in_help_are_the_librarys():
    from harness import cli as c
    from harness.curvature import DEFAULT_SCHEDULE, SnapshotConfig
    from harness.records.trial import CHUNK_MODES, DIVERGENCE_FACTOR, TrialOptions

    assert c.CHUNK_MODES == CHUNK_MODES and c.CURVATURE_EVERY == DEFAULT_SCHEDULE
    assert c.DIVERGENCE_FACTOR == DIVERGENCE_FACTOR == TrialOptions().divergence_factor
    assert (SnapshotConfig.curvature_batch, SnapshotConfig.lanczos_order) == (2048, 20)


def test_importing_the_cli_imports_no_jax_flax_sqlalchemy_or_workloads():
    code = ("import sys, harness.cli; heavy = ('jax', 'flax', 'optax', 'sqlalchemy', 'numpy', "
            "'harness.runner', 'harness.db', 'workloads'); "
            "print([m for m in heavy if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"


def test_sweep_events_and_results_follow_the_requests(tmp_path):
    from harness.db import RunOrigin
    from harness.experiment import run_sweep
    from harness.records.sweep import GroupFinished, GroupStarted, SweepPhase, TrialEvaluated, TrialRequest
    from harness.records.trial import TrialOptions

    adam = str(SUBMISSIONS / "adam")
    requests = [TrialRequest("mnist_mlp:width=32", adam, {}, seed) for seed in (1, 0)]
    requests.append(TrialRequest("mnist_mlp:width=32", adam, {"learning_rate": 1e-3}, 1))  # default
    events = []
    result = run_sweep(requests, TrialOptions(max_steps=4, eval_every=2, origin=RunOrigin.SWEEP),
                       f"sqlite:///{tmp_path / 'e.db'}", on_event=events.append)
    assert result.dropped_duplicates == 1
    assert [t.result.seed for t in result.trials] == [1, 0]
    evals = [(e.request.seed, e.step) for e in events if isinstance(e, TrialEvaluated)]
    assert sorted(evals) == [(0, 2), (0, 4), (1, 2), (1, 4)]
    assert isinstance(events[0], SweepPhase)  # loading data, before anything is recorded
    assert isinstance(events[1], GroupStarted) and isinstance(events[-1], GroupFinished)
    [cell] = result.cells()
    assert cell.seeds == 2 and cell.hparams["learning_rate"] == 1e-3


def test_a_resumed_sweep_keeps_its_finished_trials_and_reruns_only_the_others(tmp_path):
    from harness.db import open_database

    db = tmp_path / "s.db"
    args = ("sweep", "--workload", "mnist_mlp", "--submission", SUBMISSIONS / "adam",
            "--seeds", 3, "--max-steps", 10, "--eval-every", 5, "--name", "cut", "--db", db,
            "--json")
    first = json.loads(invoke(*args).stdout)
    database = open_database(str(db))
    lost = first[1]["run_id"]
    database.update_run(lost, status="interrupted", error="the driver was killed")
    res = invoke(*args, "--resume", "cut")
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert [t["sweep_id"] for t in again] == [first[0]["sweep_id"]] * 3
    assert [t["run_id"] for t in again][::2] == [first[0]["run_id"], first[2]["run_id"]]
    assert again[1]["run_id"] != lost and again[1]["status"] == first[1]["status"]
    assert again[1]["steps_to_target"] == first[1]["steps_to_target"]
    assert again[1]["evals"] == first[1]["evals"]
    assert len(database.runs()) == 4  # the three of the first pass and the one rerun
    res = invoke(*args[:-1], "--resume", "no-such-sweep")
    assert res.exit_code == 2 and "no-such-sweep" in res.output
