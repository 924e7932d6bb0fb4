"""NAdamW (optax.nadamw) with linear warmup and cosine decay (optax.warmup_cosine_decay_schedule):
the suite's own form of AlgoPerf's NAdamW baseline. Warmup lasts warmup_factor x the workload's
step hint (its `step_hint` where it has one, else its step budget `max_steps`), then the rate
decays to 0 over the rest of it. The same algorithm in AlgoPerf's format is
algoperf_nadamw."""

import jax
import optax


def _optimizer(workload, hparams):
    total = int(getattr(workload, "step_hint", workload.max_steps))
    warmup = int(hparams["warmup_factor"] * total)
    schedule = optax.warmup_cosine_decay_schedule(0.0, hparams["learning_rate"], max(warmup, 1),
                                                  max(total, warmup + 1))
    return optax.nadamw(schedule, b1=1.0 - hparams["one_minus_beta1"], b2=hparams["beta2"],
                       eps=hparams["epsilon"], weight_decay=hparams["weight_decay"])


def init_optimizer_state(workload, params, model_state, hparams, rng):
    return _optimizer(workload, hparams).init(params)


def update_params(workload, params, model_state, opt_state, batch, hparams, step, rng):
    def loss_fn(p):
        return workload.loss(p, model_state, batch, train=True, rng=rng)

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = _optimizer(workload, hparams).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_model_state, opt_state, {"loss": loss}


def get_batch_size(workload_name):
    return None


def data_selection(workload, next_batch, opt_state, params, model_state, hparams, step, rng):
    return next_batch(rng)
