"""Open the results database (SQLite file by default, any SQLAlchemy URL) and write rows as they happen."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from harness.db.models import (CurvatureArray, CurvatureSnapshot, CurvatureValue, EvalRow, Run, Sweep,
                               TrainLosses, utcnow)
from harness.errors import DatabaseError, NoDatabase, one_line
from harness.records.status import RunStatus

DEFAULT_URL = "sqlite:///curvebench.db"
#: a "running" run from another host whose heartbeat is older than this is marked interrupted
STALE_HEARTBEAT = dt.timedelta(hours=2)
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: PostgreSQL advisory lock held while one process creates or migrates the schema
SCHEMA_LOCK_KEY = 0x6375727665  # "curve"


@dataclasses.dataclass(frozen=True)
class EvalWrite:
    """One evaluation to write (`Database.add_evals`): its step, metrics, timings and the
    training losses since the eval before it (start_step, values), if any."""

    step: int
    metrics: Mapping[str, float]
    wall_s: float
    train_s: float
    losses: tuple[int, np.ndarray] | None = None


def resolve_url(url: str | None) -> str:
    """--db argument, else $CURVEBENCH_DB, else ./curvebench.db; bare paths become SQLite URLs.
    An empty or blank --db names nothing (it would mean the current folder): refused."""
    if url is not None and not url.strip():
        raise DatabaseError(f"--db {url!r} names no database; give a SQLite path or an SQLAlchemy "
                            "URL, or leave --db out for $CURVEBENCH_DB, else ./curvebench.db")
    url = url or os.environ.get("CURVEBENCH_DB", "").strip() or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    return url


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    """Every schema revision this curvebench can migrate from, oldest first."""
    script = ScriptDirectory.from_config(_alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _check_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a results database")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise DatabaseError(f"{path} is not a SQLite database (left untouched); "
                                    "pass another file with --db or $CURVEBENCH_DB")
        _check_sqlite_tables(path)
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise DatabaseError(f"results database {path} is read-only (the file or its directory "
                                f"{path.parent}): make both writable (SQLite writes a journal beside "
                                "the file), or copy the file somewhere writable and pass that with --db")
    elif not path.parent.exists():
        raise DatabaseError(f"directory {path.parent} does not exist for database {path}")
    elif not os.access(path.parent, os.W_OK):
        raise DatabaseError(f"cannot create results database {path}: directory {path.parent} is "
                            "not writable; pass another path with --db")


#: driver messages of failures the user can fix, and the fix
_USER_FAULTS = (
    (("malformed", "file is not a database", "disk i/o error"),
     "the file is damaged ({msg}); restore it from a copy, or salvage it with "
     "`sqlite3 FILE .recover | sqlite3 NEW.db` and pass NEW.db with --db"),
    (("readonly database", "read-only"), "it is read-only ({msg}): pass a writable --db"),
    (("database or disk is full", "no space left"), "the disk is full ({msg}): free space or "
     "pass a --db elsewhere"),
    (("out of range", "too long for type", "value too long", "integer overflow"),
     "a value does not fit its column ({msg}): use smaller numbers (seeds < 2^31) or shorter "
     "names (at most 128 characters)"),
)


def _users_fault(error: SADatabaseError) -> str | None:
    """What the user can do about a database failure, or None if it is the suite's."""
    msg = one_line(str(getattr(error, "orig", error)))
    for needles, fix in _USER_FAULTS:
        if any(n in msg.lower() for n in needles):
            return fix.format(msg=msg[:200])
    return None


def _require_existing(url: str) -> None:
    """A command that only reads (or upgrades) a database never creates one: a mistyped path
    is an error, not a new empty file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a results database")
    if not path.parent.exists():
        raise DatabaseError(f"directory {path.parent} does not exist for database {path}")
    if not path.is_file() or path.stat().st_size == 0:
        raise NoDatabase(f"no results database at {path} (nothing created): check the path "
                            "(--db, $CURVEBENCH_DB); a command that trains (run, sweep, score) "
                            "creates one")


def _check_sqlite_tables(path: Path) -> None:
    """Read-only look before anything writes (WAL mode rewrites the header): a readable
    SQLite file with tables must be a curvebench database."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise DatabaseError(f"{path} is not a readable SQLite database ({e}; left untouched)") from None
    if tables and "alembic_version" not in tables:
        raise DatabaseError(f"{path} holds tables {sorted(tables)} but no curvebench schema "
                            "revision; it is not a curvebench results database (left untouched)")


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            _check_sqlite_file(url)
            engine = create_engine(url, connect_args={"timeout": 60})
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as e:
        raise DatabaseError(f"cannot use --db {url!r}: {e}; give a SQLite path or an SQLAlchemy "
                            "URL such as sqlite:///results.db or "
                            "postgresql+psycopg://user@host/dbname") from None
    if parsed.get_backend_name() != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below take the locks
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlock

    return engine


class Database:
    """The results database: runs, eval rows and curvature snapshots, each written in its own transaction."""

    def __init__(self, url: str | None = None, *, upgrade: bool = False, create: bool = True):
        self.url = resolve_url(url)
        if not create:
            _require_existing(self.url)
        self.engine = _make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._ensure_schema(upgrade)
        self.mark_interrupted()

    # -- schema -------------------------------------------------------------------------

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def _ensure_schema(self, upgrade: bool) -> None:
        current, tables = self._schema_state()
        if current == head_revision():
            return
        with self._schema_lock():
            current, tables = self._schema_state()  # another process may have migrated meanwhile
            head = head_revision()
            if current == head:
                return
            if current is None and tables - {"alembic_version"}:
                raise DatabaseError(f"{self.url} holds tables {sorted(tables)} but no curvebench "
                                    "schema revision; it is not a curvebench results database "
                                    "(left untouched)")
            if current is not None and current not in known_revisions():
                raise DatabaseError(f"results database {self.url} is at schema revision {current}, "
                                    f"newer than this curvebench knows (up to {head}): use the "
                                    "newer curvebench that wrote it, or another --db (left untouched)")
            if current is not None and not upgrade:
                raise DatabaseError(f"results database {self.url} is at schema revision {current}, "
                                    f"this curvebench needs {head}: run "
                                    f"`curvebench db upgrade --db {self.url}`")
            self.upgrade()

    def _schema_state(self) -> tuple[str | None, set[str]]:
        try:
            with self.engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
                return MigrationContext.configure(conn).get_current_revision(), tables
        except SADatabaseError as e:
            raise DatabaseError(f"cannot open results database {self.url}: "
                                f"{one_line(str(e.orig))}") from None

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise creating and migrating the schema across processes: a PostgreSQL
        session-level advisory lock (SQLite: BEGIN IMMEDIATE in upgrade() already does)."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                conn.commit()

    def upgrade(self) -> None:
        """Run the Alembic migrations up to head (creates a new database's tables), in one
        transaction. On SQLite, foreign keys are off meanwhile: a migration that rebuilds a
        table (Alembic batch mode) would otherwise cascade-delete every row referring to it;
        the foreign keys are checked before the transaction commits."""
        cfg = _alembic_config()
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.connect() as conn:
            if sqlite:  # must happen outside a transaction, i.e. before SQLAlchemy's BEGIN
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise DatabaseError(f"migrating {self.url} would leave {len(broken)} "
                                                f"rows with broken foreign keys (first: {broken[0]}); "
                                                "nothing was changed")
            finally:
                if sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction; a failure the user can fix (a damaged or full file, a value too large
        for its column) leaves as a DatabaseError saying so (`_users_fault`)."""
        try:
            with self._sessions.begin() as s:
                yield s
        except SADatabaseError as e:
            why = _users_fault(e)
            if why is None:
                raise
            raise DatabaseError(f"results database {self.url}: {why}") from e

    def mark_interrupted(self, stale_after: dt.timedelta = STALE_HEARTBEAT) -> list[str]:
        """Mark "running" runs whose process is gone (this host) or whose heartbeat is stale
        (other hosts) as interrupted; called on every open. Returns their ids."""
        here, now = socket.gethostname(), utcnow()
        marked = []
        with self.session() as s:
            for run in s.scalars(select(Run).where(Run.status == RunStatus.RUNNING)):
                heartbeat = _as_utc(run.heartbeat_at)
                if run.host == here:
                    if _process_alive(run.pid, _as_utc(run.started_at)):
                        continue
                    why = f"process {run.pid} on {run.host} ended without finishing the run"
                elif now - heartbeat > stale_after:
                    why = f"no heartbeat from {run.host} since {heartbeat:%Y-%m-%d %H:%M:%S} UTC"
                else:
                    continue
                run.status, run.error, run.finished_at = RunStatus.INTERRUPTED, why, heartbeat
                marked.append(run.id)
        return marked

    # -- writes -------------------------------------------------------------------------

    def start_run(self, **fields: Any) -> str:
        with self.session() as s:
            s.add(Run(**fields))
        return fields["id"]

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise DatabaseError(f"no run {run_id}")
            for k, v in fields.items():
                setattr(run, k, v)
            run.heartbeat_at = utcnow()

    def add_eval(self, run_id: str, step: int, split: str, metrics: Mapping[str, float],
                 wall_s: float, train_s: float, losses: tuple[int, np.ndarray] | None = None,
                 **run_fields: Any) -> None:
        """Write one evaluation's metrics, and in the same transaction the training losses
        since the last eval (start_step, values) and progress fields of the run."""
        self.add_evals(run_id, split, [EvalWrite(step, metrics, wall_s, train_s, losses)],
                       **run_fields)

    def add_evals(self, run_id: str, split: str, evals: Sequence[EvalWrite],
                  **run_fields: Any) -> None:
        """Write several evaluations of one run (each with the training losses since the one
        before) and the run's progress fields after the last, in one transaction: the rows
        of `add_eval` one eval at a time, at the cost of one commit."""
        if not evals:
            return
        with self.session() as s:
            for e in evals:
                if e.losses is not None and np.size(e.losses[1]):
                    values = np.asarray(e.losses[1], dtype="<f4").ravel()
                    s.add(TrainLosses(run_id=run_id, start_step=int(e.losses[0]),
                                      count=int(values.size), data=values.tobytes()))
                s.add_all(EvalRow(run_id=run_id, step=e.step, split=split, metric=k,
                                  value=_finite_or_none(v), wall_s=e.wall_s, train_s=e.train_s)
                          for k, v in e.metrics.items())
            run = s.get(Run, run_id)
            for k, v in run_fields.items():
                setattr(run, k, v)
            run.heartbeat_at = utcnow()

    def add_sweep(self, sweep_id: str, command: str, spec: Mapping[str, Any],
                  name: str | None = None) -> str:
        with self.session() as s:
            s.add(Sweep(id=sweep_id, name=name, command=command, spec=dict(spec)))
        return sweep_id

    def add_losses(self, run_id: str, start_step: int, losses: np.ndarray) -> None:
        """Store the training losses of steps start_step, start_step+1, ... (one row per call)."""
        values = np.asarray(losses, dtype="<f4").ravel()
        if values.size == 0:
            return
        with self.session() as s:
            s.add(TrainLosses(run_id=run_id, start_step=int(start_step), count=int(values.size),
                              data=values.tobytes()))

    def losses(self, run_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, losses) of a run in step order, non-finite losses kept as they were."""
        with self.session() as s:
            rows = s.scalars(select(TrainLosses).where(TrainLosses.run_id == run_id)
                             .order_by(TrainLosses.start_step)).all()
            chunks = [(r.start_step, np.frombuffer(r.data, "<f4", count=r.count)) for r in rows]
        if not chunks:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        steps = np.concatenate([start + np.arange(v.size) for start, v in chunks])
        return steps, np.concatenate([v for _, v in chunks]).astype(np.float32)

    def add_snapshot(self, run_id: str, step: int, kind: str, compute_s: float,
                     metrics: Mapping[str, float | None], arrays: Mapping[str, np.ndarray],
                     config: Mapping[str, Any], includes_compile: bool = False) -> int:
        with self.session() as s:
            snap = CurvatureSnapshot(run_id=run_id, step=step, kind=kind, compute_s=compute_s,
                                     includes_compile=includes_compile, config=dict(config))
            snap.values = [CurvatureValue(name=k, value=_finite_or_none(v))
                           for k, v in metrics.items()]
            snap.arrays = [CurvatureArray(name=k, dtype=str(np.asarray(a).dtype),
                                          shape=list(np.shape(a)),
                                          data=np.ascontiguousarray(a).tobytes())
                           for k, a in arrays.items()]
            s.add(snap)
            s.flush()
            return snap.id

    # -- reads --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """A run by id or unique id prefix, with its eval rows loaded."""
        with self.session() as s:
            rows = s.scalars(select(Run).options(selectinload(Run.evals))
                             .where(Run.id.startswith(run_id, autoescape=True))).all()
        if not rows:
            raise DatabaseError(f"no run with id {run_id!r} in {self.url}")
        if len(rows) > 1:
            raise DatabaseError(f"run id prefix {run_id!r} is ambiguous ({len(rows)} runs)")
        return rows[0]

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs by ids or unique prefixes, in order; a run named twice (the same id, or an id and
        its prefix) is refused, so no run counts twice in a set built from the list."""
        runs, seen = [], {}
        for given in run_ids:
            run = self.get_run(given)
            if run.id in seen:
                raise DatabaseError(f"run {run.id[:8]} is named twice ({seen[run.id]!r} and "
                                    f"{given!r}); name each run once")
            seen[run.id] = given
            runs.append(run)
        return runs

    def runs(self, *, workload: str | None = None, submission: str | None = None,
             variant: str | None = None, status: str | None = None) -> list[Run]:
        query = select(Run).order_by(Run.started_at)
        for column, value in ((Run.workload, workload), (Run.submission, submission),
                              (Run.variant, variant), (Run.status, status)):
            if value is not None:
                query = query.where(column == value)
        with self.session() as s:
            return list(s.scalars(query).all())

    def eval_curve(self, run_id: str, split: str = "validation") -> dict[int, dict[str, float]]:
        curve: dict[int, dict[str, float]] = {}
        with self.session() as s:
            for row in s.scalars(select(EvalRow).where(EvalRow.run_id == run_id,
                                                       EvalRow.split == split)
                                 .order_by(EvalRow.step, EvalRow.metric)):
                curve.setdefault(row.step, {})[row.metric] = row.value
        return curve

    def snapshots(self, run_id: str) -> list[dict[str, Any]]:
        """Snapshots of a run in step order: kind, step, compute_s, config, metrics, arrays."""
        with self.session() as s:
            snaps = s.scalars(select(CurvatureSnapshot)
                              .options(selectinload(CurvatureSnapshot.values),
                                       selectinload(CurvatureSnapshot.arrays))
                              .where(CurvatureSnapshot.run_id == run_id)
                              .order_by(CurvatureSnapshot.step, CurvatureSnapshot.kind)).all()
            return [{"step": x.step, "kind": x.kind, "compute_s": x.compute_s,
                     "includes_compile": x.includes_compile, "config": x.config,
                     "metrics": {v.name: v.value for v in x.values},
                     "arrays": {a.name: np.frombuffer(a.data, a.dtype).reshape(a.shape)
                                for a in x.arrays}}
                    for x in snaps]


def _as_utc(t: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; the database stores UTC."""
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t


def _process_alive(pid: int, started_at: dt.datetime) -> bool:
    """Whether `pid` lives on this host (not a zombie) and predates the run (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # a killed child nobody has reaped yet
            return False
        ticks = int(fields[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    born = dt.datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), dt.timezone.utc)
    return born <= started_at + dt.timedelta(seconds=2)


def _finite_or_none(v: float | None) -> float | None:
    """Non-finite numbers are stored as NULL (SQLite and PostgreSQL disagree on NaN)."""
    return None if v is None or not math.isfinite(float(v)) else float(v)


def open_database(url: str | None = None, *, upgrade: bool = False, create: bool = True
                  ) -> Database:
    """Open (creating if new, unless create=False) the results database; an outdated schema
    needs upgrade=True."""
    return Database(url, upgrade=upgrade, create=create)
