"""The curvebench CLI end to end (typer's runner, real database file, real offline data)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.conftest import SUBMISSIONS

cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


def test_run_json_then_runs_list(tmp_path):
    db = tmp_path / "r.db"
    res = invoke("run", "--workload", "mnist_mlp", "--submission", SUBMISSIONS / "adam", "--seeds", 2,
                 "--db", db, "--json")
    assert res.exit_code == 0, res.output
    trials = json.loads(res.stdout)
    assert [t["seed"] for t in trials] == [0, 1]
    for t in trials:
        assert {"run_id", "workload", "submission", "seed", "status", "steps_to_target",
                "time_to_target_s", "compile_s"} <= set(t)
        assert t["status"] == "reached"
    listed = json.loads(invoke("runs", "--db", db, "--json").stdout)
    assert sorted(r["id"] for r in listed) == sorted(t["run_id"] for t in trials)
    table = invoke("runs", "--db", db)
    assert table.exit_code == 0 and "mnist_mlp" in table.stdout


def test_score_against_another_submission(tmp_path):
    db = tmp_path / "s.db"
    first = invoke("score", SUBMISSIONS / "sgd", "--workloads", "mnist_mlp", "--seeds", 1, "--db", db, "--json")
    assert first.exit_code == 0, first.output
    res = invoke("score", SUBMISSIONS / "adam", "--workloads", "mnist_mlp", "--seeds", 1, "--db", db, "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["submission"] == "adam"
    assert payload["workloads"][0]["reached"] == 1
    scores = payload["performance_profile"]["scores"]
    assert set(scores) == {"adam", "sgd"} and max(scores.values()) == 1.0
    compared = payload["compared"]
    assert compared["selection"] == "runs made by `score`"
    assert sorted((s["submission"], s["seeds"]) for s in compared["sets"]) == [("adam", [0]),
                                                                             ("sgd", [0])]
    table = invoke("score", SUBMISSIONS / "adam", "--workloads", "mnist_mlp", "--seeds", 1,
                   "--db", db, "--sweep", "no-such-sweep")
    assert table.exit_code == 2 and "sweep 'no-such-sweep' is not in the database" in table.output


def test_workloads_listing():
    res = invoke("workloads", "--json")
    names = {w["name"] for w in json.loads(res.stdout)}
    assert {"mnist_mlp", "fashion_mnist_mlp"} <= names
    assert "hard_tanh" in invoke("workloads").stdout


def test_bad_inputs_exit_2_with_message(tmp_path):
    db = tmp_path / "b.db"
    cases = [
        (["--workload", "mnist_mlp:activation=tanh"], "valid values: relu, gelu, sigmoid, hard_tanh"),
        (["--workload", "cifar_alexnet"], "unknown workload"),
        (["--workload", "mnist_mlp", "--hparam", "momentum=0.9"], "no hyperparameter momentum"),
        (["--workload", "mnist_mlp", "--data-dir", tmp_path], "lacks"),
        (["--workload", "mnist_mlp", "--chunk-mode", "fast"], "unknown chunk mode"),
    ]
    for extra, message in cases:
        res = invoke("run", "--submission", SUBMISSIONS / "adam", "--db", db, *extra)
        assert res.exit_code == 2, (extra, res.output)
        assert message in res.output.replace("\n", " ") or message in res.stderr.replace("\n", " ")
    not_db = tmp_path / "notes.txt"
    not_db.write_text("precious notes")
    res = invoke("runs", "--db", not_db)
    assert res.exit_code == 2 and "not a SQLite database" in res.stderr
    assert not_db.read_text() == "precious notes"


def test_score_json_is_strict_json_when_a_submission_misses(tmp_path):
    res = invoke("score", SUBMISSIONS / "sgd", "--workloads", "mnist_mlp", "--seeds", 1,
                 "--hparam", "learning_rate=1e-6", "--db", tmp_path / "m.db", "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert payload["workloads"][0]["reached"] == 0
    assert payload["workloads"][0]["median_time_to_target_s"] is None


def test_the_app_run_on_its_own_reports_a_user_error_as_the_curvebench_script_does(tmp_path):
    """Commands raise; harness.errors reports: through run_cli (the `curvebench` script) and
    through the app alone (CliRunner, `app()`) the same one line and exit code."""
    import contextlib
    import io

    from harness.errors import run_cli

    cases = [["runs", "show", "nosuch", "--db", str(tmp_path / "e.db")],  # the library's error
             ["run", "--workload", "mnist_mlp"],  # the command's own
             ["score", "adam", "--workloads", "a,b"]]  # a grid that does not parse
    for argv in cases:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = run_cli(app, argv)
        res = invoke(*argv)
        assert code == res.exit_code == 2, argv
        assert res.stderr == stderr.getvalue() and res.stderr.startswith("error: "), argv
        assert len(res.stderr.splitlines()) == 1
