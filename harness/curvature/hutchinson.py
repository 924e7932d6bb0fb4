"""Hutchinson's stochastic trace estimator: tr(A) ≈ mean over Rademacher z of zᵀ A z."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def hutchinson_trace(matvec: Callable[[jax.Array], jax.Array], dim: int, probes: int,
                     key: jax.Array, dtype=jnp.float32) -> tuple[float, float]:
    """Trace estimate and its standard error from `probes` Rademacher vectors (one matvec each)."""
    if probes < 1:
        raise ValueError(f"Hutchinson needs at least one probe, got {probes}")
    samples = []
    for i in range(probes):
        z = jax.random.rademacher(jax.random.fold_in(key, i), (dim,), dtype)
        samples.append(float(jnp.vdot(z, matvec(z))))
    values = np.asarray(samples)
    stderr = float(values.std(ddof=1) / np.sqrt(probes)) if probes > 1 else float("nan")
    return float(values.mean()), stderr
