"""Lanczos, SLQ density, power iteration and Hutchinson on matrices with prescribed spectra."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.curvature.density import slq_density
from harness.curvature.lanczos import LanczosResult, accumulate_in, lanczos
from harness.curvature.power import power_iteration

SPECTRA = {
    "spread": np.linspace(-2.0, 10.0, 40),
    "clustered": np.concatenate([np.full(15, 1.0), np.full(15, 1.0 + 1e-7), np.linspace(3, 4, 8),
                                 [50.0, 50.0]]),
    "negative": np.concatenate([-np.geomspace(1e-3, 30.0, 20), np.geomspace(1e-3, 5.0, 20)]),
    "low_rank": np.concatenate([np.zeros(34), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
}


def _matrix(eigs, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigs), len(eigs))))
    return (q * eigs) @ q.T


@pytest.mark.parametrize("name", sorted(SPECTRA))
@pytest.mark.parametrize("host_loop", [False, True])
def test_full_order_reproduces_eigh(name, host_loop):
    eigs = SPECTRA[name]
    with jax.enable_x64(True):
        a = jnp.asarray(_matrix(eigs))
        v0 = jnp.asarray(np.random.default_rng(1).normal(size=len(eigs)))
        result = lanczos(jax.jit(lambda v: a @ v), v0, len(eigs), host_loop=host_loop)
    ritz, _ = result.ritz()
    np.testing.assert_allclose(np.sort(ritz), np.linalg.eigvalsh(np.asarray(a)), atol=1e-6)


def test_no_ghost_copies_of_the_top_eigenvalue():
    """At m < n a simple top eigenvalue appears once; without reorthogonalization it repeats."""
    eigs = np.concatenate([np.linspace(0.0, 1.0, 300), [100.0]])
    a = jnp.asarray(_matrix(eigs), jnp.float32)
    v0 = jnp.asarray(np.random.default_rng(2).normal(size=len(eigs)), jnp.float32)
    result = lanczos(lambda v: a @ v, v0, 60, keep_basis=True)
    ritz, _ = result.ritz()
    assert abs(ritz.max() - 100.0) < 1e-3
    assert np.sum(np.abs(ritz - 100.0) < 1.0) == 1
    basis = np.asarray(result.basis, np.float64)
    assert np.abs(basis @ basis.T - np.eye(60)).max() < 1e-5


def test_ritz_vectors_are_eigenvectors_when_converged():
    eigs = np.concatenate([np.linspace(0.0, 1.0, 50), [20.0, 40.0]])
    with jax.enable_x64(True):
        a = _matrix(eigs)
        result = lanczos(lambda v: jnp.asarray(a) @ v, jnp.ones(len(eigs)), 30, keep_basis=True)
        ritz, _ = result.ritz()
        top = np.asarray(result.ritz_vectors())[-1]
    np.testing.assert_allclose(a @ top, 40.0 * top, atol=1e-8)
    with pytest.raises(ValueError, match="keep_basis"):
        lanczos(lambda v: v, jnp.ones(3), 2).ritz_vectors()


def test_float64_accumulation_around_a_float32_operator():
    eigs = np.concatenate([np.geomspace(1e-4, 1.0, 80), [1e3]])
    a32 = jnp.asarray(_matrix(eigs), jnp.float32)
    with jax.enable_x64(True):
        mv = accumulate_in(lambda v: a32 @ v, jnp.float64, jnp.float32)
        result = lanczos(mv, jnp.ones(len(eigs), jnp.float64), 40)
        assert result.alphas.dtype == np.float64
    assert abs(result.ritz()[0].max() - 1e3) / 1e3 < 1e-5


def test_bad_orders_are_rejected():
    with pytest.raises(ValueError, match=">= 1"):
        lanczos(lambda v: v, jnp.ones(3), 0)
    with pytest.raises(ValueError, match="exceeds the dimension"):
        lanczos(lambda v: v, jnp.ones(3), 4)


def test_slq_density_integrates_to_one_and_matches_the_spectrum():
    eigs = SPECTRA["negative"]
    with jax.enable_x64(True):
        a = jnp.asarray(_matrix(eigs))
        mv = jax.jit(lambda v: a @ v)
        runs = [lanczos(mv, jax.random.normal(jax.random.PRNGKey(p), (40,), jnp.float64), 40,
                        host_loop=True) for p in range(30)]
    density = slq_density(runs, sigma=0.05)
    grid = density.grid(4000)
    assert abs(np.trapezoid(density.evaluate(grid), grid) - 1.0) < 1e-6
    # quadrature weights average to 1/n per eigenvalue: energies approach the true sums / n
    pos, neg = eigs[eigs > 0].sum() / len(eigs), -eigs[eigs < 0].sum() / len(eigs)
    assert abs(density.energy(+1) - pos) / pos < 0.2 and abs(density.energy(-1) - neg) / neg < 0.2
    with pytest.raises(ValueError, match="at least one"):
        slq_density([])


@pytest.mark.parametrize("host_loop", [False, True])
def test_power_iteration_reports_convergence(host_loop):
    eigs = np.concatenate([np.linspace(0.0, 1.0, 30), [10.0]])
    a = jnp.asarray(_matrix(eigs), jnp.float32)
    v0 = jnp.ones(31, jnp.float32)
    done = power_iteration(lambda v: a @ v, v0, max_iters=100, tol=1e-6, host_loop=host_loop)
    assert done.converged and done.iterations < 100 and abs(done.eigenvalue - 10.0) < 1e-4
    short = power_iteration(lambda v: a @ v, v0, max_iters=1, tol=1e-12, host_loop=host_loop)
    assert not short.converged and short.iterations == 1
    with pytest.raises(ValueError, match="max_iters"):
        power_iteration(lambda v: a @ v, v0, max_iters=0)


def test_ritz_residuals_bound_the_error_and_flag_a_clustered_top():
    """Top eigenvalues in a tight cluster (spacing 1e-3 of λ_1) converge slowly: at low
    orders the residual flags must say "not converged", and every top Ritz value flagged
    converged must match the eigenvalue of its rank within the tolerance."""
    from harness.curvature.metrics import converged
    rng = np.random.default_rng(3)
    eigs = np.concatenate([10.0 - 1e-2 * np.arange(6), rng.uniform(-1.0, 5.0, 194)])
    a = jnp.asarray(_matrix(eigs, seed=3), jnp.float32)
    exact = np.sort(eigs)[::-1]
    tol = 1e-3
    flags = {}
    for order in (10, 20, 60):
        res = lanczos(lambda v: a @ v, jnp.ones(200, jnp.float32), order)
        theta, _ = res.ritz()
        residuals = res.ritz_residuals()
        # Kahan: every Ritz value has an eigenvalue within its residual (+ float32 rounding)
        assert np.all(np.abs(theta[:, None] - exact[None]).min(1) <= residuals + 1e-4)
        top = np.argsort(theta)[::-1][:5]
        flags[order] = converged(theta, residuals, tol)[top]
        for rank, i in enumerate(top):
            if flags[order][rank]:
                assert abs(theta[i] - exact[rank]) <= tol * abs(theta[i])
    assert not flags[10].any() and not flags[20].all(), "the cluster is not resolved yet"
    assert flags[60].all()


@pytest.mark.parametrize("host_loop", [False, True])
def test_order_chosen_by_convergence_on_a_clustered_top(host_loop):
    """Top-5 eigenvalues 1e-3 apart: a fixed order of 20 leaves them unconverged, the adaptive
    order extends 10 steps at a time (never repeating a product) until all five are certified,
    and stops there, below the cap; with a cap too low it stops at the cap, unconverged."""
    from harness.curvature.lanczos import top_converged
    rng = np.random.default_rng(3)
    eigs = np.concatenate([10.0 - 1e-2 * np.arange(6), rng.uniform(-1.0, 5.0, 194)])
    a = jnp.asarray(_matrix(eigs, seed=3), jnp.float32)
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    done = top_converged(5, 1e-3)
    assert not done(lanczos(lambda v: a @ v, jnp.ones(200, jnp.float32), 20))
    auto = lanczos(matvec if host_loop else (lambda v: a @ v), jnp.ones(200, jnp.float32), 20,
                   host_loop=host_loop, max_order=100, converged_top=5)
    order = len(auto.alphas)
    assert done(auto) and 20 < order < 100 and (order - 20) % 10 == 0
    assert not done(LanczosResult(auto.alphas[:order - 10], auto.betas[:order - 11],
                                  residual_norm=float(auto.betas[order - 11])))
    top = np.sort(auto.ritz()[0])[::-1][:5]
    np.testing.assert_allclose(top, np.sort(eigs)[::-1][:5], rtol=1e-3)
    if host_loop:
        assert len(calls) == 1, "the step is traced once and reused"
    capped = lanczos(lambda v: a @ v, jnp.ones(200, jnp.float32), 20, max_order=30, converged_top=5)
    assert len(capped.alphas) == 30 and not done(capped)
