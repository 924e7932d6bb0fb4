"""Parameter subsets by path pattern, for partial spectra (Young et al. §3: the L vs R blocks).

A restricted operator is the principal submatrix A_SS: embed a subset vector
into the full space with zeros elsewhere, apply A, keep the subset entries.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def leaf_paths(params: Any) -> list[str]:
    """Each leaf's path with "/" between keys, e.g. "Dense_0/kernel", in flattening order."""
    paths = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
        paths.append("/".join(parts))
    return paths


@dataclasses.dataclass(frozen=True)
class ParamSubset:
    """The flat-vector positions of the leaves whose path matches `pattern` (fnmatch syntax)."""

    pattern: str
    indices: np.ndarray
    size: int

    @classmethod
    def from_pattern(cls, params: Any, pattern: str) -> "ParamSubset":
        paths = leaf_paths(params)
        chosen = [fnmatch.fnmatchcase(p, pattern) for p in paths]
        if not any(chosen):
            raise ValueError(f"parameter pattern {pattern!r} matches no parameter; "
                             f"the parameters are: {', '.join(paths)}")
        # ravel_pytree order: the leaves in tree_flatten order, each raveled (numpy: jit-safe).
        leaves = jax.tree_util.tree_leaves(params)
        flat = np.concatenate([np.full(int(np.prod(np.shape(x))), c) for x, c in zip(leaves, chosen)])
        return cls(pattern, np.flatnonzero(flat), int(flat.size))

    def restrict(self, matvec: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
        """v_S -> (A [v_S; 0])_S, the principal submatrix's product."""
        idx = jnp.asarray(self.indices)
        return lambda v: matvec(jnp.zeros((self.size,), v.dtype).at[idx].set(v))[idx]

    def select(self, flat: jax.Array) -> jax.Array:
        """The subset entries of a full flat vector (e.g. the gradient)."""
        return flat[jnp.asarray(self.indices)]
