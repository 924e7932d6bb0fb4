"""Lanczos with full reorthogonalization, Ritz pairs, and the loop drivers shared with power iteration.

The basis is kept as an (m, n) matrix V; every new vector is orthogonalized
against all rows with two classical Gram-Schmidt passes in matrix form
(w -= V^T (V w), twice), which keeps the basis orthonormal to working
precision and so prevents spurious ("ghost") copies of converged eigenvalues.
On breakdown (an invariant subspace found, e.g. a low-rank operator or a
spectrum with few distinct values) the next vector is a fresh random vector
orthogonal to the basis and the off-diagonal entry is 0, so T stays exact.

Two drivers run the same update: `host_loop=False` puts the whole iteration in
one `lax.fori_loop` (jit-friendly); `host_loop=True` calls a jitted update from
Python over one jitted step, product included (conv nets on XLA:CPU, where a
convolution inside a rolled loop runs ~36x slower; docs/architecture.md, "Chunk modes").
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Matvec = Callable[[jax.Array], jax.Array]



def breakdown_tol(dtype) -> float:
    """Relative residual size below which a step counts as a breakdown: eps^(2/3) of the dtype
    (2.4e-5 in float32, 3.7e-11 in float64). Below it the residual is rounding noise, and
    normalizing it would feed T entries that no longer describe A on the basis; treating it as
    a breakdown perturbs Ritz values by at most that residual."""
    return float(jnp.finfo(dtype).eps) ** (2.0 / 3.0)


@dataclasses.dataclass
class LanczosResult:
    """Tridiagonal T (alphas on the diagonal, betas off it), the norm β_m of the last
    residual (A V^T = V^T T + β_m r e_m^T), and, on request, the basis V (m, n)."""

    alphas: np.ndarray
    betas: np.ndarray
    basis: jax.Array | None = None
    residual_norm: float = float("nan")

    @classmethod
    def from_driver(cls, alphas, betas, basis=None) -> "LanczosResult":
        """From a driver's (alphas (m,), betas (m,)): the last beta is the residual norm β_m."""
        betas = np.asarray(betas)
        return cls(np.asarray(alphas), betas[:-1], basis, float(betas[-1]))

    @property
    def tridiagonal(self) -> np.ndarray:
        a, b = np.asarray(self.alphas, np.float64), np.asarray(self.betas, np.float64)
        return np.diag(a) + np.diag(b, 1) + np.diag(b, -1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors S of T (columns), in float64."""
        return np.linalg.eigh(self.tridiagonal)

    def ritz_residuals(self) -> np.ndarray:
        """‖A y_i − θ_i y_i‖ of each Ritz pair (ordered like `ritz()`): β_m |S[m−1, i]|.

        A is within this distance of an eigenvalue of A at θ_i (Kahan's bound for a
        symmetric matrix), so it certifies the Ritz value without any further product.
        """
        _, s = self.ritz()
        return np.abs(self.residual_norm * s[-1])

    def ritz_vectors(self) -> jax.Array:
        """Ritz vectors as rows (m, n), ordered like `ritz()`'s values; needs the basis."""
        if self.basis is None:
            raise ValueError("Ritz vectors need the Lanczos basis: run lanczos(..., keep_basis=True)")
        _, s = self.ritz()
        return jnp.asarray(s.T, self.basis.dtype) @ self.basis


def _orthogonalize(basis: jax.Array, w: jax.Array) -> jax.Array:
    """Remove the components of w along the rows of `basis`: two matrix-form Gram-Schmidt passes."""
    w = w - basis.T @ (basis @ w)
    return w - basis.T @ (basis @ w)


def _init_state(v0: jax.Array, order: int, key: jax.Array):
    v0 = v0 / jnp.linalg.norm(v0)
    basis = jnp.zeros((order + 1, v0.shape[0]), v0.dtype).at[0].set(v0)
    return basis, jnp.zeros((order,), v0.dtype), jnp.zeros((order,), v0.dtype), key


def _update(j, state, w):
    """Fold w = A v_j into the state: alpha_j, orthogonalize, beta_j, v_{j+1} (or a restart)."""
    basis, alphas, betas, key = state
    alpha = jnp.vdot(basis[j], w)
    w = _orthogonalize(basis, w)
    beta = jnp.linalg.norm(w)
    alphas = alphas.at[j].set(alpha)
    # ‖T‖ so far estimates ‖A‖: a residual is noise relative to the operator, not to this step
    scale = jnp.maximum(jnp.max(jnp.abs(alphas)) + 2 * jnp.max(betas), 1e-30)
    broke = beta <= breakdown_tol(w.dtype) * scale

    def restart():
        fresh = _orthogonalize(basis, jax.random.normal(jax.random.fold_in(key, j), w.shape, w.dtype))
        return fresh / jnp.linalg.norm(fresh)

    nxt = jax.lax.cond(broke, restart, lambda: w / beta)
    basis = basis.at[j + 1].set(nxt)
    betas = betas.at[j].set(jnp.where(broke, 0.0, beta))
    return basis, alphas, betas, key


@functools.lru_cache(maxsize=64)
def _host_step(matvec: Callable) -> Callable:
    """One jitted Lanczos step, product included (a single call, not a rolled loop)."""
    def curvature_lanczos_step(j, state, args):
        return _update(j, state, matvec(*args, state[0][j]))

    return jax.jit(curvature_lanczos_step, donate_argnums=(1,))


def accumulate_in(matvec: Matvec, dtype, operator_dtype) -> Matvec:
    """Run `matvec` in `operator_dtype` on vectors held in `dtype` (e.g. float64 accumulation)."""
    if jnp.dtype(dtype) == jnp.dtype(operator_dtype):
        return matvec
    return lambda v: matvec(v.astype(operator_dtype)).astype(dtype)


def lanczos(matvec: Matvec, v0: jax.Array, order: int, *, host_loop: bool = False,
            keep_basis: bool = False, seed: int = 0, max_order: int | None = None,
            converged_top: int = 1, ritz_tol: float = 1e-3) -> LanczosResult:
    """`order` steps of Lanczos on a symmetric operator from start vector v0 (any norm).

    Vectors are held in v0's dtype; pass a float64 v0 (with x64 enabled) and wrap the
    matvec with `accumulate_in` for float64 accumulation around a float32 operator.
    With host_loop=True the step (product + update) is compiled once per `matvec` object.
    With `max_order` the order is chosen by convergence (`lanczos_adaptive`): from `order`
    on, until the top `converged_top` Ritz values have residuals ≤ ritz_tol |θ|.
    """
    if order < 1:
        raise ValueError(f"Lanczos order must be >= 1, got {order}")
    if max(order, max_order or 0) > v0.shape[0]:
        raise ValueError(f"Lanczos order {max(order, max_order or 0)} exceeds the dimension {v0.shape[0]}")
    if max_order is not None:
        if host_loop:
            def advance(state, start, stop):
                return lanczos_host_steps(matvec, state, start, stop)
        else:
            advance = jax.jit(functools.partial(lanczos_traced_steps, matvec))
        done = top_converged(converged_top, ritz_tol)
        basis, alphas, betas = lanczos_adaptive(advance, v0, order, max_order, done, seed=seed)
    elif host_loop:
        basis, alphas, betas = lanczos_host(matvec, v0, order, seed)
    else:
        basis, alphas, betas = jax.jit(lanczos_traced, static_argnums=(0, 2, 3))(
            matvec, v0, order, seed)
    return LanczosResult.from_driver(alphas, betas, basis if keep_basis else None)


def lanczos_traced(matvec: Matvec, v0: jax.Array, order: int, seed: int = 0):
    """The fori_loop driver for use inside a caller's jit: returns (basis (m, n), alphas (m,),
    betas (m,)); betas[:m-1] are T's off-diagonal, betas[m-1] the last residual norm β_m."""
    basis, alphas, betas, _ = jax.lax.fori_loop(
        0, order, lambda j, s: _update(j, s, matvec(s[0][j])),
        _init_state(v0, order, jax.random.PRNGKey(seed)))
    return basis[:order], alphas, betas


def lanczos_traced_steps(matvec: Matvec, state, start, stop):
    """Steps start..stop-1 of Lanczos on a driver state (one `fori_loop`; the bounds may be traced)."""
    return jax.lax.fori_loop(start, stop, lambda j, s: _update(j, s, matvec(s[0][j])), state)


def lanczos_host_steps(matvec: Matvec, state, start: int, stop: int, args: tuple = ()):
    """Steps start..stop-1 of Lanczos on a driver state, one jitted step (product + update) each."""
    step = _host_step(matvec)
    for j in range(start, stop):
        state = step(j, state, tuple(args))
    return state


#: steps added at a time when the order is chosen by convergence (`lanczos_adaptive`).
ADAPTIVE_STEP = 10


def top_converged(k: int, ritz_tol: float) -> Callable[[LanczosResult], bool]:
    """A stopping rule for `lanczos_adaptive`: the k largest Ritz values all have residuals
    ≤ ritz_tol |θ| (`metrics.converged`)."""
    from harness.curvature.metrics import converged

    def done(result: LanczosResult) -> bool:
        ritz = result.ritz()[0]
        ok = converged(ritz, result.ritz_residuals(), ritz_tol)[np.argsort(ritz)[::-1]]
        return bool(ok[:k].all())

    return done


def lanczos_adaptive(advance: Callable, v0: jax.Array, order: int, max_order: int,
                     done: Callable[[LanczosResult], bool] | None, *, seed: int = 0,
                     step: int = ADAPTIVE_STEP):
    """Lanczos whose order is chosen by convergence: `order` steps, then `step` more at a time
    until `done(result so far)` or `max_order` steps (done=None: exactly `order` steps).

    The basis is allocated for `max_order` rows once, so extending never repeats a product
    (unlike restarting at a larger order). `advance(state, start, stop)` runs steps
    start..stop-1 (`lanczos_traced_steps` or `lanczos_host_steps`). Returns like
    `lanczos_traced`, with the order reached.
    """
    max_order = max(order, max_order)
    state = _init_state(v0, max_order, jax.random.PRNGKey(seed))
    start, stop = 0, order
    while True:
        state = advance(state, start, stop)
        start = stop
        basis, alphas, betas, _ = state
        if done is None or start >= max_order or done(
                LanczosResult.from_driver(alphas[:start], betas[:start])):
            break
        stop = min(max_order, start + step)
    return basis[:start], alphas[:start], betas[:start]


def lanczos_host(matvec: Matvec, v0: jax.Array, order: int, seed: int = 0, args: tuple = ()):
    """The host-driven driver: a Python loop over one jitted step (product + update).

    `matvec(*args, v)`; pass arrays (parameters, data) through `args`, not a closure,
    so the compiled step is reused across calls with the same `matvec`. Returns like
    `lanczos_traced`.
    """
    step = _host_step(matvec)
    state = _init_state(v0, order, jax.random.PRNGKey(seed))
    for j in range(order):
        state = step(j, state, tuple(args))
    basis, alphas, betas, _ = state
    return basis[:order], alphas, betas
