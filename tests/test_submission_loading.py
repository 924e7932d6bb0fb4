"""The one submission loader: each submission.py executed once per process (a real local
sweep), records sharing the module, capabilities declared by the format, and a submission's own
exception reported as the user's (exit 2) in either format, helper modules included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import app
from harness.errors import EXIT_BAD_INPUT, run_cli
from harness.records.submission import Capabilities
from harness.submissions import load_submission
from tests.conftest import REPO

TEST_SUBMISSIONS = REPO / "tests" / "algoperf_submissions"

#: a native submission (plain SGD) that appends a line to executions.log beside it whenever
#: its module is executed
COUNTING = '''
"""Plain SGD; counts its own executions in executions.log beside it."""
from pathlib import Path

import jax
import optax

with open(Path(__file__).with_name("executions.log"), "a") as log:
    log.write("executed\\n")


def init_optimizer_state(workload, params, model_state, hparams, rng):
    return optax.sgd(hparams["learning_rate"]).init(params)


def update_params(workload, params, model_state, opt_state, batch, hparams, step, rng):
    def loss_fn(p):
        return workload.loss(p, model_state, batch, train=True, rng=rng)

    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optax.sgd(hparams["learning_rate"]).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_state, opt_state, {"loss": loss}


def get_batch_size(workload_name):
    return None


def data_selection(workload, next_batch, opt_state, params, model_state, hparams, step, rng):
    return next_batch(rng)
'''


def _counting_submission(root: Path) -> Path:
    folder = root / "counting_sgd"
    folder.mkdir()
    (folder / "submission.py").write_text(COUNTING)
    (folder / "hparams.json").write_text('{"learning_rate": 0.1}')
    return folder


def _executions(folder: Path) -> int:
    log = folder / "executions.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_local_sweep_executes_its_submission_once(tmp_path):
    from harness.experiment import TrialRequest, run_sweep
    from harness.runner import TrialOptions

    folder = _counting_submission(tmp_path)
    requests = [TrialRequest("uv:width=4", str(folder), {}, 0),
                TrialRequest("uv:width=4", str(folder), {"learning_rate": 0.2}, 1)]
    result = run_sweep(requests, TrialOptions(max_steps=2, eval_every=2),
                       f"sqlite:///{tmp_path / 'sweep.db'}")
    assert [t.result.status for t in result.trials] == ["not_reached", "not_reached"]
    assert _executions(folder) == 1


def test_records_of_one_file_share_its_module_and_an_edited_file_runs_again(tmp_path):
    folder = _counting_submission(tmp_path)
    default, faster = load_submission(folder), load_submission(folder, ["learning_rate=0.5"])
    assert faster.module is default.module and _executions(folder) == 1
    assert (default.hparams, faster.hparams) == ({"learning_rate": 0.1}, {"learning_rate": 0.5})
    assert faster.code_hash == default.code_hash
    source = folder / "submission.py"
    source.write_text(source.read_text().replace("optax.sgd(hparams", "optax.sgd(2 * hparams"))
    edited = load_submission(folder)
    assert edited.module is not default.module and _executions(folder) == 2
    assert edited.code_hash != default.code_hash


def test_each_format_declares_its_capabilities():
    native = load_submission("adam")
    assert native.capabilities == Capabilities() and native.search_point is None
    algoperf = load_submission(TEST_SUBMISSIONS / "jit_adam", search_point=1)
    assert algoperf.capabilities == Capabilities(
        static_hparams=True, one_variant_per_program=True, may_need_concrete_step=True,
        prepare_for_eval=False, eval_hooks=True)
    assert algoperf.search_point == (1, 0) == algoperf.module.search_point
    prepared = load_submission(TEST_SUBMISSIONS / "prepare_for_eval")
    assert prepared.capabilities.prepare_for_eval and prepared.module.has_prepare_for_eval
    # each record its own adapter (it holds a trial's eval results), one executed module
    again = load_submission(TEST_SUBMISSIONS / "jit_adam")
    assert again.module is not algoperf.module and again.module.module is algoperf.module.module


def test_the_record_module_imports_neither_jax_nor_sqlalchemy():
    code = ("import sys, harness.records.submission; "
            "print(sorted({'jax', 'sqlalchemy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "[]"


# -- a submission's own exception is the user's error, whatever its format --------------------

ALGOPERF_RAISING = '''
"""AlgoPerf-format submission whose update_params raises an exception of its own."""
import optax

from algoperf import spec
{helper_import}


class NotWrittenYet(Exception):
    pass


def get_batch_size(workload_name):
    return 1


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return optax.sgd(hyperparameters.learning_rate).init(model_params), None


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    {body}


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
'''

NATIVE_RAISING = '''
"""Native submission whose update_params raises an exception of its own."""
import optax
{helper_import}


class NotWrittenYet(Exception):
    pass


def init_optimizer_state(workload, params, model_state, hparams, rng):
    return optax.sgd(hparams["learning_rate"]).init(params)


def update_params(workload, params, model_state, opt_state, batch, hparams, step, rng):
    {body}


def get_batch_size(workload_name):
    return None


def data_selection(workload, next_batch, opt_state, params, model_state, hparams, step, rng):
    return next_batch(rng)
'''

#: a helper module beside submission.py, imported by it with its folder put on sys.path
HELPER = '''
"""The submission's helper: the step is not written yet."""


class HelperNotWrittenYet(Exception):
    pass


def step():
    raise HelperNotWrittenYet("the helper's step is not written yet")
'''
HELPER_IMPORT = ("import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n"
                 "import {module}")


def _raising_submission(root: Path, fmt: str, where: str) -> Path:
    folder = root / f"raising_{fmt}_{where}"
    folder.mkdir()
    module = f"{folder.name}_helpers"
    if where == "helper":
        (folder / f"{module}.py").write_text(HELPER)
        body, helper_import = f"return {module}.step()", HELPER_IMPORT.format(module=module)
    else:
        body, helper_import = 'raise NotWrittenYet("the update is not written yet")', ""
    template = ALGOPERF_RAISING if fmt == "algoperf" else NATIVE_RAISING
    (folder / "submission.py").write_text(template.format(body=body, helper_import=helper_import))
    hparams = "tuning_search_space.json" if fmt == "algoperf" else "hparams.json"
    (folder / hparams).write_text('[{"learning_rate": 0.1}]' if fmt == "algoperf"
                                  else '{"learning_rate": 0.1}')
    return folder


@pytest.mark.parametrize("where", ["submission", "helper"])
@pytest.mark.parametrize("fmt", ["algoperf", "native"])
def test_an_exception_of_the_submissions_own_code_exits_2_in_one_line(tmp_path, capsys, monkeypatch,
                                                                       fmt, where):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the submission puts its folder on it
    folder = _raising_submission(tmp_path, fmt, where)
    code = run_cli(app, ["run", "--workload", "uv:width=4", "--submission", str(folder),
                         "--max-steps", "2", "--quiet", "--db", str(tmp_path / "r.db")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT, lines
    assert len(lines) == 1
    raised, file = (("HelperNotWrittenYet", f"{folder.name}_helpers.py") if where == "helper"
                    else ("NotWrittenYet", "submission.py"))
    assert lines[0].startswith(f"error: the submission's code raised {raised}: "), lines[0]
    assert f"(in {file}:" in lines[0] and "report it" not in lines[0]


def test_an_error_outside_any_loaded_submission_stays_internal(tmp_path):
    from harness.errors import EXIT_INTERNAL, describe_failure

    helper = tmp_path / "not_a_submission.py"
    helper.write_text(textwrap.dedent("""
        def fail():
            raise RuntimeError("internal")
    """))
    namespace: dict = {}
    exec(compile(helper.read_text(), str(helper), "exec"), namespace)
    with pytest.raises(RuntimeError) as caught:
        namespace["fail"]()
    message, code = describe_failure(caught.value)
    assert code == EXIT_INTERNAL and "report it" in message
