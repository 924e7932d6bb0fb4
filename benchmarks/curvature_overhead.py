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


def top_k(order: int) -> tuple[int, ...]:
    """The default top-K metrics that a Lanczos order of `order` allows."""
    return tuple(k for k in SnapshotConfig.top_k if k <= order)


PAIRS = (("hessian", "scan"), ("ggn", "scan"), ("hessian", "host"), ("ggn", "host"))


def product_ratios(workload, dataset, params, state, order: int, batch: int, repeats: int,
                   pairs: tuple[tuple[str, str], ...] = PAIRS) -> dict:
    """Rounds alternate m back-to-back products and one snapshot, so both see the same machine
    load; the ratio is the median over rounds of snapshot / (m products). Returns, per
    "kind/loop", its product and snapshot seconds and the ratio."""
    rows = {}
    for kind, loop in pairs:
        config = SnapshotConfig(kinds=(kind,), curvature_batch=batch, lanczos_order=order, loop=loop,
                                top_k=top_k(order))
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
        rows[f"{kind}/{loop}"] = {
            "product_s": statistics.median(products), "snapshot_s": statistics.median(snapshots),
            "ratio": statistics.median(s / (order * p) for s, p in zip(snapshots, products))}
    return rows


def trial_overhead(order: int, batch: int, max_steps: int | None = None) -> dict:
    """A default MNIST trial with and without snapshots at the default schedule (`max_steps`:
    a shorter budget, the schedule cut to it)."""
    workload = get_workload("mnist_mlp")
    dataset = workload.load_data()
    submission = load_submission(REPO / "submissions" / "adam")
    steps = snapshot_steps(DEFAULT_SCHEDULE, max_steps or workload.max_steps)
    run_trial(workload, submission, dataset, seed=0, max_steps=max_steps)  # warm the process
    t0 = time.perf_counter()
    plain = run_trial(workload, submission, dataset, seed=0, max_steps=max_steps)
    plain_wall = time.perf_counter() - t0
    config = SnapshotConfig(curvature_batch=batch, lanczos_order=order, top_k=top_k(order))
    times: list[tuple[int, float]] = []
    callback = snapshot_callback(workload, dataset, config, batch_size=workload.batch_size,
                                 hparams=submission.hparams,
                                 sink=lambda run_id, step, r: times.append((step, r.compute_s)))
    t0 = time.perf_counter()
    with_snaps = run_trial(workload, submission, dataset, seed=0, snapshot_steps=steps,
                           on_snapshot=callback, max_steps=max_steps)
    snap_wall = time.perf_counter() - t0
    total = sum(t for _, t in times)
    warm = statistics.median(t for _, t in times[1:]) if len(times) > 1 else float("nan")
    plain_steps = plain.steps_to_target or plain.final_step
    return {"config": f"kinds {config.kinds}, m={order}, curvature batch {batch}",
            "plain": {"status": plain.status, "step": plain.steps_to_target, "wall_s": plain_wall,
                      "train_s": plain.train_s, "eval_s": plain.eval_s, "compile_s": plain.compile_s},
            "with_snapshots": {"status": with_snaps.status, "step": with_snaps.steps_to_target,
                               "wall_s": snap_wall},
            "snapshot_steps": [s for s, _ in times], "total_s": total, "first_s": times[0][1],
            "warm_s": warm,
            "ratios": {"snapshots / trial wall": total / plain_wall,
                       "warm snapshots / trial wall": warm * len(times) / plain_wall,
                       "snapshots / trial train": total / plain.train_s,
                       "warm snapshots / trial train": warm * len(times) / plain.train_s,
                       "one warm snapshot / training step": warm / (plain.train_s / plain_steps)}}


#: tiny sizes: the code paths run, the figures mean nothing (the speed suite's --quick)
QUICK = {"order": 4, "batch": 64, "repeats": 1, "max_steps": 1, "pairs": (("hessian", "scan"),)}


def measure(order: int = SnapshotConfig.lanczos_order, batch: int = SnapshotConfig.curvature_batch,
            repeats: int = 5, max_steps: int | None = None, trial: bool = True,
            pairs: tuple[tuple[str, str], ...] = PAIRS) -> dict:
    """Both measurements ([1] for the (kind, loop) `pairs`; [2] only with `trial`):
    {"setup", "products": product_ratios(...), "trial": trial_overhead(...) or None,
    "ratios": every ratio, flat}."""
    workload = get_workload("mnist_mlp")
    dataset = workload.load_data()
    params, state = workload.init(jax.random.PRNGKey(0))
    products = product_ratios(workload, dataset, params, state, order, batch, repeats, pairs)
    ratios = {f"{name} snapshot / (m x product)": row["ratio"] for name, row in products.items()}
    overhead = trial_overhead(order, batch, max_steps) if trial else None
    if overhead:
        ratios.update(overhead["ratios"])
    return {"setup": f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}",
            "order": order, "batch": batch, "repeats": repeats,
            "physical_batch": workload.batch_size, "products": products, "trial": overhead,
            "ratios": ratios}


def report(figures: dict) -> None:
    print(figures["setup"])
    print(f"\n[1] snapshot / (m x product), m={figures['order']}, curvature batch {figures['batch']}, "
          f"physical batch {figures['physical_batch']}, median of {figures['repeats']} interleaved rounds")
    print(f"{'kind':<10}{'loop':<6}{'product ms':>12}{'snapshot ms':>13}{'ratio':>8}")
    for name, row in figures["products"].items():
        kind, loop = name.split("/")
        print(f"{kind:<10}{loop:<6}{row['product_s'] * 1e3:>12.1f}{row['snapshot_s'] * 1e3:>13.1f}"
              f"{row['ratio']:>8.2f}")
    if figures["trial"] is None:
        return
    t, plain, snaps, r = (figures["trial"], figures["trial"]["plain"],
                          figures["trial"]["with_snapshots"], figures["trial"]["ratios"])
    print(f"\n[2] default MNIST trial (mnist_mlp, adam, offline sample, seed 0), schedule "
          f"{DEFAULT_SCHEDULE!r}, {t['config']}")
    print(f"trial without snapshots: {plain['status']} at step {plain['step']}, "
          f"wall {plain['wall_s']:.2f} s (train {plain['train_s']:.2f} s, eval {plain['eval_s']:.2f} s, compile {plain['compile_s']:.2f} s)")
    print(f"trial with snapshots:    {snaps['status']} at step {snaps['step']}, "
          f"wall {snaps['wall_s']:.2f} s; snapshots at steps {t['snapshot_steps']}")
    print(f"snapshot time: total {t['total_s']:.2f} s (first, with compilation, {t['first_s']:.2f} s; "
          f"warm median {t['warm_s']:.3f} s)")
    print(f"overhead vs trial wall: {100 * r['snapshots / trial wall']:.0f}% "
          f"(warm snapshots only: {100 * r['warm snapshots / trial wall']:.0f}%)")
    print(f"overhead vs trial train time: {100 * r['snapshots / trial train']:.0f}% "
          f"(warm only: {100 * r['warm snapshots / trial train']:.0f}%)")
    print(f"one warm snapshot = {r['one warm snapshot / training step']:.0f} training steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", type=int, default=SnapshotConfig.lanczos_order)
    parser.add_argument("--batch", type=int, default=SnapshotConfig.curvature_batch)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="[2]'s step budget (default: the workload's)")
    args = parser.parse_args()
    report(measure(args.order, args.batch, args.repeats, args.max_steps))


if __name__ == "__main__":
    main()
