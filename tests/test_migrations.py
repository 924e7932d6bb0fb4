"""Upgrading a results database never loses a row, from every earlier schema revision, on SQLite
and PostgreSQL; concurrent first use of an empty PostgreSQL database is serialised.

The databases are made by iterating Alembic's revisions (a new migration is covered without
editing this file) and filled by reflecting whatever tables that revision has, with rows in
every table (runs, evals, snapshots with values and arrays, reference sets, losses, ...).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from alembic import command

from pg_server import Unavailable, db_url, fresh_database, server_url  # noqa: F401
from harness.db import open_database
from harness.db.database import _alembic_config, _make_engine, head_revision, known_revisions
from harness.environment import REPO_ROOT

ROWS_PER_TABLE = 3


def _value(column: sa.Column, i: int):
    """A valid value of a reflected column for row i (the same i gives the same value, so that a
    foreign key to row i of the referenced table holds)."""
    t = column.type
    if isinstance(t, sa.Boolean):
        return i % 2 == 0
    if isinstance(t, sa.Integer):
        return i + 1
    if isinstance(t, (sa.Float, sa.Numeric)):
        return 0.5 + i
    if isinstance(t, sa.DateTime):
        return dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=i)
    if isinstance(t, sa.JSON):
        return {"row": i}
    if isinstance(t, sa.LargeBinary):
        return bytes([i]) * 8
    if isinstance(t, (sa.String, sa.Text)):
        text = f"{column.name[:4]}{i}"
        return text[: t.length] if getattr(t, "length", None) else text
    raise AssertionError(f"no test value for column {column} of type {t!r}")


def _fill(engine: sa.Engine) -> dict[str, int]:
    """Insert ROWS_PER_TABLE rows into every table but alembic_version; returns counts."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = []
            for i in range(ROWS_PER_TABLE):
                row = {}
                for col in table.columns:
                    fks = list(col.foreign_keys)
                    row[col.name] = _value(fks[0].column if fks else col, i)
                rows.append(row)
            conn.execute(table.insert(), rows)
    return _counts(engine)


def _counts(engine: sa.Engine) -> dict[str, int]:
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
                for t in meta.sorted_tables if t.name != "alembic_version"}


def _at_revision(url: str, revision: str) -> None:
    engine = _make_engine(url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def _integrity_ok(url: str) -> None:
    if url.startswith("sqlite"):
        engine = _make_engine(url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        engine.dispose()


EARLIER = [r for r in known_revisions() if r != head_revision()]


def test_every_earlier_revision_is_covered():
    assert EARLIER and EARLIER[0] == "0001" and len(EARLIER) == len(known_revisions()) - 1


@pytest.mark.parametrize("revision", EARLIER)
def test_upgrade_from_every_revision_keeps_every_row(db_url, revision):
    _at_revision(db_url, revision)
    engine = _make_engine(db_url)
    before = _fill(engine)
    engine.dispose()
    assert all(n == ROWS_PER_TABLE for n in before.values()), before
    database = open_database(db_url, upgrade=True)
    assert database.revision() == head_revision()
    after = _counts(database.engine)
    assert {t: after[t] for t in before} == before  # no row of an older table lost
    database.engine.dispose()
    _integrity_ok(db_url)


SCHEMA_USER = textwrap.dedent("""
    import sys
    from harness.db import open_database
    db = open_database(sys.argv[1])
    db.start_run(**{"id": sys.argv[2], "workload": "w", "variant": "w", "workload_version": "v",
        "submission": "s", "submission_path": "/s", "submission_hash": "h", "hparams": {},
        "seed": 0, "rng_derivation": "r", "batch_size": 1, "max_steps": 1, "eval_every": 1,
        "chunk_mode": "scan", "data_source": "d", "data_fingerprint": "f", "jax_version": "0",
        "jaxlib_version": "0", "backend": "cpu", "device_kind": "cpu", "xla_flags": "",
        "git_commit": None, "environment": {}, "status": "not_reached", "host": "h", "pid": 0})
""")
PROCESSES = 16


@pytest.mark.postgres
def test_sixteen_processes_on_an_empty_postgres_database_all_succeed():
    try:
        url = fresh_database(server_url())
    except Unavailable as e:
        pytest.skip(f"no PostgreSQL server: {e}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", SCHEMA_USER, url, f"run-{i}"], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(PROCESSES)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, errors
    database = open_database(url)
    assert database.revision() == head_revision()
    assert len(database.runs()) == PROCESSES
