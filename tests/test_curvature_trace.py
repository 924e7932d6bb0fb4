"""Trace estimators (Hutchinson, Hutch++, Krylov-deflated) against the exact trace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.curvature import trace as T
from harness.curvature.lanczos import lanczos


def _matrix(eigs, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigs), len(eigs))))
    return (q * eigs) @ q.T


EIGS = np.concatenate([[50.0, 20.0, 10.0, 5.0], np.linspace(-0.5, 1.0, 96)])  # outliers + bulk
A = jnp.asarray(_matrix(EIGS), jnp.float32)


def matmat(vs):
    return vs @ A.T


def test_hutchinson_is_unbiased_within_its_error_and_exact_on_a_diagonal():
    est = T.hutchinson(matmat, 100, 400, jax.random.PRNGKey(0))
    assert est.products == 400 and est.stderr > 0 and abs(est.value - EIGS.sum()) < 4 * est.stderr
    diag = jnp.diag(jnp.asarray(EIGS, jnp.float32))
    exact = T.hutchinson(lambda vs: vs @ diag, 100, 2, jax.random.PRNGKey(1))
    assert abs(exact.value - EIGS.sum()) < 1e-3, "Rademacher probes give a diagonal's trace exactly"
    with pytest.raises(ValueError, match="at least one probe"):
        T.hutchinson(matmat, 100, 0, jax.random.PRNGKey(0))


def test_hutchpp_and_krylov_beat_hutchinson_on_outliers():
    """Same product budget: deflating the outliers removes most of the variance."""
    errors = {"hutchinson": [], "hutchpp": [], "krylov": []}
    for seed in range(8):
        key = jax.random.PRNGKey(seed)
        errors["hutchinson"].append(T.hutchinson(matmat, 100, 12, key).value - EIGS.sum())
        errors["hutchpp"].append(T.hutchpp(matmat, 100, 12, key).value - EIGS.sum())
        res = lanczos(lambda v: A @ v, jax.random.normal(key, (100,)), 8, keep_basis=True)
        errors["krylov"].append(T.krylov_deflated(matmat, res.basis, float(res.alphas.sum()), 4,
                                                  jax.random.fold_in(key, 1)).value - EIGS.sum())
    rms = {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errors.items()}
    assert rms["hutchpp"] < rms["hutchinson"] / 2 and rms["krylov"] < rms["hutchinson"] / 2, rms
    with pytest.raises(ValueError, match="at least 3 products"):
        T.hutchpp(matmat, 100, 2, jax.random.PRNGKey(0))


def test_krylov_deflated_is_exact_at_full_order():
    res = lanczos(lambda v: A @ v, jnp.ones(100), 100, keep_basis=True)
    est = T.krylov_deflated(matmat, res.basis, float(res.alphas.sum()), 3, jax.random.PRNGKey(0))
    assert est.value == pytest.approx(EIGS.sum(), rel=1e-4)
