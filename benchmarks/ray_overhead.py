"""The Ray executor's cost: a sweep grid through a local Ray cluster vs the local executor, the
round trip of an empty task, and wall time on 1 vs 2 worker nodes, measured in one run.

Usage: python benchmarks/ray_overhead.py [--groups 4] [--trials 2] [--steps 200] [--cpus 1]
       [--empty-tasks 50]
Starts a throwaway cluster on 127.0.0.1 the way tests/ray_cluster.py does (`ray start --head`
with no CPUs, so tasks run on worker nodes only, then worker nodes of `--cpus` CPUs each) and
writes every trial to a SQLite file in a temp dir (one host). Ray rows: "cold" is the first run
on fresh worker processes (Python, JAX and the data loaded there), "warm" a second run on the
same workers. Ratios are against the local executor's wall time in this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.ray_cluster import LOOPBACK_ENV, LocalRayCluster  # noqa: E402

os.environ.update(LOOPBACK_ENV)  # before Ray is imported

import ray  # noqa: E402

from harness.executors.ray import RayExecutor  # noqa: E402
from harness.experiment import LocalExecutor, plan_groups  # noqa: E402
from harness.records.sweep import TrialRequest
from harness.records.trial import TrialOptions  # noqa: E402

SUBMISSIONS = REPO / "submissions"


def grid(n_groups: int, trials: int, steps: int, sweep_id: str) -> list:
    """`n_groups` groups (adam at distinct batch sizes) of `trials` learning rates each."""
    requests = [TrialRequest("mnist_mlp", str(SUBMISSIONS / "adam"),
                             {"batch_size": 32 * (g + 1), "learning_rate": 1e-3 * (t + 1)}, 0)
                for g in range(n_groups) for t in range(trials)]
    options = TrialOptions(max_steps=steps, eval_every=max(steps // 4, 1), stop_at_target=False,
                           sweep_id=sweep_id)
    return plan_groups(requests, options)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@ray.remote(num_cpus=0)
def _noop() -> None:
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs of each worker node")
    ap.add_argument("--empty-tasks", type=int, default=50)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ray_overhead")
    url = lambda name: f"sqlite:///{os.path.join(tmp, name)}.db"  # noqa: E731

    rows: list[tuple[str, float]] = []
    rows.append(("local executor", timed(lambda: LocalExecutor().run(
        grid(args.groups, args.trials, args.steps, "local"), url("local")))))

    cluster = LocalRayCluster(workers=1, cpus_per_node=args.cpus, head_cpus=0).start()
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        executor = RayExecutor(max_retries=0)  # this process's cluster; every node is this host
        for label in ("ray, 1 worker node (cold)", "ray, 1 worker node (warm)"):
            sweep = label.split("(")[1].rstrip(")") + "1"
            rows.append((label, timed(lambda: executor.run(
                grid(args.groups, args.trials, args.steps, sweep), url(sweep)))))
        ray.get(_noop.remote())
        round_trips = []
        for _ in range(args.empty_tasks):
            t0 = time.perf_counter()
            ray.get(_noop.remote())
            round_trips.append(time.perf_counter() - t0)
        cluster.add_worker("worker1")
        cluster.wait_for_nodes(3, 180)
        for label in ("ray, 2 worker nodes (cold 2nd)", "ray, 2 worker nodes (warm)"):
            sweep = label.split("(")[1].rstrip(")").replace(" ", "") + "2"
            rows.append((label, timed(lambda: executor.run(
                grid(args.groups, args.trials, args.steps, sweep), url(sweep)))))
    finally:
        ray.shutdown()
        cluster.stop()

    local = rows[0][1]
    print(f"grid: {args.groups} groups x {args.trials} trials of mnist_mlp, {args.steps} steps; "
          f"worker nodes of {args.cpus} CPU(s); load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'executor':34s} {'wall s':>8s} {'x local':>8s}")
    for label, wall in rows:
        print(f"{label:34s} {wall:8.2f} {wall / local:8.2f}")
    by = dict(rows)
    print(f"2 vs 1 worker nodes (warm): {by['ray, 2 worker nodes (warm)'] / by['ray, 1 worker node (warm)']:.2f} x wall")
    print(f"empty task round trip: median {1e3 * statistics.median(round_trips):.2f} ms, "
          f"p90 {1e3 * sorted(round_trips)[int(0.9 * len(round_trips))]:.2f} ms "
          f"({args.empty_tasks} sequential ray.get(noop.remote()))")


if __name__ == "__main__":
    main()
