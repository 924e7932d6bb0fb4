"""From the command to the first compiled step: where `curvebench run` spends its start-up.

    python3 benchmarks/startup.py [--workload mnist_mlp] [--repeats 1]

Runs `curvebench run --workload W --submission adam --max-steps 1` in fresh processes, twice
per repeat: first with a new results database and an empty persistent compilation cache,
then again with both as the first run left them. Each child times its phases exclusively
(a phase's nested phases are not counted in it): Python imports (every `import` statement),
the database schema check (`open_database`), data loading, planning the sweep (validating,
grouping, preflight), and JAX's tracing, lowering and XLA compile (from JAX's own start and
end events); the rest is the CLI's own work, the one training step, its eval, the run rows
and printing. Interpreter start is the time from launching the command to the child's first
line; exit, from its last line to the command's end. Prints seconds per phase, side by side.
Only the main thread is timed (the input pipeline's prefetch thread runs beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import time
T0 = time.time()
import builtins, collections, json, sys, threading
MAIN = threading.main_thread()


class Phases:
    '''Exclusive seconds per phase: time goes to the innermost phase open.'''

    def __init__(self):
        self.stack = [["other", time.perf_counter()]]
        self.totals = collections.defaultdict(float)

    def enter(self, name):
        now = time.perf_counter()
        self.totals[self.stack[-1][0]] += now - self.stack[-1][1]
        self.stack.append([name, now])

    def leave(self):
        now = time.perf_counter()
        name, since = self.stack.pop()
        self.totals[name] += now - since
        if self.stack:
            self.stack[-1][1] = now


phases = Phases()
plain_import = builtins.__import__


def timed_import(name, globals=None, locals=None, fromlist=(), level=0):
    if (level == 0 and not fromlist and name in sys.modules) or threading.current_thread() is not MAIN:
        return plain_import(name, globals, locals, fromlist, level)
    phases.enter("imports")
    try:
        return plain_import(name, globals, locals, fromlist, level)
    finally:
        phases.leave()


builtins.__import__ = timed_import


def wrap(module, name, phase, missing):
    fn = getattr(module, name, None)
    if fn is None:
        missing.append(f"{module.__name__}.{name}")
        return

    def timed(*args, **kwargs):
        phases.enter(phase)
        try:
            return fn(*args, **kwargs)
        finally:
            phases.leave()

    setattr(module, name, timed)


out_path, argv = sys.argv[1], sys.argv[2:]
from harness.cli import app
import harness.db, harness.db.database, harness.experiment
import jax

missing = []
wrap(harness.db, "open_database", "schema check", missing)
wrap(harness.db.database, "open_database", "schema check", missing)
wrap(harness.experiment, "_load_dataset", "data loading", missing)
for name in ("validate_requests", "_plan", "preflight", "validate_curvature"):
    wrap(harness.experiment, name, "planning", missing)
STAGES = {"/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          "/jax/core/compile/backend_compile_duration": "XLA compile"}


def on_start(event, value, **kw):  # JAX's compile stages on the main thread (not prefetching)
    if event in STAGES and threading.current_thread() is MAIN:
        phases.enter(STAGES[event])


def on_end(event, start, end, **kw):
    if event in STAGES and threading.current_thread() is MAIN:
        phases.leave()


jax.monitoring.register_scalar_listener(on_start)
jax.monitoring.register_event_time_span_listener(on_end)
sys.argv = ["curvebench", *argv]
try:
    app()
except SystemExit as e:
    if e.code not in (0, None):
        raise
phases.leave()  # "other", opened at start
with open(out_path, "w") as f:
    json.dump({"t0": T0, "end": time.time(), "phases": phases.totals, "missing": missing}, f)
"""

PHASES = ("interpreter start", "imports", "schema check", "data loading", "planning", "trace",
          "lower", "XLA compile", "other", "exit")


def one_run(argv: list[str], env: dict[str, str], work: Path) -> dict[str, float]:
    """One `curvebench` process: seconds per phase, and "total" (the command's wall time)."""
    out = work / f"phases_{time.time_ns()}.json"
    start, t0 = time.time(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), *argv], cwd=REPO, env=env,
                          capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: curvebench {' '.join(argv)}\n{proc.stderr[-3000:]}")
    child = json.loads(out.read_text())
    row = {"interpreter start": child["t0"] - start, **child["phases"],
           "exit": max(0.0, start + total - child["end"]), "total": total}
    row["missing"] = child["missing"]
    return row


RUNS = ("new DB, empty compile cache", "same DB, warm compile cache")


#: tiny sizes: the code paths run, the figures mean nothing (the speed suite's --quick)
QUICK = {"workload": "mnist_mlp:width=16", "runs": 1}


def measure(workload: str = "mnist_mlp", repeats: int = 1, runs: int = 2) -> dict:
    """Per run kind (RUNS: new DB and empty cache, then the same DB and warm cache; `runs=1`:
    only the first): median seconds per phase over `repeats`; "ratios": each phase's share of
    the total (and warm / cold totals)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs: dict[str, list[dict]] = {kind: [] for kind in RUNS[:runs]}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        work = Path(tempfile.mkdtemp(prefix="startup_"))
        argv = ["run", "--workload", workload, "--submission", "adam", "--max-steps", "1",
                "--db", str(work / "runs.db"), "--compile-cache", str(work / "jax-cache"),
                "--quiet", "--json"]
        for kind in runs:
            runs[kind].append(one_run(argv, env, work))
    load.append(os.getloadavg()[0])
    seconds = {kind: {p: statistics.median(r.get(p, 0.0) for r in rows) for p in (*PHASES, "total")}
               for kind, rows in runs.items()}
    ratios = {f"{kind}: {p} / total": row[p] / row["total"] for kind, row in seconds.items()
              for p in PHASES if row[p] > 0}
    if len(seconds) == 2:
        ratios["warm / cold total"] = seconds[RUNS[1]]["total"] / seconds[RUNS[0]]["total"]
    return {"command": f"curvebench {' '.join(argv[:7])}", "seconds": seconds, "ratios": ratios,
            "missing": sorted({m for rows in runs.values() for r in rows for m in r["missing"]}),
            "repeats": repeats, "load": load}


def report(figures: dict) -> None:
    print(f"{figures['command']}: seconds per phase (median of {figures['repeats']}), "
          f"load average {figures['load'][0]:.2f} -> {figures['load'][1]:.2f} ({os.cpu_count()} CPUs)")
    kinds = list(figures["seconds"])
    print(f"{'phase':20s}" + "".join(f"{k:>30s}" for k in kinds))
    for phase in (*PHASES, "total"):
        print(f"{phase:20s}" + "".join(f"{figures['seconds'][k][phase]:30.2f}" for k in kinds))
    if figures["missing"]:
        print(f"not timed (not found): {', '.join(figures['missing'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist_mlp")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    report(measure(args.workload, args.repeats))


if __name__ == "__main__":
    main()
