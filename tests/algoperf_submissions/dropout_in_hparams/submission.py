"""AlgoPerf-format test submission whose hyperparameters carry dropout rates, passed to the
workload's model as AlgoPerf's baselines do (`dropout_rate`, `aux_dropout_rate`): AdaGrad."""

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    opt = optax.adagrad(hyperparameters.learning_rate)
    return opt.init(model_params), opt.update


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state

    def loss(params):
        logits, new_state = workload.model_fn(params, batch, model_state,
                                              spec.ForwardPassMode.TRAIN, rng, True,
                                              dropout_rate=hyperparameters.dropout_rate)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(current_param_container)
    updates, state = update(grads, state, current_param_container)
    return (state, update), optax.apply_updates(current_param_container, updates), new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
