"""AlgoPerf-format test submission (jit era) for AlgoPerf's CIFAR and ImageNet ResNets only:
LAMB with softmax label smoothing, the step jitted once at import (the workload a static
argument), batch statistics updated in training; prepare_for_eval is AlgoPerf's no-op form
(it returns its inputs), so the runner never needs to call it."""

import functools

import jax
import optax

from algoperf import spec

BATCH = {"cifar": 32, "imagenet_resnet": 1024}


def get_batch_size(workload_name):
    return BATCH[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    tx = optax.lamb(hyperparameters.learning_rate, weight_decay=hyperparameters.weight_decay)
    return tx.init(model_params), tx.update


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(workload, update_fn, model_state, opt_state, params, batch, rng, smoothing):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch.get("weights"), smoothing)
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = update_fn(grad, opt_state, params)
    return opt_state, optax.apply_updates(params, updates), new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    opt_state, update_fn = optimizer_state
    opt_state, params, model_state = _step(workload, update_fn, model_state, opt_state,
                                           current_param_container, batch, rng,
                                           hyperparameters.label_smoothing)
    return (opt_state, update_fn), params, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    """Nothing to prepare."""
    del workload, hyperparameters, loss_type, eval_results, global_step, rng
    return (optimizer_state, current_param_container, model_state)


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
