"""Contract tests every registered workload must pass (on its synthetic data of real shapes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.spec import Workload
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
        half = len(mask) // 2
        noisy_inputs = np.array(garbage["inputs"])
        noisy_inputs[half:] = 1e3 * np.random.default_rng(0).standard_normal(noisy_inputs[half:].shape)
        garbage["inputs"] = noisy_inputs.astype(garbage["inputs"].dtype)
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
