"""`report` draws one workload version per variant: the newest in the selection by default,
another on request; the ones left out are named with how to show them."""

from __future__ import annotations

from harness.db import open_database
from harness.report import Filters
from harness.report.data import select_runs
from tests.stored_runs import add_run


def _db(tmp_path):
    db = open_database(str(tmp_path / "r.db"))
    old = [add_run(db, seed=s, order=s, workload_version="aaaa1111") for s in range(2)]
    new = [add_run(db, seed=s, order=10 + s, workload_version="bbbb2222") for s in range(3)]
    other = [add_run(db, variant="fashion_mnist_mlp", order=5, workload_version="aaaa1111")]
    return db, old, new, other


def test_default_is_each_variants_newest_version_and_names_the_others(tmp_path):
    db, old, new, other = _db(tmp_path)
    selection = select_runs(db, Filters())
    assert sorted(r.id for r in selection.runs) == sorted(new + other)
    assert selection.left_out == ["left out 2 run(s) of mnist_mlp at older workload version aaaa1111 "
                                  "(shown: bbbb2222); show them with --workload-version aaaa1111"]


def test_workload_version_shows_that_version_only(tmp_path):
    db, old, new, other = _db(tmp_path)
    selection = select_runs(db, Filters(workload="mnist_mlp", workload_version="aaaa"))
    assert sorted(r.id for r in selection.runs) == sorted(old) and not selection.left_out
    missing = select_runs(db, Filters(workload_version="cccc"))
    assert not missing.runs and "no selected run has workload version 'cccc'" in missing.empty_reason
    assert "aaaa1111" in missing.empty_reason and "bbbb2222" in missing.empty_reason


def test_training_figures_draw_one_version_per_figure_newest_first(tmp_path):
    """Handed runs of two versions of one variant (e.g. `--workload-version` a prefix both
    share, or an analysis's runs), the training curves and the steps to target are one figure
    per version, the older named as such; no figure mixes the versions."""
    from harness.report.data import load_series
    from harness.report.plotting import group_configs
    from harness.report.training_figures import curve_figures, steps_to_target_figures
    from tests.stored_runs import add_curves

    db = open_database(str(tmp_path / "r.db"))
    old = [add_run(db, variant="lowrank", seed=s, order=s, workload_version="c0ffee01", steps=20 + s)
           for s in range(2)]
    new = [add_run(db, variant="lowrank", seed=s, order=10 + s, workload_version="c0ffee02", steps=10 + s)
           for s in range(3)]
    for run_id in old + new:
        add_curves(db, run_id)
    runs = db.runs()
    configs = group_configs(runs)
    curves = curve_figures(configs, load_series(db, runs))
    steps = steps_to_target_figures(configs)
    assert [f.title for f in curves] == ["Training curves: lowrank",
                                         "Training curves: lowrank (older version 1)"]
    assert [f.title for f in steps] == ["Steps to target: lowrank",
                                        "Steps to target: lowrank (older version 1)"]
    for figures in (curves, steps):
        assert [set(f.provenance.run_ids) for f in figures] == [set(new), set(old)]
        assert [dict(f.provenance.workload_versions) for f in figures] == [
            {"lowrank": ("c0ffee02",)}, {"lowrank": ("c0ffee01",)}]
    assert len({f.slug for f in curves + steps}) == 4
