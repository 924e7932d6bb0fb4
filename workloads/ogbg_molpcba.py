"""ogbg-molpcba graph network on jraph (Young, Snider & Feng §4.2; AlgoPerf's ogbg workload).

Molecular property prediction: 128 binary tasks with missing labels, OGB's scaffold
split. Model (after flax's ogbg_molpcba GraphNet reference, which Young, Snider & Feng used): node and edge
embedders to `latent` dims, `depth` GraphNetwork message-passing steps whose edge,
node and global MLPs have `hidden` units and dropout, each step added residually and
followed by LayerNorm (knob), globals updated from mean-pooled nodes and edges, and
a dense readout of the graph's global vector to 128 logits. Adam, lr 1e-3, batch 2048.
Seed 000's ablations are the knobs: layernorm on/off, depth 4/5/6, latent and hidden
128/256/512, activation relu/gelu (and sigmoid/hard_tanh), dropout.

Loss: sigmoid binary cross-entropy per (graph, task), averaged over the measured
labels of the real graphs (missing labels and padding graphs are masked out).
Metric: mean average precision exactly as OGB's Evaluator('ogbg-molpcba').
Target: 0.24 validation mAP (Young, Snider & Feng Figure 6); AlgoPerf's current target is 0.28098.

Data: no copy here; `--data-dir` the OGB folder (pcba.zip unpacked), or
`--data-source tfds`, or `--data-source smiles --data-dir molecules.csv`.
Batches are padded to one fixed node/edge/graph budget (compiles once); the runner
builds them in a background thread ahead of the device (input_mode "host"). Seeds are
vectorised: the fixed budget makes every seed's batch the same shape, so a group of seeds
stacks one batch iterator per seed (each the one that seed has alone) along the trial axis.
Evaluation stays on the host (mAP is computed there), every 200 steps: a validation pass of
~44,000 graphs costs about as much as 20 training steps, and targets fall at tens of
thousands of steps, so 200 steps resolve steps-to-target to well under 1%.

Cost on CPU (2 cores shared with other jobs, load average ~9; measured with
`python benchmarks/ogbg_pipeline.py --batch-size 2048 --steps 2 --repeats 1 --graphs 10000`):
one train step of the default model at batch 2048 takes ~55 s in the runner (37.5 graphs/s),
so the 80,000-step budget is ~50 days: on CPU this workload is for smoke tests only.
GPU: not measured, no GPU lent.
Run: curvebench run --workload ogbg_molpcba --submission adam --data-dir DIR
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np
import optax

from harness.data import graph_batching
from harness.data.graphs import GraphSet
from harness.data.ogbg import NUM_TASKS, load_ogbg_molpcba, synthetic_dataset
from harness.spec import Knob, SpecError, Target, Workload
from workloads.average_precision import mean_average_precision
from workloads.mnist_mlp import ACTIVATIONS


class MLP(nn.Module):
    """Dense(hidden), activation, dropout, Dense(out): the update function of one GN block."""

    hidden: int
    out: int
    activation: Callable
    dropout_rate: float
    deterministic: bool

    @nn.compact
    def __call__(self, x):
        x = self.activation(nn.Dense(self.hidden)(x))
        x = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)(x)
        return nn.Dense(self.out)(x)


class GraphNet(nn.Module):
    """Embed, `depth` residual GraphNetwork steps (+ LayerNorm), read out graph logits."""

    latent: int
    hidden: int
    depth: int
    activation: str
    layernorm: bool
    dropout_rate: float
    num_outputs: int = NUM_TASKS

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool) -> jax.Array:
        n_graph = graph.n_node.shape[0]
        graph = graph._replace(nodes=nn.Dense(self.latent)(graph.nodes),
                               edges=nn.Dense(self.latent)(graph.edges),
                               globals=jnp.zeros((n_graph, self.latent), graph.nodes.dtype))
        activation = ACTIVATIONS[self.activation]

        def mlp():
            return jraph.concatenated_args(
                MLP(self.hidden, self.latent, activation, self.dropout_rate, not train))

        for _ in range(self.depth):
            step = jraph.GraphNetwork(update_edge_fn=mlp(), update_node_fn=mlp(),
                                      update_global_fn=mlp(),
                                      aggregate_nodes_for_globals_fn=jraph.segment_mean,
                                      aggregate_edges_for_globals_fn=jraph.segment_mean)
            new = step(graph)
            graph = graph._replace(nodes=graph.nodes + new.nodes, edges=graph.edges + new.edges,
                                   globals=graph.globals + new.globals)
            if self.layernorm:
                graph = graph._replace(nodes=nn.LayerNorm()(graph.nodes),
                                       edges=nn.LayerNorm()(graph.edges),
                                       globals=nn.LayerNorm()(graph.globals))
        return nn.Dense(self.num_outputs)(graph.globals)


def masked_bce(logits: jax.Array, batch: dict) -> jax.Array:
    """Sigmoid cross-entropy per (graph, task), exactly 0 where a label is missing or padded."""
    measured = (batch["label_mask"] > 0) & (batch["mask"][:, None] > 0)
    losses = optax.sigmoid_binary_cross_entropy(logits, batch["targets"])
    return jnp.where(measured, losses, 0.0)


def measured_labels(batch: dict) -> jax.Array:
    """Number of measured labels on the real graphs of a batch (the loss normalizer)."""
    return jnp.sum(batch["label_mask"] * batch["mask"][:, None])


class OgbgMolpcba(Workload):
    """GNN on ogbg-molpcba (Young, Snider & Feng §4.2); target 0.24 validation mAP."""

    name = "ogbg_molpcba"
    scored_by_default = True
    knobs = {
        "layernorm": Knob(bool, True, choices=(False, True), doc="LayerNorm after each step"),
        "depth": Knob(int, 5, doc="message-passing steps", minimum=1),
        "latent": Knob(int, 256, doc="width of node/edge/global embeddings", minimum=1),
        "hidden": Knob(int, 256, doc="hidden units of each update MLP", minimum=1),
        "activation": Knob(str, "relu", choices=tuple(ACTIVATIONS)),
        "dropout": Knob(float, 0.1, doc="dropout rate in the update MLPs", minimum=0.0),
    }
    target = Target("mean_average_precision", 0.24, "max", "validation")
    batch_size = 2048
    max_steps = 80_000
    eval_every = 200
    eval_batch_size = 2048
    input_mode = "host"

    def __init__(self, **variant):
        super().__init__(**variant)
        if not self.variant["dropout"] < 1.0:
            raise SpecError(f"knob 'dropout': {self.variant['dropout']} must be below 1; "
                            f"{self.knobs['dropout'].describe()}")

    # -- data ---------------------------------------------------------------------------

    def load_data(self, data_dir=None, source=None):
        return load_ogbg_molpcba(data_dir, source)

    def synthetic_dataset(self, sizes, seed=0):
        return synthetic_dataset(sizes, seed)

    def padding_budget(self, graphs: GraphSet, batch_size: int) -> graph_batching.PaddingBudget:
        """The fixed node/edge/graph budget of every batch of `batch_size` graphs."""
        return graph_batching.PaddingBudget.for_batch(graphs.size_stats, batch_size)

    def train_batches(self, dataset, batch_size, seed):
        train = dataset.splits["train"]
        return graph_batching.train_batches(train, self.padding_budget(train, batch_size), seed)

    def eval_batches(self, split_data, batch_size):
        return graph_batching.eval_batches(split_data, self.padding_budget(split_data, batch_size))

    # -- model --------------------------------------------------------------------------

    @property
    def model(self) -> GraphNet:
        v = self.variant
        return GraphNet(latent=v["latent"], hidden=v["hidden"], depth=v["depth"],
                        activation=v["activation"], layernorm=v["layernorm"],
                        dropout_rate=v["dropout"])

    def example_inputs(self) -> jraph.GraphsTuple:
        """A tiny padded batch of the real feature shapes (for init)."""
        graphs = synthetic_dataset({"init": 2}, 0).splits["init"]
        budget = graph_batching.PaddingBudget.for_batch(graphs.size_stats, 2)
        return graph_batching.pack(graphs, np.arange(2), budget)["inputs"]

    @functools.cached_property
    def _compiled_init(self):
        """`model.init` jitted once per workload object, so every seed reuses one program."""
        return jax.jit(functools.partial(self.model.init, train=False))

    def init(self, rng):
        """Parameters; jitted, as op-by-op initialisation of the message-passing stack is slow."""
        return self._compiled_init(rng, self.example_inputs())["params"], {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        """Logits (graphs, 128). Dropout acts only when `train` and an `rng` is given, so
        a call without rng (e.g. a curvature probe) is a deterministic function."""
        active = train and rng is not None and self.variant["dropout"] > 0
        rngs = {"dropout": rng} if active else None
        return self.model.apply({"params": params}, inputs, train=active, rngs=rngs), model_state

    def loss_per_example(self, outputs, batch):
        """Per-graph sum of the cross-entropies of its measured labels (0 on padding)."""
        return masked_bce(outputs, batch).sum(axis=-1)

    def loss_normalizer(self, batch):
        """Mean over the measured labels of the real graphs (AlgoPerf, flax)."""
        return measured_labels(batch)

    # -- evaluation ---------------------------------------------------------------------

    def eval_batch(self, params, model_state, batch):
        logits, _ = self.apply(params, model_state, batch["inputs"], train=False)
        return {"logits": logits, "targets": batch["targets"], "label_mask": batch["label_mask"],
                "mask": batch["mask"], "loss_sum": masked_bce(logits, batch).sum(),
                "label_count": measured_labels(batch)}

    def finalize_metrics(self, per_batch):
        """mAP (OGB's evaluator) over the real graphs of a split, and the mean label loss."""
        real = np.concatenate([np.asarray(b["mask"]) > 0 for b in per_batch])
        logits = np.concatenate([np.asarray(b["logits"]) for b in per_batch])[real]
        targets = np.concatenate([np.asarray(b["targets"]) for b in per_batch])[real]
        measured = np.concatenate([np.asarray(b["label_mask"]) for b in per_batch])[real] > 0
        y_true = np.where(measured, targets, np.nan)
        loss = sum(float(b["loss_sum"]) for b in per_batch)
        count = sum(float(b["label_count"]) for b in per_batch)
        return {"loss": loss / max(count, 1.0),
                "mean_average_precision": mean_average_precision(y_true, logits)}

    def metric_ranges(self):
        return {"loss": (0.0, float("inf")), "mean_average_precision": (0.0, 1.0)}
