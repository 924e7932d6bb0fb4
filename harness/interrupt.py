"""Ctrl-C: one path from start-up to exit.

`install` (the CLI's entry point calls it first) makes SIGINT raise KeyboardInterrupt as
Python's default does, and also remembers it: an interrupt raised where Python cannot
propagate it (a garbage-collection callback of JAX's while it starts, a `__del__`) is then
not lost — `check` raises it again at the engine's next return to the host (each segment,
each concrete step, before a sweep starts) so the runs are marked `interrupted`, and the CLI
exits 130 even where a command would have finished. The swallowed interrupt's "Exception
ignored" report is not printed. A process that inherited SIGINT as ignored (started in the
background by a non-interactive shell) keeps ignoring it: that is what its starter asked for.
`deferred` holds a Ctrl-C back over a write that must not be cut in half (a trial's outcome):
it is remembered and raised by the next `check` (or the CLI exits 130 after the command).
Imports nothing of the harness.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

_requested = threading.Event()
_previous_unraisable = sys.unraisablehook


def _on_sigint(signum, frame) -> None:
    _requested.set()
    raise KeyboardInterrupt


def _unraisable(info) -> None:
    if isinstance(info.exc_value, KeyboardInterrupt):
        _requested.set()  # swallowed where it was raised: `check` raises it at the next chance
        return
    _previous_unraisable(info)


def install() -> None:
    """Route SIGINT through here (main thread only; a SIGINT inherited as ignored stays so)."""
    _requested.clear()
    sys.unraisablehook = _unraisable
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)


def requested() -> bool:
    """Whether Ctrl-C came since `install`."""
    return _requested.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came (even one swallowed where it was raised)."""
    if _requested.is_set():
        raise KeyboardInterrupt


def _remember(signum, frame) -> None:
    _requested.set()


@contextlib.contextmanager
def deferred():
    """Inside, a Ctrl-C is only remembered (`requested`, raised by the next `check`), so the
    block finishes its writes; outside the main thread, or where SIGINT is not routed here,
    nothing changes."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not _on_sigint):
        yield
        return
    signal.signal(signal.SIGINT, _remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _on_sigint)


def hold() -> None:
    """The command has returned: from now on a Ctrl-C is ignored while the CLI leaves, its exit
    code telling the command's outcome (130 if a Ctrl-C came before). Python's finalization
    resets a Python-level handler to the default one, so a Ctrl-C while JAX tears down would
    otherwise kill the interpreter by the signal; an ignored SIGINT stays ignored."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is _on_sigint):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
