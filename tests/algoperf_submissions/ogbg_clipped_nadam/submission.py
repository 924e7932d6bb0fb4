"""AlgoPerf-format test submission in the style of AlgoPerf's target-setting algorithms: a
batch-size table by AlgoPerf workload name that knows ogbg and a few large workloads but not
mnist or cifar; NAdam with gradient clipping and decoupled weight decay under a linear warmup;
sigmoid label smoothing and the dropout rate from the hyperparameters; the step jitted with
jax_sharding_utils' shardings; and a Python branch on global_step for logging (so it trains
in the runner's concrete-step mode)."""

import jax
import jax.numpy as jnp
import optax

from algoperf import jax_sharding_utils, param_utils, spec

BATCH_SIZES = {"ogbg": 16, "imagenet_vit": 1024, "wmt": 128, "criteo1tb": 262_144}


def get_batch_size(workload_name):
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return BATCH_SIZES[workload_name]


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    kinds = param_utils.jax_param_types(workload.param_shapes)
    assert jax.tree.structure(kinds) == jax.tree.structure(model_params)
    warmup = optax.linear_schedule(0.0, hyperparameters.learning_rate,
                                   hyperparameters.warmup_steps)
    tx = optax.chain(optax.clip_by_global_norm(hyperparameters.grad_clip),
                     optax.scale_by_adam(b1=hyperparameters.beta1, b2=hyperparameters.beta2,
                                         nesterov=True),
                     optax.add_decayed_weights(hyperparameters.weight_decay),
                     optax.scale_by_schedule(lambda n: -warmup(n)))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return tx.init(zeros), tx.update


def _step(workload, update_fn, model_state, opt_state, params, batch, rng, smoothing, dropout):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True, dropout_rate=dropout)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"], smoothing)
        return out["summed"] / out["n_valid_examples"], new_state

    (loss, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = update_fn(grad, opt_state, params)
    return opt_state, optax.apply_updates(params, updates), new_state, loss


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    del current_params_types, eval_results, train_state
    assert loss_type is spec.LossType.SIGMOID_CROSS_ENTROPY
    opt_state, update_fn = optimizer_state
    replicated = jax_sharding_utils.get_replicate_sharding()
    step = jax.jit(_step, static_argnums=(0, 1, 8),
                   in_shardings=(replicated, replicated, replicated,
                                 jax_sharding_utils.get_batch_dim_sharding(), replicated, replicated))
    opt_state, params, model_state, loss = step(
        workload, update_fn, model_state, opt_state, current_param_container, batch, rng,
        hyperparameters.label_smoothing, hyperparameters.dropout_rate)
    if global_step <= 2 and workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics({"loss": float(loss)}, global_step)
    return (opt_state, update_fn), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
