"""AlgoPerf-format test submission whose optimizer state is a custom pytree node: a class
registered with `jax.tree_util.register_pytree_node_class` holding Adam's moments and step
count (arrays) and its betas (static auxiliary data). Its leaves are arrays, so it trains
inside the runner's compiled chunks."""

import jax
import jax.numpy as jnp
import optax

from algoperf import spec


@jax.tree_util.register_pytree_node_class
class AdamMoments:
    def __init__(self, mu, nu, count, betas):
        self.mu, self.nu, self.count, self.betas = mu, nu, count, betas

    def tree_flatten(self):
        return (self.mu, self.nu, self.count), self.betas

    @classmethod
    def tree_unflatten(cls, betas, children):
        return cls(*children, betas)


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    zeros = jax.tree.map(jnp.zeros_like, model_params)
    return AdamMoments(zeros, zeros, jnp.zeros((), jnp.int32),
                       (hyperparameters.beta1, hyperparameters.beta2))


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(current_param_container)
    b1, b2 = optimizer_state.betas
    count = optimizer_state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, optimizer_state.mu, grad)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, optimizer_state.nu, grad)
    c1, c2 = 1 - b1 ** count, 1 - b2 ** count
    params = jax.tree.map(
        lambda p, m, v: p - hyperparameters.learning_rate * (m / c1) / (jnp.sqrt(v / c2) + 1e-8),
        current_param_container, mu, nu)
    return AdamMoments(mu, nu, count, optimizer_state.betas), params, new_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
