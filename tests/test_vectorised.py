"""Groups of trials as one compiled program: each trial as it runs alone, stopping on its own."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from harness.check.tiers import bit_exact
from harness.db import open_database
from harness.refs import RefSet
from harness.runner import run_group
from harness.records.trial import TrialOptions, TrialSpec
from harness.spec import Target
from harness.submissions import load_submission
from tests.conftest import SUBMISSIONS
from workloads import get_workload


def with_target(spec: str, value: float):
    """The workload variant with an easier accuracy target, so trials stop within a few steps."""
    base = get_workload(spec)

    class Easier(type(base)):
        target = Target("accuracy", value, "max", "validation")

    return Easier(**base.variant)


def run(workload, submission, dataset, trials, tmp_path, name, **options):
    """run_group with a fresh database; (results, db, {run_id: {step: params}})."""
    db = open_database(f"sqlite:///{tmp_path / name}.db")
    snaps: dict[str, dict[int, object]] = {}

    def keep(run_id, step, params, model_state):
        snaps.setdefault(run_id, {})[step] = jax.device_get((params, model_state))

    steps = options.pop("snapshot_steps", ())
    results = run_group(workload, submission, dataset, trials, db=db,
                        options=TrialOptions(**options), snapshot_steps=steps, on_snapshot=keep)
    return results, db, snaps


def assert_same_trial(a, b, db_a, db_b, snaps_a=None, snaps_b=None):
    """Same outcome, eval curve, per-step losses and (if snapshotted) final parameters."""
    assert (a.status, a.steps_to_target, a.final_step) == (b.status, b.steps_to_target, b.final_step)
    assert a.evals == b.evals
    la, lb = db_a.losses(a.run_id), db_b.losses(b.run_id)
    assert np.array_equal(la[0], lb[0]) and np.array_equal(la[1], lb[1], equal_nan=True)
    if snaps_a is not None:
        pa, pb = snaps_a[a.run_id], snaps_b[b.run_id]
        assert max(pa) == max(pb) == a.final_step
        for x, y in zip(jax.tree_util.tree_leaves(pa[max(pa)]), jax.tree_util.tree_leaves(pb[max(pb)])):
            assert np.array_equal(x, y)


@pytest.fixture(scope="module")
def batchnorm_runs(mnist_sample, tmp_path_factory):
    """Three seeds of an MLP with batch norm: one after the other, and as one program."""
    tmp = tmp_path_factory.mktemp("bn")
    workload = with_target("mnist_mlp:batchnorm=1,width=32", 0.75)
    adam = load_submission(SUBMISSIONS / "adam")
    trials = [TrialSpec(seed, {}) for seed in (0, 1, 2)]
    common = dict(max_steps=30, eval_every=1, snapshot_steps=range(31))
    return {"alone": run(workload, adam, mnist_sample, trials, tmp, "alone", max_group_size=1,
                         **common),
            "group": run(workload, adam, mnist_sample, trials, tmp, "group", **common)}


def test_group_matches_each_trial_alone_bit_for_bit(batchnorm_runs):
    (alone, db_a, snaps_a), (group, db_g, snaps_g) = batchnorm_runs["alone"], batchnorm_runs["group"]
    for a, g in zip(alone, group):
        assert_same_trial(a, g, db_a, db_g, snaps_a, snaps_g)


def test_each_trial_stops_at_its_own_first_target_eval(batchnorm_runs):
    group, db, _ = batchnorm_runs["group"]
    assert [r.status for r in group] == ["reached"] * 3
    assert len({r.steps_to_target for r in group}) > 1  # they stop at different steps
    for r in group:
        assert r.final_step == r.steps_to_target == r.evals[-1][0]
        assert [s for s, _ in r.evals] == list(range(1, r.final_step + 1))  # every step evaluated
        assert all(m["accuracy"] < 0.75 for _, m in r.evals[:-1]) and r.evals[-1][1]["accuracy"] >= 0.75
        run_row = db.get_run(r.run_id)
        assert (run_row.group_size, run_row.final_step, run_row.steps_to_target) == (3, r.final_step,
                                                                                    r.steps_to_target)
        assert db.losses(r.run_id)[0].tolist() == list(range(r.final_step))
        assert r.group_size == 3 and r.to_json()["group_size"] == 3


def test_group_compiles_once_and_trials_in_turn_share_the_compile(batchnorm_runs):
    alone, db, _ = batchnorm_runs["alone"]
    assert [r.compiles for r in alone] == [1, 0, 0]
    assert [db.get_run(r.run_id).group_size for r in alone] == [1, 1, 1]
    group, _, _ = batchnorm_runs["group"]
    assert [r.compiles for r in group] == [1, 1, 1]  # the one program, reported by each trial


def test_vmapped_group_stays_at_float_rounding(batchnorm_runs, mnist_sample, tmp_path):
    """vmap batches the ops: XLA:CPU may round a batched reduction differently, so here only
    the outcome must agree and the curves stay close."""
    alone, _, _ = batchnorm_runs["alone"]
    workload = with_target("mnist_mlp:batchnorm=1,width=32", 0.75)
    vmapped, _, _ = run(workload, load_submission(SUBMISSIONS / "adam"), mnist_sample,
                        [TrialSpec(seed, {}) for seed in (0, 1, 2)], tmp_path, "vmap",
                        max_steps=30, eval_every=1, batching="vmap")
    for a, v in zip(alone, vmapped):
        assert (a.status, a.steps_to_target) == (v.status, v.steps_to_target)
        for (sa, ma), (sv, mv) in zip(a.evals, v.evals):
            assert sa == sv and ma["loss"] == pytest.approx(mv["loss"], rel=1e-3)


def test_diverging_learning_rate_diverges_alone_and_mixed_hparams_match(mnist_sample, tmp_path):
    workload = get_workload("mnist_mlp:width=32")
    sgd = load_submission(SUBMISSIONS / "sgd")
    trials = [TrialSpec(0, {"learning_rate": 0.1}), TrialSpec(0, {"learning_rate": 1e6}),
              TrialSpec(1, {"learning_rate": 0.05})]
    alone, db_a, _ = run(workload, sgd, mnist_sample, trials, tmp_path, "alone", max_steps=12,
                         eval_every=4, max_group_size=1)
    group, db_g, _ = run(workload, sgd, mnist_sample, trials, tmp_path, "group", max_steps=12,
                         eval_every=4)
    assert [r.status for r in group] == ["not_reached", "diverged", "not_reached"]
    assert [r.final_step for r in group] == [12, group[1].final_step, 12] and group[1].final_step < 12
    assert [r.hparams["learning_rate"] for r in group] == [0.1, 1e6, 0.05]
    assert [r.group_size for r in group] == [3, 3, 3] and [r.compiles for r in alone] == [1, 0, 0]
    for a, g in zip(alone, group):
        assert_same_trial(a, g, db_a, db_g)
    assert group[0].evals != group[2].evals


SGD_OPTIMIZER = '''def _optimizer(hparams):
    return optax.sgd(hparams["learning_rate"])
'''
BRANCHING_OPTIMIZER = '''def _optimizer(hparams):
    if hparams["momentum"] > 0:  # a Python branch on a hyperparameter
        return optax.sgd(hparams["learning_rate"], momentum=hparams["momentum"])
    return optax.sgd(hparams["learning_rate"])
'''


def branching_sgd() -> str:
    """The shipped SGD with its momentum switched by a Python branch on a hyperparameter."""
    source = (SUBMISSIONS / "sgd" / "submission.py").read_text()
    assert SGD_OPTIMIZER in source
    return source.replace(SGD_OPTIMIZER, BRANCHING_OPTIMIZER)


def test_python_branch_on_a_hyperparameter_falls_back_to_one_program_per_value(
        mnist_sample, tmp_path, caplog):
    folder = tmp_path / "branching"
    folder.mkdir()
    (folder / "submission.py").write_text(branching_sgd())
    (folder / "hparams.json").write_text('{"learning_rate": 0.1, "momentum": 0.0}')
    sub = load_submission(folder)
    trials = [TrialSpec(seed, {"momentum": m}) for m in (0.0, 0.9) for seed in (0, 1)]
    group, db, _ = run(get_workload("mnist_mlp:width=16"), sub, mnist_sample, trials, tmp_path,
                       "group", max_steps=3, eval_every=3)
    assert [r.status for r in group] == ["not_reached"] * 4
    assert [r.group_size for r in group] == [2, 2, 2, 2]  # seeds still share a program
    assert all("TracerBoolConversionError" in r.vectorise_note for r in group)
    assert [r.compiles for r in group] == [1, 1, 1, 1]  # two programs, one per momentum
    assert group[0].evals != group[2].evals
    assert "one compiled program per distinct hyperparameter set" in caplog.text


def test_conv_net_in_cpu_chunk_mode_matches_alone(tmp_path):
    workload = get_workload("cifar_simplecnn:batchnorm=1,width=0.25")
    dataset = workload.synthetic_dataset({"train": 16, "validation": 8})
    sgd = load_submission(SUBMISSIONS / "sgd", {"batch_size": 4, "learning_rate": 0.01})
    trials = [TrialSpec(0, {}), TrialSpec(1, {"learning_rate": 0.02})]
    common = dict(max_steps=3, eval_every=3, snapshot_steps=(3,))
    alone = run(workload, sgd, dataset, trials, tmp_path, "alone", max_group_size=1, **common)
    group = run(workload, sgd, dataset, trials, tmp_path, "group", **common)
    assert group[0][0].chunk_mode == ("step" if jax.default_backend() == "cpu" else "scan")
    for a, g in zip(alone[0], group[0]):
        assert g.group_size == 2
        assert_same_trial(a, g, alone[1], group[1], alone[2], group[2])


def test_bit_exact_tier_does_not_compare_different_group_sizes(batchnorm_runs):
    from harness.refs import records_from_db

    alone, db_a, _ = batchnorm_runs["alone"]
    group, db_g, _ = batchnorm_runs["group"]
    refs = records_from_db(db_a, [r.run_id for r in alone])
    for r in refs:
        r["run"]["environment"]["cpu"] = r["run"]["environment"].get("cpu") or "test cpu"
    refset = RefSet(header={"hparams": refs[0]["run"]["hparams"]}, records=refs, origin="database")
    candidates = records_from_db(db_g, [r.run_id for r in group])
    for c in candidates:
        c["run"]["environment"]["cpu"] = refs[0]["run"]["environment"]["cpu"]
    tier = bit_exact(refset, candidates)
    assert tier.status == "skip" and "not bit-comparable" in tier.summary
    assert bit_exact(refset, refs).status == "pass"


def test_trial_map_skips_inactive_trials_in_map_mode_only():
    """An inactive trial is not computed under MAP (zeros in its place; the eval of trials
    that stopped costs nothing); active trials get exactly fn's value; VMAP computes all."""
    import jax.numpy as jnp

    from harness.engine.trial_axis import Batching, trial_map

    def fn(x, shared):
        return {"y": jnp.sin(x) * shared}

    x, active = jnp.arange(3.0), jnp.array([True, False, True])
    mapped = jax.jit(lambda x, a: trial_map(fn, (0, None), Batching.MAP)(x, 2.0, active=a))(x, active)
    assert np.array_equal(mapped["y"], np.where(active, np.sin(np.arange(3.0)) * 2, 0).astype(np.float32))
    vmapped = trial_map(fn, (0, None), Batching.VMAP)(x, 2.0, active=active)
    assert np.allclose(vmapped["y"], np.sin(np.arange(3.0)) * 2)


def test_variants_differing_in_runtime_knobs_share_one_program_bit_for_bit(mnist_sample, tmp_path):
    """mnist_mlp's activation is a runtime knob: trials of all four activations run as one
    program (lax.switch per trial), each computing what it computes alone, its row naming
    its own variant and the program's size."""
    adam = load_submission(SUBMISSIONS / "adam")
    acts = ("relu", "gelu", "sigmoid", "hard_tanh")
    common = dict(max_steps=6, eval_every=1)
    group, db_g, _ = run(with_target("mnist_mlp:width=16", 0.75), adam, mnist_sample,
                         [TrialSpec(0, {}, {"activation": a}) for a in acts], tmp_path, "family",
                         **common)
    assert group[0].compiles == 1 and all(r.group_size == 4 for r in group)
    for a, g in zip(acts, group):
        spec = get_workload(f"mnist_mlp:width=16,activation={a}").spec
        (alone,), db_a, _ = run(with_target(spec, 0.75), adam, mnist_sample, [TrialSpec(0, {})],
                                tmp_path, f"alone_{a}", **common)
        assert g.workload == alone.workload == db_g.get_run(g.run_id).variant == spec
        assert db_g.get_run(g.run_id).group_size == 4
        assert_same_trial(alone, g, db_a, db_g)
