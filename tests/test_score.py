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
    from harness.db import RunOrigin
    from harness.runner import run_trial
    from harness.score import time_table
    from harness.submissions import load_submission
    from tests.conftest import SUBMISSIONS
    from workloads import get_workload

    workload = get_workload("mnist_mlp")
    result = run_trial(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample, 0, db=db,
                       origin=RunOrigin.SCORE)
    ident = (workload.version, mnist_sample.fingerprint)
    assert time_table(db, {"mnist_mlp": ident})["adam"]["mnist_mlp"] == result.time_to_target_s
    assert time_table(db, {"mnist_mlp": ("older-version", mnist_sample.fingerprint)}) == {}
    assert time_table(db, {"mnist_mlp": (workload.version, "other-data")}) == {}
    db.update_run(result.run_id, group_size=4)  # timed inside a vectorised group: not its own time
    assert time_table(db, {"mnist_mlp": ident}) == {}


# -- which runs score compares ------------------------------------------------------------

import datetime as dt  # noqa: E402

from pg_server import db_url  # noqa: E402,F401  (fixture: SQLite and PostgreSQL)
from harness.db import RunOrigin, open_database  # noqa: E402
from harness.score import RunSelection, SelectionError, compared_runs, resolve_sweep  # noqa: E402

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _add(db, run_id, submission, seed, time_s, minute, *, origin=RunOrigin.SCORE, hparams=None,
         code="c1", tag=None, sweep_id=None):
    db.start_run(id=run_id, workload="mnist_mlp", variant="mnist_mlp", workload_version="v",
                 submission=submission, submission_path="/x", submission_hash=code,
                 hparams=hparams or {"learning_rate": 1e-3}, seed=seed, rng_derivation="r",
                 batch_size=8, max_steps=10, eval_every=5, chunk_mode="scan", data_source="s",
                 data_fingerprint="d", jax_version="0", jaxlib_version="0", backend="cpu",
                 device_kind="cpu", xla_flags="", git_commit=None, environment={},
                 status="reached", time_to_target_s=time_s, steps_to_target=5, host="h", pid=0,
                 started_at=T0 + dt.timedelta(minutes=minute), origin=origin.value, tag=tag,
                 sweep_id=sweep_id)


def test_score_compares_declared_sets_not_the_newest_runs(db_url):
    db = open_database(db_url)
    for seed in range(3):
        _add(db, f"adam-score-{seed}", "adam", seed, 10.0 + seed, minute=seed)
        _add(db, f"sgd-score-{seed}", "sgd", seed, 20.0, minute=seed)
    _add(db, "adam-adhoc", "adam", 0, 1.0, minute=10, origin=RunOrigin.RUN,
         hparams={"learning_rate": 3e-3})
    _add(db, "adam-check", "adam", 0, 0.5, minute=11, origin=RunOrigin.CHECK)
    _add(db, "adam-tagged", "adam", 0, 2.0, minute=12, origin=RunOrigin.RUN, tag="ablation")
    variants = {"mnist_mlp": ("v", "d")}

    sets = compared_runs(db, variants)
    adam = sets["adam"]["mnist_mlp"]
    assert adam.run_ids == ("adam-score-0", "adam-score-1", "adam-score-2")
    assert adam.seeds == (0, 1, 2) and adam.time_s == 11.0
    assert sets["sgd"]["mnist_mlp"].time_s == 20.0

    asked = compared_runs(db, variants, RunSelection(origins=(RunOrigin.RUN,)))
    assert asked["adam"]["mnist_mlp"].run_ids == ("adam-tagged",)  # newest code+hparams of `run`
    tagged = compared_runs(db, variants, RunSelection(tag="ablation"))
    assert set(tagged) == {"adam"} and tagged["adam"]["mnist_mlp"].time_s == 2.0


def test_a_rescore_with_new_code_replaces_the_set_and_repeated_seeds_count_once(db_url):
    db = open_database(db_url)
    for seed in range(2):
        _add(db, f"old-{seed}", "adam", seed, 10.0, minute=seed)
        _add(db, f"new-{seed}", "adam", seed, 4.0, minute=10 + seed, code="c2")
        _add(db, f"again-{seed}", "adam", seed, 6.0, minute=20 + seed, code="c2")
    (rs,) = compared_runs(db, {"mnist_mlp": ("v", "d")})["adam"].values()
    assert rs.run_ids == ("again-0", "again-1") and rs.submission_hash == "c2"


def test_sweeps_are_found_by_name_or_id(db_url):
    db = open_database(db_url)
    sweep_id = db.add_sweep("5f0c2a1e-0000-0000-0000-000000000000", "sweep ...", {}, name="lr-grid")
    _add(db, "in-sweep", "adam", 0, 3.0, minute=1, origin=RunOrigin.SWEEP, sweep_id=sweep_id)
    _add(db, "scored", "adam", 0, 9.0, minute=2)
    assert resolve_sweep(db, "lr-grid") == resolve_sweep(db, "5f0c2a1e") == sweep_id
    with pytest.raises(SelectionError, match="sweep 'nope' is not in the database.*lr-grid"):
        resolve_sweep(db, "nope")
    sets = compared_runs(db, {"mnist_mlp": ("v", "d")}, RunSelection(sweep_id=sweep_id))
    assert sets["adam"]["mnist_mlp"].run_ids == ("in-sweep",)


def test_timing_chooses_the_training_or_algoperf_time(db_url):
    """--timing algoperf compares AlgoPerf's time (stored, or training + compile_s for rows
    without one); the default compares training time only, and can rank them differently."""
    from harness.score import Timing

    db = open_database(db_url)
    _add(db, "fast-train-slow-compile", "a", 0, 1.0, minute=1)
    db.update_run("fast-train-slow-compile", algoperf_time_to_target_s=9.0)
    _add(db, "older-row", "b", 0, 2.0, minute=2)
    db.update_run("older-row", compile_s=1.5)
    variants = {"mnist_mlp": ("v", "d")}
    training = compared_runs(db, variants)
    assert training["a"]["mnist_mlp"].time_s == 1.0 and training["b"]["mnist_mlp"].time_s == 2.0
    algoperf = compared_runs(db, variants, timing=Timing.ALGOPERF)
    assert algoperf["a"]["mnist_mlp"].time_s == 9.0 and algoperf["b"]["mnist_mlp"].time_s == 3.5
    assert algoperf["a"]["mnist_mlp"].timing == "algoperf"


def test_score_refuses_an_unknown_timing_before_training(tmp_path):
    from typer.testing import CliRunner

    from harness.cli import app
    from tests.conftest import SUBMISSIONS

    res = CliRunner().invoke(app, ["score", str(SUBMISSIONS / "adam"), "--timing", "wall",
                                   "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 2 and "--timing 'wall': valid: training, algoperf" in res.output
