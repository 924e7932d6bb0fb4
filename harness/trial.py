"""The JAX side of a trial: its keys (RNG_DERIVATION), the chunk mode its workload runs in on
this backend, and ahead-of-time compiled functions that count their compiles. The trial's
records are harness.records.trial (re-exported here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from harness import progress
from harness.records.trial import (CHECKPOINT_EVERY_S, CHUNK_MODES, DIVERGENCE_FACTOR,
                                   HOST_CHUNK_STEPS, HOST_PREFETCH, RNG_DERIVATION, TrialOptions,
                                   TrialResult, TrialSpec)
from harness.spec import SpecError, Workload

__all__ = ["CHECKPOINT_EVERY_S", "CHUNK_MODES", "DIVERGENCE_FACTOR", "HOST_CHUNK_STEPS",
           "HOST_PREFETCH", "RNG_DERIVATION", "CompileCache", "TrialOptions", "TrialResult",
           "TrialSpec", "pick_chunk_mode", "trial_keys"]


def trial_keys(seed: int) -> dict[str, jax.Array]:
    """All randomness of a trial, derived from the seed as RNG_DERIVATION says."""
    key = jax.random.fold_in(jax.random.PRNGKey(0), seed)
    return {"init": jax.random.fold_in(key, 0), "optimizer": jax.random.fold_in(key, 1),
            "train": jax.random.fold_in(key, 2)}


def pick_chunk_mode(workload: Workload, requested: str = "auto") -> str:
    """scan everywhere, except one dispatched step per call for conv nets on XLA:CPU."""
    if requested not in CHUNK_MODES:
        raise SpecError(f"unknown chunk mode {requested!r}; valid: {', '.join(CHUNK_MODES)}")
    if requested != "auto":
        return requested
    if jax.default_backend() == "cpu" and workload.slow_in_cpu_loops:
        return "step"
    return "scan"


def _signature(args: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return (treedef, tuple((np.shape(x), np.result_type(x).str) for x in leaves))


class CompileCache:
    """Ahead-of-time compiled functions keyed by argument shapes; counts compiles and their time."""

    def __init__(self, fn: Callable, donate_argnums: tuple[int, ...] = (), **jit_kwargs: Any):
        self._jitted = jax.jit(fn, donate_argnums=donate_argnums, **jit_kwargs)
        self._compiled: dict[tuple, Any] = {}
        self.compile_s = 0.0
        self.compiles = 0

    def __call__(self, *args: Any) -> Any:
        sig = _signature(args)
        compiled = self._compiled.get(sig)
        if compiled is None:
            t0 = time.perf_counter()
            with progress.compiling():
                compiled = self._jitted.lower(*args).compile()
            self.compile_s += time.perf_counter() - t0
            self.compiles += 1
            self._compiled[sig] = compiled
        return compiled(*args)
