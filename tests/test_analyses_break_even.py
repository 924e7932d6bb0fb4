"""analyze break-even (Jastrzębski et al., 2020): maxima along a trajectory, the conjecture
judge on hand-made maxima, and the tiny configuration end to end."""

from __future__ import annotations

import dataclasses

import pytest

from harness.analyses import Outcome, sections_for_sweep
from harness.analyses import break_even as B
from harness.analyses.store import stored_result


def test_maxima_take_each_quantity_along_the_trajectory_and_flag_unconverged():
    snaps = [{"kind": "cov", "step": 0, "metrics": {"gram_lambda_1": 2.0, "gram_lambda_star": 0.2,
                                                    "gram_trace": 5.0}},
             {"kind": "cov", "step": 10, "metrics": {"gram_lambda_1": 1.0, "gram_lambda_star": 0.5,
                                                     "gram_trace": 4.0}},
             {"kind": "hessian", "step": 0, "metrics": {"max_eig": 7.0, "max_eig_converged": 0.0}},
             {"kind": "hessian", "step": 10, "metrics": {"max_eig": 3.0, "max_eig_converged": 1.0}}]
    best, unconverged, rising = B.maxima(snaps)
    assert best == {"lambda_K": 2.0, "ratio_K": 0.5, "trace_K": 5.0, "lambda_H": 7.0}
    assert unconverged == ("lambda_H",)
    assert rising == ("ratio_K",)  # its maximum is at the last snapshot


def _runs(lr, lam_k, ratio, seeds=(0, 1)):
    return [B.RunMaxima(f"{lr}-{s}", lr, 128, s, {"lambda_K": lam_k + s, "lambda_H": 10 * lam_k,
                                                  "ratio_K": ratio, "trace_K": lam_k * 3}, ())
            for s in seeds]


def test_judge_compares_the_noisier_extreme_with_the_quieter_one():
    config = B.BreakEvenConfig(batch_sizes=())
    verdicts = {c.name: c.outcome for c in B.judge(_runs(0.1, 1.0, 0.4) + _runs(0.01, 5.0, 0.2), config)}
    assert verdicts == {"c1_lambda_K/η": Outcome.HOLDS, "c1_lambda_H/η": Outcome.HOLDS,
                        "c2_ratio_K/η": Outcome.HOLDS, "c2_trace_K/η": Outcome.HOLDS}
    flipped = {c.name: c.outcome for c in B.judge(_runs(0.1, 5.0, 0.2) + _runs(0.01, 1.0, 0.4), config)}
    assert set(flipped.values()) == {Outcome.FAILS}
    still = [dataclasses.replace(r, rising=("lambda_K",)) for r in _runs(0.01, 5.0, 0.2)]
    rising = {c.name: c for c in B.judge(_runs(0.1, 1.0, 0.4) + still, config)}["c1_lambda_K/η"]
    assert rising.outcome == Outcome.UNDECIDABLE and "train longer" in rising.reason
    overlap = {c.name: c.outcome for c in B.judge(_runs(0.1, 1.0, 0.4) + _runs(0.01, 1.5, 0.2), config)}
    assert overlap["c1_lambda_K/η"] == Outcome.UNDECIDABLE  # 1, 2 vs 1.5, 2.5


@pytest.mark.slow  # trains mnist_mlp with snapshots: ~25 s on a quiet 2-core machine
def test_tiny_configuration_reaches_its_documented_verdicts(db):
    result = B.run(B.TINY, db.url)
    assert len(result.claims) == 4
    assert all(c.outcome == Outcome.UNDECIDABLE and "too few seeds (1 < 2)" in c.reason
               for c in result.claims)
    assert all(set(r.maxima) == set(B.QUANTITIES) for r in result.runs)
    stored = B.result_from_json(result.sweep_id, stored_result(db, result.sweep_id))
    assert stored.claims == result.claims and stored.runs == result.runs
    assert [len(s.figures) for s in sections_for_sweep(db, result.sweep_id)] == [1]
