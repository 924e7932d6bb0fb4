"""A set of small graphs stored flat (CSR-style) on the host: the split format of graph datasets.

Node and edge rows of all graphs are concatenated; `n_node`/`n_edge` say how many
belong to each graph and `senders`/`receivers` are node indices *local to their
graph*, so that taking a subset of graphs never needs index rewriting.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class GraphStats:
    """Size statistics of a dataset's graphs; padding budgets are computed from them."""

    mean_nodes: float
    std_nodes: float
    max_nodes: int
    mean_edges: float
    std_edges: float
    max_edges: int

    @classmethod
    def of(cls, n_node: np.ndarray, n_edge: np.ndarray) -> GraphStats:
        if len(n_node) == 0:
            raise ValueError("cannot compute graph statistics of an empty graph set")
        return cls(float(np.mean(n_node)), float(np.std(n_node)), int(np.max(n_node)),
                   float(np.mean(n_edge)), float(np.std(n_edge)), int(np.max(n_edge)))


@dataclasses.dataclass(frozen=True)
class GraphSet:
    """Graphs with per-graph labels; `labels` comes first so `len(leaves[0])` counts graphs.

    `stats` describes the whole dataset the graphs were drawn from (all splits), so
    that every split of one dataset pads to the same shapes and compiles once.
    """

    labels: np.ndarray  # (G, T) float32, NaN where a task is not measured
    n_node: np.ndarray  # (G,) int32
    n_edge: np.ndarray  # (G,) int32, directed edges
    node_feat: np.ndarray  # (N, F_node) integer features
    edge_feat: np.ndarray  # (E, F_edge) integer features
    senders: np.ndarray  # (E,) int32, local to the graph
    receivers: np.ndarray  # (E,) int32, local to the graph
    stats: GraphStats | None = None

    def __post_init__(self):
        g, n, e = len(self.n_node), int(np.sum(self.n_node)), int(np.sum(self.n_edge))
        problems = []
        if self.labels.ndim != 2 or len(self.labels) != g:
            problems.append(f"labels shape {self.labels.shape} for {g} graphs")
        if len(self.n_edge) != g:
            problems.append(f"{len(self.n_edge)} edge counts for {g} graphs")
        if len(self.node_feat) != n:
            problems.append(f"{len(self.node_feat)} node rows, node counts sum to {n}")
        if not len(self.edge_feat) == len(self.senders) == len(self.receivers) == e:
            problems.append(f"{len(self.edge_feat)} edge rows / {len(self.senders)} senders / "
                            f"{len(self.receivers)} receivers, edge counts sum to {e}")
        if problems:
            raise ValueError("inconsistent graph set: " + "; ".join(problems))
        if e:
            limit = np.repeat(self.n_node, self.n_edge)
            bad = (self.senders < 0) | (self.senders >= limit) | (self.receivers < 0) | (
                self.receivers >= limit)
            if bad.any():
                raise ValueError(f"{int(bad.sum())} edges point outside their graph "
                                 f"(first at edge row {int(np.argmax(bad))})")

    def __len__(self) -> int:
        return len(self.n_node)

    @property
    def size_stats(self) -> GraphStats:
        return self.stats or GraphStats.of(self.n_node, self.n_edge)

    @property
    def node_offsets(self) -> np.ndarray:
        return _offsets(self.n_node)

    @property
    def edge_offsets(self) -> np.ndarray:
        return _offsets(self.n_edge)

    def take(self, idx: np.ndarray) -> GraphSet:
        """The graphs at positions `idx`, in that order (same stats)."""
        idx = np.asarray(idx, np.int64)
        nodes = gather_ranges(self.node_offsets, self.n_node, idx)
        edges = gather_ranges(self.edge_offsets, self.n_edge, idx)
        return GraphSet(self.labels[idx], self.n_node[idx], self.n_edge[idx],
                        self.node_feat[nodes], self.edge_feat[edges], self.senders[edges],
                        self.receivers[edges], self.stats)

    def with_stats(self, stats: GraphStats) -> GraphSet:
        return dataclasses.replace(self, stats=stats)


jax.tree_util.register_dataclass(
    GraphSet,
    data_fields=["labels", "n_node", "n_edge", "node_feat", "edge_feat", "senders", "receivers"],
    meta_fields=["stats"])


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])


def gather_ranges(offsets: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Row indices of the concatenated ranges [offsets[i], offsets[i] + counts[i]) for i in idx."""
    lens = counts[idx].astype(np.int64)
    starts = offsets[idx]
    before = np.cumsum(lens) - lens
    return np.repeat(starts - before, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def with_shared_stats(splits: dict[str, GraphSet]) -> dict[str, GraphSet]:
    """Attach the statistics of all splits together to each split (one padding budget)."""
    n_node = np.concatenate([s.n_node for s in splits.values()])
    n_edge = np.concatenate([s.n_edge for s in splits.values()])
    stats = GraphStats.of(n_node, n_edge)
    return {name: s.with_stats(stats) for name, s in splits.items()}
