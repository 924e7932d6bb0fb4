"""The AlgoPerf adapter's cost: ms per training step of the same optimizer written natively and
as an AlgoPerf submission, through the runner's compiled chunks, and in concrete-step mode.

Usage: python benchmarks/algoperf_adapter.py [--steps 1000] [--repeats 3] [--workload mnist_mlp]
Pairs, measured side by side in one run on the backend at hand (median over repeats; each
row says how the runner trained it, and the load average is printed):
- the built-in adamw (native) vs algoperf_adamw (AlgoPerf format, jit era, same
  hyperparameters, no label smoothing) through the runner (its train_s): compiled chunks,
  since its prepare_for_eval is AlgoPerf's no-op form (before that was recognised, the
  runner trained it in concrete steps: the 3.4x of docs/algoperf.md's first measurement);
- the built-in adam (native) vs tests/algoperf_submissions/pmap_adam (pmap era, Adam with the same
  rate and betas) in compiled chunks;
- the built-in algoperf_adamw in concrete-step mode (`harness.algoperf.hooks.ConcreteSteps`: a
  Python int global_step each step, the submission's own jit), first call excluded.
The adapter's extra work in a chunk: the batch loss the runner records (AlgoPerf's update_params
returns none), the input-queue and device-axis reshapes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import jax

from harness.algoperf.hooks import ConcreteSteps
from harness.runner import run_trial, trial_keys
from harness.spec import Target
from harness.submissions import load_submission
from workloads import REGISTRY

REPO = Path(__file__).resolve().parent.parent


def chunk_ms(workload, submission, dataset, steps: int) -> tuple[float, str]:
    """ms per step of the runner's training (compile and evals excluded), and how the runner
    trained it: its chunk mode, or concrete steps and why."""
    result = run_trial(workload, submission, dataset, 0, max_steps=steps, eval_every=steps)
    how = (f"concrete steps ({result.concrete_reason})" if result.concrete_reason
           else f"compiled chunks ({result.chunk_mode})")
    return 1e3 * result.train_s / steps, how


WARMUP = 3


def concrete_ms(workload, submission, dataset, steps: int) -> tuple[float, str]:
    """ms per step with a Python int global_step, after WARMUP steps (the submission's jit
    compiles on step 0 and again on step 1, when its inputs are its own outputs)."""
    keys = trial_keys(0)
    params, state = jax.jit(workload.init)(keys["init"])
    opt = submission.module.init_optimizer_state(workload, params, state, submission.hparams,
                                                 keys["optimizer"])
    stepper = ConcreteSteps(workload, submission, submission.batch_size(workload.name, workload.batch_size))
    data = jax.device_put(dict(dataset.splits["train"]))
    carry, _, _ = stepper.run((params, state, opt), data, 0, WARMUP, keys["train"])
    jax.block_until_ready(carry)
    t0 = time.perf_counter()
    carry, _, _ = stepper.run(carry, data, WARMUP, steps, keys["train"])
    jax.block_until_ready(carry)
    return 1e3 * (time.perf_counter() - t0) / steps, "ConcreteSteps directly"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="mnist_mlp")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    class NeverReached(REGISTRY[args.workload]):
        """The benchmarked workload with an unreachable target, so every run trains all steps."""

        target = Target("accuracy", 2.0, "max")

    workload = NeverReached()
    dataset = workload.load_data()
    adamw = load_submission(REPO / "submissions" / "adamw")
    point = {k: adamw.hparams[k] for k in ("learning_rate", "one_minus_beta1", "beta2",
                                           "weight_decay", "warmup_factor")}
    wrapped_adamw = load_submission(REPO / "submissions" / "algoperf_adamw",
                                    {**point, "label_smoothing": 0.0})
    adam = load_submission(REPO / "submissions" / "adam", {"learning_rate": 2e-3})
    pmap_adam = load_submission(REPO / "tests" / "algoperf_submissions" / "pmap_adam",
                                {"learning_rate": 2e-3, "one_minus_beta_1": 0.1, "epsilon": 1e-8})
    runs = {
        "adamw native": lambda: chunk_ms(workload, adamw, dataset, args.steps),
        "adamw AlgoPerf (jit)": lambda: chunk_ms(workload, wrapped_adamw, dataset, args.steps),
        "adamw AlgoPerf, concrete steps": lambda: concrete_ms(workload, wrapped_adamw, dataset, args.steps),
        "adam native": lambda: chunk_ms(workload, adam, dataset, args.steps),
        "adam AlgoPerf (pmap)": lambda: chunk_ms(workload, pmap_adam, dataset, args.steps),
    }
    load0 = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in runs}
    how: dict[str, str] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            ms, how[name] = run()
            times[name].append(ms)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.workload}, batch {adamw.batch_size(workload.name, workload.batch_size)}, "
          f"{args.steps} steps, backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
          f"{jax.local_device_count()} local device(s), median of {args.repeats}; load average "
          f"{load0[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    for name, ms in med.items():
        native = med["adam native"] if name.startswith("adam ") else med["adamw native"]
        print(f"  {name:32s} {ms:8.3f} ms/step   {ms / native:6.2f}x native   {how[name]}")


if __name__ == "__main__":
    main()
