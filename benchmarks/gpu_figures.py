"""The accelerator figures in one run, written as JSON: meant to take under 8 minutes on a GPU.

    python3 benchmarks/gpu_figures.py --out gpu_figures.json
    python3 benchmarks/gpu_figures.py --quick --out figures.json   # tiny sizes (CPU smoke test)

Each figure comes from its ratio script's `measure` at its default sizes (--quick: its QUICK
ones); the sweep grid only cold and warm against the floor, curvature only per product:

- runner_speed: the runner vs a bare jitted lax.scan and per-step dispatch (steps/s, ratios);
- vmap_seeds: 16 seeds in one program (vmapped, mapped, sequential) vs one seed alone
  (s per seed-step, ratios; the goal on a GPU: vmapped <= 0.3x alone);
- sweep_grid: the MNIST ablation grid's cold and warm sweep against their floors (the
  compiled training loops alone);
- curvature_overhead: a warm snapshot / (m x one product) per operator and loop.

The JSON: {"date", "backend", "device_kind", "jax_version", "quick", "load", "wall_s",
"figures": {script: {name: number}}}; every figure is a number of seconds, steps/s or a ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))

import curvature_overhead  # noqa: E402
import runner_speed  # noqa: E402
import sweep_grid  # noqa: E402
import vmap_seeds  # noqa: E402

#: arguments of each measure() beyond its default (full) or QUICK sizes
ONLY = {"sweep_grid": {"full": False}, "curvature_overhead": {"trial": False}}


def sizes(script, quick: bool) -> dict:
    name = script.__name__
    return {**(script.QUICK if quick else {}), **ONLY.get(name, {})}


def numbers(figures: dict, *keys: str) -> dict[str, float]:
    """The named sub-dicts of a script's figures, flattened to {"key: name": number}."""
    return {f"{key}: {name}": float(value) for key in keys for name, value in figures[key].items()}


def measure(quick: bool) -> dict[str, dict[str, float]]:
    out = {}
    runner = runner_speed.measure(**sizes(runner_speed, quick))
    out["runner_speed"] = numbers(runner, "steps_per_s", "ratios")
    seeds = vmap_seeds.measure(**sizes(vmap_seeds, quick))
    out["vmap_seeds"] = numbers(seeds, "seed_step_s", "compile_s", "ratios")
    grid = sweep_grid.measure(quick, **sizes(sweep_grid, quick))
    out["sweep_grid"] = numbers(grid, "wall_s", "floor_s", "ratios")
    curvature = curvature_overhead.measure(**sizes(curvature_overhead, quick))
    out["curvature_overhead"] = {
        f"{name}: {field}": float(value) for name, row in curvature["products"].items()
        for field, value in row.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_figures.json", help="the JSON file to write")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the figures mean nothing")
    args = parser.parse_args()
    load_before, t0 = os.getloadavg()[0], time.perf_counter()
    figures = measure(args.quick)
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
              "jax_version": jax.__version__, "quick": args.quick,
              "load": [load_before, os.getloadavg()[0]], "wall_s": time.perf_counter() - t0,
              "figures": figures}
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
