"""AlgoPerf-format test submission whose optimizer state changes structure between steps: a
list of the last parameters that grows by one each step until it holds `keep`, and heavy-ball
momentum pulled towards the oldest of them. A compiled chunk carries one fixed
structure, so it trains in the runner's concrete-step mode."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"momentum": optax.sgd(hyperparameters.learning_rate, momentum=0.9).init(model_params),
            "history": []}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(workload, learning_rate, params, model_state, momentum, anchor, pull, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grad = jax.tree.map(lambda g, p, a: g + pull * (p - a), grad, params, anchor)
    updates, momentum = optax.sgd(learning_rate, momentum=0.9).update(grad, momentum)
    return optax.apply_updates(params, updates), new_state, momentum


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    history = list(optimizer_state["history"])
    anchor = history[0] if history else current_param_container
    params, model_state, momentum = _step(
        workload, hyperparameters.learning_rate, current_param_container, model_state,
        optimizer_state["momentum"], anchor, hyperparameters.pull, batch, rng)
    history = (history + [params])[-hyperparameters.keep:]
    return {"momentum": momentum, "history": history}, params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
