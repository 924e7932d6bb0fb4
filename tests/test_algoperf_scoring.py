"""AlgoPerf's scoring formulas beside the suite's exact integral, and search-space sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.algoperf.scoring import (algoperf_scores, external_tuning_times,
                                      performance_profiles, study_time, trapezoid_error_bound,
                                      workload_time)
from harness.algoperf.search_space import SearchSpace, trial_requests
from harness.records.sweep import TrialRequest
from harness.score import performance_profile_scores
from harness.spec import SpecError


def _random_table(rng):
    submissions, workloads = int(rng.integers(2, 6)), int(rng.integers(1, 9))
    times = {f"s{i}": {f"w{j}": (math.inf if rng.random() < 0.2 else float(rng.uniform(1, 12)))
                       for j in range(workloads)} for i in range(submissions)}
    return times, [f"w{j}" for j in range(workloads)]


@pytest.mark.parametrize("num_points", [100, 20])
def test_trapezoid_score_agrees_with_exact_integral_within_its_bound(num_points):
    rng = np.random.default_rng(num_points)
    bound = trapezoid_error_bound(num_points)
    worst = 0.0
    for _ in range(300):
        times, workloads = _random_table(rng)
        ours = performance_profile_scores(times, workloads)
        theirs = algoperf_scores(times, workloads, num_points=num_points)
        worst = max(worst, max(abs(ours[s] - theirs[s]) for s in times))
    assert worst <= bound + 1e-12
    assert worst > bound / 4, "random tables should come near the bound"


def test_scores_agree_exactly_when_ratios_are_one_or_beyond_tau_max():
    times = {"a": {"w1": 1.0, "w2": 2.0}, "b": {"w1": 10.0, "w2": 1.0}}
    # ratios: a = (1, 2), b = (10, 1); tau grid of 4 points: 1, 2, 3, 4; a's step at 2 is
    # smeared over [1, 2] by the trapezoid rule, b has no step inside (1, 4]
    exact = performance_profile_scores(times, ["w1", "w2"])
    trap = algoperf_scores(times, ["w1", "w2"], num_points=4)
    assert exact["b"] == trap["b"] == 0.5
    assert abs(exact["a"] - trap["a"]) <= trapezoid_error_bound(4)


def test_profiles_are_step_functions_of_ratios():
    taus, rho = performance_profiles({"a": {"w": 1.0}, "b": {"w": 2.5}}, ["w"], num_points=7)
    np.testing.assert_allclose(taus, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    np.testing.assert_array_equal(rho["a"], np.ones(7))
    np.testing.assert_array_equal(rho["b"], [0, 0, 0, 1, 1, 1, 1])


def test_external_tuning_fastest_trial_then_median_over_studies():
    assert study_time([5.0, None, 3.0]) == 3.0 and study_time([None, None]) == math.inf
    assert workload_time([[5.0, 3.0], [4.0], [None]]) == 4.0
    assert workload_time([[1.0], [None]]) == math.inf  # median of (1, inf)
    table = external_tuning_times({"s": {"w": [[2.0, 9.0], [3.0]]}})
    assert table == {"s": {"w": 2.5}}


def test_list_search_space_points_in_order():
    space = SearchSpace.from_json([{"lr": 0.1, "b": 1}, {"lr": 0.2, "b": 2}])
    assert space.is_list and space.point(1) == {"lr": 0.2, "b": 2}
    assert space.sample(2) == [{"lr": 0.1, "b": 1}, {"lr": 0.2, "b": 2}]
    with pytest.raises(SpecError, match="lists 2 points"):
        space.point(2)
    with pytest.raises(SpecError, match="point 1 has keys"):
        SearchSpace.from_json([{"lr": 0.1}, {"b": 1}])


def test_range_search_space_quasi_random_under_a_seed():
    space = SearchSpace.from_json({
        "lr": {"min": 1e-4, "max": 1e-1, "scaling": "log"},
        "wd": {"min": 0.0, "max": 0.5, "scaling": "linear"},
        "ls": {"feasible_points": [0.0, 0.1, 0.2]},
    })
    points = space.sample(64, seed=3)
    assert points == space.sample(64, seed=3) and points != space.sample(64, seed=4)
    assert space.point(5, seed=3) == points[5]
    lrs = np.array([p["lr"] for p in points])
    assert np.all((lrs >= 1e-4) & (lrs <= 1e-1))
    # log scale: a quarter of the points in each decade-ish quarter of log10 range, +- a few
    counts = np.histogram(np.log10(lrs), bins=3, range=(-4, -1))[0]
    assert counts.min() >= 18
    assert {p["ls"] for p in points} == {0.0, 0.1, 0.2}
    wds = np.array([p["wd"] for p in points])
    assert np.all((wds >= 0) & (wds <= 0.5)) and abs(wds.mean() - 0.25) < 0.03


@pytest.mark.parametrize("bad,match", [
    ({"lr": {"min": 1.0}}, "numeric min and max"),
    ({"lr": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "min > 0"),
    ({"lr": {"min": 1.0, "max": 2.0, "scaling": "cubic"}}, "not linear or log"),
    ({"lr": {"feasible_points": []}}, "non-empty"),
    ([], "one or more"),
    ("x", "JSON list of points or an object"),
])
def test_bad_search_spaces_say_what_is_wrong(bad, match):
    with pytest.raises(SpecError, match=match):
        SearchSpace.from_json(bad)


def test_trial_requests_for_the_sweep_engine():
    space = SearchSpace.from_json({"lr": {"min": 1e-3, "max": 1e-2, "scaling": "log"}})
    requests = trial_requests("mnist_mlp", "algoperf_adamw", space, 3, seeds=[0, 1])
    assert len(requests) == 6 and all(isinstance(r, TrialRequest) for r in requests)
    assert requests[0].hparams == requests[1].hparams == space.point(0)
    assert [r.seed for r in requests[:2]] == [0, 1]


def _straightforward_v06_score(times, workloads, tau_max=4.0, num_points=100):
    """AlgoPerf v0.6's benchmark score written out plainly, loop by loop: per workload the
    best time over submissions; per submission and tau on a linear grid of num_points over
    [1, tau_max], the fraction of workloads whose ratio to the best is at most tau (a miss or a
    ratio past tau_max never counts); the trapezoid rule over the grid, divided by tau_max - 1."""
    grid = [1.0 + (tau_max - 1.0) * k / (num_points - 1) for k in range(num_points)]
    scores = {}
    for sub in times:
        rho = []
        for tau in grid:
            count = 0
            for w in workloads:
                best = min(times[s][w] for s in times)
                t = times[sub][w]
                if math.isfinite(t) and math.isfinite(best) and t / best <= tau_max and t / best <= tau:
                    count += 1
            rho.append(count / len(workloads))
        area = sum((grid[k + 1] - grid[k]) * (rho[k] + rho[k + 1]) / 2 for k in range(num_points - 1))
        scores[sub] = area / (tau_max - 1.0)
    return scores


@pytest.mark.parametrize("seed", range(5))
def test_v06_score_matches_a_straightforward_implementation_on_random_tables(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(40):
        times, workloads = _random_table(rng)
        expected = _straightforward_v06_score(times, workloads)
        got = algoperf_scores(times, workloads)
        assert got.keys() == expected.keys()
        for sub in times:
            assert got[sub] == pytest.approx(expected[sub], abs=1e-12)
            assert 0.0 <= got[sub] <= 1.0
