"""AlgoPerf-format test submission written against AlgoPerf v0.5 (the package was then
`algorithmic_efficiency`): RMSProp with a cosine decay over the workload's step hint."""

import jax
import optax

from algorithmic_efficiency import spec
from algorithmic_efficiency.param_utils import jax_param_types  # noqa: F401 - v0.5 import path


def get_batch_size(workload_name):
    return {"mnist": 1024}[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    schedule = optax.cosine_decay_schedule(hyperparameters.learning_rate, workload.step_hint)
    opt = optax.rmsprop(schedule, decay=hyperparameters.decay)
    return opt.init(model_params), opt.update


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng):
    assert loss_type is spec.LossType.SOFTMAX_CROSS_ENTROPY
    state, update = optimizer_state

    def loss(params):
        logits, new_state = workload.model_fn(params, batch, model_state,
                                              spec.ForwardPassMode.TRAIN, rng, True, 0.0)
        return workload.loss_fn(batch["targets"], logits)["summed"] / logits.shape[0], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(current_param_container)
    updates, state = update(grads, state, current_param_container)
    return (state, update), optax.apply_updates(current_param_container, updates), new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
