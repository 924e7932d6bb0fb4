"""The MNIST ablation grid of Young, Snider & Feng (Tab. 2-3), three ways, side by side.

    python3 benchmarks/sweep_grid.py            # the full grid: 13 distinct variants x 5 seeds
    python3 benchmarks/sweep_grid.py --quick    # 2 variants x 2 seeds, 30 steps (smoke test)

The paper's 14 rows (activation x width, batch norm x depth) are 13 distinct variants: both
tables' baseline is relu, width 100, depth 3, no batch norm. Every trial evaluates every step
(`--eval-every 1`) up to the adam target. Modes, each in fresh processes, wall time including
process start-up, imports, data loading and compiling:

- sweep: one `curvebench sweep` process (one program per variant: 13 programs) with an empty
  persistent compilation cache, and once more with the cache it filled (`warm cache`);
- sweep --share-variants: the same with the activation variants of a width in one program
  (7 programs), cold and warm;
- one process: the same trials, one `run_trial` at a time in one Python process, no cache;
- per variant: one `curvebench run --seeds 5` process per variant, no cache (the workflow
  before sweeps). Its baseline variant's process is the goal's yardstick: the whole grid
  through `sweep` should take under 2x one variant's seeds run this way.

The floor: the warm sweep's compiled training loops alone (each program's longest trial's
train_s, evals inside, summed): what remains with compiling and start-up taken away entirely.

Then, in its own process, the per seed-step cost of 16 seeds in one program against one seed
alone on the baseline MLP (benchmarks/vmap_seeds.py; the goal on a GPU: <= 0.3x alone).

Timings on a shared machine are noisy: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GRIDS = ("mnist_mlp:activation=relu|gelu|sigmoid|hard_tanh,width=100|200",
         "mnist_mlp:batchnorm=0|1,depth=3|5|7")
CLI = [sys.executable, "-c", "from harness.cli import app; app()"]

ONE_PROCESS = """
import sys, time
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload
variants, seeds, max_steps = sys.argv[1].split(";"), int(sys.argv[2]), int(sys.argv[3]) or None
submission = load_submission("adam")
data = {}
for spec in variants:
    workload = get_workload(spec)
    dataset = data.setdefault(workload.name, workload.load_data())
    for seed in range(seeds):
        run_trial(workload, submission, dataset, seed, eval_every=1, max_steps=max_steps)
"""


def variants(quick: bool) -> list[str]:
    if quick:
        return ["mnist_mlp", "mnist_mlp:activation=gelu"]
    from harness.grid import parse_workload_list
    from workloads import get_workload

    return list(dict.fromkeys(get_workload(spec).spec for spec in parse_workload_list(GRIDS)))


def training_loops_s(trials: list[dict]) -> float:
    """Seconds the compiled training loops ran, summed over programs (one per variant in the
    default sweep): a program's loop runs until its last trial stops, so its time is the
    largest train_s among its trials."""
    loops: dict[str, float] = {}
    for t in trials:
        loops[t["workload"]] = max(loops.get(t["workload"], 0.0), t["train_s"])
    return sum(loops.values())


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 variants x 2 seeds, 30 steps")
    args = parser.parse_args()
    grid = variants(args.quick)
    seeds, max_steps = (2, 30) if args.quick else (5, 0)
    budget = ["--max-steps", str(max_steps)] if max_steps else []
    work = Path(tempfile.mkdtemp(prefix="sweep_grid_"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    off = {**env, "CURVEBENCH_COMPILE_CACHE": "off"}
    load_before = os.getloadavg()

    sweep_cmd = [*CLI, "sweep", *(x for v in grid for x in ("--workload", v)), "--submission",
                 "adam", "--seeds", str(seeds), "--eval-every", "1", *budget,
                 "--json", "--quiet"]
    cache = {**env, "CURVEBENCH_COMPILE_CACHE": str(work / "jax-cache")}
    sweep_s, sweep_out = timed([*sweep_cmd, "--db", str(work / "sweep.db")], cache)
    warm_s, warm_out = timed([*sweep_cmd, "--db", str(work / "warm.db")], cache)
    shared = {**env, "CURVEBENCH_COMPILE_CACHE": str(work / "jax-cache-shared")}
    shared_s, shared_out = timed([*sweep_cmd, "--share-variants", "--db", str(work / "sh.db")],
                                 shared)
    shared_warm_s, _ = timed([*sweep_cmd, "--share-variants", "--db", str(work / "shw.db")],
                             shared)
    trials = json.loads(sweep_out)
    loops_s = training_loops_s(json.loads(warm_out))
    reached = sum(t["status"] == "reached" for t in trials)
    groups = sorted({t["group_size"] for t in trials})
    shared_groups = sorted({t["group_size"] for t in json.loads(shared_out)})

    one_s, _ = timed([sys.executable, "-c", ONE_PROCESS, ";".join(grid), str(seeds),
                      str(max_steps)], off)

    per_variant = {}
    for spec in grid:
        per_variant[spec], _ = timed([*CLI, "run", "--workload", spec, "--submission",
                                      "adam", "--seeds", str(seeds), "--eval-every",
                                      "1", *budget, "--db", str(work / "runs.db"), "--json",
                                      "--quiet"], off)
    per_variant_s = sum(per_variant.values())
    seeds_cmd = [sys.executable, "benchmarks/vmap_seeds.py",
                 *(("--seeds", "2", "--steps", "3", "--eval-every", "3", "--repeats", "1")
                   if args.quick else ("--seeds", "16", "--steps", "100", "--eval-every", "10",
                                       "--repeats", "2"))]
    _, seeds_out = timed(seeds_cmd, env)
    baseline_s = per_variant[grid[0]]
    load_after = os.getloadavg()

    print(f"command: python3 benchmarks/sweep_grid.py{' --quick' if args.quick else ''}")
    print(f"grid: {len(grid)} variants x {seeds} seeds = {len(trials)} trials, eval every step"
          f"{f', {max_steps} steps' if max_steps else ''}; reached {reached}/{len(trials)}; "
          f"group sizes in the sweep {groups}, with --share-variants {shared_groups}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    rows = [("sweep (one process, cold cache)", sweep_s), ("sweep (warm cache)", warm_s),
            ("sweep --share-variants (cold cache)", shared_s),
            ("sweep --share-variants (warm cache)", shared_warm_s),
            ("run_trial one at a time (one process)", one_s),
            ("curvebench run --seeds per variant", per_variant_s),
            (f"  of which {grid[0]} alone (the yardstick)", baseline_s)]
    print(f"{'mode':44s} {'wall (s)':>9s} {'x sweep':>8s} {'x one variant':>14s}")
    for label, seconds in rows:
        print(f"{label:44s} {seconds:9.2f} {seconds / sweep_s:8.2f} {seconds / baseline_s:14.2f}")
    print(f"goal: sweep / one variant's seeds < 2: {sweep_s / baseline_s:.2f}")
    print(f"of the warm sweep, the compiled training loops alone (every step's eval inside, "
          f"no compiling, no start-up): {loops_s:.2f} s = {loops_s / baseline_s:.2f}x one "
          f"variant's seeds: the floor of any schedule of these programs on this machine")
    print(f"seeds in one program vs one seed alone (python3 {' '.join(seeds_cmd[1:])}):")
    print(seeds_out.rstrip())


if __name__ == "__main__":
    main()
