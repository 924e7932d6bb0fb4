"""AlgoPerf-format test submission, pmap-era: Adam with the update pmapped over local devices
(parameters, optimizer state and batches carry a leading device axis), as AlgoPerf's MNIST
development algorithm is written."""

import functools

import jax
import jax.numpy as jnp
import optax
from flax import jax_utils

from algoperf import spec


def get_batch_size(workload_name):
    return {"mnist": 1024}[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_params, model_state, rng
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    opt_init_fn, opt_update_fn = optax.chain(
        optax.scale_by_adam(b1=1.0 - hyperparameters.one_minus_beta_1, b2=0.999,
                            eps=hyperparameters.epsilon),
        optax.scale(-hyperparameters.learning_rate))
    return jax_utils.replicate(opt_init_fn(zeros)), opt_update_fn


@functools.partial(jax.pmap, axis_name="batch", in_axes=(None, None, 0, 0, 0, 0, 0),
                   static_broadcasted_argnums=(0, 1))
def pmapped_update(workload, opt_update_fn, params, model_state, batch, optimizer_state, rng):
    def loss_fn(p):
        logits, new_model_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                                    rng, update_batch_norm=True)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        return losses["summed"] / losses["n_valid_examples"], new_model_state

    (_, new_model_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grad = jax.lax.pmean(grad, axis_name="batch")
    updates, new_optimizer_state = opt_update_fn(grad, optimizer_state, params)
    return new_optimizer_state, optax.apply_updates(params, updates), new_model_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_params_types, loss_type, eval_results, global_step, train_state, hyperparameters
    optimizer_state, opt_update_fn = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    new_state, params, model_state = pmapped_update(workload, opt_update_fn, current_param_container,
                                                    model_state, batch, optimizer_state, rngs)
    return (new_state, opt_update_fn), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    del workload, optimizer_state, current_param_container, model_state, hyperparameters
    del global_step, rng
    return next(input_queue)
