"""Snapshots against dense float64 linear algebra on tiny models (with and without batch norm,
non-dividing curvature batches), the exact covariance spectrum, whole-split products, and
snapshots of a graph workload on real molecules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from curvature_models import BnMlp, TinyMlp, to_float64
from harness.curvature import SnapshotConfig, Snapshotter
from harness.curvature.operators import (OperatorPolicy, hessian_matvec, make_physical_batches,
                                         minibatch_gradients)


def _dense_training_hessian(workload, params, state, batches):
    """float64 Hessian of Σ_b Σ_i ℓ_i / N with each physical batch through the model in
    training mode on its real rows only (batch norm sees exactly those rows)."""
    with jax.enable_x64(True):
        params64, state64 = to_float64(params), to_float64(state)
        flat, unravel = ravel_pytree(params64)
        parts = []
        for b in range(batches["mask"].shape[0]):
            real = np.asarray(batches["mask"][b]) > 0
            parts.append({"inputs": jnp.asarray(batches["inputs"][b][real], jnp.float64),
                          "targets": jnp.asarray(batches["targets"][b][real]),
                          "mask": jnp.ones(int(real.sum()), jnp.float64)})
        count = sum(len(p["targets"]) for p in parts)

        def loss(f):
            total = 0.0
            for p in parts:
                out, _ = workload.apply(unravel(f), state64, p["inputs"], train=True,
                                        rng=jax.random.PRNGKey(0))
                total = total + workload.loss_per_example(out, p).sum()
            return total / count

        return np.asarray(jax.hessian(loss)(flat)), count


@pytest.mark.parametrize("workload", [
    pytest.param(TinyMlp(width=4, activation="gelu"), id="mlp", marks=pytest.mark.slow),  # ~34 s
    pytest.param(BnMlp(), id="batchnorm")])
def test_full_order_snapshot_matches_dense_eigh_with_a_non_dividing_batch(workload):
    """21 examples in physical batches of 8: the MLP pads the last batch (padding adds
    nothing), the batch-norm net uses whole batches only (16 examples), since padding
    rows would enter its batch statistics."""
    data = workload.synthetic_dataset({"train": 40}, seed=1)
    params, state = workload.init(jax.random.PRNGKey(0))
    dim = ravel_pytree(params)[0].size
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=21, physical_batch=8,
                            lanczos_order=dim, top_k=(1, 5), trace_probes=2)
    snapper = Snapshotter(workload, data, config, batch_size=8)
    batches = jax.device_get(snapper.batches)
    dense, count = _dense_training_hessian(workload, params, state, batches)
    assert count == (16 if workload.name == "bn_mlp" else 21)
    exact = np.linalg.eigvalsh(dense)
    (snap,) = snapper.snapshot(params, state)
    m = snap.metrics
    scale = np.abs(exact).max()
    assert m["curvature_examples"] == count
    np.testing.assert_allclose(np.sort(snap.arrays["ritz_values"]), exact, atol=2e-5 * scale)
    assert m["max_eig"] == pytest.approx(exact[-1], rel=1e-5) and m["max_eig_converged"] == 1.0
    assert m["min_eig"] == pytest.approx(exact[0], abs=2e-5 * scale)
    assert m["trace"] == pytest.approx(np.trace(dense), rel=1e-4), "full order: the trace is exact"
    assert m["ter_5"] == pytest.approx(np.trace(dense) / exact[-5:].sum(), rel=1e-4)
    assert m["mer_5"] == pytest.approx(exact[-1] / exact[-5], rel=1e-4)


def test_cov_spectrum_equals_the_gram_eigenvalues():
    """All L eigenvalues of Σ (and of K) and the exact trace come from the Gram matrix."""
    w = TinyMlp(width=4, activation="gelu")
    data = w.synthetic_dataset({"train": 60}, seed=2)
    params, state = w.init(jax.random.PRNGKey(1))
    for centered in (False, True):
        config = SnapshotConfig(kinds=("cov",), cov_batches=6, cov_batch_size=5,
                                cov_centered=centered, top_k=(1, 5), lanczos_order=8)
        snapper = Snapshotter(w, data, config, batch_size=8)
        (snap,) = snapper.snapshot(params, state)
        g = np.asarray(minibatch_gradients(w, params, state, snapper.minibatches,
                                           OperatorPolicy(train=True, rng_seed=0)), np.float64)
        if centered:
            g = g - g.mean(0)
        dense = g.T @ g / len(g)
        exact = np.sort(np.linalg.eigvalsh(dense))[::-1][:len(g)]
        ours = snap.arrays["cov_eigenvalues"]
        rank = 5 if centered else 6
        np.testing.assert_allclose(ours[:rank], exact[:rank], rtol=1e-6)
        m = snap.metrics
        assert m["trace"] == pytest.approx(np.trace(dense), rel=1e-6)
        assert m["max_eig"] == pytest.approx(exact[0], rel=1e-6) and m["min_eig"] == 0.0
        assert m["pnr"] == float("inf"), "a covariance is PSD: no negative mass"
        # PGR-5 against the dense projection onto Σ's eigenvectors
        lam, vecs = np.linalg.eigh(dense)
        vecs = vecs[:, np.argsort(lam)[::-1][:rank]]
        grad = np.asarray(snapper._fn("grad")(params, state, snapper.batches)[1], np.float64)
        coords = vecs.T @ grad
        assert m["pgr_5"] == pytest.approx(np.linalg.norm(coords[:5]) / np.linalg.norm(coords), rel=1e-5)
        if centered:
            assert m["gram_lambda_1"] == pytest.approx(m["max_eig"], rel=1e-9), "λ_K^1 is K's top"


def test_whole_split_product_equals_the_dense_product_over_the_split():
    w = TinyMlp(width=3, activation="sigmoid")
    split = w.synthetic_dataset({"train": 19}, seed=4).splits["train"]
    params, state = w.init(jax.random.PRNGKey(2))
    with jax.enable_x64(True):
        batches = make_physical_batches(split, None, 4, seed=0)
        assert batches["mask"].sum() == 19
        np.testing.assert_array_equal(batches["inputs"].reshape(-1, 6)[:19], split["inputs"])
        batches = {k: (jnp.asarray(v, jnp.float64) if v.dtype == np.float32 else jnp.asarray(v))
                   for k, v in batches.items()}
        p64 = to_float64(params)
        flat, unravel = ravel_pytree(p64)
        inputs = jnp.asarray(split["inputs"], jnp.float64)
        full = {"targets": jnp.asarray(split["targets"]), "mask": jnp.ones(19, jnp.float64)}

        def loss(f):
            out, _ = w.apply(unravel(f), state, inputs, train=False)
            return w.loss_per_example(out, full).mean()

        dense = np.asarray(jax.hessian(loss)(flat))
        for unroll in (False, True):
            mv = jax.jit(jax.vmap(hessian_matvec(w, p64, state, batches, OperatorPolicy(train=False,
                                                                                        unroll=unroll))))
            np.testing.assert_allclose(np.asarray(mv(jnp.eye(flat.size))).T, dense, atol=1e-11)
    (snap,) = Snapshotter(w, w.synthetic_dataset({"train": 19}, seed=4),
                          SnapshotConfig(curvature_batch=None, physical_batch=4, lanczos_order=8,
                                         top_k=(1, 5)), batch_size=4).snapshot(params, state)
    assert snap.metrics["curvature_examples"] == 19


@pytest.mark.slow  # ~45 s on 2 cores: rdkit molecules, a graph program compiled twice
def test_graph_snapshot_on_real_molecules():
    """ogbg_molpcba (host-mode graphs): a fixed set of padded graph batches from real NCI
    molecules; the snapshot's loss and Hessian quadratic form equal the workload's own mean
    loss over all the graphs in one batch (measured labels as the normalizer)."""
    from ogbg_molecules import molecule_graphs
    from harness.data.graph_batching import PaddingBudget, pack
    from harness.spec import Dataset
    from workloads import get_workload

    graphs = molecule_graphs(30, seed=0)
    w = get_workload("ogbg_molpcba:latent=8,hidden=8,depth=1,dropout=0.0")
    data = Dataset("nci", "rdkit", {"train": graphs})
    params, state = w.init(jax.random.PRNGKey(0))
    config = SnapshotConfig(kinds=("hessian", "cov"), curvature_batch=None, physical_batch=8,
                            lanczos_order=10, top_k=(1, 5), cov_batches=3, cov_batch_size=6,
                            trace_probes=3)
    snapper = Snapshotter(w, data, config, batch_size=8)
    assert snapper.batches["mask"].shape[0] >= 4 and snapper.examples == 30
    hess, cov = snapper.snapshot(params, state)
    one = pack(graphs, np.arange(30), PaddingBudget.for_batch(graphs.size_stats, 30))
    one = jax.tree_util.tree_map(jnp.asarray, one)
    flat, unravel = ravel_pytree(params)
    loss = lambda f: w.loss(unravel(f), state, one, train=False)[0]  # noqa: E731
    assert hess.metrics["loss"] == pytest.approx(float(loss(flat)), rel=1e-5)
    v = jax.random.normal(jax.random.PRNGKey(5), flat.shape)
    hv_ref = jax.jvp(jax.grad(loss), (flat,), (v,))[1]
    hv = snapper._fn("matvec", base="hessian", dtype=flat.dtype, flat_dtype=flat.dtype)(
        params, state, snapper.batches, v)
    np.testing.assert_allclose(np.asarray(hv), np.asarray(hv_ref), rtol=2e-3, atol=2e-4 * float(
        jnp.abs(hv_ref).max()))
    for snap in (hess, cov):
        assert np.isfinite(snap.metrics["max_eig"]) and snap.metrics["max_eig"] > 0
    assert cov.metrics["gram_lambda_1"] > 0
