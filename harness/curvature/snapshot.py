"""Curvature snapshots of a trial: config, the fixed curvature data, and one snapshot's metrics.

A `Snapshotter` is built once per trial: it draws the fixed curvature batch S
(and, for "cov", the L fixed mini-batches) from a split (`data.py`) and puts them
on the device; its compiled operators are shared with every Snapshotter of the same
variant, config and backend in the process, so a sweep's seeds compile them once.
`snapshot(params, model_state)` then returns, per requested kind, the scalar metrics
and the arrays to store.

Kinds: "hessian" and "ggn" (Lanczos on the operator over S, a trace estimate,
Ritz residuals and per-metric convergence flags) and "cov" (the exact spectrum
of the gradient covariance of L mini-batches from its Gram matrix, plus
Jastrzębski et al.'s Gram metrics); any kind may be restricted to parameters
matching a pattern: "hessian@Dense_0/*". The operators differentiate the
workload's `for_curvature()` form (on CPU, the CIFAR conv nets' convolutions as
matmuls). The Lanczos loop is one compiled `fori_loop`, except on CPU where that
form still has `slow_in_cpu_loops`: there a Python loop drives a jitted product
(and the trace probes go one product at a time). With `lanczos_max_order` the order
is chosen by convergence: the loop is extended 10 steps at a time until the top-K
Ritz values converge.
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

from harness.curvature import metrics as M
from harness.curvature import trace as T
from harness.curvature.covspectrum import CovarianceSpectrum, gram_float64
from harness.curvature.data import curvature_batches, gradient_minibatches, split_of
from harness.curvature.density import slq_density
from harness.curvature.lanczos import (LanczosResult, accumulate_in, lanczos_adaptive, lanczos_host,
                                      lanczos_host_steps, lanczos_traced, lanczos_traced_steps,
                                      top_converged)
from harness.curvature.operators import (OperatorPolicy, covariance_matvec, ggn_matvec, hessian_matvec,
                                         loss_and_gradient, minibatch_gradients)
from harness.curvature.power import power_iteration
from harness.curvature.subset import ParamSubset
from harness.spec import Dataset, SpecError, Workload

KINDS = ("hessian", "ggn", "cov")
LOOPS = ("auto", "scan", "host")
#: the DB's curvature_snapshots.kind column holds at most this many characters.
MAX_KIND_LENGTH = 128
#: Jastrzębski et al. (2020) compute K with mini-batches of M = 128 whenever batch sizes are
#: compared, so K does not scale as 1/M with the training batch size.
PAPER_COV_BATCH_SIZE = 128
#: SLQ nodes within this fraction of max |θ| of zero are zero for PNR (eps^(2/3) of float32).
PNR_ZERO_TOL = float(np.finfo(np.float32).eps) ** (2.0 / 3.0)


@dataclasses.dataclass(frozen=True)
class SnapshotConfig:
    """What a snapshot computes and on which data; stored with every snapshot row."""

    kinds: tuple[str, ...] = ("hessian",)
    #: examples in the fixed curvature batch S (drawn once per trial); None: the whole split,
    #: accumulated over its physical batches inside every product.
    curvature_batch: int | None = 2048
    #: the split S is drawn from.
    curvature_split: str = "train"
    #: examples per physical batch over S; None: the workload's training batch size.
    physical_batch: int | None = None
    lanczos_order: int = 20
    #: None: exactly `lanczos_order` steps. An int: the order is chosen by convergence, from
    #: `lanczos_order` on in steps of 10 until the top max(top_k) Ritz values converge
    #: (residual ≤ ritz_tol |θ|), at most this many steps (`--lanczos-order auto[:CAP]`).
    lanczos_max_order: int | None = None
    #: Lanczos probes for the SLQ density and PNR (probe 0 also gives the Ritz metrics).
    probes: int = 1
    top_k: tuple[int, ...] = (1, 5, 10)
    #: a Ritz value is converged when its residual is <= ritz_tol x |θ| (metrics/flags).
    ritz_tol: float = 1e-3
    #: PNR is flagged converged when its measured relative error (the larger of its change
    #: between order ⌈m/2⌉ and m and its jackknife error over probes) is ≤ pnr_tol.
    pnr_tol: float = 0.1
    #: L mini-batch gradients for "cov" (Jastrzębski et al. App. C: 25) of M examples each;
    #: M = None: the training batch size (their choice when only the learning rate varies).
    cov_batches: int = 25
    cov_batch_size: int | None = PAPER_COV_BATCH_SIZE
    #: the "cov" spectrum of the centered K instead of the uncentered Σ.
    cov_centered: bool = False
    #: the trace estimator behind ter_K, and its stochastic probes (0: no trace, no ter_K).
    trace_method: T.TraceMethod = T.TraceMethod.KRYLOV
    trace_probes: int = 10
    #: SLQ Gaussian kernel width relative to the spread of the Ritz values (stored density only).
    density_sigma: float = 0.01
    density_points: int = 256
    power_iterations: int = 0
    #: store the top this-many Ritz vectors of each Hessian / GGN snapshot (array "ritz_vectors",
    #: float32, (k, parameters), rows in descending Ritz-value order); 0: none.
    ritz_vectors: int = 0
    #: accumulate the Lanczos vectors in float64 (x64 enabled during the snapshot).
    float64: bool = False
    loop: str = "auto"
    #: model mode during a snapshot (operators.OperatorPolicy): batch statistics and fixed dropout.
    train_mode: bool = True
    seed: int = 0

    def __post_init__(self):
        for kind in self.kinds:
            parse_kind(kind)
        object.__setattr__(self, "trace_method", T.TraceMethod(self.trace_method))
        if self.lanczos_order < 2:
            raise SpecError(f"lanczos_order must be >= 2, got {self.lanczos_order}")
        if self.lanczos_max_order is not None and self.lanczos_max_order < self.lanczos_order:
            raise SpecError(f"the Lanczos order cap {self.lanczos_max_order} is below the starting "
                            f"order {self.lanczos_order}")
        if self.top_k and max(self.top_k) > self.lanczos_order:
            raise SpecError(f"top_k {max(self.top_k)} exceeds lanczos_order {self.lanczos_order}")
        if self.loop not in LOOPS:
            raise SpecError(f"unknown curvature loop {self.loop!r}; valid: {', '.join(LOOPS)}")
        if self.probes < 1 or (self.curvature_batch is not None and self.curvature_batch < 1):
            raise SpecError("probes and curvature_batch must be >= 1")
        if self.cov_batches < 2 or (self.cov_batch_size is not None and self.cov_batch_size < 1):
            raise SpecError("the covariance needs L = cov_batches >= 2 mini-batches of M >= 1 examples")
        if self.trace_probes < 0 or (self.trace_method == T.TraceMethod.HUTCHPP
                                     and 0 < self.trace_probes < 3):
            raise SpecError(f"trace_probes must be 0 (no trace) or >= 1 (>= 3 for hutchpp), "
                            f"got {self.trace_probes}")
        if not 0 <= self.ritz_vectors <= self.lanczos_order:
            raise SpecError(f"ritz_vectors (--curvature-vectors) must be between 0 and lanczos_order "
                            f"({self.lanczos_order}), got {self.ritz_vectors}")
        if self.density_sigma <= 0 or self.ritz_tol <= 0 or self.pnr_tol <= 0:
            raise SpecError("density_sigma, ritz_tol and pnr_tol must be > 0")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["trace_method"] = self.trace_method.value
        return out


def parse_kind(kind: str) -> tuple[str, str | None]:
    """"hessian" -> ("hessian", None); "ggn@Dense_0/*" -> ("ggn", "Dense_0/*")."""
    base, at, pattern = kind.partition("@")
    if base not in KINDS or (at and not pattern):
        raise SpecError(f"unknown curvature kind {kind!r}; valid: {', '.join(KINDS)}, "
                        "each optionally restricted to parameters as KIND@PATTERN (e.g. hessian@Dense_0/*)")
    if len(kind) > MAX_KIND_LENGTH:
        raise SpecError(f"curvature kind {kind!r} is longer than {MAX_KIND_LENGTH} characters")
    return base, pattern or None


#: compiled operators by (workload class, variant spec, backend, config, operator policy):
#: what a Snapshotter's jitted functions close over, so any Snapshotter with the same key can
#: call them (jax.jit recompiles by itself for other argument shapes)
_SHARED: dict[tuple, dict[tuple, Callable]] = {}


def use_host_loop(workload: Workload, loop: str) -> bool:
    """Host-driven loops on XLA:CPU for a workload (its curvature form) whose convolutions
    are slow inside rolled loops."""
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
        # the operators differentiate the workload's curvature form (same function and
        # parameters; e.g. a conv net's convolutions as matmuls on XLA:CPU)
        self.workload, self.config = workload.for_curvature(), config
        self.hparams = dict(hparams or {})
        self.host_loop = use_host_loop(self.workload, config.loop)
        self.policy = OperatorPolicy(train=config.train_mode, rng_seed=config.seed,
                                     unroll=self.host_loop)
        split = split_of(dataset, config.curvature_split)
        physical = config.physical_batch or batch_size
        self.batches = jax.device_put(curvature_batches(
            workload, split, config.curvature_batch, physical, config.seed, train_mode=config.train_mode))
        self.examples = float(np.sum(jax.device_get(self.batches["mask"])))
        self.minibatches = None
        if any(parse_kind(k)[0] == "cov" for k in config.kinds):
            self.minibatches = jax.device_put(gradient_minibatches(
                workload, split, config.cov_batches, config.cov_batch_size or batch_size, config.seed + 1))
        # the compiled operators are shared by every Snapshotter of the same workload variant,
        # config and backend in this process (a sweep's seeds compile them once)
        identity = (type(workload), workload.spec, jax.default_backend(), config, self.policy)
        self._compiled: dict[tuple, Callable] = _SHARED.setdefault(identity, {})

    def _compiled_programs(self) -> int:
        return sum(getattr(f, "_cache_size", lambda: 0)() for f in self._compiled.values())

    # -- public -------------------------------------------------------------------------

    def snapshot(self, params: Any, model_state: Any) -> list[SnapshotResult]:
        """Every configured kind at these parameters (each timed on its own)."""
        out = []
        for kind in self.config.kinds:
            t0, compiled_before = time.perf_counter(), (len(self._compiled),
                                                         self._compiled_programs())
            if self.config.float64:
                with jax.enable_x64(True):
                    metrics, arrays = self._one(kind, params, model_state)
            else:
                metrics, arrays = self._one(kind, params, model_state)
            compiled_after = (len(self._compiled), self._compiled_programs())
            out.append(SnapshotResult(kind, metrics, arrays, time.perf_counter() - t0,
                                      compiled_after != compiled_before))
        return out

    # -- one kind -----------------------------------------------------------------------

    def _one(self, kind: str, params: Any, model_state: Any):
        base, pattern = parse_kind(kind)
        subset = ParamSubset.from_pattern(params, pattern) if pattern else None
        loss, grad = self._fn("grad")(params, model_state, self.batches)
        if subset is not None:
            grad = subset.select(grad)
        metrics = {"loss": float(loss), "grad_norm": float(jnp.linalg.norm(grad)),
                   "curvature_examples": self.examples}
        if base == "cov":
            more, arrays = self._covariance(params, model_state, grad, subset)
        else:
            more, arrays = self._krylov(base, pattern, params, model_state, grad)
        metrics.update(more)
        return metrics, arrays

    def _covariance(self, params, model_state, grad, subset):
        """Σ's (or K's) whole spectrum from the Gram matrix of the L mini-batch gradients."""
        cfg = self.config
        gradients = self._cov_gradients(params, model_state)
        if subset is not None:
            gradients = gradients[:, jnp.asarray(subset.indices)]
        gram = gram_float64(gradients)
        spectrum = CovarianceSpectrum.from_gram(gram, cfg.cov_centered)
        eig = spectrum.eigenvalues
        dim = gradients.shape[1]
        coords = spectrum.coordinates(np.asarray(gradients @ grad.astype(gradients.dtype), np.float64))
        metrics = {"max_eig": float(eig[0]),
                   "min_eig": float(eig[-1]) if dim <= len(eig) else 0.0,
                   "trace": spectrum.trace, "trace_stderr": 0.0, "pnr": float("inf"),
                   "pnr_converged": 1.0, "pnr_relative_error": 0.0,
                   "max_eig_converged": 1.0, "min_eig_converged": 1.0}
        full = float(np.linalg.norm(coords))
        for k in cfg.top_k:
            if k > len(eig):
                continue
            if k > 1:
                metrics[f"mer_{k}"] = M.mer(eig, k)
                metrics[f"mer_{k}_converged"] = 1.0
            metrics[f"ter_{k}"] = M.ter(spectrum.trace, eig, k)
            metrics[f"pgr_{k}"] = float(np.linalg.norm(coords[:k]) / full) if full > 0 else float("nan")
            metrics[f"ter_{k}_converged"] = metrics[f"pgr_{k}_converged"] = 1.0
        metrics.update(M.gram_metrics(gram, top=min(5, cfg.cov_batches - 1)))
        arrays = {"cov_eigenvalues": eig,
                  "gram_eigenvalues": np.linalg.eigvalsh(M.centered_gram(gram))[::-1].copy()}
        return metrics, arrays

    def _krylov(self, base, pattern, params, model_state, grad):
        """Lanczos (Ritz metrics, residuals, flags, SLQ/PNR) and a trace estimate of H or the GGN."""
        cfg = self.config
        flat_dtype = grad.dtype
        dtype = jnp.float64 if cfg.float64 else flat_dtype
        dim = grad.shape[0]
        order = min(cfg.lanczos_order, dim)
        max_order = None if cfg.lanczos_max_order is None else min(cfg.lanczos_max_order, dim)
        data = self.batches
        matvec = functools.partial(self._fn("matvec", pattern, dtype, flat_dtype, base=base),
                                   params, model_state, data)
        runs, basis0 = [], None
        for probe in range(cfg.probes):
            # drawn in the parameters' dtype, so float64 accumulation starts from the same vector
            v0 = jax.random.normal(jax.random.PRNGKey(cfg.seed * 1000 + probe), (dim,),
                                   flat_dtype).astype(dtype)
            basis, alphas, betas = self._lanczos(base, pattern, dtype, flat_dtype, params, model_state,
                                                 data, v0, order, max_order, probe == 0)
            runs.append(LanczosResult.from_driver(alphas, betas))
            if probe == 0:
                basis0, order = basis, len(runs[0].alphas)  # the other probes use probe 0's order
        ritz, eigvecs = runs[0].ritz()
        residuals = runs[0].ritz_residuals()
        ok = M.converged(ritz, residuals, cfg.ritz_tol)
        descending = np.argsort(ritz)[::-1]
        top_ok = ok[descending]
        basis_gradient = np.asarray(basis0 @ grad.astype(dtype), np.float64)
        pnr = M.pnr_estimate(np.stack([r.alphas for r in runs]), np.stack([r.betas for r in runs]),
                             PNR_ZERO_TOL)
        # a GGN is PSD (ℓ convex in z): no negative mass is its exact PNR, whatever the probes
        pnr_ok = pnr.converged(cfg.pnr_tol) or (base == "ggn" and np.isinf(pnr.value))
        metrics = {"max_eig": M.max_eigenvalue(ritz), "min_eig": M.min_eigenvalue(ritz),
                   "max_eig_converged": float(top_ok[0]), "min_eig_converged": float(ok[np.argmin(ritz)]),
                   "ritz_converged_top": float(np.argmin(top_ok) if not top_ok.all() else len(top_ok)),
                   "trace_tridiag": M.tridiagonal_trace(runs[0].alphas),
                   "pnr": pnr.value, "pnr_converged": float(pnr_ok),
                   "pnr_relative_error": pnr.relative_error, "lanczos_order": float(order)}
        trace = self._trace(base, pattern, dtype, flat_dtype, params, model_state, basis0,
                            metrics["trace_tridiag"], dim)
        if trace is not None:
            metrics.update(trace=trace.value, trace_stderr=trace.stderr, trace_products=float(trace.products))
        for k in cfg.top_k:
            if k > len(ritz):
                continue
            flag = float(top_ok[:k].all())
            if k > 1:
                metrics[f"mer_{k}"] = M.mer(ritz, k)
                metrics[f"mer_{k}_converged"] = float(top_ok[0] and top_ok[k - 1])
            if trace is not None:
                metrics[f"ter_{k}"] = M.ter(trace.value, ritz, k)
                metrics[f"ter_{k}_converged"] = flag
            metrics[f"ter_tridiag_{k}"] = M.ter_tridiag(runs[0].alphas, ritz, k)
            metrics[f"pgr_{k}"] = M.pgr(ritz, eigvecs, basis_gradient, k)
            metrics[f"pgr_{k}_converged"] = flag
        if base == "hessian" and pattern is None:
            metrics.update(M.stability(metrics["max_eig"], self.hparams))
        density = slq_density(runs, relative_sigma=cfg.density_sigma)
        grid = density.grid(cfg.density_points)
        metrics["density_sigma"] = density.sigma
        metrics.update(self._power(matvec, dim, dtype, base == "hessian" and pattern is None))
        arrays = {"tridiag_alpha": np.stack([r.alphas for r in runs]),
                  "tridiag_beta": np.stack([r.betas for r in runs]),
                  "ritz_values": ritz, "ritz_residuals": residuals,
                  "density_grid": grid, "density": density.evaluate(grid)}
        if cfg.ritz_vectors:
            top = descending[:cfg.ritz_vectors]  # y_i = Vᵀ s_i, as rows
            arrays["ritz_vectors"] = np.asarray(
                jnp.asarray(eigvecs[:, top].T, basis0.dtype) @ basis0, np.float32)
        return metrics, arrays

    def _trace(self, base, pattern, dtype, flat_dtype, params, model_state, basis, tridiag_trace, dim):
        cfg = self.config
        if cfg.trace_probes == 0:
            return None
        if self.host_loop:
            # conv nets on XLA:CPU: a vmapped product over p probes measured slower than p single
            # products (and compiles a second operator), so the probes go one by one
            matvec = functools.partial(self._fn("matvec", pattern, dtype, flat_dtype, base=base),
                                       params, model_state, self.batches)

            def matmat(vs):
                return jnp.stack([matvec(v) for v in vs])
        else:
            matmat = functools.partial(self._fn("matmat", pattern, dtype, flat_dtype, base=base),
                                       params, model_state, self.batches)
        key = jax.random.PRNGKey(cfg.seed + 11)
        if cfg.trace_method == T.TraceMethod.HUTCHINSON:
            return T.hutchinson(matmat, dim, cfg.trace_probes, key, dtype)
        if cfg.trace_method == T.TraceMethod.HUTCHPP:
            return T.hutchpp(matmat, dim, cfg.trace_probes, key, dtype)
        return T.krylov_deflated(matmat, basis, tridiag_trace, cfg.trace_probes, key)

    def _power(self, matvec, dim, dtype, is_full_hessian):
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
        return out

    # -- compiled pieces ----------------------------------------------------------------

    def _cov_gradients(self, params, model_state):
        if not self.host_loop:
            return self._fn("minibatch_grads")(params, model_state, self.minibatches)
        one = self._fn("one_minibatch_grad")
        num = self.minibatches["mask"].shape[0]
        return jnp.concatenate([one(params, model_state, jax.tree_util.tree_map(
            lambda x, b=b: x[b:b + 1], self.minibatches)) for b in range(num)])

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

    def _lanczos(self, base, pattern, dtype, flat_dtype, params, model_state, data, v0, order,
                 max_order, adapt):
        """Lanczos from v0: `order` steps, or with `max_order` the basis sized for the cap and,
        when `adapt`, the order chosen by the top-K Ritz residuals (`lanczos_adaptive`)."""
        cfg = self.config
        if max_order is not None:
            done = top_converged(max(cfg.top_k, default=1), cfg.ritz_tol) if adapt else None
            if self.host_loop:
                matvec = self._fn("matvec", pattern, dtype, flat_dtype, base=base)

                def advance(state, start, stop):
                    return lanczos_host_steps(matvec, state, start, stop, (params, model_state, data))
            else:
                key = ("lanczos_steps", base, pattern, jnp.dtype(dtype).name)
                if key not in self._compiled:
                    def curvature_lanczos_steps(params, model_state, data, state, start, stop):
                        op = self._operator(base, pattern, dtype, flat_dtype, params, model_state, data)
                        return lanczos_traced_steps(op, state, start, stop)
                    self._compiled[key] = jax.jit(curvature_lanczos_steps, donate_argnums=(3,))

                def advance(state, start, stop):
                    return self._compiled[key](params, model_state, data, state, start, stop)
            return lanczos_adaptive(advance, v0, order, max_order, done, seed=cfg.seed)
        if self.host_loop:
            return lanczos_host(self._fn("matvec", pattern, dtype, flat_dtype, base=base), v0, order,
                                self.config.seed, args=(params, model_state, data))
        key = ("lanczos", base, pattern, jnp.dtype(dtype).name, order)
        if key not in self._compiled:
            def curvature_lanczos(params, model_state, data, v0):
                op = self._operator(base, pattern, dtype, flat_dtype, params, model_state, data)
                return lanczos_traced(op, v0, order, self.config.seed)
            self._compiled[key] = jax.jit(curvature_lanczos)
        return self._compiled[key](params, model_state, data, v0)

    def _fn(self, name, pattern=None, dtype=None, flat_dtype=None, base=None):
        """The compiled function `name` ("grad", mini-batch gradients, or the "matvec" /
        batched "matmat" of operator `base`), built once per trial."""
        key = (name, base, pattern, None if dtype is None else jnp.dtype(dtype).name)
        if key in self._compiled:
            return self._compiled[key]
        w, policy = self.workload, self.policy
        # named functions: JAX's compile logs and timing events (benchmarks/first_snapshot.py)
        # call each program by its function's name
        if name == "grad":
            def curvature_gradient(p, s, d):
                return loss_and_gradient(w, p, s, d, policy)
            fn = curvature_gradient
        elif name in ("minibatch_grads", "one_minibatch_grad"):
            def curvature_minibatch_gradients(p, s, d):
                return minibatch_gradients(w, p, s, d, policy)
            fn = curvature_minibatch_gradients
        elif name == "matmat":
            def curvature_matmat(p, s, d, vs):
                return jax.vmap(self._operator(base, pattern, dtype, flat_dtype, p, s, d))(vs)
            fn = curvature_matmat
        else:
            def curvature_matvec(p, s, d, v):
                return self._operator(base, pattern, dtype, flat_dtype, p, s, d)(v)
            fn = curvature_matvec
        self._compiled[key] = jax.jit(fn)
        return self._compiled[key]
