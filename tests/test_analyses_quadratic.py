"""analyze quadratic (Ciuca): the predicted equilibrium against a direct simulation of the
same recursion, the judge, and the tiny configuration end to end (with the top-k subspace
rotation on a width-16 mnist_mlp)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analyses import Outcome, sections_for_sweep
from harness.analyses import quadratic as Q
from harness.analyses.store import stored_result


def test_prediction_matches_a_simulation_of_sgd_on_the_noisy_quadratic():
    lam, alpha, sigma, batch = np.array([1.0, 0.5, 0.1]), 0.4, 1.0, 8
    rng = np.random.default_rng(0)
    x, acc, n = np.zeros(3), 0.0, 0
    for t in range(60_000):
        noise = rng.normal(0.0, sigma / np.sqrt(batch), 3)
        x = x - alpha * 2 * lam * (x + noise)
        if t >= 1000:
            acc, n = acc + float(np.sum(lam * x ** 2)), n + 1
    assert acc / n == pytest.approx(Q.predicted_excess(lam, alpha, sigma, batch), rel=0.05)
    with pytest.raises(ValueError, match="no equilibrium"):
        Q.predicted_excess(lam, 1.0, sigma, batch)


def test_judge():
    assert Q.judge_one(0.5, 1.05, 0.01, 1.0, 0.15).outcome == Outcome.HOLDS
    assert Q.judge_one(0.5, 1.5, 0.01, 1.0, 0.15).outcome == Outcome.FAILS
    assert Q.judge_one(0.5, 1.05, 0.5, 1.0, 0.15).outcome == Outcome.UNDECIDABLE


def test_tiny_configuration_reaches_its_documented_verdict(db):
    result = Q.run(Q.TINY, db.url)
    assert [(c.name, c.outcome) for c in result.claims] == [
        ("equilibrium/α=0.5", Outcome.HOLDS), ("rotation/stable", Outcome.UNDECIDABLE),
        ("rotation/settles_early", Outcome.UNDECIDABLE)]
    assert "raise the Lanczos order" in result.claims[1].reason
    (run,) = result.rotation
    assert run.steps == [0, 2, 10, 20] and len(run.consecutive) == 3 and run.to_last[-1] == pytest.approx(1)
    stored = Q.result_from_json(result.sweep_id, stored_result(db, result.sweep_id))
    assert stored.claims == result.claims and stored.rotation == result.rotation
    (section,) = sections_for_sweep(db, result.sweep_id)
    assert [f.slug for f in section.figures] == ["quadratic-equilibrium", "quadratic-rotation"]
