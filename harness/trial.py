"""The JAX side of a trial: its keys (RNG_DERIVATION), the chunk mode its workload runs in on
this backend, and ahead-of-time compiled functions that count their compiles. The trial's
records are harness.records.trial (re-exported here)."""

from __future__ import annotations

import threading
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


def _aval(x: Any) -> tuple:
    """What a compiled program is specialised on: shape, dtype, weak type (of an array, a
    Python scalar or a jax.ShapeDtypeStruct standing for one)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return (tuple(x.shape), np.dtype(x.dtype).str, bool(x.weak_type))
    return (np.shape(x), np.result_type(x).str, bool(getattr(x, "weak_type", False)))


def _signature(args: Any) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(args)
    return (treedef, tuple(_aval(x) for x in leaves))


class _Compiled:
    """One signature's executable, compiled in whichever thread asked first."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.executable: Any = None
        self.failed = False
        self.seconds = 0.0
        self.claimed = False

    def build(self, jitted: Any, args: tuple) -> None:
        t0 = time.perf_counter()
        try:
            self.executable = jitted.lower(*args).compile()
        except BaseException:
            self.failed = True
            raise
        finally:
            self.seconds = time.perf_counter() - t0
            self.ready.set()


class CompileCache:
    """Ahead-of-time compiled functions keyed by argument shapes; counts compiles and their time.

    `ahead(*args)` compiles for the shapes of `args` (arrays or jax.ShapeDtypeStruct) before the
    first call needs it, e.g. in a background thread while another program trains; a call that
    finds that compile under way waits for it. `compile_s`/`compiles` count an executable when
    a call first uses it, whichever thread compiled it (so a trial reports the compiles of the
    programs it ran); `blocked_s` is the time calls waited for compiles (all of its compile time
    when compiled inline), which the drivers take out of the training time."""

    def __init__(self, fn: Callable, donate_argnums: tuple[int, ...] = (), **jit_kwargs: Any):
        self._jitted = jax.jit(fn, donate_argnums=donate_argnums, **jit_kwargs)
        self._compiled: dict[tuple, _Compiled] = {}
        self._lock = threading.Lock()
        self.compile_s = 0.0
        self.compiles = 0
        self.blocked_s = 0.0

    def _entry(self, sig: tuple) -> tuple[_Compiled, bool]:
        with self._lock:
            entry = self._compiled.get(sig)
            if entry is None or (entry.failed and entry.ready.is_set()):
                entry = self._compiled[sig] = _Compiled()
                return entry, True
            return entry, False

    def ahead(self, *args: Any) -> None:
        """Compile for these arguments' shapes now (in this thread), for a later call."""
        entry, new = self._entry(_signature(args))
        if new:
            entry.build(self._jitted, args)

    def __call__(self, *args: Any) -> Any:
        entry, new = self._entry(_signature(args))
        t0 = time.perf_counter()
        if new or not entry.ready.is_set():
            with progress.compiling():
                if new:
                    entry.build(self._jitted, args)
                else:
                    entry.ready.wait()
        if entry.failed:  # compiled ahead and failed: again here, so the error reaches the trial
            entry, _ = self._entry(_signature(args))
            entry.build(self._jitted, args)
        self.blocked_s += time.perf_counter() - t0
        if not entry.claimed:
            entry.claimed = True
            self.compile_s += entry.seconds
            self.compiles += 1
        return entry.executable(*args)
