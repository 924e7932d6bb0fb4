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
