"""AlgoPerf-format test submission in the style of AlgoPerf's CIFAR development algorithm
(pmap era): a batch-size table that knows only "cifar", a warmup + cosine schedule counted in
epochs of `workload.num_train_examples`, Nesterov momentum on the loss plus an L2 penalty on
the weight matrices, gradients averaged with `lax.pmean`, batch statistics updated through the
model state, and the hyperparameters broadcast into the pmapped step."""

import functools

import jax
import jax.numpy as jnp
import optax
from flax import jax_utils

from algoperf import spec


def get_batch_size(workload_name):
    return {"cifar": 32}[workload_name]


def _schedule(hyperparameters, num_train_examples):
    per_epoch = max(num_train_examples // get_batch_size("cifar"), 1)
    warmup = hyperparameters.warmup_epochs * per_epoch
    return optax.warmup_cosine_decay_schedule(
        0.0, hyperparameters.learning_rate, max(warmup, 1),
        max(hyperparameters.num_epochs * per_epoch, warmup + 1))


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_params, model_state, rng
    tx = optax.sgd(_schedule(hyperparameters, workload.num_train_examples),
                   momentum=hyperparameters.momentum, nesterov=True)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return jax_utils.replicate(tx.init(zeros)), tx.update


@functools.partial(jax.pmap, axis_name="batch", in_axes=(None, None, 0, 0, 0, None, 0, 0),
                   static_broadcasted_argnums=(0, 1))
def _step(workload, update_fn, model_state, opt_state, params, hyperparameters, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits)
        l2 = sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(p) if w.ndim > 1)
        return out["summed"] / out["n_valid_examples"] + 0.5 * hyperparameters.l2 * l2, new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grad = jax.lax.pmean(grad, axis_name="batch")
    updates, opt_state = update_fn(grad, opt_state, params)
    return opt_state, optax.apply_updates(params, updates), new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    opt_state, update_fn = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    opt_state, params, model_state = _step(workload, update_fn, model_state, opt_state,
                                           current_param_container, hyperparameters, batch, rngs)
    return (opt_state, update_fn), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
