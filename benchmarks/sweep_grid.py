"""The MNIST ablation grid of Young, Snider & Feng (Tab. 2-3), three ways, side by side.

    python3 benchmarks/sweep_grid.py            # the full grid: 13 distinct variants x 5 seeds
    python3 benchmarks/sweep_grid.py --quick    # 2 variants x 2 seeds, 30 steps (smoke test)

The paper's 14 rows (activation x width, batch norm x depth) are 13 distinct variants: both
tables' baseline is relu, width 100, depth 3, no batch norm. Every trial evaluates every step
(`--eval-every 1`) up to the adam target. Modes, each in fresh processes, wall time including
process start-up, imports, data loading and compiling:

- sweep: one `curvebench sweep` process (one program per variant: 13 programs) with an empty
  persistent compilation cache, and once more with the cache it filled (`warm cache`), both
  compiling ahead as by default on the backend; then warm again without compiling ahead
  (`$CURVEBENCH_COMPILE_AHEAD=0`), whose training loops nothing runs beside (on CPU, where
  nothing compiles ahead by default, a second sample of the warm sweep);
- sweep --share-variants: the same with the activation variants of a width in one program
  (7 programs), cold and warm;
- one process: the same trials, one `run_trial` at a time in one Python process, no cache;
- per variant: one `curvebench run --seeds 5` process per variant, no cache (the workflow
  before sweeps). Its baseline variant's process is the goal's yardstick: the whole grid
  through `sweep` should take under 2x one variant's seeds run this way.

The floor: a sweep's compiled training loops alone (each program's longest trial's train_s,
evals inside, summed): what remains with compiling and start-up taken away entirely. The cold
and the warm sweep are each printed against their own floor (goal: cold <= 1.6x, warm <= 1.15x)
and against the uncontended floor (that of the warm sweep without compiling ahead: work done
ahead beside a training loop can slow it, which would raise a sweep's own floor).
`measure(..., full=False)` times only the two sweeps against their floors (gpu_figures.py and
the pytest-benchmark suite use it).

`--breakdown`: instead, where the cold and the warm sweep's time goes (imports, tracing,
lowering, XLA compile or cache load per segment program, other programs, training loops, the
rest), each sweep in one process without compiling ahead, from JAX's own timing events.

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


BREAKDOWN = r"""
import time
T0 = time.perf_counter()
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import jax
from compile_clock import CompileClock
from harness.cli import app
imports_s = time.perf_counter() - T0
retrieval = [0.0]


def on_duration(event, duration, **kw):
    if event == "/jax/compilation_cache/cache_retrieval_time_sec":
        retrieval[0] += duration


jax.monitoring.register_event_duration_secs_listener(on_duration)
out = io.StringIO()
t0 = time.perf_counter()
with CompileClock() as clock, contextlib.redirect_stdout(out):
    sys.argv = ["curvebench", *sys.argv[2:]]
    try:
        app()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
sweep_s = time.perf_counter() - t0
segments = [(stage, a, b) for stage, name, a, b in clock.outermost() if name == "_segment_fn"]
print(json.dumps({"imports_s": imports_s, "sweep_s": sweep_s, "trials": json.loads(out.getvalue()),
                  "stages": clock.stage_totals(), "by_program": clock.by_program(),
                  "segments": {st: [b - a for s, a, b in segments if s == st]
                               for st in ("trace", "lower", "xla")},
                  "xla_programs": clock.programs(), "cache_retrieval_s": retrieval[0]}))
"""


def breakdown(grid: list[str], seeds: int = 5) -> dict:
    """The seed-000 sweep in one process per cache state (cold, then warm), not compiling ahead
    (every stage in the main thread): seconds of imports, tracing, lowering, XLA compile (or
    persistent-cache load: XLA's share when warm), the training loops (the floor), and the rest
    (data, database, planning, initial states dispatched op by op, rows)."""
    work = Path(tempfile.mkdtemp(prefix="sweep_breakdown_"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "CURVEBENCH_COMPILE_AHEAD": "0"}
    args = ["sweep", *(x for v in grid for x in ("--workload", v)), "--submission", "adam",
            "--seeds", str(seeds), "--eval-every", "1", "--json", "--quiet",
            "--compile-cache", str(work / "jax-cache")]
    out = {"load": [os.getloadavg()[0]]}
    for state in ("cold", "warm"):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", BREAKDOWN, str(REPO / "benchmarks"), *args,
                               "--db", str(work / f"{state}.db")], cwd=REPO, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"failed: {proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_s"] = time.perf_counter() - t0
        row["floor_s"] = training_loops_s(row.pop("trials"))
        out[state] = row
    out["load"].append(os.getloadavg()[0])
    return out


def report_breakdown(figures: dict) -> None:
    print("command: python3 benchmarks/sweep_grid.py --breakdown (no compiling ahead)")
    print(f"load average before {figures['load'][0]:.2f}, after {figures['load'][1]:.2f} "
          f"({os.cpu_count()} CPUs); seconds")
    print(f"{'':44s}{'cold':>10s}{'warm':>10s}")
    rows = {}
    for state in ("cold", "warm"):
        f = figures[state]
        seg = {k: sum(v) for k, v in f["segments"].items()}
        st = f["stages"]
        compile_all = st["compile"]
        rows.setdefault("command (wall, process start to exit)", []).append(f["wall_s"])
        rows.setdefault("imports (jax, the CLI)", []).append(f["imports_s"])
        rows.setdefault("segment programs: trace", []).append(seg["trace"])
        rows.setdefault("segment programs: lower", []).append(seg["lower"])
        rows.setdefault("segment programs: XLA compile / cache load", []).append(seg["xla"])
        rows.setdefault("other programs (op by op, probes): all stages", []).append(
            compile_all - sum(seg.values()))
        rows.setdefault("  (persistent-cache reads, every program: in the rows above)", []).append(
            f["cache_retrieval_s"])
        rows.setdefault("training loops (the floor)", []).append(f["floor_s"])
        rows.setdefault("everything else (data, DB, planning, init, rows, exit)", []).append(
            f["wall_s"] - f["imports_s"] - compile_all - f["floor_s"])
        rows.setdefault("programs compiled or loaded", []).append(f["xla_programs"])
    for label, (cold, warm) in rows.items():
        print(f"{label:56s}{cold:10.2f}{warm:10.2f}" if isinstance(cold, float)
              else f"{label:56s}{cold:10d}{warm:10d}")
    for state in ("cold", "warm"):
        seg = figures[state]["segments"]
        print(f"{state}, per segment program (trace / lower / XLA): " + ", ".join(
            f"{t:.2f}/{lo:.2f}/{x:.2f}" for t, lo, x in zip(seg["trace"], seg["lower"], seg["xla"])))


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


COLD, WARM = "sweep (one process, cold cache)", "sweep (warm cache)"
#: the warm sweep again without compiling ahead: nothing compiles or plans beside the training,
#: so its floor is the training loops' time without that contention
QUIET = "sweep (warm cache, no compile ahead)"

#: tiny sizes for measure(full=False): one small variant, one seed, two steps (the speed
#: suite's --quick; its figures mean nothing)
QUICK = {"grid": ["mnist_mlp:width=16"], "seeds": 1, "max_steps": 2}


def measure(quick: bool = False, *, full: bool = True, seeds: int | None = None,
            max_steps: int | None = None, grid: list[str] | None = None) -> dict:
    """Wall seconds of each mode, each sweep's floor, and the ratios; `full=False`: only the
    cold and the warm sweep against their floors. Default sizes: the grid (or --quick's)."""
    grid = grid or variants(quick)
    seeds = seeds or (2 if quick else 5)
    max_steps = (30 if quick else 0) if max_steps is None else max_steps
    budget = ["--max-steps", str(max_steps)] if max_steps else []
    work = Path(tempfile.mkdtemp(prefix="sweep_grid_"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    off = {**env, "CURVEBENCH_COMPILE_CACHE": "off"}
    load_before = os.getloadavg()

    sweep_cmd = [*CLI, "sweep", *(x for v in grid for x in ("--workload", v)), "--submission",
                 "adam", "--seeds", str(seeds), "--eval-every", "1", *budget,
                 "--json", "--quiet"]
    cache = {**env, "CURVEBENCH_COMPILE_CACHE": str(work / "jax-cache")}
    wall, outs = {}, {}
    for label, db, extra in ((COLD, "sweep.db", {}), (WARM, "warm.db", {}),
                             (QUIET, "quiet.db", {"CURVEBENCH_COMPILE_AHEAD": "0"})):
        wall[label], out = timed([*sweep_cmd, "--db", str(work / db)], {**cache, **extra})
        outs[label] = json.loads(out)
    trials = outs[COLD]
    floor = {"cold": training_loops_s(outs[COLD]), "warm": training_loops_s(outs[WARM]),
             "uncontended": training_loops_s(outs[QUIET])}
    figures = {"grid": grid, "seeds": seeds, "max_steps": max_steps, "trials": len(trials),
               "reached": sum(t["status"] == "reached" for t in trials),
               "group_sizes": sorted({t["group_size"] for t in trials}),
               "wall_s": wall, "floor_s": floor,
               "ratios": {"cold sweep / its floor": wall[COLD] / floor["cold"],
                          "warm sweep / its floor": wall[WARM] / floor["warm"],
                          "cold sweep / uncontended floor": wall[COLD] / floor["uncontended"],
                          "warm sweep / uncontended floor": wall[WARM] / floor["uncontended"]}}
    if full:
        shared = {**env, "CURVEBENCH_COMPILE_CACHE": str(work / "jax-cache-shared")}
        wall["sweep --share-variants (cold cache)"], shared_out = timed(
            [*sweep_cmd, "--share-variants", "--db", str(work / "sh.db")], shared)
        wall["sweep --share-variants (warm cache)"], _ = timed(
            [*sweep_cmd, "--share-variants", "--db", str(work / "shw.db")], shared)
        figures["shared_group_sizes"] = sorted({t["group_size"] for t in json.loads(shared_out)})
        wall["run_trial one at a time (one process)"], _ = timed(
            [sys.executable, "-c", ONE_PROCESS, ";".join(grid), str(seeds), str(max_steps)], off)
        per_variant = {}
        for spec in grid:
            per_variant[spec], _ = timed([*CLI, "run", "--workload", spec, "--submission",
                                          "adam", "--seeds", str(seeds), "--eval-every",
                                          "1", *budget, "--db", str(work / "runs.db"), "--json",
                                          "--quiet"], off)
        wall["curvebench run --seeds per variant"] = sum(per_variant.values())
        figures["ratios"].update({f"{label} / one variant's seeds": seconds / per_variant[grid[0]]
                                  for label, seconds in wall.items()})
        wall[f"  of which {grid[0]} alone (the yardstick)"] = per_variant[grid[0]]
        figures["seeds_cmd"] = [sys.executable, "benchmarks/vmap_seeds.py",
                                *(("--seeds", "2", "--steps", "3", "--eval-every", "3", "--repeats", "1")
                                  if quick else ("--seeds", "16", "--steps", "100", "--eval-every",
                                                 "10", "--repeats", "2"))]
        _, figures["seeds_out"] = timed(figures["seeds_cmd"], env)
    figures["load"] = (load_before[0], os.getloadavg()[0])
    return figures


def report(figures: dict, quick: bool) -> None:
    wall, floor, grid = figures["wall_s"], figures["floor_s"], figures["grid"]
    print(f"command: python3 benchmarks/sweep_grid.py{' --quick' if quick else ''}")
    shared = (f", with --share-variants {figures['shared_group_sizes']}"
              if "shared_group_sizes" in figures else "")
    steps = f", {figures['max_steps']} steps" if figures["max_steps"] else ""
    print(f"grid: {len(grid)} variants x {figures['seeds']} seeds = {figures['trials']} trials, "
          f"eval every step{steps}; "
          f"reached {figures['reached']}/{figures['trials']}; group sizes in the sweep "
          f"{figures['group_sizes']}{shared}")
    print(f"load average before {figures['load'][0]:.2f}, after {figures['load'][1]:.2f} "
          f"({os.cpu_count()} CPUs)")
    cold, warm, quiet = wall[COLD], wall[WARM], wall[QUIET]
    print(f"cold sweep {cold:.2f} s against its floor {floor['cold']:.2f} s = "
          f"{cold / floor['cold']:.2f}x (goal <= 1.6); warm sweep {warm:.2f} s against its "
          f"floor {floor['warm']:.2f} s = {warm / floor['warm']:.2f}x (goal <= 1.15)")
    print(f"against the uncontended floor {floor['uncontended']:.2f} s (the warm sweep without "
          f"compiling ahead, {quiet:.2f} s = {quiet / floor['uncontended']:.2f}x): cold "
          f"{cold / floor['uncontended']:.2f}x, warm {warm / floor['uncontended']:.2f}x")
    if "seeds_out" not in figures:
        return
    sweep_s = cold
    baseline_s = wall[f"  of which {grid[0]} alone (the yardstick)"]
    print(f"{'mode':44s} {'wall (s)':>9s} {'x sweep':>8s} {'x one variant':>14s}")
    for label, seconds in wall.items():
        print(f"{label:44s} {seconds:9.2f} {seconds / sweep_s:8.2f} {seconds / baseline_s:14.2f}")
    print(f"goal: sweep / one variant's seeds < 2: {sweep_s / baseline_s:.2f}")
    loops_s = floor["warm"]
    print(f"of the warm sweep, the compiled training loops alone (every step's eval inside, "
          f"no compiling, no start-up): {loops_s:.2f} s = {loops_s / baseline_s:.2f}x one "
          f"variant's seeds: the floor of any schedule of these programs on this machine")
    print(f"seeds in one program vs one seed alone (python3 {' '.join(figures['seeds_cmd'][1:])}):")
    print(figures["seeds_out"].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 variants x 2 seeds, 30 steps")
    parser.add_argument("--breakdown", action="store_true",
                        help="only where the cold and the warm sweep's time goes, per stage")
    args = parser.parse_args()
    if args.breakdown:
        report_breakdown(breakdown(variants(args.quick), 2 if args.quick else 5))
        return
    report(measure(args.quick), args.quick)


if __name__ == "__main__":
    main()
