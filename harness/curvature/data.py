"""The fixed data of a trial's curvature snapshots: the curvature batch S and the L mini-batches.

Device-mode workloads (arrays) get `make_physical_batches`; host-mode workloads
(graphs) get their own fixed-shape padded batches from `workload.eval_batches`
over a fixed subset of graphs, stacked along a leading axis so the products scan
over them exactly as over array batches. Either way the result is one pytree
with leading axis = physical batch, and every product accumulates over all of it.

Batch norm: a model with batch statistics, run in training mode, normalizes each
physical batch with that batch's own mean and variance, so padding rows would
change every real example's output. Such a curvature batch is therefore always a
whole number of physical batches (`make_physical_batches(whole_batches=True)`;
the draw's last examples are dropped, and the count used is stored with each
snapshot as `curvature_examples`). Graph workloads here have no batch norm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from harness.curvature.operators import make_physical_batches
from harness.spec import Dataset, SpecError, Workload


def has_batch_statistics(workload: Workload) -> bool:
    """Whether the model carries state (batch-norm statistics), from its abstract init."""
    _, state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    return bool(jax.tree_util.tree_leaves(state))


def split_of(dataset: Dataset, split: str) -> Any:
    """A dataset split, or a one-line error naming the splits there are."""
    data = dataset.splits.get(split)
    if data is None:
        raise SpecError(f"dataset {dataset.name} has no {split!r} split for curvature snapshots; "
                        f"it has: {', '.join(dataset.splits)}")
    return data


def _stack(batches: list[Mapping[str, Any]]) -> dict[str, Any]:
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *[dict(b) for b in batches])


def _host_subset(split: Any, idx: np.ndarray | None) -> Any:
    """The graphs at `idx` (all of them if None), keeping the split's padding statistics."""
    if idx is None:
        return split
    subset = split.take(np.sort(idx))
    return subset.with_stats(split.size_stats) if hasattr(subset, "with_stats") else subset


def _host_batches(workload: Workload, subset: Any, physical: int) -> dict[str, Any]:
    batches = list(workload.eval_batches(subset, physical))
    if not batches:
        raise SpecError("the curvature batch is empty")
    return _stack(batches)


def curvature_batches(workload: Workload, split: Any, size: int | None, physical: int, seed: int,
                      *, train_mode: bool) -> dict[str, Any]:
    """The fixed curvature batch S as stacked physical batches (`size` None: the whole split)."""
    if workload.input_mode == "host":
        n = len(split)
        idx = None if size is None or size >= n else np.random.default_rng(seed).permutation(n)[:size]
        return _host_batches(workload, _host_subset(split, idx), physical)
    whole = train_mode and has_batch_statistics(workload)
    return make_physical_batches(split, size, physical, seed, whole_batches=whole)


def gradient_minibatches(workload: Workload, split: Any, num: int, size: int, seed: int) -> dict[str, Any]:
    """`num` mini-batches of `size` examples, each drawn without replacement, stacked (num, ...).

    Each is one whole physical batch (no padding rows for array data), so batch norm in
    training mode sees exactly the mini-batch, as in training.
    """
    n = len(split) if workload.input_mode == "host" else len(next(iter(split.values())))
    size = min(size, n)
    rng = np.random.default_rng(seed)
    draws = [rng.choice(n, size, replace=False) for _ in range(num)]
    if workload.input_mode == "host":
        out = []
        for idx in draws:
            one = list(workload.eval_batches(_host_subset(split, idx), size))
            if len(one) != 1:
                raise SpecError(f"a mini-batch of {size} graphs does not fit one padded batch; "
                                "lower the covariance mini-batch size M")
            out.append(one[0])
        return _stack(out)
    idx = np.stack(draws)
    out = {k: np.asarray(v)[idx] for k, v in split.items()}
    out["mask"] = np.ones((num, size), np.float32)
    return out
