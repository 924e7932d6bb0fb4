"""The ogbg_molpcba workload: padding invariance, label/padding masks, one compile, knobs."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.data.graph_batching import PaddingBudget, pack
from harness.spec import Dataset, SpecError
from ogbg_molecules import molecule_graphs
from workloads import get_workload

SMALL = "ogbg_molpcba:latent=32,hidden=32,depth=2"
BATCH = 16


@pytest.fixture(scope="module")
def workload():
    return get_workload(SMALL)


@pytest.fixture(scope="module")
def graphs():
    return molecule_graphs(48, seed=0)


@pytest.fixture(scope="module")
def params(workload):
    return workload.init(jax.random.PRNGKey(0))[0]


@pytest.fixture(scope="module")
def budgets(graphs):
    snug = PaddingBudget.for_batch(graphs.size_stats, BATCH)
    return snug, PaddingBudget(snug.n_node + 333, snug.n_edge + 517, snug.n_graph + 9)


@pytest.fixture(scope="module")
def loss_and_grads(workload):
    return jax.jit(jax.value_and_grad(lambda p, batch: workload.loss(p, {}, batch, train=False)[0]))


@pytest.fixture(scope="module")
def logits_of(workload):
    return jax.jit(lambda p, inputs: workload.apply(p, {}, inputs, train=False)[0])


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def test_loss_gradients_and_metrics_do_not_depend_on_padding(workload, params, graphs, budgets,
                                                             loss_and_grads):
    small, large = (pack(graphs, np.arange(BATCH), b) for b in budgets)
    loss_s, grads_s = loss_and_grads(params, small)
    loss_l, grads_l = loss_and_grads(params, large)
    np.testing.assert_allclose(loss_s, loss_l, rtol=1e-6)
    _assert_trees_close(grads_s, grads_l)
    eval_batch = jax.jit(workload.eval_batch)
    metrics = [workload.finalize_metrics([jax.device_get(eval_batch(params, {}, b))])
               for b in (small, large)]
    assert metrics[0]["mean_average_precision"] == pytest.approx(
        metrics[1]["mean_average_precision"], rel=1e-6)
    assert metrics[0]["loss"] == pytest.approx(metrics[1]["loss"], rel=1e-6)
    assert metrics[0]["loss"] == pytest.approx(float(loss_s), rel=1e-5)


def test_missing_labels_and_padding_touch_neither_loss_nor_gradients(
        workload, params, graphs, budgets, loss_and_grads, logits_of):
    batch = pack(graphs, np.arange(BATCH), budgets[0])
    loss, grads = loss_and_grads(params, batch)
    missing = batch["label_mask"] == 0
    assert missing[:BATCH].any() and missing[BATCH:].all()
    rng = np.random.default_rng(0)
    garbage = dict(batch)
    garbage["targets"] = np.where(missing, rng.random(missing.shape),
                                  batch["targets"]).astype(np.float32)
    g = batch["inputs"]
    real_nodes, real_edges = int(g.n_node[:BATCH].sum()), int(g.n_edge[:BATCH].sum())
    nodes, edges = g.nodes.copy(), g.edges.copy()
    nodes[real_nodes:] = rng.normal(0, 50, nodes[real_nodes:].shape)
    edges[real_edges:] = rng.normal(0, 50, edges[real_edges:].shape)
    garbage["inputs"] = g._replace(nodes=nodes, edges=edges)
    loss_g, grads_g = loss_and_grads(params, garbage)
    np.testing.assert_allclose(loss, loss_g, rtol=1e-6)
    _assert_trees_close(grads, grads_g)
    logits = logits_of(params, batch["inputs"])
    logit_grads = np.asarray(jax.grad(lambda z: workload.loss_per_example(z, batch).sum())(logits))
    assert not logit_grads[missing].any()
    assert logit_grads[~missing].all()


def test_loss_is_the_mean_over_measured_labels(workload, params, graphs, budgets, logits_of):
    batch = pack(graphs, np.arange(BATCH), budgets[0])
    logits = np.asarray(logits_of(params, batch["inputs"]), np.float64)
    labels = graphs.labels[:BATCH].astype(np.float64)
    z, y = logits[:BATCH], np.nan_to_num(labels)
    bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    expected = bce[~np.isnan(labels)].mean()
    per_graph = workload.loss_per_example(jnp.asarray(logits, jnp.float32), batch)
    total = float(per_graph.sum()) / float(batch["label_mask"].sum())
    assert total == pytest.approx(expected, rel=1e-5)
    assert not np.asarray(per_graph)[BATCH:].any()


def test_train_step_compiles_once_for_batches_of_different_composition(workload, params, graphs):
    dataset = Dataset("molecules", "test", {"train": graphs})
    batches = list(itertools.islice(workload.train_batches(dataset, BATCH, seed=0), 5))
    assert len({tuple(b["inputs"].n_node) for b in batches}) == 5

    @jax.jit
    def step(p, batch, rng):
        loss, grads = jax.value_and_grad(
            lambda q: workload.loss(q, {}, batch, train=True, rng=rng)[0])(p)
        return jax.tree_util.tree_map(lambda x, g: x - 1e-3 * g, p, grads), loss

    p = params
    for i, batch in enumerate(batches):
        p, loss = step(p, batch, jax.random.PRNGKey(i))
        assert np.isfinite(loss)
    assert step._cache_size() == 1


def test_dropout_needs_train_and_an_rng(workload, params, graphs, budgets, logits_of):
    inputs = pack(graphs, np.arange(BATCH), budgets[0])["inputs"]

    @functools.partial(jax.jit, static_argnames="with_rng")
    def train_logits(p, x, rng, with_rng):
        return workload.apply(p, {}, x, train=True, rng=rng if with_rng else None)[0]

    plain = logits_of(params, inputs)
    key = jax.random.PRNGKey(1)
    np.testing.assert_array_equal(plain, train_logits(params, inputs, key, with_rng=False))
    assert not np.allclose(plain[:BATCH], train_logits(params, inputs, key, with_rng=True)[:BATCH])


def test_variant_without_layernorm_with_gelu_builds_and_runs(graphs):
    w = get_workload("ogbg_molpcba:layernorm=0,activation=gelu,depth=1,latent=8,hidden=4,dropout=0")
    p, _ = w.init(jax.random.PRNGKey(0))
    batch = pack(graphs, np.arange(4), PaddingBudget.for_batch(graphs.size_stats, 4))
    logits = jax.jit(lambda q, x: w.apply(q, {}, x, train=False)[0])(p, batch["inputs"])
    assert logits.shape == (5, 128) and np.isfinite(logits).all()
    assert p["Dense_0"]["kernel"].shape == (9, 8)
    assert not any("LayerNorm" in k for k in p)


def test_bad_knobs_are_rejected_with_the_valid_values():
    with pytest.raises(SpecError, match="valid values: relu, gelu"):
        get_workload("ogbg_molpcba:activation=swish")
    with pytest.raises(SpecError, match="must be below 1"):
        get_workload("ogbg_molpcba:dropout=1")
    with pytest.raises(SpecError, match="below 1"):
        get_workload("ogbg_molpcba:depth=0")
