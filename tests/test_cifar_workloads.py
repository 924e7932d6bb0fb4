"""CIFAR-10 workloads: models, masks, batch norm (in training, in the compiled chunk, frozen in
eval), on-device augmentation, and short trials through the runner into a SQLite database."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.data.augment import random_crop_flip
from harness.data.cifar import write_cifar10_python
from harness.db import open_database
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import REGISTRY, get_workload

SUBMISSIONS = Path(__file__).resolve().parents[1] / "submissions"
CIFAR = ("cifar_simplecnn", "cifar_resnet_ln", "cifar_resnet18")
#: variants the contract tests (default variants only) leave out.
VARIANTS = ("cifar_simplecnn:batchnorm=1,width=0.25", "cifar_resnet18:width=4,norm=none")
#: one small variant of each model for the trials through the runner (BN ones where there is BN).
TRIALS = ("cifar_simplecnn:batchnorm=1,width=0.25", "cifar_resnet_ln", "cifar_resnet18:width=4")


def n_params(tree) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def batch_of(workload, n: int, seed: int = 0, mask=None) -> dict:
    split = workload.synthetic_dataset({"x": n}, seed).splits["x"]
    batch = {k: jnp.asarray(v) for k, v in split.items()}
    batch["mask"] = jnp.ones((n,), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    return batch


def test_registered_with_conv_net_cpu_flag():
    for name in CIFAR:
        assert REGISTRY[name].slow_in_cpu_loops


@pytest.mark.parametrize("spec, count", [
    ("cifar_simplecnn", 361_898), ("cifar_simplecnn:batchnorm=1", 362_218),
    ("cifar_resnet_ln", 27_185), ("cifar_resnet18", 11_173_962),
    ("cifar_resnet18:norm=none", 11_169_162)])
def test_documented_parameter_counts(spec, count):
    w = get_workload(spec)
    shapes = jax.eval_shape(w.init, jax.random.PRNGKey(0))[0]
    assert n_params(shapes) == count
    assert f"{count:,}" in type(w).__doc__


@pytest.mark.parametrize("spec", VARIANTS)
def test_outputs_loss_mask_and_metrics(spec):
    w = get_workload(spec)
    params, state = w.init(jax.random.PRNGKey(1))
    batch = batch_of(w, 5, mask=[1, 1, 1, 0, 0])

    @jax.jit
    def evaluate(params, state, batch):
        logits, new_state = w.apply(params, state, batch["inputs"], train=False)
        real = {k: v[:3] for k, v in batch.items()}
        return (logits, new_state, w.loss_per_example(logits, batch),
                w.loss(params, state, batch, train=False)[0],
                w.loss(params, state, real, train=False)[0], w.eval_batch(params, state, batch))

    logits, new_state, per_example, loss_padded, loss_real, sums = evaluate(params, state, batch)
    assert logits.shape == (5, 10)
    jax.tree_util.tree_map(np.testing.assert_array_equal, new_state, state)
    assert np.all(np.asarray(per_example)[3:] == 0.0) and np.all(np.isfinite(per_example))
    np.testing.assert_allclose(loss_padded, loss_real, rtol=1e-5)
    metrics = w.finalize_metrics([jax.device_get(sums)])
    for name, (low, high) in w.metric_ranges().items():
        assert low <= metrics[name] <= high


def test_version_is_stable_and_tracks_knobs():
    for name in CIFAR:
        assert get_workload(name).version == get_workload(name).version
    assert get_workload("cifar_simplecnn").version != get_workload("cifar_simplecnn:batchnorm=1").version
    assert get_workload("cifar_resnet18").version != get_workload("cifar_resnet18:norm=none").version


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="valid values: batchnorm, none"):
        get_workload("cifar_resnet18:norm=layernorm")


def test_batchnorm_updates_in_training_and_is_frozen_in_eval():
    w = get_workload("cifar_simplecnn:batchnorm=1,width=0.25")
    params, state = w.init(jax.random.PRNGKey(0))
    batch = batch_of(w, 8)
    apply = jax.jit(w.apply, static_argnames="train")
    _, trained_state = apply(params, state, batch["inputs"], train=True)
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), state, trained_state)
    assert all(jax.tree_util.tree_leaves(changed))
    alone, eval_state = apply(params, trained_state, batch["inputs"][:1], train=False)
    together, _ = apply(params, trained_state, batch["inputs"], train=False)
    jax.tree_util.tree_map(np.testing.assert_array_equal, eval_state, trained_state)
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)


def crops_and_flips(image: np.ndarray, pad: int) -> list[np.ndarray]:
    h, w, _ = image.shape
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    crops = [padded[i:i + h, j:j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]
    return crops + [c[:, ::-1] for c in crops]


def test_random_crop_flip_yields_crops_of_the_padded_images():
    images = jax.random.normal(jax.random.PRNGKey(0), (6, 8, 8, 3))
    augment = jax.jit(random_crop_flip)
    out = np.asarray(augment(jax.random.PRNGKey(1), images))
    assert out.shape == images.shape
    for image, augmented in zip(np.asarray(images), out):
        assert any(np.array_equal(augmented, c) for c in crops_and_flips(image, 4))
    again = np.asarray(augment(jax.random.PRNGKey(1), images))
    other = np.asarray(augment(jax.random.PRNGKey(2), images))
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, other)


def test_augment_knob_changes_only_the_inputs_of_a_sampled_batch():
    plain, augmented = get_workload("cifar_simplecnn"), get_workload("cifar_simplecnn:augment=1")
    train = {k: jnp.asarray(v) for k, v in plain.synthetic_dataset({"t": 32}).splits["t"].items()}
    key = jax.random.PRNGKey(3)
    a = jax.jit(plain.sample_batch, static_argnums=2)(train, key, 16)
    b = jax.jit(augmented.sample_batch, static_argnums=2)(train, key, 16)
    np.testing.assert_array_equal(a["targets"], b["targets"])
    assert not np.array_equal(a["inputs"], b["inputs"])
    for image, aug in zip(np.asarray(a["inputs"]), np.asarray(b["inputs"])):
        assert any(np.array_equal(aug, c) for c in crops_and_flips(image, 4))
    assert not get_workload("cifar_resnet_ln").variant["augment"]
    assert get_workload("cifar_resnet18").variant["augment"]


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory) -> str:
    """A small CIFAR-10 archive in the real format: 60 training and 20 test images."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10_python(root, rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8),
                         rng.integers(0, 10, 60), rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
                         rng.integers(0, 10, 20), pack=True)
    return str(root)


def sgd(batch_size: int = 8):
    return load_submission(SUBMISSIONS / "sgd", {"batch_size": batch_size, "learning_rate": 0.01})


@pytest.mark.parametrize("spec", TRIALS)
def test_short_trial_on_generated_archive_writes_rows(spec, cifar_dir, tmp_path):
    w = get_workload(spec)
    dataset = w.load_data(cifar_dir)
    db = open_database(f"sqlite:///{tmp_path / 'runs.db'}")
    result = run_trial(w, sgd(), dataset, seed=0, db=db, max_steps=2, eval_every=2)
    assert result.status in ("reached", "not_reached") and result.final_step == 2
    assert result.chunk_mode == ("step" if jax.default_backend() == "cpu" else "scan")
    run = db.get_run(result.run_id)
    assert (run.variant, run.final_step, run.data_fingerprint) == (w.spec, 2, dataset.fingerprint)
    assert run.data_source.startswith("cifar10-python:archive:")
    curve = db.eval_curve(result.run_id)
    assert list(curve) == [2] and 0.0 <= curve[2]["accuracy"] <= 1.0


@pytest.mark.parametrize("spec", ["cifar_simplecnn:batchnorm=1,width=0.25",
                                  pytest.param("cifar_resnet18:width=4", marks=pytest.mark.slow)])
def test_batch_stats_carried_through_the_scanned_chunk(spec):
    """BN statistics change inside a rolled lax.scan chunk exactly as with one step per call."""
    w = get_workload(spec)
    dataset = w.synthetic_dataset({"train": 32, "validation": 8})
    snapshots: dict[str, dict[int, tuple]] = {}
    for mode in ("scan", "step"):
        def keep(run_id, step, params, model_state, mode=mode):
            snapshots.setdefault(mode, {})[step] = jax.device_get((params, model_state))

        run_trial(w, sgd(4), dataset, seed=1, max_steps=3, eval_every=3, chunk_mode=mode,
                  snapshot_steps=(0, 3), on_snapshot=keep)
    initial, scanned, stepped = snapshots["scan"][0][1], snapshots["scan"][3][1], snapshots["step"][3][1]
    assert all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: bool(np.any(a != b)), initial, scanned)))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                           scanned, stepped)
