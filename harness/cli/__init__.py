"""The `curvebench` command line: parse, call the harness, print (tables or --json).

Only typer and rich are imported at start-up: JAX, Flax, SQLAlchemy, the runner and the
workloads are imported inside the commands that need them, so `--help` and malformed input
answer at once. Training goes through the experiment layer (harness.experiment.run_sweep).
One module per command family registers its commands on `app` (harness/cli/app.py); options
several commands share are declared once in harness/cli/options.py.
"""

from __future__ import annotations

import os
import sys

try:
    # the command modules register on `app` when imported, in the order --help lists them
    from harness.cli import db, run, sweep, score, runs, curvature, report, workloads, refs  # noqa: F401,I001
    from harness.cli.app import app, keep_stdout_for_results
    from harness.cli.options import CHUNK_MODES, CURVATURE_EVERY, DIVERGENCE_FACTOR
except KeyboardInterrupt:  # Ctrl-C while the command line loads, before `main` can catch it
    print("error: interrupted", file=sys.stderr, flush=True)
    os._exit(130)

__all__ = ["CHUNK_MODES", "CURVATURE_EVERY", "DIVERGENCE_FACTOR", "app", "main"]


def main() -> None:
    """The `curvebench` script: the app, with every failure reported as one line (harness.errors)."""
    from harness import interrupt
    from harness.errors import EXIT_INTERRUPTED, run_cli

    interrupt.install()
    keep_stdout_for_results()
    code = run_cli(app)
    interrupt.hold()  # the command is done: a Ctrl-C while leaving changes nothing
    if interrupt.requested() and code != EXIT_INTERRUPTED:
        # a Ctrl-C swallowed where it came and not raised again (the command was past its last
        # check): the user asked to stop, so the command did not complete as asked
        print("error: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        # the runs are marked and committed, the message printed: leave now, without tearing
        # down JAX's threads mid-computation (which can crash the interpreter on its way out)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
