"""AlgoPerf-format test submission that branches on global_step in Python (as AlgoPerf's
AdamW/NAdamW baselines do when they log every 100 steps): plain SGD whose learning rate is
chosen by a Python `if` on the step, so it needs a concrete int global_step. The gradient step
itself is jitted, as AlgoPerf submissions do."""

import functools

import jax
import jax.numpy as jnp

from algoperf import spec


def get_batch_size(workload_name):
    return 256


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del workload, model_params, model_state, hyperparameters, rng
    return {"count": jnp.zeros((), jnp.int32)}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_params_types, loss_type, eval_results, train_state
    if global_step < hyperparameters.warmup_steps:
        lr = hyperparameters.learning_rate * (global_step + 1) / hyperparameters.warmup_steps
    else:
        lr = hyperparameters.learning_rate

    params, new_state = sgd_step(workload, current_param_container, model_state, batch, rng, lr)
    return {"count": optimizer_state["count"] + 1}, params, new_state


@functools.partial(jax.jit, static_argnums=(0,))
def sgd_step(workload, params, model_state, batch, rng, lr):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
                                              update_batch_norm=True)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        return losses["summed"] / losses["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return jax.tree.map(lambda p, g: p - lr * g, params, grad), new_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
