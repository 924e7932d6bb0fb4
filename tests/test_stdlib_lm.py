"""The stdlib_lm workload: its text (fixed files, fingerprinted bytes, the Python version
named), its knobs' one-line errors, the causal mask, curvature snapshots through the CLI and
`workloads check` (slow), on tiny variants (a few steps each)."""

from __future__ import annotations

import json
import shutil

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.data import stdlib_text
from harness.spec import DataUnavailable, SpecError
from workloads import get_workload

TINY = "stdlib_lm:width=16,depth=1,heads=2,context=16"


def _copy_stdlib_files(directory):
    directory.mkdir()
    for name in stdlib_text.TRAIN_FILES + stdlib_text.VALIDATION_FILES:
        shutil.copy(stdlib_text.stdlib_dir() / name, directory / name)
    return directory


def test_text_is_the_fixed_files_in_order_as_next_byte_windows():
    data = get_workload(TINY).load_data()
    version = stdlib_text.python_version()
    assert data.name == f"stdlib_text-py{version}" and data.source == f"python{version}-stdlib"
    stream = b"".join((stdlib_text.stdlib_dir() / f).read_bytes() for f in stdlib_text.TRAIN_FILES)
    train = data.splits["train"]
    assert train["inputs"].dtype == np.int32 and train["inputs"].shape == ((len(stream) - 1) // 16, 16)
    used = len(train["inputs"]) * 16
    assert bytes(train["inputs"].ravel().astype(np.uint8)) == stream[:used]
    assert bytes(train["targets"].ravel().astype(np.uint8)) == stream[1:used + 1]
    assert not set(stdlib_text.TRAIN_FILES) & set(stdlib_text.VALIDATION_FILES)
    assert data.fingerprint == get_workload(TINY).load_data().fingerprint  # read the same every time


def test_the_fingerprint_covers_the_bytes_used_and_the_source_names_other_text(tmp_path):
    """The same files copied elsewhere give the same fingerprint; one byte changed in a used
    part of a training file, or of a validation file, another (as another Python's text would)."""
    here = get_workload(TINY).load_data()
    same = _copy_stdlib_files(tmp_path / "same")
    copied = get_workload(TINY).load_data(str(same))
    assert copied.fingerprint == here.fingerprint and copied.source.endswith(f":{same}")
    for name in (stdlib_text.TRAIN_FILES[3], stdlib_text.VALIDATION_FILES[0]):
        edited = _copy_stdlib_files(tmp_path / f"edited-{name}")
        text = bytearray((edited / name).read_bytes())
        text[100] = ord("#") if text[100] != ord("#") else ord("x")
        (edited / name).write_bytes(bytes(text))
        assert get_workload(TINY).load_data(str(edited)).fingerprint != here.fingerprint


def test_missing_files_or_source_are_one_line_errors(tmp_path):
    partial = _copy_stdlib_files(tmp_path / "partial")
    (partial / stdlib_text.VALIDATION_FILES[1]).unlink()
    with pytest.raises(DataUnavailable, match=f"lacks {stdlib_text.VALIDATION_FILES[1]}") as e:
        get_workload(TINY).load_data(str(partial))
    assert "\n" not in str(e.value)
    with pytest.raises(DataUnavailable, match="valid: stdlib"):
        get_workload(TINY).load_data(source="web")


@pytest.mark.parametrize("spec, message", [
    ("stdlib_lm:width=30,heads=4", "knob 'heads': 4 does not divide width 30"),
    ("stdlib_lm:width=16,heads=3", "knob 'heads': 3 does not divide width 16"),
    ("stdlib_lm:context=513", "knob 'context': 513 is above 512"),
    ("stdlib_lm:context=4096", "knob 'context': 4096 is above 512"),
])
def test_knobs_the_model_cannot_build_are_refused_in_one_line(spec, message, tmp_path):
    with pytest.raises(SpecError, match=message):
        get_workload(spec)
    result = CliRunner().invoke(app, ["run", "--workload", spec, "--submission", "adam",
                                      "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 2 and message in result.output
    assert result.output.strip().count("\n") == 0


def test_outputs_are_causal_per_token_logits():
    """Changing the byte at position 9 changes no logit before it and some after it."""
    workload = get_workload(TINY)
    params, state = jax.jit(workload.init)(jax.random.PRNGKey(0))
    tokens = workload.load_data().splits["validation"]["inputs"][:2]
    other = tokens.copy()
    other[:, 9] = (other[:, 9] + 1) % stdlib_text.VOCAB
    apply = jax.jit(lambda t: workload.apply(params, state, t, train=False)[0])
    a, b = np.asarray(apply(tokens)), np.asarray(apply(other))
    assert a.shape == (2, 16, stdlib_text.VOCAB)
    np.testing.assert_array_equal(a[:, :9], b[:, :9])
    assert not np.allclose(a[:, 9:], b[:, 9:])


def test_curvature_snapshots_in_a_trial(db):
    """Hessian snapshots of the language model's loss, at init and after two steps (the GGN
    through the CLI: slow, below)."""
    from harness.curvature import SnapshotConfig, snapshot_callback
    from harness.runner import run_trial
    from harness.submissions import load_submission

    workload = get_workload(TINY)
    data = workload.load_data()
    adam = load_submission("adam")
    config = SnapshotConfig(kinds=("hessian",), lanczos_order=4, top_k=(1, 4),
                            curvature_batch=32, trace_probes=0)
    callback = snapshot_callback(workload, data, config, db=db, hparams=adam.hparams,
                                 batch_size=workload.batch_size)
    result = run_trial(workload, adam, data, seed=0, db=db, max_steps=2, eval_every=2,
                       snapshot_steps=[0, 2], on_snapshot=callback)
    snaps = db.snapshots(result.run_id)
    assert sorted((s["step"], s["kind"]) for s in snaps) == [(0, "hessian"), (2, "hessian")]
    for s in snaps:
        assert np.isfinite(s["metrics"]["max_eig"]) and s["metrics"]["max_eig"] > 0
        assert s["arrays"]["tridiag_alpha"].shape == (1, 4)


@pytest.mark.slow
def test_curvature_snapshots_through_the_cli(tmp_path):
    cli = CliRunner()
    db = str(tmp_path / "c.db")
    res = cli.invoke(app, ["run", "--workload", TINY, "--submission", "adam", "--max-steps", "2",
                           "--eval-every", "2", "--curvature", "hessian,ggn",
                           "--curvature-every", "init,at:2", "--curvature-batch", "32",
                           "--lanczos-order", "4", "--trace-probes", "0", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)[0]["run_id"]
    report = cli.invoke(app, ["curvature", run_id, "--db", db, "--json"])
    assert report.exit_code == 0, report.output
    snaps = json.loads(report.stdout)["snapshots"]
    assert {(s["step"], s["kind"]) for s in snaps} == {
        (step, kind) for step in (0, 2) for kind in ("hessian", "ggn")}
    for s in snaps:
        assert np.isfinite(s["metrics"]["max_eig"]) and s["metrics"]["max_eig"] > 0


@pytest.mark.slow
def test_workloads_check_passes_on_the_default_variant():
    """`curvebench workloads check stdlib_lm` on its real text: every check passes, the target
    on course (its 60-step short run; the default suite checks it on synthetic data)."""
    result = CliRunner().invoke(app, ["workloads", "check", "stdlib_lm", "--json"])
    assert result.exit_code == 0, result.output
    verdicts = {v["check"]: v["status"] for v in json.loads(result.stdout)}
    assert verdicts["data"] == "pass" and verdicts["target"] == "not judged"


def test_check_on_other_text_is_not_comparable_and_trains_nothing(tmp_path):
    """Another Python's stdlib (here: one byte changed in a copy) is another dataset: `check`
    against the shipped set says the data fingerprints differ (exit 2) before any training."""
    from harness.db import open_database
    other = _copy_stdlib_files(tmp_path / "other")
    text = bytearray((other / stdlib_text.TRAIN_FILES[0]).read_bytes())
    text[50] = ord("#") if text[50] != ord("#") else ord("x")
    (other / stdlib_text.TRAIN_FILES[0]).write_bytes(bytes(text))
    db = str(tmp_path / "nc.db")
    result = CliRunner().invoke(app, ["check", "--workload", "stdlib_lm", "--submission", "adam",
                                      "--data-dir", str(other), "--db", db])
    assert result.exit_code == 2, result.output
    assert "data_fingerprint" in result.output and "not_comparable" in result.output
    assert open_database(db).runs() == []
