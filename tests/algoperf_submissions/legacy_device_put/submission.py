"""AlgoPerf-format test submission from the pmap era that places its optimizer state with
`jax.device_put_replicated`, which JAX 0.10 removed (no drop-in alias: one line saying so)."""

import jax
import optax

from algoperf import spec  # noqa: F401


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    opt = optax.sgd(hyperparameters.learning_rate)
    state = jax.device_put_replicated(opt.init(jax.tree_util.tree_map(lambda x: x[0], model_params)),
                                      jax.local_devices())
    return state, opt.update


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    return optimizer_state, current_param_container, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)


_ = jax.pmap  # pmap-era layout
