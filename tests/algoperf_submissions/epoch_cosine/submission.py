"""AlgoPerf-format test submission with an epoch-based schedule, as development algorithms
build one: steps per epoch from `workload.num_train_examples`, a cosine decay over
`epochs` epochs (at least the workload's step hint), Adam."""

import math

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 256


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    steps_per_epoch = math.ceil(workload.num_train_examples / get_batch_size(workload.name))
    decay_steps = max(hyperparameters.epochs * steps_per_epoch, workload.step_hint)
    schedule = optax.cosine_decay_schedule(hyperparameters.learning_rate, decay_steps)
    opt = optax.adam(schedule)
    return opt.init(model_params), opt.update


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state

    def loss(params):
        logits, new_state = workload.model_fn(params, batch, model_state,
                                              spec.ForwardPassMode.TRAIN, rng, True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(current_param_container)
    updates, state = update(grads, state, current_param_container)
    return (state, update), optax.apply_updates(current_param_container, updates), new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
