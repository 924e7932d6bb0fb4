"""Performance-profile score: the exact integral, misses as infinity."""

import math

import pytest

from harness.score import performance_profile_scores


def test_fastest_everywhere_scores_one_and_ratios_integrate_exactly():
    times = {"a": {"w1": 1.0, "w2": 2.0}, "b": {"w1": 2.0, "w2": 2.0}}
    scores = performance_profile_scores(times, ["w1", "w2"], tau_max=4.0)
    assert scores["a"] == pytest.approx(1.0)
    # b: ratio 2 on w1 (counts for tau in [2, 4]: 2/3), ratio 1 on w2 (1)
    assert scores["b"] == pytest.approx((2 / 3 + 1) / 2)


def test_misses_and_missing_workloads_count_as_infinite():
    times = {"a": {"w1": 1.0, "w2": math.inf}, "b": {"w1": 5.0}}
    scores = performance_profile_scores(times, ["w1", "w2"], tau_max=4.0)
    assert scores["a"] == pytest.approx(0.5)
    assert scores["b"] == pytest.approx(0.0)
