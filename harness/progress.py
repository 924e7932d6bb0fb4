"""What a trial is doing now: a small typed vocabulary of phases, emitted where the work happens.

The engine (harness.runner, harness.trial.CompileCache) calls `emit` as each trial enters a
phase: preparing its program, compiling it (around the lowering and compilation itself, a
persistent-cache hit included), training, evaluating on the host, taking curvature snapshot k
of n, writing its outcome, done. `emit` hands a `PhaseChange` to the listener that
`listening` installed for the current context (harness.experiment.execute_group installs the
sweep's), and is a no-op without one, so the engine needs no callback argument threaded through
every call. Trials are named by their index in the group being run; the experiment layer turns
them into the sweep's requests (harness.experiment.TrialPhase). Rendering is the CLI's
(harness.progress_display).

A context variable, not a global, holds the listener: each thread (and each asyncio task)
sees only its own, and a process without one (a remote worker) emits nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
from collections.abc import Callable, Iterable, Iterator


class Phase(enum.Enum):
    """Where a trial is. QUEUED: waiting for an earlier program of its group to finish (or for
    a worker); PREPARING: the group's data on the device, its programs planned (a step traced),
    the trial's initial state computed; COMPILING: its program lowered and compiled (or read
    from the persistent cache); TRAINING: compiled steps running (with in-loop evaluation, the
    evals too); EVALUATING: an eval on the host; SNAPSHOT: a curvature snapshot (its own
    compilation included); WRITING: the outcome going to the results database; DONE: finished,
    with a status."""

    QUEUED = "queued"
    LOADING_DATA = "loading data"
    PREPARING = "preparing"
    COMPILING = "compiling"
    TRAINING = "training"
    EVALUATING = "evaluating"
    SNAPSHOT = "snapshot"
    WRITING = "writing"
    DONE = "done"


@dataclasses.dataclass(frozen=True)
class PhaseChange:
    """Trials (indices into the group being run) entering a phase. `step`: steps completed
    when it began; SNAPSHOT: `snapshot` k of `snapshots` n (1-based, the schedule's count);
    DONE: the trial's `status` (reached, not_reached, diverged, failed, interrupted), the step
    that first met the target (`target_step`) and the error's text, if any."""

    trials: tuple[int, ...]
    phase: Phase
    step: int | None = None
    snapshot: int | None = None
    snapshots: int | None = None
    status: str | None = None
    target_step: int | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """The phase in words: 'compiling', 'snapshot 2/5', 'done'."""
        if self.phase is Phase.SNAPSHOT and self.snapshot is not None:
            return f"snapshot {self.snapshot}/{self.snapshots}"
        return self.phase.value


Listener = Callable[[PhaseChange], None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "curvebench_progress_listener", default=None)
_last: contextvars.ContextVar[PhaseChange | None] = contextvars.ContextVar(
    "curvebench_progress_last", default=None)


@contextlib.contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send this context's phase changes to `listener` (None: nowhere) until the block ends."""
    token, last = _listener.set(listener), _last.set(None)
    try:
        yield
    finally:
        _last.reset(last)
        _listener.reset(token)


def emit(phase: Phase, trials: Iterable[int], **fields) -> None:
    """Trials enter `phase` (fields: PhaseChange's); nothing happens without a listener or
    trials."""
    listener = _listener.get()
    trials = tuple(trials)
    if listener is None or not trials:
        return
    change = PhaseChange(trials, phase, **fields)
    _last.set(change)
    listener(change)


@contextlib.contextmanager
def compiling() -> Iterator[None]:
    """Around a lowering and compilation: the trials of the latest phase are COMPILING, and
    back in that phase (announced again) when it ends."""
    listener, last = _listener.get(), _last.get()
    if listener is None or last is None or last.phase is Phase.COMPILING:
        yield
        return
    emit(Phase.COMPILING, last.trials, step=last.step)
    try:
        yield
    finally:
        _last.set(last)
        listener(last)
