"""AlgoPerf-format test submission, pmap-era, for AlgoPerf's ogbg workload: heavy-ball momentum
on gradients averaged over the device axis (`lax.pmean`), the optimizer state replicated with
flax's jax_utils, a batch-size table with only ogbg and librispeech, and a learning rate
decayed linearly over `workload.step_hint`. Nothing depends on the step as a Python value, so
it trains inside the runner's compiled chunks."""

import functools

import jax
import jax.numpy as jnp
import optax
from flax import jax_utils

from algoperf import spec


def get_batch_size(workload_name):
    return {"ogbg": 16, "librispeech_conformer": 256}[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_params, model_state, rng
    schedule = optax.linear_schedule(hyperparameters.learning_rate, 0.0, workload.step_hint)
    tx = optax.sgd(schedule, momentum=hyperparameters.momentum)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return jax_utils.replicate(tx.init(zeros)), tx.update


@functools.partial(jax.pmap, axis_name="devices", in_axes=(None, None, 0, 0, 0, 0, 0),
                   static_broadcasted_argnums=(0, 1))
def _pmapped(workload, update_fn, params, model_state, opt_state, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grad = jax.lax.pmean(grad, "devices")
    updates, opt_state = update_fn(grad, opt_state, params)
    return opt_state, optax.apply_updates(params, updates), new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    opt_state, update_fn = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    opt_state, params, model_state = _pmapped(workload, update_fn, current_param_container,
                                              model_state, opt_state, batch, rngs)
    return (opt_state, update_fn), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
