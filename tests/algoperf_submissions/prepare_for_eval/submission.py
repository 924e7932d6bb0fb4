"""AlgoPerf-format test submission whose model is only ready after prepare_for_eval: Adam
trains a copy of the parameters kept in the optimizer state while update_params hands back the
parameters it was given; prepare_for_eval returns the trained copy (as an averaging method would
return its average)."""

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del workload, model_state, rng
    opt = optax.adam(hyperparameters.learning_rate)
    return {"trained": model_params, "adam": opt.init(model_params)}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_params_types, loss_type, eval_results, global_step, train_state
    trained = optimizer_state["trained"]

    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
                                              update_batch_norm=True)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        return losses["summed"] / losses["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(trained)
    updates, adam = optax.adam(hyperparameters.learning_rate).update(grad, optimizer_state["adam"], trained)
    trained = optax.apply_updates(trained, updates)
    return {"trained": trained, "adam": adam}, current_param_container, new_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    return optimizer_state, optimizer_state["trained"], model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
