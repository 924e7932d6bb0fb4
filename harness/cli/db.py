"""`curvebench db`: results database maintenance."""

from __future__ import annotations

import typer

from harness.cli.app import app, out
from harness.cli.options import DbOpt

db_app = typer.Typer(help="Results database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None) -> None:
    """Migrate the results database to this curvebench's schema revision."""
    from harness.db import open_database

    database = open_database(db, upgrade=True, create=False)
    out.print(f"{database.url} is at schema revision {database.revision()}")
