"""A few-step ogbg_molpcba trial through the runner on real molecules read from the OGB format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.ogbg import load_ogbg_molpcba, write_ogb_folder
from harness.db import open_database
from harness.runner import run_trial
from harness.submissions import load_submission
from ogbg_molecules import molecule_graphs
from harness.spec import Target
from workloads.ogbg_molpcba import OgbgMolpcba

ADAM = Path(__file__).resolve().parents[1] / "submissions" / "adam"


class OgbgNeverDone(OgbgMolpcba):
    """The workload with an unreachable target, so the trial runs its full step budget."""

    target = Target("mean_average_precision", 1.01, "max", "validation")


def test_trial_runs_through_the_runner_and_writes_rows(tmp_path):
    molecules = molecule_graphs(48, seed=2)
    write_ogb_folder(tmp_path / "ogbg_molpcba", molecules,
                     {"train": np.arange(32), "validation": np.arange(32, 48), "test": []})
    dataset = load_ogbg_molpcba(str(tmp_path / "ogbg_molpcba"))
    workload = OgbgNeverDone(latent=16, hidden=16, depth=2)
    submission = load_submission(ADAM, ["batch_size=8", "learning_rate=0.01"])
    db = open_database(f"sqlite:///{tmp_path / 'results.db'}")
    result = run_trial(workload, submission, dataset, seed=0, db=db, max_steps=6, eval_every=3)
    assert result.status == "not_reached" and result.final_step == 6
    assert result.chunk_mode == "scan"
    # one compiled 3-step chunk serves both chunks (batches of different graphs), one eval
    assert result.compiles == 2
    assert [step for step, _ in result.evals] == [3, 6]
    for _, metrics in result.evals:
        assert 0.0 <= metrics["mean_average_precision"] <= 1.0 and metrics["loss"] > 0
    run = db.get_run(result.run_id)
    assert run.data_source.startswith("ogb:") and run.batch_size == 8
    curve = db.eval_curve(result.run_id)
    assert sorted(curve) == [3, 6]
    assert curve[6]["mean_average_precision"] == result.evals[1][1]["mean_average_precision"]
