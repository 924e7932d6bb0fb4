"""AlgoPerf-format test submission whose model is only ready after prepare_for_eval: Adam
trains a copy of the parameters kept in the optimizer state while update_params hands back the
parameters it was given; prepare_for_eval returns the trained copy (as an averaging method would
return its average). The Adam step itself is jitted, as AlgoPerf submissions do."""

import functools

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
    new_opt, new_state = adam_step(workload, hyperparameters.learning_rate, optimizer_state,
                                   model_state, batch, rng)
    return new_opt, current_param_container, new_state


@functools.partial(jax.jit, static_argnums=(0, 1))
def adam_step(workload, learning_rate, optimizer_state, model_state, batch, rng):
    trained = optimizer_state["trained"]

    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN, rng,
                                              update_batch_norm=True)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
        return losses["summed"] / losses["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(trained)
    updates, adam = optax.adam(learning_rate).update(grad, optimizer_state["adam"], trained)
    return {"trained": optax.apply_updates(trained, updates), "adam": adam}, new_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    return optimizer_state, optimizer_state["trained"], model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
