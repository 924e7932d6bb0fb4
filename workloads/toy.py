"""Toy workloads with exactly computable curvature, to check the curvature engine against truth.

* ``lowrank`` (Young, Snider & Feng §3): learn L, R ∈ R^{N×D} (N=100, D=10) with L Rᵀ ≈ M,
  M a fixed symmetric matrix with unit Gaussian entries; loss (1/2N)‖L Rᵀ − M‖²_F,
  one example per row of M, full-batch GD (batch = the N rows). Good init:
  entries N(0, 1); knob ``bad_init``: L ~ N(+2, 1), R ~ N(−2, 1), a much sharper
  start. Target: excess loss over the rank-D SVD optimum ≤ 0.5.
* ``uv`` (Kalra & Barkeshli (2023) App. B): two-layer linear net f(x) = vᵀu x/√n, u, v ∈ R^n
  (knob ``width`` n), NTP, N(0, 1) init, MSE ½(f − y)² on the one example
  (x, y) = (1, 0). Target: loss ≤ 1e-6.
* ``noisy_quadratic`` (Ciuca): f(x) = Σ_i λ_i (x_i + ε_i)², ε ~ N(0, σ²) per
  example (a fixed pool of 4,096 draws per split); spectrum knob ``powerlaw``
  (λ_i = 1/i) or ``linear`` (λ_i = i/d). Target: excess loss Σ λ_i x_i² ≤ 0.01.

Each exposes its exact Hessian (`exact_hessian`, dense, float64, in
`ravel_pytree(params)` order) or eigenvalues for tests. Data is generated
deterministically (no files; --data-dir is not used).

Cost (measured on 2 CPU cores with harness.runner.run_trial): under a second of training
per trial (lowrank:bad_init=1 + gd_warmup: 1,110 steps, 0.09 s; uv + gd: 0.01 s), plus
~1-3 s compilation. GPU: not measured, no GPU lent.
Run: curvebench run --workload lowrank:bad_init=1 --submission gd_warmup
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from harness.spec import Dataset, DataUnavailable, Knob, Target, Workload

GENERATED = "generated"
NOISE_POOL = 4096


def _check_source(name: str, source: str | None) -> None:
    if source not in (None, GENERATED):
        raise DataUnavailable(f"{name} generates its data; the only source is {GENERATED!r}, "
                              f"got {source!r}")


def _masked_sums(per_example: dict[str, jax.Array], mask: jax.Array) -> dict[str, jax.Array]:
    out = {k: (v * mask).sum() for k, v in per_example.items()}
    out["count"] = mask.sum()
    return out


class LowRank(Workload):
    """Low-rank approximation L Rᵀ ≈ M of Young, Snider & Feng §3, full-batch; exact Hessian available."""

    name = "lowrank"
    scored_by_default = False
    knobs = {"bad_init": Knob(bool, False, choices=(False, True),
                              doc="L ~ N(+2, 1), R ~ N(-2, 1) instead of N(0, 1)")}
    n, d = 100, 10
    bad_means = (2.0, -2.0)
    data_seed = 0
    target = Target("excess_loss", 0.5, "min", "validation")
    batch_size = 100
    max_steps = 3000
    eval_every = 10
    eval_batch_size = 100

    def matrix(self, seed: int | None = None) -> np.ndarray:
        """The symmetric target M: unit Gaussian upper triangle (diagonal included), mirrored."""
        a = np.random.default_rng(self.data_seed if seed is None else seed).normal(size=(self.n, self.n))
        return np.triu(a) + np.triu(a, 1).T

    def optimal_loss(self, m: np.ndarray) -> float:
        """(1/2N) Σ_{i>D} σ_i(M)²: the loss of the best rank-D approximation (Eckart-Young)."""
        s = np.linalg.svd(m, compute_uv=False)
        return float((s[self.d:] ** 2).sum() / (2 * self.n))

    def _dataset(self, m: np.ndarray, rows: dict[str, np.ndarray], source: str) -> Dataset:
        share = np.float32(self.optimal_loss(m))
        splits = {split: {"inputs": r.astype(np.int32), "targets": m[r].astype(np.float32),
                          "optimal": np.full(len(r), share, np.float32)} for split, r in rows.items()}
        return Dataset(name=self.name, source=source, splits=splits)

    def load_data(self, data_dir=None, source=None):
        _check_source(self.name, source)
        rows = np.arange(self.n)
        return self._dataset(self.matrix(), {"train": rows, "validation": rows}, GENERATED)

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        rows = {split: rng.integers(0, self.n, size) for split, size in sizes.items()}
        return self._dataset(self.matrix(seed), rows, "synthetic")

    def sample_batch(self, train, rng, batch_size):
        """A batch as large as the training set is the full batch, in order (GD); else uniform."""
        if batch_size == train["inputs"].shape[0]:
            return {**train, "mask": jnp.ones((batch_size,), jnp.float32)}
        return super().sample_batch(train, rng, batch_size)

    def init(self, rng):
        mean_l, mean_r = self.bad_means if self.variant["bad_init"] else (0.0, 0.0)
        kl, kr = jax.random.split(rng)
        shape = (self.n, self.d)
        return {"L": mean_l + jax.random.normal(kl, shape), "R": mean_r + jax.random.normal(kr, shape)}, {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        return params["L"][inputs] @ params["R"].T, model_state

    def loss_per_example(self, outputs, batch):
        losses = 0.5 * jnp.sum((outputs - batch["targets"]) ** 2, axis=-1)
        return jnp.where(batch["mask"] > 0, losses, 0.0)

    def eval_batch(self, params, model_state, batch):
        loss = self.loss_per_example(self.apply(params, model_state, batch["inputs"], train=False)[0], batch)
        return _masked_sums({"loss": loss, "excess_loss": loss - batch["optimal"]}, batch["mask"])

    def metric_ranges(self):
        return {"loss": (0.0, float("inf")), "excess_loss": (-1e-3, float("inf"))}

    def exact_hessian(self, params, m: np.ndarray) -> np.ndarray:
        """Hessian of (1/2N)‖L Rᵀ − M‖²_F over [vec L; vec R] (row-major), from the closed form.

        H_LL = (1/N) I ⊗ RᵀR, H_RR = (1/N) I ⊗ LᵀL,
        ∂²/∂L_ia ∂R_kb = (1/N)(L_ib R_ka + δ_ab E_ik), E = L Rᵀ − M.
        """
        lm, rm = (np.asarray(params[k], np.float64) for k in ("L", "R"))
        n, d = lm.shape
        e = lm @ rm.T - m
        h_ll = np.kron(np.eye(n), rm.T @ rm)
        h_rr = np.kron(np.eye(n), lm.T @ lm)
        h_lr = (np.einsum("ib,ka->iakb", lm, rm)
                + np.einsum("ik,ab->iakb", e, np.eye(d))).reshape(n * d, n * d)
        return np.block([[h_ll, h_lr], [h_lr.T, h_rr]]) / n


class UV(Workload):
    """The uv model of Kalra & Barkeshli (2023) App. B: f = vᵀu x/√n on one example (1, 0); exact Hessian."""

    name = "uv"
    scored_by_default = False
    knobs = {"width": Knob(int, 512, doc="n, the hidden width", minimum=1)}
    target = Target("loss", 1e-6, "min", "validation")
    batch_size = 1
    max_steps = 1000
    eval_every = 10
    eval_batch_size = 1

    def _dataset(self, source):
        example = {"inputs": np.ones((1, 1), np.float32), "targets": np.zeros((1, 1), np.float32)}
        return Dataset(name=self.name, source=source, splits={"train": example, "validation": example})

    def load_data(self, data_dir=None, source=None):
        _check_source(self.name, source)
        return self._dataset(GENERATED)

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        splits = {split: {"inputs": rng.normal(size=(size, 1)).astype(np.float32),
                          "targets": rng.normal(size=(size, 1)).astype(np.float32)}
                  for split, size in sizes.items()}
        return Dataset(name=self.name, source="synthetic", splits=splits)

    def init(self, rng):
        ku, kv = jax.random.split(rng)
        n = self.variant["width"]
        return {"u": jax.random.normal(ku, (n,)), "v": jax.random.normal(kv, (n,))}, {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        n = params["u"].shape[0]
        return inputs * (params["v"] @ params["u"]) / jnp.sqrt(n), model_state

    def loss_per_example(self, outputs, batch):
        losses = 0.5 * jnp.sum((outputs - batch["targets"]) ** 2, axis=-1)
        return jnp.where(batch["mask"] > 0, losses, 0.0)

    def eval_batch(self, params, model_state, batch):
        loss = self.loss_per_example(self.apply(params, model_state, batch["inputs"], train=False)[0], batch)
        return _masked_sums({"loss": loss}, batch["mask"])

    def metric_ranges(self):
        return {"loss": (0.0, float("inf"))}

    def exact_hessian(self, params, x: float = 1.0, y: float = 0.0) -> np.ndarray:
        """Hessian of ½(f − y)² over [u; v]: J Jᵀ + (f − y) x/√n [[0, I], [I, 0]], J = x [v; u]/√n."""
        u, v = (np.asarray(params[k], np.float64) for k in ("u", "v"))
        n = len(u)
        f = x * (v @ u) / np.sqrt(n)
        j = x * np.concatenate([v, u]) / np.sqrt(n)
        swap = np.block([[np.zeros((n, n)), np.eye(n)], [np.eye(n), np.zeros((n, n))]])
        return np.outer(j, j) + (f - y) * x / np.sqrt(n) * swap


class NoisyQuadratic(Workload):
    """Seed 003's noisy quadratic Σ λ_i (x_i + ε_i)²: Hessian exactly 2 diag(λ)."""

    name = "noisy_quadratic"
    scored_by_default = False
    knobs = {"dim": Knob(int, 100, doc="number of coordinates", minimum=1),
             "spectrum": Knob(str, "powerlaw", choices=("powerlaw", "linear"),
                              doc="λ_i = 1/i (powerlaw) or i/dim (linear)"),
             "sigma": Knob(float, 1.0, doc="noise standard deviation", minimum=0.0)}
    target = Target("excess_loss", 0.01, "min", "validation")
    batch_size = 32
    max_steps = 2000
    eval_every = 20
    eval_batch_size = 1024

    def curvatures(self) -> np.ndarray:
        """λ_1 ≥ … ≥ λ_d (the Hessian's eigenvalues are 2λ)."""
        d = self.variant["dim"]
        i = np.arange(1, d + 1, dtype=np.float64)
        return 1.0 / i if self.variant["spectrum"] == "powerlaw" else i[::-1] / d

    def exact_hessian(self, params=None) -> np.ndarray:
        """2 diag(λ), for every x and every batch."""
        return np.diag(2.0 * self.curvatures())

    def exact_gradient_covariance(self, batch_size: int) -> np.ndarray:
        """Covariance of a mini-batch gradient: 4 σ² diag(λ²) / batch_size."""
        return np.diag(4.0 * self.variant["sigma"] ** 2 * self.curvatures() ** 2 / batch_size)

    def _dataset(self, sizes, seed, source):
        rng = np.random.default_rng(seed)
        d, sigma = self.variant["dim"], self.variant["sigma"]
        splits = {split: {"inputs": (sigma * rng.normal(size=(size, d))).astype(np.float32),
                          "targets": np.zeros((size,), np.float32)} for split, size in sizes.items()}
        return Dataset(name=self.name, source=source, splits=splits)

    def load_data(self, data_dir=None, source=None):
        _check_source(self.name, source)
        return self._dataset({"train": NOISE_POOL, "validation": NOISE_POOL}, 0, GENERATED)

    def synthetic_dataset(self, sizes, seed=0):
        return self._dataset(sizes, seed + 1, "synthetic")

    def init(self, rng):
        return {"x": jax.random.normal(rng, (self.variant["dim"],))}, {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        return params["x"] + inputs, model_state

    def loss_per_example(self, outputs, batch):
        lam = jnp.asarray(self.curvatures(), outputs.dtype)
        return jnp.where(batch["mask"] > 0, (lam * outputs ** 2).sum(-1), 0.0)

    def eval_batch(self, params, model_state, batch):
        loss = self.loss_per_example(self.apply(params, model_state, batch["inputs"], train=False)[0], batch)
        excess = jnp.sum(jnp.asarray(self.curvatures(), params["x"].dtype) * params["x"] ** 2)
        return _masked_sums({"loss": loss, "excess_loss": jnp.full_like(loss, excess)}, batch["mask"])

    def metric_ranges(self):
        return {"loss": (0.0, float("inf")), "excess_loss": (0.0, float("inf"))}
