"""Stochastic Lanczos quadrature (SLQ) spectral density (Ghorbani et al. 2019, used by Young, Snider & Feng).

Each probe's Lanczos tridiagonal T = S diag(θ) S^T gives quadrature nodes θ_j
with weights w_j = S[0, j]^2 (summing to 1); the density is the average over
probes of Σ_j w_j N(x; θ_j, σ^2), a Gaussian mixture that integrates to 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from harness.curvature.lanczos import LanczosResult


@dataclasses.dataclass
class SpectralDensity:
    """Quadrature nodes and weights (one row per probe) and the Gaussian kernel width σ."""

    nodes: np.ndarray
    weights: np.ndarray
    sigma: float

    def evaluate(self, grid: np.ndarray) -> np.ndarray:
        """Density values on `grid`."""
        x = np.asarray(grid, np.float64)[:, None]
        nodes, weights = self.nodes.reshape(-1), self.weights.reshape(-1) / len(self.nodes)
        kernel = np.exp(-0.5 * ((x - nodes) / self.sigma) ** 2) / (self.sigma * np.sqrt(2 * np.pi))
        return kernel @ weights

    def grid(self, points: int = 512, margin: float = 6.0) -> np.ndarray:
        """Evenly spaced points covering every node ± margin·σ (so the grid holds ~all the mass)."""
        lo, hi = self.nodes.min() - margin * self.sigma, self.nodes.max() + margin * self.sigma
        return np.linspace(lo, hi, points)

    def energy(self, sign: int) -> float:
        """∫ |x| ρ(x) dx over x > 0 (sign=+1) or x < 0 (sign=-1), exact for the mixture."""
        # imported here, not at the top: a command that records no curvature then never
        # imports scipy (0.1-0.3 s of its start-up: benchmarks/README.md)
        from scipy.special import ndtr

        mu = sign * self.nodes.reshape(-1)
        s = self.sigma
        per_node = mu * ndtr(mu / s) + s * np.exp(-0.5 * (mu / s) ** 2) / np.sqrt(2 * np.pi)
        return float(per_node @ self.weights.reshape(-1) / len(self.nodes))


def slq_density(results: Sequence[LanczosResult], sigma: float | None = None,
                relative_sigma: float = 0.01) -> SpectralDensity:
    """SLQ density from Lanczos runs on independent probes.

    σ is `sigma` if given, else `relative_sigma` times the spread of all nodes
    (floored at 1e-12 relative to the largest |node| so a flat spectrum still works).
    """
    if not results:
        raise ValueError("slq_density needs at least one Lanczos result")
    ritz = [r.ritz() for r in results]
    order = {len(t) for t, _ in ritz}
    if len(order) != 1:
        raise ValueError(f"all probes must use the same Lanczos order, got {sorted(order)}")
    nodes = np.stack([t for t, _ in ritz])
    weights = np.stack([s[0] ** 2 for _, s in ritz])
    if sigma is None:
        spread = float(nodes.max() - nodes.min())
        sigma = max(relative_sigma * spread, 1e-12 * max(float(np.abs(nodes).max()), 1e-30))
    if sigma <= 0:
        raise ValueError(f"kernel width sigma must be > 0, got {sigma}")
    return SpectralDensity(nodes, weights, float(sigma))
