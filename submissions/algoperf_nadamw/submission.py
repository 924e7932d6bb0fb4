"""NAdamW with linear warmup and cosine decay in AlgoPerf's submission format (written against
the `algoperf` API, run unmodified through harness.algoperf): the same algorithm as
nadamw, tuned from tuning_search_space.json (AlgoPerf's baseline search space without
dropout, which the suite's workloads do not have). Warmup lasts warmup_factor x
workload.step_hint; the update is one jitted step on replicated parameters and a batch split
along its leading axis."""

import jax
import jax.numpy as jnp
import optax

from algoperf import jax_sharding_utils, spec


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_params, model_state, rng
    total = workload.step_hint
    warmup = int(hyperparameters.warmup_factor * total)
    schedule = optax.warmup_cosine_decay_schedule(0.0, hyperparameters.learning_rate,
                                                  max(warmup, 1), max(total, warmup + 1))
    opt_init_fn, opt_update_fn = optax.nadamw(schedule, b1=1.0 - hyperparameters.one_minus_beta1,
                                             b2=hyperparameters.beta2, eps=1e-8,
                                             weight_decay=hyperparameters.weight_decay)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return opt_init_fn(zeros), opt_update_fn


def train_step(workload, opt_update_fn, model_state, optimizer_state, params, batch, rng,
               label_smoothing):
    def loss_fn(p):
        logits, new_model_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                                    rng, update_batch_norm=True, dropout_rate=0.0)
        losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"), label_smoothing)
        return losses["summed"] / losses["n_valid_examples"], new_model_state

    (_, new_model_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, new_optimizer_state = opt_update_fn(grad, optimizer_state, params)
    return new_optimizer_state, optax.apply_updates(params, updates), new_model_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_params_types, loss_type, eval_results, global_step, train_state
    optimizer_state, opt_update_fn = optimizer_state
    replicated = jax_sharding_utils.get_replicate_sharding()
    sharded = jax_sharding_utils.get_batch_dim_sharding()
    step = jax.jit(train_step, static_argnums=(0, 1),
                   in_shardings=(replicated, replicated, replicated, sharded, replicated, replicated),
                   out_shardings=(replicated, replicated, replicated))
    label_smoothing = getattr(hyperparameters, "label_smoothing", 0.0)
    new_state, params, model_state = step(workload, opt_update_fn, model_state, optimizer_state,
                                          current_param_container, batch, rng, label_smoothing)
    return (new_state, opt_update_fn), params, model_state


def prepare_for_eval(workload, current_param_container, current_params_types, model_state,
                     hyperparameters, loss_type, optimizer_state, eval_results, global_step, rng):
    return optimizer_state, current_param_container, model_state


def get_batch_size(workload_name):
    sizes = {"mnist": 1024, "cifar": 128, "ogbg": 512}
    if workload_name not in sizes:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return sizes[workload_name]


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
