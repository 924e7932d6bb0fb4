"""AlgoPerf-format test submission that writes and reads its own checkpoints with flax, to
the absolute folder /tmp/curvebench_test_restarts as a published self-tuning file does (to
/tmp): it saves the initial parameters there, and at step `restart_at` restores them and
restarts Adam at a lower rate. The runner must keep these files in the submission's own folder
(`harness.algoperf.own_files`), never the shared /tmp or the working folder."""

import jax
import optax
from flax.training import checkpoints

from algoperf import spec

FOLDER = "/tmp/curvebench_test_restarts"


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    checkpoints.save_checkpoint(FOLDER, target={"params": model_params}, step=0, overwrite=True)
    return optax.adam(hyperparameters.learning_rate).init(model_params)


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    params, lr = current_param_container, hyperparameters.learning_rate
    if global_step >= hyperparameters.restart_at:
        lr = lr / 2
    if global_step == hyperparameters.restart_at:
        params = checkpoints.restore_checkpoint(FOLDER, target={"params": params})["params"]
        optimizer_state = optax.adam(lr).init(params)

    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, optimizer_state = optax.adam(lr).update(grad, optimizer_state, params)
    return optimizer_state, optax.apply_updates(params, updates), new_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
