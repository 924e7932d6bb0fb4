"""Padded graph batches: fixed shapes, every graph kept whole, deterministic order."""

from __future__ import annotations

import itertools
from collections import Counter

import jax
import jraph
import numpy as np
import pytest

from harness.data.graph_batching import PaddingBudget, eval_batches, pack, train_batches
from harness.data.graphs import GraphStats
from harness.data.ogbg import synthetic_graphs


@pytest.fixture(scope="module")
def graphs():
    return synthetic_graphs(200, np.random.default_rng(3))


def _shapes(batch):
    return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), batch)


def _graph_ids(batch, graphs):
    """Identify each real graph of a batch by its label row (unique for random labels)."""
    rows = {graphs.labels[i].tobytes(): i for i in range(len(graphs))}
    labels = np.where(batch["label_mask"] > 0, batch["targets"], np.nan).astype(np.float32)
    return [rows[labels[g].tobytes()] for g in np.flatnonzero(batch["mask"])]


def test_budget_holds_a_typical_batch_and_the_largest_graph():
    stats = GraphStats(25.0, 10.0, 300, 54.0, 22.0, 600)
    budget = PaddingBudget.for_batch(stats, 128)
    assert budget.n_graph == 129
    assert budget.n_node >= 128 * 25 + 4 * np.sqrt(128) * 10 + 1 and budget.n_node % 64 == 0
    assert budget.n_edge >= 128 * 54 + 4 * np.sqrt(128) * 22
    small = PaddingBudget.for_batch(stats, 1)
    assert small.n_node > 300 and small.n_edge >= 600
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        PaddingBudget.for_batch(stats, 0)


def test_every_batch_has_the_same_shapes(graphs):
    budget = PaddingBudget.for_batch(graphs.size_stats, 16)
    batches = list(itertools.islice(train_batches(graphs, budget, seed=0), 30))
    batches += list(eval_batches(graphs, budget))
    shapes = {str(_shapes(b)) for b in batches}
    assert len(shapes) == 1
    g = batches[0]["inputs"]
    assert g.nodes.shape == (budget.n_node, 9) and g.edges.shape == (budget.n_edge, 3)
    assert g.senders.dtype == np.int32 and g.n_node.shape == (17,)


def test_packed_batch_is_jraph_padding_with_graphs_kept_apart(graphs):
    budget = PaddingBudget.for_batch(graphs.size_stats, 8)
    batch = pack(graphs, np.array([5, 0, 7]), budget)
    g = batch["inputs"]
    np.testing.assert_array_equal(jraph.get_graph_padding_mask(g), batch["mask"] > 0)
    np.testing.assert_array_equal(g.n_node[:3], graphs.n_node[[5, 0, 7]])
    node_graph = np.repeat(np.arange(len(g.n_node)), g.n_node)
    edge_graph = np.repeat(np.arange(len(g.n_edge)), g.n_edge)
    np.testing.assert_array_equal(node_graph[g.senders], edge_graph)
    np.testing.assert_array_equal(node_graph[g.receivers], edge_graph)
    first = graphs.take(np.array([5]))
    np.testing.assert_array_equal(g.nodes[: first.n_node[0]], first.node_feat)
    assert not batch["label_mask"][3:].any() and not batch["targets"][3:].any()
    measured = ~np.isnan(graphs.labels[[5, 0, 7]])
    np.testing.assert_array_equal(batch["label_mask"][:3] > 0, measured)


def test_eval_batches_cover_each_graph_once_in_order(graphs):
    budget = PaddingBudget.for_batch(graphs.size_stats, 32)
    ids = [i for b in eval_batches(graphs, budget) for i in _graph_ids(b, graphs)]
    assert ids == list(range(len(graphs)))


def test_a_graph_that_does_not_fit_moves_to_the_next_batch(graphs):
    tight = PaddingBudget(n_node=int(graphs.n_node.max()) + 1, n_edge=int(graphs.n_edge.max()),
                          n_graph=9)
    batches = list(eval_batches(graphs, tight))
    ids = [i for b in batches for i in _graph_ids(b, graphs)]
    assert ids == list(range(len(graphs)))
    assert min(int(b["mask"].sum()) for b in batches) < 8  # some batches were cut short


def test_train_batches_are_seeded_epochs_without_loss(graphs):
    budget = PaddingBudget.for_batch(graphs.size_stats, 20)
    first = list(itertools.islice(train_batches(graphs, budget, seed=4), 25))
    again = list(itertools.islice(train_batches(graphs, budget, seed=4), 25))
    other = next(train_batches(graphs, budget, seed=5))
    for a, b in zip(first, again):
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    assert _graph_ids(other, graphs) != _graph_ids(first[0], graphs)
    seen = Counter(i for b in first for i in _graph_ids(b, graphs))
    drawn = sum(seen.values())
    assert drawn >= len(graphs)  # 25 batches of up to 20 graphs span two epochs
    assert set(seen) == set(range(len(graphs)))
    assert max(seen.values()) <= 2 + drawn // len(graphs)


def test_oversized_graph_is_a_clear_error(graphs):
    budget = PaddingBudget(n_node=4, n_edge=4, n_graph=3)
    with pytest.raises(ValueError, match="does not fit the padding budget"):
        next(eval_batches(graphs, budget))
