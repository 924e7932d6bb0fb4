"""Progress that tells the truth: the phases the engine emits (in order, where the work
happens), the CLI's rendering of them on a terminal, in a log and with --quiet.

The CLI cases run `curvebench` as a real subprocess: piped (a log: no escape codes, one plain
line per phase) and under a pseudo-terminal (live bars with the phase labels)."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys

import pytest
from rich.console import Console

from harness.experiment import run_sweep

from harness.records.sweep import GroupFinished, GroupStarted, SweepPhase, TrialPhase, TrialRequest
from harness.progress import Phase, PhaseChange, compiling, emit, listening
from harness.progress_display import Mode, ProgressDisplay, outcome, trial_label
from harness.records.trial import TrialOptions
from tests.conftest import REPO, SUBMISSIONS

ESCAPE = re.compile(r"\x1b")
SGD = str(SUBMISSIONS / "sgd")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE",
                                                            "TTY_INTERACTIVE", "NO_COLOR")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return env


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *[str(a) for a in args]]


# -- the library's events ----------------------------------------------------------------------

def test_listener_sees_changes_and_compiling_restores_the_phase():
    seen: list[PhaseChange] = []
    emit(Phase.TRAINING, [0])  # no listener: nothing, no error
    with listening(seen.append):
        emit(Phase.TRAINING, [0, 1], step=5)
        with compiling():
            pass
        emit(Phase.SNAPSHOT, [1], step=5, snapshot=2, snapshots=3)
        emit(Phase.EVALUATING, [])  # no trials: nothing
    emit(Phase.DONE, [0])
    assert [(c.trials, c.label, c.step) for c in seen] == [
        ((0, 1), "training", 5), ((0, 1), "compiling", 5), ((0, 1), "training", 5),
        ((1,), "snapshot 2/3", 5)]


def _phases(events, request) -> list[str]:
    return [e.change.label for e in events
            if isinstance(e, TrialPhase) and e.request.seed == request.seed
            and e.request.hparams == request.hparams]


def test_sweep_emits_each_trials_phases_in_order_and_its_outcome(db):
    """One vectorised group of two trials, one of which diverges: every phase is reported per
    trial, compiling inside training's first call, the outcome with the status."""
    events = []
    requests = [TrialRequest("mnist_mlp", SGD, {}, 0),
                TrialRequest("mnist_mlp", SGD, {"learning_rate": 1e9}, 0)]
    result = run_sweep(requests, TrialOptions(max_steps=6, eval_every=3), db.url,
                       on_event=events.append)
    assert isinstance(events[0], SweepPhase) and events[0].phase is Phase.LOADING_DATA
    assert isinstance(events[1], GroupStarted) and isinstance(events[-1], GroupFinished)
    ok, bad = (_phases(events, r) for r in requests)
    assert ok[:5] == ["loading data", "preparing", "preparing", "training", "compiling"]
    assert ok[-2:] == ["writing", "done"] and bad[-2:] == ["writing", "done"]
    done = {e.request.hparams.get("learning_rate"): e.change for e in events
            if isinstance(e, TrialPhase) and e.change.phase is Phase.DONE}
    assert done[1e9].status == "diverged" and "loss" in done[1e9].error
    assert done[None].status == result.trials[0].result.status
    assert done[None].step == result.trials[0].result.final_step


# -- the display -------------------------------------------------------------------------------

def test_outcome_words():
    assert outcome("reached", 300, 120, None) == "reached at step 120"
    assert outcome("not_reached", 500, None, None) == "not reached in 500 steps"
    assert outcome("diverged", 40, None, "loss became nan at step 40") == \
        "diverged at step 40: loss became nan at step 40"
    assert outcome("failed", 3, None, "Traceback ...\n  ...\nValueError: bad") == \
        "failed at step 3: ValueError: bad"
    many = {f"hparam_{i}": i for i in range(10)}
    label = trial_label(TrialRequest("mnist_mlp", SGD, many, 2))
    assert label.startswith("mnist_mlp / sgd hparam_0=0,") and label.endswith("... / seed 2")
    assert len(label) < 90


def _feed(mode: Mode, terminal: bool) -> str:
    from harness.records.sweep import TrialGroup
    from harness.records.trial import TrialSpec

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=200)
    request = TrialRequest("mnist_mlp", SGD, {}, 0)
    group = TrialGroup("mnist_mlp", SGD, (TrialSpec(0, {}),), TrialOptions(max_steps=500))
    with ProgressDisplay(console, mode, refresh_s=0) as display:
        display(SweepPhase(Phase.LOADING_DATA, "mnist_mlp"))
        display(SweepPhase(Phase.LOADING_DATA, "mnist_mlp"))  # said once
        display(GroupStarted(0, group, (request,)))
        for change in [PhaseChange((0,), Phase.TRAINING, step=0),
                       PhaseChange((0,), Phase.COMPILING, step=0),
                       PhaseChange((0,), Phase.TRAINING, step=0),
                       PhaseChange((0,), Phase.SNAPSHOT, step=100, snapshot=1, snapshots=2),
                       PhaseChange((0,), Phase.TRAINING, step=100),
                       PhaseChange((0,), Phase.DONE, step=120, status="reached", target_step=120)]:
            display(TrialPhase(0, request, change))
    return buffer.getvalue()


def test_log_lines_are_plain_ordered_and_compiling_comes_first():
    text = _feed(Mode.LINES, terminal=False)
    assert not ESCAPE.search(text)
    lines = [line.split("] ", 1)[1] for line in text.splitlines()]
    assert lines == ["loading data mnist_mlp", "mnist_mlp / sgd / seed 0: compiling",
                     "mnist_mlp / sgd / seed 0: training",
                     "mnist_mlp / sgd / seed 0: snapshot 1/2 (step 100)",
                     "mnist_mlp / sgd / seed 0: reached at step 120"]
    assert _feed(Mode.QUIET, terminal=False) == ""


def test_a_remote_group_reports_its_outcomes_when_it_finishes():
    """Remote executors report no phases: the outcome comes from GroupFinished."""
    from harness.records.sweep import TrialGroup, TrialOutcome
    from harness.records.trial import TrialResult, TrialSpec

    buffer = io.StringIO()
    request = TrialRequest("mnist_mlp", SGD, {"learning_rate": 10.0}, 3)
    group = TrialGroup("mnist_mlp", SGD, (TrialSpec(3, {"learning_rate": 10.0}),))
    result = TrialResult("r1", "mnist_mlp", "sgd", 3, status="diverged", final_step=7,
                         error="loss became nan at step 7")
    with ProgressDisplay(Console(file=buffer, force_terminal=False), Mode.LINES) as display:
        display(GroupStarted(0, group, (request,)))
        display(GroupFinished(0, (TrialOutcome(request, result, "s"),)))
    [line] = buffer.getvalue().splitlines()
    assert line.endswith("mnist_mlp / sgd learning_rate=10.0 / seed 3: diverged at step 7: "
                         "loss became nan at step 7")


def test_a_log_keeps_bad_input_to_its_error_line():
    """Bad input found right after the sweep announced loading data: no line but the error."""
    buffer = io.StringIO()
    with pytest.raises(ValueError):
        with ProgressDisplay(Console(file=buffer, force_terminal=False), Mode.LINES) as display:
            display(SweepPhase(Phase.LOADING_DATA, "mnist_mlp"))
            raise ValueError("the budget cannot fit")
    assert buffer.getvalue() == ""


def test_live_bars_end_with_the_outcome():
    text = _feed(Mode.LIVE, terminal=True)
    assert ESCAPE.search(text)
    for label in ("loading data mnist_mlp", "compiling", "snapshot 1/2", "reached at step 120",
                  "120 steps"):
        assert label in text


# -- the CLI, as a real process ----------------------------------------------------------------

def test_cli_in_a_log_prints_plain_phase_lines_in_order(tmp_path):
    proc = subprocess.run(
        _cli("run", "--workload", "mnist_mlp", "--submission", SGD, "--max-steps", 20,
             "--eval-every", 10, "--db", tmp_path / "r.db", "--curvature", "hessian",
             "--curvature-every", "at:10", "--curvature-batch", 64, "--lanczos-order", 4,
             "--trace-probes", 0),
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not ESCAPE.search(proc.stderr) and not ESCAPE.search(proc.stdout)
    trial = [line.split("seed 0: ", 1)[1] for line in proc.stderr.splitlines()
             if "seed 0: " in line]
    assert trial[:6] == ["loading data", "preparing", "compiling", "training",
                         "snapshot 1/1 (step 10)", "writing (step 20)"]
    assert re.fullmatch(r"(reached at step \d+|not reached in 20 steps)  accuracy=[\d.]+",
                        trial[6])
    assert len(trial) == 7
    assert "steps to target" in proc.stdout  # the results table


def _under_a_terminal(args, cwd) -> tuple[int, str]:
    """Run `args` with stdin, stdout and stderr on a pseudo-terminal; its exit code and output."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, cwd=cwd,
                            env=_env(), start_new_session=True)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def test_cli_on_a_terminal_shows_live_phase_labels(tmp_path):
    code, text = _under_a_terminal(
        _cli("run", "--workload", "mnist_mlp", "--submission", SGD, "--max-steps", 10,
             "--eval-every", 5, "--db", tmp_path / "r.db"), tmp_path)
    assert code == 0, text
    assert ESCAPE.search(text)  # live bars
    for label in ("preparing", "compiling", "training"):  # each lasts for a while
        assert label in text, label
    assert re.search(r"(reached at step \d+|not reached in 10 steps)", text)
    assert "[    " not in text  # no log lines on a terminal


def test_quiet_prints_only_the_results(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app

    res = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission", SGD,
                                   "--max-steps", 10, "--eval-every", 5, "--db",
                                   str(tmp_path / "r.db"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""  # a log would have had a line per phase
    assert "steps to target" in res.stdout


@pytest.mark.parametrize("command", ["check", "analyze"])
def test_every_training_command_takes_quiet(command):
    from typer.testing import CliRunner

    from harness.cli import app

    res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--quiet" in res.stdout
