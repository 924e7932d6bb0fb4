"""AlgoPerf's external-tuning ruleset (`curvebench tune`): studies of search-space points on the
sweep engine, fastest trial per study, median over studies, both performance-profile integrals."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from harness.algoperf.scoring import trapezoid_error_bound
from harness.algoperf.tuning import tune
from harness.cli import app
from harness.spec import SpecError
from tests.conftest import REPO, SUBMISSIONS

TEST_SUBMISSIONS = REPO / "tests" / "algoperf_submissions"


def _fake_sweep(times):
    """A stand-in for run_sweep that 'measures' times[(study tag, workload, learning_rate)]."""
    calls = []

    def run(requests, tag):
        calls.append((tag, requests))
        trials = []
        for r in requests:
            t = times.get((tag, r.workload, r.hparams["learning_rate"]))
            result = SimpleNamespace(run_id=f"{tag}-{r.workload}-{r.hparams['learning_rate']}",
                                     status="reached" if t is not None else "not_reached",
                                     time_to_target_s=t, algoperf_time_to_target_s=None if t is None else t + 1)
            trials.append(SimpleNamespace(result=result, hparams=dict(r.hparams)))
        return SimpleNamespace(trials=trials)

    return run, calls


def test_fastest_trial_per_study_then_median_over_studies():
    """jit_adam lists two points (learning rates 0.002 and 0.001); three studies."""
    times = {("study0", "a", 0.002): 5.0, ("study0", "a", 0.001): 3.0,
             ("study1", "a", 0.002): 4.0,  # its other trial missed
             ("study2", "a", 0.001): 9.0, ("study2", "a", 0.002): 8.0}
    run, calls = _fake_sweep(times)
    result = tune(str(TEST_SUBMISSIONS / "jit_adam"), ["a"], 2, 3, run, timing="training",
                  others={"other": {"a": 8.0}})
    assert [tag for tag, _ in calls] == ["study0", "study1", "study2"]
    assert [r.seed for r in calls[1][1]] == [1, 1]
    assert result.study_times["a"] == [3.0, 4.0, 8.0]
    assert result.times["jit_adam"]["a"] == 4.0
    assert result.suite_scores["jit_adam"] == pytest.approx(1.0)
    assert result.suite_scores["other"] == pytest.approx((4.0 - 2.0) / 3.0)
    gap = abs(result.algoperf_scores["other"] - result.suite_scores["other"])
    assert 0 < gap <= trapezoid_error_bound() + 1e-12
    algoperf = tune(str(TEST_SUBMISSIONS / "jit_adam"), ["a"], 2, 3, run)
    assert algoperf.times["jit_adam"]["a"] == 5.0  # AlgoPerf's times (here training + 1)


def test_range_spaces_draw_each_studys_points_under_its_own_seed():
    run, calls = _fake_sweep({})
    result = tune(str(TEST_SUBMISSIONS / "pmap_adam"), ["a"], 2, 2, run)
    first, second = ([r.hparams for r in reqs] for _, reqs in calls)
    assert first != second and result.search_seed == 0
    assert math.isinf(result.times["pmap_adam"]["a"])


def test_tune_needs_a_search_space():
    run, _ = _fake_sweep({})
    with pytest.raises(SpecError, match="has no tuning_search_space.json"):
        tune(str(SUBMISSIONS / "adam"), ["a"], 1, 1, run)


@pytest.mark.slow
def test_cli_tune_runs_two_studies_of_a_list_space(tmp_path):
    db = str(tmp_path / "r.db")
    res = CliRunner().invoke(app, ["tune", str(TEST_SUBMISSIONS / "jit_adam"), "--workloads",
                                   "mnist_mlp", "--trials", "2", "--studies", "2",
                                   "--max-steps", "150", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["trials"]) == 4 and {t["study"] for t in out["trials"]} == {0, 1}
    assert all(t["status"] == "reached" for t in out["trials"])
    assert out["times"]["jit_adam"]["mnist_mlp"] == pytest.approx(
        sorted(out["study_times"]["mnist_mlp"])[0] / 2 + sorted(out["study_times"]["mnist_mlp"])[1] / 2)
    from harness.db import open_database
    tags = {r.tag for r in open_database(db).runs()}
    assert tags == {"tune-study0", "tune-study1"}


def test_rulesets_are_algoperf_v06s():
    from harness.algoperf.tuning import EXTERNAL, SELF_TUNING, budget_steps, ruleset

    assert (EXTERNAL.trials, EXTERNAL.studies, EXTERNAL.budget_factor) == (5, 3, 1.0)
    assert (SELF_TUNING.trials, SELF_TUNING.studies, SELF_TUNING.budget_factor) == (1, 3, 1.5)
    assert ruleset("self-tuning") is SELF_TUNING
    with pytest.raises(SpecError, match="valid: external-tuning, self-tuning"):
        ruleset("open")
    assert budget_steps("mnist_mlp", 40, 1.5) == 60


def test_self_tuning_one_run_per_study_and_workload_with_a_larger_budget():
    from harness.algoperf.tuning import SELF_TUNING

    calls = []
    seconds = {0: 4.0, 1: None, 2: 6.0}

    def run(requests, tag, budget_factor):
        calls.append((tag, budget_factor, requests))
        t = seconds[requests[0].seed]
        result = SimpleNamespace(run_id=tag, status="reached" if t else "not_reached",
                                 time_to_target_s=t, algoperf_time_to_target_s=t)
        return SimpleNamespace(trials=[SimpleNamespace(result=result, hparams={})])

    folder = TEST_SUBMISSIONS / "self_tuning_nesterov"
    result = tune(str(folder), ["a"], 1, 3, run, rules=SELF_TUNING)
    assert [(tag, f, [(r.hparams, r.seed) for r in reqs]) for tag, f, reqs in calls] == [
        ("study0", 1.5, [({}, 0)]), ("study1", 1.5, [({}, 1)]), ("study2", 1.5, [({}, 2)])]
    assert result.ruleset == "self-tuning" and result.study_times["a"] == [4.0, math.inf, 6.0]
    assert result.times[result.submission]["a"] == 6.0  # the median, a miss counting as inf
    with pytest.raises(SpecError, match="has tuning_search_space.json .* external-tuning"):
        tune(str(TEST_SUBMISSIONS / "jit_adam"), ["a"], 1, 3, run, rules=SELF_TUNING)


@pytest.mark.slow
def test_cli_tune_self_tuning_ruleset(tmp_path):
    db = str(tmp_path / "r.db")
    res = CliRunner().invoke(app, ["tune", str(TEST_SUBMISSIONS / "self_tuning_nesterov"),
                                   "--ruleset", "self-tuning", "--workloads", "mnist_mlp",
                                   "--studies", "2", "--max-steps", "40", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ruleset"] == "self-tuning" and len(out["trials"]) == 2
    assert all(t["status"] == "reached" and t["hparams"] == {} for t in out["trials"])
    from harness.db import open_database
    assert {r.max_steps for r in open_database(db).runs()} == {60}
