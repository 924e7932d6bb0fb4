"""AlgoPerf-format test submission, self-tuning: Nesterov momentum with a linear warmup, its
hyperparameters fixed in this file (no hparams.json, no search space). AlgoPerf's self-tuning
ruleset passes hyperparameters=None; the submission checks that it does."""

import jax
import optax

from algoperf import spec

HPARAMS = {"learning_rate": 0.05, "momentum": 0.9, "warmup_steps": 5}


def get_batch_size(workload_name):
    return {"mnist": 512, "cifar": 128}[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    assert hyperparameters is None, "self-tuning: the runner passes no hyperparameters"
    schedule = optax.linear_schedule(0.0, HPARAMS["learning_rate"], HPARAMS["warmup_steps"])
    opt = optax.sgd(schedule, momentum=HPARAMS["momentum"], nesterov=True)
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
