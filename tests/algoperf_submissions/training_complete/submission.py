"""AlgoPerf-format test submission that ends training itself: Adam, raising
TrainingCompleteError once global_step reaches `stop_after` (AlgoPerf then gives the run a final
eval and stops it). The Adam step itself is jitted, as AlgoPerf submissions do."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return optax.adam(hyperparameters.learning_rate).init(model_params)


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    if global_step >= hyperparameters.stop_after:
        raise spec.TrainingCompleteError()

    return adam_step(workload, hyperparameters.learning_rate, current_param_container, model_state,
                     optimizer_state, batch, rng)


@functools.partial(jax.jit, static_argnums=(0, 1))
def adam_step(workload, learning_rate, params, model_state, optimizer_state, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
                                              update_batch_norm=True)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        return losses["summed"] / losses["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optax.adam(learning_rate).update(grad, optimizer_state)
    return opt_state, optax.apply_updates(params, updates), new_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
