"""Heavy-ball SGD, momentum 0.97, with global-norm gradient clipping (Ciuca's optimizer)."""

import jax
import optax


def _optimizer(hparams):
    return optax.chain(optax.clip_by_global_norm(hparams["clip_norm"]),
                       optax.sgd(hparams["learning_rate"], momentum=hparams["momentum"]))


def init_optimizer_state(workload, params, model_state, hparams, rng):
    return _optimizer(hparams).init(params)


def update_params(workload, params, model_state, opt_state, batch, hparams, step, rng):
    def loss_fn(p):
        return workload.loss(p, model_state, batch, train=True, rng=rng)

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = _optimizer(hparams).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_model_state, opt_state, {"loss": loss}


def get_batch_size(workload_name):
    return None


def data_selection(workload, next_batch, opt_state, params, model_state, hparams, step, rng):
    return next_batch(rng)
