"""AlgoPerf-format test submission that keeps its own checkpoint with pickle under a relative
path (best_params.pkl, i.e. in the working folder under AlgoPerf's runner): every
`save_every` steps it pickles the parameters with the lowest batch loss so far, and
prepare_for_eval reads them back and evaluates them. The runner must put that file in the
submission's own folder, never the user's working folder."""

import pickle

import jax
import numpy as np
import optax

from algoperf import spec

PATH = "best_params.pkl"


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"adam": optax.adam(hyperparameters.learning_rate).init(model_params),
            "best_loss": np.inf}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (loss, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(current_param_container)
    best = optimizer_state["best_loss"]
    if global_step % hyperparameters.save_every == 0 and float(loss) < best:
        best = float(loss)
        with open(PATH, "wb") as f:
            pickle.dump(jax.device_get(current_param_container), f)
    updates, adam = optax.adam(hyperparameters.learning_rate).update(
        grad, optimizer_state["adam"], current_param_container)
    return ({"adam": adam, "best_loss": best}, optax.apply_updates(current_param_container, updates),
            new_state)


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    with open(PATH, "rb") as f:
        best = jax.tree.map(jax.numpy.asarray, pickle.load(f))
    return optimizer_state, best, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
