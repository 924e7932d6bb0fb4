"""AlgoPerf-format test submission whose optimizer state holds host NumPy arrays: a NumPy step
counter and a NumPy record of the learning rates used, updated with NumPy on the host each
step; the rate (a linear warmup) is computed there and passed to a jitted momentum step. NumPy
cannot read traced values, so it trains in the runner's concrete-step mode."""

import functools

import jax
import numpy as np
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"momentum": optax.sgd(1.0, momentum=0.9).init(model_params),
            "count": np.zeros((), np.int64), "rates": np.zeros((0,), np.float64)}


@functools.partial(jax.jit, static_argnums=0)
def _step(workload, params, model_state, momentum, batch, rng, lr):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, momentum = optax.sgd(1.0, momentum=0.9).update(grad, momentum)
    updates = jax.tree.map(lambda u: lr * u, updates)
    return optax.apply_updates(params, updates), new_state, momentum


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    count = np.asarray(optimizer_state["count"]) + 1
    lr = hyperparameters.learning_rate * min(1.0, float(count) / hyperparameters.warmup_steps)
    params, model_state, momentum = _step(workload, current_param_container, model_state,
                                          optimizer_state["momentum"], batch, rng, lr)
    rates = np.append(np.asarray(optimizer_state["rates"])[-9:], lr)
    return {"momentum": momentum, "count": count, "rates": rates}, params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
