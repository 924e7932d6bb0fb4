"""AlgoPerf-format test submission that moves through its hyperparameter points by reading
eval_results: it trains momentum SGD at the first rate of `rates`, moves to the next rate
whenever an eval shows no gain in validation accuracy over the one before, and raises
TrainingCompleteError when an eval shows no gain at the last rate (or after `max_points`
points)."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    tx = optax.sgd(1.0, momentum=0.9)
    return {"momentum": tx.init(model_params), "point": 0, "evals_seen": 0}


@functools.partial(jax.jit, static_argnums=0)
def _grad(workload, params, model_state, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grad, new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    point, seen = optimizer_state["point"], optimizer_state["evals_seen"]
    if len(eval_results) > seen:
        seen = len(eval_results)
        accuracies = [m["validation/accuracy"] for _, m in eval_results]
        if len(accuracies) >= 2 and accuracies[-1] <= accuracies[-2]:
            point += 1
            if point >= min(len(hyperparameters.rates), hyperparameters.max_points):
                raise spec.TrainingCompleteError
    lr = hyperparameters.rates[point]
    grad, new_state = _grad(workload, current_param_container, model_state, batch, rng)
    updates, momentum = optax.sgd(lr, momentum=0.9).update(grad, optimizer_state["momentum"])
    return ({"momentum": momentum, "point": point, "evals_seen": seen},
            optax.apply_updates(current_param_container, updates), new_state)


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
