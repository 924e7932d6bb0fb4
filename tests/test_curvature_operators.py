"""Curvature products against dense references (float64), and the batch-norm/dropout policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from curvature_models import BnDropoutMlp, LinearMse, TinyMlp, to_float64
from harness.curvature.operators import (OperatorPolicy, covariance_matvec, ggn_matvec, hessian_matvec,
                                         loss_and_gradient, make_physical_batches, minibatch_gradients)

POLICY = OperatorPolicy(train=False)


def _setup(workload, n=13, physical=5):
    data = workload.synthetic_dataset({"train": n}, seed=3)
    params, state = workload.init(jax.random.PRNGKey(0))
    batches = make_physical_batches(data.splits["train"], n, physical, seed=0)
    batches = {k: (jnp.asarray(v, jnp.float64) if v.dtype == np.float32 else jnp.asarray(v))
               for k, v in batches.items()}
    return data.splits["train"], to_float64(params), to_float64(state), batches


def _dense(matvec, n):
    """The matrix of a linear map, one column per basis vector (vmapped, one compile)."""
    return np.asarray(jax.jit(jax.vmap(matvec))(jnp.eye(n, dtype=jnp.float64))).T


def _mean_loss_fn(workload, state, split):
    inputs = jnp.asarray(split["inputs"], jnp.float64)
    batch = {"targets": jnp.asarray(split["targets"]), "mask": jnp.ones(len(inputs), jnp.float64)}

    def loss(flat, unravel):
        out, _ = workload.apply(unravel(flat), state, inputs, train=False)
        return workload.loss_per_example(out, batch).mean()

    return loss, inputs, batch


@pytest.mark.parametrize("activation,unroll", [
    ("gelu", False),
    # the unrolled sum is also checked against a dense Hessian in test_curvature_exact's whole-split test
    pytest.param("sigmoid", True, marks=pytest.mark.slow)])
def test_hvp_equals_dense_hessian(activation, unroll):
    with jax.enable_x64(True):
        workload = TinyMlp(width=4, activation=activation)
        split, params, state, batches = _setup(workload)
        flat, unravel = ravel_pytree(params)
        loss, *_ = _mean_loss_fn(workload, state, split)
        dense = np.asarray(jax.jit(jax.hessian(lambda f: loss(f, unravel)))(flat))
        policy = OperatorPolicy(train=False, unroll=unroll)
        ours = _dense(hessian_matvec(workload, params, state, batches, policy), flat.size)
        np.testing.assert_allclose(ours, dense, atol=1e-10, rtol=0)


def test_ggn_equals_dense_jt_h_j_and_is_psd():
    with jax.enable_x64(True):
        workload = TinyMlp(width=4, activation="gelu")
        split, params, state, batches = _setup(workload)
        flat, unravel = ravel_pytree(params)
        _, inputs, batch = _mean_loss_fn(workload, state, split)
        outputs = lambda f: workload.apply(unravel(f), state, inputs, train=False)[0]  # noqa: E731
        z = outputs(flat)
        jac = np.asarray(jax.jacobian(outputs)(flat)).reshape(z.size, flat.size)
        hz = np.asarray(jax.hessian(
            lambda zz: workload.loss_per_example(zz.reshape(z.shape), batch).sum())(z.reshape(-1)))
        dense = jac.T @ hz @ jac / len(inputs)
        ours = _dense(jax.jit(ggn_matvec(workload, params, state, batches, POLICY)), flat.size)
        np.testing.assert_allclose(ours, dense, atol=1e-10, rtol=0)
        assert np.linalg.eigvalsh((ours + ours.T) / 2).min() > -1e-10
        hessian = _dense(hessian_matvec(workload, params, state, batches, POLICY), flat.size)
        assert np.abs(hessian - ours).max() > 1e-4, "a nonlinear net's GGN differs from its Hessian"


def test_ggn_equals_hessian_for_linear_model_with_mse():
    with jax.enable_x64(True):
        workload = LinearMse(depth=1)
        _, params, state, batches = _setup(workload)
        n = ravel_pytree(params)[0].size
        ggn = _dense(ggn_matvec(workload, params, state, batches, POLICY), n)
        hessian = _dense(hessian_matvec(workload, params, state, batches, POLICY), n)
        np.testing.assert_allclose(ggn, hessian, atol=1e-10, rtol=0)


def test_physical_batches_pad_and_average_exactly():
    split = {"inputs": np.arange(13, dtype=np.float32)[:, None], "targets": np.arange(13)}
    batches = make_physical_batches(split, 11, 4, seed=0)
    assert batches["inputs"].shape == (3, 4, 1) and batches["mask"].sum() == 11
    assert batches["mask"][-1].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert len(set(batches["inputs"][batches["mask"] > 0, 0].tolist())) == 11
    with pytest.raises(ValueError, match="must both be >= 1"):
        make_physical_batches(split, 0, 4, seed=0)
    with jax.enable_x64(True):
        workload = TinyMlp(width=4, activation="gelu")
        split, params, state, one = _setup(workload, n=13, physical=13)
        _, _, _, many = _setup(workload, n=13, physical=4)
        n = ravel_pytree(params)[0].size
        v = jnp.asarray(np.random.default_rng(0).normal(size=n))
        hvp = jax.jit(lambda b, v: hessian_matvec(workload, params, state, b, POLICY)(v))
        grad = jax.jit(lambda b: loss_and_gradient(workload, params, state, b, POLICY)[1])
        np.testing.assert_allclose(hvp(many, v), hvp(one, v), atol=1e-12)
        np.testing.assert_allclose(grad(many), grad(one), atol=1e-12)


def test_covariance_operators_equal_dense_covariances():
    with jax.enable_x64(True):
        workload = TinyMlp(width=3, activation="gelu")
        split, params, state, _ = _setup(workload, n=40)
        mini = make_physical_batches(split, 40, 8, seed=1)
        grads = np.asarray(minibatch_gradients(workload, params, state, jax.device_put(mini), POLICY))
        assert grads.shape[0] == 5
        n = grads.shape[1]
        centered = grads - grads.mean(0)
        np.testing.assert_allclose(_dense(covariance_matvec(jnp.asarray(grads), False), n),
                                   grads.T @ grads / 5, atol=1e-12)
        np.testing.assert_allclose(_dense(covariance_matvec(jnp.asarray(grads), True), n),
                                   centered.T @ centered / 5, atol=1e-12)


def test_bn_dropout_operator_is_fixed_and_leaves_state_alone():
    """Train-mode policy: per-physical-batch statistics and a fixed dropout key per batch,
    so the product is a fixed symmetric matrix and the running averages are not touched."""
    with jax.enable_x64(True):
        workload = BnDropoutMlp()
        _, params, state, batches = _setup(workload, n=24, physical=8)
        n = ravel_pytree(params)[0].size
        hvp = jax.jit(lambda seed, v: hessian_matvec(
            workload, params, state, batches, OperatorPolicy(train=True, rng_seed=seed))(v))
        u, v = (jnp.asarray(x) for x in np.random.default_rng(0).normal(size=(2, n)))
        hv = hvp(5, v)
        assert float(u @ hv) == pytest.approx(float(v @ hvp(5, u)), rel=1e-10), "a fixed symmetric H"
        np.testing.assert_array_equal(hvp(5, v), hv)
        assert np.abs(hvp(6, v) - hv).max() > 1e-6, "the dropout key is part of the operator"
        policy = OperatorPolicy(train=True, rng_seed=5)
        before = jax.tree_util.tree_map(np.asarray, state)
        loss_and_gradient(workload, params, state, batches, policy)
        jax.tree_util.tree_map(np.testing.assert_array_equal, before,
                               jax.tree_util.tree_map(np.asarray, state))
