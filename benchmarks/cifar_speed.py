"""Steps/s of the runner against bare JAX loops for the CIFAR-10 convnets, side by side.

For each workload (CIFAR-shaped synthetic data, plain SGD, the workload's default batch
unless --batch-size is given) it times, excluding compilation:
  runner:<mode>  harness.runner.run_trial with that chunk mode (auto picks "step" for conv
                 nets on CPU, "scan" elsewhere);
  bare-scan      one jitted rolled lax.scan over all steps (sample + grad + update);
  bare-unroll    one jitted function with the steps unrolled by a Python loop (no lax.scan);
  bare-step      one jitted step per Python call.
and prints ms/step plus each mode's speed relative to bare-step and bare-scan.
Rolled scans of convolutions are ~36x slower on XLA:CPU (docs/architecture.md), so on CPU keep
--steps small for the scan modes of ResNet-18, or leave them out with --modes.

Run: python benchmarks/cifar_speed.py [--workloads cifar_simplecnn,cifar_resnet18] [--steps 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload

LEARNING_RATE = 0.01
SUBMISSION = Path(__file__).resolve().parents[1] / "submissions" / "sgd"
MODES = ("runner:auto", "runner:step", "runner:unroll", "runner:scan", "bare-scan", "bare-unroll",
         "bare-step")


def bare_step_fn(workload, train, batch_size):
    """One plain SGD step on a batch sampled on the device: the body both bare loops run."""
    optimizer = optax.sgd(LEARNING_RATE)

    def step(state, key):
        params, model_state, opt_state = state
        batch = workload.sample_batch(train, key, batch_size)
        (loss, model_state), grads = jax.value_and_grad(
            lambda p: workload.loss(p, model_state, batch, train=True), has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), model_state, opt_state), loss

    params, model_state = workload.init(jax.random.PRNGKey(0))
    return step, (params, model_state, optimizer.init(params))


def time_bare(workload, train, batch_size, steps, mode) -> float:
    """Seconds per step of a bare loop, compile excluded."""
    step, state = bare_step_fn(workload, train, batch_size)
    keys = jax.random.split(jax.random.PRNGKey(1), steps)
    if mode in ("bare-scan", "bare-unroll"):
        def python_loop(state, keys):
            losses = []
            for i in range(steps):
                state, loss = step(state, keys[i])
                losses.append(loss)
            return state, jnp.stack(losses)

        chunk = python_loop if mode == "bare-unroll" else (lambda s, k: jax.lax.scan(step, s, k))
        compiled = jax.jit(chunk).lower(state, keys).compile()
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, keys))
        return (time.perf_counter() - t0) / steps
    compiled = jax.jit(step).lower(state, keys[0]).compile()
    t0 = time.perf_counter()
    for key in keys:
        state, loss = compiled(state, key)
    jax.block_until_ready(loss)
    return (time.perf_counter() - t0) / steps


def time_runner(workload, dataset, batch_size, steps, chunk_mode) -> tuple[float, str]:
    """Seconds per training step of run_trial (its train_s excludes compile and eval)."""
    submission = load_submission(SUBMISSION, {"batch_size": batch_size,
                                              "learning_rate": LEARNING_RATE})
    result = run_trial(workload, submission, dataset, seed=0, max_steps=steps,
                       eval_every=steps, chunk_mode=chunk_mode)
    return result.train_s / steps, result.chunk_mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="cifar_simplecnn,cifar_resnet18")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=None, help="default: each workload's")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; valid: {', '.join(MODES)}")
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}, "
          f"{args.steps} timed steps per mode, compile excluded")
    for spec in args.workloads.split(","):
        workload = get_workload(spec)
        batch_size = args.batch_size or workload.batch_size
        dataset = workload.synthetic_dataset({"train": max(2048, batch_size), "validation": 8})
        train = {k: jnp.asarray(v) for k, v in dataset.splits["train"].items()}
        seconds: dict[str, float] = {}
        for mode in modes:
            if mode.startswith("runner:"):
                seconds[mode], picked = time_runner(workload, dataset, batch_size, args.steps,
                                                    mode.split(":")[1])
                label = f"{mode} ({picked})" if mode == "runner:auto" else mode
            else:
                seconds[mode], label = time_bare(workload, train, batch_size, args.steps, mode), mode
            print(f"{spec:>24} batch {batch_size:>5}  {label:<20} {1e3 * seconds[mode]:>10.1f} ms/step"
                  f"  {1 / seconds[mode]:>8.3f} steps/s", flush=True)
        for mode, s in seconds.items():
            ratios = [f"{s / seconds[ref]:.2f}x the time of {ref}"
                      for ref in ("bare-step", "bare-scan") if ref in seconds and ref != mode]
            if ratios:
                print(f"{spec:>24}  {mode:<12} " + "; ".join(ratios))


if __name__ == "__main__":
    main()
