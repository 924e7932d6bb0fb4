"""The experiment layer: trials grouped by compiled shape, groups run by an executor."""

from __future__ import annotations

from harness.db import RunOrigin, open_database
from harness.experiment import LocalExecutor, plan_groups, requests_for
from harness.records.sweep import CurvatureRequest, TrialRequest
from harness.records.trial import TrialOptions
from harness.sweep_state import group_keys, request_key
from tests.conftest import SUBMISSIONS


def test_groups_share_variant_submission_and_batch_size():
    adam, sgd = str(SUBMISSIONS / "adam"), str(SUBMISSIONS / "sgd")
    requests = [TrialRequest("mnist_mlp", adam, {"learning_rate": lr}, seed)
                for lr in (1e-3, 3e-3) for seed in (0, 1)]
    requests += [TrialRequest("mnist_mlp", adam, {"batch_size": 64}, 0),
                 TrialRequest("mnist_mlp", sgd, {}, 0)]
    groups = plan_groups(requests)
    assert [len(g.trials) for g in groups] == [4, 1, 1]
    assert [t.seed for t in groups[0].trials] == [0, 1, 0, 1]


def test_local_executor_writes_every_trial_with_its_labels(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    options = TrialOptions(max_steps=20, eval_every=10, origin=RunOrigin.SWEEP, tag="t")
    requests = [TrialRequest("mnist_mlp", str(SUBMISSIONS / "adam"), {"learning_rate": lr}, 0)
                for lr in (1e-3, 2e-3)]
    [results] = LocalExecutor().run(plan_groups(requests, options), url)
    db = open_database(url)
    runs = {r.id: r for r in db.runs()}
    assert sorted(runs) == sorted(r.run_id for r in results)
    assert sorted(r.hparams["learning_rate"] for r in runs.values()) == [1e-3, 2e-3]
    assert {(r.origin, r.tag, r.group_size) for r in runs.values()} == {("sweep", "t", 2)}


def test_variants_differing_only_in_runtime_knobs_are_one_group_when_shared():
    """With share_variants, mnist_mlp's activation variants of one width are one group (each
    trial naming its activation); other knobs, curvature and timed_alone keep groups per
    variant."""
    grid = ["mnist_mlp", "mnist_mlp:activation=gelu", "mnist_mlp:width=200",
            "mnist_mlp:activation=gelu,width=200", "mnist_mlp:depth=5"]
    requests = requests_for(grid, ["adam"], [{}], [0, 1])
    assert len(plan_groups(requests)) == len(grid)  # by default, one group per variant
    groups = plan_groups(requests, TrialOptions(share_variants=True))
    assert [(g.workload, [(t.seed, dict(t.knobs)) for t in g.trials]) for g in groups] == [
        ("mnist_mlp", [(0, {}), (1, {}), (0, {"activation": "gelu"}), (1, {"activation": "gelu"})]),
        ("mnist_mlp:width=200", [(0, {}), (1, {}), (0, {"activation": "gelu"}),
                                 (1, {"activation": "gelu"})]),
        ("mnist_mlp:depth=5", [(0, {}), (1, {})])]
    assert len(plan_groups(requests, TrialOptions(share_variants=True), timed_alone=True)) == len(requests)
    # a lost group's retry tells its finished trials apart by each trial's own variant
    assert [k for g in groups for k in group_keys(g)] == [
        request_key(r) for r in requests]
    curv = plan_groups(requests, TrialOptions(share_variants=True),
                       curvature=CurvatureRequest({}, "0"))
    assert len(curv) == len(grid) and all(not t.knobs for g in curv for t in g.trials)
