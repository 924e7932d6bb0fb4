"""Self-tuning AlgoPerf-format test submission (its points inside the file, no hparams.json)
that steps through several hyperparameter points itself: each point trains Adam from freshly
initialised parameters (`workload.init_model_fn`) for STEPS_PER_POINT steps; after the last
point it hands back the parameters with the lowest training loss seen at a point's end and
raises TrainingCompleteError."""

import jax
import optax

from algoperf import spec

POINTS = [{"learning_rate": 1e-4}, {"learning_rate": 3e-3}, {"learning_rate": 1e-3}]
STEPS_PER_POINT = 12


def get_batch_size(workload_name):
    return 1024


def _init(point, params):
    return optax.adam(point["learning_rate"]).init(params)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    assert hyperparameters is None
    return {"adam": _init(POINTS[0], model_params), "best": model_params, "best_loss": 1e30,
            "rng": rng}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    point_index, within = divmod(global_step, STEPS_PER_POINT)
    if point_index == len(POINTS):
        raise spec.TrainingCompleteError
    point = POINTS[point_index]
    params, adam = current_param_container, optimizer_state["adam"]
    if within == 0 and point_index > 0:  # a new point: fresh parameters and moments
        key = jax.random.fold_in(optimizer_state["rng"], point_index)
        params, model_state = workload.init_model_fn(key)
        adam = _init(point, params)

    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (loss, model_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, adam = optax.adam(point["learning_rate"]).update(grad, adam, params)
    params = optax.apply_updates(params, updates)
    best, best_loss = optimizer_state["best"], optimizer_state["best_loss"]
    if within == STEPS_PER_POINT - 1 and float(loss) < best_loss:
        best, best_loss = params, float(loss)
    if within == STEPS_PER_POINT - 1 and point_index == len(POINTS) - 1:
        params = best
    return ({"adam": adam, "best": best, "best_loss": best_loss, "rng": optimizer_state["rng"]},
            params, model_state)


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
