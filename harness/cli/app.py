"""The `curvebench` typer app and the consoles every command prints to.

The command modules of this package register themselves on `app` (harness/cli/__init__.py
imports them); only typer and rich are imported here, so `--help` needs no JAX.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(help="curvebench: score training algorithms, check reruns, record curvature. "
                  "Any failure prints one line `error: ...` (exit 2: bad input; 3: internal); "
                  "--debug (or CURVEBENCH_DEBUG=1) before or after the command adds the traceback.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
#: results and tables (stdout); a fixed width when piped, so tables keep their columns in logs
out = Console(width=None if sys.stdout.isatty() else 160)
#: progress, warnings and errors (stderr)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr and exit with `code`."""
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def open_db(db: str | None):
    """The results database at --db (harness.db.open_database)."""
    from harness.db import DatabaseError, open_database

    try:
        return open_database(db)
    except DatabaseError as e:
        fail(str(e))
