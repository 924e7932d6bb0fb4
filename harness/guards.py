"""Refuse, before compiling, a trial whose sizes cannot work: a step budget past the int32 step
counter, an eval count that would not fit the bookkeeping, a model too large to compile (its
abstract initialisation more than MAX_MODEL_OPS operations, or still tracing after
TRACE_SECONDS), or a batch size / model width whose memory (estimated from abstract shapes,
nothing allocated) exceeds the device's.

Without these, such trials end in an out-of-memory traceback, an XLA CHECK abort (exit 134,
nothing the harness can catch) or an OverflowError deep in the runner.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from harness.errors import SpecError, TooLarge
from harness.spec import Dataset, Workload

#: the runner's step counter is an int32
MAX_STEPS = 2**31 - 1
#: evaluations per trial: each writes database rows; more means --eval-every is far too small
MAX_EVALS = 100_000
#: operations (jaxpr equations, nested ones included) of a model's abstract initialisation. The
#: largest built-in has about 2,600 (ogbg_molpcba; mnist_mlp 134); a depth-1000 MLP has 45,000
#: and its trace alone takes seconds: past this bound, compiling takes far longer than training
MAX_MODEL_OPS = 100_000
#: seconds the abstract trace of a model's initialisation may take before the model is refused.
#: Tracing is the cheapest thing a trial does (no compile, nothing allocated); a model still
#: tracing after this (e.g. 100,000 layers, ~4 ms each on a CPU core) could never compile.
#: Only the main thread is timed (SIGALRM); elsewhere the operation count alone decides.
TRACE_SECONDS = 30.0
#: sizes computed from abstract shapes, per workload class, variant (and input shape)
_CACHE: dict[tuple, Any] = {}


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
    check_model_size(workload)
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


def check_model_size(workload: Workload) -> None:
    """Raise TooLarge if the variant's model is too large to compile: its abstract
    initialisation still tracing after TRACE_SECONDS, or more than MAX_MODEL_OPS operations."""
    ops = abstract_model(workload)[1]
    if ops > MAX_MODEL_OPS:
        raise TooLarge(f"{workload.spec}: its model is {ops:,} operations to initialise "
                       f"({_count_params(workload):,} parameters); at most {MAX_MODEL_OPS:,} are "
                       "compiled (the largest built-in model has about 2,600): use smaller "
                       "knob values")


def abstract_model(workload: Workload) -> tuple[Any, int]:
    """The variant's (params, model_state) as abstract shapes and the number of operations of
    its initialisation (traced, nothing allocated; cached per variant). TooLarge if tracing
    takes more than TRACE_SECONDS."""
    key = ("model", type(workload), _variant_key(workload))
    if key not in _CACHE:
        try:
            with _deadline(TRACE_SECONDS), _knob_overflow(workload):
                closed = jax.make_jaxpr(workload.init, return_shape=True)(jax.random.PRNGKey(0))
        except _TraceTimeout:
            raise TooLarge(f"{workload.spec}: tracing its model's initialisation (no compile, "
                           f"nothing allocated) took over {TRACE_SECONDS:g} s; compiling and "
                           "training it would take far longer: use smaller knob values") from None
        jaxpr, shapes = closed
        _CACHE[key] = (shapes, _count_ops(jaxpr.jaxpr))
    return _CACHE[key]


def check_curvature_sizes(workloads: Sequence[Workload], config: Any) -> None:
    """Raise TooLarge if a fixed Lanczos order the user chose exceeds the parameters a
    hessian/ggn snapshot works on (all, or those KIND@PATTERN matches; SpecError if it matches
    none) in every variant of the request: Lanczos takes at most one step per parameter, so no
    snapshot could use it. A smaller variant of a grid lowers the order to its own count, as
    the default order 20 is lowered; an auto order's cap is a ceiling (auto stops at
    convergence or the parameter count). Each snapshot stores the order it used."""
    from harness.curvature.snapshot import SnapshotConfig, parse_kind
    from harness.curvature.subset import ParamSubset

    for kind in config.kinds:
        base, pattern = parse_kind(kind)
        if base == "cov":
            continue
        dims: dict[str, int] = {}
        for workload in workloads:
            params = abstract_model(workload)[0][0]
            try:
                dims[workload.spec] = (
                    len(ParamSubset.from_pattern(params, pattern).indices) if pattern
                    else sum(int(math.prod(x.shape)) for x in jax.tree_util.tree_leaves(params)))
            except ValueError as e:  # the pattern matches no parameter: the message lists them
                raise SpecError(f"curvature kind {kind!r} on {workload.spec}: {e}") from None
        if not dims:
            continue
        spec, dim = max(dims.items(), key=lambda item: item[1])
        value = config.lanczos_order
        if value is not None and value > dim and value != SnapshotConfig.lanczos_order:
            where = f" matching {pattern!r}" if pattern else ""
            largest = " (the largest variant)" if len(dims) > 1 else ""
            raise TooLarge(f"--lanczos-order N = {value} but {spec}{largest} has {dim:,} "
                           f"parameters{where} ({base} snapshots take at most one Lanczos step "
                           f"per parameter): give --lanczos-order {dim} or less")


def param_bytes(workload: Workload) -> int:
    """Bytes of the parameters and model state (from abstract shapes; cached per variant)."""
    return sum(_nbytes(x) for x in jax.tree_util.tree_leaves(abstract_model(workload)[0]))


def _count_params(workload: Workload) -> int:
    return sum(int(math.prod(x.shape)) for x in jax.tree_util.tree_leaves(abstract_model(workload)[0]))


def _count_ops(jaxpr: Any) -> int:
    """Equations of a jaxpr, those of the jaxprs nested in its equations' parameters included."""
    total = 0
    for eqn in jaxpr.eqns:
        total += 1
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += _count_ops(inner)
    return total


@contextlib.contextmanager
def _knob_overflow(workload: Workload):
    """A knob value past the integer types the model computes with (a width of 10^10 as an
    int32 argument) fails while tracing: TooLarge, one line, instead of an internal error."""
    try:
        yield
    except OverflowError:
        raise TooLarge(f"{workload.spec}: a knob value overflows the integer types the model "
                       "computes with (found while tracing it, nothing allocated): use smaller "
                       "knob values") from None


class _TraceTimeout(Exception):
    """Raised by the SIGALRM handler inside a trace that ran past its deadline."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise _TraceTimeout in the main thread once `seconds` have passed, or at the next second
    after if the signal came inside a garbage-collection callback (JAX's `_xla_gc_callback`,
    where Python would swallow the raise and print it); elsewhere: no deadline."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        if frame is None or "gc_callback" not in frame.f_code.co_name:
            raise _TraceTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
        params, state = abstract_model(workload)[0]
        inputs = jax.ShapeDtypeStruct(shape, np.dtype(dtype))
        with _knob_overflow(workload):
            jaxpr = jax.make_jaxpr(lambda p, s, x: workload.apply(p, s, x, train=True,
                                                                  rng=jax.random.PRNGKey(0)))(
                params, state, inputs)
        _CACHE[key] = sum(_nbytes(v.aval) for eqn in jaxpr.jaxpr.eqns for v in eqn.outvars
                          if hasattr(v.aval, "shape"))
    return _CACHE[key]


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g}"
