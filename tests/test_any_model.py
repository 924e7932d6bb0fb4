"""The contract's defaults for outputs and targets of any shape: per-token classification,
multi-label, regression; integer or float inputs; the knob-validation hook."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from harness.spec import Dataset, Knob, SpecError, Target, Workload


class _Linear(Workload):
    """A linear model from (n, 3) inputs to (n, *OUT) outputs (test workloads)."""

    target = Target("loss", 0.1, "min")
    batch_size, max_steps, eval_every = 8, 10, 5
    OUT: tuple = (4,)

    def load_data(self, data_dir=None, source=None):
        return self.synthetic_dataset({"train": 16, "validation": 11})

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        return Dataset(self.name, "synthetic", {k: self.split(rng, n) for k, n in sizes.items()})

    def init(self, rng):
        return {"w": jax.random.normal(rng, (3, int(np.prod(self.OUT))))}, {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        x = jnp.asarray(inputs, jnp.float32)
        return (x @ params["w"]).reshape((len(x),) + self.OUT), model_state


class Regression(_Linear):
    """Float inputs, float targets of shape (n, 2, 2): squared error, no accuracy."""

    name = "regression_test"
    OUT = (2, 2)

    def split(self, rng, n):
        return {"inputs": rng.standard_normal((n, 3)).astype(np.float32),
                "targets": rng.standard_normal((n, 2, 2)).astype(np.float32)}

    def loss_per_example(self, outputs, batch):
        return ((outputs - batch["targets"]) ** 2).mean((1, 2)) * batch["mask"]

    def metric_ranges(self):
        return {"loss": (0.0, float("inf"))}


class MultiLabel(Regression):
    """Integer inputs, 0/1 float targets per label: sigmoid cross-entropy."""

    name = "multilabel_test"
    OUT = (5,)

    def split(self, rng, n):
        return {"inputs": rng.integers(0, 9, (n, 3)).astype(np.int32),
                "targets": (rng.random((n, 5)) < 0.3).astype(np.float32)}

    def loss_per_example(self, outputs, batch):
        return optax.sigmoid_binary_cross_entropy(outputs, batch["targets"]).mean(-1) * batch["mask"]


class MultiLabelKeepsAccuracy(MultiLabel):
    """The same, forgetting that the default accuracy needs class labels."""

    name = "multilabel_accuracy_test"
    metric_ranges = Workload.metric_ranges


class PerToken(_Linear):
    """Integer targets of shape (n, 2) and logits (n, 2, 3): per-token accuracy by default."""

    name = "per_token_test"
    OUT = (2, 3)

    def split(self, rng, n):
        return {"inputs": rng.standard_normal((n, 3)).astype(np.float32),
                "targets": rng.integers(0, 3, (n, 2)).astype(np.int32)}

    def loss_per_example(self, outputs, batch):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"]).sum(-1) * batch["mask"]


class Heads(PerToken):
    """A knob rule beyond Knob's own checks: heads must divide width."""

    name = "heads_test"
    knobs = {"width": Knob(int, 8, minimum=1), "heads": Knob(int, 2, minimum=1)}

    def validate_variant(self):
        if self.variant["width"] % self.variant["heads"]:
            raise SpecError(f"knob 'heads': {self.variant['heads']} does not divide width "
                            f"{self.variant['width']}; choose a divisor of it")


def _evaluate(workload):
    data = workload.load_data()
    params, state = workload.init(jax.random.PRNGKey(0))
    per_batch = [jax.device_get(jax.jit(workload.eval_batch)(params, state, b))
                 for b in workload.eval_batches(data.splits["validation"], 4)]
    return workload.finalize_metrics(per_batch), data, params


@pytest.mark.parametrize("cls", [Regression, MultiLabel])
def test_loss_metric_by_default_for_any_target_shape(cls):
    workload = cls()
    metrics, data, params = _evaluate(workload)
    assert set(metrics) == {"loss"}
    split = data.splits["validation"]
    full = {**split, "mask": np.ones(len(split["targets"]), np.float32)}
    expected = workload.loss_per_example(workload.apply(params, {}, split["inputs"], train=False)[0], full)
    np.testing.assert_allclose(metrics["loss"], float(np.mean(expected)), rtol=1e-5)


def test_per_token_accuracy_is_each_examples_mean_over_its_tokens():
    workload = PerToken()
    metrics, data, params = _evaluate(workload)
    split = data.splits["validation"]
    logits = workload.apply(params, {}, split["inputs"], train=False)[0]
    expected = (np.argmax(np.asarray(logits), -1) == split["targets"]).mean(-1).mean()
    assert set(metrics) == {"loss", "accuracy"}
    np.testing.assert_allclose(metrics["accuracy"], expected, rtol=1e-6)


def test_default_accuracy_on_float_targets_is_a_one_line_error_naming_the_override():
    with pytest.raises(SpecError) as e:
        _evaluate(MultiLabelKeepsAccuracy())
    message = str(e.value)
    assert "\n" not in message and "metric_ranges" in message and "(11, 5)" not in message
    assert "targets (4, 5) float32" in message


def test_loss_per_example_of_the_wrong_shape_says_to_reduce_it():
    class Unreduced(PerToken):
        name = "unreduced_test"

        def loss_per_example(self, outputs, batch):
            return optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"])

    workload = Unreduced()
    batch = workload.sample_batch(dict(workload.load_data().splits["train"]), jax.random.PRNGKey(0), 8)
    with pytest.raises(SpecError, match=r"returned shape \(8, 2\), expected \(8,\).*mean\(-1\)"):
        workload.loss(workload.init(jax.random.PRNGKey(0))[0], {}, batch)


def test_knob_validation_hook_is_the_users_one_line_error():
    from workloads import parse_spec
    assert Heads(width="12", heads="3").variant == {"width": 12, "heads": 3}
    with pytest.raises(SpecError, match="'heads': 5 does not divide width 12"):
        Heads(**parse_spec("heads_test:width=12,heads=5")[1])
    with pytest.raises(SpecError, match="below 1"):  # Knob's own checks come first
        Heads(heads="0")
