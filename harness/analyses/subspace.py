"""How far the top-k eigenvector subspace of a curvature operator moves between two snapshots.

Pure functions on stored Ritz vectors (rows, `SnapshotConfig.ritz_vectors`). For two
k-dimensional subspaces with orthonormal bases U_a, U_b (columns) the principal angles θ_i
have cos θ_i = σ_i(U_aᵀ U_b); the overlap

    ov(a, b) = ‖U_aᵀ U_b‖_F² / k = mean_i cos² θ_i

is 1 for the same subspace, 0 for orthogonal ones, and k/D on average for a random subspace
of a D-dimensional space. The projection distance d(a, b) = ‖sin Θ‖_F = √(k (1 − ov)) is a
metric, so the error of each estimated subspace adds to it at most once (triangle inequality).

The error of a Ritz subspace is estimated with the Davis–Kahan sin Θ theorem: ‖sin Θ‖_F ≤
‖R‖_F / δ, with R the top-k Ritz residuals (stored `ritz_residuals`) and δ the gap between the
k-th and (k+1)-th Ritz value. δ is itself estimated from Ritz values (which lie below the
eigenvalues they approximate), so the bound is an estimate, not a certificate: it assumes
Lanczos missed no eigenvalue above θ_k (a start vector nearly orthogonal to a top
eigenvector can converge to the next ones with small residuals; no residual shows that, and
more Lanczos steps fix it). It says when the Lanczos order or curvature batch is too small
for the overlap to mean anything.

Written here rather than taken from scipy: scipy is not a core dependency of curvebench (only
of its dev and algoperf extras), and these are three lines of numpy; the tests check them
against `scipy.linalg.subspace_angles`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def orthonormal_rows(vectors: np.ndarray) -> np.ndarray:
    """An orthonormal basis (rows) of the span of `vectors`' rows, in float64 (QR)."""
    q, _ = np.linalg.qr(np.asarray(vectors, np.float64).T)
    return q.T


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos θ_i of the principal angles between the row spans of `a` and `b`, descending."""
    s = np.linalg.svd(orthonormal_rows(a) @ orthonormal_rows(b).T, compute_uv=False)
    return np.clip(s, 0.0, 1.0)


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The principal angles (radians, ascending) between the row spans of `a` and `b`."""
    return np.arccos(cosines(a, b))


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """‖U_aᵀ U_b‖_F² / k for k = the larger number of rows (1: same span, 0: orthogonal)."""
    k = max(len(a), len(b))
    return float(np.sum(cosines(a, b) ** 2) / k)


def davis_kahan(ritz_values: np.ndarray, residuals: np.ndarray, k: int) -> float:
    """Estimated ‖sin Θ‖_F between the top-k Ritz subspace and the true top-k eigenspace:
    ‖(r_1..r_k)‖ / (θ_k − θ_{k+1}) (inf without a positive gap or a (k+1)-th Ritz value)."""
    order = np.argsort(np.asarray(ritz_values))[::-1]
    theta = np.asarray(ritz_values, np.float64)[order]
    res = np.asarray(residuals, np.float64)[order]
    if len(theta) <= k or not theta[k - 1] > theta[k]:
        return float("inf")
    return float(np.linalg.norm(res[:k]) / (theta[k - 1] - theta[k]))


@dataclasses.dataclass(frozen=True)
class OverlapRange:
    """A measured overlap and the range the true one lies in, given each subspace's error."""

    measured: float
    low: float
    high: float


def overlap_range(measured: float, k: int, error_a: float, error_b: float) -> OverlapRange:
    """The true overlap's range when each estimated subspace is within ‖sin Θ‖_F = error of
    its true one: the projection distance √(k(1 − ov)) moves by at most error_a + error_b."""
    d = np.sqrt(max(0.0, k * (1.0 - measured)))
    e = error_a + error_b
    low = 1.0 - min(float(k), (d + e) ** 2) / k
    high = 1.0 - max(0.0, d - e) ** 2 / k
    return OverlapRange(measured, float(low), float(high))
