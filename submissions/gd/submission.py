"""Gradient descent with an optional linear warmup and cosine decay (Young, Snider & Feng §3's "GD" and
"warmup GD"). warmup_steps = decay_steps = 0 is plain GD at a constant learning rate; on the
toy workloads the default batch is the whole training set, so this is full-batch GD."""

import jax
import optax


def _schedule(hparams):
    peak = hparams["learning_rate"]
    warmup, decay = int(hparams["warmup_steps"]), int(hparams["decay_steps"])
    main = (optax.cosine_decay_schedule(peak, decay, hparams["final_lr_fraction"]) if decay
            else optax.constant_schedule(peak))
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def init_optimizer_state(workload, params, model_state, hparams, rng):
    return optax.sgd(_schedule(hparams)).init(params)


def update_params(workload, params, model_state, opt_state, batch, hparams, step, rng):
    def loss_fn(p):
        return workload.loss(p, model_state, batch, train=True, rng=rng)

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optax.sgd(_schedule(hparams)).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_model_state, opt_state, {"loss": loss}


def get_batch_size(workload_name):
    return None


def data_selection(workload, next_batch, opt_state, params, model_state, hparams, step, rng):
    return next_batch(rng)
