"""Runner vs bare lax.scan vs per-step dispatch: steps/s of the same MLP, batch, optimizer.

Usage: python benchmarks/runner_speed.py [--steps 2000] [--repeats 3] [--workload mnist_mlp]
Prints steps/s of each and the ratios, measured side by side in one run on the backend at hand.
The runner is timed twice: training chunks only (its train_s), and its whole loop with an
eval every `eval_every` steps and a SQLite row per eval (wall time minus compile time).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import jax
import optax

from harness.db import open_database
from harness.runner import run_trial
from harness.spec import Target
from harness.submissions import load_submission
from workloads import get_workload


def bare_scan(workload, data, params, model_state, tx, batch_size, steps):
    """The whole training loop as one jitted lax.scan: the floor the runner is compared with."""

    def body(carry, step):
        params, model_state, opt_state, key = carry
        data_rng, update_rng = jax.random.split(jax.random.fold_in(key, step))
        batch = workload.sample_batch(data, data_rng, batch_size)
        (loss, model_state), grads = jax.value_and_grad(
            lambda p: workload.loss(p, model_state, batch, train=True, rng=update_rng), has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), model_state, opt_state, key), loss

    @jax.jit
    def loop(params, model_state, opt_state, key):
        return jax.lax.scan(body, (params, model_state, opt_state, key), jax.numpy.arange(steps))

    return loop, body


#: tiny sizes: the code paths run, the figures mean nothing (the speed suite's --quick)
QUICK = {"workload_name": "mnist_mlp:width=16", "steps": 4, "eval_every": 2, "repeats": 1}


def measure(workload_name: str = "mnist_mlp", steps: int = 2000, eval_every: int = 100,
            repeats: int = 3) -> dict:
    """Steps/s of each path (median over `repeats`, side by side) and each one's ratio to the
    bare scan: {"setup": ..., "steps_per_s": {...}, "ratios": {...}}."""
    variant = get_workload(workload_name)

    class NeverReached(type(variant)):
        """The benchmarked workload with an unreachable target, so every run trains all steps."""

        target = Target("accuracy", 2.0, "max")

    workload = NeverReached(**variant.variant)
    dataset = workload.load_data()
    submission = load_submission("adam")
    hp = submission.hparams
    tx = optax.adam(hp["learning_rate"], b1=hp["beta1"], b2=hp["beta2"], eps=hp["epsilon"])
    batch_size = submission.batch_size(workload.name, workload.batch_size)
    data = jax.device_put(dict(dataset.splits["train"]))
    params, model_state = workload.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(1)

    loop, body = bare_scan(workload, data, params, model_state, tx, batch_size, steps)
    jax.block_until_ready(loop(params, model_state, tx.init(params), key))
    one_step = jax.jit(lambda carry, step: body(carry, step))
    jax.block_until_ready(one_step((params, model_state, tx.init(params), key), 0))

    rates: dict[str, list[float]] = {"runner (train chunks)": [], "runner (incl. evals + DB rows)": [],
                                     "bare lax.scan": [], "per-step dispatch": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/bench.db")
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = run_trial(workload, submission, dataset, 0, db=db, max_steps=steps,
                               eval_every=eval_every)
            wall = time.perf_counter() - t0 - result.compile_s
            rates["runner (train chunks)"].append(steps / result.train_s)
            rates["runner (incl. evals + DB rows)"].append(steps / wall)

            t0 = time.perf_counter()
            jax.block_until_ready(loop(params, model_state, tx.init(params), key))
            rates["bare lax.scan"].append(steps / (time.perf_counter() - t0))

            carry = (params, model_state, tx.init(params), key)
            t0 = time.perf_counter()
            for step in range(steps):
                carry, _ = one_step(carry, step)
            jax.block_until_ready(carry)
            rates["per-step dispatch"].append(steps / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratios = {f"{name} / bare scan": rate / med["bare lax.scan"] for name, rate in med.items()
              if name != "bare lax.scan"}
    ratios["runner (train chunks) / per-step dispatch"] = (med["runner (train chunks)"]
                                                           / med["per-step dispatch"])
    return {"setup": f"{workload_name}, adam, batch {batch_size}, {steps} steps, backend "
                     f"{jax.default_backend()} ({jax.devices()[0].device_kind}), median of {repeats}",
            "steps_per_s": med, "ratios": ratios}


def report(figures: dict) -> None:
    print(figures["setup"])
    med = figures["steps_per_s"]
    for name, rate in med.items():
        print(f"  {name:32s} {rate:9.1f} steps/s   {rate / med['bare lax.scan']:.3f}x bare scan")
    print(f"  runner (train chunks) / per-step dispatch: "
          f"{figures['ratios']['runner (train chunks) / per-step dispatch']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="mnist_mlp", help="a variant spec, e.g. mnist_mlp:width=16")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    report(measure(args.workload, args.steps, args.eval_every, args.repeats))


if __name__ == "__main__":
    main()
