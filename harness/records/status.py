"""The closed sets a run row is labelled with: its status and the command that made it."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run stands. `running` until its trial stops; then `reached`, `not_reached` or
    `diverged` (its result), `failed` (its code raised; the row keeps the traceback) or
    `interrupted` (Ctrl-C, or its process died)."""

    RUNNING = "running"
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


#: statuses that are a trial's result; the others (running, failed, interrupted) are redone
FINISHED: tuple[str, ...] = (RunStatus.REACHED.value, RunStatus.NOT_REACHED.value,
                             RunStatus.DIVERGED.value)


class RunOrigin(enum.StrEnum):
    """Which command made a run: `score` compares declared sets, so it must tell them apart."""

    RUN = "run"
    SWEEP = "sweep"
    SCORE = "score"
    CHECK = "check"
    ANALYSIS = "analysis"
