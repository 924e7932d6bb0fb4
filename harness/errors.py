"""User errors and the one-line report of any failure at the command line.

Every error the user can fix (a bad name, value, file or database) is a `UserError` raised
where the bad input is detected; its message says what is wrong and how to fix it. The CLI's
entry point (`run_cli`) prints any failure as one line `error: ...` — user errors with exit
code 2, an exception raised inside a submission's code as such, anything else as an internal
error with exit code 3 — and the full traceback only with `--debug` or $CURVEBENCH_DEBUG=1.
A failed trial's database row keeps the full traceback in its `error` field regardless.
A submission's code is the files the submission loader executed (`mark_submission_code`,
whatever the submission's format), so a frame of any of them makes the failure the user's.

Every user error class is defined here, one per kind of input (a spec, data, the database,
a reference set, a checkpoint, a grid, ...), and re-exported where it is raised. This module
imports nothing of the harness (and no JAX, no SQLAlchemy), so every layer can raise them.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

#: exit codes: 0 success; 1 a check that ran and failed (see `curvebench check`); 2 bad input
#: (including an exception inside the user's submission); 3 an unexpected internal error;
#: 130 interrupted by the user.
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
DEBUG_ENV = "CURVEBENCH_DEBUG"
DEBUG_FLAG = "--debug"
#: control characters but newline and tab (C0, DEL, C1)
_CONTROL = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]")
#: the source files of the submissions loaded in this process (`mark_submission_code`)
_SUBMISSION_FILES: set[str] = set()


class UserError(Exception):
    """Input the user can fix; the message says what is wrong and how to fix it (one line)."""

    exit_code = EXIT_BAD_INPUT


class SpecError(UserError, ValueError):
    """A workload name, variant, knob or hyperparameter that does not fit the contract."""


class DataError(UserError, ValueError):
    """A dataset file that is there but unusable (truncated, corrupt, wrong shape or labels);
    the message names the file."""


class TooLarge(UserError, ValueError):
    """A trial whose sizes cannot fit (memory, the int32 step counter); checked before compiling."""


class CompareError(UserError, ValueError):
    """A side that names nothing the database holds, or a malformed side."""

class QueryError(UserError, ValueError):
    """A filter that cannot match anything as written (unknown status, origin, sweep)."""

class SelectionError(UserError, ValueError):
    """A sweep or tag to score that the database does not hold; the message says what it has."""

class ReportError(UserError, RuntimeError):
    """The report cannot be written as asked; the message says why and what to do."""

class OutputError(UserError, ValueError):
    """An output folder that cannot be written as asked (blank, a file, not writable, or holding
    files curvebench did not write); the message says why and how to fix it."""

class ExportError(UserError, ValueError):
    """The export cannot be written as asked (format, missing extra, output path)."""

class DataUnavailable(UserError, RuntimeError):
    """The data a workload needs is not on this machine; the message says how to get it."""

class GridError(UserError, ValueError):
    """A grid or config file that does not parse; the message shows the valid form."""

class ExecutorError(UserError, RuntimeError):
    """A sweep cannot go on as asked; the message says why and what to do."""

class CommandLineError(UserError):
    """Options a command refuses by itself (missing, contradictory, or not of the form it
    parses); the message says how to fix them."""

class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable or does not fit the code resuming it."""

class ScheduleError(UserError, ValueError):
    """A snapshot schedule SPEC that does not parse; the message shows the grammar."""

class TrackingError(UserError, RuntimeError):
    """The tracker cannot be used as asked (mlflow missing, a URI it refuses)."""

class DatabaseError(UserError, RuntimeError):
    """The results database cannot be used as asked; the message says why and what to do."""


class NoDatabase(DatabaseError):
    """A command that only reads was given a database path where there is none (nothing is
    created there)."""

class CheckError(UserError, ValueError):
    """The check cannot run as asked (bad runs, no matching references); exit code 2."""

class RefsError(UserError, ValueError):
    """A reference set or file that cannot be used as asked; the message says why."""

class Unsupported(SpecError):
    """An AlgoPerf workload feature the wrapped suite workload cannot honour."""


class UnsupportedAttribute(Unsupported, AttributeError):
    """An attribute of AlgoPerf's Workload API the suite's view cannot answer (an
    AttributeError too, so `hasattr` and `getattr(..., default)` work as on AlgoPerf's)."""


def visible(text: str) -> str:
    """`text` with its control characters but newline and tab shown as escapes (`\\x1b`, `\\r`):
    user text (a tag, a name, a file's contents) printed to a terminal moves no cursor, sets no
    colour or title."""
    text = str(text)
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def one_line(text: str) -> str:
    """Collapse a message to one line (messages from libraries may span several), its control
    characters shown (`visible`)."""
    return " ".join(visible(str(text).replace("\r", " ")).split())


def mark_submission_code(files: Iterable[str | Path]) -> None:
    """Record source files the submission loader executed (a submission.py and the helper
    modules it imported): a failure raised through them is the submission's, not the suite's."""
    _SUBMISSION_FILES.update(os.path.realpath(f) for f in files)


def _is_submission_code(filename: str) -> bool:
    return bool(_SUBMISSION_FILES) and os.path.realpath(filename) in _SUBMISSION_FILES


def _submission_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback that runs a loaded submission's code, if any."""
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if _is_submission_code(frame.f_code.co_filename):
            found = traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_name)
    return found


def _innermost_frame(exc: BaseException) -> traceback.FrameSummary | None:
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1] if frames else None


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception that reached the command line."""
    if isinstance(exc, UserError):
        return one_line(str(exc)), exc.exit_code
    what = one_line(f"{type(exc).__name__}: {exc}")
    frame = _submission_frame(exc)
    if frame is not None:
        return (f"the submission's code raised {what} (in {Path(frame.filename).name}:{frame.lineno}, "
                f"{frame.name}); fix the submission — the run's row keeps the full traceback "
                f"(error field), {DEBUG_FLAG} prints it", EXIT_BAD_INPUT)
    if isinstance(exc, MemoryError):
        return ("out of memory: use a smaller batch size or model, or a machine with more memory "
                f"({DEBUG_FLAG} prints the traceback)", EXIT_BAD_INPUT)
    frame = _innermost_frame(exc)
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return (f"unexpected {what}{where}; rerun with {DEBUG_FLAG} (or {DEBUG_ENV}=1) for the "
            "traceback and report it", EXIT_INTERNAL)


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run_cli(main: Callable[..., object], argv: Sequence[str] | None = None) -> int:
    """Run a click/typer app on argv (default sys.argv[1:]) and return its exit code, printing
    any failure as one line on stderr (the traceback too under --debug / $CURVEBENCH_DEBUG)."""
    click = _click_exceptions()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        code = main(args=argv, prog_name="curvebench", standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer's answer to Ctrl-C in a command: Exit(130), returned
            print("error: interrupted", file=sys.stderr)
        return code if isinstance(code, int) else 0
    except click.Exit as e:
        return e.exit_code
    except click.NoArgsIsHelpError as e:  # `curvebench` or a group alone: the help text
        e.show()
        return 0
    except click.UsageError as e:  # a bad option or value: click's message, on one line
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        print(f"error: {one_line(e.format_message())}{where}", file=sys.stderr)
        return e.exit_code
    except click.ClickException as e:
        print(f"error: {one_line(e.format_message())}", file=sys.stderr)
        return e.exit_code
    except click.Abort as e:
        cause = e.__cause__ or e.__context__
        if cause is None or isinstance(cause, KeyboardInterrupt):
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _report(cause, debug)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:  # sys.exit() in a submission's code fails the command, never exits 0
        if _submission_frame(e) is None:
            raise
        return _report(e, debug)
    except Exception as e:
        return _report(e, debug)


class _ClickExceptions:
    """click's exception classes as tuples: typer vendors its own click (typer._click, with
    Exit and Abort in typer.exceptions), and an app may be built on the real click."""

    def __init__(self):
        modules = []
        for name in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
            try:
                modules.append(importlib.import_module(name))
            except ImportError:
                continue
        for cls in ("Exit", "UsageError", "ClickException", "Abort", "NoArgsIsHelpError"):
            setattr(self, cls, tuple(getattr(m, cls) for m in modules if hasattr(m, cls)))


def _click_exceptions() -> _ClickExceptions:
    return _ClickExceptions()


def _report(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message, code = describe_failure(exc)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code

class AnalysisSettingError(UserError, ValueError):
    """An analysis option the analysis cannot use (it sets that quantity itself, or takes one
    value only); the message names the options it takes."""
