"""AlgoPerf-format test submission whose prepare_for_eval changes the optimizer state's
structure: it evaluates an exponential moving average of the parameters and stashes the
training parameters in a state field that is None between evals; update_params trains from the
stash when there is one and sets the field back to None (as a published DiLoCo-style entry
does)."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"adam": optax.adam(hyperparameters.learning_rate).init(model_params),
            "ema": model_params, "stash": None}


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(workload, learning_rate, params, model_state, adam, ema, decay, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, adam = optax.adam(learning_rate).update(grad, adam, params)
    params = optax.apply_updates(params, updates)
    ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
    return params, new_state, adam, ema


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    stash = optimizer_state["stash"]
    params = current_param_container if stash is None else stash
    params, model_state, adam, ema = _step(workload, hyperparameters.learning_rate, params,
                                           model_state, optimizer_state["adam"],
                                           optimizer_state["ema"], hyperparameters.ema_decay,
                                           batch, rng)
    return {"adam": adam, "ema": ema, "stash": None}, params, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    state = dict(optimizer_state, stash=current_param_container)
    return state, optimizer_state["ema"], model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
