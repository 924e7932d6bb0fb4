"""Convolution as patches x kernel (workloads/im2col.py) against lax's convolution: the same
values and the same derivatives, and the CIFAR workloads' curvature form built on it."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.flatten_util import ravel_pytree

from harness.curvature import SnapshotConfig, Snapshotter
from harness.curvature.operators import OperatorPolicy, hessian_matvec, loss_and_gradient
from workloads import get_workload
from workloads.im2col import im2col_conv

DN = ("NHWC", "HWIO", "NHWC")


def _random_init(workload, seed: int, scale: float = 0.1):
    """Parameters and model state of the workload's shapes, drawn by numpy: no compiled
    initializer (flax's, with its random number generator, takes seconds to compile on CPU)."""
    shapes = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(scale * rng.standard_normal(s.shape), s.dtype), shapes[0])
    state = jax.tree_util.tree_map(lambda s: jnp.ones(s.shape, s.dtype), shapes[1])
    return params, state


def _arrays(seed: int, lhs_shape, rhs_shape, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.standard_normal(lhs_shape), dtype),
            jnp.asarray(rng.standard_normal(rhs_shape), dtype))


@pytest.mark.parametrize("kernel,strides,padding", [
    ((3, 3), (1, 1), "SAME"), ((3, 3), (1, 1), "VALID"), ((3, 3), (2, 2), "SAME"),
    ((1, 1), (2, 2), "VALID"), ((2, 3), (1, 2), ((1, 0), (2, 1))), ((3, 3), (1, 1), ((-1, 1), (0, -1))),
])
def test_values_and_derivatives_equal_lax_convolution(kernel, strides, padding):
    with jax.enable_x64(True):
        x, k = _arrays(0, (2, 7, 9, 3), kernel + (3, 4))

        def conv(fn):
            return lambda x, k: fn(x, k, strides, padding, dimension_numbers=DN)

        mine, ref = conv(im2col_conv), conv(lax.conv_general_dilated)
        np.testing.assert_allclose(mine(x, k), ref(x, k), rtol=1e-12, atol=1e-12)
        dx, dk = _arrays(1, x.shape, k.shape)

        def hvp(fn):  # forward-over-reverse of a non-quadratic function of the output
            grad = jax.grad(lambda x, k: jnp.sum(jnp.tanh(fn(x, k))), argnums=(0, 1))
            return jax.jvp(grad, (x, k), (dx, dk))[1]

        for a, b in zip(hvp(mine), hvp(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_unhandled_cases_are_lax_convolution_itself():
    x, k = _arrays(2, (1, 8, 8, 4), (3, 3, 4, 6), np.float32)
    for kwargs, kernel in (({"rhs_dilation": (2, 2)}, k), ({"feature_group_count": 2}, k[:, :, :2])):
        args = (x, kernel, (1, 1), "SAME")
        np.testing.assert_array_equal(
            im2col_conv(*args, dimension_numbers=DN, **kwargs),
            lax.conv_general_dilated(*args, dimension_numbers=DN, **kwargs))
    nchw, oihw = jnp.transpose(x, (0, 3, 1, 2)), _arrays(3, (6, 4, 3, 3), (1,), np.float32)[0]
    np.testing.assert_array_equal(im2col_conv(nchw, oihw, (1, 1), "SAME"),
                                  lax.conv_general_dilated(nchw, oihw, (1, 1), "SAME"))


@pytest.mark.parametrize("spec", ["cifar_simplecnn:width=0.25,batchnorm=1"])
def test_curvature_form_is_the_same_loss_with_the_same_hessian(spec):
    workload = get_workload(spec)
    form = workload.for_curvature()
    if jax.default_backend() == "cpu":
        assert form.conv is im2col_conv and not form.slow_in_cpu_loops
        assert workload.slow_in_cpu_loops and workload.conv is lax.conv_general_dilated
    with jax.enable_x64(True):
        params, state = _random_init(workload, 0)
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
        split = workload.synthetic_dataset({"x": 6}, 0).splits["x"]
        batches = {"inputs": jnp.asarray(split["inputs"], jnp.float64)[None],
                   "targets": jnp.asarray(split["targets"])[None], "mask": jnp.ones((1, 6))}
        policy = OperatorPolicy(train=True, rng_seed=0)
        (loss_a, grad_a), (loss_b, grad_b) = (
            jax.jit(lambda p, w=w: loss_and_gradient(w, p, state, batches, policy))(params)
            for w in (workload, form))
        np.testing.assert_allclose(loss_a, loss_b, rtol=1e-12)
        np.testing.assert_allclose(grad_a, grad_b, rtol=1e-9, atol=1e-12)
        flat, _ = ravel_pytree(params)
        v = jnp.asarray(np.random.default_rng(4).standard_normal(flat.shape))
        ha, hb = (jax.jit(lambda p, v, w=w: hessian_matvec(w, p, state, batches, policy)(v))(params, v)
                  for w in (workload, form))
        np.testing.assert_allclose(ha, hb, rtol=1e-8, atol=1e-10 * float(jnp.abs(ha).max()))


def test_snapshot_of_a_conv_net_runs_its_lanczos_as_one_compiled_loop_on_cpu():
    workload = get_workload("cifar_simplecnn:width=0.25")
    data = workload.synthetic_dataset({"train": 16}, 0)
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=16, lanczos_order=8, trace_probes=0,
                            top_k=(1, 5), ritz_vectors=1)
    snapper = Snapshotter(workload, data, config, batch_size=8)
    assert snapper.host_loop is False
    params, state = _random_init(workload, 1)
    (result,) = snapper.snapshot(params, state)
    # the stored top Ritz pair against the compiled product itself: ‖Hy - θy‖ is the stored residual
    y = jnp.asarray(result.arrays["ritz_vectors"][0])
    theta = result.metrics["max_eig"]
    hy = snapper._fn("matvec", None, jnp.float32, jnp.float32, base="hessian")(
        params, state, snapper.batches, y)
    top = int(np.argmax(result.arrays["ritz_values"]))
    np.testing.assert_allclose(float(jnp.linalg.norm(hy - theta * y)),
                               result.arrays["ritz_residuals"][top], rtol=0.05, atol=1e-4 * abs(theta))
