"""AlgoPerf-format test submission, pmap-era, sharpness-aware: an optax transformation that
takes a gradient at the ascent point and reduces over the named device axis inside its own
update (lax.pmean of gradients, lax.psum of a Python count), as SAM-style files do."""

import functools

import jax
import jax.numpy as jnp
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 512


def _ascent_direction(grads):
    norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(grads)))
    return jax.tree_util.tree_map(lambda g: g / (norm + 1e-12), grads)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    opt = optax.sgd(hyperparameters.learning_rate, momentum=0.9)
    return jax.pmap(opt.init)(model_params), opt.update


@functools.partial(jax.pmap, axis_name="devices", static_broadcasted_argnums=(0, 1, 2))
def _step(workload, update, rho, params, model_state, state, batch, rng):
    def loss(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    n_devices = jax.lax.psum(1, axis_name="devices")
    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(params)
    grads = jax.lax.pmean(grads, axis_name="devices")
    ascent = jax.tree_util.tree_map(lambda p, d: p + rho * d, params, _ascent_direction(grads))
    (_, _), sharp = jax.value_and_grad(loss, has_aux=True)(ascent)
    sharp = jax.tree_util.tree_map(lambda g: jax.lax.psum(g, axis_name="devices") / n_devices, sharp)
    updates, state = update(sharp, state, params)
    return optax.apply_updates(params, updates), new_model_state, state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    params, new_model_state, state = _step(workload, update, hyperparameters.rho,
                                           current_param_container, model_state, state, batch, rngs)
    return (state, update), params, new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
