"""JAX's threefry lowering on XLA:CPU, rolled (JAX's default there) vs unrolled (harness/threefry_cpu.py).

    python3 benchmarks/threefry_cpu.py

Each lowering in its own fresh process (the choice is process-wide), timing: flax's
initialisers of SimpleCNN (width 0.25) and the MNIST MLP dispatched op by op (as a trial's
initial state is computed), compiling a 1 MiB draw of random bits, running a 16 MiB draw (median of 5), compiling flax's initialiser
of SimpleCNN (width 0.25) and of the MNIST MLP, and compiling one vectorised sweep program of
the MNIST MLP (5 seeds, adam, in-loop eval). Prints each time and unrolled / rolled.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, statistics, sys, time
import jax, jax.numpy as jnp
if sys.argv[1] == "unrolled":
    from harness import threefry_cpu
    assert threefry_cpu.install()
else:  # importing the workloads would install it: keep JAX's own rule for this process
    from harness import threefry_cpu
    threefry_cpu.keep_jax_default()
from workloads import get_workload

key = jax.random.PRNGKey(0)
out = {}
for spec in ("cifar_simplecnn:width=0.25", "mnist_mlp"):  # first: nothing compiled yet
    t0 = time.perf_counter()
    jax.block_until_ready(get_workload(spec).init(key))
    out[f"{spec} init, op by op (as trials run it)"] = time.perf_counter() - t0

def compile_s(fn, *args):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t0, compiled

out["compile 1 MiB of bits"], _ = compile_s(lambda k: jax.random.bits(k, (512, 512)), key)
_, big = compile_s(lambda k: jax.random.bits(k, (4096, 1024)), key)
jax.block_until_ready(big(key))
runs = []
for _ in range(5):
    t0 = time.perf_counter(); jax.block_until_ready(big(key)); runs.append(time.perf_counter() - t0)
out["run 16 MiB of bits"] = statistics.median(runs)
for spec in ("cifar_simplecnn:width=0.25", "mnist_mlp"):
    out[f"compile {spec} init"], _ = compile_s(get_workload(spec).init, key)
print(json.dumps(out))
"""

SWEEP = ["sweep", "--workload", "mnist_mlp",
         "--submission", "adam", "--seeds", "5", "--eval-every", "1", "--max-steps", "5",
         "--json", "--quiet", "--compile-cache", "off"]

SWEEP_CHILD = r"""
import sys
if sys.argv[1] == "rolled":
    from harness import threefry_cpu
    threefry_cpu.keep_jax_default()
sys.argv = ["curvebench"] + sys.argv[2:]
from harness.cli import app
app()
"""


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rows: dict[str, dict[str, float]] = {}
    for mode in ("rolled", "unrolled"):
        proc = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True,
                              text=True, check=True, cwd=REPO)
        rows[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        sweep = subprocess.run([sys.executable, "-c", SWEEP_CHILD, mode, *SWEEP, "--db",
                                str(Path(os.environ.get("TMPDIR", "/tmp")) / f"threefry_{mode}_{time.time_ns()}.db")],
                               env=env, capture_output=True, text=True, check=True, cwd=REPO)
        trial = json.loads(sweep.stdout)[0]
        rows[mode]["compile the mnist_mlp sweep program (5 seeds)"] = trial["compile_s"]
    print("command: python3 benchmarks/threefry_cpu.py")
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); seconds")
    print(f"{'':62s}{'rolled':>10s}{'unrolled':>10s}{'unrolled / rolled':>19s}")
    for label, rolled in rows["rolled"].items():
        unrolled = rows["unrolled"][label]
        print(f"{label:62s}{rolled:10.3f}{unrolled:10.3f}{unrolled / rolled:19.2f}")


if __name__ == "__main__":
    main()
