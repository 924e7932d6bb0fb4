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


def test_time_table_ignores_runs_of_other_versions_data_or_timed_in_a_group(db, mnist_sample):
    from harness.runner import run_trial
    from harness.score import time_table
    from harness.submissions import load_submission
    from tests.conftest import SUBMISSIONS
    from workloads import get_workload

    workload = get_workload("mnist_mlp")
    result = run_trial(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample, 0, db=db)
    ident = (workload.version, mnist_sample.fingerprint)
    assert time_table(db, {"mnist_mlp": ident})["adam"]["mnist_mlp"] == result.time_to_target_s
    assert time_table(db, {"mnist_mlp": ("older-version", mnist_sample.fingerprint)}) == {}
    assert time_table(db, {"mnist_mlp": (workload.version, "other-data")}) == {}
    db.update_run(result.run_id, group_size=4)  # timed inside a vectorised group: not its own time
    assert time_table(db, {"mnist_mlp": ident}) == {}
