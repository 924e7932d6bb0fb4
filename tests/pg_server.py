"""A throwaway PostgreSQL server for the database tests: $CURVEBENCH_TEST_PG_URL, or one we start.

`server_url()` returns an SQLAlchemy URL of a running server (or raises Unavailable with the
reason); `fresh_database(url)` creates an empty database on it for one test; the `db_url`
fixture (import it into a test module) gives each test a fresh SQLite file and a fresh
PostgreSQL database, skipping the latter with the reason where no server can start.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

ENV_URL = "CURVEBENCH_TEST_PG_URL"
_started: dict[str, str] = {}


class Unavailable(RuntimeError):
    """No PostgreSQL server can be used here; the message says why."""


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb refuses root: run the server tools as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if not runuser:
        raise Unavailable("running as root and no `runuser` to start PostgreSQL as user postgres")
    return [runuser, "-u", "postgres", "--", *cmd]


def _start() -> str:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not installed: "
                          "apt-get install -y postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg 3 not installed: pip install 'psycopg[binary]'") from None
    root = tempfile.mkdtemp(prefix="curvebench-pg-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    try:
        subprocess.run(_as_server_user([initdb, "-D", data, "-U", "postgres", "--auth=trust",
                                        "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        subprocess.run(_as_server_user([pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w",
                                        "-t", "60", "-o", f"-p {port} -k {sock} "
                                        "-c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(f"could not start a PostgreSQL server: {e} {detail.decode(errors='replace')[-300:]}")

    def stop():
        subprocess.run(_as_server_user([pg_ctl, "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def server_url() -> str:
    """$CURVEBENCH_TEST_PG_URL, else a server started once for this test session."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    if "url" not in _started:
        try:
            _started["url"] = _start()
        except Unavailable as e:
            _started["url"] = ""
            _started["why"] = str(e)
    if not _started["url"]:
        raise Unavailable(_started["why"])
    return _started["url"]


def fresh_database(url: str) -> str:
    """Create an empty database on the server of `url`; returns its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"curvebench_test_{uuid.uuid4().hex[:12]}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh results-database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results.db'}"
    try:
        return fresh_database(server_url())
    except Unavailable as e:
        pytest.skip(f"no PostgreSQL server: {e}")
