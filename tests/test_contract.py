"""Contract tests every registered workload must pass (on its synthetic data of real shapes),
through the checks `curvebench workloads check` runs (harness/contract_checks.py); and the
verdicts those checks give workloads that break the contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax

from harness import contract_checks
from harness.contract_checks import FAIL, NOT_JUDGED, PASS, fill_masked_rows, run_checks
from harness.spec import Dataset, Knob, Target, Workload
from workloads import REGISTRY, get_workload

NAMES = sorted(REGISTRY)


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    """One workload with its data and parameters; `init` is compiled once (eager init of a
    ResNet dispatches hundreds of tiny ops) and reused by test_init_deterministic."""
    workload = get_workload(request.param)
    data = workload.synthetic_dataset({"train": 64, "validation": 37}, seed=1)
    params, model_state = _compiled_init(workload)(jax.random.PRNGKey(0))
    return workload, data, params, model_state


_INITS: dict[str, object] = {}


def _compiled_init(workload: Workload):
    return _INITS.setdefault(workload.spec, jax.jit(workload.init))


def _train_batch(workload: Workload, data, n=8):
    if workload.input_mode == "host":
        return next(iter(workload.train_batches(data, n, seed=0)))
    return workload.sample_batch(jax.device_put(dict(data.splits["train"])), jax.random.PRNGKey(1), n)


def test_declares_contract(case):
    workload, *_ = case
    assert workload.target.direction in ("max", "min")
    assert workload.batch_size > 0 and workload.max_steps > 0 and workload.eval_every > 0
    assert workload.target.metric in workload.metric_ranges()
    assert (type(workload).__doc__ or "").strip(), "a workload documents where it comes from"


def test_loss_finite_and_per_example(case):
    workload, data, params, model_state = case
    batch = _train_batch(workload, data)
    per_example = jax.jit(lambda p, b: workload.loss_per_example(
        workload.apply(p, model_state, b["inputs"], train=False)[0], b))(params, batch)
    assert per_example.shape == batch["mask"].shape
    assert bool(jnp.all(jnp.isfinite(per_example)))
    loss, _ = jax.jit(lambda p, b, rng: workload.loss(p, model_state, b, train=True, rng=rng))(
        params, batch, jax.random.PRNGKey(2))
    assert np.isfinite(float(loss))


def test_mask_respected(case):
    """Masked examples contribute nothing to the loss or its gradient, whatever they hold."""
    workload, data, params, model_state = case
    batch = _train_batch(workload, data)
    mask = np.array(batch["mask"], np.float32)
    mask[len(mask) // 2:] = 0.0
    garbage = jax.tree_util.tree_map(np.array, batch)
    garbage["mask"] = mask
    clean = dict(garbage)
    if workload.input_mode == "device":
        garbage = fill_masked_rows(batch, mask)  # valid tokens for integer inputs, 1e3*N(0,1) for float
        clean["inputs"] = np.array(clean["inputs"])
    loss_grad = jax.jit(jax.grad(lambda p, b: workload.loss(p, model_state, b, train=False)[0]))
    per_example = jax.jit(lambda p, b: workload.loss_per_example(
        workload.apply(p, model_state, b["inputs"], train=False)[0], b))(params, garbage)
    assert np.all(np.asarray(per_example)[mask == 0] == 0.0)
    if workload.input_mode == "device" and not workload.variant.get("batchnorm"):
        g_clean = loss_grad(params, clean)
        g_garbage = loss_grad(params, garbage)
        for a, b in zip(jax.tree_util.tree_leaves(g_clean), jax.tree_util.tree_leaves(g_garbage)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_eval_metrics_in_range(case):
    workload, data, params, model_state = case
    eval_batch = jax.jit(workload.eval_batch)  # as the runner compiles it
    outs = [jax.device_get(eval_batch(params, model_state, b))
            for b in workload.eval_batches(data.splits["validation"], 16)]
    metrics = workload.finalize_metrics(outs)
    for name, (low, high) in workload.metric_ranges().items():
        assert name in metrics, f"eval metric {name} missing"
        assert low <= metrics[name] <= high, (name, metrics[name])


def test_version_stable_and_variant_sensitive(case):
    workload, *_ = case
    again = get_workload(workload.spec)
    assert again.version == workload.version and again.spec == workload.spec
    for name, knob in workload.knobs.items():
        alternatives = [c for c in (knob.choices or ()) if c != knob.default]
        if alternatives:
            other = get_workload(f"{workload.name}:{name}={int(alternatives[0]) if isinstance(alternatives[0], bool) else alternatives[0]}")
            assert other.version != workload.version
            break


def test_init_deterministic(case):
    workload, _, params, model_state = case
    again, state_again = _compiled_init(get_workload(workload.spec))(jax.random.PRNGKey(0))
    for a, b in zip(jax.tree_util.tree_leaves((params, model_state)),
                    jax.tree_util.tree_leaves((again, state_again))):
        np.testing.assert_array_equal(a, b)


#: workloads whose 20 training steps compile for long on CPU: their check runs in the slow suite
SLOW_CHECKS = {"cifar_resnet18", "cifar_resnet_ln", "cifar_simplecnn", "ogbg_molpcba"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CHECKS
                                  else n for n in NAMES])
def test_contract_checks_pass(name):
    """The checks `curvebench workloads check` runs, on synthetic data of the real shapes."""
    verdicts = run_checks(get_workload(name), synthetic=True)
    assert [v for v in verdicts if v.failed] == []
    assert {v.check: v.status for v in verdicts} == {
        "declares": PASS, "loss": PASS, "training": PASS, "mask": PASS, "knobs": PASS, "eval": PASS,
        "target": NOT_JUDGED}


VOCAB = 7


class Tokens(Workload):
    """Integer tokens in, per-token logits out: each token mapped to VOCAB-1 minus itself."""

    name = "tokens_check"
    knobs = {"width": Knob(int, 8, choices=(8, 12))}
    target = Target("accuracy", 0.9)
    batch_size, max_steps, eval_every = 8, 100, 10

    def load_data(self, data_dir=None, source=None):
        return self.synthetic_dataset({"train": 32, "validation": 32}, seed=5)

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        splits = {}
        for split, n in sizes.items():
            x = rng.integers(0, VOCAB, (n, 4)).astype(np.int32)
            splits[split] = {"inputs": x, "targets": VOCAB - 1 - x}
        return Dataset(self.name, "synthetic", splits)

    def init(self, rng):
        a, b = jax.random.split(rng)
        return {"embed": jax.random.normal(a, (VOCAB, self.variant["width"])),
                "out": 0.1 * jax.random.normal(b, (self.variant["width"], VOCAB))}, {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        return params["embed"][inputs] @ params["out"], model_state

    def loss_per_example(self, outputs, batch):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"]).mean(-1) * batch["mask"]


class NanLoss(Tokens):
    """A loss that is NaN: the log of a negative number."""

    name = "nan_loss"

    def loss_per_example(self, outputs, batch):
        return jnp.log(-super().loss_per_example(outputs, batch) - 1.0) * batch["mask"]


class MaskIgnored(Tokens):
    """A loss that forgets the mask."""

    name = "mask_ignored"

    def loss_per_example(self, outputs, batch):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"]).mean(-1)


class KnobNotInVersion(Tokens):
    """Keeps its width outside `variant`, so the version cannot see it."""

    name = "knob_hidden"

    def __init__(self, **variant):
        super().__init__(**variant)
        self.width = self.variant["width"]
        self.variant["width"] = self.knobs["width"].default


class InfLoss(Tokens):
    """A loss that is infinite: the log of a probability that underflowed to 0."""

    name = "inf_loss"

    def loss_per_example(self, outputs, batch):
        return -jnp.log(0.0 * super().loss_per_example(outputs, batch)) * batch["mask"]


class MaskLeaksThroughTheBatchMean(Tokens):
    """Masked rows are 0 in the per-example loss, but each row subtracts the mean over the
    whole batch, masked rows included: their content moves the gradient."""

    name = "mask_leaks"

    def loss_per_example(self, outputs, batch):
        per = optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"]).mean(-1)
        return (per - 0.5 * per.mean()) * batch["mask"]


class VersionPinned(Tokens):
    """Overrides `version` with a constant: no knob can move it."""

    name = "version_pinned"

    @property
    def version(self):
        return "0" * 16


class EvalOutOfRange(Tokens):
    """Reports accuracy in percent while declaring the range [0, 1]."""

    name = "eval_percent"

    def finalize_metrics(self, per_batch):
        metrics = super().finalize_metrics(per_batch)
        return {**metrics, "accuracy": 100.0 + metrics["accuracy"]}


def _verdicts(cls):
    return {v.check: v for v in run_checks(cls())}


def test_a_workload_meeting_the_contract_passes_every_check():
    verdicts = _verdicts(Tokens)
    assert {c: v.status for c, v in verdicts.items() if c != "target"} == dict.fromkeys(
        ("data", "declares", "loss", "training", "mask", "knobs", "eval"), PASS)


@pytest.mark.parametrize("cls, check, problem", [
    (NanLoss, "loss", "not finite"),
    (NanLoss, "training", "not finite"),
    (InfLoss, "loss", "not finite"),
    (MaskLeaksThroughTheBatchMean, "mask", "the gradient changes with what masked rows hold"),
    (VersionPinned, "knobs", "width=12 leaves the version"),
    (MaskIgnored, "mask", "not 0 on masked rows"),
    (KnobNotInVersion, "knobs", "width=12 leaves the version"),
    (EvalOutOfRange, "eval", "outside [0.0, 1.0]"),
])
def test_each_broken_workload_gets_a_failing_verdict_naming_the_problem(cls, check, problem):
    verdict = _verdicts(cls)[check]
    assert verdict.status == FAIL and problem in verdict.detail and verdict.fix


def test_integer_inputs_fill_masked_rows_with_valid_tokens():
    batch = Tokens().load_data().splits["train"]
    batch = {**batch, "mask": np.ones(len(batch["inputs"]), np.float32)}
    mask = np.r_[np.ones(16), np.zeros(16)].astype(np.float32)
    filled = fill_masked_rows(batch, mask)
    assert filled["inputs"].dtype == np.int32 and set(np.unique(filled["inputs"])) <= set(range(VOCAB))
    assert not np.array_equal(filled["inputs"][16:], batch["inputs"][16:])
    np.testing.assert_array_equal(filled["inputs"][:16], batch["inputs"][:16])


def test_target_is_not_judged_by_the_quick_checks_but_says_how():
    verdict = _verdicts(Tokens)["target"]
    assert verdict.status == NOT_JUDGED and "curvebench run --workload tokens_check" in verdict.fix
    assert contract_checks.TRAIN_STEPS < Tokens.max_steps


class NoValidation(Tokens):
    """load_data without the target's split."""

    name = "no_validation"

    def load_data(self, data_dir=None, source=None):
        data = super().load_data()
        return Dataset(self.name, "synthetic", {"train": data.splits["train"]})


def test_data_without_the_targets_split_fails_and_the_other_checks_still_run():
    verdicts = _verdicts(NoValidation)
    assert verdicts["data"].status == FAIL and "lacking validation" in verdicts["data"].detail
    assert verdicts["eval"].status == PASS and verdicts["training"].status == PASS


# -- the target check: what a few seconds can decide about reaching the target -----------

class Generated(Tokens):
    """Tokens on data it generates (not 'synthetic'): the target check trains on it. adam
    reaches its target in 120-190 steps (seeds 0, 1), inside this budget."""

    name = "tokens_generated"
    max_steps = 400

    def load_data(self, data_dir=None, source=None):
        data = self.synthetic_dataset({"train": 256, "validation": 256}, seed=5)
        return Dataset(self.name, "generated (seed 5)", data.splits)


class AccuracyAboveOne(Generated):
    """An accuracy target no run can meet: above the metric's range."""

    name = "accuracy_above_one"
    target = Target("accuracy", 1.2, "max")


class LossBelowZero(Generated):
    """A cross-entropy target below zero."""

    name = "loss_below_zero"
    target = Target("loss", -0.1, "min")


class RandomTargets(Generated):
    """Targets drawn at random: nothing to learn, accuracy stays near 1/VOCAB."""

    name = "random_targets"

    def load_data(self, data_dir=None, source=None):
        rng = np.random.default_rng(11)
        splits = {s: {"inputs": rng.integers(0, VOCAB, (256, 4)).astype(np.int32),
                      "targets": rng.integers(0, VOCAB, (256, 4)).astype(np.int32)}
                  for s in ("train", "validation")}
        return Dataset(self.name, "generated (seed 11)", splits)


class BudgetTooSmall(Generated):
    """A learnable target with a budget (100 steps) shorter than adam needs (120-190)."""

    name = "budget_too_small"
    max_steps = 100


class LossBelowAchievable(RandomTargets):
    """A loss target below log(VOCAB), the least cross-entropy random targets allow."""

    name = "loss_below_achievable"
    target = Target("loss", 1.0, "min")


@pytest.mark.parametrize("cls, problem", [
    (AccuracyAboveOne, "accuracy >= 1.2 lies outside the metric's range [0.0, 1.0]"),
    (LossBelowZero, "loss <= -0.1 lies outside the metric's range [0.0, inf]"),
])
def test_a_target_outside_its_metric_range_fails_without_training(cls, problem):
    verdict = _verdicts(cls)["target"]
    assert verdict.status == FAIL and problem in verdict.detail and "no run can reach it" in verdict.detail
    assert "set the target inside" in verdict.fix


@pytest.mark.parametrize("cls", [RandomTargets, LossBelowAchievable, BudgetTooSmall])
def test_a_target_the_short_run_does_not_approach_fails_naming_it(cls):
    """Random targets, or a budget too short: the short run moves the target's metric not at
    all toward the target, or so slowly that the target lies beyond max_steps even on a
    straight line."""
    verdicts = _verdicts(cls)
    assert {c: v.status for c, v in verdicts.items() if c != "target"} == dict.fromkeys(
        ("data", "declares", "loss", "training", "mask", "knobs", "eval"), PASS)
    verdict = verdicts["target"]
    assert verdict.status == FAIL and f"steps of {contract_checks.TRAIN_SUBMISSION}" in verdict.detail
    assert ("did not move toward the target" in verdict.detail
            or f"past max_steps {cls.max_steps}" in verdict.detail), verdict.detail
    assert verdict.fix


def test_the_target_verdict_agrees_with_full_runs():
    """A learnable target within its budget is on course or reached (never failed), and full
    runs reach it; with too short a budget (failed above) full runs miss it; mnist_mlp on its
    shipped sample reaches its target inside the short run (pass)."""
    from harness.runner import run_trial
    from harness.submissions import load_submission
    assert _verdicts(Generated)["target"].status in (PASS, NOT_JUDGED)
    adam, data = load_submission("adam"), Generated().load_data()
    assert all(run_trial(Generated(), adam, data, seed).status == "reached" for seed in (0, 1))
    assert run_trial(BudgetTooSmall(), adam, data, 0).status != "reached"
    verdict = {v.check: v for v in run_checks(get_workload("mnist_mlp"))}["target"]
    assert verdict.status == PASS and "target 0.87 reached at step" in verdict.detail
