"""Refuse, before compiling, a trial whose sizes cannot work: a step budget past the int32 step
counter, an eval count that would not fit the bookkeeping, or a batch size / model width whose
memory (estimated from abstract shapes, nothing allocated) exceeds the device's.

Without these, such trials end in an out-of-memory traceback, an XLA CHECK abort (exit 134,
nothing the harness can catch) or an OverflowError deep in the runner.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np

from harness.errors import TooLarge
from harness.spec import Dataset, Workload

#: the runner's step counter is an int32
MAX_STEPS = 2**31 - 1
#: evaluations per trial: each writes database rows; more means --eval-every is far too small
MAX_EVALS = 100_000
#: sizes computed from abstract shapes, per workload class, variant (and input shape)
_CACHE: dict[tuple, int] = {}


def check_trial_fits(workload: Workload, dataset: Dataset | None, batch_size: int,
                     max_steps: int, eval_every: int, trials: int = 1) -> None:
    """Raise TooLarge (one line: what and how to fix) if the trial (or `trials` trials in one
    vectorised program) cannot run; else nothing. Without the dataset (it lives on another
    machine) the memory estimate is skipped."""
    if max_steps > MAX_STEPS:
        raise TooLarge(f"max_steps {max_steps} does not fit the int32 step counter "
                       f"(at most {MAX_STEPS}); give a smaller --max-steps")
    evals = max_steps // eval_every
    if evals > MAX_EVALS:
        raise TooLarge(f"{evals} evaluations (max_steps {max_steps} / eval_every {eval_every}); "
                       f"at most {MAX_EVALS}: raise --eval-every")
    if dataset is None:
        return
    need = estimate_bytes(workload, dataset, batch_size, trials)
    have = device_memory_bytes()
    if have is not None and need > have:
        many = f" x {trials} trials in one program" if trials > 1 else ""
        raise TooLarge(f"{workload.spec} with batch size {batch_size}{many} needs about "
                       f"{_gib(need)} GiB ({_gib(param_bytes(workload))} GiB of parameters) but the "
                       f"{jax.default_backend()} device has {_gib(have)} GiB: use a smaller batch "
                       "size or model" + (" (or --max-group-size)" if trials > 1 else ""))


def estimate_bytes(workload: Workload, dataset: Dataset, batch_size: int, trials: int = 1) -> int:
    """Per trial: parameters with gradients and optimizer state (4x) and the batch's activations
    (every intermediate of one forward pass, a rough upper bound XLA's fusion only lowers); once:
    the device-resident train split."""
    per_trial = 4 * param_bytes(workload)
    if workload.input_mode == "device":
        train = dataset.splits["train"]
        example = {k: jax.ShapeDtypeStruct((1, *np.shape(v)[1:]), np.asarray(v[:1]).dtype)
                   for k, v in train.items()}
        per_trial += batch_size * (_activation_bytes(workload, example["inputs"].shape,
                                                     example["inputs"].dtype)
                                   + sum(_nbytes(s) for s in example.values()))
        return trials * per_trial + sum(np.asarray(v).nbytes for v in train.values())
    return trials * per_trial


def param_bytes(workload: Workload) -> int:
    """Bytes of the parameters and model state (from abstract shapes; cached per variant)."""
    key = ("params", type(workload), _variant_key(workload))
    if key not in _CACHE:
        shapes = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
        _CACHE[key] = sum(_nbytes(x) for x in jax.tree_util.tree_leaves(shapes))
    return _CACHE[key]


def device_memory_bytes() -> int | None:
    """The default device's memory limit (accelerators), else the host's physical memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # backends without memory_stats
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _variant_key(workload: Workload) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in workload.variant.items()))


def _nbytes(shape_dtype: Any) -> int:
    try:
        itemsize = np.dtype(shape_dtype.dtype).itemsize
    except TypeError:  # extended dtypes (PRNG keys): a few words each
        itemsize = 8
    return int(math.prod(shape_dtype.shape)) * itemsize


def _activation_bytes(workload: Workload, shape: tuple, dtype: Any) -> int:
    """Bytes of every intermediate value of one forward pass on one example (abstract trace;
    cached per variant and input shape)."""
    key = ("activations", type(workload), _variant_key(workload), tuple(shape), np.dtype(dtype).str)
    if key not in _CACHE:
        params, state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
        inputs = jax.ShapeDtypeStruct(shape, np.dtype(dtype))
        jaxpr = jax.make_jaxpr(lambda p, s, x: workload.apply(p, s, x, train=True,
                                                              rng=jax.random.PRNGKey(0)))(
            params, state, inputs)
        _CACHE[key] = sum(_nbytes(v.aval) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars
                          if hasattr(v.aval, "shape"))
    return _CACHE[key]


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g}"
