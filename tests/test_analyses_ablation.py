"""analyze ablation (Young, Snider & Feng Tab. 2–3): the ordering judge on hand-made steps,
and the tiny configuration end to end reaching its documented verdict."""

from __future__ import annotations

import math

import pytest

from harness.analyses import Outcome, sections_for_sweep
from harness.analyses import ablation as A
from harness.analyses.store import stored_result

WIDE, NARROW = A.canonical(A.tab2("relu", 200)), A.canonical(A.tab2("relu", 100))


def _verdict(wide, narrow, eval_every=1, min_seeds=3):
    claims = A.judge({WIDE: wide, NARROW: narrow}, eval_every, min_seeds)
    assert [c.name for c in claims] == ["width/relu"]  # only orderings whose variants ran
    return claims[0].outcome, claims[0].reason


def test_ordering_verdicts():
    assert _verdict([20, 21, 22], [28, 30, 31])[0] == Outcome.HOLDS
    assert _verdict([28, 30, 31], [20, 21, 22])[0] == Outcome.FAILS
    assert _verdict([20, 21, math.inf], [28, 30, 31]) == (
        Outcome.UNDECIDABLE, "21 [20–inf] vs 30 [28–31] steps; the seeds' spreads overlap; more seeds")
    assert "too few seeds (2 < 3)" in _verdict([20, 21], [28, 30])[1]
    outcome, reason = _verdict([20, 20, 20], [30, 30, 30], eval_every=20)
    assert outcome == Outcome.UNDECIDABLE and "too coarse evals" in reason


@pytest.mark.slow  # trains mnist_mlp: ~20 s on a quiet 2-core machine, a minute under load
def test_tiny_configuration_reaches_its_documented_verdict(db):
    result = A.run(A.TINY, db.url)
    assert [(c.name, c.outcome) for c in result.claims] == [("width/relu", Outcome.UNDECIDABLE)]
    assert "too few seeds (2 < 3)" in result.claims[0].reason
    assert all(math.isfinite(v) for vals in result.steps.values() for v in vals)
    stored = A.result_from_json(result.sweep_id, stored_result(db, result.sweep_id))
    assert stored.claims == result.claims and stored.steps == result.steps
    assert [len(s.figures) for s in sections_for_sweep(db, result.sweep_id)] == [1]
