"""The curvature metrics of Young, Snider & Feng §2.2 and Jastrzębski et al. (2020) (§4, App. C); definitions in docs/curvature.md.

Spectral metrics take Ritz values θ (any order) from one Lanczos run; "top-K"
always means the K largest Ritz values. Gram metrics take the (L, L) Gram
matrix G Gᵀ of L flattened mini-batch gradients (rows of G).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np



def max_eigenvalue(ritz: np.ndarray) -> float:
    """Largest Ritz value: the peak sharpness λ_max."""
    return float(np.max(ritz))


def min_eigenvalue(ritz: np.ndarray) -> float:
    """Smallest Ritz value: the most negative curvature (positive for a PSD matrix)."""
    return float(np.min(ritz))


def _top(ritz: np.ndarray, k: int) -> np.ndarray:
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    if k > len(ritz):
        raise ValueError(f"K={k} exceeds the {len(ritz)} Ritz values; raise the Lanczos order")
    return np.sort(np.asarray(ritz, np.float64))[::-1][:k]


#: Ritz values within this fraction of λ_1 of zero are rounding noise for MER-K.
MER_ZERO = 1e-6


def mer(ritz: np.ndarray, k: int) -> float:
    """MER-K = λ_1 / λ_K, the largest over the K-th largest Ritz value.

    NaN when λ_K is not positive beyond rounding (λ_K ≤ 1e-6 λ_1): a rank < K matrix
    has no K-th positive eigenvalue, and the ratio to a rounding-level value means nothing.
    """
    top = _top(ritz, k)
    return float(top[0] / top[-1]) if top[-1] > MER_ZERO * abs(top[0]) else float("nan")


def tridiagonal_trace(alphas: np.ndarray) -> float:
    """Trace of the Lanczos tridiagonal T (Σ α_j = Σ θ_j), the trace Young, Snider & Feng uses for TER.

    It is the trace of A restricted to the Krylov space, not tr(A): it equals tr(A)
    only when the Lanczos order equals the dimension (see `trace.py` for tr(A)).
    """
    return float(np.sum(np.asarray(alphas, np.float64)))


def ter(trace: float, ritz: np.ndarray, k: int) -> float:
    """TER-K = tr(A) / (λ_1 + … + λ_K), tr(A) a real trace estimate: ≈ 1 when A is ≈ rank K."""
    return float(trace) / float(_top(ritz, k).sum())


def ter_tridiag(alphas: np.ndarray, ritz: np.ndarray, k: int) -> float:
    """Seed 000's TER-K = tr(T) / (θ_1 + … + θ_K), with the Krylov-space trace tr(T)."""
    return ter(tridiagonal_trace(alphas), ritz, k)


def pnr(nodes: np.ndarray, weights: np.ndarray, zero_tol: float) -> float:
    """PNR = ∫_{x>0} x ρ(x) dx / ∫_{x<0} |x| ρ(x) dx for the SLQ quadrature ρ = mean over
    probes of Σ_j w_j δ(x − θ_j), from the nodes θ and weights w (one row per probe).

    No kernel: smoothing with a Gaussian puts negative mass under a PSD spectrum.
    Nodes with |θ| ≤ zero_tol · max|θ| count as zero (rounding of a zero eigenvalue).
    Infinite when there is no negative mass (a PSD matrix); NaN when there is no mass at all.
    """
    nodes, weights = np.asarray(nodes, np.float64), np.asarray(weights, np.float64)
    cut = zero_tol * float(np.abs(nodes).max(initial=0.0))
    positive = float(np.sum(weights * np.where(nodes > cut, nodes, 0.0)))
    negative = float(np.sum(weights * np.where(nodes < -cut, -nodes, 0.0)))
    if negative > 0:
        return positive / negative
    return float("inf") if positive > 0 else float("nan")


def quadrature(alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature of each probe's tridiagonal T (rows of `alphas` (p, m), `betas` (p, m−1)):
    nodes θ = eig(T) and weights w = (first components of T's eigenvectors)², shape (p, m)."""
    nodes, weights = [], []
    for a, b in zip(np.atleast_2d(alphas), np.atleast_2d(betas)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        theta, s = np.linalg.eigh(np.diag(a) + np.diag(b, 1) + np.diag(b, -1))
        nodes.append(theta)
        weights.append(s[0] ** 2)
    return np.stack(nodes), np.stack(weights)


def _relative_change(value: float, other: float) -> float:
    """|value − other| / |value|, 0 when both are the same infinity, inf when only one is infinite."""
    if np.isnan(value) or np.isnan(other):
        return float("nan")
    if np.isinf(value) or np.isinf(other):
        return 0.0 if value == other else float("inf")
    return abs(value - other) / abs(value) if value != 0 else float("inf")


@dataclasses.dataclass(frozen=True)
class PnrEstimate:
    """PNR from the SLQ quadrature and two measured error sizes (both relative to the value):

    * `quadrature_change`: |PNR(m) − PNR(⌈m/2⌉)| / PNR(m), the same probes' quadrature at
      half the order (the leading ⌈m/2⌉ block of each T is exactly Lanczos at that order);
      a converged quadrature does not move when the order doubles.
    * `probe_stderr`: the jackknife standard error over the probes (leave one probe out),
      NaN with one probe: the spread of a single random start vector cannot be measured.

    `relative_error` is the larger of the two; PNR is trusted when it is ≤ a tolerance.
    """

    value: float
    quadrature_change: float
    probe_stderr: float

    @property
    def relative_error(self) -> float:
        return float(max(self.quadrature_change, self.probe_stderr)) if not (
            np.isnan(self.quadrature_change) or np.isnan(self.probe_stderr)) else float("nan")

    def converged(self, tol: float) -> bool:
        return bool(self.relative_error <= tol)


def pnr_estimate(alphas: np.ndarray, betas: np.ndarray, zero_tol: float) -> PnrEstimate:
    """PNR of the probes' tridiagonals (`pnr`), with its quadrature change and probe jackknife."""
    alphas, betas = np.atleast_2d(alphas), np.atleast_2d(betas)
    nodes, weights = quadrature(alphas, betas)
    value = pnr(nodes, weights, zero_tol)
    half = max(1, -(-alphas.shape[1] // 2))
    coarse = pnr(*quadrature(alphas[:, :half], betas[:, :half - 1]), zero_tol)
    probes = len(nodes)
    stderr = float("nan")
    if probes > 1:
        loo = np.array([pnr(np.delete(nodes, i, 0), np.delete(weights, i, 0), zero_tol)
                        for i in range(probes)])
        if np.isinf(value):
            stderr = 0.0 if np.all(loo == value) else float("inf")
        elif np.all(np.isfinite(loo)) and value != 0:
            spread = np.sqrt((probes - 1) / probes * np.sum((loo - loo.mean()) ** 2))
            stderr = float(spread / abs(value))
        else:
            stderr = float("inf")
    return PnrEstimate(value, _relative_change(value, coarse), stderr)


def converged(ritz: np.ndarray, residuals: np.ndarray, tol: float) -> np.ndarray:
    """Per Ritz value: residual ≤ tol · |θ_i| (floored at eps^(2/3) · max|θ|, the noise of
    a float32 product), i.e. an eigenvalue of A lies within a relative `tol` of θ_i."""
    ritz, residuals = np.asarray(ritz, np.float64), np.asarray(residuals, np.float64)
    scale = float(np.abs(ritz).max(initial=0.0))
    floor = float(np.finfo(np.float32).eps) ** (2.0 / 3.0) * scale
    return residuals <= tol * np.maximum(np.abs(ritz), floor)


def pgr(ritz: np.ndarray, eigvecs_t: np.ndarray, basis_gradient: np.ndarray, k: int) -> float:
    """PGR-K = ‖P_K g‖ / ‖P_L g‖ (Young, Snider & Feng §2.2).

    P_K projects onto the top-K Ritz vectors, P_L onto all L of them. With Lanczos
    basis V (orthonormal rows) and T = S diag(θ) Sᵀ, the Ritz coordinates of g are
    c = Sᵀ (V g), so only `basis_gradient` = V g and `eigvecs_t` = S are needed.
    """
    coords = np.asarray(eigvecs_t, np.float64).T @ np.asarray(basis_gradient, np.float64)
    order = np.argsort(np.asarray(ritz))[::-1]
    _top(ritz, k)
    full = np.linalg.norm(coords)
    return float(np.linalg.norm(coords[order[:k]]) / full) if full > 0 else float("nan")


def centered_gram(gram: np.ndarray) -> np.ndarray:
    """K^M_ij = (1/L)⟨g_i − ḡ, g_j − ḡ⟩ from the uncentered Gram G Gᵀ (Jastrzębski et al. (2020) App. C)."""
    gram = np.asarray(gram, np.float64)
    num = len(gram)
    center = np.eye(num) - np.full((num, num), 1.0 / num)
    return center @ gram @ center / num


def gram_metrics(gram: np.ndarray, top: int = 5) -> dict[str, float]:
    """Seed 002's covariance metrics from the uncentered Gram G Gᵀ of L mini-batch gradients.

    gram_lambda_1 = λ_K^1 (largest eigenvalue of K); gram_lambda_star = λ_K* (the
    (L−1)-th largest, i.e. the smallest non-zero one, since a covariance of L
    observations has rank L−1); gram_condition = λ_K*/λ_K^1; gram_trace = Tr K;
    grad_to_top{top}_ratio = mean over the L mini-batch gradients of ‖g_l‖/‖P g_l‖,
    P the projection onto the top-`top` eigenvectors of K (Jastrzębski et al. (2020) §4.3).
    """
    gram = np.asarray(gram, np.float64)
    num = len(gram)
    if num < 2:
        raise ValueError(f"the covariance Gram needs L >= 2 mini-batch gradients, got {num}")
    if not 1 <= top < num:
        raise ValueError(f"top={top} eigenvectors of K need 1 <= top < L={num}")
    k = centered_gram(gram)
    lam, u = np.linalg.eigh(k)
    lam, u = lam[::-1], u[:, ::-1]
    # e_k = Gcᵀ u_k / sqrt(L λ_k) are K's unit eigenvectors; e_k·g_l = u_kᵀ (Gc g_l) / sqrt(L λ_k)
    # and Gc G^T = J (G Gᵀ) with J the centering matrix, so all of it lives in Gram space.
    center = np.eye(num) - np.full((num, num), 1.0 / num)
    cross = center @ gram
    lam_top = np.maximum(lam[:top], 1e-300)
    coords = (u[:, :top].T @ cross) / np.sqrt(num * lam_top)[:, None]
    ratios = np.sqrt(np.diag(gram)) / np.linalg.norm(coords, axis=0)
    return {"gram_lambda_1": float(lam[0]), "gram_lambda_star": float(lam[num - 2]),
            "gram_condition": float(lam[num - 2] / lam[0]) if lam[0] > 0 else float("nan"),
            "gram_trace": float(np.trace(k)),
            f"grad_to_top{top}_ratio": float(np.mean(ratios))}


def stability(max_eig: float, hparams: Mapping[str, float]) -> dict[str, float]:
    """Sharpness against the optimizer's stability edge (Kalra & Barkeshli (2023); Cohen et al. 2021).

    normalized_sharpness = η λ_max / 2 whenever a learning rate η is known; for plain
    GD/SGD it equals λ_max / (2/η), so 1 is the edge of stability. stability_ratio =
    λ_max / edge with edge 2/η for GD/SGD and 2(1+β)/η for heavy-ball momentum β.
    Adaptive methods (hparams with beta2, e.g. Adam) get no stability_ratio: their
    edge concerns the preconditioned Hessian, which is not measured here.
    """
    eta = hparams.get("learning_rate")
    if eta is None:
        return {}
    out = {"normalized_sharpness": float(eta) * max_eig / 2.0}
    if "beta2" not in hparams:
        edge = 2.0 * (1.0 + float(hparams.get("momentum", 0.0))) / float(eta)
        out["stability_ratio"] = max_eig / edge
    return out
