"""Is the device starved? ogbg_molpcba graphs/s of the input pipeline, the train step, and both.

Measured side by side in one run, on the backend at hand:
  pipeline  - padded batches from workload.train_batches alone (host, numpy + jraph padding)
  step      - the jitted train step (adam) alone over batches already on the device
              (this is also the "bare loop over pre-built batches")
  both      - the step fed by the pipeline through the runner's background prefetch thread
  runner    - harness.runner.run_trial, one compiled scan chunk of --steps steps (train_s)
Ratios: step/both > 1 means the device waits for input; runner/step is the runner's cost
over a bare loop. Compile time is excluded everywhere (each path is warmed first).

Run: python benchmarks/ogbg_pipeline.py [--batch-size 256] [--steps 20] [--repeats 3] [--spec ogbg_molpcba]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from harness.data.prefetch import prefetch
from harness.runner import run_trial
from harness.records.trial import HOST_PREFETCH
from harness.submissions import load_submission
from workloads import get_workload

ADAM = Path(__file__).resolve().parents[1] / "submissions" / "adam"


def graphs_per_s(batches: list[dict], seconds: float) -> float:
    return sum(float(b["mask"].sum()) for b in batches) / seconds


def time_pipeline(workload, dataset, batch_size: int, steps: int) -> float:
    source = workload.train_batches(dataset, batch_size, seed=1)
    next(source)
    t0 = time.perf_counter()
    batches = list(itertools.islice(source, steps))
    return graphs_per_s(batches, time.perf_counter() - t0)


def make_step(workload, submission):
    module, hp = submission.module, submission.hparams

    @jax.jit
    def step(state, batch, rng):
        params, model_state, opt_state = state
        params, model_state, opt_state, metrics = module.update_params(
            workload, params, model_state, opt_state, batch, hp, 0, rng)
        return (params, model_state, opt_state), metrics["loss"]

    return step


def run_steps(step, state, batches, rng) -> tuple[float, list[dict]]:
    """Seconds for one step per batch (blocking at the end), and the batches used."""
    used = []
    t0 = time.perf_counter()
    loss = None
    for i, batch in enumerate(batches):
        state, loss = step(state, batch, jax.random.fold_in(rng, i))
        used.append(batch)
    jax.block_until_ready(loss)
    return time.perf_counter() - t0, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="ogbg_molpcba")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--graphs", type=int, default=20_000, help="synthetic training graphs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    workload = get_workload(args.spec)
    dataset = workload.synthetic_dataset({"train": args.graphs, "validation": 256}, seed=0)
    submission = load_submission(ADAM, [f"batch_size={args.batch_size}"])
    rng = jax.random.PRNGKey(0)
    params, model_state = workload.init(rng)
    state = (params, model_state,
             submission.module.init_optimizer_state(workload, params, model_state,
                                                     submission.hparams, rng))
    step = make_step(workload, submission)

    prebuilt = [jax.device_put(b) for b in
                itertools.islice(workload.train_batches(dataset, args.batch_size, seed=2), args.steps)]
    run_steps(step, state, prebuilt[:1], rng)  # compile
    graphs_per_batch = float(np.mean([b["mask"].sum() for b in prebuilt]))
    rates: dict[str, list[float]] = {"pipeline": [], "step": [], "both": [], "runner": []}
    compiles = mode = None
    for repeat in range(args.repeats):
        rates["pipeline"].append(time_pipeline(workload, dataset, args.batch_size, args.steps))
        seconds, used = run_steps(step, state, prebuilt, rng)
        rates["step"].append(graphs_per_s(used, seconds))
        fed = prefetch(workload.train_batches(dataset, args.batch_size, seed=3 + repeat),
                        HOST_PREFETCH)
        seconds, used = run_steps(step, state, itertools.islice(fed, args.steps), rng)
        rates["both"].append(graphs_per_s(used, seconds))
        result = run_trial(workload, submission, dataset, seed=repeat, max_steps=args.steps,
                           eval_every=args.steps)
        rates["runner"].append(graphs_per_batch * args.steps / result.train_s)
        compiles, mode = result.compiles, result.chunk_mode
    pipeline, step_alone, both, runner = (statistics.median(rates[k]) for k in rates)

    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), {args.spec}, "
          f"batch {args.batch_size} graphs, {args.steps} steps, synthetic molecule-sized graphs")
    print(f"{'path':<10}{'graphs/s (median of ' + str(args.repeats) + ')':>26}   all repeats")
    for name, values in rates.items():
        print(f"{name:<10}{statistics.median(values):>26.1f}   "
              + " ".join(f"{v:.1f}" for v in values))
    print(f"pipeline/step {pipeline / step_alone:.2f}  (>1: input is faster than the device)")
    print(f"step/both     {step_alone / both:.2f}  (>1: the device is starved when fed live)")
    print(f"runner/step   {step_alone / runner:.2f}  (runner time over bare loop, same graphs/step "
          f"on average; runner compiles={compiles}, mode={mode})")


if __name__ == "__main__":
    main()
