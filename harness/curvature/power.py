"""Power iteration for the largest-magnitude eigenvalue (how Kalra & Barkeshli measures sharpness)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass
class PowerResult:
    """Rayleigh-quotient estimate, its vector, and the convergence report."""

    eigenvalue: float
    vector: jax.Array
    iterations: int
    converged: bool
    #: |λ_k − λ_{k−1}| / |λ_k| at the last iteration.
    relative_change: float


def _step(matvec, v):
    w = matvec(v)
    return jnp.vdot(v, w), w / jnp.linalg.norm(w)


def power_iteration(matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, max_iters: int = 20,
                    tol: float = 1e-4, *, host_loop: bool = False) -> PowerResult:
    """Iterate v ← A v / ‖A v‖ until the Rayleigh quotient's relative change is ≤ tol.

    Converges to the eigenvalue of largest magnitude (for a Hessian with a large
    negative outlier that is the negative one; the report says which it found).
    With host_loop=True the loop runs in Python around `matvec` (jit it yourself).
    """
    if max_iters < 1:
        raise ValueError(f"power iteration needs max_iters >= 1, got {max_iters}")
    v = v0 / jnp.linalg.norm(v0)
    if host_loop:
        lam, change, k = jnp.inf, jnp.inf, 0
        while k < max_iters and not change <= tol:
            new, v = _step(matvec, v)
            change = float(jnp.abs(new - lam) / jnp.maximum(jnp.abs(new), 1e-30))
            lam, k = new, k + 1
        return PowerResult(float(lam), v, k, bool(change <= tol), float(change))

    def cond(state):
        _, _, change, k = state
        return (k < max_iters) & ~(change <= tol)

    def body(state):
        lam, v, _, k = state
        new, v = _step(matvec, v)
        return new, v, jnp.abs(new - lam) / jnp.maximum(jnp.abs(new), 1e-30), k + 1

    inf = jnp.asarray(jnp.inf, v.dtype)
    lam, v, change, k = jax.jit(lambda s: jax.lax.while_loop(cond, body, s))((inf, v, inf, 0))
    return PowerResult(float(lam), v, int(k), bool(change <= tol), float(change))
