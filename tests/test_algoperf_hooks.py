"""AlgoPerf's runner hooks: the library pieces (ConcreteSteps, timed prepare_for_eval,
eval_results) and the runner using them (harness/algoperf/hooks.py is the spec)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from harness.algoperf.adapter import EagerReason
from harness.algoperf.hooks import (AlgoPerfClock, ConcreteSteps, algoperf_eval_result,
                                    own_buffers, record_eval, timed_prepare_for_eval)
from harness.curvature import SnapshotConfig, snapshot_callback, snapshot_steps
from harness.runner import Evaluator, run_trial, trial_keys
from harness.submissions import load_submission
from tests.conftest import REPO
from workloads import get_workload

TEST_SUBMISSIONS = REPO / "tests" / "algoperf_submissions"


def _start(name, workload, dataset, seed=0):
    sub = load_submission(TEST_SUBMISSIONS / name)
    keys = trial_keys(seed)
    params, state = jax.jit(workload.init)(keys["init"])
    opt = sub.module.init_optimizer_state(workload, params, state, sub.hparams, keys["optimizer"])
    data = jax.device_put(dict(dataset.splits["train"]))
    return sub, (params, state, opt), data, keys["train"]


def test_concrete_steps_train_a_submission_that_branches_on_global_step(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub, state, data, key = _start("global_step_branch", workload, mnist_sample)
    stepper = ConcreteSteps(workload, sub, sub.batch_size(workload.name, workload.batch_size))
    state, losses, completed_at = stepper.run(state, data, 0, 60, key)
    assert completed_at is None and losses.shape == (60,) and np.all(np.isfinite(losses))
    assert stepper.first_call_s > 0
    metrics = Evaluator(workload, mnist_sample.splits["validation"])(state[0], state[1])
    assert workload.target.reached(metrics), metrics


def test_concrete_steps_stop_at_training_complete(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub, state, data, key = _start("training_complete", workload, mnist_sample)
    stepper = ConcreteSteps(workload, sub, sub.batch_size(workload.name, workload.batch_size))
    state, losses, completed_at = stepper.run(state, data, 0, 40, key)
    assert completed_at is None
    state, more, completed_at = stepper.run(state, data, 40, 40, key)
    assert completed_at == sub.hparams["stop_after"] and more.shape == (completed_at - 40,)


def test_prepare_for_eval_hands_back_the_model_to_evaluate(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub, state, data, key = _start("prepare_for_eval", workload, mnist_sample)
    assert sub.module.has_prepare_for_eval
    evaluate = Evaluator(workload, mnist_sample.splits["validation"])
    state, _, _ = ConcreteSteps(workload, sub, 1024).run(state, data, 0, 40, key)
    assert not workload.target.reached(evaluate(state[0], state[1]))
    prepared, seconds = timed_prepare_for_eval(sub, workload, state, 40, seed=0)
    assert seconds > 0 and workload.target.reached(evaluate(prepared[0], prepared[1]))
    leaves = jax.tree_util.tree_leaves(prepared)
    assert len({id(x) for x in leaves}) == len(leaves), "prepared state must own its buffers"


def test_eval_results_reach_the_submission():
    sub = load_submission(TEST_SUBMISSIONS / "pmap_adam")
    clock = AlgoPerfClock(train_s=1.0, compile_s=0.5, prepare_s=0.25)
    assert clock.total_s == 1.75
    record_eval(sub, 10, "validation", {"accuracy": 0.5, "loss": 1.0}, clock)
    assert sub.module.eval_results == [(10, {"validation/accuracy": 0.5, "validation/loss": 1.0,
                                             "score": 1.75, "accumulated_submission_time": 1.75})]
    assert algoperf_eval_result("test", {"a": 1}, clock)["test/a"] == 1.0


def test_own_buffers_copies_aliases_only():
    a = jax.numpy.ones(3)
    tree = own_buffers({"x": a, "y": a, "z": jax.numpy.zeros(2)})
    assert tree["x"] is a and tree["y"] is not a
    np.testing.assert_array_equal(tree["y"], a)


def test_runner_gives_a_concrete_global_step(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "global_step_branch")
    result = run_trial(workload, sub, mnist_sample, seed=0, max_steps=100)
    assert result.status == "reached" and result.chunk_mode == "concrete"
    assert result.concrete_reason == EagerReason.GLOBAL_STEP.name
    assert 0 < result.time_to_target_s < result.algoperf_time_to_target_s


def test_runner_ends_a_trial_on_training_complete(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "training_complete")
    result = run_trial(workload, sub, mnist_sample, seed=0, max_steps=200, eval_every=100,
                       stop_at_target=False)
    stop = sub.hparams["stop_after"]
    assert result.final_step == stop and result.evals[-1][0] == stop
    assert result.status == "reached"


def test_runner_calls_prepare_for_eval(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "prepare_for_eval")
    result = run_trial(workload, sub, mnist_sample, seed=0, max_steps=60, eval_every=20)
    assert result.status == "reached", f"evaluated the untrained parameters: {result.evals}"


def test_concrete_step_mode_takes_curvature_snapshots_and_writes_both_times(db, mnist_sample):
    """A submission that branches on global_step trains in concrete-step mode; snapshots at
    init and at step 20 are taken from its state, and its run row holds the mode, both
    times-to-target (AlgoPerf's counts the submission's first-call compilation) and no point."""
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "global_step_branch")
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=256, lanczos_order=6, top_k=(1,))
    callback = snapshot_callback(workload, mnist_sample, config, db=db, hparams=sub.hparams,
                                 batch_size=sub.batch_size(workload.name, workload.batch_size))
    result = run_trial(workload, sub, mnist_sample, seed=0, db=db, max_steps=100,
                       snapshot_steps=snapshot_steps("init,at:20", 100), on_snapshot=callback)
    assert result.status == "reached" and result.chunk_mode == "concrete"
    assert [s["step"] for s in db.snapshots(result.run_id)] == [0, 20]
    run = db.get_run(result.run_id)
    assert run.chunk_mode == "concrete" and run.search_point is None
    assert run.algoperf_time_to_target_s == pytest.approx(result.algoperf_time_to_target_s)
    assert run.algoperf_time_to_target_s > run.time_to_target_s > 0
    assert len(db.losses(result.run_id)[0]) == result.final_step


def test_runner_hands_eval_results_to_the_submission(mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "prepare_for_eval")
    result = run_trial(workload, sub, mnist_sample, seed=0, max_steps=40, eval_every=20,
                       stop_at_target=False)
    assert result.concrete_reason == "PREPARE_FOR_EVAL"
    steps = [step for step, _ in sub.module.eval_results]
    assert steps == [20, 40] and "validation/accuracy" in sub.module.eval_results[0][1]
    assert sub.module.eval_results[1][1]["accumulated_submission_time"] > 0
