"""Curvature matrix-vector products on a fixed curvature batch (Young, Snider & Feng §2.1).

Each builder returns a linear map on *flat* parameter vectors (the order of
`jax.flatten_util.ravel_pytree(params)`), so Lanczos, power iteration and
Hutchinson work on plain vectors:

* `hessian_matvec`: H v of the mean loss over the curvature batch S,
  forward-over-reverse (jvp of grad), summed over physical batches and divided
  by the number of real examples, so it equals the Hessian of one big batch.
* `ggn_matvec`: the generalized Gauss-Newton J^T H_z J v (jvp through the
  model, loss Hessian in output space, vjp back), same averaging.
* `covariance_matvec`: gradient covariance from L mini-batch gradients G
  (rows g_l): uncentered Σ v = G^T G v / L, centered K v = Gc^T Gc v / L with
  Gc = G - mean row.

Policy for batch norm and dropout (`OperatorPolicy`), fixed for one snapshot:
the model runs in training mode by default (batch norm normalises with the
statistics of each physical batch, whose composition is fixed; the running
averages are neither used nor updated) and dropout draws its masks from a
key fixed per physical batch, so every product in a snapshot applies the same
operator. `train=False` instead uses running averages and no dropout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from harness.spec import Workload

Matvec = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class OperatorPolicy:
    """How the model is run while a curvature operator is applied (see module docstring)."""

    train: bool = True
    rng_seed: int = 0
    #: True: loop over physical batches in Python inside the trace (unrolled; needed for
    #: conv nets on XLA:CPU, where a rolled loop is slow). False: one rolled lax.scan.
    unroll: bool = False


def make_physical_batches(split: Mapping[str, np.ndarray], size: int | None, batch_size: int,
                          seed: int, *, whole_batches: bool = False) -> dict[str, np.ndarray]:
    """A fixed subset of `size` examples of a split, stacked as (num_batches, batch_size, ...).

    Examples are drawn without replacement (all of them if the split is smaller, or
    `size` is None: the whole split, in its order). The last physical batch is padded
    with mask 0 so every batch has one shape, unless `whole_batches`: then the subset is
    cut to a whole number of physical batches (the draw's last examples are dropped), as
    a model with batch norm in training mode must never see padding rows — they would
    enter its batch statistics and change every real example's output.
    """
    if (size is not None and size < 1) or batch_size < 1:
        raise ValueError(f"curvature batch size {size} and physical batch size {batch_size} "
                         "must both be >= 1")
    n = len(next(iter(split.values())))
    if n == 0:
        raise ValueError("cannot build a curvature batch from an empty split")
    take = n if size is None else min(size, n)
    batch_size = min(batch_size, take)
    if whole_batches:
        take -= take % batch_size
    order = np.arange(n) if size is None else np.random.default_rng(seed).permutation(n)
    idx = np.sort(order[:take])
    num_batches = -(-take // batch_size)
    padded = num_batches * batch_size
    out = {}
    for key, value in split.items():
        rows = np.asarray(value)[idx]
        pad = np.zeros((padded - take,) + rows.shape[1:], rows.dtype)
        out[key] = np.concatenate([rows, pad]).reshape((num_batches, batch_size) + rows.shape[1:])
    mask = np.zeros(padded, np.float32)
    mask[:take] = 1.0
    out["mask"] = mask.reshape(num_batches, batch_size)
    return out


def batch_at(batches: Mapping[str, Any], b: int) -> dict[str, Any]:
    """Physical batch b of stacked batches (any pytree leaves, e.g. a padded GraphsTuple)."""
    return {k: jax.tree_util.tree_map(lambda x: x[b], v) for k, v in batches.items()}


def _sum_over_batches(fn: Callable[[Any, jax.Array], Any], batches: Mapping[str, jax.Array],
                      unroll: bool) -> Any:
    """Σ_b fn(batch_b, b) over the leading axis of `batches` (a pytree of equal-size results).

    This is how a product over a whole split works: the batches are accumulated inside
    one product (one rolled scan, or an unrolled sum), never as separate operators.
    """
    num = batches["mask"].shape[0]
    if unroll:
        total = None
        for b in range(num):
            out = fn(batch_at(batches, b), jnp.asarray(b))
            total = out if total is None else jax.tree_util.tree_map(jnp.add, total, out)
        return total
    first = fn(batch_at(batches, 0), jnp.asarray(0))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, first)

    def body(acc, xs):
        batch, b = xs
        return jax.tree_util.tree_map(jnp.add, acc, fn(batch, b)), None

    total, _ = jax.lax.scan(body, zeros, (dict(batches), jnp.arange(num)))
    return total


def _batch_rng(policy: OperatorPolicy, b: jax.Array) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(policy.rng_seed), b)


def _outputs_fn(workload: Workload, model_state: Any, batch: Mapping[str, jax.Array],
                policy: OperatorPolicy, b: jax.Array) -> Callable[[Any], jax.Array]:
    """params -> model outputs on one physical batch under the snapshot policy."""
    rng = _batch_rng(policy, b)

    def outputs(params):
        out, _ = workload.apply(params, model_state, batch["inputs"], train=policy.train, rng=rng)
        return out

    return outputs


def _loss_sum_fn(workload: Workload, model_state: Any, batch: Mapping[str, jax.Array],
                 policy: OperatorPolicy, b: jax.Array) -> Callable[[Any], jax.Array]:
    """params -> sum of per-example losses of one physical batch (padding contributes 0)."""
    outputs = _outputs_fn(workload, model_state, batch, policy, b)
    return lambda params: workload.loss_per_example(outputs(params), batch).sum()


def loss_normalizer(workload: Workload, batches: Mapping[str, jax.Array]) -> jax.Array:
    """What the summed losses of stacked physical batches are divided by: Σ_b of the
    workload's `loss_normalizer` (the number of real examples by default; the number of
    measured labels for ogbg), so the operators are those of the workload's own mean loss."""
    num = batches["mask"].shape[0]
    total = sum(workload.loss_normalizer(batch_at(batches, b)) for b in range(num))
    return jnp.maximum(total, 1.0)


def loss_and_gradient(workload: Workload, params: Any, model_state: Any,
                      batches: Mapping[str, jax.Array], policy: OperatorPolicy
                      ) -> tuple[jax.Array, jax.Array]:
    """Mean loss over the curvature batch and its flat gradient."""

    def one(batch, b):
        return jax.value_and_grad(_loss_sum_fn(workload, model_state, batch, policy, b))(params)

    loss, grads = _sum_over_batches(one, batches, policy.unroll)
    count = loss_normalizer(workload, batches)
    return loss / count, ravel_pytree(grads)[0] / count


def _averaged_matvec(workload: Workload, params: Any, batches: Mapping[str, jax.Array],
                     policy: OperatorPolicy,
                     product: Callable[[Mapping[str, jax.Array], jax.Array, Any], Any]) -> Matvec:
    """v -> (Σ_b product(batch_b, b, tangent)) / normalizer on flat vectors (shared by H and GGN)."""
    unravel = ravel_pytree(params)[1]
    count = loss_normalizer(workload, batches)

    def matvec(v):
        tangent = unravel(v)
        total = _sum_over_batches(lambda batch, b: product(batch, b, tangent), batches, policy.unroll)
        return ravel_pytree(total)[0] / count

    return matvec


def hessian_matvec(workload: Workload, params: Any, model_state: Any,
                   batches: Mapping[str, jax.Array], policy: OperatorPolicy) -> Matvec:
    """v -> H v for the mean loss over all real examples of `batches` (forward-over-reverse)."""

    def product(batch, b, tangent):
        grad_fn = jax.grad(_loss_sum_fn(workload, model_state, batch, policy, b))
        return jax.jvp(grad_fn, (params,), (tangent,))[1]

    return _averaged_matvec(workload, params, batches, policy, product)


def ggn_matvec(workload: Workload, params: Any, model_state: Any,
               batches: Mapping[str, jax.Array], policy: OperatorPolicy) -> Matvec:
    """v -> J^T H_z J v, H_z the Hessian of the summed loss w.r.t. the model outputs."""

    def product(batch, b, tangent):
        outputs = _outputs_fn(workload, model_state, batch, policy, b)
        z, jv = jax.jvp(outputs, (params,), (tangent,))
        hjv = jax.jvp(jax.grad(lambda zz: workload.loss_per_example(zz, batch).sum()), (z,), (jv,))[1]
        return jax.vjp(outputs, params)[1](hjv)[0]

    return _averaged_matvec(workload, params, batches, policy, product)


def minibatch_gradients(workload: Workload, params: Any, model_state: Any,
                        minibatches: Mapping[str, jax.Array], policy: OperatorPolicy) -> jax.Array:
    """Flat mean-loss gradient of each mini-batch: an (L, n) matrix G (Jastrzębski et al. (2020) App. C)."""

    def one(batch, b):
        loss_sum = _loss_sum_fn(workload, model_state, batch, policy, b)
        grad = ravel_pytree(jax.grad(loss_sum)(params))[0]
        return grad / jnp.maximum(workload.loss_normalizer(batch), 1.0)

    num = minibatches["mask"].shape[0]
    if policy.unroll:
        return jnp.stack([one(batch_at(minibatches, b), jnp.asarray(b)) for b in range(num)])
    return jax.lax.map(lambda xs: one(*xs), (dict(minibatches), jnp.arange(num)))


def covariance_matvec(gradients: jax.Array, centered: bool) -> Matvec:
    """v -> Σ v = G^T G v / L (uncentered) or K v = Gc^T Gc v / L (centered), G = (L, n)."""
    g = gradients - gradients.mean(0) if centered else gradients
    num = gradients.shape[0]
    return lambda v: g.T @ (g @ v.astype(g.dtype)) / num
