"""AlgoPerf-format test submission whose optimizer state is a plain Python object (a class
not registered as a pytree, so JAX sees one opaque leaf) replaced every step: it holds
RMSProp's second moments and a Python step counter that selects a halving of the rate every
`halve_every` steps. Its new value each step is a Python object, which cannot travel through a
compiled chunk, so it trains in the runner's concrete-step mode."""

import functools

import jax
import jax.numpy as jnp

from algoperf import spec


class RmsState:
    def __init__(self, nu, steps):
        self.nu, self.steps = nu, steps


def get_batch_size(workload_name):
    return 1024


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return RmsState(jax.tree.map(jnp.zeros_like, model_params), 0)




@functools.partial(jax.jit, static_argnums=0)
def _grad(workload, params, model_state, batch, rng):
    def loss_fn(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, update_batch_norm=True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grad = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grad, new_state


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    grad, new_state = _grad(workload, current_param_container, model_state, batch, rng)
    steps = optimizer_state.steps + 1
    lr = hyperparameters.learning_rate * 0.5 ** (steps // hyperparameters.halve_every)
    nu = jax.tree.map(lambda v, g: 0.9 * v + 0.1 * g * g, optimizer_state.nu, grad)
    params = jax.tree.map(lambda p, g, v: p - lr * g / (jnp.sqrt(v) + 1e-6),
                          current_param_container, grad, nu)
    return RmsState(nu, steps), params, new_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
