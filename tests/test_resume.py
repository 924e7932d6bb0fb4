"""Resuming a killed run from its checkpoint (harness/checkpoint.py): after a real SIGKILL,
`curvebench run --resume RUN_ID` reaches bit for bit what an uninterrupted run reaches on CPU
(final parameters and optimizer state, eval values, steps-to-target, every training loss), and
the rows the killed process wrote after its checkpoint are gone."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import checkpoint
from harness.db import open_database
from harness.experiment import resume_run, run_sweep
from harness.records.sweep import TrialRequest
from harness.runner import run_group
from harness.records.trial import TrialOptions, TrialSpec

from conftest import REPO, SUBMISSIONS

#: a group of two seeds in one compiled program (in-loop evals, segments of 256 steps), batch
#: norm for model state; at learning rate 3e-4 seed 1 reaches the target at step 500 and seed 0
#: at 520, so the kill at the second checkpoint (step 512) lands after seed 1 finished
WORKLOAD = "mnist_mlp:width=16,batchnorm=true"
HPARAMS = {"batch_size": 64, "learning_rate": 3e-4}
MAX_STEPS, EVAL_EVERY = 700, 20

#: `curvebench run` whose second checkpoint never comes: it says so and waits to be killed,
#: with the first checkpoint (step 256) on disk and rows of steps past it in the database
WAIT_AT_SECOND_CHECKPOINT = """
import sys, time
from harness import checkpoint
write = checkpoint.Writer.write
def wait_at_second(self, step, *args, **kwargs):
    if self.written:
        print("WAITING", step, flush=True)
        time.sleep(600)
    write(self, step, *args, **kwargs)
checkpoint.Writer.write = wait_at_second
from harness.cli import main
sys.argv = ["curvebench", *sys.argv[1:]]
main()
"""


def _run_args(db: Path) -> list[str]:
    args = ["run", "--workload", WORKLOAD, "--submission", str(SUBMISSIONS / "adam"),
            "--seeds", "2", "--max-steps", str(MAX_STEPS), "--eval-every", str(EVAL_EVERY),
            "--checkpoint-every", "1", "--keep-checkpoints", "--quiet", "--db", str(db)]
    for k, v in HPARAMS.items():
        args += ["--hparam", f"{k}={v}"]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _state_bytes(folder: str) -> dict[str, bytes]:
    """Every leaf of a checkpoint's stacked state, as raw bytes."""
    saved = checkpoint.read(folder)
    with np.load(Path(folder) / saved.state_file) as data:
        return {k: data[k].tobytes() for k in data.files}


def _by_seed(db, run_ids):
    runs = {db.get_run(i).seed: db.get_run(i) for i in run_ids}
    return {seed: (run, db.eval_curve(run.id), db.losses(run.id)[1]) for seed, run in runs.items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same trials run through, without intermediate checkpoints; the final state kept."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('whole') / 'whole.db'}"
    options = TrialOptions(max_steps=MAX_STEPS, eval_every=EVAL_EVERY, checkpoint_every=None,
                           checkpoint_every_s=None, keep_checkpoints=True)
    sweep = run_sweep([TrialRequest(WORKLOAD, str(SUBMISSIONS / "adam"), HPARAMS, s)
                       for s in (0, 1)], options, db_url)
    return open_database(db_url), [t.result.run_id for t in sweep.trials]


def test_sigkill_then_resume_is_bit_identical(tmp_path, uninterrupted):
    db_path = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", WAIT_AT_SECOND_CHECKPOINT, *_run_args(db_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        line = proc.stdout.readline()
        while line and not line.startswith("WAITING"):
            line = proc.stdout.readline()
        assert line.split() == ["WAITING", "512"], "the run ended before its second checkpoint"
    finally:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait()
    db = open_database(f"sqlite:///{db_path}")  # marks the dead process's runs interrupted
    runs = {r.seed: r for r in db.runs()}
    assert runs[0].status == "interrupted" and runs[1].status == "reached"
    assert max(db.eval_curve(runs[0].id)) == 500  # rows of steps past the checkpoint (256)

    # the finished trial's id resumes its program too (it finished after the checkpoint)
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--resume", runs[1].id[:8],
                          "--db", str(db_path), "--json"],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    resumed = {t["seed"]: t for t in json.loads(out.stdout)}
    assert [resumed[s]["resumed_from_step"] for s in (0, 1)] == [256, 256]
    assert {t["run_id"] for t in resumed.values()} == {runs[0].id, runs[1].id}

    whole_db, whole_ids = uninterrupted
    whole = _by_seed(whole_db, whole_ids)
    again = _by_seed(db, [runs[0].id, runs[1].id])
    for seed in (0, 1):
        (w_run, w_curve, w_losses), (r_run, r_curve, r_losses) = whole[seed], again[seed]
        assert r_run.resumed_from_step == 256 and w_run.resumed_from_step is None
        assert (r_run.status, r_run.steps_to_target, r_run.final_step) == \
            (w_run.status, w_run.steps_to_target, w_run.final_step) == \
            ("reached", {0: 520, 1: 500}[seed], {0: 520, 1: 500}[seed])
        assert r_curve == w_curve
        assert r_losses.tobytes() == w_losses.tobytes() and r_losses.size == w_run.final_step
        assert r_run.time_to_target_s > 0 and r_run.compile_s > 0
    assert runs[0].checkpoint_path == db.get_run(runs[0].id).checkpoint_path  # kept: one folder
    assert _state_bytes(db.get_run(runs[0].id).checkpoint_path) == \
        _state_bytes(whole_db.get_run(whole_ids[0]).checkpoint_path)



def test_checkpoints_are_deleted_when_the_trials_finish(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    options = TrialOptions(max_steps=300, eval_every=100, checkpoint_every=1,
                           stop_at_target=False)
    sweep = run_sweep([TrialRequest("uv", str(SUBMISSIONS / "sgd"), {}, 0)], options, db_url)
    root = tmp_path / "r.db.checkpoints"
    assert root.is_dir() and not any(root.iterdir())  # written at step 256, gone at the end
    assert open_database(db_url).get_run(sweep.trials[0].result.run_id).checkpoint_path is None
    with pytest.raises(checkpoint.CheckpointError, match=r"already finished \(reached\); "
                                                         "nothing to resume"):
        resume_run(sweep.trials[0].result.run_id, db_url)
    db, run_id = open_database(db_url), sweep.trials[0].result.run_id
    db.update_run(run_id, status="interrupted")
    with pytest.raises(checkpoint.CheckpointError, match="has no checkpoint: it stopped before"):
        resume_run(run_id, db_url)
    db.update_run(run_id, chunk_mode="concrete")
    with pytest.raises(checkpoint.CheckpointError, match="concrete-step mode .* writes no "
                                                         "checkpoints"):
        resume_run(run_id, db_url)


def test_cadence_option():
    assert checkpoint.parse_cadence("500") == (500, None)
    assert checkpoint.parse_cadence("10m") == (None, 600.0)
    assert checkpoint.parse_cadence("90s") == (None, 90.0)
    assert checkpoint.parse_cadence("1.5h") == (None, 5400.0)
    assert checkpoint.parse_cadence("off") == (None, None)
    for bad in ("0", "-5", "1.5", "ten", "5d"):
        with pytest.raises(ValueError, match="give N steps"):
            checkpoint.parse_cadence(bad)


def test_cadence_by_steps_and_by_time(tmp_path):
    def writer(steps, seconds):
        return checkpoint.Writer(checkpoint.Checkpointing(root=tmp_path, every_steps=steps,
                                                          every_s=seconds, keep=False, group={}),
                                 tmp_path / "p", {}, step=100)

    assert not writer(300, None).due(399) and writer(300, None).due(400)
    assert not writer(None, 3600.0).due(10_000) and writer(None, 0.0).due(101)
    assert not writer(None, None).due(10_000)


def _resume_in_process(tmp_path, monkeypatch, workload, submission, dataset, trials, options):
    """The trials run through (final state kept), and run again stopped by Ctrl-C at their
    second checkpoint then resumed from the first: both runs' rows and final states."""
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    every = checkpoint.Checkpointing(root=tmp_path / "ck", every_steps=1, every_s=None, keep=True,
                                     group={})
    whole = run_group(workload, submission, dataset, trials, db=db, options=options,
                      checkpointing=dataclasses.replace(every, root=tmp_path / "whole",
                                                        every_steps=None))
    write = checkpoint.Writer.write

    def stop_at_second(self, *args, **kwargs):
        if self.written:
            raise KeyboardInterrupt
        write(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(checkpoint.Writer, "write", stop_at_second)
        with pytest.raises(KeyboardInterrupt):
            run_group(workload, submission, dataset, trials, db=db, options=options,
                      checkpointing=every)
    stopped = [r for r in db.runs() if r.id not in {w.run_id for w in whole}]
    assert {r.status for r in stopped} == {"interrupted"}
    folder = Path(stopped[0].checkpoint_path)
    resumed = run_group(workload, submission, dataset, trials, db=db, options=options,
                        checkpointing=dataclasses.replace(every, resume=folder))
    for w, r in zip(whole, resumed):
        assert r.resumed_from_step is not None and r.resumed_from_step > 0
        assert (r.status, r.steps_to_target, r.final_step) == (w.status, w.steps_to_target,
                                                               w.final_step)
        assert db.eval_curve(r.run_id) == db.eval_curve(w.run_id)
        assert db.losses(r.run_id)[1].tobytes() == db.losses(w.run_id)[1].tobytes()
    assert _state_bytes(str(folder)) == _state_bytes(str(tmp_path / "whole" / whole[0].run_id))


@pytest.mark.slow
def test_host_mode_graph_trials_resume_bit_identical(tmp_path, monkeypatch):
    """ogbg: batches fed from the host (the iterator replayed to the step), host evals."""
    from harness.submissions import load_submission
    from workloads.ogbg_molpcba import OgbgMolpcba

    workload = OgbgMolpcba(latent=16, hidden=16, depth=2)
    dataset = workload.synthetic_dataset({"train": 64, "validation": 16})
    submission = load_submission(SUBMISSIONS / "adam", ["batch_size=8", "learning_rate=0.01"])
    _resume_in_process(tmp_path, monkeypatch, workload, submission, dataset,
                       [TrialSpec(0, {}), TrialSpec(1, {})],
                       TrialOptions(max_steps=9, eval_every=3, stop_at_target=False))


@pytest.mark.slow
def test_conv_net_step_mode_trials_resume_bit_identical(tmp_path, monkeypatch):
    """A batch-norm conv net in "step" chunk mode (XLA:CPU), host evals."""
    from harness.submissions import load_submission
    from workloads import get_workload

    workload = get_workload("cifar_simplecnn:batchnorm=1,width=0.25")
    dataset = workload.synthetic_dataset({"train": 32, "validation": 8})
    submission = load_submission(SUBMISSIONS / "momentum", ["batch_size=8"])
    _resume_in_process(tmp_path, monkeypatch, workload, submission, dataset,
                       [TrialSpec(0, {}), TrialSpec(1, {})],
                       TrialOptions(max_steps=6, eval_every=2, stop_at_target=False))


@pytest.mark.parametrize("args, message", [
    (["run"], "run needs --workload and --submission (or --resume RUN_ID)"),
    (["run", "--resume", "abc", "--checkpoint-every", "5x"], "--checkpoint-every '5x': give N steps"),
    (["run", "--resume", "abc", "--workload", "mnist_mlp"], "drop --workload/--submission"),
])
def test_bad_resume_options_are_one_line_errors(tmp_path, args, message):
    from typer.testing import CliRunner

    from harness.cli import app

    res = CliRunner().invoke(app, [*args, "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 2 and message in res.output
