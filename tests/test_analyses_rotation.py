"""The top-k subspace rotation of `analyze quadratic`: overlaps against scipy's principal
angles, stored Ritz vectors against a dense Hessian, and the judge's three outcomes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.linalg import subspace_angles

from curvature_models import TinyMlp, to_float64
from harness.analyses import Outcome, subspace
from harness.analyses.rotation import RotationRun, RotationSettings, judge
from harness.curvature import SnapshotConfig, Snapshotter
from harness.curvature.settings import CurvatureOptions
from harness.spec import SpecError


def _random_rows(rng, k, dim):
    return rng.normal(size=(k, dim))


def test_overlap_and_angles_match_scipy():
    rng = np.random.default_rng(0)
    for k, dim in ((1, 5), (4, 50), (6, 30)):
        a, b = _random_rows(rng, k, dim), _random_rows(rng, k, dim)
        b[: k // 2] += 3 * a[: k // 2]  # partly aligned, so the angles spread over [0, π/2]
        angles = subspace_angles(a.T, b.T)  # descending
        np.testing.assert_allclose(subspace.principal_angles(a, b), angles[::-1], atol=1e-10)
        assert subspace.overlap(a, b) == pytest.approx(np.mean(np.cos(angles) ** 2), abs=1e-12)
    a = _random_rows(rng, 3, 40)
    mixed = rng.normal(size=(3, 3)) @ a  # another basis of the same span
    assert subspace.overlap(a, mixed) == pytest.approx(1.0, abs=1e-12)
    q = np.linalg.qr(rng.normal(size=(40, 6)))[0].T
    assert subspace.overlap(q[:3], q[3:]) == pytest.approx(0.0, abs=1e-12)


def test_overlap_range_contains_the_true_overlap_of_perturbed_subspaces():
    """Subspaces estimated within ‖sin Θ‖_F = e of the true ones: the true overlap is in range."""
    rng = np.random.default_rng(1)
    k, dim = 4, 60
    for _ in range(20):
        true_a, true_b = _random_rows(rng, k, dim), _random_rows(rng, k, dim)
        true_b += rng.uniform(0, 4) * true_a
        est_a = true_a + rng.uniform(0, 0.3) * _random_rows(rng, k, dim)
        est_b = true_b + rng.uniform(0, 0.3) * _random_rows(rng, k, dim)
        err_a = np.linalg.norm(np.sin(subspace.principal_angles(true_a, est_a)))
        err_b = np.linalg.norm(np.sin(subspace.principal_angles(true_b, est_b)))
        r = subspace.overlap_range(subspace.overlap(est_a, est_b), k, err_a, err_b)
        assert r.low - 1e-12 <= subspace.overlap(true_a, true_b) <= r.high + 1e-12
        assert 0.0 <= r.low <= r.measured <= r.high <= 1.0


def test_stored_ritz_vectors_are_ritz_pairs_of_the_dense_hessian():
    """Hv ≈ θv with the stored residual, rows in descending θ (order 8 of 73: not converged);
    at order 20 the Davis–Kahan estimate is at least the true distance to the dense top-k
    eigenspace. (At order 8 Lanczos misses the top eigenvalue, which no residual can show:
    the estimate assumes none above θ_k was missed.)"""
    w = TinyMlp(width=3, activation="sigmoid")
    data = w.synthetic_dataset({"train": 19}, seed=4)
    split = data.splits["train"]
    params, state = w.init(jax.random.PRNGKey(2))
    k = 3
    snap, converged = (Snapshotter(w, data, SnapshotConfig(
        curvature_batch=None, lanczos_order=order, top_k=(1,), trace_probes=0, ritz_vectors=k),
        batch_size=19).snapshot(params, state)[0] for order in (8, 20))
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(to_float64(params))
        inputs = jnp.asarray(split["inputs"], jnp.float64)
        full = {"targets": jnp.asarray(split["targets"]), "mask": jnp.ones(19, jnp.float64)}

        def loss(f):
            out, _ = w.apply(unravel(f), state, inputs, train=False)
            return w.loss_per_example(out, full).mean()

        dense = np.asarray(jax.jit(jax.hessian(loss))(flat))
    vectors = snap.arrays["ritz_vectors"]
    assert vectors.dtype == np.float32 and vectors.shape == (k, flat.size)
    order = np.argsort(snap.arrays["ritz_values"])[::-1][:k]
    theta, stored_residual = snap.arrays["ritz_values"][order], snap.arrays["ritz_residuals"][order]
    v = vectors.astype(np.float64)
    np.testing.assert_allclose(v @ v.T, np.eye(k), atol=1e-5)
    residual = np.linalg.norm(v @ dense - theta[:, None] * v, axis=1)
    np.testing.assert_allclose(residual, stored_residual, rtol=0.05, atol=1e-5 * theta[0])
    assert residual.max() > 1e-4 * theta[0], "order 8 < 73 parameters: not converged, a real test"
    exact = np.linalg.eigh(dense)[1][:, ::-1][:, :k].T
    distance = np.linalg.norm(np.sin(subspace.principal_angles(converged.arrays["ritz_vectors"], exact)))
    estimate = subspace.davis_kahan(converged.arrays["ritz_values"], converged.arrays["ritz_residuals"], k)
    assert distance <= estimate < 0.01
    with pytest.raises(SpecError, match="ritz_vectors"):
        SnapshotConfig(lanczos_order=8, top_k=(1,), ritz_vectors=9)
    with pytest.raises(SpecError, match="--curvature-vectors"):
        CurvatureOptions(kinds="hessian", ritz_vectors=21).config()
    assert CurvatureOptions(kinds="hessian", ritz_vectors=5).config().ritz_vectors == 5


def _run(consecutive, errors, steps=(0, 10, 20, 40)):
    return RotationRun("r", 0, 1000, list(steps), [[1.0]] * len(steps), list(errors),
                       list(consecutive), list(consecutive), [0.9] * len(steps))


def test_judge_holds_fails_and_says_when_the_ritz_vectors_are_too_inaccurate():
    settings = RotationSettings("mnist_mlp", "momentum", (0,), 40, "at:0/10/20/40",
                                k=2, curvature_batch=64, lanczos_order=8, stable_overlap=0.8,
                                early_fraction=0.25)
    cases = {((0.1, 0.95, 0.97), (0.01,) * 4): Outcome.HOLDS,  # the step 0→10 pair is before step 10
             ((0.9, 0.5, 0.97), (0.01,) * 4): Outcome.FAILS,
             ((0.9, 0.85, 0.97), (0.5,) * 4): Outcome.UNDECIDABLE}
    for (consecutive, errors), outcome in cases.items():
        stable, settled = judge([_run(consecutive, errors)], settings)
        assert stable.outcome == outcome, stable
        assert "random subspace 0.002" in stable.reason
    assert "raise the Lanczos order" in judge([_run((0.9, 0.85, 0.97), (0.5,) * 4)], settings)[0].reason
