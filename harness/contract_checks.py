"""The contract checks of one workload (`curvebench workloads check NAME`, tests/test_contract.py):
each judges behaviour — the data loads, the loss is one finite number per example, a few
steps of a built-in submission lower it, masked rows change nothing, every knob moves the
version, evaluation gives finite metrics in their ranges — and says what to change when it
fails.

Whether the target is reached within `max_steps` takes full runs; the target check decides
what a few seconds can (`check_target`): a target outside its metric's declared range fails
without training; on real data, a short run of the built-in submission that does not move
the target's metric toward it, or moves it so slowly that even at that rate kept up (an
optimistic line: curves flatten) the target lies beyond `max_steps`, fails. A target reached
in the short run passes; one on course is "not judged", with the full run that judges it.

Each check gets the workload and a `Probe` (its data, real where it loads, else synthetic of
the real shapes, and initial parameters) and returns a `Verdict`; one that raises is a
failing verdict naming the exception, so one broken part never hides the others.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness.errors import DataUnavailable, UserError
from harness.spec import Dataset, Workload

#: verdicts: "pass", "fail", "absent" (the data is not on this machine: not a failure, the
#: other checks use synthetic data of the real shapes), "not judged" (needs full runs)
PASS, FAIL, ABSENT, NOT_JUDGED = "pass", "fail", "absent", "not judged"
#: the built-in submission, steps and batch size of the training check
TRAIN_SUBMISSION, TRAIN_STEPS, PROBE_BATCH = "adam", 20, 8
#: eval batches of 16 the eval check takes from the split's start (a full split can be large)
EVAL_BATCHES = 4
#: the target check's short run: at most this many steps (fewer if max_steps is smaller) at
#: the workload's batch size, the target's metric measured this many times on at most
#: TARGET_EVAL_EXAMPLES examples from the target split's start
TARGET_STEPS, TARGET_EVALS, TARGET_EVAL_EXAMPLES = 60, 6, 1024


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One check's outcome: `status` (PASS, FAIL, ABSENT, NOT_JUDGED), what was seen, and
    (when it did not pass) what to change."""

    check: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclasses.dataclass
class Probe:
    """What the checks share: the data they run on and initial parameters."""

    data: Dataset
    real_data: bool
    params: Any
    model_state: Any


def train_batch(workload: Workload, data: Dataset, n: int = PROBE_BATCH, seed: int = 0):
    """A training batch of `n` examples as the runner draws one (device or host mode)."""
    if workload.input_mode == "host":
        return next(iter(workload.train_batches(data, n, seed=seed)))
    return workload.sample_batch(jax.device_put(dict(data.splits["train"])), jax.random.PRNGKey(seed), n)


def fill_masked_rows(batch: dict, mask: np.ndarray, seed: int = 0) -> dict:
    """`batch` with `mask` and, in its masked rows, other content the model accepts: inputs and
    targets of other rows (shuffled; valid tokens for integer inputs) and, for float inputs,
    1e3 * standard normal on top. Array inputs only; other leaves are kept."""
    rng = np.random.default_rng(seed)
    out = jax.tree_util.tree_map(np.array, dict(batch))
    out["mask"] = np.asarray(mask, np.float32)
    masked = np.flatnonzero(mask == 0)
    for key in ("inputs", "targets"):
        a = out.get(key)
        if not isinstance(a, np.ndarray) or a.ndim == 0 or len(a) != len(mask):
            continue
        a = a.copy()
        a[masked] = a[rng.permutation(len(a))[: len(masked)]]
        if key == "inputs" and np.issubdtype(a.dtype, np.floating):
            a[masked] = (1e3 * rng.standard_normal(a[masked].shape)).astype(a.dtype)
        out[key] = a
    return out


def _data(workload: Workload, data_dir: str | None, source: str | None) -> tuple[Verdict, Dataset, bool]:
    try:
        data = workload.load_data(data_dir, source)
    except DataUnavailable as e:
        synthetic = workload.synthetic_dataset({"train": 64, "validation": 37}, seed=1)
        return Verdict("data", ABSENT, f"not on this machine ({e}); the other checks use "
                       "synthetic data of the real shapes", "fetch it as the message says "
                       "and check again"), synthetic, False
    missing = [s for s in ("train", workload.target.split) if s not in data.splits]
    if missing:
        synthetic = workload.synthetic_dataset({"train": 64, "validation": 37}, seed=1)
        return Verdict("data", FAIL, f"load_data gave splits {sorted(data.splits)}, lacking "
                       f"{', '.join(missing)}", "return the train split and the target's split"), synthetic, False
    sizes = ", ".join(f"{k} {data.size(k)}" for k in data.splits)
    return Verdict("data", PASS, f"{data.source}: {sizes}; fingerprint {data.fingerprint}"), data, True


def check_declares(workload: Workload, probe: Probe) -> Verdict:
    cls = type(workload)
    problems = []
    if workload.target.direction not in ("max", "min"):
        problems.append(f"target direction {workload.target.direction!r} is not max or min")
    for attr in ("batch_size", "max_steps", "eval_every"):
        if not (isinstance(getattr(cls, attr, None), int) and getattr(cls, attr) > 0):
            problems.append(f"{attr} must be a positive int")
    if workload.target.metric not in workload.metric_ranges():
        problems.append(f"target metric {workload.target.metric!r} is not in metric_ranges()")
    if not (cls.__doc__ or "").strip():
        problems.append("no class docstring (say where the model and data come from)")
    if problems:
        return Verdict("declares", FAIL, "; ".join(problems),
                       "set the class attributes name, target, batch_size, max_steps, eval_every "
                       "and a docstring; name the target's metric in metric_ranges")
    return Verdict("declares", PASS, f"target {workload.target.split} {workload.target.metric} "
                   f"{'>=' if workload.target.direction == 'max' else '<='} {workload.target.value}")


def check_loss(workload: Workload, probe: Probe) -> Verdict:
    batch = train_batch(workload, probe.data)
    per_example = jax.jit(lambda p, b: workload.loss_per_example(
        workload.apply(p, probe.model_state, b["inputs"], train=False)[0], b))(probe.params, batch)
    if np.shape(per_example) != np.shape(batch["mask"]):
        return Verdict("loss", FAIL, f"loss_per_example gave shape {np.shape(per_example)}, "
                       f"expected {np.shape(batch['mask'])}", "return one loss per example: reduce "
                       "per-token or per-label losses over their other axes")
    if not bool(jnp.all(jnp.isfinite(per_example))):
        return Verdict("loss", FAIL, "loss_per_example is not finite (NaN or inf) at initialisation",
                       "make the loss finite: e.g. log-softmax cross-entropy, not log of probabilities")
    loss, _ = jax.jit(lambda p, b, rng: workload.loss(p, probe.model_state, b, train=True, rng=rng))(
        probe.params, batch, jax.random.PRNGKey(2))
    if not np.isfinite(float(loss)):
        return Verdict("loss", FAIL, f"the training loss is {float(loss)}",
                       "make apply(train=True) and loss finite")
    return Verdict("loss", PASS, f"one finite loss per example; batch loss {float(loss):.4g}")


def check_training(workload: Workload, probe: Probe) -> Verdict:
    """`TRAIN_STEPS` steps of the built-in `TRAIN_SUBMISSION` on one fixed batch (so no data
    noise hides a step) must lower that batch's loss."""
    from harness.submissions import load_submission

    submission = load_submission(TRAIN_SUBMISSION)
    module, hparams = submission.module, submission.hparams
    batch = train_batch(workload, probe.data, seed=3)
    rng = jax.random.PRNGKey(4)
    opt_state = module.init_optimizer_state(workload, probe.params, probe.model_state, hparams, rng)
    step = jax.jit(lambda p, s, o, i: module.update_params(workload, p, s, o, batch, hparams, i, rng))
    evaluate = jax.jit(lambda p, s: workload.loss(p, s, batch, train=False)[0])
    params, state = probe.params, probe.model_state
    before = float(evaluate(params, state))
    for i in range(TRAIN_STEPS):
        params, state, opt_state, _ = step(params, state, opt_state, jnp.asarray(i, jnp.int32))
    after = float(evaluate(params, state))
    seen = f"{TRAIN_STEPS} steps of {TRAIN_SUBMISSION} on one batch: loss {before:.4g} -> {after:.4g}"
    if not (math.isfinite(before) and math.isfinite(after)):
        return Verdict("training", FAIL, seen + " (not finite)",
                       "find where the loss or its gradient overflows (NaN loss, log(0), exp of large logits)")
    if not after < before:
        return Verdict("training", FAIL, seen + " (did not fall)",
                       "check that the loss depends on the parameters and its gradient is not zero or stopped")
    return Verdict("training", PASS, seen)


def check_mask(workload: Workload, probe: Probe) -> Verdict:
    """Masked examples contribute nothing to the loss or its gradient, whatever valid content
    they hold (`fill_masked_rows`)."""
    batch = train_batch(workload, probe.data)
    mask = np.array(batch["mask"], np.float32)
    mask[len(mask) // 2:] = 0.0
    clean = jax.tree_util.tree_map(np.array, dict(batch))
    clean["mask"] = mask
    filled = fill_masked_rows(batch, mask) if workload.input_mode == "device" else clean
    per_example = jax.jit(lambda p, b: workload.loss_per_example(
        workload.apply(p, probe.model_state, b["inputs"], train=False)[0], b))(probe.params, filled)
    leaked = np.asarray(per_example)[mask == 0]
    if not np.all(leaked == 0.0):
        return Verdict("mask", FAIL, f"loss_per_example is not 0 on masked rows (e.g. {leaked[0]})",
                       'multiply each example\'s loss by batch["mask"]')
    if workload.input_mode == "device" and not workload.variant.get("batchnorm"):
        grad = jax.jit(jax.grad(lambda p, b: workload.loss(p, probe.model_state, b, train=False)[0]))
        for a, b in zip(jax.tree_util.tree_leaves(grad(probe.params, clean)),
                        jax.tree_util.tree_leaves(grad(probe.params, filled))):
            if not np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=False):
                return Verdict("mask", FAIL, "the gradient changes with what masked rows hold",
                               "keep masked rows out of everything the loss sums (normalise by "
                               "loss_normalizer, not the batch size; no cross-example terms)")
    return Verdict("mask", PASS, "masked rows add nothing to the loss" + (
        " or its gradient" if workload.input_mode == "device" else ""))


def _alternative(knob) -> Any:
    if knob.choices:
        others = [c for c in knob.choices if c != knob.default]
        return others[0] if others else None
    if knob.type is bool:
        return not knob.default
    if knob.type in (int, float):
        return knob.default * 2 if knob.default else knob.type(1)
    return None


def check_knobs(workload: Workload, probe: Probe) -> Verdict:
    """Each knob at another value than its default gives another version (and spec)."""
    cls = type(workload)
    same, untested = [], []
    for name, knob in cls.knobs.items():
        value = _alternative(knob)
        if value is None:
            untested.append(name)
            continue
        raw = int(value) if isinstance(value, bool) else value
        try:
            other = cls(**{**{k: v for k, v in workload.variant.items() if k != name}, name: raw})
        except Exception:  # the hook refused this value: not a version question
            untested.append(name)
            continue
        if other.version == workload.version or other.spec == workload.spec:
            same.append(f"{name}={raw}")
    if same:
        return Verdict("knobs", FAIL, f"{', '.join(same)} leaves the version (or spec) unchanged",
                       "keep every knob's value in self.variant (set by Workload.__init__) and do not "
                       "override version or spec")
    done = len(cls.knobs) - len(untested)
    return Verdict("knobs", PASS, f"{done} knob(s) move the version" + (
        f"; not tried: {', '.join(untested)}" if untested else "") if cls.knobs else "no knobs")


def check_eval(workload: Workload, probe: Probe) -> Verdict:
    split = workload.target.split if workload.target.split in probe.data.splits else "validation"
    eval_batch = jax.jit(workload.eval_batch)
    batches = itertools.islice(workload.eval_batches(probe.data.splits[split], 16), EVAL_BATCHES)
    outs = [jax.device_get(eval_batch(probe.params, probe.model_state, b)) for b in batches]
    metrics = workload.finalize_metrics(outs)
    problems = []
    for name, (low, high) in workload.metric_ranges().items():
        if name not in metrics:
            problems.append(f"{name} missing")
        elif not math.isfinite(metrics[name]) and not (math.isinf(high) and metrics[name] == high):
            problems.append(f"{name} = {metrics[name]}")
        elif not low <= metrics[name] <= high:
            problems.append(f"{name} = {metrics[name]:.4g} outside [{low}, {high}]")
    if problems:
        return Verdict("eval", FAIL, "; ".join(problems),
                       "make eval_batch/finalize_metrics give each metric of metric_ranges() in its "
                       "range, or correct the ranges")
    return Verdict("eval", PASS, ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))


def _how_to_judge(workload: Workload) -> str:
    return (f"judge it with `curvebench run --workload {workload.spec} --submission adam "
            "--seeds 3` (every seed should say reached, well inside max_steps); state the "
            "steps and time it took in the workload's docstring")


def target_verdict(workload: Workload) -> Verdict:
    """The target's verdict where no short run can judge it (synthetic data)."""
    return Verdict("target", NOT_JUDGED, "synthetic data has nothing to learn: reaching the target "
                   "within max_steps takes runs on the real data", _how_to_judge(workload))


def _target_metric(workload: Workload, params, model_state, split_data, eval_batch) -> float:
    size = min(workload.eval_batch_size, 256, TARGET_EVAL_EXAMPLES)
    batches = itertools.islice(workload.eval_batches(split_data, size), TARGET_EVAL_EXAMPLES // size)
    metrics = workload.finalize_metrics([jax.device_get(eval_batch(params, model_state, b))
                                         for b in batches])
    return float(metrics[workload.target.metric])


def check_target(workload: Workload, probe: Probe) -> Verdict:
    """What a few seconds can decide about reaching the target within `max_steps`.

    1. A target outside its metric's `metric_ranges()` range (accuracy >= 1.2, a loss <= -0.1)
       can never be met: fail, without training.
    2. On synthetic data (random, nothing to learn) nothing more: not judged.
    3. A short run: `TARGET_STEPS` steps (at most `max_steps`) of `TRAIN_SUBMISSION` on batches
       the workload samples from its real train split, at its batch size; the target's metric
       measured `TARGET_EVALS` times on the target split's first examples. Reached: pass. Not
       moved toward the target, or moved so slowly that the target lies beyond `max_steps`
       even on the straight line through the first and best measurements (optimistic:
       training curves flatten): fail. Otherwise on course: not judged, with the full run
       that judges it (a target just beyond what the model reaches at the end looks the same
       as a reachable one in a short run; only full runs tell them apart).
    """
    from harness.submissions import load_submission

    target = workload.target
    low, high = workload.metric_ranges()[target.metric]
    if not low <= target.value <= high:
        return Verdict("target", FAIL, f"target {target.split} {target.metric} "
                       f"{'>=' if target.direction == 'max' else '<='} {target.value} lies outside "
                       f"the metric's range [{low}, {high}]: no run can reach it",
                       f"set the target inside [{low}, {high}] (or correct metric_ranges)")
    if not probe.real_data or probe.data.source == "synthetic":
        return target_verdict(workload)
    submission = load_submission(TRAIN_SUBMISSION)
    module, hparams = submission.module, submission.hparams
    steps = min(TARGET_STEPS, workload.max_steps)
    every = max(1, steps // TARGET_EVALS)
    rng = jax.random.PRNGKey(5)
    opt_state = module.init_optimizer_state(workload, probe.params, probe.model_state, hparams, rng)
    split_data = probe.data.splits[target.split]
    eval_batch = jax.jit(workload.eval_batch)
    if workload.input_mode == "host":
        host_batches = workload.train_batches(probe.data, workload.batch_size, seed=6)
        next_batch = lambda key: next(host_batches)  # noqa: E731
    else:
        train = jax.device_put(dict(probe.data.splits["train"]))
        next_batch = jax.jit(lambda key: workload.sample_batch(train, key, workload.batch_size))
    step = jax.jit(lambda p, s, o, b, i, key: module.update_params(
        workload, p, s, o, b, hparams, i, key))
    params, state = probe.params, probe.model_state
    seen = [(0, _target_metric(workload, params, state, split_data, eval_batch))]
    for i in range(steps):
        key = jax.random.fold_in(rng, i)
        params, state, opt_state, _ = step(params, state, opt_state, next_batch(key),
                                           jnp.asarray(i, jnp.int32), key)
        if (i + 1) % every == 0 or i + 1 == steps:
            seen.append((i + 1, _target_metric(workload, params, state, split_data, eval_batch)))
            if target.reached({target.metric: seen[-1][1]}):
                break
    sign = 1.0 if target.direction == "max" else -1.0
    (_, first), (last_step, last) = seen[0], seen[-1]
    best_step, best = max(seen[1:], key=lambda p: sign * p[1])
    run = (f"{last_step} steps of {TRAIN_SUBMISSION} (batch {workload.batch_size}): "
           f"{target.split} {target.metric} {first:.4g} -> {last:.4g}")
    if not all(math.isfinite(m) for _, m in seen):
        return Verdict("target", FAIL, run + " (not finite)",
                       "find where the loss or its gradient overflows; then check again")
    if target.reached({target.metric: last}):
        return Verdict("target", PASS, run + f", target {target.value} reached at step {last_step}")
    rate = sign * (best - first) / best_step
    if rate <= 0:
        return Verdict("target", FAIL, run + f": the metric did not move toward the target "
                       f"{target.value}", "check that the target's metric measures what the loss "
                       "trains (and its direction), that the data carries the signal (targets not "
                       "random), and that the target is achievable at all")
    projected = best_step + sign * (target.value - best) / rate
    if projected > workload.max_steps:
        return Verdict("target", FAIL, run + f": even at its rate so far it reaches "
                       f"{target.value} only at step ~{projected:.0f}, past max_steps "
                       f"{workload.max_steps}", "raise max_steps, make the target easier, or "
                       "speed up training (larger batch, another model); then check again")
    return Verdict("target", NOT_JUDGED, run + f": on course (at its rate so far, the target "
                   f"by step ~{projected:.0f} of max_steps {workload.max_steps}; curves flatten, "
                   "so a full run decides)", _how_to_judge(workload))


CHECKS: tuple[tuple[str, Callable[[Workload, Probe], Verdict]], ...] = (
    ("declares", check_declares), ("loss", check_loss), ("training", check_training),
    ("mask", check_mask), ("knobs", check_knobs), ("eval", check_eval), ("target", check_target))


def run_checks(workload: Workload, *, data_dir: str | None = None, source: str | None = None,
               synthetic: bool = False) -> list[Verdict]:
    """Every contract check on `workload`, in order; `synthetic`: skip loading the real data."""
    verdicts: list[Verdict] = []
    if synthetic:
        data, real = workload.synthetic_dataset({"train": 64, "validation": 37}, seed=1), False
    else:
        try:
            verdict, data, real = _data(workload, data_dir, source)
        except Exception as e:  # noqa: BLE001 - the workload's own failure is the verdict
            verdict = Verdict("data", FAIL, f"load_data raised {type(e).__name__}: {e}",
                              "make load_data return a Dataset or raise DataUnavailable with "
                              "how to get the data")
            data, real = workload.synthetic_dataset({"train": 64, "validation": 37}, seed=1), False
        verdicts.append(verdict)
    params, state = jax.jit(workload.init)(jax.random.PRNGKey(0))
    probe = Probe(data, real, params, state)
    for name, check in CHECKS:
        try:
            verdicts.append(check(workload, probe))
        except Exception as e:  # noqa: BLE001 - the workload's own failure is the verdict
            first = str(e).splitlines()[0] if str(e) else ""
            verdicts.append(Verdict(name, FAIL, f"raised {type(e).__name__}: {first}",
                                    "the message above says what to change" if isinstance(e, UserError)
                                    else f"fix the exception the workload's code raised in this "
                                    f"check (harness.contract_checks.check_{name} reproduces it)"))
    return verdicts
