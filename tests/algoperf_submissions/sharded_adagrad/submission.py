"""AlgoPerf-format test submission built on AlgoPerf's helper modules: `param_utils` types
the parameters (weight decay on weight matrices only, not on biases), `jax_sharding_utils`
replicates the optimizer state, shards the batch along its leading axis and gives the jitted
step its shardings. Adagrad with decoupled weight decay."""

import jax
import jax.numpy as jnp
import optax

from algoperf import jax_sharding_utils, param_utils, spec


def get_batch_size(workload_name):
    return 1024


def _decay_mask(workload):
    kinds = param_utils.jax_param_types(workload.param_shapes)
    return jax.tree.map(lambda k: k in (spec.ParameterType.WEIGHT, spec.ParameterType.CONV_WEIGHT),
                        kinds)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    tx = optax.chain(optax.adagrad(hyperparameters.learning_rate),
                     optax.add_decayed_weights(-hyperparameters.weight_decay,
                                               mask=_decay_mask(workload)))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape_tuple), workload.param_shapes)
    return jax_sharding_utils.replicate(tx.init(zeros)), tx.update


def _step(workload, update_fn, params, model_state, opt_state, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = update_fn(grad, opt_state, params)
    return optax.apply_updates(params, updates), new_state, opt_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    opt_state, update_fn = optimizer_state
    replicated = jax_sharding_utils.get_replicate_sharding()
    step = jax.jit(_step, static_argnums=(0, 1),
                   in_shardings=(replicated, replicated, replicated,
                                 jax_sharding_utils.get_batch_dim_sharding(), replicated),
                   out_shardings=replicated)
    params, model_state, opt_state = step(workload, update_fn, current_param_container,
                                          model_state, opt_state, batch, rng)
    return (opt_state, update_fn), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return jax_sharding_utils.shard_along_batch_dim(next(input_queue))
