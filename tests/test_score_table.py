"""`curvebench score`'s numbers, computed by harness.score: the per-workload summary of the
trials just run, the variants they are compared on, and the table of declared sets, times and
performance-profile scores (real SQLite file, rows written through the Database API)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from harness.db import open_database
from harness.score import (RunSelection, Timing, performance_profile_scores, score_table,
                           summarize_trials, summarized_variants, time_table)
from tests.stored_runs import add_run


def _trial(workload, status, steps, time_s, run_id):
    return SimpleNamespace(workload=workload, status=status, steps_to_target=steps,
                           time_to_target_s=time_s, run_id=run_id)


def test_summaries_follow_first_appearance_and_count_misses_as_infinite():
    trials = [_trial("w:b", "reached", 10, 1.0, "r1"), _trial("w:a", "reached", 40, 4.0, "r2"),
              _trial("w:b", "not_reached", None, None, "r3"),
              _trial("w:b", "reached", 30, 3.0, "r4"), _trial("w:a", "diverged", None, None, "r5")]
    b, a = summarize_trials(trials)
    assert (b.workload, b.seeds, b.reached, b.run_ids) == ("w:b", 3, 2, ["r1", "r3", "r4"])
    assert (b.median_steps_to_target, b.median_time_to_target_s) == (30, 3.0)
    # two seeds, one miss: the median of (40, inf) is inf
    assert (a.seeds, a.reached) == (2, 1) and math.isinf(a.median_steps_to_target)
    assert list(b.to_json()) == ["workload", "seeds", "reached", "median_steps_to_target",
                                 "median_time_to_target_s", "run_ids"]
    assert summarize_trials([]) == []


@pytest.fixture
def db(tmp_path):
    return open_database(f"sqlite:///{tmp_path / 'score.db'}")


def test_variants_are_identified_by_their_first_runs_version_and_data(db):
    first = add_run(db, variant="mnist_mlp:width=32", seed=0)
    second = add_run(db, variant="mnist_mlp:width=32", seed=1)
    other = add_run(db, variant="mnist_mlp", seed=0)
    summaries = summarize_trials([_trial("mnist_mlp:width=32", "reached", 1, 1.0, first),
                                  _trial("mnist_mlp:width=32", "reached", 1, 1.0, second),
                                  _trial("mnist_mlp", "reached", 1, 1.0, other)])
    assert summarized_variants(db, summaries) == {"mnist_mlp:width=32": ("v1", "data1"),
                                                  "mnist_mlp": ("v1", "data1")}


def test_table_compares_declared_sets_and_scores_every_submission(db):
    for seed, (adam, sgd) in enumerate([(1.0, 2.0), (3.0, 2.0), (2.0, 4.0)]):
        add_run(db, submission="adam", seed=seed, time_s=adam, order=seed)
        add_run(db, submission="sgd", seed=seed, time_s=sgd, order=seed)
        add_run(db, submission="adam", variant="mnist_mlp:width=32", seed=seed, time_s=5.0,
                order=seed)
    add_run(db, submission="sgd", variant="mnist_mlp:width=32", seed=0, status="not_reached")
    add_run(db, submission="adam", seed=3, time_s=0.1, group_size=4, order=9)  # not timed alone
    variants = {"mnist_mlp": ("v1", "data1"), "mnist_mlp:width=32": ("v1", "data1")}

    table = score_table(db, variants)
    assert table.times == {"adam": {"mnist_mlp": 2.0, "mnist_mlp:width=32": 5.0},
                           "sgd": {"mnist_mlp": 2.0, "mnist_mlp:width=32": math.inf}}
    assert table.scores == performance_profile_scores(table.times, list(variants))
    assert table.scores["adam"] == pytest.approx(1.0) and table.scores["sgd"] == pytest.approx(0.5)
    adam = next(s for s in table.sets if (s.submission, s.variant) == ("adam", "mnist_mlp"))
    assert adam.seeds == (0, 1, 2) and len(adam.run_ids) == 3
    assert sorted((s.submission, s.variant) for s in table.sets) == [
        ("adam", "mnist_mlp"), ("adam", "mnist_mlp:width=32"), ("sgd", "mnist_mlp"),
        ("sgd", "mnist_mlp:width=32")]
    assert time_table(db, variants) == table.times

    doc = table.to_json()
    assert doc["compared"]["selection"] == "runs made by `score`"
    assert len(doc["compared"]["sets"]) == 4
    assert doc["performance_profile"] == {"tau_max": 4.0, "timing": "training",
                                          "scores": table.scores, "times": table.times}


def test_table_keeps_to_the_selection_and_the_timing(db):
    add_run(db, submission="adam", time_s=1.0, origin="sweep", tag="t")
    add_run(db, submission="sgd", time_s=2.0, origin="score")
    variants = {"mnist_mlp": ("v1", "data1")}
    tagged = score_table(db, variants, RunSelection(tag="t"), Timing.ALGOPERF)
    # AlgoPerf's time adds compilation (add_run stores compile_s=2.5, no algoperf column)
    assert tagged.times == {"adam": {"mnist_mlp": pytest.approx(3.5)}}
    assert tagged.to_json()["performance_profile"]["timing"] == "algoperf"
    assert score_table(db, {"mnist_mlp": ("v0", "data1")}).sets == []


def test_table_reports_algoperfs_v06_score_beside_the_exact_integral(db):
    from harness.algoperf.scoring import algoperf_scores

    for seed in range(2):
        add_run(db, submission="adam", seed=seed, time_s=2.0, order=seed)
        add_run(db, submission="sgd", seed=seed, time_s=5.0, order=5 + seed)
    variants = {"mnist_mlp": ("v1", "data1")}
    table = score_table(db, variants)
    assert table.algoperf_scores == algoperf_scores(table.times, list(variants))
    assert table.algoperf_scores["adam"] == pytest.approx(1.0)
    assert abs(table.algoperf_scores["sgd"] - table.scores["sgd"]) <= 1 / 198 + 1e-12
    assert table.to_json()["algoperf_v06_score"] == {"tau_max": 4.0, "num_points": 100,
                                                     "scores": table.algoperf_scores}
