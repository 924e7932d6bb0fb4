"""Glue between flax.linen modules and the workload contract: params apart from the
mutable collections (batch statistics), which `apply` updates only in training."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax


def init_linen(model: nn.Module, rng: jax.Array, example: jax.Array) -> tuple[Any, dict]:
    """(params, model_state): model_state holds every non-params collection ({} if none)."""
    variables = model.init(rng, example, train=False)
    return variables["params"], {k: v for k, v in variables.items() if k != "params"}


def apply_linen(model: nn.Module, params: Any, model_state: dict, inputs: jax.Array,
                train: bool) -> tuple[jax.Array, dict]:
    """Outputs and the new model state: updated in training, returned unchanged in eval."""
    variables = {"params": params, **model_state}
    if train and model_state:
        outputs, updates = model.apply(variables, inputs, train=True, mutable=list(model_state))
        return outputs, dict(updates)
    return model.apply(variables, inputs, train=train), model_state
