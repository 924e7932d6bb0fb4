"""Curvature snapshots of a trial: config, the fixed curvature data, and one snapshot's metrics.

A `Snapshotter` is built once per trial: it draws the fixed curvature batch S
(and, for "cov", the L fixed mini-batches) from the train split, puts them on
the device and compiles the operators once. `snapshot(params, model_state)`
then returns, per requested kind, the scalar metrics and the arrays to store.

Kinds: "hessian", "ggn" (Lanczos on the operator over S) and "cov" (Lanczos on
the gradient covariance of L mini-batches, plus Jastrzębski et al.'s Gram metrics); any
kind may be restricted to parameters matching a pattern: "hessian@Dense_0/*".
The Lanczos loop is one compiled `fori_loop`, except on CPU for workloads with
`slow_in_cpu_loops` (conv nets), where a Python loop drives a jitted product.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from harness.curvature import metrics as M
from harness.curvature.density import slq_density
from harness.curvature.hutchinson import hutchinson_trace
from harness.curvature.lanczos import LanczosResult, accumulate_in, lanczos_host, lanczos_traced
from harness.curvature.operators import (OperatorPolicy, covariance_matvec, ggn_matvec, hessian_matvec,
                                         loss_and_gradient, make_physical_batches, minibatch_gradients)
from harness.curvature.power import power_iteration
from harness.curvature.subset import ParamSubset
from harness.spec import Dataset, SpecError, Workload

KINDS = ("hessian", "ggn", "cov")
LOOPS = ("auto", "scan", "host")
#: the DB's curvature_snapshots.kind column holds at most this many characters.
MAX_KIND_LENGTH = 128


@dataclasses.dataclass(frozen=True)
class SnapshotConfig:
    """What a snapshot computes and on which data; stored with every snapshot row."""

    kinds: tuple[str, ...] = ("hessian",)
    #: examples in the fixed curvature batch S (drawn once per trial from the train split).
    curvature_batch: int = 2048
    #: examples per physical batch over S; None: the workload's training batch size.
    physical_batch: int | None = None
    lanczos_order: int = 20
    #: Lanczos probes for the SLQ density (probe 0 also gives the Ritz metrics).
    probes: int = 1
    top_k: tuple[int, ...] = (1, 5, 10)
    #: L mini-batch gradients for "cov" (Jastrzębski et al. (2020) App. C: 25) of size M (None: training batch size).
    cov_batches: int = 25
    cov_batch_size: int | None = None
    #: Lanczos on the centered K instead of the uncentered Σ (Young, Snider & Feng §2.1) for "cov".
    cov_centered: bool = False
    #: SLQ Gaussian kernel width relative to the spread of the Ritz values.
    density_sigma: float = 0.01
    density_points: int = 256
    power_iterations: int = 0
    hutchinson_probes: int = 0
    #: accumulate the Lanczos vectors in float64 (x64 enabled during the snapshot).
    float64: bool = False
    loop: str = "auto"
    #: model mode during a snapshot (operators.OperatorPolicy): batch statistics and fixed dropout.
    train_mode: bool = True
    seed: int = 0

    def __post_init__(self):
        for kind in self.kinds:
            parse_kind(kind)
        if self.lanczos_order < 2:
            raise SpecError(f"lanczos_order must be >= 2, got {self.lanczos_order}")
        if self.top_k and max(self.top_k) > self.lanczos_order:
            raise SpecError(f"top_k {max(self.top_k)} exceeds lanczos_order {self.lanczos_order}")
        if self.loop not in LOOPS:
            raise SpecError(f"unknown curvature loop {self.loop!r}; valid: {', '.join(LOOPS)}")
        if self.probes < 1 or self.curvature_batch < 1 or self.cov_batches < 2:
            raise SpecError("probes and curvature_batch must be >= 1 and cov_batches >= 2")
        if self.density_sigma <= 0:
            raise SpecError(f"density_sigma must be > 0, got {self.density_sigma}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_kind(kind: str) -> tuple[str, str | None]:
    """"hessian" -> ("hessian", None); "ggn@Dense_0/*" -> ("ggn", "Dense_0/*")."""
    base, at, pattern = kind.partition("@")
    if base not in KINDS or (at and not pattern):
        raise SpecError(f"unknown curvature kind {kind!r}; valid: {', '.join(KINDS)}, "
                        "each optionally restricted to parameters as KIND@PATTERN (e.g. hessian@Dense_0/*)")
    if len(kind) > MAX_KIND_LENGTH:
        raise SpecError(f"curvature kind {kind!r} is longer than {MAX_KIND_LENGTH} characters")
    return base, pattern or None


def use_host_loop(workload: Workload, loop: str) -> bool:
    """Host-driven loops for conv nets on XLA:CPU (rolled loops around convolutions are slow)."""
    if loop == "auto":
        return jax.default_backend() == "cpu" and workload.slow_in_cpu_loops
    return loop == "host"


@dataclasses.dataclass
class SnapshotResult:
    """One kind's snapshot: scalar metrics, arrays, and the seconds it took; `includes_compile`
    says those seconds include compiling its operators (the first snapshot of each kind)."""

    kind: str
    metrics: dict[str, float]
    arrays: dict[str, np.ndarray]
    compute_s: float
    includes_compile: bool = False


class Snapshotter:
    """The fixed curvature data and compiled operators of one trial."""

    def __init__(self, workload: Workload, dataset: Dataset, config: SnapshotConfig, *,
                 batch_size: int, hparams: Mapping[str, Any] | None = None):
        if workload.input_mode != "device":
            raise SpecError(f"curvature snapshots need a device-mode workload; {workload.name} feeds "
                            "host batches (graphs), which the curvature batch does not support yet")
        self.workload, self.config = workload, config
        self.hparams = dict(hparams or {})
        self.host_loop = use_host_loop(workload, config.loop)
        self.policy = OperatorPolicy(train=config.train_mode, rng_seed=config.seed,
                                     unroll=self.host_loop)
        train = dataset.splits.get("train")
        if train is None:
            raise SpecError(f"dataset {dataset.name} has no train split for curvature snapshots")
        physical = config.physical_batch or batch_size
        self.batches = jax.device_put(make_physical_batches(
            train, config.curvature_batch, physical, config.seed))
        self.minibatches = None
        if any(parse_kind(k)[0] == "cov" for k in config.kinds):
            self.minibatches = jax.device_put(_minibatches(
                train, config.cov_batches, config.cov_batch_size or batch_size, config.seed + 1))
        self._compiled: dict[tuple, Callable] = {}

    # -- public -------------------------------------------------------------------------

    def snapshot(self, params: Any, model_state: Any) -> list[SnapshotResult]:
        """Every configured kind at these parameters (each timed on its own)."""
        out = []
        for kind in self.config.kinds:
            t0, compiled_before = time.perf_counter(), len(self._compiled)
            if self.config.float64:
                with jax.enable_x64(True):
                    metrics, arrays = self._one(kind, params, model_state)
            else:
                metrics, arrays = self._one(kind, params, model_state)
            out.append(SnapshotResult(kind, metrics, arrays, time.perf_counter() - t0,
                                      len(self._compiled) > compiled_before))
        return out

    # -- one kind -----------------------------------------------------------------------

    def _one(self, kind: str, params: Any, model_state: Any):
        base, pattern = parse_kind(kind)
        subset = ParamSubset.from_pattern(params, pattern) if pattern else None
        flat_dtype = ravel_pytree(params)[0].dtype
        dtype = jnp.float64 if self.config.float64 else flat_dtype
        loss, grad = self._fn("grad")(params, model_state, self.batches)
        extra: dict[str, np.ndarray] = {}
        if base == "cov":
            gradients = self._cov_gradients(params, model_state)
            data = gradients
            gram = np.asarray(jax.device_get(gradients @ gradients.T), np.float64)
            extra["gram_eigenvalues"] = np.linalg.eigvalsh(M.centered_gram(gram))[::-1].copy()
        else:
            data = self.batches
        if subset is not None:
            grad = subset.select(grad)
        dim = subset.indices.size if subset is not None else grad.shape[0]
        order = min(self.config.lanczos_order, dim)
        if base == "cov":
            order = min(order, self.config.cov_batches + 1)
        matvec = functools.partial(self._fn(base, pattern, dtype, flat_dtype), params, model_state, data)
        runs = []
        for probe in range(self.config.probes):
            # drawn in the parameters' dtype, so float64 accumulation starts from the same vector
            v0 = jax.random.normal(jax.random.PRNGKey(self.config.seed * 1000 + probe), (dim,),
                                   flat_dtype).astype(dtype)
            basis, alphas, betas = self._lanczos(base, pattern, dtype, flat_dtype, matvec,
                                                 params, model_state, data, v0, order)
            runs.append(LanczosResult(np.asarray(alphas), np.asarray(betas)))
            if probe == 0:
                basis_gradient = np.asarray(basis @ grad.astype(dtype), np.float64)
        metrics, arrays = self._spectral_metrics(runs, basis_gradient, base, pattern)
        metrics.update(loss=float(loss), grad_norm=float(jnp.linalg.norm(grad)))
        if base == "cov":
            metrics.update(M.gram_metrics(gram, top=min(5, self.config.cov_batches - 1)))
        arrays.update(extra)
        metrics.update(self._extras(matvec, dim, dtype, base == "hessian" and pattern is None))
        return metrics, arrays

    def _spectral_metrics(self, runs, basis_gradient, base, pattern):
        cfg = self.config
        ritz, eigvecs = runs[0].ritz()
        density = slq_density(runs, relative_sigma=cfg.density_sigma)
        grid = density.grid(cfg.density_points)
        metrics = {"max_eig": M.max_eigenvalue(ritz), "min_eig": M.min_eigenvalue(ritz),
                   "trace_tridiag": M.tridiagonal_trace(runs[0].alphas), "pnr": M.pnr(density),
                   "density_sigma": density.sigma}
        for k in cfg.top_k:
            if k > len(ritz):
                continue
            if k > 1:
                metrics[f"mer_{k}"] = M.mer(ritz, k)
            metrics[f"ter_{k}"] = M.ter(runs[0].alphas, ritz, k)
            metrics[f"pgr_{k}"] = M.pgr(ritz, eigvecs, basis_gradient, k)
        if base == "hessian" and pattern is None:
            metrics.update(M.stability(metrics["max_eig"], self.hparams))
        arrays = {"tridiag_alpha": np.stack([r.alphas for r in runs]),
                  "tridiag_beta": np.stack([r.betas for r in runs]),
                  "ritz_values": ritz, "density_grid": grid, "density": density.evaluate(grid)}
        return metrics, arrays

    def _extras(self, matvec, dim, dtype, is_full_hessian):
        out: dict[str, float] = {}
        cfg = self.config
        if cfg.power_iterations > 0:
            v0 = jax.random.normal(jax.random.PRNGKey(cfg.seed + 7), (dim,)).astype(dtype)
            power = power_iteration(matvec, v0, cfg.power_iterations, host_loop=True)
            out.update(power_eig=power.eigenvalue, power_iterations=power.iterations,
                       power_converged=float(power.converged),
                       power_relative_change=power.relative_change)
            if is_full_hessian:
                out.update({f"power_{k}": v for k, v in
                            M.stability(power.eigenvalue, self.hparams).items()})
        if cfg.hutchinson_probes > 0:
            trace, stderr = hutchinson_trace(matvec, dim, cfg.hutchinson_probes,
                                             jax.random.PRNGKey(cfg.seed + 11), dtype)
            out.update(trace_hutchinson=trace, trace_hutchinson_stderr=stderr)
        return out

    # -- compiled pieces ----------------------------------------------------------------

    def _cov_gradients(self, params, model_state):
        if not self.host_loop:
            return self._fn("minibatch_grads")(params, model_state, self.minibatches)
        one = self._fn("one_minibatch_grad")
        num = self.minibatches["mask"].shape[0]
        return jnp.concatenate([one(params, model_state, {k: v[b:b + 1] for k, v in
                                                          self.minibatches.items()})
                                for b in range(num)])

    def _operator(self, base, pattern, dtype, flat_dtype, params, model_state, data):
        w, policy = self.workload, self.policy
        if base == "hessian":
            mv = hessian_matvec(w, params, model_state, data, policy)
        elif base == "ggn":
            mv = ggn_matvec(w, params, model_state, data, policy)
        else:
            mv = covariance_matvec(data, self.config.cov_centered)
        if pattern is not None:
            mv = ParamSubset.from_pattern(params, pattern).restrict(mv)
        return accumulate_in(mv, dtype, flat_dtype)

    def _lanczos(self, base, pattern, dtype, flat_dtype, matvec, params, model_state, data, v0, order):
        if self.host_loop:
            return lanczos_host(self._fn(base, pattern, dtype, flat_dtype), v0, order, self.config.seed,
                                args=(params, model_state, data))
        key = ("lanczos", base, pattern, jnp.dtype(dtype).name, order)
        if key not in self._compiled:
            def run(params, model_state, data, v0):
                op = self._operator(base, pattern, dtype, flat_dtype, params, model_state, data)
                return lanczos_traced(op, v0, order, self.config.seed)
            self._compiled[key] = jax.jit(run)
        return self._compiled[key](params, model_state, data, v0)

    def _fn(self, name, pattern=None, dtype=None, flat_dtype=None):
        key = (name, pattern, None if dtype is None else jnp.dtype(dtype).name)
        if key in self._compiled:
            return self._compiled[key]
        w, policy = self.workload, self.policy
        if name == "grad":
            fn = jax.jit(lambda p, s, d: loss_and_gradient(w, p, s, d, policy))
        elif name == "minibatch_grads":
            fn = jax.jit(lambda p, s, d: minibatch_gradients(w, p, s, d, policy))
        elif name == "one_minibatch_grad":
            fn = jax.jit(lambda p, s, d: minibatch_gradients(w, p, s, d, policy))
        else:
            fn = jax.jit(lambda p, s, d, v: self._operator(name, pattern, dtype, flat_dtype, p, s, d)(v))
        self._compiled[key] = fn
        return fn


def _minibatches(train: Mapping[str, np.ndarray], num: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """`num` mini-batches of `size` examples, each drawn without replacement, stacked (num, size, ...)."""
    n = len(next(iter(train.values())))
    size = min(size, n)
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(n, size, replace=False) for _ in range(num)])
    out = {k: np.asarray(v)[idx] for k, v in train.items()}
    out["mask"] = np.ones((num, size), np.float32)
    return out
