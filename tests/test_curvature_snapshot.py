"""Snapshots against exact spectra of the toy workloads; determinism under batch norm and dropout."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from curvature_models import BnDropoutMlp, TinyMlp
from harness.curvature import SnapshotConfig, Snapshotter
from harness.spec import Dataset, SpecError
from workloads import get_workload


def _snap(workload, dataset, params, state, batch_size, hparams=None, **config):
    snapper = Snapshotter(workload, dataset, SnapshotConfig(**config), batch_size=batch_size,
                          hparams=hparams)
    return {r.kind: r for r in snapper.snapshot(params, state)}


def test_lowrank_hessian_and_partial_blocks_match_the_closed_form():
    """Seed 000 §3: full Hessian top eigenvalue, and the L / R blocks, whose eigenvalues are
    those of RᵀR/N and LᵀL/N (each N-fold)."""
    for spec in ("lowrank:bad_init=1",):
        w = get_workload(spec)
        data = w.load_data()
        params, state = w.init(jax.random.PRNGKey(0))
        exact = np.linalg.eigvalsh(w.exact_hessian(params, w.matrix()))
        snaps = _snap(w, data, params, state, 100, kinds=("hessian", "hessian@L", "hessian@R"),
                      lanczos_order=40, top_k=(1, 10))
        full = snaps["hessian"].metrics
        assert full["max_eig"] == pytest.approx(exact[-1], rel=1e-4)
        lm, rm = (np.asarray(params[k], np.float64) for k in ("L", "R"))
        block_l = np.linalg.eigvalsh(rm.T @ rm / w.n)
        block_r = np.linalg.eigvalsh(lm.T @ lm / w.n)
        assert snaps["hessian@L"].metrics["max_eig"] == pytest.approx(block_l[-1], rel=1e-4)
        assert snaps["hessian@R"].metrics["max_eig"] == pytest.approx(block_r[-1], rel=1e-4)
        # I ⊗ RᵀR/N: 10 distinct eigenvalues, so Lanczos breaks down every 10 steps and restarts
        # in an orthogonal copy; all 10 appear, and a Ritz value a float32 restart left off
        # has an eigenvalue within its residual (Kahan), so its residual says so.
        ritz_l = snaps["hessian@L"].arrays["ritz_values"]
        residual = snaps["hessian@L"].arrays["ritz_residuals"]
        gaps = np.abs(ritz_l[:, None] - block_l[None, :])
        assert np.all(gaps.min(1) <= residual + 1e-6 * block_l[-1])
        assert gaps.min(0).max() < 1e-4 * block_l[-1]


def test_uv_full_order_spectrum_is_exact_and_sharpness_normalized():
    w = get_workload("uv:width=6")
    params, state = w.init(jax.random.PRNGKey(1))
    exact = np.linalg.eigvalsh(w.exact_hessian(params))
    snaps = _snap(w, w.load_data(), params, state, 1, kinds=("hessian", "ggn"), lanczos_order=12,
                  top_k=(1,), hparams={"learning_rate": 0.5})
    hess = snaps["hessian"]
    np.testing.assert_allclose(np.sort(hess.arrays["ritz_values"]), exact, atol=1e-5)
    assert hess.metrics["min_eig"] == pytest.approx(exact[0], abs=1e-5)
    assert hess.metrics["trace_tridiag"] == pytest.approx(np.trace(w.exact_hessian(params)), rel=1e-5)
    assert hess.metrics["normalized_sharpness"] == pytest.approx(0.5 * exact[-1] / 2, rel=1e-5)
    u, v = np.asarray(params["u"]), np.asarray(params["v"])
    ggn = snaps["ggn"].metrics
    assert ggn["max_eig"] == pytest.approx((u @ u + v @ v) / 6, rel=1e-5), "GGN = J Jᵀ, rank 1"
    assert abs(ggn["min_eig"]) < 1e-5 and np.isnan(ggn.get("mer_5", np.nan))


def test_noisy_quadratic_spectrum_and_gradient_covariance():
    w = get_workload("noisy_quadratic:dim=30")
    params, state = w.init(jax.random.PRNGKey(2))
    lam = w.curvatures()
    snaps = _snap(w, w.load_data(), params, state, 64, kinds=("hessian", "ggn", "cov"),
                  lanczos_order=30, top_k=(1, 5), cov_batches=25, cov_batch_size=64)
    for kind in ("hessian", "ggn"):
        got = snaps[kind]
        np.testing.assert_allclose(np.sort(got.arrays["ritz_values"]), np.sort(2 * lam), rtol=1e-4)
        assert got.metrics["mer_5"] == pytest.approx(5.0, rel=1e-4), "λ_i = 1/i"
        assert got.metrics["ter_5"] == pytest.approx(lam.sum() / lam[:5].sum(), rel=1e-4)
    cov = snaps["cov"].metrics
    expected = np.diag(w.exact_gradient_covariance(64))
    # E[Tr K] over L draws is (L-1)/L Tr of the mini-batch covariance; the top eigenvalue is dominated
    # by the λ_1 direction. Both are estimates from 25 samples: check within sampling error.
    assert cov["gram_trace"] == pytest.approx(24 / 25 * expected.sum(), rel=0.35)
    assert cov["gram_lambda_1"] == pytest.approx(expected.max(), rel=0.8)
    assert 0 < cov["gram_lambda_star"] < cov["gram_lambda_1"]
    assert 0 < cov["gram_condition"] < 1 and cov["grad_to_top5_ratio"] >= 1.0


@pytest.mark.parametrize("loop,kinds", [("scan", ("ggn", "cov")), ("host", ("hessian",))])
def test_bn_dropout_snapshot_is_deterministic(loop, kinds):
    w = BnDropoutMlp()
    data = w.synthetic_dataset({"train": 40}, seed=0)
    params, state = w.init(jax.random.PRNGKey(0))
    config = SnapshotConfig(kinds=kinds, curvature_batch=24, physical_batch=8,
                            lanczos_order=8, top_k=(1, 5), cov_batches=4, cov_batch_size=8, loop=loop)
    first = Snapshotter(w, data, config, batch_size=8).snapshot(params, state)
    again = Snapshotter(w, data, config, batch_size=8)
    for _ in range(2):
        for a, b in zip(first, again.snapshot(params, state)):
            assert a.kind == b.kind and a.metrics.keys() == b.metrics.keys()
            np.testing.assert_array_equal([a.metrics[k] for k in a.metrics], [b.metrics[k] for k in a.metrics])
            for name in a.arrays:
                np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


@pytest.mark.slow  # ~23 s: both loops and a float64 snapshot compiled
def test_host_and_scan_loops_agree_and_float64_runs():
    w = TinyMlp(width=5, activation="gelu")
    data = w.synthetic_dataset({"train": 50}, seed=0)
    params, state = w.init(jax.random.PRNGKey(0))
    base = dict(kinds=("hessian@Dense_1/*",), curvature_batch=40, physical_batch=16,
                lanczos_order=12, top_k=(1, 5))
    scan = _snap(w, data, params, state, 16, loop="scan", power_iterations=30, trace_method="hutchinson",
                 trace_probes=4, **base)
    host = _snap(w, data, params, state, 16, loop="host", **base)
    wide = _snap(w, data, params, state, 16, loop="scan", float64=True, **base)
    for kind in scan:
        for name in ("max_eig", "min_eig", "ter_tridiag_5", "pgr_5", "trace_tridiag"):
            assert host[kind].metrics[name] == pytest.approx(scan[kind].metrics[name], rel=1e-3, abs=1e-5)
            assert wide[kind].metrics[name] == pytest.approx(scan[kind].metrics[name], rel=1e-3, abs=1e-5)
        assert wide[kind].arrays["tridiag_alpha"].dtype == np.float64
        assert scan[kind].metrics["power_eig"] == pytest.approx(scan[kind].metrics["max_eig"], rel=1e-2)
        assert scan[kind].compute_s > 0
    assert scan["hessian@Dense_1/*"].metrics["trace_products"] == 4


def test_config_rejects_bad_settings():
    for bad, why in [(dict(kinds=("hessian", "fisher")), "unknown curvature kind"),
                     (dict(kinds=("ggn@",)), "unknown curvature kind"),
                     (dict(lanczos_order=5, top_k=(10,)), "exceeds lanczos_order"),
                     (dict(loop="gpu"), "unknown curvature loop"),
                     (dict(kinds=("hessian@" + "x" * 130,)), "longer than 128"),
                     (dict(density_sigma=0.0), "density_sigma"),
                     (dict(trace_method="hutchpp", trace_probes=2), ">= 3 for hutchpp"),
                     (dict(cov_batches=1), "L = cov_batches >= 2"),
                     (dict(lanczos_order=20, lanczos_max_order=10), "below the starting order"),
                     (dict(pnr_tol=0.0), "pnr_tol")]:
        with pytest.raises(SpecError, match=why):
            SnapshotConfig(**bad)
    with pytest.raises(SpecError, match="has no 'train' split"):
        Snapshotter(get_workload("ogbg_molpcba"), Dataset("graphs", "none", {}), SnapshotConfig(),
                    batch_size=8)
    w = TinyMlp()
    with pytest.raises(ValueError, match="matches no parameter"):
        _snap(w, w.synthetic_dataset({"train": 8}), *w.init(jax.random.PRNGKey(0)), 8,
              kinds=("hessian@Conv_*",), lanczos_order=4, top_k=(1,))


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_snapshotters_of_one_variant_and_config_share_compiled_operators(loop):
    """A sweep's seeds compile the curvature operators once: a second Snapshotter of the same
    variant and config compiles nothing and gives what a fresh one gives; another config
    compiles its own."""
    w = get_workload("uv:width=5")
    data = w.load_data()
    config = SnapshotConfig(kinds=("hessian", "ggn"), lanczos_order=6, top_k=(1,), loop=loop,
                            seed=3)
    params, state = w.init(jax.random.PRNGKey(2))
    first = Snapshotter(w, data, config, batch_size=1).snapshot(params, state)
    again = Snapshotter(w, data, config, batch_size=1).snapshot(params, state)
    assert all(r.includes_compile for r in first)
    assert not any(r.includes_compile for r in again)
    for a, b in zip(first, again):
        np.testing.assert_equal(a.metrics, b.metrics)  # NaN (an undefined metric) equals NaN
    other = SnapshotConfig(**{**config.__dict__, "lanczos_order": 5})
    assert all(r.includes_compile for r in Snapshotter(w, data, other, batch_size=1).snapshot(params, state))
