"""The Ray executor on a real multi-node Ray cluster (head + 2 worker processes on 127.0.0.1)
writing into a throwaway PostgreSQL server: a sweep through it equals the local sweep, and a
worker killed mid-trial loses and duplicates no trial."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
import uuid

import pytest

from tests.ray_cluster import LOOPBACK_ENV

os.environ.update(LOOPBACK_ENV)  # before Ray is imported: keep the driver on loopback too
ray = pytest.importorskip("ray", reason="Ray is an extra: pip install -e '.[ray]'")

from harness.db import RunOrigin, open_database  # noqa: E402
from harness.executors import FINISHED, ExecutorError, run_key  # noqa: E402
from harness.executors.ray import RayExecutor  # noqa: E402
from harness.experiment import LocalExecutor, plan_groups  # noqa: E402
from harness.records.sweep import TrialRequest
from harness.records.trial import TrialOptions  # noqa: E402
from tests.conftest import SUBMISSIONS  # noqa: E402
from tests.pg_server import Unavailable, fresh_database, server_url  # noqa: E402
from tests.ray_cluster import LocalRayCluster  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cluster():
    c = LocalRayCluster(workers=2).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def pg_url():
    try:
        return fresh_database(server_url())
    except Unavailable as e:
        pytest.skip(f"no PostgreSQL server: {e}")


def grid(options: TrialOptions) -> list:
    adam, sgd = str(SUBMISSIONS / "adam"), str(SUBMISSIONS / "sgd")
    requests = [TrialRequest("mnist_mlp", adam, {"learning_rate": lr}, 0) for lr in (1e-3, 3e-3)]
    requests += [TrialRequest("mnist_mlp", adam, {"batch_size": 64}, 1),
                 TrialRequest("mnist_mlp", sgd, {}, 0)]
    return plan_groups(requests, options)


def summary(results):
    return [[(r.workload, r.submission, r.seed, r.status, r.steps_to_target, r.final_step, r.evals)
             for r in group] for group in results]


def test_ray_sweep_equals_local_sweep(pg_url, cluster, tmp_path):
    options = TrialOptions(max_steps=50, eval_every=10, origin=RunOrigin.SWEEP,
                           sweep_id=str(uuid.uuid4()))
    groups = grid(options)
    on_ray = RayExecutor(cluster.address).run(groups, pg_url)
    local = LocalExecutor().run(grid(TrialOptions(max_steps=50, eval_every=10)),
                                f"sqlite:///{tmp_path / 'local.db'}")
    assert summary(on_ray) == summary(local)
    assert any(r.steps_to_target for g in on_ray for r in g)
    runs = open_database(pg_url).runs()
    assert sorted(r.id for r in runs) == sorted(r.run_id for g in on_ray for r in g)
    assert {r.sweep_id for r in runs} == {options.sweep_id}


@pytest.mark.parametrize("lost", ["worker process", pytest.param("worker node", marks=pytest.mark.slow)])
def test_killed_worker_mid_trial_loses_and_duplicates_no_trial(pg_url, cluster, lost):
    """Kill the Ray worker process running a trial (or its whole node: raylet, object store,
    workers), after the trial's first evals are in the database: those of its first compiled
    segment (harness.vectorised.SEGMENT_STEPS), so the budget spans three segments and the
    trial is seen running for the whole of the later ones."""
    sweep_id = str(uuid.uuid4())
    options = TrialOptions(max_steps=600, eval_every=20, stop_at_target=False,
                           origin=RunOrigin.SWEEP, sweep_id=sweep_id)
    groups = grid(options)
    killed: dict[str, object] = {}

    def victim_node(pid: int):
        return next((n for n in cluster.nodes[1:] if pid in cluster.pids(n)), None)

    def kill_one_running_trial():
        db = open_database(pg_url)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for run in db.runs(status="running"):
                if run.final_step < 20:
                    continue
                if lost == "worker process":
                    os.kill(run.pid, signal.SIGKILL)
                elif (node := victim_node(run.pid)) is not None:
                    cluster.kill_node(node)
                else:
                    continue  # on the head node: keep the cluster, wait for a worker node's trial
                killed["run"], killed["pid"] = run.id, run.pid
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one_running_trial)
    killer.start()
    try:
        results = RayExecutor(cluster.address, max_retries=2).run(groups, pg_url)
    finally:
        killer.join()
    assert killed, "no trial was seen running: nothing was killed"
    runs = open_database(pg_url).runs()
    by_status = collections.Counter(r.status for r in runs)
    finished = collections.Counter(run_key(r) for r in runs if r.status in FINISHED)
    assert len(finished) == 4 and set(finished.values()) == {1}, finished
    victim = next(r for r in runs if r.id == killed["run"])
    assert victim.status == "interrupted"  # by the driver, or by any open of the DB on this host
    assert by_status["interrupted"] == 1 and by_status["running"] == 0
    assert run_key(victim) in finished
    assert [len(g) for g in results] == [len(g.trials) for g in groups]
    assert sorted(r.run_id for g in results for r in g) == sorted(
        r.id for r in runs if r.status in FINISHED)


def test_sqlite_file_with_a_cluster_address_is_refused_in_one_line(tmp_path):
    groups = grid(TrialOptions(max_steps=10, sweep_id="s"))
    with pytest.raises(ExecutorError, match="PostgreSQL URL") as e:
        RayExecutor("127.0.0.1:6379").run(groups, f"sqlite:///{tmp_path / 'r.db'}")
    assert "\n" not in str(e.value)
