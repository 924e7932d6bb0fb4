"""The engine's shared pieces: one stop rule on the device and on the host, concrete-step
trials evaluating on their schedule only, and eval rows committed as segments finish."""

from __future__ import annotations

import sqlite3

import jax.numpy as jnp
import numpy as np
import pytest

from harness import progress
from harness.engine import stop as stop_rule
from harness.engine.stop import Stop
from harness.engine.trial_axis import SEGMENT_STEPS
from harness.progress import Phase
from harness.records.status import RunStatus
from harness.records.trial import TrialOptions, TrialSpec
from harness.runner import run_group
from harness.submissions import load_submission
from tests.conftest import REPO
from workloads import get_workload

SUBMISSIONS = REPO / "tests" / "algoperf_submissions"


def test_the_stop_rule_decides_alike_on_the_device_and_on_the_host():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = 6
        active, met, finite = (rng.random(t) < 0.7, rng.random(t) < 0.5, rng.random(t) < 0.8)
        stop = rng.integers(0, 4, t).astype(np.int32)
        reached = np.where(rng.random(t) < 0.3, rng.integers(1, 9, t), -1).astype(np.int32)
        for at_target in (True, False):
            host = stop_rule.after_eval(active, met, finite, stop, reached, 9, at_target, np)
            device = stop_rule.after_eval(jnp.asarray(active), jnp.asarray(met),
                                          jnp.asarray(finite), jnp.asarray(stop),
                                          jnp.asarray(reached), 9, at_target, jnp)
            for h, d in zip(host, device):
                np.testing.assert_array_equal(h, np.asarray(d))
        loss = rng.normal(size=t) * np.where(rng.random(t) < 0.2, np.inf, 1e6)
        loss0 = rng.random(t)
        np.testing.assert_array_equal(
            stop_rule.loss_diverged(loss, loss0, 1e5, np),
            np.asarray(stop_rule.loss_diverged(jnp.asarray(loss), jnp.asarray(loss0), 1e5, jnp)))


def test_the_stop_rule_orders_its_decisions():
    one = np.ones(1, bool)
    active, stop, reached = stop_rule.after_eval(one, one, ~one, np.zeros(1, np.int32),
                                                 -np.ones(1, np.int32), 5, True, np)
    assert not active[0] and stop[0] == Stop.EVAL_NOT_FINITE and reached[0] == -1
    active, stop, reached = stop_rule.after_eval(one, one, one, np.zeros(1, np.int32),
                                                 -np.ones(1, np.int32), 5, False, np)
    assert active[0] and stop[0] == Stop.RUNNING and reached[0] == 5
    assert stop_rule.status(Stop.RUNNING, 5) is RunStatus.REACHED
    assert stop_rule.status(Stop.RUNNING, None) is RunStatus.NOT_REACHED
    assert stop_rule.status(Stop.EVAL_NOT_FINITE, None) is RunStatus.DIVERGED


def test_a_concrete_step_trial_evaluates_on_its_schedule_not_at_snapshot_steps(mnist_sample):
    """Concrete-step mode once tested `done is not None` on a bool, so every chunk end —
    every snapshot step — was evaluated as well."""
    workload = get_workload("mnist_mlp")
    sub = load_submission(SUBMISSIONS / "global_step_branch")
    seen = []
    (result,) = run_group(workload, sub, mnist_sample, [TrialSpec(0, {})],
                          options=TrialOptions(max_steps=8, eval_every=4, stop_at_target=False),
                          snapshot_steps=[3, 6], on_snapshot=lambda *a: seen.append(a[1]))
    assert result.chunk_mode == "concrete"
    assert seen == [3, 6]
    assert [step for step, _ in result.evals] == [4, 8]


def test_eval_rows_are_committed_within_one_segment_of_being_computed(tmp_path, mnist_sample):
    """Another reader of the results database sees each segment's evals before the next
    segment trains: rows as they happen, their writes still one transaction per segment."""
    from harness.db import open_database

    path = tmp_path / "results.db"
    db = open_database(f"sqlite:///{path}")
    eval_every, steps = 10, 3 * SEGMENT_STEPS
    visible: list[tuple[int, int]] = []

    def on_phase(change: progress.PhaseChange) -> None:
        if change.phase is Phase.TRAINING and change.step:
            with sqlite3.connect(path) as reader:
                rows = reader.execute("select count(distinct step) from eval_rows").fetchone()[0]
            visible.append((change.step, rows))

    with progress.listening(on_phase):
        (result,) = run_group(get_workload("mnist_mlp"), load_submission("adam"), mnist_sample,
                              [TrialSpec(0, {})], db=db,
                              options=TrialOptions(max_steps=steps, eval_every=eval_every,
                                                   stop_at_target=False))
    assert result.status == RunStatus.REACHED and result.final_step == steps
    assert [step for step, _ in visible] == [SEGMENT_STEPS, 2 * SEGMENT_STEPS]
    assert all(rows == step // eval_every for step, rows in visible), visible


@pytest.mark.parametrize("factor", [None, 1e5])
def test_a_divergence_stop_says_why(factor):
    assert stop_rule.stop_error(Stop.LOSS_DIVERGED, 7, float("nan"), 1.0, factor) \
        == "loss became nan at step 7"
    assert stop_rule.stop_error(Stop.REACHED, 7, 1.0, 1.0, factor) is None
