"""Pack graphs into fixed-shape padded jraph batches, so a compiled step never sees a new shape.

Every batch has the same node, edge and graph budget (`PaddingBudget`, sized from the
dataset's statistics). Graphs are taken in order while they fit; one that would
overflow the budget starts the next batch instead, so no graph is ever dropped or cut.
Padding follows `jraph.pad_with_graphs`: one dummy graph holds the padding nodes and
edges, empty graphs fill the graph budget, and `mask` is 1 exactly on the real graphs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import jraph
import numpy as np

from harness.data.graphs import GraphSet, GraphStats, gather_ranges

#: standard deviations of a batch's total size above its mean that the budget allows;
#: at 4, under a normal approximation, about one batch in 30,000 defers a graph.
BUDGET_SIGMAS = 4.0
#: budgets are rounded up to a multiple of this (friendlier shapes for accelerators).
BUDGET_MULTIPLE = 64


@dataclasses.dataclass(frozen=True)
class PaddingBudget:
    """Shapes of every padded batch: total nodes, directed edges and graph slots."""

    n_node: int
    n_edge: int
    n_graph: int

    @classmethod
    def for_batch(cls, stats: GraphStats, batch_size: int, sigmas: float = BUDGET_SIGMAS,
                  multiple: int = BUDGET_MULTIPLE) -> PaddingBudget:
        """Room for `batch_size` graphs of typical size, any single graph, and the padding graph."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        spread = sigmas * math.sqrt(batch_size)
        nodes = max(batch_size * stats.mean_nodes + spread * stats.std_nodes, stats.max_nodes)
        edges = max(batch_size * stats.mean_edges + spread * stats.std_edges, stats.max_edges)
        # +1 node: pad_with_graphs needs at least one node for its padding graph.
        return cls(n_node=_round_up(math.ceil(nodes) + 1, multiple),
                   n_edge=_round_up(math.ceil(edges), multiple),
                   n_graph=batch_size + 1)

    @property
    def max_graphs(self) -> int:
        return self.n_graph - 1


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def fitting_prefix(graphs: GraphSet, candidates: np.ndarray, budget: PaddingBudget) -> int:
    """How many leading `candidates` fit in one batch (at most `budget.max_graphs`)."""
    candidates = candidates[: budget.max_graphs]
    nodes = np.cumsum(graphs.n_node[candidates])
    edges = np.cumsum(graphs.n_edge[candidates])
    fits = (nodes <= budget.n_node - 1) & (edges <= budget.n_edge)
    count = int(np.argmin(fits)) if not fits.all() else len(candidates)
    if count == 0 and len(candidates):
        g = int(candidates[0])
        raise ValueError(f"graph {g} ({graphs.n_node[g]} nodes, {graphs.n_edge[g]} edges) "
                         f"does not fit the padding budget {budget}")
    return count


def pack(graphs: GraphSet, idx: np.ndarray, budget: PaddingBudget) -> dict:
    """The padded batch of graphs `idx`: inputs (GraphsTuple), targets, label_mask, mask.

    targets are the labels with NaN replaced by 0; label_mask is 1 where a label was
    measured on a real graph, 0 for missing labels and all padding graphs.
    """
    idx = np.asarray(idx, np.int64)
    nodes = gather_ranges(graphs.node_offsets, graphs.n_node, idx)
    edges = gather_ranges(graphs.edge_offsets, graphs.n_edge, idx)
    n_node = graphs.n_node[idx].astype(np.int32)
    n_edge = graphs.n_edge[idx].astype(np.int32)
    shift = np.repeat(np.cumsum(n_node) - n_node, n_edge).astype(np.int32)
    tuple_ = jraph.GraphsTuple(
        nodes=graphs.node_feat[nodes].astype(np.float32),
        edges=graphs.edge_feat[edges].astype(np.float32),
        senders=graphs.senders[edges].astype(np.int32) + shift,
        receivers=graphs.receivers[edges].astype(np.int32) + shift,
        n_node=n_node, n_edge=n_edge, globals=None)
    padded = jraph.pad_with_graphs(tuple_, budget.n_node, budget.n_edge, budget.n_graph)
    padded = padded._replace(senders=padded.senders.astype(np.int32),
                             receivers=padded.receivers.astype(np.int32))
    labels = np.full((budget.n_graph, graphs.labels.shape[1]), np.nan, np.float32)
    labels[: len(idx)] = graphs.labels[idx]
    measured = ~np.isnan(labels)
    mask = np.zeros((budget.n_graph,), np.float32)
    mask[: len(idx)] = 1.0
    return {"inputs": padded, "targets": np.where(measured, labels, 0.0).astype(np.float32),
            "label_mask": measured.astype(np.float32), "mask": mask}


def train_batches(graphs: GraphSet, budget: PaddingBudget, seed: int) -> Iterator[dict]:
    """Endless padded batches over epochs of seeded random permutations of the graphs."""
    rng = np.random.default_rng(seed)
    queue = np.empty((0,), np.int64)
    while True:
        if len(queue) < budget.max_graphs:
            queue = np.concatenate([queue, rng.permutation(len(graphs))])
        count = fitting_prefix(graphs, queue, budget)
        yield pack(graphs, queue[:count], budget)
        queue = queue[count:]


def eval_batches(graphs: GraphSet, budget: PaddingBudget) -> Iterator[dict]:
    """Padded batches covering every graph exactly once, in order."""
    start = 0
    order = np.arange(len(graphs))
    while start < len(graphs):
        count = fitting_prefix(graphs, order[start:], budget)
        yield pack(graphs, order[start: start + count], budget)
        start += count
