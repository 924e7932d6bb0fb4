"""AlgoPerf's `algoperf.random_utils` for JAX: keys from an int seed, split and fold_in."""

from __future__ import annotations

import jax


def PRNGKey(seed: int) -> jax.Array:  # noqa: N802 - AlgoPerf's name
    return jax.random.PRNGKey(seed)


def split(key: jax.Array, num: int = 2) -> jax.Array:
    return jax.random.split(key, num)


def fold_in(key: jax.Array, data: int) -> jax.Array:
    return jax.random.fold_in(key, data)
