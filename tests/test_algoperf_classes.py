"""Published AlgoPerf files fall into classes the adapter handles generally (issue 22); each
class here with submissions written for these tests (tests/algoperf_submissions/), training a
few steps on mnist_mlp or failing with the one line it should."""

from __future__ import annotations

import sys
import textwrap

import jax
import pytest
from typer.testing import CliRunner

from harness.algoperf.adapter import Convention
from harness.algoperf.workload_view import AlgoPerfWorkload
from harness.cli import app
from harness.curvature import SnapshotConfig, snapshot_callback, snapshot_steps
from harness.errors import SpecError, Unsupported, UnsupportedAttribute
from harness.runner import run_trial
from harness.submissions import load_submission
from tests.conftest import REPO
from workloads import get_workload

TEST_SUBMISSIONS = REPO / "tests" / "algoperf_submissions"


def _train(name_or_path, dataset, steps=60, **kwargs):
    sub = load_submission(name_or_path if not isinstance(name_or_path, str)
                          else TEST_SUBMISSIONS / name_or_path)
    return sub, run_trial(get_workload("mnist_mlp"), sub, dataset, seed=0, max_steps=steps, **kwargs)


# -- 1. self-tuning: hyperparameters inside the file --------------------------------------------

def test_self_tuning_submission_runs_with_hyperparameters_none(db, mnist_sample):
    sub, result = _train("self_tuning_nesterov", mnist_sample, steps=40, db=db)
    assert sub.hparams == {} and sub.module.self_tuning and sub.search_point is None
    assert result.status == "reached"
    assert db.get_run(result.run_id).hparams == {}
    with pytest.raises(SpecError, match="self-tuning .* has no points"):
        load_submission(TEST_SUBMISSIONS / "self_tuning_nesterov", search_point=1)


@pytest.mark.slow
def test_curvature_snapshots_on_a_self_tuning_pmap_submission(db, mnist_sample):
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "self_tuning_lion_pmap")
    assert sub.module.self_tuning and sub.module.convention is Convention.PMAP
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=128, lanczos_order=4, top_k=(1,))
    callback = snapshot_callback(workload, mnist_sample, config, db=db, hparams=sub.hparams,
                                 batch_size=sub.batch_size(workload.name, workload.batch_size))
    result = run_trial(workload, sub, mnist_sample, seed=0, db=db, max_steps=60,
                       snapshot_steps=snapshot_steps("init,at:10", 60), on_snapshot=callback)
    assert result.status == "reached"
    assert [s["step"] for s in db.snapshots(result.run_id)] == [0, 10]
    assert db.get_run(result.run_id).hparams == {}


# -- 2. algorithmic_efficiency, the package's name up to v0.5 ----------------------------------

def test_v05_package_name_imports_the_shim(mnist_sample):
    sub, result = _train("v05_rmsprop", mnist_sample, steps=30)
    assert result.status == "reached"
    sub, result = _train("v05_sgd_pmap", mnist_sample, steps=3, eval_every=3)
    assert sub.module.convention is Convention.PMAP and result.final_step == 3
    assert not any(n.split(".")[0] in ("algoperf", "algorithmic_efficiency") for n in sys.modules)


# -- 3. helpers imported by their path in AlgoPerf's repository --------------------------------

SUBMISSION_USING = '''
"""{doc}"""
import jax
import optax
from algoperf import spec
{imports}


def get_batch_size(workload_name):
    return 512


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    opt = optax.sgd({lr})
    return {init}, opt.update


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    state, update = optimizer_state
    params, model_state, state = {step}(workload, update, current_param_container, model_state,
                                        state, batch, rng)
    return (state, update), params, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
'''

PLAIN_STEP = '''
import jax
import optax
from algoperf import spec


def step(workload, update, params, model_state, state, batch, rng):
    def loss(p):
        logits, new_state = workload.model_fn(p, batch, model_state, spec.ForwardPassMode.TRAIN,
                                              rng, True)
        out = workload.loss_fn(batch["targets"], logits, batch["weights"])
        return out["summed"] / out["n_valid_examples"], new_state

    (_, new_state), grads = jax.value_and_grad(loss, has_aux=True)(params)
    updates, state = update(grads, state, params)
    return optax.apply_updates(params, updates), new_state, state
'''

PMAP_STEP = PLAIN_STEP.replace("def step(", "def _step(") + '''

_pmapped = jax.pmap(_step, axis_name="batch", static_broadcasted_argnums=(0, 1))


def step(workload, update, params, model_state, state, batch, rng):
    return _pmapped(workload, update, params, model_state, state, batch,
                    jax.random.split(rng, jax.local_device_count()))
'''


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_helpers_resolve_from_the_repository_root_as_algoperfs_runner_does(tmp_path, mnist_sample):
    repo = tmp_path / "algorithmic-efficiency"
    _write(repo / "algorithms" / "__init__.py", "")
    _write(repo / "algorithms" / "common" / "__init__.py", "")
    _write(repo / "algorithms" / "common" / "steps.py", PLAIN_STEP)
    folder = repo / "algorithms" / "development" / "sgd" / "jax"
    _write(folder / "submission.py", SUBMISSION_USING.format(
        doc="jit-era SGD whose step lives in algorithms/common", lr=0.1,
        imports="from algorithms.common.steps import step", init="opt.init(model_params)",
        step="step"))
    _write(folder / "hparams.json", "{}")
    sub, result = _train(folder, mnist_sample, steps=3, eval_every=3)
    assert result.final_step == 3 and sub.module.convention is Convention.JIT
    assert "algorithms" not in sys.modules  # resolved for this tree only


def test_repository_helper_with_pmap_makes_a_pmap_era_submission(tmp_path, mnist_sample):
    """`submissions` is also a folder of this suite's checkout: a namespace package on sys.path
    never shadows the submission's own tree; the pmapped step in the helper sets the layout."""
    repo = tmp_path / "submissions_algorithms"
    _write(repo / "submissions" / "self_tuning" / "shared" / "pmap_steps.py", PMAP_STEP)
    folder = repo / "submissions" / "self_tuning" / "team_x"
    _write(folder / "submission.py", SUBMISSION_USING.format(
        doc="self-tuning SGD whose pmapped step lives in submissions/self_tuning/shared",
        lr=0.1, imports="from submissions.self_tuning.shared.pmap_steps import step",
        init="jax.pmap(opt.init)(model_params)", step="step"))
    sub, result = _train(folder, mnist_sample, steps=3, eval_every=3)
    assert sub.module.convention is Convention.PMAP and sub.module.self_tuning
    assert result.final_step == 3 and result.status != "failed"
    assert not any(n.split(".")[0] == "submissions" and "self_tuning" in n for n in sys.modules)


# -- 4. dropout rates on a workload without dropout --------------------------------------------

def test_dropout_rates_are_ignored_where_algoperfs_workload_ignores_them(db, mnist_sample):
    sub, result = _train("dropout_in_hparams", mnist_sample, steps=3, eval_every=3, db=db)
    assert result.final_step == 3 and result.status != "failed"
    ignored = {"dropout_rate": 0.1, "aux_dropout_rate": 0.2}
    assert result.ignored_hparams == ignored and db.get_run(result.run_id).ignored_hparams == ignored


def test_dropout_rates_are_refused_where_no_algoperf_workload_ignores_them():
    sub = load_submission(TEST_SUBMISSIONS / "dropout_in_hparams")
    uv = get_workload("uv")
    with pytest.raises(Unsupported, match="aux_dropout_rate=0.2 cannot be honoured") as e:
        sub.module.ignored_hparams(uv, {"aux_dropout_rate": 0.2})
    assert "\n" not in str(e.value)
    assert sub.module.ignored_hparams(get_workload("cifar_resnet18"), sub.hparams) == {
        "dropout_rate": 0.1, "aux_dropout_rate": 0.2}


# -- 5. AlgoPerf's Workload API ----------------------------------------------------------------

#: every attribute of AlgoPerf's spec.Workload (read from algoperf/spec.py)
ALGOPERF_WORKLOAD_API = (
    "target_metric_name", "has_reached_validation_target", "has_reached_test_target",
    "_build_input_queue", "attach_metrics_logger", "validation_target_value",
    "test_target_value", "loss_type", "num_train_examples", "eval_batch_size",
    "num_eval_train_examples", "num_validation_examples", "num_test_examples", "train_mean",
    "train_stddev", "max_allowed_runtime_sec", "eval_period_time_sec", "step_hint",
    "param_shapes", "model_params_types", "is_output_params", "init_model_fn", "model_fn",
    "output_activation_fn", "loss_fn", "_eval_model_on_split", "eval_model", "metrics_logger")


def test_every_workload_api_attribute_is_answered_or_named_in_one_line(mnist_sample):
    workload = get_workload("mnist_mlp")
    view = AlgoPerfWorkload(workload, {s: mnist_sample.size(s) for s in mnist_sample.splits})
    assert view.num_train_examples == mnist_sample.size("train")
    assert view.num_validation_examples == mnist_sample.size("validation")
    assert view.num_test_examples == (mnist_sample.size("test") if "test" in mnist_sample.splits else None)
    assert view.has_reached_validation_target({"validation/accuracy": 0.99})
    assert not view.has_reached_validation_target({"validation/accuracy": 0.1})
    answered, named = [], []
    for name in ALGOPERF_WORKLOAD_API:
        try:
            getattr(view, name)
            answered.append(name)
        except UnsupportedAttribute as e:
            assert name in str(e) and "\n" not in str(e)
            named.append(name)
    assert set(named) == {"num_eval_train_examples", "test_target_value", "has_reached_test_target",
                          "max_allowed_runtime_sec", "eval_period_time_sec",
                          "_eval_model_on_split"}
    assert not hasattr(view, "use_resnet")
    with pytest.raises(UnsupportedAttribute, match="workload.num_train_examples .* before the runner"):
        AlgoPerfWorkload(workload).num_train_examples


def test_epoch_schedule_from_num_train_examples_trains(db, mnist_sample):
    sub, result = _train("epoch_cosine", mnist_sample, db=db)
    assert result.status == "reached"
    assert result.ignored_hparams is None and db.get_run(result.run_id).ignored_hparams is None
    assert sub.module.view(get_workload("mnist_mlp")).num_train_examples == mnist_sample.size("train")


# -- 6. pmap-era reductions over the named device axis -----------------------------------------

def test_psum_and_pmean_inside_the_submissions_own_pmap(mnist_sample):
    from harness.records.trial import TrialOptions, TrialSpec
    from harness.runner import run_group

    sub = load_submission(TEST_SUBMISSIONS / "pmap_sam_like")
    results = run_group(get_workload("mnist_mlp"), sub, mnist_sample,
                        [TrialSpec(seed=s, hparams={}) for s in (0, 1)],
                        options=TrialOptions(max_steps=60))
    assert [r.status for r in results] == ["reached", "reached"]


# -- 8. removed JAX APIs and missing packages --------------------------------------------------

def test_removed_tree_aliases_run_while_the_submission_runs_only(mnist_sample):
    sub, result = _train("legacy_tree_api", mnist_sample)
    assert result.status == "reached"
    assert not hasattr(jax, "tree_map") and not hasattr(jax.tree_util, "tree_multimap")


def test_removed_api_without_alias_is_one_line_naming_version(mnist_sample, tmp_path):
    res = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission",
                                   str(TEST_SUBMISSIONS / "legacy_device_put"), "--max-steps", "2",
                                   "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 2, res.output
    line = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and "jax.device_put_replicated, removed in JAX 0.10.0" in line[0]


def test_missing_package_is_one_line_naming_it(tmp_path):
    (tmp_path / "submission.py").write_text("import jax\nimport not_a_real_optimizer_pkg\n"
                                            "from algorithmic_efficiency import spec\n")
    (tmp_path / "hparams.json").write_text("{}")
    res = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission",
                                   str(tmp_path), "--max-steps", "2", "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 2
    assert "No module named 'not_a_real_optimizer_pkg'" in res.output
    assert "Traceback" not in res.output
