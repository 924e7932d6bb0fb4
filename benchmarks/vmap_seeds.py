"""Per seed-step cost of several seeds in one compiled program vs one seed alone.

Usage: python benchmarks/vmap_seeds.py [--seeds 16] [--steps 200] [--eval-every 100]
       [--workload mnist_mlp] [--submission adam] [--repeats 3]

Runs, side by side in one process on the backend at hand, with an unreachable target so every
trial trains the whole budget: one seed alone (run_group of one trial); the seeds vmapped in
one program (batching "vmap"); the seeds in one program computed one after the other inside
it (batching "map", the CPU default); and the seeds as trials run one after the other sharing
one compiled program (max_group_size=1). Prints the training time per seed-step of each
(training and in-loop evals, compile excluded; median over repeats), its ratio to one seed
alone, and the compile time of each path.
"""

from __future__ import annotations

import argparse
import statistics

import jax

from harness.runner import run_group

from harness.records.trial import TrialOptions, TrialSpec
from harness.spec import Target
from harness.submissions import load_submission
from workloads import REGISTRY, get_workload


#: tiny sizes: the code paths run, the figures mean nothing (the speed suite's --quick)
QUICK = {"workload_spec": "mnist_mlp:width=16", "n_seeds": 2, "steps": 2, "eval_every": 2, "repeats": 1}


def measure(workload_spec: str = "mnist_mlp", submission_name: str = "adam", n_seeds: int = 16,
            steps: int = 200, eval_every: int = 100, repeats: int = 3) -> dict:
    """Per seed-step training time of each path (median over `repeats`), its ratio to one seed
    alone, and each path's compile time: {"setup", "seed_step_s", "compile_s", "ratios"}."""
    base = type(get_workload(workload_spec))
    if base.name not in REGISTRY:
        raise SystemExit(f"unknown workload {workload_spec}")

    class NeverReached(base):
        """The benchmarked workload with an unreachable target: every trial trains all steps."""

        target = Target(base.target.metric, float("inf") if base.target.direction == "max"
                        else float("-inf"), base.target.direction, base.target.split)

    workload = NeverReached(**get_workload(workload_spec).variant)
    dataset = workload.load_data()
    submission = load_submission(submission_name)
    seeds = [TrialSpec(seed=s, hparams={}) for s in range(n_seeds)]
    paths = {
        "1 seed alone": (seeds[:1], {}),
        f"{n_seeds} seeds vmapped": (seeds, {"batching": "vmap"}),
        f"{n_seeds} seeds mapped in one program": (seeds, {"batching": "map"}),
        f"{n_seeds} seeds sequential, shared compile": (seeds, {"max_group_size": 1}),
    }
    per_seed_step: dict[str, list[float]] = {name: [] for name in paths}
    compile_s: dict[str, float] = {}
    for _ in range(repeats):
        for name, (trials, extra) in paths.items():
            options = TrialOptions(max_steps=steps, eval_every=eval_every, **extra)
            results = run_group(workload, submission, dataset, trials, options=options)
            one_program = results[0].group_size == len(trials)
            # a group's trials each report the group's compile and train time; trials run one
            # after the other report their own (the first one compiles)
            compile_s.setdefault(name, results[0].compile_s if one_program
                                 else sum(r.compile_s for r in results))
            train = results[0].train_s if one_program else sum(r.train_s for r in results)
            per_seed_step[name].append(train / (len(trials) * steps))
    med = {k: statistics.median(v) for k, v in per_seed_step.items()}
    alone = med["1 seed alone"]
    return {"setup": f"{workload_spec}, {submission.name}, {steps} steps, eval every {eval_every}, "
                     f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), "
                     f"median of {repeats}",
            "seed_step_s": med, "compile_s": compile_s,
            "ratios": {f"{name} / alone": cost / alone for name, cost in med.items()
                       if name != "1 seed alone"}}


def report(figures: dict) -> None:
    print(figures["setup"])
    med = figures["seed_step_s"]
    alone = med["1 seed alone"]
    for name, cost in med.items():
        print(f"  {name:42s} {cost * 1e3:9.3f} ms/seed-step   {cost / alone:6.3f}x alone   "
              f"compile {figures['compile_s'][name]:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="mnist_mlp")
    ap.add_argument("--submission", default="adam")
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    report(measure(args.workload, args.submission, args.seeds, args.steps, args.eval_every,
                   args.repeats))


if __name__ == "__main__":
    main()
