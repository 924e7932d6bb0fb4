"""Reference sets (freeze, export, import, bad files) and the regression check (tiers, rule, CLI).

The CLI checks run real trials against the shipped reference sets (reference_results/)
with few seeds; the full default-size checks are marked slow.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import func, select
from typer.testing import CliRunner

from pg_server import db_url  # noqa: F401  (fixture: SQLite and PostgreSQL)
from harness import check, refs
from harness.check import statistics, tiers
from harness.cli import app
from harness.db import Run, open_database
from harness.environment import REPO_ROOT
from workloads import REGISTRY
from harness.runner import run_trial
from harness.submissions import load_submission
from workloads import get_workload

SHIPPED = refs.SHIPPED_DIR


def shipped(workload: str) -> refs.RefSet:
    (refset,) = [s for s in refs.read_sets(SHIPPED) if s.header["variant"] == workload]
    return refset


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result, " ".join(result.output.split())


# -- the statistics -----------------------------------------------------------------------

def test_steps_test_is_the_pooled_yuen_test():
    rng = np.random.default_rng(1)
    a, b = rng.normal(100, 10, 7), rng.normal(108, 12, 15)
    ours = statistics.steps_test(a, b, eval_every=1e-9, tolerance=0.0)
    ref = stats.ttest_ind(a, b, equal_var=True, trim=0.2)
    assert ours.t == pytest.approx(ref.statistic) and ours.p == pytest.approx(ref.pvalue)
    assert ours.df == ref.df


def test_steps_rule_fails_too_slow_and_suspiciously_fast_but_not_within_tolerance():
    ref = [200.0, 250.0] * 6
    slow = statistics.steps_test([400.0, 450.0, 400.0], ref, eval_every=50, tolerance=0.15)
    fast = statistics.steps_test([50.0, 50.0, 100.0], ref, eval_every=50, tolerance=0.15)
    near = statistics.steps_test([250.0, 250.0, 250.0, 250.0, 250.0] * 4, ref, eval_every=50,
                            tolerance=0.15)
    assert slow.fail and slow.relative_difference > 0
    assert fast.fail and fast.relative_difference < 0
    assert near.significant and not near.fail  # +11%: significant, inside one eval interval
    assert near.tolerance == pytest.approx(50 / near.reference_mean)


def test_spread_floor_keeps_identical_steps_testable():
    same = statistics.steps_test([30.0] * 3, [30.0] * 10, eval_every=10, tolerance=0.25)
    assert same.spread == pytest.approx(10 / np.sqrt(12)) and same.p == 1.0 and not same.fail


def test_convergence_allows_one_miss_in_n():
    assert not statistics.convergence_fails(1, 5)
    assert statistics.convergence_fails(2, 5)
    assert statistics.convergence_fails(1, 1)


def test_false_reject_rate_is_estimated_by_resampling():
    rng = np.random.default_rng(0)
    pool = rng.normal(300.0, 30.0, 40).round()
    none_missed = [False] * len(pool)
    strict = statistics.false_reject_rate(pool, none_missed, 5, eval_every=1, tolerance=0.0,
                                     resamples=1000)
    lenient = statistics.false_reject_rate(pool, none_missed, 5, eval_every=1, tolerance=5.0,
                                      resamples=1000)
    assert 0.0 < strict["rate"] < 0.25 and strict["rejects"] == round(strict["rate"] * 1000)
    assert lenient["rate"] == 0.0
    misses = statistics.false_reject_rate(pool, [i % 2 == 0 for i in range(len(pool))], 5,
                                     eval_every=1, tolerance=5.0, resamples=1000)
    assert misses["rate"] > 0.5  # half the references miss: the convergence tier rejects most draws


# -- tiers on the shipped references (no training) ----------------------------------------

def test_bit_exact_tier_catches_one_changed_value():
    refset = shipped("mnist_mlp")
    same = [copy.deepcopy(r) for r in refset.records[:3]]
    assert tiers.bit_exact(refset, same).status == "pass"
    changed = copy.deepcopy(same)
    changed[1]["eval_curve"][0]["metrics"]["loss"] += 1e-7
    tier = tiers.bit_exact(refset, changed)
    assert tier.status == "fail" and tier.details["differing"][0]["seed"] == changed[1]["run"]["seed"]
    other_env = copy.deepcopy(changed)
    for r in other_env:
        r["run"]["environment"]["jaxlib_version"] = "9.9.9"
    assert tiers.bit_exact(refset, other_env).status == "skip"


def test_compare_passes_references_against_themselves():
    refset = shipped("fashion_mnist_mlp")
    report = check.compare(refset, copy.deepcopy(refset.records[:5]), resamples=200)
    assert report.verdict == "pass" and report.exit_code == 0
    assert [t.name for t in report.tiers] == ["comparability", "bit-exact", "convergence",
                                              "steps-to-target", "eval-curve band", "curvature band"]
    assert 0.0 <= report.false_reject_rate["rate"] <= 1.0



@pytest.mark.parametrize("refset", refs.read_sets(SHIPPED), ids=lambda s: s.header["variant"])
def test_every_shipped_set_is_comparable_with_this_checkout(refset):
    """Each shipped set (mnist_mlp, fashion_mnist_mlp, stdlib_lm, any added later) matches the
    current workload version, submission code and data: a change to either without re-freezing
    the set fails here, not in a user's `check` as "not comparable"."""
    header = refset.header
    workload = get_workload(header["variant"])
    assert header["workload_version"] == workload.version, "workload changed: re-freeze the set"
    assert header["submission_hash"] == load_submission(header["submission"]).code_hash
    assert header["data_fingerprint"] == workload.load_data().fingerprint
    assert len(refset.records) == header["runs"] and all(
        r["run"]["status"] == "reached" for r in refset.records)


# -- freeze / export / import -------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Short real trials (synthetic data: they end not_reached) in a SQLite file, two frozen."""
    url = f"sqlite:///{tmp_path_factory.mktemp('trained') / 'runs.db'}"
    db = open_database(url)
    workload = get_workload("mnist_mlp:width=16")
    data = workload.synthetic_dataset({"train": 256, "validation": 128}, seed=0)
    submission = load_submission(REPO_ROOT / "submissions" / "sgd")
    ids = [run_trial(workload, submission, data, seed, db=db, max_steps=20, eval_every=10).run_id
           for seed in range(2)]
    other = load_submission(REPO_ROOT / "submissions" / "sgd", ["learning_rate=0.5"])
    odd = run_trial(workload, other, data, 0, db=db, max_steps=20, eval_every=10).run_id
    frozen = refs.freeze(db, ids, note="round trip")
    (path,) = refs.export_sets(db, tmp_path_factory.mktemp("exported"), [frozen.id])
    return url, ids, odd, frozen, path


def test_freeze_export_import_round_trip_is_lossless(trained, db_url, tmp_path):
    _, _, _, frozen, path = trained
    assert frozen.header["steps_tolerance"] == REGISTRY["mnist_mlp"].steps_tolerance
    target = open_database(db_url)
    assert refs.import_sets(target, [path]) == [(frozen.id, "imported")]
    assert refs.import_sets(target, [path]) == [(frozen.id, "already present")]
    (again,) = refs.export_sets(target, tmp_path / "b")
    assert again.read_bytes() == path.read_bytes()
    (loaded,) = refs.db_sets(target)
    assert [refs.curve(r) for r in loaded.records] == [refs.curve(r) for r in frozen.records]


def test_freeze_refuses_mixed_unknown_or_too_few_runs(trained):
    url, ids, odd, frozen, _ = trained
    db = open_database(url)
    with pytest.raises(refs.RefsError, match="different sets.*hparams"):
        refs.freeze(db, [ids[0], odd])
    with pytest.raises(refs.RefsError, match="no run with id 'nosuchrun'"):
        refs.freeze(db, [ids[0], "nosuchrun"])
    with pytest.raises(refs.RefsError, match="at least 2 runs"):
        refs.freeze(db, [ids[0]])
    with pytest.raises(refs.RefsError, match="already exists"):
        refs.freeze(db, ids)


@pytest.fixture
def set_file(tmp_path) -> Path:
    path = tmp_path / "refs" / "set.jsonl"
    path.parent.mkdir()
    shutil.copy(shipped("mnist_mlp").origin, path)
    return path


def _edit_lines(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _edit_record(path: Path, index: int, edit) -> None:
    def apply(lines):
        obj = json.loads(lines[index])
        edit(obj)
        lines[index] = json.dumps(obj)
        return lines
    _edit_lines(path, apply)


def _other_version(record: dict) -> None:
    for part in (record["run"], record["hashes"]):
        part["workload_version"] = "0" * 16


BAD_FILES = {
    "truncated line": (lambda p: _edit_lines(p, lambda ls: ls[:2] + [ls[2][:100]] + ls[3:]),
                       r"set.jsonl:3: not valid JSON"),
    "not a set": (lambda p: p.write_text('{"hello": "world"}\n'), "not a curvebench reference set"),
    "future format": (lambda p: _edit_record(p, 0, lambda o: o.update(format_version=2)),
                      "format version 2"),
    "missing field": (lambda p: _edit_record(p, 1, lambda o: o["run"].pop("seed")),
                      r"set.jsonl:2 run: missing field 'seed'"),
    "run of another version": (lambda p: _edit_record(p, 2, _other_version), "does not belong to set"),
    "tampered hash": (lambda p: _edit_record(p, 1, lambda o: o["hashes"].update(data_fingerprint="x")),
                      "hashes.data_fingerprint does not match"),
    "unfinished run": (lambda p: _edit_record(p, 1, lambda o: o["run"].update(status="running")),
                       "not a finished run"),
    "empty": (lambda p: p.write_text(""), "empty reference file"),
    "path in set id": (lambda p: _edit_record(p, 0, lambda o: o["set"].update(id="../../../x")),
                       r"set.jsonl:1: set id '../../../x' is not allowed"),
    "absolute set id": (lambda p: _edit_record(p, 0, lambda o: o["set"].update(id="/tmp/x")),
                        "is not allowed"),
    "long set id": (lambda p: _edit_record(p, 0, lambda o: o["set"].update(id="a" * 300)),
                    "is not allowed"),
    "long run id": (lambda p: _edit_record(p, 2, lambda o: o["run"].update(id="r" * 5000)),
                    r"set.jsonl:3: run id 'rrr.*' is not a run id"),
    "duplicate seed": (lambda p: _edit_record(p, 3, lambda o: o["run"].update(seed=0)),
                       r"set.jsonl:4: run seed 0 appears twice \(first on line 2\)"),
    "NaN metric": (lambda p: _edit_record(
        p, 2, lambda o: o["eval_curve"][0]["metrics"].update(accuracy=float("nan"))),
        r"set.jsonl:3: non-finite number NaN"),
    "infinite time": (lambda p: _edit_record(p, 1, lambda o: o["run"].update(time_to_target_s=float("inf"))),
                      r"set.jsonl:2: non-finite number Infinity"),
    "re-versioned copy under the genuine id": (
        lambda p: _edit_lines(p, lambda ls: [_reversion(line) for line in ls]),
        r"set.jsonl:1: set id .* does not match its contents"),
}


def _reversion(line: str) -> str:
    """The line with every workload_version replaced consistently (header and runs)."""
    obj = json.loads(line)
    if "set" in obj:
        obj["set"]["workload_version"] = "0" * 16
    else:
        _other_version(obj)
    return json.dumps(obj)


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_reference_file_gives_clear_error_and_imports_nothing(case, set_file, tmp_path):
    damage, message = BAD_FILES[case]
    damage(set_file)
    with pytest.raises(refs.RefsError, match=message):
        refs.read_set(set_file)
    db = open_database(f"sqlite:///{tmp_path / 'results.db'}")
    with pytest.raises(refs.RefsError):
        refs.import_sets(db, [set_file.parent])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--refs", str(set_file.parent), "--db", str(tmp_path / "results.db"))
    assert result.exit_code == 2 and "error:" in text


def test_import_conflicting_run_is_refused_and_nothing_lost(set_file, tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'results.db'}")
    refs.import_sets(db, [set_file])
    renamed = tmp_path / "other" / "set.jsonl"
    renamed.parent.mkdir()
    shutil.copy(set_file, renamed)
    _edit_lines(renamed, lambda ls: ls[:-1])  # a set of one run fewer: another (genuine) id
    lines = [json.loads(line) for line in renamed.read_text().splitlines()]
    header, fewer = lines[0]["set"], [obj["run"]["id"] for obj in lines[1:]]
    new_id = refs.set_id({k: header[k] for k in refs.KEY_FIELDS}, fewer)
    _edit_record(renamed, 0, lambda o: o["set"].update(id=new_id, runs=len(fewer)))
    _edit_record(renamed, 3, lambda o: o["eval_curve"][0]["metrics"].update(accuracy=0.0))
    with pytest.raises(refs.RefsError, match="different results; nothing imported"):
        refs.import_sets(db, [renamed])
    assert [s.id for s in refs.db_sets(db)] == [shipped("mnist_mlp").id]
    (stored,) = refs.db_sets(db)
    assert [refs.curve(r) for r in stored.records] == [refs.curve(r) for r in
                                                       refs.read_set(set_file).records]


def test_a_file_written_before_a_nullable_column_existed_reads_it_as_null(set_file):
    """Reference files outlive migrations: a column added later is NULL, as the migration
    leaves existing rows, not a reason to refuse the file."""
    nullable = ["compile_cache_hit", "algoperf_time_to_target_s", "search_point",
                "resumed_from_step", "checkpoint_path"]  # added by migrations 0004-0006
    for index in range(1, len(set_file.read_text().splitlines())):
        _edit_record(set_file, index, lambda o: [o["run"].pop(c, None) for c in nullable])
    for record in refs.read_set(set_file).records:
        assert all(record["run"][c] is None for c in nullable)


def test_export_writes_only_inside_out(set_file, tmp_path):
    """A set id stored by an older curvebench that did not check it is refused at export."""
    db = open_database(f"sqlite:///{tmp_path / 'results.db'}")
    refs.import_sets(db, [set_file])
    genuine = refs.read_set(set_file)
    with db.session() as s:
        s.add(refs._set_row({**genuine.header, "id": "../escaped"},
                            [r["run"]["id"] for r in genuine.records]))
    out = tmp_path / "out" / "deep"
    with pytest.raises(refs.RefsError, match="set id '../escaped' is not allowed"):
        refs.export_sets(db, out)
    assert not (tmp_path / "out" / "escaped.jsonl").exists() and not out.exists()


# -- the check command against the shipped references (real trials) ----------------------

@pytest.fixture(scope="module")
def check_db(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("check") / "check.db")


def test_check_passes_on_a_rerun_of_the_shipped_references(check_db):
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--seeds", "2", "--db", check_db, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, text
    assert report["verdict"] == "pass" and report["reference_set"] == shipped("mnist_mlp").id
    tiers = {t["name"]: t["status"] for t in report["tiers"]}
    assert tiers["comparability"] == tiers["convergence"] == tiers["steps-to-target"] == "pass"
    assert tiers["bit-exact"] in ("pass", "skip")  # skip on another CPU or jax build
    assert report["false_reject_rate"]["resamples"] == 2000


def test_check_takes_stored_runs_and_rejects_mismatched_or_unknown_ones(check_db):
    ids = [r.id for r in open_database(check_db).runs(variant="mnist_mlp")]
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--runs", ",".join(ids), "--db", check_db)
    assert result.exit_code == 0, text
    assert "verdict: pass" in text and "reference set mnist_mlp--adam" in text
    result, text = cli("check", "--workload", "fashion_mnist_mlp", "--submission", "adam",
                       "--runs", ids[0], "--db", check_db)
    assert result.exit_code == 2 and "is mnist_mlp / adam, not fashion_mnist_mlp / adam" in text
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--runs", "feedbeef", "--db", check_db)
    assert result.exit_code == 2 and "no run with id 'feedbeef'" in text


def test_check_fails_with_a_ten_times_smaller_learning_rate(check_db):
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--seeds", "2", "--hparam", "learning_rate=0.0001", "--db", check_db, "--json")
    assert result.exit_code == 1, text
    report = json.loads(result.stdout)
    tiers = {t["name"]: t for t in report["tiers"]}
    assert report["verdict"] == "fail" and tiers["steps-to-target"]["status"] == "fail"
    assert tiers["steps-to-target"]["details"]["relative_difference"] > 1.0  # much slower
    assert tiers["comparability"]["details"]["hparams_differ"] == {
        "learning_rate": {"reference": 0.001, "candidate": 0.0001}}
    assert tiers["bit-exact"]["status"] == "skip"


def test_check_without_matching_or_comparable_references_exits_2(set_file, tmp_path):
    db = str(tmp_path / "results.db")
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "sgd",
                       "--db", db, "--refs", str(set_file.parent))
    assert result.exit_code == 2 and "no reference set for mnist_mlp / sgd" in text

    def other_version(lines):
        header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
        header["set"]["workload_version"] = "0" * 16
        for record in records:
            _other_version(record)
        header["set"]["id"] = refs.set_id({k: header["set"][k] for k in refs.KEY_FIELDS},
                                          [r["run"]["id"] for r in records])  # a genuine old set
        return [json.dumps(o) for o in [header, *records]]

    _edit_lines(set_file, other_version)
    result, text = cli("check", "--workload", "mnist_mlp", "--submission", "adam",
                       "--db", db, "--refs", str(set_file.parent))
    assert result.exit_code == 2, text
    assert "not_comparable" in text and "workload_version" in text
    assert open_database(db).runs() == []  # nothing was trained


@pytest.mark.slow
def test_check_of_a_stdlib_lm_rerun_passes_against_its_shipped_set(tmp_path):
    """Two seeds of the language model rerun and checked against its shipped set (minutes)."""
    result, text = cli("check", "--workload", "stdlib_lm", "--submission", "adam", "--seeds", "2",
                       "--db", str(tmp_path / "lm.db"), "--json")
    assert result.exit_code == 0, text
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass" and report["reference_set"] == shipped("stdlib_lm").id


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["mnist_mlp", "fashion_mnist_mlp"])
def test_check_default_seeds_pass_and_perturbed_learning_rate_fails(workload, tmp_path):
    db = str(tmp_path / "results.db")
    result, text = cli("check", "--workload", workload, "--submission", "adam", "--db", db)
    assert result.exit_code == 0, text
    result, text = cli("check", "--workload", workload, "--submission", "adam",
                       "--hparam", "learning_rate=0.0001", "--db", db)
    assert result.exit_code == 1, text


def test_available_sets_are_the_databases_and_the_directorys_a_file_winning(tmp_path):
    from tests.stored_runs import add_run

    db = open_database(f"sqlite:///{tmp_path / 'sets.db'}")
    adam = refs.freeze(db, [add_run(db, seed=s, order=s) for s in range(2)], tolerance=0.1,
                       note="in the database")
    sgd = refs.freeze(db, [add_run(db, submission="sgd", seed=s, order=s) for s in range(2)],
                      tolerance=0.1)
    refs.write_set(refs.RefSet({**adam.header, "note": "from the file"}, adam.records, "file"),
                   tmp_path / "sets")
    sets = {s.id: s for s in refs.available_sets(db, tmp_path / "sets")}
    assert set(sets) == {adam.id, sgd.id}
    assert sets[adam.id].header["note"] == "from the file"
    assert sets[sgd.id].origin == "database"
    assert {s.id for s in refs.available_sets(db, tmp_path / "no such dir")} == {adam.id, sgd.id}
    shipped_ids = {s.id for s in refs.read_sets()}
    assert {s.id for s in refs.available_sets(db)} == shipped_ids | {adam.id, sgd.id}
