"""What the remote executors share: trial identity, finished and pending trials of a sweep,
marking lost runs interrupted, and retries that redo only unfinished trials."""

from __future__ import annotations

import collections
import dataclasses
import uuid

import pytest

from harness.db import RunOrigin, open_database
from harness.executors import (FINISHED, ExecutorError, Lost, finished_trials, mark_lost, pending_requests,
                               request_key, run_key, run_with_retries)
from harness.experiment import LocalExecutor, execute_group, plan_groups
from harness.records.sweep import TrialRequest
from harness.records.trial import TrialOptions
from tests.conftest import SUBMISSIONS

ADAM, SGD = str(SUBMISSIONS / "adam"), str(SUBMISSIONS / "sgd")


def options(sweep_id: str, **kw) -> TrialOptions:
    return TrialOptions(max_steps=10, eval_every=10, origin=RunOrigin.SWEEP, sweep_id=sweep_id,
                        **kw)


def summary(results):
    return [[(r.submission, r.seed, r.status, r.steps_to_target, r.final_step, r.evals) for r in g]
            for g in results]


def test_a_trial_is_the_same_whether_its_hparams_are_defaults_or_spelled_out():
    default = request_key(TrialRequest("mnist_mlp", ADAM, {}, 0))
    assert request_key(TrialRequest("mnist_mlp:width=128", ADAM, {"learning_rate": 1e-3}, 0)) != default
    assert request_key(TrialRequest("mnist_mlp", ADAM, {"learning_rate": 1e-3}, 0)) == default
    assert request_key(TrialRequest("mnist_mlp", ADAM, {"learning_rate": 2e-3}, 0)) != default
    assert request_key(TrialRequest("mnist_mlp", ADAM, {}, 1)) != default
    assert request_key(TrialRequest("mnist_mlp", SGD, {}, 0)) != default


def test_pending_requests_are_the_unfinished_trials_of_the_sweep(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sweep = str(uuid.uuid4())
    requests = [TrialRequest("mnist_mlp", ADAM, {"learning_rate": lr}, 0) for lr in (1e-3, 3e-3)]
    requests.append(TrialRequest("mnist_mlp", SGD, {}, 0))
    results = LocalExecutor().run(plan_groups(requests, options(sweep)), url)
    LocalExecutor().run(plan_groups(requests[:1], options("another sweep")), url)
    db = open_database(url)
    assert pending_requests(db, sweep, requests) == []
    assert pending_requests(db, "another sweep", requests) == requests[1:]

    sgd_run = results[1][0].run_id
    db.update_run(sgd_run, status="interrupted")
    assert pending_requests(db, sweep, requests) == requests[2:]
    done = finished_trials(db, sweep)
    assert sorted(r.run_id for r in done.values()) == sorted(r.run_id for r in results[0])
    assert summary([[done[request_key(r)] for r in requests[:2]]]) == summary(results[:1])


def test_mark_lost_marks_only_the_running_runs_of_those_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    requests = [TrialRequest("mnist_mlp", ADAM, {"learning_rate": lr}, 0) for lr in (1e-3, 3e-3)]
    results = LocalExecutor().run(plan_groups(requests, options("s")), url)
    LocalExecutor().run(plan_groups(requests[:1], options("t")), url)
    db = open_database(url)
    for run in db.runs():
        db.update_run(run.id, status="running")  # as a worker on another host leaves them
    marked = mark_lost(db, "s", [request_key(requests[0])], "worker lost: node died")
    assert marked == [results[0][0].run_id]
    statuses = collections.Counter((r.sweep_id, r.status) for r in db.runs())
    assert statuses == {("s", "interrupted"): 1, ("s", "running"): 1, ("t", "running"): 1}
    assert db.get_run(marked[0]).error == "worker lost: node died"


class WorkerDied(BaseException):
    """Stops a trial the way a killed process does: run_trial's handlers never see it, so its
    run row stays `running`."""


def die(_index, step, _metrics):
    if step >= 10:
        raise WorkerDied


class InProcessBackend:
    """Runs groups here, one at a time. `lose_first` groups die on their first attempt after
    finishing their first trial, mid-way through the second (as a killed worker would)."""

    def __init__(self, lose_first: int = 1, always_lose: bool = False):
        self.submitted: list = []
        self.lose_first, self.always_lose = lose_first, always_lose

    def submit(self, groups, db_url):
        start = len(self.submitted)
        self.submitted += [(g, db_url) for g in groups]
        return list(range(start, len(self.submitted)))

    def wait_one(self, handles):
        handle = handles[0]
        group, db_url = self.submitted[handle]
        if len(group.trials) >= 2 and (self.always_lose or self.lose_first > 0):
            self.lose_first -= 1
            execute_group(dataclasses.replace(group, trials=group.trials[:1]), db_url)
            try:
                execute_group(dataclasses.replace(group, trials=group.trials[1:2]), db_url,
                              on_eval=die)
            except WorkerDied:
                return handle, Lost("test: worker died")
        return handle, execute_group(group, db_url)

    def cancel(self, handles):
        pass


def test_a_lost_group_is_retried_with_only_its_unfinished_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    requests = [TrialRequest("mnist_mlp", ADAM, {"learning_rate": lr}, 0) for lr in (1e-3, 2e-3, 3e-3)]
    requests.append(TrialRequest("mnist_mlp", SGD, {}, 0))
    backend = InProcessBackend()
    results = run_with_retries(backend, plan_groups(requests, options("s")), url, max_retries=1)
    assert [len(g.trials) for g, _ in backend.submitted] == [3, 1, 2]
    runs = open_database(url).runs()
    finished_runs = {r.id: r for r in runs if r.status in FINISHED}
    assert [[(r.seed, r.status, r.final_step) for r in g] for g in results] == [
        [(finished_runs[r.run_id].seed, finished_runs[r.run_id].status,
          finished_runs[r.run_id].final_step) for r in g] for g in results]
    assert [run_key(finished_runs[r.run_id]) for g in results for r in g] == [
        request_key(r) for r in requests]
    assert collections.Counter(r.status in FINISHED for r in runs) == {True: 4, False: 1}
    finished = collections.Counter(run_key(r) for r in runs if r.status in FINISHED)
    assert set(finished) == {request_key(r) for r in requests}
    assert set(finished.values()) == {1}
    [lost] = [r for r in runs if r.status == "interrupted"]
    assert lost.error == "worker lost: test: worker died"
    assert run_key(lost) == request_key(requests[1])


def test_a_group_lost_more_than_max_retries_stops_the_sweep_saying_how_to_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    requests = [TrialRequest("mnist_mlp", ADAM, {"learning_rate": lr}, 0) for lr in (1e-3, 2e-3, 3e-3)]
    with pytest.raises(ExecutorError, match="lost 2 times.*same sweep id"):
        run_with_retries(InProcessBackend(always_lose=True), plan_groups(requests, options("s")),
                         url, max_retries=1)
    db = open_database(url)
    assert pending_requests(db, "s", requests) == requests[2:]


def test_retries_need_a_sweep_id(tmp_path):
    groups = plan_groups([TrialRequest("mnist_mlp", ADAM, {}, 0)], options(None))
    with pytest.raises(ExecutorError, match="sweep id"):
        run_with_retries(InProcessBackend(), groups, f"sqlite:///{tmp_path / 'r.db'}", max_retries=1)
