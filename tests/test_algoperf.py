"""AlgoPerf-format submissions run unmodified through the current runner: loading, the
`algoperf` shim, the Workload view, pmap- and jit-era submissions, search points, curvature."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from harness.algoperf import shim
from harness.algoperf.adapter import (AlgoPerfSubmission, Convention, EagerReason,
                                      NeedsConcreteStep)
from harness.algoperf.api import spec as ap_spec
from harness.algoperf.workload_view import AlgoPerfWorkload, Unsupported
from harness.cli import app
from harness.curvature import SnapshotConfig, snapshot_callback, snapshot_steps
from harness.runner import run_trial
from harness.spec import SpecError
from harness.submissions import load_submission
from tests.conftest import REPO, SUBMISSIONS
from workloads import get_workload

TEST_SUBMISSIONS = REPO / "tests" / "algoperf_submissions"


def test_loading_detects_the_format_and_leaves_no_algoperf_module():
    assert "algoperf" not in sys.modules
    sub = load_submission(TEST_SUBMISSIONS / "pmap_adam")
    assert isinstance(sub.module, AlgoPerfSubmission)
    assert sub.module.convention is Convention.PMAP
    assert load_submission(TEST_SUBMISSIONS / "jit_adam").module.convention is Convention.JIT
    assert not any(name == "algoperf" or name.startswith("algoperf.") for name in sys.modules)
    native = load_submission(SUBMISSIONS / "adam")
    assert not isinstance(native.module, AlgoPerfSubmission)


def test_code_hash_is_the_wrapped_files():
    a = load_submission(TEST_SUBMISSIONS / "pmap_adam")
    b = load_submission(TEST_SUBMISSIONS / "jit_adam")
    assert a.code_hash != b.code_hash and len(a.code_hash) == 16
    assert a.code_hash == load_submission(TEST_SUBMISSIONS / "pmap_adam").code_hash


def test_pytorch_submission_gets_a_one_line_error():
    with pytest.raises(SpecError, match="PyTorch AlgoPerf submission; curvebench runs JAX") as e:
        load_submission(TEST_SUBMISSIONS / "torch_sgd")
    assert "\n" not in str(e.value)


def test_missing_dependency_names_the_extra(tmp_path):
    (tmp_path / "submission.py").write_text("import chex_not_installed_anywhere\nfrom algoperf import spec\n")
    (tmp_path / "hparams.json").write_text("{}")
    with pytest.raises(SpecError, match=r"\.\[algoperf\]"):
        load_submission(tmp_path)


def test_real_algoperf_install_is_not_shadowed(tmp_path, monkeypatch):
    package = tmp_path / "algoperf"
    package.mkdir()
    (package / "__init__.py").write_text("REAL = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert shim.real_algoperf_installed()
    with shim.installed():
        import algoperf
        assert getattr(algoperf, "REAL", False)
    sys.modules.pop("algoperf", None)


def test_shim_spec_names():
    assert ap_spec.ForwardPassMode.TRAIN.value == 0 and ap_spec.LossType.SOFTMAX_CROSS_ENTROPY.value == 0
    assert ap_spec.ShapeTuple((3, 4)) == ap_spec.ShapeTuple((3, 4))
    assert jax.tree_util.tree_leaves({"a": ap_spec.ShapeTuple((3, 4))})[0].shape_tuple == (3, 4)
    assert issubclass(ap_spec.TrainingCompleteError, Exception)


def test_workload_view_api():
    workload = get_workload("mnist_mlp")
    view = AlgoPerfWorkload(workload)
    assert view.name == "mnist" and view.step_hint == workload.max_steps
    assert view.param_shapes["Dense_0"]["kernel"] == ap_spec.ShapeTuple((784, 100))
    types_ = view.model_params_types
    assert types_["Dense_0"]["kernel"] is ap_spec.ParameterType.WEIGHT
    assert types_["Dense_2"]["bias"] is ap_spec.ParameterType.BIAS
    assert view.is_output_params("Dense_2") and not view.is_output_params("Dense_0")
    assert view.loss_type is ap_spec.LossType.SOFTMAX_CROSS_ENTROPY
    params, state = jax.jit(view.init_model_fn)(jax.random.PRNGKey(0))
    data = workload.synthetic_dataset({"train": 16, "validation": 8})
    batch = jax.jit(workload.sample_batch, static_argnums=2)(
        jax.device_put(dict(data.splits["train"])), jax.random.PRNGKey(1), 8)
    logits, _ = jax.jit(lambda p, x: view.model_fn(p, {"inputs": x}, state, ap_spec.ForwardPassMode.TRAIN,
                                                   None, update_batch_norm=True, dropout_rate=0.0))(
        params, batch["inputs"])
    weights = jnp.array([1.0] * 6 + [0.0] * 2)

    @jax.jit
    def losses(logits, targets):
        out = view.loss_fn(targets, logits, weights)
        expected, _ = workload.loss(params, state, {**batch, "mask": weights}, train=True)
        return (out, expected, view.loss_fn(targets, logits, None, 0.1)["summed"],
                view.loss_fn(targets, logits)["summed"])

    out, expected, smoothed, plain = losses(logits, batch["targets"])
    assert set(out) == {"summed", "n_valid_examples", "per_example"}
    np.testing.assert_allclose(out["summed"] / out["n_valid_examples"], expected, rtol=1e-6)
    assert float(smoothed) != float(plain)
    with pytest.raises(Unsupported, match="no dropout"):  # AlgoPerf's MNIST ignores dropout; uv has no counterpart
        AlgoPerfWorkload(get_workload("uv")).model_fn(params, batch, state, ap_spec.ForwardPassMode.TRAIN,
                                                      None, True, dropout_rate=0.1)
    with pytest.raises(Unsupported, match="label smoothing"):
        uv = AlgoPerfWorkload(get_workload("uv"))
        uv.loss_fn(jnp.zeros((2, 1)), jnp.zeros((2, 1)), None, 0.1)
    graphs = AlgoPerfWorkload(get_workload("ogbg_molpcba"))  # offered since issue 22's class 7
    assert graphs.name == "ogbg" and graphs.loss_type is ap_spec.LossType.SIGMOID_CROSS_ENTROPY


def test_batch_size_asked_with_algoperf_names():
    sub = load_submission(TEST_SUBMISSIONS / "pmap_adam")
    assert sub.batch_size("mnist_mlp", 999) == 1024
    with pytest.raises(SpecError, match="no batch size for AlgoPerf workload 'uv'"):
        sub.batch_size("uv", 25)


def test_dropout_hparam_refused():
    """Refused on a workload whose AlgoPerf counterpart does not ignore dropout (AlgoPerf's
    MNIST and CIFAR ignore it: tests/test_algoperf_classes.py)."""
    sub = load_submission(TEST_SUBMISSIONS / "jit_adam", {"label_smoothing": 0.0})
    workload = get_workload("uv")
    params, state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    with pytest.raises(Unsupported, match="dropout_rate=0.1"):
        sub.module.init_optimizer_state(workload, params, state, {**sub.hparams, "dropout_rate": 0.1},
                                        jax.random.PRNGKey(1))


def _traced_update(module: types.ModuleType):
    """Trace the adapter's update_params for `module` with a traced step (as in a chunk)."""
    workload = get_workload("mnist_mlp")
    adapter = AlgoPerfSubmission(module, "inline", Convention.JIT)
    params, state = jax.eval_shape(workload.init, jax.random.PRNGKey(0))
    opt = adapter.init_optimizer_state(workload, params, state, {"lr": 0.1}, jax.random.PRNGKey(1))
    batch = {"inputs": jnp.zeros((4, 28, 28, 1)), "targets": jnp.zeros((4,), jnp.int32),
             "weights": jnp.ones((4,))}

    def step(p, s):
        return adapter.update_params(workload, p, state, opt, batch, {"lr": 0.1}, s,
                                     jax.random.PRNGKey(2))[3]["loss"]

    return jax.make_jaxpr(step)(params, jnp.int32(0))


def _inline_module(update_body: str) -> types.ModuleType:
    module = types.ModuleType("inline_submission")
    body = "\n".join("    " + line for line in textwrap.dedent(update_body).splitlines())
    source = ("def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):\n"
              "    return {}\n"
              "def update_params(workload, current_param_container, current_params_types, model_state,\n"
              "                  hyperparameters, batch, loss_type, optimizer_state, eval_results,\n"
              "                  global_step, rng):\n"
              f"{body}\n"
              "    return optimizer_state, current_param_container, model_state\n"
              "def get_batch_size(name):\n"
              "    return 4\n"
              "def data_selection(*args):\n"
              "    return next(args[1])\n")
    exec(source, module.__dict__)
    return module


@pytest.mark.parametrize("body,reason", [
    ("if global_step % 100 == 0:\n    pass", EagerReason.GLOBAL_STEP),
    ("n = int(global_step)", EagerReason.GLOBAL_STEP),
    ("if eval_results:\n    pass", EagerReason.EVAL_RESULTS),
])
def test_needs_concrete_step_detected_at_trace_time(body, reason):
    with pytest.raises(NeedsConcreteStep) as e:
        _traced_update(_inline_module(body))
    assert e.value.reason is reason


def test_branching_on_params_is_not_blamed_on_the_step():
    body = "if current_param_container['Dense_0']['bias'][0] > 0:\n    pass"
    with pytest.raises(jax.errors.TracerBoolConversionError):
        _traced_update(_inline_module(body))


def test_a_step_independent_submission_traces():
    assert _traced_update(_inline_module("del global_step, eval_results")) is not None


def test_pmap_submission_reaches_target_with_curvature_snapshots(db, mnist_sample):
    """pmap-era file, range search space (point 0): trains inside the compiled chunks with a
    device axis of size 1, reaches the target, writes its rows and curvature snapshots."""
    workload = get_workload("mnist_mlp")
    sub = load_submission(TEST_SUBMISSIONS / "pmap_adam")
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=256, lanczos_order=6, top_k=(1,))
    callback = snapshot_callback(workload, mnist_sample, config, db=db, hparams=sub.hparams,
                                 batch_size=sub.batch_size(workload.name, workload.batch_size))
    result = run_trial(workload, sub, mnist_sample, seed=0, db=db, max_steps=150,
                       snapshot_steps=snapshot_steps("init,at:20", 150), on_snapshot=callback)
    assert result.status == "reached" and result.chunk_mode == "scan"
    run = db.get_run(result.run_id)
    assert run.hparams == sub.hparams and set(run.hparams) == {"learning_rate", "one_minus_beta_1", "epsilon"}
    assert 1e-3 <= run.hparams["learning_rate"] <= 3e-3
    assert run.submission_hash == sub.code_hash
    assert len(db.losses(result.run_id)[0]) == result.final_step
    assert [s["step"] for s in db.snapshots(result.run_id)] == [0, 20]
    assert "algoperf" not in sys.modules
    assert run.algoperf_time_to_target_s == pytest.approx(run.time_to_target_s + run.compile_s)
    assert run.search_point == {"k": 0, "seed": sub.module.search_point[1]}


def test_cli_runs_list_search_space_point_k(tmp_path):
    """jit-era file (sharding helpers), list search space: --search-point 1 is what is stored."""
    db = str(tmp_path / "r.db")
    res = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission",
                                   str(TEST_SUBMISSIONS / "jit_adam"), "--search-point", "1",
                                   "--max-steps", "150", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)[0]
    assert result["status"] == "reached"
    from harness.db import open_database
    stored = open_database(db).get_run(result["run_id"]).hparams
    points = json.loads((TEST_SUBMISSIONS / "jit_adam" / "tuning_search_space.json").read_text())
    assert stored == points[1]
    bad = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission",
                                   str(TEST_SUBMISSIONS / "jit_adam"), "--search-point", "2", "--db", db])
    assert bad.exit_code == 2 and "lists 2 points" in bad.output
    bad = CliRunner().invoke(app, ["run", "--workload", "mnist_mlp", "--submission",
                                   str(SUBMISSIONS / "adam"), "--search-point", "1", "--db", db])
    assert bad.exit_code == 2 and "fixed hparams.json" in bad.output


def test_algoperf_adamw_matches_the_native_adamw(mnist_sample):
    """The same algorithm in both formats, same hyperparameters: the same batches and updates,
    so the same per-step training losses (up to float reassociation)."""
    workload = get_workload("mnist_mlp")
    native = load_submission(SUBMISSIONS / "adamw")
    point = {k: native.hparams[k] for k in ("learning_rate", "one_minus_beta1", "beta2",
                                            "weight_decay", "warmup_factor")}
    wrapped = load_submission(SUBMISSIONS / "algoperf_adamw", {**point, "label_smoothing": 0.0})
    losses = []
    for sub in (native, wrapped):
        seen = []
        run_trial(workload, sub, mnist_sample, seed=0, max_steps=20, eval_every=20,
                  on_eval=lambda step, m: seen.append(m["loss"]))
        losses.append(seen[-1])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


@pytest.mark.slow
def test_pmap_submission_on_two_local_devices():
    """With several local devices the pmapped update runs on all of them (forced CPU devices)."""
    code = textwrap.dedent(f"""
        import jax
        from harness.runner import run_trial
        from harness.submissions import load_submission
        from workloads import get_workload
        assert jax.local_device_count() == 2
        w = get_workload("mnist_mlp")
        sub = load_submission({str(TEST_SUBMISSIONS / 'pmap_adam')!r})
        assert sub.module.devices == 2
        r = run_trial(w, sub, w.load_data(), seed=0, max_steps=150)
        print(r.status)
    """)
    env = {**__import__("os").environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("reached")


def test_algoperf_mnist_is_algoperfs_definition():
    from harness.spec import DataUnavailable
    from workloads.algoperf_mnist import SAMPLE_SOURCE

    workload = get_workload("algoperf_mnist")
    assert workload.target.value == 0.97 and workload.step_hint == 7813
    assert AlgoPerfWorkload(workload).name == "mnist" and AlgoPerfWorkload(workload).step_hint == 7813
    shapes = AlgoPerfWorkload(workload).param_shapes
    assert shapes["Dense_0"]["kernel"].shape_tuple == (784, 128)
    assert shapes["Dense_1"]["kernel"].shape_tuple == (128, 10) and len(shapes) == 2
    with pytest.raises(DataUnavailable, match="--data-source sample"):
        workload.load_data()
    sample = workload.load_data(source="sample")
    assert sample.source == SAMPLE_SOURCE and sample.size("validation") == 1000
    params = {"Dense_0": {"kernel": jnp.eye(784, 128), "bias": jnp.zeros(128)},
              "Dense_1": {"kernel": jnp.ones((128, 10)), "bias": jnp.zeros(10)}}
    x = jnp.full((1, 28, 28, 1), 0.1307)
    logits, _ = jax.jit(lambda p, x: workload.apply(p, {}, x, train=False))(params, x)
    np.testing.assert_allclose(logits, 64.0, rtol=1e-5)  # normalised to 0: sigmoid(0) = 1/2 x 128
