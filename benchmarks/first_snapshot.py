"""A workload's first curvature snapshot against its training compile: where the time goes.

    python3 benchmarks/first_snapshot.py
    python3 benchmarks/first_snapshot.py --workloads mnist_mlp --order 4 --batch 64 --quick

Each workload in a fresh process (nothing compiled yet), twice: with an empty persistent
compilation cache, then again with the cache the first process filled. In each process: a
one-step trial (`run_trial`, max_steps 1: its compile_s is the training compile), then a
default Hessian snapshot (`Snapshotter`, SnapshotConfig() unless --order/--batch) at the
initial parameters, then a second, warm one. The first snapshot's compile time is split by
program (curvature_gradient, the Lanczos program or its host-driven step, the trace probes'
curvature_matmat; "other": op-by-op calls) and by stage (tracing to a jaxpr, lowering to MLIR,
XLA's compile), from JAX's own timing events (benchmarks/compile_clock.py).

Workloads: mnist_mlp (the offline MNIST sample) and cifar_simplecnn at width 0.25 on synthetic
data with a 256-example curvature batch (WORKLOADS); this repository has no sequence model:
tests/installed_workload.py's per-token one (`shift_tokens`, an embedding and a dense layer
per token) is measured by installing it on the path first, e.g.

    python3 -c "from pathlib import Path; from tests.installed_workload import install; install(Path('/tmp/site'))"
    PYTHONPATH=/tmp/site python3 benchmarks/first_snapshot.py --workloads shift_tokens --batch 256

Full-width cifar_simplecnn at the default curvature batch, and ogbg_molpcba on synthetic graphs
(`--workloads ogbg_molpcba`), did not finish one process in 5 minutes on 2 loaded cores.
Prints first snapshot / training compile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: workload variant -> its curvature batch (0: SnapshotConfig's default, 2,048 examples)
WORKLOADS = {"mnist_mlp": 0, "cifar_simplecnn:width=0.25": 256}
PROGRAMS = ("curvature_gradient", "curvature_lanczos", "curvature_lanczos_step",
            "curvature_lanczos_steps", "curvature_matmat", "curvature_matvec",
            "curvature_minibatch_gradients")

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[5])
import jax
from compile_clock import CompileClock
from harness import compile_cache
from harness.curvature import SnapshotConfig, Snapshotter
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload

spec, cache, order, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
compile_cache.configure(cache)
workload = get_workload(spec)
if workload.name.startswith("mnist"):
    dataset = workload.load_data()
else:
    dataset = workload.synthetic_dataset({"train": max(2048, batch), "validation": 8}, seed=0)
submission = load_submission("adam")
with CompileClock() as trial_clock:
    trial = run_trial(workload, submission, dataset, 0, max_steps=1, eval_every=1)
params, state = workload.init(jax.random.PRNGKey(0))
config = SnapshotConfig(**({"lanczos_order": order, "top_k": tuple(k for k in (1, 5, 10) if k <= order)}
                           if order else {}), **({"curvature_batch": batch} if batch else {}))
t0 = time.perf_counter()
snap = Snapshotter(workload, dataset, config, batch_size=workload.batch_size)
setup_s = time.perf_counter() - t0
with CompileClock() as clock:
    first = snap.snapshot(params, state)[0]
warm = snap.snapshot(params, state)[0]
print(json.dumps({"trial_compile_s": trial.compile_s, "trial_compile_stages": trial_clock.stage_totals(),
                  "setup_s": setup_s, "first_s": first.compute_s, "warm_s": warm.compute_s,
                  "host_loop": snap.host_loop, "stages": clock.stage_totals(),
                  "programs": clock.programs(), "by_program": clock.by_program(PROGRAMS),
                  "lanczos_order": config.lanczos_order, "curvature_batch": config.curvature_batch}))
"""


def one_process(spec: str, cache: str, order: int, batch: int, timeout_s: float = 900) -> dict:
    # the caller's PYTHONPATH after the repository's: a workload package installed elsewhere
    # (e.g. tests/installed_workload.py's per-token sequence model) is found by its entry point
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    code = CHILD.replace("PROGRAMS", repr(PROGRAMS))
    try:
        proc = subprocess.run([sys.executable, "-c", code, spec, cache, str(order), str(batch),
                               str(REPO / "benchmarks")], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"not finished in {timeout_s} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: tiny sizes: the code paths run, the figures mean nothing (the speed suite's --quick)
QUICK = {"workloads": ("mnist_mlp:width=16",), "order": 4, "batch": 64, "warm_cache": False}


def measure(workloads: tuple[str, ...] = tuple(WORKLOADS), order: int = 0, batch: int = 0,
            warm_cache: bool = True) -> dict:
    """Per workload, per cache state ("cold", "warm cache"): the child's figures; "ratios":
    first snapshot / training compile of each that ran. `batch` 0: WORKLOADS' batch."""
    out: dict = {"load": [os.getloadavg()[0]], "workloads": {}, "ratios": {}}
    for spec in workloads:
        cache = tempfile.mkdtemp(prefix="first_snapshot_cache_")
        examples = batch or WORKLOADS.get(spec, 0)
        runs = {"cold": one_process(spec, cache, order, examples)}
        if warm_cache:
            runs["warm cache"] = one_process(spec, cache, order, examples)
        out["workloads"][spec] = runs
        for state, row in runs.items():
            if "error" not in row:
                out["ratios"][f"{spec} {state}: first snapshot / training compile"] = (
                    row["first_s"] / row["trial_compile_s"])
                out["ratios"][f"{spec} {state}: first snapshot / warm snapshot"] = (
                    row["first_s"] / row["warm_s"])
    out["load"].append(os.getloadavg()[0])
    return out


def report(figures: dict, command: str) -> None:
    print(f"command: {command}")
    print(f"load average before {figures['load'][0]:.2f}, after {figures['load'][1]:.2f} "
          f"({os.cpu_count()} CPUs); seconds")
    for spec, runs in figures["workloads"].items():
        for state, row in runs.items():
            if "error" in row:
                print(f"\n{spec} ({state}): did not run: {row['error']}")
                continue
            s = row["stages"]
            print(f"\n{spec} ({state}; m={row['lanczos_order']}, curvature batch "
                  f"{row['curvature_batch']}, {'host-driven' if row['host_loop'] else 'compiled'} "
                  f"Lanczos loop)")
            print(f"  training compile (one-step trial's compile_s) {row['trial_compile_s']:8.2f}")
            print(f"  first snapshot                                {row['first_s']:8.2f}   "
                  f"{row['first_s'] / row['trial_compile_s']:.2f}x training compile")
            print(f"    of which compiling ({row['programs']} programs)          {s['compile']:8.2f}   "
                  f"(trace {s['trace']:.2f}, lower {s['lower']:.2f}, XLA {s['xla']:.2f})")
            print(f"  warm snapshot                                 {row['warm_s']:8.2f}")
            print(f"  curvature data (Snapshotter setup)            {row['setup_s']:8.2f}")
            print(f"    {'program':32s}{'trace':>8s}{'lower':>8s}{'XLA':>8s}")
            for name, st in sorted(row["by_program"].items(), key=lambda x: -sum(x[1].values())):
                print(f"    {name:32s}{st['trace']:8.2f}{st['lower']:8.2f}{st['xla']:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--order", type=int, default=0, help="Lanczos order (default: the config's)")
    parser.add_argument("--batch", type=int, default=0,
                        help="curvature batch of every workload (default: WORKLOADS')")
    parser.add_argument("--quick", action="store_true", help="no second (warm-cache) process")
    args = parser.parse_args()
    figures = measure(tuple(args.workloads.split(",")), args.order, args.batch, not args.quick)
    report(figures, "python3 " + " ".join(["benchmarks/first_snapshot.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
