"""Host evaluation of one trial's parameters: the workload's eval_batch compiled once,
finalize_metrics over the batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from harness.spec import Workload


class Evaluator:
    """Host evaluation of one trial's parameters on a split (or on given eval batches): the
    workload's eval_batch compiled once, finalize_metrics over the batches."""

    def __init__(self, workload: Workload, split: Any = None, eval_batches: Sequence[Any] | None = None):
        if eval_batches is None:
            eval_batches = [jax.device_put(b) for b in workload.eval_batches(split, workload.eval_batch_size)]
        self.workload, self.batches = workload, list(eval_batches)
        self._eval = jax.jit(workload.eval_batch)

    def __call__(self, params: Any, model_state: Any) -> dict[str, float]:
        outs = jax.device_get([self._eval(params, model_state, b) for b in self.batches])
        return self.workload.finalize_metrics(outs)
