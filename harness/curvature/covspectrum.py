"""The exact spectrum of a gradient covariance from its L x L Gram matrix.

Σ = (1/L) Gᵀ G (uncentered) and K = (1/L) G_cᵀ G_c (centered, G_c = J G with J
the centering matrix) have rank ≤ L, and their non-zero eigenvalues are those of
the L x L matrices (1/L) G Gᵀ and (1/L) J G Gᵀ J. So the whole spectrum (all L
eigenvalues, the exact trace) and the eigenvectors e_k = G_cᵀ u_k / sqrt(L λ_k)
come from one small symmetric eigendecomposition in float64 — no Lanczos, whose
float32 run misses directions its start vector barely touches.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

#: Gram eigenvalues at or below this fraction of the largest are zero (rank deficiency).
RANK_TOL = 1e-10
#: columns of G moved to the host per float64 Gram block (bounds host memory for big models).
GRAM_CHUNK = 1 << 20


def gram_float64(gradients: jax.Array) -> np.ndarray:
    """G Gᵀ (L x L) accumulated in float64 on the host, a block of columns at a time."""
    num, dim = gradients.shape
    gram = np.zeros((num, num), np.float64)
    for start in range(0, dim, GRAM_CHUNK):
        block = np.asarray(jax.device_get(gradients[:, start:start + GRAM_CHUNK]), np.float64)
        gram += block @ block.T
    return gram


def centering(num: int) -> np.ndarray:
    """J = I − 11ᵀ/L."""
    return np.eye(num) - np.full((num, num), 1.0 / num)


@dataclasses.dataclass(frozen=True)
class CovarianceSpectrum:
    """Eigenvalues (descending, L of them) and Gram eigenvectors u_k (columns) of Σ or K."""

    eigenvalues: np.ndarray
    gram_vectors: np.ndarray
    centered: bool

    @classmethod
    def from_gram(cls, gram: np.ndarray, centered: bool) -> "CovarianceSpectrum":
        gram = np.asarray(gram, np.float64)
        num = len(gram)
        if centered:
            j = centering(num)
            gram = j @ gram @ j
        lam, u = np.linalg.eigh(gram / num)
        return cls(lam[::-1].copy(), u[:, ::-1].copy(), centered)

    @property
    def trace(self) -> float:
        return float(self.eigenvalues.sum())

    @property
    def rank(self) -> int:
        top = max(float(self.eigenvalues[0]), 0.0)
        return int(np.sum(self.eigenvalues > RANK_TOL * top)) if top > 0 else 0

    def coordinates(self, gradients_times_v: np.ndarray) -> np.ndarray:
        """e_kᵀ v for the rank-many eigenvectors, from G v (L,): u_kᵀ J^c (G v) / sqrt(L λ_k)."""
        gv = np.asarray(gradients_times_v, np.float64)
        num = len(gv)
        if self.centered:
            gv = gv - gv.mean()
        r = self.rank
        return self.gram_vectors[:, :r].T @ gv / np.sqrt(num * self.eigenvalues[:r])

    def vectors(self, gradients: jax.Array, count: int) -> jax.Array:
        """The top `count` unit eigenvectors e_k as rows (count, n) (Ritz vectors, exact here)."""
        count = min(count, self.rank)
        g = gradients - gradients.mean(0) if self.centered else gradients
        num = g.shape[0]
        u = self.gram_vectors[:, :count] / np.sqrt(num * self.eigenvalues[:count])
        return jnp.asarray(u.T, g.dtype) @ g
