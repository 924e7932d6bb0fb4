"""AlgoPerf-format test submission, self-tuning and pmap-era: Lion with fixed
hyperparameters chosen from the workload's step hint (no hparams.json, no search space), its
update pmapped over a named device axis that it averages gradients over."""

import functools

import jax
import optax

from algoperf import spec


def get_batch_size(workload_name):
    return 256


def _hparams(workload):
    # self-tuning: the file decides, here from the workload's own step budget
    return {"learning_rate": 3e-3 if workload.step_hint <= 1000 else 1e-3, "b1": 0.9, "b2": 0.99}


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    assert hyperparameters is None
    hp = _hparams(workload)
    opt = optax.lion(hp["learning_rate"], b1=hp["b1"], b2=hp["b2"])
    state = jax.pmap(opt.init)(model_params)
    return state, opt.update


@functools.partial(jax.pmap, axis_name="batch", static_broadcasted_argnums=(0, 1))
def _step(workload, update, params, model_state, state, batch, rng):
    def loss(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_model_state), grads = jax.value_and_grad(loss, has_aux=True)(params)
    grads = jax.lax.pmean(grads, axis_name="batch")
    updates, state = update(grads, state, params)
    return optax.apply_updates(params, updates), new_model_state, state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state
    rngs = jax.random.split(rng, jax.local_device_count())
    params, new_model_state, state = _step(workload, update, current_param_container, model_state,
                                           state, batch, rngs)
    return (state, update), params, new_model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
