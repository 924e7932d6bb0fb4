"""AlgoPerf-format test submission in the v0.5 pmap style: `algorithmic_efficiency` imports,
flax's replicate helpers, plain momentum SGD in a pmapped step; a list search space."""

import functools

import jax
import optax
from flax import jax_utils

from algorithmic_efficiency import spec


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    opt = optax.sgd(hyperparameters.learning_rate, momentum=hyperparameters.momentum)
    params = jax_utils.unreplicate(model_params)
    return jax_utils.replicate(opt.init(params)), opt.update


@functools.partial(jax.pmap, axis_name="batch", static_broadcasted_argnums=(0, 1))
def _step(workload, update, params, model_state, state, batch, rng):
    def loss(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(params)
    updates, state = update(grads, state, params)
    return optax.apply_updates(params, updates), new_model_state, state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    params, new_model_state, state = _step(workload, update, current_param_container, model_state,
                                           state, batch, rngs)
    return (state, update), params, new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
