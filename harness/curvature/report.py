"""How `curvebench curvature` shows snapshots: which matrix each row is, column headers that
name the matrix a value belongs to, and a mark on values whose `*_converged` flag is 0 (Ritz
pairs not certified by their residuals; PNR's measured quadrature/probe error above pnr_tol)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.curvature.snapshot import parse_kind

#: (metric, header): λ_max of the row's matrix vs Jastrzębski et al.'s λ_K^1 / λ_K* of K.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("max_eig", "λ_max (row matrix)"),
    ("min_eig", "λ_min"),
    ("mer_10", "MER-10"),
    ("ter_10", "TER-10"),
    ("pgr_10", "PGR-10"),
    ("pnr", "PNR"),
    ("gram_lambda_1", "λ_K^1 (centered K)"),
    ("gram_lambda_star", "λ_K* (K)"),
    ("gram_condition", "λ_K*/λ_K^1"),
    ("gram_trace", "Tr K"),
    ("normalized_sharpness", "η λ_max/2"),
)
#: marks a value whose stored `*_converged` flag is 0 (see docs/curvature.md).
UNCONVERGED_MARK = "?"


def matrix_label(kind: str, config: Mapping[str, Any]) -> str:
    """The matrix a snapshot row describes: H, GGN, Σ (uncentered covariance) or K (centered)."""
    base, pattern = parse_kind(kind)
    if base == "cov":
        name = "K (centered cov)" if config.get("cov_centered") else "Σ (uncentered cov)"
        batch = config.get("cov_batch_size")
        name += f", L={config.get('cov_batches')}, M={batch if batch else 'train batch'}"
    else:
        name = {"hessian": "H", "ggn": "GGN"}[base]
    return f"{name} @ {pattern}" if pattern else name


def cell(metrics: Mapping[str, float | None], name: str) -> str:
    """A value to 4 significant digits ('-' if absent or null), marked if not converged."""
    value = metrics.get(name)
    if value is None:
        if not (name == "pnr" and name in metrics):
            return "-"
        text = "inf"
    else:
        text = f"{value:.4g}"
    return text + UNCONVERGED_MARK if metrics.get(f"{name}_converged") == 0.0 else text
