"""Curvature snapshot cost, measured side by side in one run (numbers are ratios, not thresholds).

1. snapshot time / (m x one product): a warm snapshot of each kind against m warm
   matrix-vector products of the same operator on the same curvature batch (goal ≤ 1.2);
   for the Hessian also with the host-driven loop that conv nets use on CPU.
2. snapshot overhead of a default MNIST trial (mnist_mlp, offline sample, adam)
   at the default schedule: total snapshot time / the same trial's time without snapshots
   (goal ≤ 10%), with and without the snapshots' one-time compilation.

Run: python benchmarks/curvature_overhead.py [--order 20] [--batch 2048] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from harness.curvature import DEFAULT_SCHEDULE, SnapshotConfig, Snapshotter, snapshot_callback, snapshot_steps
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload

REPO = Path(__file__).resolve().parent.parent


def _timed(fn) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def product_ratios(workload, dataset, params, state, order: int, batch: int, repeats: int) -> None:
    """Rounds alternate m back-to-back products and one snapshot, so both see the same machine
    load; the ratio is the median over rounds of snapshot / (m products)."""
    print(f"\n[1] snapshot / (m x product), m={order}, curvature batch {batch}, "
          f"physical batch {workload.batch_size}, median of {repeats} interleaved rounds")
    print(f"{'kind':<10}{'loop':<6}{'product ms':>12}{'snapshot ms':>13}{'ratio':>8}")
    for kind, loop in (("hessian", "scan"), ("ggn", "scan"), ("hessian", "host"), ("ggn", "host")):
        config = SnapshotConfig(kinds=(kind,), curvature_batch=batch, lanczos_order=order, loop=loop)
        snap = Snapshotter(workload, dataset, config, batch_size=workload.batch_size)
        matvec = functools.partial(snap._fn("matvec", None, jnp.float32, jnp.float32, base=kind),
                                   params, state, snap.batches)
        v = jnp.ones(sum(x.size for x in jax.tree_util.tree_leaves(params)), jnp.float32)
        matvec(v).block_until_ready()
        snap.snapshot(params, state)
        products, snapshots = [], []
        for _ in range(repeats):
            products.append(_timed(lambda: [matvec(v) for _ in range(order)]) / order)
            snapshots.append(snap.snapshot(params, state)[0].compute_s)
        ratio = statistics.median(s / (order * p) for s, p in zip(snapshots, products))
        print(f"{kind:<10}{loop:<6}{statistics.median(products) * 1e3:>12.1f}"
              f"{statistics.median(snapshots) * 1e3:>13.1f}{ratio:>8.2f}")


def trial_overhead(order: int, batch: int) -> None:
    workload = get_workload("mnist_mlp")
    dataset = workload.load_data()
    submission = load_submission(REPO / "submissions" / "adam")
    steps = snapshot_steps(DEFAULT_SCHEDULE, workload.max_steps)
    run_trial(workload, submission, dataset, seed=0)  # warm the process (imports, first XLA use)
    t0 = time.perf_counter()
    plain = run_trial(workload, submission, dataset, seed=0)
    plain_wall = time.perf_counter() - t0
    config = SnapshotConfig(curvature_batch=batch, lanczos_order=order)
    times: list[tuple[int, float]] = []
    callback = snapshot_callback(workload, dataset, config, batch_size=workload.batch_size,
                                 hparams=submission.hparams,
                                 sink=lambda run_id, step, r: times.append((step, r.compute_s)))
    t0 = time.perf_counter()
    with_snaps = run_trial(workload, submission, dataset, seed=0, snapshot_steps=steps,
                           on_snapshot=callback)
    snap_wall = time.perf_counter() - t0
    total = sum(t for _, t in times)
    warm = statistics.median(t for _, t in times[1:]) if len(times) > 1 else float("nan")
    print(f"\n[2] default MNIST trial (mnist_mlp, adam, offline sample, seed 0), schedule {DEFAULT_SCHEDULE!r}, "
          f"kinds {config.kinds}, m={order}, curvature batch {batch}")
    print(f"trial without snapshots: {plain.status} at step {plain.steps_to_target}, wall {plain_wall:.2f} s "
          f"(train {plain.train_s:.2f} s, eval {plain.eval_s:.2f} s, compile {plain.compile_s:.2f} s)")
    print(f"trial with snapshots:    {with_snaps.status} at step {with_snaps.steps_to_target}, "
          f"wall {snap_wall:.2f} s; snapshots at steps {[s for s, _ in times]}")
    print(f"snapshot time: total {total:.2f} s (first, with compilation, {times[0][1]:.2f} s; "
          f"warm median {warm:.3f} s)")
    warm_total = warm * len(times)
    print(f"overhead vs trial wall: {100 * total / plain_wall:.0f}% "
          f"(warm snapshots only: {100 * warm_total / plain_wall:.0f}%)")
    print(f"overhead vs trial train time: {100 * total / plain.train_s:.0f}% "
          f"(warm only: {100 * warm_total / plain.train_s:.0f}%)")
    print(f"one warm snapshot = {warm / (plain.train_s / plain.steps_to_target):.0f} training steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=SnapshotConfig.lanczos_order)
    parser.add_argument("--batch", type=int, default=SnapshotConfig.curvature_batch)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    workload = get_workload("mnist_mlp")
    dataset = workload.load_data()
    params, state = workload.init(jax.random.PRNGKey(0))
    product_ratios(workload, dataset, params, state, args.order, args.batch, args.repeats)
    trial_overhead(args.order, args.batch)


if __name__ == "__main__":
    main()
