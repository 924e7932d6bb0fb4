"""Finding, showing, comparing and exporting stored runs: `curvebench runs`, `runs show`,
`compare`, `export`, and the results-schema document (rows written through the Database API)."""

from __future__ import annotations

import json
import math
import re

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.db import open_database
from tests.conftest import REPO
from tests.stored_runs import add_curves, add_run

cli = CliRunner()
LONG_VARIANT = "mnist_mlp:activation=gelu,depth=3,width=200"
ADAM_STEPS, SGD_STEPS = (30, 32, 31, 29, 33), (60, 62, 58, 61, 65)


def invoke(*args):
    return cli.invoke(app, [str(a) for a in args])


@pytest.fixture
def pd():
    """pandas, which reads back what `curvebench export` writes: the export extra (dev has it)."""
    return pytest.importorskip("pandas", reason="export's tables are pandas frames: "
                                                "pip install -e '.[export]'")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """adam vs sgd (5 seeds each, timed alone) on mnist_mlp, where sgd takes twice the steps,
    and on LONG_VARIANT, where they tie and sgd ran in a group; a learning-rate sweep; one
    diverged run; curves and a snapshot on the first adam run."""
    path = tmp_path_factory.mktemp("stored") / "results.db"
    db = open_database(f"sqlite:///{path}")
    ids = {}
    for seed, (a, s) in enumerate(zip(ADAM_STEPS, SGD_STEPS)):
        ids.setdefault("adam", []).append(add_run(db, submission="adam", seed=seed, steps=a,
                                                  time_s=1.0 + 0.01 * seed, order=seed))
        add_run(db, submission="sgd", seed=seed, steps=s, time_s=2.0 + 0.01 * seed,
                hparams={"learning_rate": 0.1}, order=10 + seed)
        add_run(db, submission="adam", variant=LONG_VARIANT, seed=seed, steps=40 + seed % 2,
                order=20 + seed)
        add_run(db, submission="sgd", variant=LONG_VARIANT, seed=seed, steps=41 - seed % 2,
                group_size=5, hparams={"learning_rate": 0.1}, order=30 + seed)
    db.add_sweep("sweep-uuid-1", "curvebench sweep ...", {}, name="lr-grid")
    for i, lr in enumerate((0.001, 0.003)):
        add_run(db, submission="adam", variant="mnist_mlp:width=32", hparams={"learning_rate": lr},
                time_s=1.23456789, origin="sweep", sweep_id="sweep-uuid-1", tag="grid",
                group_size=2, order=40 + i)
    ids["diverged"] = add_run(db, submission="sgd", variant="noisy_quadratic", status="diverged",
                              hparams={"learning_rate": 9.0}, origin="run", order=50)
    add_curves(db, ids["adam"][0])
    return {"db": path, "ids": ids}


# -- runs -------------------------------------------------------------------------------

def test_runs_lists_with_filters_hparams_readable_numbers_and_full_names(stored):
    db = stored["db"]
    res = invoke("runs", "--db", db, "--sweep", "lr-grid")
    assert res.exit_code == 0, res.output
    assert "learning_rate=0.001" in res.stdout and "learning_rate=0.003" in res.stdout
    assert "1.23" in res.stdout and "1.2345" not in res.stdout
    assert "None" not in res.stdout
    listed = invoke("runs", "--db", db, "--workload", LONG_VARIANT).stdout
    assert LONG_VARIANT in listed and "…" not in listed
    assert "hparams (" not in listed

    def ids(*args):
        res = invoke("runs", "--db", db, "--json", *args)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    assert len(ids()) == 23
    assert len(ids("--submission", "sgd")) == 11
    assert len(ids("--submission", "/some/folder/sgd", "--workload", "mnist_mlp")) == 10
    assert len(ids("--variant", "mnist_mlp")) == 10
    assert [r["id"] for r in ids("--status", "diverged")] == [stored["ids"]["diverged"]]
    assert len(ids("--tag", "grid", "--origin", "sweep")) == 2
    assert {r["hparams"]["learning_rate"] for r in ids("--sweep", "sweep-uuid")} == {0.001, 0.003}


@pytest.mark.parametrize("args, message", [
    (("--status", "finished"), "unknown status 'finished'; valid: running, reached"),
    (("--origin", "cron"), "unknown origin 'cron'"),
    (("--sweep", "nope"), "sweep 'nope' is not in the database"),
    (("--variant", "mnist_mlp:widht=3"), "widht"),
])
def test_runs_bad_filter_is_one_line_error(stored, args, message):
    res = invoke("runs", "--db", stored["db"], *args)
    assert res.exit_code == 2 and message in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_runs_show_prints_settings_environment_curve_losses_and_snapshots(stored):
    run_id = stored["ids"]["adam"][0]
    res = invoke("runs", "show", run_id[:6], "--db", stored["db"])
    assert res.exit_code == 0, res.output
    text = res.stdout
    for expected in (run_id, "submission_hash", "hash-adam", "learning_rate", "test cpu x2",
                     "validation/accuracy", "0.8", "training loss: 4 steps (0-3), first 2.5",
                     "1 not finite", "H @ Dense_0/*", "12.5", "curvebench curvature"):
        assert expected in text, expected
    detail = json.loads(invoke("runs", "show", run_id, "--db", stored["db"], "--json").stdout)
    assert [e["step"] for e in detail["evals"]] == [1, 2, 3, 4]
    assert detail["evals"][3]["values"]["validation/loss"] is None
    assert detail["losses"]["min"] == 1.5 and detail["losses"]["min_step"] == 2
    assert detail["snapshots"][0]["kind"] == "hessian@Dense_0/*"


def test_runs_show_limits_eval_rows_and_keeps_the_target_step(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = add_run(db, steps=7)
    for step in range(1, 21):
        db.add_eval(run_id, step, "validation", {"accuracy": step / 20}, wall_s=0.0, train_s=0.0)
    res = invoke("runs", "show", run_id, "--db", tmp_path / "r.db", "--evals", 3)
    assert "eval curve (4 of 20 evals)" in res.stdout
    shown = re.findall(r"^│ (\d+) ", res.stdout, flags=re.M)
    assert shown == ["1", "7", "11", "20"]  # evals 0, 10, 19 of 20 and the target's


def test_runs_show_unknown_or_ambiguous_id_is_one_line_error(stored):
    res = invoke("runs", "show", "zzzz", "--db", stored["db"])
    assert res.exit_code == 2 and "no run with id 'zzzz'" in res.output
    from harness.db import DatabaseError
    from harness.runs_query import run_detail

    with pytest.raises(DatabaseError, match="ambiguous"):
        run_detail(open_database(f"sqlite:///{stored['db']}"), "")


# -- compare ----------------------------------------------------------------------------

def test_compare_two_submissions_per_variant(stored):
    res = invoke("compare", "adam", "sgd", "--db", stored["db"], "--json")
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads(res.stdout)["rows"]}
    assert set(rows) == {"mnist_mlp", LONG_VARIANT, "mnist_mlp:width=32", "noisy_quadratic"}
    assert rows["mnist_mlp:width=32"]["b"] is None and rows["noisy_quadratic"]["a"] is None
    slow = rows["mnist_mlp"]
    assert (slow["a"]["reached"], len(slow["a"]["run_ids"])) == (5, 5)
    assert (slow["a"]["median_steps"], slow["b"]["median_steps"]) == (31, 61)
    assert slow["steps_ratio"] == pytest.approx(61 / 31)
    assert slow["time_ratio"] == pytest.approx(2.02 / 1.02)
    verdict = slow["verdict"]
    assert verdict["text"] == "B slower" and verdict["p"] < 0.05
    assert verdict["relative_difference"] == pytest.approx((61 - 31) / 31)  # trimmed means
    tie = rows[LONG_VARIANT]
    assert tie["verdict"]["text"] == "no significant difference"
    assert tie["b"]["median_time_s"] is None and tie["b"]["timed_alone"] == 0
    assert tie["time_ratio"] is None
    table = invoke("compare", "adam", "sgd", "--db", stored["db"])
    assert "B slower" in table.stdout and "1.97" in table.stdout and "—" in table.stdout


def test_compare_run_sets_by_sweep_tag_and_ids(stored):
    db, adam = stored["db"], stored["ids"]["adam"]
    res = invoke("compare", f"runs:{adam[0][:8]},{adam[1][:8]}", "sweep:lr-grid", "--db", db,
                 "--json")
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads(res.stdout)["rows"]}
    assert rows["mnist_mlp"]["a"]["run_ids"] == adam[:2]
    assert rows["mnist_mlp"]["b"] is None
    assert rows["mnist_mlp"]["verdict"]["text"] == "B has no finished run here"
    assert rows["mnist_mlp:width=32"]["a"] is None
    narrowed = invoke("compare", "adam", "sgd", "--db", db, "--workload", LONG_VARIANT, "--json")
    assert [r["variant"] for r in json.loads(narrowed.stdout)["rows"]] == [LONG_VARIANT]


def test_compare_refuses_a_verdict_across_workload_versions(tmp_path):
    from harness.compare import Side, compare

    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    for seed in range(3):
        add_run(db, submission="adam", seed=seed, steps=30)
        add_run(db, submission="sgd", seed=seed, steps=60, order=5)
    with db.session() as s:
        from harness.db import Run

        for run in s.query(Run).filter(Run.submission == "sgd"):
            run.workload_version = "v2"
    [row] = compare(db, Side.parse("adam"), Side.parse("sgd")).rows
    assert row.verdict.text == "not comparable: workload versions or data differ"
    assert (row.a.median_steps, row.b.median_steps) == (30, 60)


@pytest.mark.parametrize("a, b, message", [
    ("adam", "momentum", "side momentum has no runs"),
    ("adam", "label:x", "unknown side kind 'label'"),
    ("adam", "sweep:", "names nothing after 'sweep:'"),
    ("adam", "sweep:nope", "sweep 'nope' is not in the database"),
])
def test_compare_bad_side_is_one_line_error(stored, a, b, message):
    res = invoke("compare", a, b, "--db", stored["db"])
    assert res.exit_code == 2 and message in res.output
    assert len(res.output.strip().splitlines()) == 1


# -- export -----------------------------------------------------------------------------

def test_export_csv_tables_of_the_selected_runs(stored, tmp_path, pd):
    run_id = stored["ids"]["adam"][0]
    res = invoke("export", "--db", stored["db"], "--out", tmp_path / "x", "--submission", "adam",
                 "--variant", "mnist_mlp")
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(tmp_path / "x" / "runs.csv")
    assert len(runs) == 5 and set(runs["submission"]) == {"adam"}
    assert list(runs["hparams.learning_rate"]) == [0.001] * 5
    assert json.loads(runs.loc[runs["id"] == run_id, "environment"].item())["cpu"] == "test cpu x2"
    evals = pd.read_csv(tmp_path / "x" / "evals.csv")
    assert set(evals["run_id"]) == {run_id} and len(evals) == 8
    last = evals[(evals["step"] == 4) & (evals["metric"] == "loss")]["value"]
    assert math.isnan(last.item())
    losses = pd.read_csv(tmp_path / "x" / "losses.csv")
    assert list(losses["step"]) == [0, 1, 2, 3] and math.isinf(losses["loss"].iloc[-1])
    curvature = pd.read_csv(tmp_path / "x" / "curvature.csv")
    assert sorted(curvature["name"]) == ["max_eig", "trace"]
    assert set(curvature["kind"]) == {"hessian@Dense_0/*"} and set(curvature["step"]) == {2}


def test_export_parquet_round_trips_and_without_engine_names_the_extra(stored, tmp_path,
                                                                        monkeypatch, pd):
    pytest.importorskip("pyarrow", reason="Parquet is written through pyarrow: "
                                          "pip install -e '.[export]'")
    from harness import export as exporting

    db = open_database(f"sqlite:///{stored['db']}")
    written = exporting.export(db, tmp_path / "p", exporting.Format.PARQUET)
    csv = exporting.frames(db)
    for table, path in written.items():
        back = pd.read_parquet(path)
        assert list(back.columns) == list(csv[table].columns), table
        assert len(back) == len(csv[table]), table
    assert len(pd.read_parquet(written[exporting.Table.RUNS])) == 23

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pyarrow", "fastparquet") else real(name, *a))
    res = invoke("export", "--db", stored["db"], "--out", tmp_path / "q", "--format", "parquet")
    assert res.exit_code == 2 and "pip install -e '.[export]'" in res.output
    assert not (tmp_path / "q").exists()
    bad = invoke("export", "--db", stored["db"], "--format", "xlsx")
    assert bad.exit_code == 2 and "valid: csv, parquet" in bad.output


# -- the schema document ------------------------------------------------------------------

def _doc_sections() -> dict[str, str]:
    """docs/results-schema.md split at its `### name` headings."""
    text = (REPO / "docs" / "results-schema.md").read_text()
    parts = re.split(r"^### `?([a-z_]+)`?.*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_schema_doc_names_every_column_of_every_table_and_export_file():
    from harness import export as exporting
    from harness.db.models import Base

    sections = _doc_sections()
    for table in Base.metadata.sorted_tables:
        assert table.name in sections, f"docs/results-schema.md has no section for {table.name}"
        for column in table.columns:
            assert f"`{column.name}`" in sections[table.name], f"{table.name}.{column.name}"
    exported = {"export runs": [c.name for c in exporting.Run.__table__.columns]
                + [exporting.HPARAM_PREFIX + "NAME"],
                "export evals": exporting.EVAL_COLUMNS, "export losses": exporting.LOSS_COLUMNS,
                "export curvature": exporting.CURVATURE_COLUMNS}
    text = (REPO / "docs" / "results-schema.md").read_text()
    for heading, columns in exported.items():
        section = text.split(f"#### {heading}")[1].split("####")[0]
        for column in columns:
            assert f"`{column}`" in section, f"{heading}: {column}"
    assert "results-schema.md" in (REPO / "README.md").read_text()


def test_schema_doc_read_sql_example_runs(stored, pd):
    """The doc's pandas.read_sql query runs as written against a real results database."""
    from sqlalchemy import create_engine

    text = (REPO / "docs" / "results-schema.md").read_text()
    query = re.search(r'QUERY = """(.*?)"""', text, flags=re.S).group(1)
    frame = pd.read_sql(query, create_engine(f"sqlite:///{stored['db']}"))
    assert {"submission", "variant", "step", "value"} <= set(frame.columns)
    assert len(frame) == 4
