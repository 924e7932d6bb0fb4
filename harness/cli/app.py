"""The `curvebench` typer app and the consoles every command prints to.

The command modules of this package register themselves on `app` (harness/cli/__init__.py
imports them); only typer and rich are imported here, so `--help` needs no JAX. Commands raise
errors and leave their report to harness.errors: `curvebench` (harness.errors.run_cli) prints
any failure as one line; the app run on its own (typer's CliRunner, `app()`) prints a UserError
the same way.
"""

from __future__ import annotations

import math
import sys

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from harness.errors import CommandLineError, UserError, describe_failure, visible  # noqa: F401 - CommandLineError re-exported for the commands


class _Curvebench(TyperGroup):
    """The root command. Under run_cli (standalone_mode=False) every failure goes to run_cli;
    run standalone, a UserError is printed as the one line run_cli prints, with its exit code."""

    def resolve_command(self, ctx, args):
        """The command to run, after refusing an option that takes one value given twice
        (`run --workload a --workload b` would silently keep b)."""
        name, command, rest = super().resolve_command(ctx, args)
        sub, sub_args = command, [str(a) for a in rest]  # click also takes non-str arguments
        while hasattr(sub, "get_command") and sub_args and not sub_args[0].startswith("-"):
            sub, sub_args = sub.get_command(ctx, sub_args[0]), sub_args[1:]
        if sub is not None:
            _refuse_repeated(sub, sub_args)
        return name, command, rest

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            return super().main(*args, **kwargs)
        except UserError as e:
            message, code = describe_failure(e)
            print(f"error: {message}", file=sys.stderr, flush=True)
            sys.exit(code)


def _refuse_repeated(command, args) -> None:
    """CommandLineError for an option of one value (or a flag pair) given more than once."""
    for param in getattr(command, "params", ()):
        names = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
        if (getattr(param, "param_type_name", "") != "option" or getattr(param, "multiple", True)
                or "--help" in names):
            continue
        seen = [a.split("=", 1)[0] for a in args[:args.index("--") if "--" in args else None]
                if a.split("=", 1)[0] in names]
        if len(seen) > 1:
            raise CommandLineError(f"{' and '.join(dict.fromkeys(seen))} given {len(seen)} times; "
                                   "give it once (several values: repeat-able options such as "
                                   "sweep's --workload, or a grid `A|B`)")
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if float in (annotation, *getattr(annotation, "__args__", ())):
            for i, a in enumerate(args):
                key, eq, value = a.partition("=")
                if key in names:
                    value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
                    try:
                        finite = math.isfinite(float(value))
                    except ValueError:
                        continue  # click reports a value that is not a number
                    if not finite:
                        raise CommandLineError(f"{key} {value}: give a finite number")


app = typer.Typer(
    cls=_Curvebench,
    help="curvebench: score training algorithms, check reruns, record curvature. Any failure "
         "prints one line `error: ...` (exit 2: bad input; 3: internal); --debug (or "
         "CURVEBENCH_DEBUG=1) before or after the command adds the traceback.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


class _TextConsole(Console):
    """A console that prints every string as text: no rich markup or emoji codes are read in it
    (`log:-1:5` stays `log:-1:5`, a tag `[red]x` stays as typed) and control characters (escape
    codes, carriage returns) are shown as `\\x1b`, never sent to the terminal. Styled output is
    built as rich Text (`styled`), never as markup around user text."""

    def __init__(self, **kwargs):
        super().__init__(markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs):
        return super().render_str(visible(text), **kwargs)


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style`, then a space and `rest` as plain text (control characters shown)."""
    text = Text(visible(label), style=style or "")
    return text.append(" " + visible(rest)) if rest else text.append(" ")


#: where results go when the process's stdout is kept for them alone (`keep_stdout_for_results`)
_results = None


def keep_stdout_for_results() -> None:
    """Results (tables, --json) keep the real stdout; anything else printed while the command
    runs — a print() in a submission's code, a library's chatter — goes to stderr, so --json
    output stays parseable. Called once by the `curvebench` script, before the command."""
    global _results
    _results = sys.stdout
    out.file = _results
    sys.stdout = sys.stderr


def emit(text: str) -> None:
    """Print a result (e.g. JSON) on the results stream."""
    print(text, file=_results or sys.stdout, flush=True)


#: results and tables (stdout); a fixed width when piped, so tables keep their columns in logs
out = _TextConsole(width=None if sys.stdout.isatty() else 160)
#: progress, warnings and errors (stderr)
err = _TextConsole(stderr=True, soft_wrap=True)


def open_db(db: str | None, *, create: bool = False):
    """The results database at --db (harness.db.open_database, imported only when a command
    needs it). Only commands that record runs pass create=True: a command that reads, given a
    mistyped path, says so instead of creating an empty database there."""
    from harness.db import open_database

    return open_database(db, create=create)
