"""Stochastic trace estimators: Hutchinson, Hutch++, and Hutch++ with the Lanczos basis as sketch.

All take `matmat`, a batched product (p, n) -> (p, n) (rows are vectors; e.g.
`jax.vmap(matvec)`), so the probes of one estimate run as one batched product.

* Hutchinson (1989): tr(A) ≈ mean over Rademacher z of zᵀ A z.
* Hutch++ (Meyer, Musco, Musco & Woodruff 2021): a third of the products sketch
  the range of A (Q = orth(A S)), a third give tr(Qᵀ A Q) exactly, and a third
  run Hutchinson on the deflated (I − QQᵀ) A (I − QQᵀ); far lower variance when
  a few eigenvalues dominate, as in a network's Hessian.
* Krylov-deflated Hutchinson: Hutch++'s structure with the Lanczos basis V of the
  snapshot as the sketch. tr(V A Vᵀ) = Σ α_j = tr(T) comes for free from Lanczos
  (α_j = v_jᵀ A v_j), so every product goes to the deflated remainder. Unbiased,
  since V depends only on the Lanczos start vector, not on the Hutchinson probes.

Written here because no maintained JAX library offers matrix-free Hutch++ on
a batched product (matfree's estimators take one vector at a time).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Matmat = Callable[[jax.Array], jax.Array]


class TraceMethod(str, enum.Enum):
    """The trace estimator of a snapshot (TER-K's numerator)."""

    HUTCHINSON = "hutchinson"
    HUTCHPP = "hutchpp"
    KRYLOV = "krylov"


@dataclasses.dataclass(frozen=True)
class TraceEstimate:
    """tr(A) estimate, the standard error of its stochastic part, and the products it cost."""

    value: float
    stderr: float
    products: int


def rademacher(key: jax.Array, count: int, dim: int, dtype) -> jax.Array:
    """(count, dim) independent Rademacher (±1) vectors."""
    return jax.random.rademacher(key, (count, dim), dtype)


def _mean_and_stderr(samples: np.ndarray) -> tuple[float, float]:
    samples = np.asarray(samples, np.float64)
    stderr = float(samples.std(ddof=1) / np.sqrt(len(samples))) if len(samples) > 1 else float("nan")
    return float(samples.mean()), stderr


def _quadratic_forms(matmat: Matmat, z: jax.Array) -> np.ndarray:
    """zᵢᵀ A zᵢ for each row zᵢ of z, in float64."""
    az = matmat(z)
    return np.sum(np.asarray(z, np.float64) * np.asarray(az, np.float64), axis=1)


def _project_out(basis: jax.Array, z: jax.Array) -> jax.Array:
    """Rows of z minus their components along the orthonormal rows of `basis` (twice, for rounding)."""
    z = z - (z @ basis.T) @ basis
    return z - (z @ basis.T) @ basis


def hutchinson(matmat: Matmat, dim: int, probes: int, key: jax.Array, dtype=jnp.float32) -> TraceEstimate:
    """Hutchinson's estimate from `probes` Rademacher vectors (one batched product)."""
    if probes < 1:
        raise ValueError(f"Hutchinson needs at least one probe, got {probes}")
    value, stderr = _mean_and_stderr(_quadratic_forms(matmat, rademacher(key, probes, dim, dtype)))
    return TraceEstimate(value, stderr, probes)


def hutchpp(matmat: Matmat, dim: int, products: int, key: jax.Array, dtype=jnp.float32) -> TraceEstimate:
    """Hutch++ with `products` matrix-vector products (rounded down to a multiple of 3, >= 3)."""
    if products < 3:
        raise ValueError(f"Hutch++ needs at least 3 products (sketch, exact part, residual), got {products}")
    k = products // 3
    sketch_key, probe_key = jax.random.split(key)
    q, _ = jnp.linalg.qr(matmat(rademacher(sketch_key, k, dim, dtype)).T)
    q = q.T  # (k, n), orthonormal rows
    exact = float(np.sum(_quadratic_forms(matmat, q)))
    z = _project_out(q, rademacher(probe_key, k, dim, dtype))
    rest, stderr = _mean_and_stderr(_quadratic_forms(matmat, z))
    return TraceEstimate(exact + rest, stderr, 3 * k)


def krylov_deflated(matmat: Matmat, basis: jax.Array, tridiagonal_trace: float, probes: int,
                    key: jax.Array) -> TraceEstimate:
    """tr(T) + Hutchinson on (I − VᵀV) A (I − VᵀV), V the (m, n) orthonormal Lanczos basis.

    With m = n the remainder is empty and the estimate is exact.
    """
    if probes < 1:
        raise ValueError(f"the deflated Hutchinson part needs at least one probe, got {probes}")
    z = _project_out(basis, rademacher(key, probes, basis.shape[1], basis.dtype))
    rest, stderr = _mean_and_stderr(_quadratic_forms(matmat, z))
    return TraceEstimate(tridiagonal_trace + rest, stderr, probes)
