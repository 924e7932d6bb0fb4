"""The CLI's view of a sweep's progress: one line (or bar) per trial, fed by the sweep's events
(harness.experiment.SweepEvent, whose phases harness.progress defines).

Three modes (`Mode.choose`): LIVE on a terminal — rich progress bars, each with the trial's
phase ("compiling", "snapshot 2/5", ...), its steps, its latest target metric and its elapsed
time, and when it finishes its outcome ("reached at step 120", "not reached in 500 steps",
"diverged at step 40: ...", "failed: ..."); LINES when the output is not a terminal (a log, CI)
— no bars and no escape codes, one plain timestamped line each time a trial enters a phase it
has not been in before (every snapshot counts), and one when it finishes; QUIET — nothing.

LINES mode holds two kinds of line back for a moment, each printed with the time it happened:
the runner announces training (or a host eval) before the call that runs it, and that call may
first compile its program, so a training or evaluating line waits HOLD_S and is dropped if
compiling begins meanwhile (training is announced again when compiling ends): a log reads
"compiling" then "training", in the order they happened. A sweep-level line ("loading data")
waits SWEEP_HOLD_S: bad input found right after it (a missing file, a budget that cannot fit)
ends the display with an error and drops it, so the error stays the only line.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.records.sweep import (GroupFinished, GroupStarted, SweepEvent, SweepPhase,
                                   TrialEvaluated, TrialPhase, TrialRequest)
from harness.progress import Phase, PhaseChange
from harness.records.status import RunStatus

#: the style of a finished trial's outcome, by status
OUTCOME_STYLE = {RunStatus.REACHED: "green", RunStatus.NOT_REACHED: "yellow",
                 RunStatus.DIVERGED: "red", RunStatus.FAILED: "bold red",
                 RunStatus.INTERRUPTED: "yellow"}
#: seconds a LINES-mode training/evaluating line waits for a compilation that supersedes it
HOLD_S = 0.5
#: seconds a LINES-mode sweep-level line waits for an error that drops it
SWEEP_HOLD_S = 2.0
#: seconds between two LIVE-mode redraws on phase changes
REFRESH_S = 0.05
#: characters of a trial's hyperparameters shown in its label (`check` passes them all)
LABEL_HPARAMS = 48
#: the style of a phase while it lasts
PHASE_STYLE = {Phase.COMPILING: "magenta", Phase.TRAINING: "cyan", Phase.EVALUATING: "blue",
               Phase.SNAPSHOT: "bold blue", Phase.WRITING: "dim", Phase.QUEUED: "dim"}


class Mode(enum.Enum):
    """How progress is shown; see the module docstring."""

    LIVE = "live"
    LINES = "lines"
    QUIET = "quiet"

    @classmethod
    def choose(cls, quiet: bool, console: Console) -> Mode:
        """QUIET when asked, LIVE when `console` writes to a terminal, else LINES."""
        if quiet:
            return cls.QUIET
        return cls.LIVE if console.is_terminal else cls.LINES


def outcome(status: str, final_step: int | None, target_step: int | None,
            error: str | None) -> str:
    """A finished trial in words: 'reached at step 120', 'not reached in 500 steps',
    'diverged at step 40: loss became nan at step 40', 'failed at step 3: ValueError: ...'."""
    step = final_step or 0
    if status == RunStatus.REACHED:
        return f"reached at step {target_step if target_step is not None else step}"
    if status == RunStatus.NOT_REACHED:
        return f"not reached in {step} steps"
    words = f"{status.replace('_', ' ')} at step {step}"
    last = (error or "").strip().splitlines()[-1:]  # a traceback's last line names the error
    return f"{words}: {last[0]}" if last else words


def trial_label(request: TrialRequest) -> str:
    """workload / submission [hparams, cut to LABEL_HPARAMS characters] / seed N."""
    hp = ",".join(f"{k}={v}" for k, v in request.hparams.items())
    if len(hp) > LABEL_HPARAMS:
        hp = hp[:LABEL_HPARAMS - 3] + "..."
    return (f"{request.workload} / {Path(request.submission).name}{' ' + hp if hp else ''}"
            f" / seed {request.seed}")


def _key(request: TrialRequest) -> str:
    return json.dumps([request.workload, request.submission, request.hparams, request.seed],
                      sort_keys=True, default=str)


@dataclasses.dataclass(frozen=True)
class _Held:
    """A LINES-mode line held back: when it happened, when it is due, its text and label."""

    at: float
    due: float
    line: str
    label: str


@dataclasses.dataclass
class _Trial:
    """What the display knows of one trial."""

    label: str
    budget: int
    metric_name: str | None
    task: Any = None  # rich TaskID (LIVE)
    metric: str = ""
    printed: set[str] = dataclasses.field(default_factory=set)  # phase labels (LINES)
    shown: str = "queued"  # the phase label on its bar (LIVE)
    done: bool = False


class ProgressDisplay:
    """Consumes a sweep's events (call it with each) and shows them as its mode says; use it
    as a context manager around the sweep. `refresh_s`: the least time between two redraws of
    the bars on phase changes (0: every change drawn)."""

    def __init__(self, console: Console, mode: Mode, refresh_s: float = REFRESH_S):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console, self.mode = console, mode
        self.trials: dict[str, _Trial] = {}
        self.t0 = time.perf_counter()
        self.header = None
        self.sweep_text = ""  # the latest sweep-level phase
        self.refresh_s = refresh_s
        self._drawn = 0.0  # when the bars were last drawn (LIVE)
        #: LINES mode: lines held back, by id(trial) (None: the sweep's), each with the time
        #: it happened, when it is due and its phase label
        self._held: dict[int | None, _Held] = {}
        self._lock = threading.RLock()
        self.bars = Progress(TextColumn("{task.description}"), TextColumn("{task.fields[phase]}"),
                             BarColumn(), TextColumn("{task.fields[steps]}"),
                             TextColumn("{task.fields[metric]}"), TimeElapsedColumn(),
                             console=console, disable=mode is not Mode.LIVE)

    def __enter__(self) -> ProgressDisplay:
        self.t0 = time.perf_counter()
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self._flush(everything=True)
        else:  # the error is what matters now
            with self._lock:
                self._held.clear()
            if self.header is not None:
                self.bars.remove_task(self.header)
        self.bars.__exit__(*exc)

    def __call__(self, event: SweepEvent) -> None:
        if self.mode is Mode.QUIET:
            return
        if isinstance(event, SweepPhase):
            self._sweep_phase(event)
        elif isinstance(event, GroupStarted):
            self._group_started(event)
        elif isinstance(event, TrialPhase):
            self._phase(self._trial(event.request), event.change)
        elif isinstance(event, TrialEvaluated):
            self._evaluated(event)
        elif isinstance(event, GroupFinished):
            for t in event.outcomes:
                trial = self._trial(t.request)
                if not trial.done:  # remote executors report no phases
                    r = t.result
                    self._phase(trial, PhaseChange((), Phase.DONE, step=r.final_step,
                                                   status=r.status, target_step=r.steps_to_target,
                                                   error=r.error))

    # -- events --------------------------------------------------------------------------

    def _sweep_phase(self, event: SweepPhase) -> None:
        text = f"{event.phase.value} {event.detail}".strip()
        if text == self.sweep_text:  # e.g. check loads the data, then its sweep checks it
            return
        self.sweep_text = text
        if self.mode is Mode.LINES:
            self._flush(everything=True, sweep_only=True)
            self._hold(None, text, text, SWEEP_HOLD_S)
            return
        if self.header is None:
            self.header = self.bars.add_task("sweep", total=None, phase=text, steps="", metric="")
        else:
            self.bars.update(self.header, phase=text)
        self._refresh()

    def _group_started(self, event: GroupStarted) -> None:
        from workloads import get_workload

        if self.header is not None:
            self.bars.remove_task(self.header)
            self.header = None
        w = get_workload(event.group.workload)
        budget = int(event.group.options.max_steps or w.max_steps)
        for request in event.requests:
            key = _key(request)
            if key in self.trials and not self.trials[key].done:
                continue  # a GroupStarted repeated; a finished trial asked again gets a new bar
            trial = self.trials[key] = _Trial(trial_label(request), budget, w.target.metric)
            if self.mode is Mode.LIVE:
                trial.task = self.bars.add_task(escape(trial.label), total=budget,
                                                phase=self._styled(Phase.QUEUED, "queued"),
                                                steps=f"0/{budget}", metric="")
        if self.mode is Mode.LIVE:
            self._refresh()

    def _trial(self, request: TrialRequest) -> _Trial:
        """The trial's record; a request seen in no GroupStarted (an event out of order) gets a
        record without a bar."""
        return self.trials.setdefault(_key(request), _Trial(trial_label(request), 0, None))

    def _phase(self, trial: _Trial, change: PhaseChange) -> None:
        if trial.done:
            return
        if self.mode is Mode.LINES:
            self._flush(everything=True, sweep_only=True)
            self._release(trial, print_it=change.phase is not Phase.COMPILING)
        if change.phase is Phase.DONE:
            trial.done = True
            text = outcome(change.status or RunStatus.FAILED, change.step, change.target_step, change.error)
            if self.mode is Mode.LINES:
                self._line(f"{trial.label}: {text}{'  ' + trial.metric if trial.metric else ''}")
            elif trial.task is not None:
                step = change.step or 0
                full = change.status in (RunStatus.REACHED, RunStatus.NOT_REACHED)  # ran as far as it needed
                self.bars.update(trial.task, phase=f"[{OUTCOME_STYLE.get(change.status, 'red')}]"
                                 f"{escape(text)}[/]", steps=f"{step} steps",
                                 total=max(step, 1) if full else trial.budget, completed=step)
                self.bars.stop_task(trial.task)
                self._refresh()
            return
        label = change.label
        if self.mode is Mode.LINES:
            if label not in trial.printed:
                trial.printed.add(label)
                at = f" (step {change.step})" if change.step else ""
                line = f"{trial.label}: {label}{at}"
                if change.phase in (Phase.TRAINING, Phase.EVALUATING):
                    self._hold(id(trial), line, label, HOLD_S)
                else:
                    self._line(line)
        elif trial.task is not None:
            fields = {"phase": self._styled(change.phase, label)}
            if change.step is not None:
                fields.update(completed=change.step, steps=f"{change.step}/{trial.budget}")
            self.bars.update(trial.task, **fields)
            if label != trial.shown:
                trial.shown = label
                self._refresh()

    def _evaluated(self, event: TrialEvaluated) -> None:
        trial = self._trial(event.request)
        name = trial.metric_name
        if name in event.metrics:
            trial.metric = f"{name}={event.metrics[name]:.4f}"
        if self.mode is Mode.LIVE and trial.task is not None and not trial.done:
            self.bars.update(trial.task, completed=event.step, metric=trial.metric,
                             steps=f"{event.step}/{trial.budget}")

    # -- output --------------------------------------------------------------------------

    @staticmethod
    def _styled(phase: Phase, label: str) -> str:
        style = PHASE_STYLE.get(phase)
        return f"[{style}]{escape(label)}[/]" if style else escape(label)

    def _refresh(self) -> None:
        """Draw the bars now, so a short phase is seen too, at most every `refresh_s` (a big
        group's trials change phase together); rich redraws them 10 times a second anyway."""
        now = time.perf_counter()
        if now - self._drawn >= self.refresh_s:
            self._drawn = now
            self.bars.refresh()

    def _line(self, text: str, at: float | None = None) -> None:
        """One plain line (LINES mode), stamped with the seconds since the start (or since
        `at`): no markup, no highlighting, no escape codes."""
        at = time.perf_counter() if at is None else at
        with self._lock:
            self.console.print(f"[{at - self.t0:7.1f}s] {text}", markup=False, highlight=False,
                               emoji=False, soft_wrap=True)

    def _hold(self, key: int | None, line: str, label: str, seconds: float) -> None:
        now = time.perf_counter()
        with self._lock:
            self._held[key] = _Held(now, now + seconds, line, label)
        timer = threading.Timer(seconds, self._flush)
        timer.daemon = True
        timer.start()

    def _release(self, trial: _Trial, print_it: bool) -> None:
        """Print the trial's held line, or drop it (compiling came first: its phase will be
        announced again, and printed then)."""
        with self._lock:
            held = self._held.pop(id(trial), None)
            if held is None:
                return
            if print_it:
                self._line(held.line, at=held.at)
            else:
                trial.printed.discard(held.label)

    def _flush(self, everything: bool = False, sweep_only: bool = False) -> None:
        """Print the held lines that are due (`everything`: all; `sweep_only`: only the
        sweep-level one), in the order they happened."""
        now = time.perf_counter()
        with self._lock:
            keys = [k for k, h in self._held.items()
                    if (everything or h.due <= now) and (k is None or not sweep_only)]
            for held in sorted((self._held.pop(k) for k in keys), key=lambda h: h.at):
                self._line(held.line, at=held.at)
