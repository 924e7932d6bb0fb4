"""The submitit executor through submitit's local executor (the jobs are local processes, the
groups one job array): a small sweep equals the same sweep run in this process."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
import uuid

import pytest

submitit = pytest.importorskip("submitit", reason="submitit is an extra: pip install -e '.[submitit]'")

from harness.db import RunOrigin, open_database  # noqa: E402
from harness.executors import FINISHED, ExecutorError  # noqa: E402
from harness.executors.submitit import SubmititExecutor  # noqa: E402
from harness.experiment import LocalExecutor, plan_groups  # noqa: E402
from harness.records.sweep import TrialRequest
from harness.records.trial import TrialOptions  # noqa: E402
from tests.conftest import SUBMISSIONS  # noqa: E402


def grid(options: TrialOptions) -> list:
    adam, sgd = str(SUBMISSIONS / "adam"), str(SUBMISSIONS / "sgd")
    return plan_groups([TrialRequest("mnist_mlp", adam, {"learning_rate": 3e-3}, 0),
                        TrialRequest("mnist_mlp", sgd, {}, 1)], options)


def summary(results):
    return [[(r.submission, r.seed, r.status, r.steps_to_target, r.final_step, r.evals) for r in g]
            for g in results]


def test_local_job_array_runs_a_sweep_like_this_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    options = TrialOptions(max_steps=40, eval_every=10, origin=RunOrigin.SWEEP,
                           sweep_id=str(uuid.uuid4()))
    executor = SubmititExecutor(tmp_path / "jobs", cluster="local", timeout_min=10, poll_s=0.2)
    results = executor.run(grid(options), url)
    local = LocalExecutor().run(grid(TrialOptions(max_steps=40, eval_every=10)),
                                f"sqlite:///{tmp_path / 'local.db'}")
    assert summary(results) == summary(local)
    runs = open_database(url).runs()
    assert sorted(r.id for r in runs) == sorted(r.run_id for g in results for r in g)
    assert {r.sweep_id for r in runs} == {options.sweep_id}
    assert len(list((tmp_path / "jobs").glob("*_submitted.pkl"))) == 2  # one array, two tasks


def test_a_trial_error_stops_the_sweep_with_the_jobs_error(tmp_path):
    options = TrialOptions(max_steps=10, sweep_id="s")
    [group] = plan_groups([TrialRequest("mnist_mlp", str(SUBMISSIONS / "adam"),
                                        {"no_such_hparam": 1}, 0)], options)
    executor = SubmititExecutor(tmp_path / "jobs", cluster="local", poll_s=0.2)
    with pytest.raises(ExecutorError, match="no hyperparameter no_such_hparam"):
        executor.run([group], f"sqlite:///{tmp_path / 'r.db'}")


def test_slurm_with_a_sqlite_file_is_refused(tmp_path):
    executor = SubmititExecutor(tmp_path / "jobs", cluster="slurm")
    with pytest.raises(ExecutorError, match="PostgreSQL URL"):
        executor.run(grid(TrialOptions(sweep_id="s")), f"sqlite:///{tmp_path / 'r.db'}")


@pytest.mark.slow
def test_a_killed_job_is_resubmitted_with_its_unfinished_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sweep_id = str(uuid.uuid4())
    options = TrialOptions(max_steps=200, eval_every=20, stop_at_target=False,
                           origin=RunOrigin.SWEEP, sweep_id=sweep_id)
    [group] = plan_groups([TrialRequest("mnist_mlp", str(SUBMISSIONS / "adam"),
                                        {"learning_rate": lr}, 0) for lr in (1e-3, 3e-3)], options)
    killed: dict[str, int] = {}

    def kill_the_second_trial():
        db = open_database(url)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            running = [r for r in db.runs(status="running") if r.final_step >= 20]
            if len(db.runs()) == 2 and running:
                killed["pid"] = running[0].pid
                os.kill(running[0].pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_second_trial)
    killer.start()
    try:
        [results] = SubmititExecutor(tmp_path / "jobs", cluster="local", poll_s=0.2).run([group], url)
    finally:
        killer.join()
    assert killed
    runs = open_database(url).runs()
    assert collections.Counter(r.status in FINISHED for r in runs) == {True: 2, False: 1}
    assert len(list((tmp_path / "jobs").glob("*_submitted.pkl"))) == 2  # the first job, the retry
    assert [r.run_id for r in results] == [r.id for r in runs if r.status in FINISHED]
