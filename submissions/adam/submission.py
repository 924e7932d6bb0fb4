"""Adam (optax.adam): the optimizer of Young, Snider & Feng's MNIST MLP baseline, lr 1e-3, batch 1024."""

import jax
import optax


def _optimizer(hparams):
    return optax.adam(hparams["learning_rate"], b1=hparams["beta1"], b2=hparams["beta2"],
                      eps=hparams["epsilon"])


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
