"""AlgoPerf-format test submission in the style of schedule-free methods: the optimizer state
holds the base sequence z and the average x; the gradient is taken at y = (1 - beta) z + beta x
(the parameters update_params hands back), and prepare_for_eval swaps the parameters for x,
the point to evaluate. Training goes on from the state after an eval, whatever parameters it
is handed (update_params recomputes y from z and x), as AlgoPerf's schedule-free JAX
submission does."""

import functools

import jax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"z": model_params, "x": model_params, "count": jax.numpy.zeros((), jax.numpy.int32)}


@functools.partial(jax.jit, static_argnums=(0,))
def _step(workload, state, model_state, batch, rng, lr, beta):
    y = jax.tree.map(lambda z, x: (1 - beta) * z + beta * x, state["z"], state["x"])

    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(y)
    count = state["count"] + 1
    z = jax.tree.map(lambda z, g: z - lr * g, state["z"], grad)
    c = 1.0 / count
    x = jax.tree.map(lambda x, z: (1 - c) * x + c * z, state["x"], z)
    y_next = jax.tree.map(lambda z, x: (1 - beta) * z + beta * x, z, x)
    return {"z": z, "x": x, "count": count}, y_next, new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_param_container  # y is recomputed from z and x
    state, params, model_state = _step(workload, optimizer_state, model_state, batch, rng,
                                       hyperparameters.learning_rate, hyperparameters.beta)
    return state, params, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    return optimizer_state, optimizer_state["x"], model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
