"""AlgoPerf-format test submission written before JAX 0.6 removed the top-level tree
functions: `jax.tree_map`, `jax.tree_leaves` and `jax.tree_util.tree_multimap` (gone since JAX
0.3.16) at import time and inside its update. Plain SGD with gradient clipping by hand."""

import jax
import jax.numpy as jnp

from algoperf import spec

_ZERO = jax.tree_map(jnp.zeros_like, {"probe": jnp.ones(2)})  # runs at import


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"steps": jnp.zeros((), jnp.int32)}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    def loss(params):
        logits, new_state = workload.model_fn(params, batch, model_state,
                                              spec.ForwardPassMode.TRAIN, rng, True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(current_param_container)
    norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree_leaves(grads)))
    scale = jnp.minimum(1.0, hyperparameters.clip / (norm + 1e-9))
    params = jax.tree_util.tree_multimap(lambda p, g: p - hyperparameters.learning_rate * scale * g,
                                         current_param_container, grads)
    return {"steps": optimizer_state["steps"] + 1}, params, new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
