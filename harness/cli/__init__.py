"""The `curvebench` command line: parse, call the harness, print (tables or --json).

Only typer and rich are imported at start-up: JAX, Flax, SQLAlchemy, the runner and the
workloads are imported inside the commands that need them, so `--help` and malformed input
answer at once. Training goes through the experiment layer (harness.experiment.run_sweep).
One module per command family registers its commands on `app` (harness/cli/app.py); options
several commands share are declared once in harness/cli/options.py.
"""

from __future__ import annotations

import sys

# the command modules register on `app` when imported, in the order --help lists them
from harness.cli import db, run, sweep, score, runs, curvature, report, workloads, refs  # noqa: F401,I001
from harness.cli.app import app
from harness.cli.options import CHUNK_MODES, CURVATURE_EVERY, DIVERGENCE_FACTOR

__all__ = ["CHUNK_MODES", "CURVATURE_EVERY", "DIVERGENCE_FACTOR", "app", "main"]


def main() -> None:
    """The `curvebench` script: the app, with every failure reported as one line (harness.errors)."""
    from harness.errors import run_cli

    sys.exit(run_cli(app))
