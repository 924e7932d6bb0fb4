"""Making a sweep's groups and results database usable from worker processes on other hosts.

A worker starts in its own working directory, so relative paths (submission folders, the data
folder, a SQLite file) are made absolute on the driver (a built-in submission stays a name: each
worker loads its own installed copy); they must then exist at that path on
every worker (a shared file system, or the same checkout everywhere). A SQLite file is one
host's: with workers on other hosts the results database must be a server (PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from harness.db.database import resolve_url
from harness.executors.faults import ExecutorError
from harness.records.sweep import TrialGroup
from harness.submissions import portable_submission


def absolute_groups(groups: Sequence[TrialGroup]) -> list[TrialGroup]:
    """The groups with their submission and data folders as absolute paths (built-ins by name)."""
    return [dataclasses.replace(g, submission=portable_submission(g.submission),
                                data_dir=None if g.data_dir is None else os.path.abspath(g.data_dir))
            for g in groups]


def shared_db_url(db_url: str | None, *, remote: bool, where: str) -> str | None:
    """The results-database URL workers write to. A SQLite path becomes absolute; it is refused
    when workers may run on other hosts (`remote`), or when it is in memory."""
    if db_url is None:
        return None
    url = make_url(resolve_url(db_url))
    if not url.drivername.startswith("sqlite"):
        return url.render_as_string(hide_password=False)
    if not url.database or url.database == ":memory:":
        raise ExecutorError(f"an in-memory SQLite database cannot be shared with {where}'s workers; "
                            "pass a file path or a PostgreSQL URL with --db")
    if remote:
        raise ExecutorError(f"the SQLite file {url.database} is on this host only and {where} may run "
                            "workers on others: pass a PostgreSQL URL with --db "
                            "(postgresql+psycopg://USER@HOST/DB) that every host can reach")
    return url.set(database=os.path.abspath(url.database)).render_as_string(hide_password=False)
