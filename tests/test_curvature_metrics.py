"""Every curvature metric on a known spectrum; schedules and parameter subsets."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from harness.curvature import metrics as M
from harness.curvature.schedule import DEFAULT_SCHEDULE, ScheduleError, snapshot_steps
from harness.curvature.subset import ParamSubset, leaf_paths

RITZ = np.array([-2.0, -1.0, 0.5, 1.0, 2.0, 4.0, 8.0])


def test_extreme_eigenvalues_and_ratios():
    assert M.max_eigenvalue(RITZ) == 8.0 and M.min_eigenvalue(RITZ) == -2.0
    assert M.mer(RITZ, 2) == 2.0 and M.mer(RITZ, 4) == 8.0
    assert np.isnan(M.mer(RITZ, 6)), "MER-K is undefined once λ_K is not positive"
    alphas = np.array([1.0, 2.0, 9.5])  # tr(T) = 12.5
    assert M.tridiagonal_trace(alphas) == 12.5
    assert M.ter_tridiag(alphas, RITZ, 1) == 12.5 / 8.0 and M.ter_tridiag(alphas, RITZ, 3) == 12.5 / 14.0
    assert M.ter(30.0, RITZ, 3) == 30.0 / 14.0, "TER-K against a real trace estimate"
    with pytest.raises(ValueError, match="exceeds"):
        M.mer(RITZ, 8)
    with pytest.raises(ValueError, match=">= 1"):
        M.ter(12.5, RITZ, 0)


def test_pnr_from_quadrature_nodes_and_weights():
    nodes, weights = np.array([[-2.0, 1.0, 3.0]]), np.array([[0.25, 0.25, 0.5]])
    assert M.pnr(nodes, weights, 1e-6) == pytest.approx((0.25 * 1 + 0.5 * 3) / (0.25 * 2), rel=1e-12)
    two = M.pnr(np.array([[-2.0, 1.0], [-1.0, 4.0]]), np.array([[0.5, 0.5], [0.5, 0.5]]), 1e-6)
    assert two == pytest.approx((0.5 + 2.0) / (1.0 + 0.5)), "probes pooled, not ratios averaged"


def test_pnr_of_a_psd_matrix_is_infinite():
    """A PSD spectrum has no negative mass: PNR is infinite (stored as null), whatever the
    kernel width of the displayed density; rounding-level negative nodes do not count."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(30, 30)))[0]
    psd = q @ np.diag(np.r_[np.geomspace(10.0, 1e-3, 20), np.zeros(10)]) @ q.T
    theta, s = np.linalg.eigh(psd)
    assert M.pnr(theta[None], (s[0] ** 2)[None], 2.4e-5) == float("inf")
    noisy = theta - 1e-7  # the zero eigenvalues as float32 Lanczos returns them
    assert M.pnr(noisy[None], (s[0] ** 2)[None], 2.4e-5) == float("inf")
    assert np.isnan(M.pnr(np.zeros((1, 3)), np.full((1, 3), 1 / 3), 2.4e-5))


def test_pgr_projects_onto_top_ritz_vectors():
    ritz = np.array([1.0, 5.0, 3.0])
    eigvecs = np.eye(3)  # T diagonal: Ritz vectors are the Lanczos basis vectors
    g = np.array([3.0, 4.0, 12.0])  # coordinates along Ritz values 1, 5, 3; ‖g‖ = 13
    assert M.pgr(ritz, eigvecs, g, 1) == pytest.approx(4.0 / 13.0)
    assert M.pgr(ritz, eigvecs, g, 2) == pytest.approx(np.hypot(4.0, 12.0) / 13.0)
    assert M.pgr(ritz, eigvecs, g, 3) == pytest.approx(1.0)
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    assert M.pgr(ritz, rot, rot @ g, 1) == pytest.approx(4.0 / 13.0), "c = Sᵀ(Vg)"


def test_gram_metrics_equal_dense_covariance_eigenvalues():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(6, 40)) * np.geomspace(5.0, 0.1, 40) + rng.normal(size=40)
    num = len(grads)
    centered = grads - grads.mean(0)
    dense = centered.T @ centered / num
    eig = np.sort(np.linalg.eigvalsh(dense))[::-1]
    got = M.gram_metrics(grads @ grads.T, top=3)
    assert got["gram_lambda_1"] == pytest.approx(eig[0], rel=1e-10)
    assert got["gram_lambda_star"] == pytest.approx(eig[num - 2], rel=1e-10)
    assert eig[num - 1] < 1e-10 * eig[0], "L centered gradients span L-1 dimensions"
    assert got["gram_condition"] == pytest.approx(eig[num - 2] / eig[0], rel=1e-10)
    assert got["gram_trace"] == pytest.approx(np.trace(dense), rel=1e-10)
    _, vecs = np.linalg.eigh(dense)
    top = vecs[:, ::-1][:, :3]
    ratios = np.linalg.norm(grads, axis=1) / np.linalg.norm(grads @ top, axis=1)
    assert got["grad_to_top3_ratio"] == pytest.approx(ratios.mean(), rel=1e-8)
    with pytest.raises(ValueError, match="L >= 2"):
        M.gram_metrics(np.ones((1, 1)))
    with pytest.raises(ValueError, match="top"):
        M.gram_metrics(grads @ grads.T, top=6)


def test_stability_against_the_edge():
    assert M.stability(10.0, {}) == {}
    sgd = M.stability(10.0, {"learning_rate": 0.2})
    assert sgd["normalized_sharpness"] == pytest.approx(1.0) and sgd["stability_ratio"] == pytest.approx(1.0)
    heavy = M.stability(10.0, {"learning_rate": 0.2, "momentum": 0.9})
    assert heavy["stability_ratio"] == pytest.approx(10.0 / (2 * 1.9 / 0.2))
    adam = M.stability(10.0, {"learning_rate": 0.2, "beta1": 0.9, "beta2": 0.999})
    assert set(adam) == {"normalized_sharpness"}


def test_schedules():
    assert snapshot_steps("every:100", 350) == (100, 200, 300)
    assert snapshot_steps("init,at:5/7,every:10", 20) == (0, 5, 7, 10, 20)
    assert snapshot_steps("log:4:1000", 5000) == (1, 10, 100, 1000)
    assert snapshot_steps("log:20:10", 100) == tuple(range(1, 11))
    assert snapshot_steps("at:3/99", 50) == (3,)
    steps = snapshot_steps(DEFAULT_SCHEDULE, 2000)
    assert steps[0] == 0 and 2000 in steps and len(steps) < 20
    for bad, why in [("", "empty"), ("every:0", "below 1"), ("every:x", "not an integer"),
                     ("log:5", "needs K and END"), ("sometimes", "bad schedule item"), ("at:", "bad")]:
        with pytest.raises(ScheduleError, match=why):
            snapshot_steps(bad, 100)


def test_param_subsets_restrict_to_the_principal_submatrix():
    params = {"Dense_0": {"bias": jnp.zeros(2), "kernel": jnp.zeros((3, 2))},
              "Dense_1": {"bias": jnp.zeros(1), "kernel": jnp.zeros((2, 1))}}
    assert leaf_paths(params) == ["Dense_0/bias", "Dense_0/kernel", "Dense_1/bias", "Dense_1/kernel"]
    subset = ParamSubset.from_pattern(params, "Dense_0/*")
    assert subset.indices.tolist() == list(range(8)) and subset.size == 11
    kernels = ParamSubset.from_pattern(params, "*/kernel")
    assert kernels.indices.tolist() == list(range(2, 8)) + [9, 10]
    a = np.random.default_rng(0).normal(size=(11, 11))
    a = a + a.T
    restricted = kernels.restrict(lambda v: jnp.asarray(a) @ v)
    dense = np.stack([np.asarray(restricted(e)) for e in jnp.eye(8)], axis=1)
    np.testing.assert_allclose(dense, a[np.ix_(kernels.indices, kernels.indices)], atol=1e-5)
    with pytest.raises(ValueError, match="matches no parameter.*Dense_0/bias"):
        ParamSubset.from_pattern(params, "Conv_*")


def test_pnr_estimate_measures_its_own_error():
    """PNR's error is measured, not assumed: one probe cannot measure its probe spread (NaN:
    flagged); many full-order probes agree with the exact PNR within their measured error; a
    short quadrature measures a larger error; a PSD quadrature's infinite PNR is exact."""
    from harness.curvature.lanczos import lanczos
    import jax.numpy as jnp
    rng = np.random.default_rng(1)
    eigs = np.r_[np.linspace(-1.0, -0.1, 10), np.linspace(0.5, 6.0, 30)]
    q = np.linalg.qr(rng.normal(size=(40, 40)))[0]
    a = jnp.asarray((q * eigs) @ q.T, jnp.float32)
    exact = eigs[eigs > 0].sum() / -eigs[eigs < 0].sum()

    def matvec(v):
        return a @ v

    def runs(order, probes):  # one matvec object: each order compiles once
        out = [lanczos(matvec, jnp.asarray(rng.normal(size=40), jnp.float32), order)
               for _ in range(probes)]
        return np.stack([r.alphas for r in out]), np.stack([r.betas for r in out])

    one = M.pnr_estimate(*runs(8, 1), 2.4e-5)
    assert np.isnan(one.probe_stderr) and not one.converged(0.1)
    many = M.pnr_estimate(*runs(40, 40), 2.4e-5)
    assert many.quadrature_change > 0 and many.probe_stderr < 0.1
    assert abs(many.value - exact) / exact < 3 * max(many.relative_error, 0.02)
    short = M.pnr_estimate(*runs(4, 40), 2.4e-5)
    assert short.relative_error > many.probe_stderr
    psd = M.pnr_estimate(np.array([[2.0, 1.0], [3.0, 1.0]]), np.array([[0.0], [0.0]]), 2.4e-5)
    assert psd.value == float("inf") and psd.relative_error == 0.0 and psd.converged(0.1)
