"""The results database under load, crashes and bad input, on SQLite and on a real PostgreSQL.

Every test that takes `db_url` runs twice: on a fresh SQLite file and on a fresh database of
a PostgreSQL server ($CURVEBENCH_TEST_PG_URL, or one started for the session; skipped with
the reason where none can start).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from alembic import command
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from pg_server import db_url  # noqa: F401  (fixture: SQLite and PostgreSQL)
from harness.cli import app
from harness.db import DatabaseError, EvalRow, Run, open_database
from harness.db.database import _alembic_config, _make_engine, head_revision
from harness.environment import REPO_ROOT

WRITERS = 8
RUNS_PER_WRITER = 10
EVALS_PER_RUN = 3


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    return env


def run_fields(run_id: str, seed: int = 0) -> dict:
    """A complete row for Database.start_run (what the runner writes)."""
    return dict(id=run_id, workload="mnist_mlp", variant="mnist_mlp", workload_version="v",
                submission="adam", submission_path="/x", submission_hash="h", hparams={"lr": 1},
                seed=seed, rng_derivation="r", batch_size=8, max_steps=10, eval_every=5,
                chunk_mode="scan", data_source="synthetic", data_fingerprint="d", jax_version="0",
                jaxlib_version="0", backend="cpu", device_kind="cpu", xla_flags="", git_commit=None,
                environment={}, status="running", host="elsewhere", pid=0)


WRITER = textwrap.dedent("""
    import json, sys, uuid
    from harness.db import open_database
    fields, runs, evals = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    db = open_database(sys.argv[4])
    for i in range(runs):
        run_id = str(uuid.uuid4())
        db.start_run(**{**fields, "id": run_id, "seed": i})
        for step in range(1, evals + 1):
            db.add_eval(run_id, step, "validation", {"accuracy": 0.5, "loss": 1.0},
                        wall_s=0.0, train_s=0.0, final_step=step)
        db.update_run(run_id, status="not_reached")
""")


def test_concurrent_writers_lose_no_row(db_url):
    open_database(db_url)  # create the schema once, as `curvebench run` would
    args = [json.dumps(run_fields("x")), str(RUNS_PER_WRITER), str(EVALS_PER_RUN), db_url]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, *args], env=_subprocess_env(),
                              stderr=subprocess.PIPE, text=True) for _ in range(WRITERS)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    db = open_database(db_url)
    with db.session() as s:
        runs = s.scalar(select(func.count()).select_from(Run))
        evals = s.scalar(select(func.count()).select_from(EvalRow))
        finished = s.scalar(select(func.count()).select_from(Run).where(Run.status == "not_reached"))
    assert runs == finished == WRITERS * RUNS_PER_WRITER
    assert evals == WRITERS * RUNS_PER_WRITER * EVALS_PER_RUN * 2


TRAINER = textwrap.dedent("""
    from harness.db import open_database
    from harness.runner import run_trial
    from harness.submissions import load_submission
    from workloads import get_workload
    workload = get_workload("mnist_mlp:width=16")
    data = workload.synthetic_dataset({{"train": 256, "validation": 128}}, seed=0)
    run_trial(workload, load_submission({sub!r}), data, 0, db=open_database({url!r}),
              max_steps=200_000, eval_every=2)  # killed long before the end
""")


def _eval_rows(url: str) -> list[tuple[int, str]]:
    engine = _make_engine(url)
    try:
        with engine.connect() as conn:
            if "eval_rows" not in set(conn.dialect.get_table_names(conn)):
                return []
            return [tuple(r) for r in conn.execute(text("SELECT step, metric FROM eval_rows"))]
    finally:
        engine.dispose()


def test_sigkill_mid_run_keeps_committed_rows_and_marks_run_interrupted(db_url):
    """A real trial (synthetic labels: never reaches its target) is SIGKILLed while writing."""
    script = TRAINER.format(sub=str(REPO_ROOT / "submissions" / "sgd"), url=db_url)
    proc = subprocess.Popen([sys.executable, "-c", script], env=_subprocess_env(),
                            stderr=subprocess.PIPE, text=True)
    seen: list = []
    deadline = time.monotonic() + 240
    while len(seen) < 10 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        seen = _eval_rows(db_url)
    assert proc.poll() is None, proc.stderr.read()
    assert len(seen) >= 10, "the trial wrote no eval rows in time"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after = _eval_rows(db_url)
    assert set(seen) <= set(after)
    steps: dict[int, set] = {}
    for step, metric in after:
        steps.setdefault(step, set()).add(metric)
    assert all(m == {"accuracy", "loss"} for m in steps.values()), "a half-written evaluation"
    db = open_database(db_url)
    (run,) = db.runs()
    assert run.status == "interrupted"
    assert str(proc.pid) in run.error
    assert run.final_step == max(steps)


def test_running_run_of_live_process_is_left_alone(db_url):
    db = open_database(db_url)
    import socket
    fields = run_fields(str(uuid.uuid4()))
    fields.update(host=socket.gethostname(), pid=os.getpid())
    db.start_run(**fields)
    other = run_fields(str(uuid.uuid4()))  # another host, fresh heartbeat
    db.start_run(**other)
    assert {r.status for r in open_database(db_url).runs()} == {"running"}


def test_stale_heartbeat_from_other_host_is_interrupted(db_url):
    import datetime as dt
    db = open_database(db_url)
    db.start_run(**run_fields("r-stale"))
    with db.session() as s:
        s.get(Run, "r-stale").heartbeat_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    run = open_database(db_url).get_run("r-stale")
    assert run.status == "interrupted" and "no heartbeat from elsewhere" in run.error


def test_old_schema_gets_clear_message_and_upgrade(db_url):
    engine = _make_engine(db_url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    with pytest.raises(DatabaseError, match="curvebench db upgrade"):
        open_database(db_url)
    result = CliRunner().invoke(app, ["runs", "--db", db_url])
    assert result.exit_code == 2 and "curvebench db upgrade" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert open_database(db_url).revision() == head_revision()


@pytest.mark.parametrize("content", [b"these are my lab notes, not a database\n" * 50,
                                     b"SQLite format 3\x00" + bytes(range(256)) * 20],
                         ids=["text", "bad-sqlite-pages"])
def test_non_database_file_is_refused_and_left_untouched(tmp_path, content):
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DatabaseError, match="not a"):
        open_database(str(path))
    result = CliRunner().invoke(app, ["runs", "--db", str(path)])
    assert result.exit_code == 2 and "error" in result.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DatabaseError, match="not a curvebench results database"):
        open_database(str(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_evals_written_together_are_the_rows_of_evals_written_one_at_a_time(tmp_path):
    """Database.add_evals (one transaction per compiled segment) writes exactly the eval rows,
    losses and progress fields that add_eval writes one eval at a time."""
    import numpy as np

    from harness.db.database import EvalWrite

    evals = [EvalWrite(step, {"accuracy": step / 10, "loss": float("nan") if step == 3 else 1.0},
                       wall_s=step * 0.5, train_s=step * 0.25,
                       losses=(step - 1, np.array([step], np.float32)))
             for step in (1, 2, 3)]
    rows = []
    for name in ("one", "together"):
        db = open_database(f"sqlite:///{tmp_path / name}.db")
        db.start_run(**run_fields("r"))
        if name == "one":
            for e in evals:
                db.add_eval("r", e.step, "validation", e.metrics, e.wall_s, e.train_s, e.losses,
                            final_step=e.step)
        else:
            db.add_evals("r", "validation", evals, final_step=evals[-1].step)
        run = db.get_run("r")
        rows.append(([(e.step, e.metric, e.value, e.wall_s, e.train_s) for e in
                      sorted(run.evals, key=lambda e: (e.step, e.metric))],
                     run.final_step, [a.tolist() for a in db.losses("r")]))
    assert rows[0] == rows[1] and len(rows[0][0]) == 6 and rows[0][2] == [[0, 1, 2], [1, 2, 3]]
